"""Kernels of the joint (gradient) training of a softmax gate and softmax experts.

The model scores ``K`` experts with the gate, ``g_ik = gate[k, :d] . x_i + gate[k, d]``,
routes with ``r_i = softmax(g_i)``, and each expert ``k`` predicts the ``C`` classes
with ``p_ik = softmax(z_ik)``, ``z_ikc = experts[k, c, :d] . x_i + experts[k, c, d]``
(the last column of a parameter array is the intercept). The per-sample loss is the
mixture's negative log-likelihood

    L_i = -log sum_k r_ik p_ikc   (c = y_i),

computed by log-sum-exp over the experts of ``log r_ik + log p_ikc``, each itself a
log-softmax, so that no exponential overflows whatever the scores. With the posterior
``h_ik = r_ik p_ikc / exp(-L_i)``, the gradient of ``L_i`` is ``r_ik - h_ik`` with
respect to ``g_ik`` and ``h_ik (p_ikc' - [c' = y_i])`` with respect to ``z_ikc'``.
Each kernel makes one pass over the rows with ``O(K C)`` scratch memory, never an
``(n, K, C)`` array; accumulation is in float64 for float32 input too.
"""

import numpy as np
from numba import njit

from skmoe._kernels._boundary import (
    as_index_input,
    as_input,
    as_output,
    boundary,
)
from skmoe._kernels._config import JIT_OPTIONS

# Above this mixture likelihood, sum_k r_ik p_iky computed from the probabilities is
# exact to rounding: a term lost to underflow (below 1e-308) is under 1e-100 of it.
_SAFE_LIKELIHOOD = 1e-200


@njit(**JIT_OPTIONS)
def _row_terms(X, i, label, gate, experts, routing, proba, posterior, log_label):
    """The loss ``L_i`` of row ``i``; fills ``routing`` (K,) with ``r_i``, ``proba``
    (K, C) with every expert's class probabilities and ``posterior`` (K,) with
    ``h_i``. ``log_label`` (K,) is scratch space.

    Every exponential is taken once, after subtracting its log-sum-exp's maximum, and
    normalised into the probabilities. The mixture's likelihood is then
    ``sum_k r_ik p_iky``; only when it falls under ``_SAFE_LIKELIHOOD`` (the products
    may have underflowed) is ``L_i`` recomputed by log-sum-exp over the experts from
    the scores, so that it stays exact for any scores.
    """
    n_experts, n_classes, n_params = experts.shape
    n_features = n_params - 1
    max_gate = -np.inf
    for k in range(n_experts):
        acc = gate[k, n_features]
        for j in range(n_features):
            acc += gate[k, j] * X[i, j]
        posterior[k] = acc  # scratch: the gate scores
        if acc > max_gate:
            max_gate = acc
    total = 0.0
    for k in range(n_experts):
        routing[k] = np.exp(posterior[k] - max_gate)
        total += routing[k]
    likelihood = 0.0
    for k in range(n_experts):
        routing[k] /= total
        max_score = -np.inf
        for c in range(n_classes):
            acc = experts[k, c, n_features]
            for j in range(n_features):
                acc += experts[k, c, j] * X[i, j]
            proba[k, c] = acc
            if acc > max_score:
                max_score = acc
        log_label[k] = proba[k, label] - max_score
        expert_total = 0.0
        for c in range(n_classes):
            proba[k, c] = np.exp(proba[k, c] - max_score)
            expert_total += proba[k, c]
        for c in range(n_classes):
            proba[k, c] /= expert_total
        log_label[k] -= np.log(expert_total)  # log p_ik(y_i)
        likelihood += routing[k] * proba[k, label]
    if likelihood > _SAFE_LIKELIHOOD:
        for k in range(n_experts):
            posterior[k] = routing[k] * proba[k, label] / likelihood
        return -np.log(likelihood)
    gate_norm = max_gate + np.log(total)
    max_joint = -np.inf
    for k in range(n_experts):
        posterior[k] += log_label[k] - gate_norm  # log r_ik + log p_ik(y_i)
        if posterior[k] > max_joint:
            max_joint = posterior[k]
    total = 0.0
    for k in range(n_experts):
        posterior[k] = np.exp(posterior[k] - max_joint)
        total += posterior[k]
    for k in range(n_experts):
        posterior[k] /= total
    return -(max_joint + np.log(total))


