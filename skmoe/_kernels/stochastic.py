"""Kernels of the stochastic (minibatch Adam) training of a mixture of experts.

The model holds all its parameters in one flat float64 vector ``theta``, laid out as

    hidden (H, d + 1) | gate (K, D + 1) | heads (K, C, D + 1) | log noise scales (K,)

(intercepts in the last column; ``D = H`` with a hidden layer, else ``D = d``; the
hidden block is empty when ``H = 0``; the noise block only for regression). A sample's
features are ``f = act(hidden @ [x, 1])`` (or ``x`` itself without a hidden layer); the
gate routes with ``r = softmax(gate @ [f, 1])``; a classification head ``k`` predicts
``p_k = softmax(heads[k] @ [f, 1])``, a regression head the Gaussian
``N(heads[k, 0] @ [f, 1], exp(2 s_k))``. The per-sample loss is the mixture's negative
log-likelihood ``L_i = -log sum_k r_ik p_k(y_i | x_i)``, computed by log-sum-exp over
``log r_ik + log p_k(y_i | x_i)``; with the posterior ``h_ik`` its gradient is
``r_ik - h_ik`` in the gate scores, ``h_ik (p_ikc - [c = y_i])`` in the class scores,
``-h_ik (y_i - mu_ik) / sigma_k^2`` in a regression mean and
``h_ik (1 - (y_i - mu_ik)^2 / sigma_k^2)`` in ``s_k``; the features' gradient is
back-propagated through the activation into the hidden layer.

A minibatch's objective is ``sum_i c_i L_i`` with coefficients that sum to one: the
data weights normalised in the batch, or an adversarial tilt of them inside the batch
(``tilt_mode``, as :class:`~skmoe.reweighting.AdversarialReweighting` defines it:
Danskin's KL-DRO value or the authors' ``sum q(theta) L(theta)``, the filtered variant,
the chi-square bound ``min_ess`` on each tilt, and tilts normalised within each class of
the batch). :func:`adam_epoch` runs a whole epoch (every minibatch's forward pass,
tilt, backward pass and AdamW update) in one call, so that no Python code runs per
minibatch. No sklearn imports here.
"""

import functools

import numpy as np
from numba import njit

from skmoe._kernels._boundary import (
    as_array,
    as_float_input,
    as_index_input,
    as_input,
    as_output,
    boundary,
)
from skmoe._kernels._config import JIT_OPTIONS

# activation codes
IDENTITY, RELU, TANH = 0, 1, 2
# tilt codes
NO_TILT, DANSKIN, THROUGH_WEIGHTS = 0, 1, 2
# Bisection steps on eta for the divergence bound (as AdversarialReweighting).
_BISECTION_STEPS = 50
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


@njit(**JIT_OPTIONS)
def _parameter_layout(dims):
    """Offsets of the blocks of ``theta`` for ``dims``.

    ``dims`` = (n_features, n_hidden, n_experts, n_outputs, regression, activation);
    returns (hidden, gate, heads, noise, end) offsets and the feature dimension.
    """
    n_features, n_hidden, n_experts, n_outputs, regression = (
        dims[0],
        dims[1],
        dims[2],
        dims[3],
        dims[4],
    )
    n_inputs = n_hidden if n_hidden > 0 else n_features
    hidden = 0
    gate = n_hidden * (n_features + 1)
    heads = gate + n_experts * (n_inputs + 1)
    noise = heads + n_experts * n_outputs * (n_inputs + 1)
    end = noise + (n_experts if regression else 0)
    return hidden, gate, heads, noise, end, n_inputs


@njit(**JIT_OPTIONS)
def _score_weights(theta, dims):
    """The gate's and the heads' weights as one ``(D, M)`` matrix (columns: the K
    gate rows, then head ``k``'s C class rows for each ``k``) and their ``M``
    intercepts, so that one matrix product scores a whole minibatch (BLAS)."""
    n_experts, n_outputs = dims[2], dims[3]
    _, o_gate, o_heads, o_noise, _, n_inputs = _parameter_layout(dims)
    gate = theta[o_gate:o_heads].reshape((n_experts, n_inputs + 1))
    heads = theta[o_heads:o_noise].reshape((n_experts, n_outputs, n_inputs + 1))
    n_scores = n_experts * (1 + n_outputs)
    weights = np.empty((n_inputs, n_scores))
    intercepts = np.empty(n_scores)
    for k in range(n_experts):
        for j in range(n_inputs):
            weights[j, k] = gate[k, j]
        intercepts[k] = gate[k, n_inputs]
        for c in range(n_outputs):
            column = n_experts + k * n_outputs + c
            for j in range(n_inputs):
                weights[j, column] = heads[k, c, j]
            intercepts[column] = heads[k, c, n_inputs]
    return weights, intercepts


