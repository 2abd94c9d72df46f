"""Kernels of the multinomial-logistic gate: loss, gradient and Hessian-vector product.

The gate scores ``K`` experts with ``z_ik = intercept_k + coef_k . x_i`` and routes with
``softmax(z_i)``. It is fitted on *soft* targets ``T`` (the E-step's responsibilities,
rows summing to ``t_i``, usually 1) with sample weights ``s``; the data term is the
weighted cross-entropy ``sum_i s_i sum_k T_ik (logsumexp(z_i) - z_ik)``. Its gradient
with respect to ``z_ik`` is ``s_i (t_i p_ik - T_ik)``. Each kernel makes one pass over
the rows and never forms the ``(n, K)`` score matrix, so the memory used is
``O(K d)`` whatever ``n`` is. Accumulation is in float64 for float32 input too.
"""

import numpy as np
from numba import njit

from skmoe._kernels._config import JIT_OPTIONS


@njit(**JIT_OPTIONS)
def _row_scores(X, i, coef, intercept, scores):
    """Write ``intercept + coef @ X[i]`` into ``scores``; return the log-sum-exp."""
    n_experts, n_features = coef.shape
    max_score = -np.inf
    for k in range(n_experts):
        acc = intercept[k]
        for j in range(n_features):
            acc += coef[k, j] * X[i, j]
        scores[k] = acc
        if acc > max_score:
            max_score = acc
    total = 0.0
    for k in range(n_experts):
        total += np.exp(scores[k] - max_score)
    return max_score + np.log(total)


@njit(**JIT_OPTIONS)
def softmax_loss_grad(
    X, targets, sample_weight, coef, intercept, grad_coef, grad_intercept
):
    """Weighted soft-target cross-entropy of the gate and its gradient.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    targets : ndarray of shape (n_samples, n_experts)
        Non-negative soft targets (responsibilities).
    sample_weight : ndarray of shape (n_samples,)
    coef : ndarray of shape (n_experts, n_features), float64
    intercept : ndarray of shape (n_experts,), float64
    grad_coef : ndarray of shape (n_experts, n_features), float64
        Overwritten with the gradient with respect to ``coef``.
    grad_intercept : ndarray of shape (n_experts,), float64
        Overwritten with the gradient with respect to ``intercept``.

    Returns
    -------
    loss : float
        ``sum_i s_i sum_k T_ik (logsumexp(z_i) - z_ik)``, without penalty.
    """
    n_samples, n_features = X.shape
    n_experts = coef.shape[0]
    scores = np.empty(n_experts)
    grad_coef[:, :] = 0.0
    grad_intercept[:] = 0.0
    loss = 0.0
    for i in range(n_samples):
        weight = sample_weight[i]
        if weight == 0.0:
            continue
        log_norm = _row_scores(X, i, coef, intercept, scores)
        target_total = 0.0
        for k in range(n_experts):
            target_total += targets[i, k]
        for k in range(n_experts):
            target = targets[i, k]
            if target != 0.0:
                loss += weight * target * (log_norm - scores[k])
            residual = weight * (target_total * np.exp(scores[k] - log_norm) - target)
            grad_intercept[k] += residual
            for j in range(n_features):
                grad_coef[k, j] += residual * X[i, j]
    return loss


@njit(**JIT_OPTIONS)
def softmax_hessp(
    X,
    targets,
    sample_weight,
    coef,
    intercept,
    vec_coef,
    vec_intercept,
    out_coef,
    out_intercept,
):
    """Product of the data term's Hessian with ``(vec_coef, vec_intercept)``.

    The Hessian of ``t_i * logsumexp(z_i)`` with respect to ``z_i`` is
    ``t_i (diag(p_i) - p_i p_i^T)``; the product is accumulated row by row into
    ``out_coef`` and ``out_intercept`` (overwritten), without penalty.
    """
    n_samples, n_features = X.shape
    n_experts = coef.shape[0]
    scores = np.empty(n_experts)
    direction = np.empty(n_experts)
    out_coef[:, :] = 0.0
    out_intercept[:] = 0.0
    for i in range(n_samples):
        weight = sample_weight[i]
        if weight == 0.0:
            continue
        log_norm = _row_scores(X, i, coef, intercept, scores)
        target_total = 0.0
        projected = 0.0
        for k in range(n_experts):
            target_total += targets[i, k]
            acc = vec_intercept[k]
            for j in range(n_features):
                acc += vec_coef[k, j] * X[i, j]
            direction[k] = acc
            scores[k] = np.exp(scores[k] - log_norm)
            projected += scores[k] * acc
        scale = weight * target_total
        for k in range(n_experts):
            value = scale * scores[k] * (direction[k] - projected)
            out_intercept[k] += value
            for j in range(n_features):
                out_coef[k, j] += value * X[i, j]


@njit(**JIT_OPTIONS)
def softmax_log_proba(X, coef, intercept, out):
    """Write the gate log-probabilities ``log softmax(intercept + X coef^T)``."""
    n_samples = X.shape[0]
    n_experts = coef.shape[0]
    scores = np.empty(n_experts)
    for i in range(n_samples):
        log_norm = _row_scores(X, i, coef, intercept, scores)
        for k in range(n_experts):
            out[i, k] = scores[k] - log_norm
    return out
