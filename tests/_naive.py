"""Plain NumPy references of the numba kernels in ``skmoe._kernels.gating`` and
``skmoe._kernels.joint``.

Written for clarity, not speed: the whole score matrix is formed at once.
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax, logsumexp


def _dense(X):
    """The references densify sparse input: clarity over memory."""
    return X.toarray() if sp.issparse(X) else X


def softmax_loss_grad(X, targets, sample_weight, coef, intercept):
    X = np.asarray(_dense(X), dtype=np.float64)
    scores = X @ coef.T + intercept
    log_proba = log_softmax(scores, axis=1)
    loss = -np.sum(sample_weight[:, None] * targets * log_proba)
    residual = sample_weight[:, None] * (
        targets.sum(axis=1, keepdims=True) * np.exp(log_proba) - targets
    )
    return loss, residual.T @ X, residual.sum(axis=0)


def softmax_hessp(X, targets, sample_weight, coef, intercept, vec_coef, vec_intercept):
    X = np.asarray(_dense(X), dtype=np.float64)
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


def _stochastic_blocks(theta, dims):
    """The hidden, gate, heads and log-noise blocks of ``theta`` (the layout of
    ``skmoe._kernels.stochastic``)."""
    n_features, n_hidden, n_experts, n_outputs, regression, _ = (int(v) for v in dims)
    n_inputs = n_hidden if n_hidden else n_features
    sizes = [
        n_hidden * (n_features + 1),
        n_experts * (n_inputs + 1),
        n_experts * n_outputs * (n_inputs + 1),
        n_experts if regression else 0,
    ]
    ends = np.cumsum(sizes)
    starts = ends - sizes
    shapes = [
        (n_hidden, n_features + 1),
        (n_experts, n_inputs + 1),
        (n_experts, n_outputs, n_inputs + 1),
        (sizes[3],),
    ]
    return [
        theta[start:end].reshape(shape)
        for start, end, shape in zip(starts, ends, shapes, strict=True)
    ]


def stochastic_forward(X, y_class, y_value, theta, dims):
    """Forward pass of the stochastic solver's model, all rows at once.

    Returns a dict with the features, pre-activations, routing, expert outputs
    (probabilities or means), ``log p_k(y | x)``, posterior and losses.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples = X.shape[0]
    hidden, gate, heads, noise = _stochastic_blocks(theta, dims)
    regression, activation = int(dims[4]), int(dims[5])
    ones = np.ones((n_samples, 1))
    pre = None
    if hidden.shape[0]:
        pre = np.hstack([X, ones]) @ hidden.T
        features = np.maximum(pre, 0.0) if activation == 1 else np.tanh(pre)
    else:
        features = X
    with_bias = np.hstack([features, ones])
    log_routing = log_softmax(with_bias @ gate.T, axis=1)
    scores = np.einsum("nd,kcd->nkc", with_bias, heads)
    if regression:
        outputs = scores
        standardized = (y_value[:, None] - scores[:, :, 0]) * np.exp(-noise)
        log_label = -0.5 * standardized**2 - noise - 0.5 * np.log(2 * np.pi)
    else:
        log_proba = log_softmax(scores, axis=2)
        outputs = np.exp(log_proba)
        log_label = log_proba[np.arange(n_samples), :, y_class]
    log_joint = log_routing + log_label
    losses = -logsumexp(log_joint, axis=1)
    return {
        "pre": pre,
        "features": features,
        "routing": np.exp(log_routing),
        "outputs": outputs,
        "log_label": log_label,
        "posterior": np.exp(log_joint + losses[:, None]),
        "losses": losses,
    }


def stochastic_coefficients(
    losses, base, groups, relevant, n_groups, tilt_mode, eta, min_ess, filtered,
    filter_strength,
):
    """``skmoe._kernels.stochastic.batch_coefficients``: value, coefficients and
    weights, with eta' from ``AdversarialReweighting``'s own bisection."""
    from skmoe.reweighting._adversarial import _bounded_eta

    coefficients = base.copy()
    weights = base.copy()
    if tilt_mode == 0:
        return float(base @ losses), coefficients, weights
    share_tilted = filter_strength / (1 + filter_strength) if filtered else 1.0
    value = 0.0
    for group in range(n_groups):
        members = groups == group
        support = members & (base > 0) & (relevant | (not filtered))
        share = base[members].sum()
        if not support.any() or share <= 0:
            value += float(base[members] @ losses[members])
            continue
        log_base = np.log(base[support] / base[support].sum())
        eta_bound = _bounded_eta(
            losses[support], log_base, eta, None if min_ess <= 0 else min_ess
        )
        tilt = np.exp(log_softmax(eta_bound * losses[support] + log_base))
        tilted_mean = float(tilt @ losses[support])
        mass = share_tilted * share
        coefficients[members] *= 1 - share_tilted
        weights[members] *= 1 - share_tilted
        value += float(coefficients[members] @ losses[members])
        weights[support] += mass * tilt
        if tilt_mode == 1:
            coefficients[support] += mass * tilt
            dro = (
                float(np.exp(log_base) @ losses[support])
                if eta_bound == 0
                else logsumexp(eta_bound * losses[support] + log_base) / eta_bound
            )
            value += mass * dro
        else:
            coefficients[support] += (
                mass * tilt * (1 + eta_bound * (losses[support] - tilted_mean))
            )
            value += mass * tilted_mean
    return value, coefficients, weights