@njit(**JIT_OPTIONS)
def _gather(X, rows):
    """The rows ``rows`` of ``X`` as a C-contiguous block."""
    block = np.empty((rows.shape[0], X.shape[1]))
    for b in range(rows.shape[0]):
        i = rows[b]
        for j in range(X.shape[1]):
            block[b, j] = X[i, j]
    return block


@njit(**JIT_OPTIONS)
def _forward(X, y_class, y_value, rows, theta, dims, pre, features, routing, outputs,
             log_label, posterior, losses):
    """Forward pass over ``rows``; fills the per-row buffers and ``losses``.

    ``routing`` (B, K) gets r, ``outputs`` (B, K, C) the class probabilities (or the
    regression means in ``[:, :, 0]``), ``log_label`` (B, K) ``log p_k(y | x)``,
    ``posterior`` (B, K) h; ``pre`` (B, H) the hidden pre-activations. The linear
    parts (hidden layer, gate and head scores) are matrix products over the whole
    minibatch; the softmaxes and the log-sum-exp run row by row.
    """
    n_features, n_hidden, n_experts, n_outputs, regression, activation = (
        dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]
    )
    o_hidden, o_gate, o_heads, o_noise, _, n_inputs = _parameter_layout(dims)
    n_rows = rows.shape[0]
    if n_hidden > 0:
        block = _gather(X, rows)
        hidden = theta[o_hidden:o_gate].reshape((n_hidden, n_features + 1))
        hidden_weights = np.ascontiguousarray(hidden[:, :n_features].T)
        products = np.dot(block, hidden_weights)
        for b in range(n_rows):
            for h in range(n_hidden):
                acc = products[b, h] + hidden[h, n_features]
                pre[b, h] = acc
                if activation == RELU:
                    features[b, h] = acc if acc > 0.0 else 0.0
                else:
                    features[b, h] = np.tanh(acc)
    else:
        for b in range(n_rows):
            i = rows[b]
            for j in range(n_features):
                features[b, j] = X[i, j]
    weights, intercepts = _score_weights(theta, dims)
    scores = np.dot(features[:n_rows], weights)  # a C-contiguous view
    for b in range(n_rows):
        i = rows[b]
        # gate: log r_k, stored in routing until normalised
        peak = -np.inf
        for k in range(n_experts):
            acc = scores[b, k] + intercepts[k]
            routing[b, k] = acc
            if acc > peak:
                peak = acc
        total = 0.0
        for k in range(n_experts):
            total += np.exp(routing[b, k] - peak)
        log_norm = peak + np.log(total)
        for k in range(n_experts):
            routing[b, k] -= log_norm
        # experts
        for k in range(n_experts):
            first = n_experts + k * n_outputs
            if regression:
                acc = scores[b, first] + intercepts[first]
                outputs[b, k, 0] = acc
                scale = theta[o_noise + k]
                standardized = (y_value[i] - acc) * np.exp(-scale)
                log_label[b, k] = -0.5 * standardized * standardized - scale
                log_label[b, k] -= _HALF_LOG_2PI
            else:
                peak = -np.inf
                for c in range(n_outputs):
                    acc = scores[b, first + c] + intercepts[first + c]
                    outputs[b, k, c] = acc
                    if acc > peak:
                        peak = acc
                label_score = outputs[b, k, y_class[i]] - peak
                total = 0.0
                for c in range(n_outputs):
                    outputs[b, k, c] = np.exp(outputs[b, k, c] - peak)
                    total += outputs[b, k, c]
                for c in range(n_outputs):
                    outputs[b, k, c] /= total
                log_label[b, k] = label_score - np.log(total)
        # mixture loss and posterior, by log-sum-exp over the experts
        peak = -np.inf
        for k in range(n_experts):
            posterior[b, k] = routing[b, k] + log_label[b, k]
            if posterior[b, k] > peak:
                peak = posterior[b, k]
        total = 0.0
        for k in range(n_experts):
            posterior[b, k] = np.exp(posterior[b, k] - peak)
            total += posterior[b, k]
        for k in range(n_experts):
            posterior[b, k] /= total
            routing[b, k] = np.exp(routing[b, k])
        losses[b] = -(peak + np.log(total))


