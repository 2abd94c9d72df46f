"""Kernels of the multinomial-logistic gate: loss, gradient and Hessian-vector product.

The gate scores ``K`` experts with ``z_ik = intercept_k + coef_k . x_i`` and routes with
``softmax(z_i)``. It is fitted on *soft* targets ``T`` (the E-step's responsibilities,
rows summing to ``t_i``, usually 1) with sample weights ``s``; the data term is the
weighted cross-entropy ``sum_i s_i sum_k T_ik (logsumexp(z_i) - z_ik)``. Its gradient
with respect to ``z_ik`` is ``s_i (t_i p_ik - T_ik)``. Each kernel makes one pass over
the rows and never forms the ``(n, K)`` score matrix, so the memory used is
``O(K d)`` whatever ``n`` is. Accumulation is in float64 for float32 input too.

The ``blocked_*`` functions compute the same quantities for SciPy CSR/CSC input (they
take dense input too): the rows are taken in blocks of ``BLOCK_ROWS``, the block's
scores ``X_b coef^T`` and its gradient ``R_b^T X_b`` are sparse matrix products, and a
numba pass over the block's ``(B, K)`` scores turns them into log-sum-exps and
residuals in place, so memory stays ``O(B K)`` plus the sparse matrix. On dense input
they were measured no faster than the row-wise kernels, which the gate keeps for
dense ``X`` (``benchmarks/bench_sparse_gate.py``).
"""

import numpy as np
import scipy.sparse as sp
from numba import njit

