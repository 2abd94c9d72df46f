"""Plain NumPy references of the numba kernels in ``skmoe._kernels.gating`` and
``skmoe._kernels.joint``.

Written for clarity, not speed: the whole score matrix is formed at once.
"""

import numpy as np
from scipy.special import log_softmax, logsumexp


def softmax_loss_grad(X, targets, sample_weight, coef, intercept):
    X = np.asarray(X, dtype=np.float64)
    scores = X @ coef.T + intercept
    log_proba = log_softmax(scores, axis=1)
    loss = -np.sum(sample_weight[:, None] * targets * log_proba)
    residual = sample_weight[:, None] * (
        targets.sum(axis=1, keepdims=True) * np.exp(log_proba) - targets
    )
    return loss, residual.T @ X, residual.sum(axis=0)


def softmax_hessp(X, targets, sample_weight, coef, intercept, vec_coef, vec_intercept):
    X = np.asarray(X, dtype=np.float64)
    proba = np.exp(log_softmax(X @ coef.T + intercept, axis=1))
    direction = X @ vec_coef.T + vec_intercept
    projected = (proba * direction).sum(axis=1, keepdims=True)
    scale = (sample_weight * targets.sum(axis=1))[:, None]
    value = scale * proba * (direction - projected)
    return value.T @ X, value.sum(axis=0)


def joint_loss_grad(X, y, gate, experts, coefficients):
    """``skmoe._kernels.joint.joint_loss_grad``: the whole (n, K, C) array of expert
    log-probabilities at once. Returns losses, their weighted sum and the gradients
    of the gate and expert parameters."""
    X = np.asarray(X, dtype=np.float64)
    n_samples = X.shape[0]
    with_bias = np.hstack([X, np.ones((n_samples, 1))])
    log_gate = log_softmax(with_bias @ gate.T, axis=1)
    log_proba = log_softmax(np.einsum("nd,kcd->nkc", with_bias, experts), axis=2)
    log_joint = log_gate + log_proba[np.arange(n_samples), :, y]
    losses = -logsumexp(log_joint, axis=1)
    posterior = np.exp(log_joint + losses[:, None])
    gate_residual = coefficients[:, None] * (np.exp(log_gate) - posterior)
    one_hot = np.eye(experts.shape[1])[y]
    expert_residual = (
        coefficients[:, None, None]
        * posterior[:, :, None]
        * (np.exp(log_proba) - one_hot[:, None, :])
    )
    return (
        losses,
        float(coefficients @ losses),
        gate_residual.T @ with_bias,
        np.einsum("nkc,nd->kcd", expert_residual, with_bias),
    )
