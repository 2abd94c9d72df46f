"""Plain NumPy references of the numba kernels in ``skmoe._kernels.gating``.

Written for clarity, not speed: the whole score matrix is formed at once.
"""

import numpy as np
from scipy.special import log_softmax


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