def stochastic_batch_objective(
    X, y_class, y_value, sample_weight, groups, rows, theta, dims, n_groups,
    tilt_mode, eta, min_ess, filtered, filter_strength, regret_threshold,
    disagreement_threshold,
):
    """``skmoe._kernels.stochastic.batch_objective``: value, gradient, weights."""
    X = np.asarray(X, dtype=np.float64)[rows]
    y_class = y_class[rows]
    y_value = y_value[rows] if y_value.shape[0] > 1 else y_value
    regression = int(dims[4])
    if regression:
        y_value = y_value.reshape(-1)
    forward = stochastic_forward(X, y_class, y_value, theta, dims)
    base = sample_weight[rows] / sample_weight[rows].sum()
    losses = forward["losses"]
    routing, posterior, outputs = (
        forward["routing"], forward["posterior"], forward["outputs"]
    )
    regret = losses + forward["log_label"].max(axis=1) > regret_threshold
    mixture = np.einsum("nk,nkc->nc", routing, outputs)
    spread = ((outputs - mixture[:, None, :]) ** 2).sum(axis=2)
    relevant = regret | ((routing * spread).sum(axis=1) > disagreement_threshold)
    value, coefficients, weights = stochastic_coefficients(
        losses, base, groups[rows], relevant, n_groups, tilt_mode, eta, min_ess,
        filtered, filter_strength,
    )
    hidden, gate, heads, noise = _stochastic_blocks(theta, dims)
    features = forward["features"]
    with_bias = np.hstack([features, np.ones((X.shape[0], 1))])
    gate_residual = coefficients[:, None] * (routing - posterior)
    grad_gate = gate_residual.T @ with_bias
    grad_noise = np.zeros_like(noise)
    if regression:
        standardized = (y_value[:, None] - outputs[:, :, 0]) * np.exp(-noise)
        weight = coefficients[:, None] * posterior
        head_residual = (-weight * standardized * np.exp(-noise))[:, :, None]
        grad_noise = (weight * (1 - standardized**2)).sum(axis=0)
    else:
        one_hot = np.eye(heads.shape[1])[y_class]
        head_residual = (
            (coefficients[:, None] * posterior)[:, :, None]
            * (outputs - one_hot[:, None, :])
        )
    grad_heads = np.einsum("nkc,nd->kcd", head_residual, with_bias)
    grad_hidden = np.zeros_like(hidden)
    if hidden.shape[0]:
        feature_grad = gate_residual @ gate[:, :-1] + np.einsum(
            "nkc,kcd->nd", head_residual, heads[:, :, :-1]
        )
        if int(dims[5]) == 1:
            derivative = (forward["pre"] > 0).astype(float)
        else:
            derivative = 1 - features**2
        residual = feature_grad * derivative
        grad_hidden = residual.T @ np.hstack([X, np.ones((X.shape[0], 1))])
    grad = np.concatenate(
        [grad_hidden.ravel(), grad_gate.ravel(), grad_heads.ravel(), grad_noise]
    )
    return value, grad, weights


def adam_update(
    theta, grad, first_moment, second_moment, l2, decay, free, learning_rate, beta1,
    beta2, epsilon, step,
):
    """``skmoe._kernels.stochastic.adam_update`` (returns new arrays)."""
    g = grad + l2 * theta
    first = np.where(free, beta1 * first_moment + (1 - beta1) * g, first_moment)
    second = np.where(free, beta2 * second_moment + (1 - beta2) * g**2, second_moment)
    update = (first / (1 - beta1**step)) / (
        np.sqrt(second / (1 - beta2**step)) + epsilon
    )
    theta = np.where(free, theta - learning_rate * (update + decay * theta), theta)
    return theta, first, second


def adam_epoch(
    X, y_class, y_value, sample_weight, groups, order, batch_size, theta,
    first_moment, second_moment, l2, decay, free, dims, learning_rate, total_steps,
    step, beta1, beta2, epsilon, n_groups, tilt_mode, eta, min_ess, filtered,
    filter_strength, regret_threshold, disagreement_threshold, log_noise_floor,
):
    """``skmoe._kernels.stochastic.adam_epoch``: returns the mean objective, the
    step, the new parameters and moments, and the used weights."""
    theta, first, second = theta.copy(), first_moment.copy(), second_moment.copy()
    used = np.zeros(sample_weight.shape[0])
    total = sample_weight[order].sum()
    epoch_value = 0.0
    n_noise = theta.size - sum(
        block.size for block in _stochastic_blocks(theta, dims)[:3]
    )
    for start in range(0, order.size, batch_size):
        rows = order[start : start + batch_size]
        value, grad, weights = stochastic_batch_objective(
            X, y_class, y_value, sample_weight, groups, rows, theta, dims, n_groups,
            tilt_mode, eta, min_ess, filtered, filter_strength, regret_threshold,
            disagreement_threshold,
        )
        share = sample_weight[rows].sum() / total
        epoch_value += share * value
        used[rows] = share * weights
        rate = learning_rate
        if total_steps > 0:
            rate *= 0.5 * (1 + np.cos(np.pi * min(step, total_steps) / total_steps))
        step += 1
        theta, first, second = adam_update(
            theta, grad, first, second, l2, decay, free, rate, beta1, beta2,
            epsilon, step,
        )
        if n_noise:
            theta[-n_noise:] = np.maximum(theta[-n_noise:], log_noise_floor)
    return epoch_value, step, theta, first, second, used