@njit(**JIT_OPTIONS)
def _relevance(dims, routing, outputs, log_label, losses, n_rows, regret_threshold,
               disagreement_threshold, relevant):
    """The routing-relevant rows of the filtered variant: regret or disagreement."""
    n_experts, n_outputs, regression = dims[2], dims[3], dims[4]
    for b in range(n_rows):
        best = -np.inf
        for k in range(n_experts):
            if log_label[b, k] > best:
                best = log_label[b, k]
        if losses[b] + best > regret_threshold:
            relevant[b] = True
            continue
        disagreement = 0.0
        for c in range(n_outputs if not regression else 1):
            mixture = 0.0
            for k in range(n_experts):
                mixture += routing[b, k] * outputs[b, k, c]
            for k in range(n_experts):
                spread = outputs[b, k, c] - mixture
                disagreement += routing[b, k] * spread * spread
        relevant[b] = disagreement > disagreement_threshold


@njit(**JIT_OPTIONS)
def _log_sum_exp(values, n):
    peak = -np.inf
    for s in range(n):
        if values[s] > peak:
            peak = values[s]
    total = 0.0
    for s in range(n):
        total += np.exp(values[s] - peak)
    return peak + np.log(total)


@njit(**JIT_OPTIONS)
def _log_chi2_plus_one(segment_losses, log_base, n, eta, scratch):
    """``log(1 + chi2(q || base))`` of the tilt ``q ∝ base exp(eta L)``."""
    for s in range(n):
        scratch[s] = eta * segment_losses[s] + log_base[s]
    log_norm = _log_sum_exp(scratch, n)
    for s in range(n):
        scratch[s] = 2.0 * (scratch[s] - log_norm) - log_base[s]
    return _log_sum_exp(scratch, n)


@njit(**JIT_OPTIONS)
def bounded_eta(segment_losses, log_base, n, eta, min_ess, scratch):
    """The largest ``eta' <= eta`` whose tilt keeps ``1 / (1 + chi2) >= min_ess``
    (``min_ess <= 0``: no bound), by bisection as AdversarialReweighting does."""
    if min_ess <= 0.0 or eta == 0.0:
        return eta
    limit = -np.log(min_ess)
    if _log_chi2_plus_one(segment_losses, log_base, n, eta, scratch) <= limit:
        return eta
    low, high = 0.0, eta
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if _log_chi2_plus_one(segment_losses, log_base, n, middle, scratch) <= limit:
            low = middle
        else:
            high = middle
    return low


