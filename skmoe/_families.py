"""Likelihoods of regression experts: Gaussian, Poisson, Gamma and Tweedie.

A regression expert predicts the mean ``mu_k(x)`` of ``y``; its family says how
likely ``y`` is around that mean. Each family here gives the log density, the
variance (for ``predict(return_std=True)``), the dispersion that maximises the
weighted likelihood in an M-step (a closed form or a one-dimensional solve), the
targets it accepts, and the expert class that matches it in scikit-learn
(``PoissonRegressor``, ``GammaRegressor``, ``TweedieRegressor``), which is what
``likelihood="auto"`` reads. The dispersion is Gaussian ``sigma^2``, Gamma ``1 /
shape``, Tweedie ``phi`` in ``Var(y) = phi mu^p``; Poisson has none.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import digamma, gammaln, logsumexp, polygamma
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.pipeline import Pipeline

# Means are floored here before a log: an expert that is not a log-link GLM can
# predict a non-positive mean for a Poisson, Gamma or Tweedie likelihood.
_MIN_MEAN = 1e-300
# The Gamma shape (one over the dispersion) is capped here: an expert that fits its
# routed view exactly would otherwise make the likelihood infinite.
_MAX_GAMMA_SHAPE = 1e8
# Terms of the Tweedie series evaluated per sample (see _tweedie_series_log_density)
_MAX_SERIES_TERMS = 401


def _final_step(estimator):
    """The model a Pipeline ends with; the estimator itself otherwise."""
    if isinstance(estimator, Pipeline):
        return _final_step(estimator.steps[-1][1])
    return estimator


def family_of_expert(estimator):
    """The family (and Tweedie power) that matches a regressor, for ``"auto"``.

    Returns
    -------
    family : {"gaussian", "poisson", "gamma", "tweedie"}
    power : float or None
        The Tweedie power for ``"tweedie"``, else None.
    """
    model = _final_step(estimator)
    if isinstance(model, PoissonRegressor):
        return "poisson", None
    if isinstance(model, GammaRegressor):
        return "gamma", None
    if isinstance(model, TweedieRegressor):
        return tweedie_family(model.power)
    return "gaussian", None


def tweedie_family(power):
    """The family of a Tweedie power: 0, 1 and 2 are Gaussian, Poisson and Gamma."""
    if power == 0:
        return "gaussian", None
    if power == 1:
        return "poisson", None
    if power == 2:
        return "gamma", None
    if 1 < power < 2:
        return "tweedie", float(power)
    raise ValueError(
        "Tweedie experts need power 0 (Gaussian), 1 (Poisson), 2 (Gamma) or in "
        f"(1, 2) (compound Poisson-Gamma) for their likelihood; got power={power!r}."
    )


def check_targets(family, y):
    """Raise a clear error if ``y`` lies outside the family's support."""
    if family == "poisson" and np.any(y < 0):
        raise ValueError(
            "likelihood='poisson' needs counts y >= 0; got min(y)="
            f"{float(np.min(y))!r}."
        )
    if family == "gamma" and np.any(y <= 0):
        raise ValueError(
            f"likelihood='gamma' needs y > 0; got min(y)={float(np.min(y))!r}."
        )
    if family == "tweedie" and np.any(y < 0):
        raise ValueError(
            f"likelihood='tweedie' needs y >= 0; got min(y)={float(np.min(y))!r}."
        )


def _tweedie_series_log_density(y, mu, dispersion, power):
    """Log density of the compound Poisson-Gamma (1 < p < 2) at ``y`` (n, K).

    Dunn and Smyth (2005), "Series evaluation of Tweedie exponential dispersion
    model densities": for y > 0, ``log f = log W - log y + (y theta - kappa) /
    phi`` with ``W = sum_j W_j``, summed in log space over the terms around the
    largest one; at y = 0, the Poisson probability of no Gamma jump.
    """
    y = np.broadcast_to(y, mu.shape)
    mu = np.maximum(mu, _MIN_MEAN)
    phi = np.broadcast_to(dispersion, mu.shape)
    one_minus, two_minus = 1.0 - power, 2.0 - power
    # the exponential-family part, y theta - kappa(theta), over phi
    exponent = (y * mu**one_minus / one_minus - mu**two_minus / two_minus) / phi
    out = np.array(exponent, dtype=np.float64)
    positive = y > 0
    if np.any(positive):
        yp, phip = y[positive], phi[positive]
        alpha = two_minus / one_minus  # negative
        # log W_j = j * base - lgamma(j + 1) - lgamma(-j alpha)
        base = (
            -alpha * np.log(yp)
            + alpha * np.log(power - 1.0)
            - (1.0 - alpha) * np.log(phip)
            - np.log(two_minus)
        )
        j_max = np.maximum(1.0, yp**two_minus / (phip * two_minus))
        # the terms decay faster than geometrically away from j_max: a window of a
        # few standard deviations of a Poisson-like spread covers the sum
        half_width = np.ceil(10.0 * np.sqrt(j_max) + 15.0)
        low = np.maximum(1.0, np.floor(j_max - half_width))
        # the terms are log-concave in j with a spread of at most sqrt(j_max): a
        # window of more than _MAX_SERIES_TERMS is summed on an even grid (step
        # far below the spread) times the step, so the memory stays bounded
        step = np.maximum(1.0, np.ceil(2.0 * half_width / (_MAX_SERIES_TERMS - 1)))
        n_terms = int(min(np.max(np.ceil(2.0 * half_width / step)) + 1,
                          _MAX_SERIES_TERMS))
        j = low[:, None] + step[:, None] * np.arange(n_terms)[None, :]
        log_terms = (
            j * base[:, None] - gammaln(j + 1.0) - gammaln(-j * alpha)
            + np.log(step)[:, None]
        )
        out[positive] += logsumexp(log_terms, axis=1) - np.log(yp)
    return out