@njit(**JIT_OPTIONS)
def _joint_losses(X, y, gate, experts, losses):
    """Write the per-sample losses ``L_i`` into ``losses``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    y : ndarray of shape (n_samples,), int
        Encoded classes in ``[0, n_classes)``.
    gate : ndarray of shape (n_experts, n_features + 1), float64
        Gate coefficients, the intercepts in the last column.
    experts : ndarray of shape (n_experts, n_classes, n_features + 1), float64
        Expert coefficients, the intercepts in the last column.
    losses : ndarray of shape (n_samples,), float64
        Overwritten with ``L_i``.

    Returns
    -------
    losses : ndarray of shape (n_samples,)
    """
    n_experts, n_classes, _ = experts.shape
    routing = np.empty(n_experts)
    proba = np.empty((n_experts, n_classes))
    posterior = np.empty(n_experts)
    log_label = np.empty(n_experts)
    for i in range(X.shape[0]):
        losses[i] = _row_terms(
            X, i, y[i], gate, experts, routing, proba, posterior, log_label
        )
    return losses


@njit(**JIT_OPTIONS)
def _joint_loss_grad(
    X, y, gate, experts, coefficients, losses, grad_gate, grad_experts
):
    """Per-sample losses and the gradient of ``sum_i c_i L_i``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    y : ndarray of shape (n_samples,), int
        Encoded classes in ``[0, n_classes)``.
    gate : ndarray of shape (n_experts, n_features + 1), float64
    experts : ndarray of shape (n_experts, n_classes, n_features + 1), float64
    coefficients : ndarray of shape (n_samples,), float64
        The ``c_i``; they may be negative. Rows with ``c_i = 0`` still get their loss
        but add nothing to the gradient.
    losses : ndarray of shape (n_samples,), float64
        Overwritten with ``L_i``.
    grad_gate : ndarray of shape (n_experts, n_features + 1), float64
        Overwritten with the gradient with respect to ``gate``.
    grad_experts : ndarray of shape (n_experts, n_classes, n_features + 1), float64
        Overwritten with the gradient with respect to ``experts``.

    Returns
    -------
    value : float
        ``sum_i c_i L_i``.
    """
    n_experts, n_classes, n_params = experts.shape
    n_features = n_params - 1
    routing = np.empty(n_experts)
    proba = np.empty((n_experts, n_classes))
    posterior = np.empty(n_experts)
    log_label = np.empty(n_experts)
    grad_gate[:, :] = 0.0
    grad_experts[:, :, :] = 0.0
    value = 0.0
    for i in range(X.shape[0]):
        label = y[i]
        loss = _row_terms(
            X, i, label, gate, experts, routing, proba, posterior, log_label
        )
        losses[i] = loss
        coefficient = coefficients[i]
        if coefficient == 0.0:
            continue
        value += coefficient * loss
        for k in range(n_experts):
            residual = coefficient * (routing[k] - posterior[k])
            grad_gate[k, n_features] += residual
            for j in range(n_features):
                grad_gate[k, j] += residual * X[i, j]
            if posterior[k] == 0.0:
                continue
            scale = coefficient * posterior[k]
            for c in range(n_classes):
                residual = proba[k, c]
                if c == label:
                    residual -= 1.0
                residual *= scale
                grad_experts[k, c, n_features] += residual
                for j in range(n_features):
                    grad_experts[k, c, j] += residual * X[i, j]
    return value


joint_losses = boundary(
    _joint_losses, X=as_input, y=as_index_input, gate=as_input, experts=as_input,
    losses=as_output,
)
joint_loss_grad = boundary(
    _joint_loss_grad, X=as_input, y=as_index_input, gate=as_input, experts=as_input,
    coefficients=as_input, losses=as_output, grad_gate=as_output,
    grad_experts=as_output,
)