@njit(**JIT_OPTIONS)
def batch_coefficients(losses, base, groups, relevant, n_rows, n_groups, tilt_mode,
                       eta, min_ess, filtered, filter_strength, coefficients,
                       tilt_weights, segment, segment_losses, log_base, scratch):
    """The batch objective's value and its derivative ``c_i`` in each loss.

    ``base`` (summing to one over the batch) are the data weights; ``groups`` splits
    the batch into parts tilted separately, each keeping its share of ``base`` (one
    part, or one per class for the class-conditional tilt). In a part ``P`` with
    share ``S`` and tilted set ``R`` (its relevant rows of positive weight; all of
    them unless ``filtered``), the weights are ``q = (1 - s) base + s S t`` with
    ``t ∝ base exp(eta' L)`` on ``R`` and ``s = filter_strength / (1 +
    filter_strength)`` (1 unless filtered); ``eta'`` is the largest value up to
    ``eta`` within the ``min_ess`` bound. The value is ``sum (1 - s) base L + s S
    DRO(L)`` (Danskin, derivative ``q``), or ``sum q L`` with ``q`` differentiated
    too (through the weights: derivative ``(1 - s) base + s S t (1 + eta' (L -
    sum_R t L))``). ``tilt_weights`` gets ``q``. Returns the value.
    """
    value = 0.0
    for b in range(n_rows):
        coefficients[b] = base[b]
        tilt_weights[b] = base[b]
    if tilt_mode == NO_TILT:
        for b in range(n_rows):
            value += base[b] * losses[b]
        return value
    tilted_share = filter_strength / (1.0 + filter_strength) if filtered else 1.0
    for g in range(n_groups):
        share = 0.0
        # not a literal 0: numba would also compile the helpers called with ``n``
        # for the type Literal[int](0) it gives ``n`` before the loop is typed
        n = np.intp(0)
        for b in range(n_rows):
            if groups[b] != g:
                continue
            share += base[b]
            if base[b] > 0.0 and (relevant[b] or not filtered):
                segment[n] = b
                n += 1
        if n == 0 or share <= 0.0:
            for b in range(n_rows):
                if groups[b] == g:
                    value += base[b] * losses[b]
            continue
        support = 0.0
        for s in range(n):
            support += base[segment[s]]
        mean = 0.0
        for s in range(n):
            b = segment[s]
            segment_losses[s] = losses[b]
            log_base[s] = np.log(base[b] / support)
            mean += base[b] / support * losses[b]
        eta_bound = bounded_eta(segment_losses, log_base, n, eta, min_ess, scratch)
        # the tilt, from losses centred at their mean (no overflow, and accurate
        # as eta' -> 0)
        spread = 0.0
        for s in range(n):
            scratch[s] = eta_bound * (segment_losses[s] - mean)
            if abs(scratch[s]) > spread:
                spread = abs(scratch[s])
            scratch[s] += log_base[s]
        log_norm = _log_sum_exp(scratch, n)
        tilted_mean = 0.0
        for s in range(n):
            scratch[s] = np.exp(scratch[s] - log_norm)  # t
            tilted_mean += scratch[s] * segment_losses[s]
        mass = tilted_share * share
        for b in range(n_rows):
            if groups[b] == g:
                coefficients[b] = (1.0 - tilted_share) * base[b]
                tilt_weights[b] = coefficients[b]
                value += coefficients[b] * losses[b]
        for s in range(n):
            b = segment[s]
            tilt_weights[b] += mass * scratch[s]
            if tilt_mode == DANSKIN:
                coefficients[b] += mass * scratch[s]
            else:
                coefficients[b] += mass * scratch[s] * (
                    1.0 + eta_bound * (segment_losses[s] - tilted_mean)
                )
        if tilt_mode == DANSKIN:
            if eta_bound == 0.0:
                dro = mean
            elif spread < 0.5:
                centred_sum = 0.0
                for s in range(n):
                    centred = eta_bound * (segment_losses[s] - mean)
                    centred_sum += np.exp(log_base[s]) * np.expm1(centred)
                dro = mean + np.log1p(centred_sum) / eta_bound
            else:
                dro = mean + (log_norm) / eta_bound
            value += mass * dro
        else:
            value += mass * tilted_mean
    return value