def log_density(family, y, mu, dispersion, power=None):
    """``log p(y_i | mu_ik)`` for every sample and expert, shape (n, K).

    Parameters
    ----------
    family : {"gaussian", "poisson", "gamma", "tweedie"}
    y : ndarray of shape (n_samples,)
    mu : ndarray of shape (n_samples, n_experts)
        The experts' means.
    dispersion : ndarray of shape (n_experts,) or None
        Gaussian variance, Gamma ``1 / shape``, Tweedie ``phi``; None for Poisson.
    power : float, default=None
        The Tweedie power in (1, 2).
    """
    y_col = y[:, None]
    if family == "gaussian":
        return (
            -0.5 * (y_col - mu) ** 2 / dispersion
            - 0.5 * np.log(dispersion)
            - 0.5 * np.log(2 * np.pi)
        )
    if family == "poisson":
        mu = np.maximum(mu, _MIN_MEAN)
        return y_col * np.log(mu) - mu - gammaln(y_col + 1.0)
    if family == "gamma":
        mu = np.maximum(mu, _MIN_MEAN)
        shape = 1.0 / dispersion
        ratio = y_col / mu
        return shape * np.log(shape * ratio) - shape * ratio - np.log(y_col) - gammaln(
            shape
        )
    return _tweedie_series_log_density(y_col, mu, dispersion, power)


def variance(family, mu, dispersion, power=None):
    """Variance of ``y`` around each expert's mean ``mu``, shape of ``mu``."""
    if family == "gaussian":
        return np.broadcast_to(dispersion, mu.shape)
    if family == "poisson":
        return np.maximum(mu, 0.0)
    if family == "gamma":
        return dispersion * mu**2
    return dispersion * np.maximum(mu, 0.0) ** power


def _gamma_shape(mean_deviance):
    """The shape ``a`` that solves ``log a - digamma(a) = d``: the Gamma MLE.

    ``d`` is the weighted mean of ``y / mu - log(y / mu) - 1`` (half the mean unit
    deviance). Newton's method in ``a`` from Minka's closed-form approximation
    converges in a few steps.
    """
    d = mean_deviance
    if d <= 1.0 / (2.0 * _MAX_GAMMA_SHAPE):
        return _MAX_GAMMA_SHAPE
    shape = (3.0 - d + np.sqrt((d - 3.0) ** 2 + 24.0 * d)) / (12.0 * d)
    for _ in range(50):
        step = (np.log(shape) - digamma(shape) - d) / (
            1.0 / shape - polygamma(1, shape)
        )
        shape = max(shape - step, shape / 10.0)
        if abs(step) <= 1e-12 * shape:
            break
    return min(shape, _MAX_GAMMA_SHAPE)


def fit_dispersion(family, y, mu, weights, power=None, floor=0.0):
    """The dispersion of each expert that maximises its weighted log-likelihood.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    mu : ndarray of shape (n_samples, n_experts)
    weights : ndarray of shape (n_samples, n_experts)
        The weights each expert was fitted with.
    floor : float
        Lower bound of the Gaussian variance.

    Returns
    -------
    dispersion : ndarray of shape (n_experts,) or None
    """
    if family == "poisson":
        return None
    totals = np.maximum(weights.sum(axis=0), np.finfo(float).tiny)
    if family == "gaussian":
        squares = (weights * (y[:, None] - mu) ** 2).sum(axis=0)
        return np.maximum(squares / totals, floor)
    if family == "gamma":
        ratio = y[:, None] / np.maximum(mu, _MIN_MEAN)
        deviance = (weights * (ratio - np.log(ratio) - 1.0)).sum(axis=0) / totals
        return np.array([1.0 / _gamma_shape(d) for d in deviance])
    dispersion = np.empty(mu.shape[1])
    for k in range(mu.shape[1]):
        used = weights[:, k] > 0

        def negative_log_likelihood(log_phi, k=k, used=used):
            density = _tweedie_series_log_density(
                y[used, None], mu[used, k, None], np.exp(log_phi), power
            )
            return -float(weights[used, k] @ density[:, 0])

        # the Pearson estimate brackets the maximum within a few orders of magnitude
        variance_function = np.maximum(mu[:, k], _MIN_MEAN) ** power
        pearson = float(
            (weights[:, k] * (y - mu[:, k]) ** 2 / variance_function).sum() / totals[k]
        )
        centre = np.log(max(pearson, 1e-8))
        result = minimize_scalar(
            negative_log_likelihood,
            bounds=(centre - 7.0, centre + 7.0),
            method="bounded",
            options={"xatol": 1e-8},
        )
        dispersion[k] = np.exp(result.x)
    return dispersion