from skmoe._kernels._boundary import (
    as_input,
    as_output,
    boundary,
)
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
def _softmax_loss_grad(
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
def _softmax_hessp(
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
def _softmax_log_proba(X, coef, intercept, out):
    """Write the gate log-probabilities ``log softmax(intercept + X coef^T)``."""
    n_samples = X.shape[0]
    n_experts = coef.shape[0]
    scores = np.empty(n_experts)
    for i in range(n_samples):
        log_norm = _row_scores(X, i, coef, intercept, scores)
        for k in range(n_experts):
            out[i, k] = scores[k] - log_norm
    return out


# Rows per block: large enough that the BLAS products amortise their call overhead,
# small enough that the (B, K) scores stay in cache (4096 x 8 doubles: 256 KiB).
BLOCK_ROWS = 4096


def _block_scores(X_block, coef, intercept):
    """``X_block @ coef.T + intercept`` as a new C-contiguous float64 array."""
    scores = np.asarray(X_block @ coef.T, dtype=np.float64)
    scores += intercept
    return np.ascontiguousarray(scores)


def _add_transposed_product(out, residual, X_block):
    """``out += residual.T @ X_block`` for a dense or sparse block."""
    if sp.issparse(X_block):
        out += np.asarray((X_block.T @ residual).T)
    else:
        out += residual.T @ X_block


@njit(**JIT_OPTIONS)
def _residual_inplace(scores, targets, sample_weight):
    """Overwrite the block's scores with ``s_i (t_i p_ik - T_ik)``; return the loss.

    ``scores``, ``targets`` (B, K) and ``sample_weight`` (B,) are the block's rows.
    """
    n_rows, n_experts = scores.shape
    loss = 0.0
    for i in range(n_rows):
        weight = sample_weight[i]
        if weight == 0.0:
            for k in range(n_experts):
                scores[i, k] = 0.0
            continue
        max_score = -np.inf
        for k in range(n_experts):
            if scores[i, k] > max_score:
                max_score = scores[i, k]
        total = 0.0
        for k in range(n_experts):
            total += np.exp(scores[i, k] - max_score)
        log_norm = max_score + np.log(total)
        target_total = 0.0
        for k in range(n_experts):
            target_total += targets[i, k]
        for k in range(n_experts):
            target = targets[i, k]
            if target != 0.0:
                loss += weight * target * (log_norm - scores[i, k])
            scores[i, k] = weight * (
                target_total * np.exp(scores[i, k] - log_norm) - target
            )
    return loss


@njit(**JIT_OPTIONS)
def _hessp_residual_inplace(scores, direction, targets, sample_weight):
    """Overwrite ``direction`` with ``s_i t_i p_ik (d_ik - sum_j p_ij d_ij)``.

    ``scores`` (B, K) are the block's logits (overwritten with probabilities),
    ``direction`` (B, K) the scores of the direction vector.
    """
    n_rows, n_experts = scores.shape
    for i in range(n_rows):
        weight = sample_weight[i]
        if weight == 0.0:
            for k in range(n_experts):
                direction[i, k] = 0.0
            continue
        max_score = -np.inf
        for k in range(n_experts):
            if scores[i, k] > max_score:
                max_score = scores[i, k]
        total = 0.0
        for k in range(n_experts):
            scores[i, k] = np.exp(scores[i, k] - max_score)
            total += scores[i, k]
        target_total = 0.0
        projected = 0.0
        for k in range(n_experts):
            scores[i, k] /= total
            target_total += targets[i, k]
            projected += scores[i, k] * direction[i, k]
        scale = weight * target_total
        for k in range(n_experts):
            direction[i, k] = scale * scores[i, k] * (direction[i, k] - projected)


@njit(**JIT_OPTIONS)
def _log_softmax_inplace(scores):
    """Overwrite every row of ``scores`` with its log-softmax."""
    n_rows, n_experts = scores.shape
    for i in range(n_rows):
        max_score = -np.inf
        for k in range(n_experts):
            if scores[i, k] > max_score:
                max_score = scores[i, k]
        total = 0.0
        for k in range(n_experts):
            total += np.exp(scores[i, k] - max_score)
        log_norm = max_score + np.log(total)
        for k in range(n_experts):
            scores[i, k] -= log_norm


def blocked_softmax_loss_grad(
    X, targets, sample_weight, coef, intercept, grad_coef, grad_intercept
):
    """Weighted soft-target cross-entropy of the gate and its gradient.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), float32 or float64
        Dense in any memory layout, or SciPy CSR/CSC.
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
    grad_coef[:, :] = 0.0
    grad_intercept[:] = 0.0
    loss = 0.0
    for start in range(0, X.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        X_block = X[rows]
        residual = _block_scores(X_block, coef, intercept)
        loss += _residual_inplace(
            residual,
            as_input(targets[rows]),
            as_input(sample_weight[rows]),
        )
        _add_transposed_product(grad_coef, residual, X_block)
        grad_intercept += residual.sum(axis=0)
    return loss


def blocked_softmax_hessp(
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
    ``t_i (diag(p_i) - p_i p_i^T)``; the product is accumulated block by block into
    ``out_coef`` and ``out_intercept`` (overwritten), without penalty.
    """
    out_coef[:, :] = 0.0
    out_intercept[:] = 0.0
    for start in range(0, X.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        X_block = X[rows]
        scores = _block_scores(X_block, coef, intercept)
        direction = _block_scores(X_block, vec_coef, vec_intercept)
        _hessp_residual_inplace(
            scores,
            direction,
            as_input(targets[rows]),
            as_input(sample_weight[rows]),
        )
        _add_transposed_product(out_coef, direction, X_block)
        out_intercept += direction.sum(axis=0)


def blocked_softmax_log_proba(X, coef, intercept, out):
    """Write the gate log-probabilities ``log softmax(intercept + X coef^T)``."""
    for start in range(0, X.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        scores = _block_scores(X[rows], coef, intercept)
        _log_softmax_inplace(scores)
        out[rows] = scores
    return out


softmax_loss_grad = boundary(
    _softmax_loss_grad, X=as_input, targets=as_input, sample_weight=as_input,
    coef=as_input, intercept=as_input, grad_coef=as_output, grad_intercept=as_output,
)
softmax_hessp = boundary(
    _softmax_hessp, X=as_input, targets=as_input, sample_weight=as_input,
    coef=as_input, intercept=as_input, vec_coef=as_input, vec_intercept=as_input,
    out_coef=as_output, out_intercept=as_output,
)
softmax_log_proba = boundary(
    _softmax_log_proba, X=as_input, coef=as_input, intercept=as_input, out=as_output
)