@njit(**JIT_OPTIONS)
def _backward(X, y_class, y_value, rows, theta, dims, pre, features, routing, outputs,
              posterior, coefficients, grad, feature_grad):
    """Gradient of ``sum_b c_b L_b`` over ``rows`` into ``grad`` (overwritten).

    The per-row derivatives in the gate's and heads' scores are gathered in one
    ``(B, M)`` matrix (:func:`_score_weights`'s columns); the weights' gradient, and
    through a hidden layer the features', are matrix products over the minibatch.
    """
    n_features, n_hidden, n_experts, n_outputs, regression, activation = (
        dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]
    )
    o_hidden, o_gate, o_heads, o_noise, o_end, n_inputs = _parameter_layout(dims)
    n_rows = rows.shape[0]
    n_scores = n_experts * (1 + n_outputs)
    grad[:] = 0.0
    grad_hidden = grad[o_hidden:o_gate].reshape((n_hidden, n_features + 1))
    grad_gate = grad[o_gate:o_heads].reshape((n_experts, n_inputs + 1))
    grad_heads = grad[o_heads:o_noise].reshape((n_experts, n_outputs, n_inputs + 1))
    residuals = np.zeros((n_rows, n_scores))
    for b in range(n_rows):
        coefficient = coefficients[b]
        if coefficient == 0.0:
            continue
        i = rows[b]
        for k in range(n_experts):
            residuals[b, k] = coefficient * (routing[b, k] - posterior[b, k])
            weight = coefficient * posterior[b, k]
            if weight == 0.0:
                continue
            first = n_experts + k * n_outputs
            if regression:
                inverse_scale = np.exp(-theta[o_noise + k])
                standardized = (y_value[i] - outputs[b, k, 0]) * inverse_scale
                residuals[b, first] = -weight * standardized * inverse_scale
                grad[o_noise + k] += weight * (1.0 - standardized * standardized)
            else:
                for c in range(n_outputs):
                    residual = outputs[b, k, c]
                    if c == y_class[i]:
                        residual -= 1.0
                    residuals[b, first + c] = residual * weight
    products = np.dot(residuals.T, features[:n_rows])  # (M, D)
    for k in range(n_experts):
        total = 0.0
        for b in range(n_rows):
            total += residuals[b, k]
        grad_gate[k, n_inputs] = total
        for j in range(n_inputs):
            grad_gate[k, j] = products[k, j]
        for c in range(n_outputs):
            column = n_experts + k * n_outputs + c
            total = 0.0
            for b in range(n_rows):
                total += residuals[b, column]
            grad_heads[k, c, n_inputs] = total
            for j in range(n_inputs):
                grad_heads[k, c, j] = products[column, j]
    if n_hidden > 0:
        weights, _ = _score_weights(theta, dims)
        through = np.dot(residuals, np.ascontiguousarray(weights.T))  # (B, H)
        for b in range(n_rows):
            for h in range(n_hidden):
                if activation == RELU:
                    derivative = 1.0 if pre[b, h] > 0.0 else 0.0
                else:
                    derivative = 1.0 - features[b, h] * features[b, h]
                through[b, h] *= derivative
        block = _gather(X, rows)
        hidden_products = np.dot(np.ascontiguousarray(through.T), block)  # (H, d)
        for h in range(n_hidden):
            total = 0.0
            for b in range(n_rows):
                total += through[b, h]
            grad_hidden[h, n_features] = total
            for j in range(n_features):
                grad_hidden[h, j] = hidden_products[h, j]


@njit(**JIT_OPTIONS)
def _allocate(n_rows, dims):
    """The per-batch scratch buffers (one allocation per kernel call)."""
    n_features, n_hidden, n_experts, n_outputs = dims[0], dims[1], dims[2], dims[3]
    n_inputs = n_hidden if n_hidden > 0 else n_features
    pre = np.empty((n_rows, max(n_hidden, 1)))
    features = np.empty((n_rows, n_inputs))
    routing = np.empty((n_rows, n_experts))
    outputs = np.empty((n_rows, n_experts, n_outputs))
    log_label = np.empty((n_rows, n_experts))
    posterior = np.empty((n_rows, n_experts))
    return pre, features, routing, outputs, log_label, posterior


@njit(**JIT_OPTIONS)
def _batch_objective(X, y_class, y_value, sample_weight, groups, rows, theta, dims,
                     n_groups, tilt_mode, eta, min_ess, filtered, filter_strength,
                     regret_threshold, disagreement_threshold, grad, tilt_weights):
    """The tilted objective of one minibatch and its gradient (no penalty).

    The data weights of ``rows`` are normalised to sum one in the batch; the value
    and ``coefficients`` are :func:`batch_coefficients`'s, ``eta'`` held at its
    bounded value (the bound is not differentiated). Writes the gradient into
    ``grad`` and the weights ``q`` into ``tilt_weights``; returns the value, or NaN
    when the batch has no weight.
    """
    n_rows = rows.shape[0]
    pre, features, routing, outputs, log_label, posterior = _allocate(n_rows, dims)
    losses = np.empty(n_rows)
    base = np.empty(n_rows)
    relevant = np.zeros(n_rows, dtype=np.bool_)
    coefficients = np.empty(n_rows)
    row_groups = np.empty(n_rows, dtype=np.intp)
    segment = np.empty(n_rows, dtype=np.intp)
    segment_losses = np.empty(n_rows)
    log_base = np.empty(n_rows)
    scratch = np.empty(n_rows)
    feature_grad = np.empty(pre.shape[1])
    return _batch_step(
        X, y_class, y_value, sample_weight, groups, rows, theta, dims, n_groups,
        tilt_mode, eta, min_ess, filtered, filter_strength, regret_threshold,
        disagreement_threshold, grad, tilt_weights, pre, features, routing, outputs,
        log_label, posterior, losses, base, relevant, coefficients, row_groups,
        segment, segment_losses, log_base, scratch, feature_grad,
    )


@njit(**JIT_OPTIONS)
def _batch_step(X, y_class, y_value, sample_weight, groups, rows, theta, dims,
                n_groups, tilt_mode, eta, min_ess, filtered, filter_strength,
                regret_threshold, disagreement_threshold, grad, tilt_weights, pre,
                features, routing, outputs, log_label, posterior, losses, base,
                relevant, coefficients, row_groups, segment, segment_losses,
                log_base, scratch, feature_grad):
    n_rows = rows.shape[0]
    total = 0.0
    for b in range(n_rows):
        total += sample_weight[rows[b]]
    if not total > 0.0:
        return np.nan
    for b in range(n_rows):
        base[b] = sample_weight[rows[b]] / total
        row_groups[b] = groups[rows[b]]
    _forward(X, y_class, y_value, rows, theta, dims, pre, features, routing, outputs,
             log_label, posterior, losses)
    if filtered and tilt_mode != NO_TILT:
        _relevance(dims, routing, outputs, log_label, losses, n_rows,
                   regret_threshold, disagreement_threshold, relevant)
    value = batch_coefficients(
        losses, base, row_groups, relevant, n_rows, n_groups, tilt_mode, eta, min_ess,
        filtered, filter_strength, coefficients, tilt_weights, segment,
        segment_losses, log_base, scratch,
    )
    _backward(X, y_class, y_value, rows, theta, dims, pre, features, routing, outputs,
              posterior, coefficients, grad, feature_grad)
    return value


@njit(**JIT_OPTIONS)
def _adam_update(theta, grad, first_moment, second_moment, l2, decay, free,
                 learning_rate, beta1, beta2, epsilon, step):
    """One AdamW step (step ``step``, counted from 1) on the free coordinates.

    ``l2`` is a coupled penalty (added to the gradient: the experts' and the gate's
    ``1 / (C W)``), ``decay`` AdamW's decoupled weight decay (``theta -= lr decay
    theta``, as ``torch.optim.AdamW``).
    """
    correction1 = 1.0 - beta1**step
    correction2 = 1.0 - beta2**step
    for p in range(theta.shape[0]):
        if not free[p]:
            continue
        g = grad[p] + l2[p] * theta[p]
        first_moment[p] = beta1 * first_moment[p] + (1.0 - beta1) * g
        second_moment[p] = beta2 * second_moment[p] + (1.0 - beta2) * g * g
        update = (first_moment[p] / correction1) / (
            np.sqrt(second_moment[p] / correction2) + epsilon
        )
        theta[p] -= learning_rate * (update + decay[p] * theta[p])


@njit(**JIT_OPTIONS)
def _adam_epoch(X, y_class, y_value, sample_weight, groups, order, batch_size, theta,
                first_moment, second_moment, l2, decay, free, dims, learning_rate,
                total_steps, step, beta1, beta2, epsilon, n_groups, tilt_mode, eta,
                min_ess, filtered, filter_strength, regret_threshold,
                disagreement_threshold, log_noise_floor, used_weights):
    """One epoch of minibatch AdamW over the rows in ``order``.

    Batches are consecutive slices of ``order`` of ``batch_size`` rows (the last one
    shorter). The learning rate of step ``t`` (counted over the whole training, from
    ``step``) is ``learning_rate`` when ``total_steps <= 0``, else the cosine
    schedule ``learning_rate (1 + cos(pi t / total_steps)) / 2``. After each step the
    log noise scales are floored at ``log_noise_floor`` (regression). Each row's
    tilt weight times its batch's share of the epoch's data weight goes into
    ``used_weights``.

    Returns
    -------
    loss : float
        The data-weighted mean of the batch objectives over the epoch.
    step : int
        The step counter after the epoch.
    """
    n_rows = order.shape[0]
    size = min(batch_size, n_rows)
    pre, features, routing, outputs, log_label, posterior = _allocate(size, dims)
    losses = np.empty(size)
    base = np.empty(size)
    relevant = np.zeros(size, dtype=np.bool_)
    coefficients = np.empty(size)
    row_groups = np.empty(size, dtype=np.intp)
    segment = np.empty(size, dtype=np.intp)
    segment_losses = np.empty(size)
    log_base = np.empty(size)
    scratch = np.empty(size)
    feature_grad = np.empty(pre.shape[1])
    tilt_weights = np.empty(size)
    grad = np.empty(theta.shape[0])
    o_noise, o_end = _parameter_layout(dims)[3], _parameter_layout(dims)[4]
    epoch_total = 0.0
    for b in range(n_rows):
        epoch_total += sample_weight[order[b]]
    epoch_value = 0.0
    for start in range(0, n_rows, size):
        rows = order[start : min(start + size, n_rows)]
        n = rows.shape[0]
        relevant[:] = False
        value = _batch_step(
            X, y_class, y_value, sample_weight, groups, rows, theta, dims, n_groups,
            tilt_mode, eta, min_ess, filtered, filter_strength, regret_threshold,
            disagreement_threshold, grad, tilt_weights, pre, features, routing,
            outputs, log_label, posterior, losses, base, relevant, coefficients,
            row_groups, segment, segment_losses, log_base, scratch, feature_grad,
        )
        if np.isnan(value):
            for b in range(n):
                used_weights[rows[b]] = 0.0
            continue  # a batch without weight: no step
        share = 0.0
        for b in range(n):
            share += sample_weight[rows[b]]
        share /= epoch_total
        epoch_value += share * value
        for b in range(n):
            used_weights[rows[b]] = share * tilt_weights[b]
        rate = learning_rate
        if total_steps > 0:
            rate *= 0.5 * (1.0 + np.cos(np.pi * min(step, total_steps) / total_steps))
        step += 1
        _adam_update(theta, grad, first_moment, second_moment, l2, decay, free, rate,
                    beta1, beta2, epsilon, step)
        for p in range(o_noise, o_end):
            if theta[p] < log_noise_floor:
                theta[p] = log_noise_floor
    return epoch_value, step


@njit(**JIT_OPTIONS)
def _mixture_losses(X, y_class, y_value, theta, dims, losses):
    """The per-sample losses ``L_i`` of all rows, in blocks of 1024 rows."""
    n_samples = X.shape[0]
    block = min(1024, max(n_samples, 1))
    pre, features, routing, outputs, log_label, posterior = _allocate(block, dims)
    block_losses = np.empty(block)
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        rows = np.arange(start, stop)
        _forward(X, y_class, y_value, rows, theta, dims, pre, features, routing,
                 outputs, log_label, posterior, block_losses)
        losses[start:stop] = block_losses[: stop - start]
    return losses


# X keeps float32 (as_float_input): the solver reads the data in place, a memory
# map too, and a float64 copy of it is what the stochastic solver exists to avoid
_as_index_array = functools.partial(as_array, dtype=np.intp)
_as_flags = functools.partial(as_input, dtype=np.bool_)
_BATCH_ARGUMENTS = {
    "X": as_float_input, "y_class": as_index_input, "y_value": as_input,
    "sample_weight": as_input, "groups": as_index_input, "dims": as_index_input,
    "n_groups": int, "tilt_mode": int, "eta": float, "min_ess": float,
    "filtered": bool, "filter_strength": float, "regret_threshold": float,
    "disagreement_threshold": float,
}
# theta and the row indices writable, as adam_epoch has them (it updates theta), so
# that the forward and backward passes compile once for all three kernels
batch_objective = boundary(
    _batch_objective, **_BATCH_ARGUMENTS, rows=_as_index_array, theta=as_array,
    grad=as_output, tilt_weights=as_output,
)
adam_epoch = boundary(
    _adam_epoch, **_BATCH_ARGUMENTS, order=_as_index_array, batch_size=int,
    theta=as_output, first_moment=as_output, second_moment=as_output, l2=as_input,
    decay=as_input, free=_as_flags,
    learning_rate=float, total_steps=int, step=int, beta1=float, beta2=float,
    epsilon=float, log_noise_floor=float, used_weights=as_output,
)
mixture_losses = boundary(
    _mixture_losses, X=as_float_input, y_class=as_index_input, y_value=as_input,
    theta=as_array, dims=as_index_input, losses=as_output,
)
parameter_layout = boundary(_parameter_layout, dims=as_index_input)
adam_update = boundary(
    _adam_update, theta=as_output, grad=as_output, first_moment=as_output,
    second_moment=as_output, l2=as_input, decay=as_input, free=_as_flags,
    learning_rate=float, beta1=float, beta2=float, epsilon=float, step=int,
)
