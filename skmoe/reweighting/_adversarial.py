"""Adversarial (KL-DRO) sample weights over per-sample losses, tilted and filtered.

:class:`AdversarialReweighting` turns the per-sample losses of a model into the
sample weights of the entropy-regularised worst case, ``q ∝ w exp(eta L)``, inside
random minibatches or over the whole set, optionally only on routing-relevant samples
(the filtered variant), with a bound on how far ``q`` may move from the data's own
weights (the safeguard that keeps underfitting experts from collapsing onto a few
hard samples). The mixtures call it between EM iterations;
:func:`effective_sample_size` measures how concentrated the weights are.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

# Bisection steps on eta for the divergence bound: eta' is found to 2**-50 of eta.
_BISECTION_STEPS = 50


@validate_params(
    {"weights": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def effective_sample_size(weights):
    """Kish's effective sample size ``(sum q)^2 / sum q^2`` of non-negative weights.

    It is ``n`` for equal weights and 1 when a single sample holds all the weight.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Non-negative weights, not all zero.

    Returns
    -------
    ess : float
        The effective sample size.

    Examples
    --------
    >>> from skmoe.reweighting import effective_sample_size
    >>> effective_sample_size([1, 1, 1, 1])
    4.0
    >>> effective_sample_size([1, 0, 0, 0])
    1.0
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("weights must be a 1-D array of finite non-negative numbers.")
    scale = weights.max() if weights.size else 0.0
    if scale <= 0:
        raise ValueError("weights must not all be zero.")
    weights = weights / scale  # squares cannot overflow or underflow to zero
    return float(weights.sum() ** 2 / (weights**2).sum())


def _logsumexp(values):
    """``log sum exp(values)`` of a 1-D array with a finite maximum.

    Written out rather than ``scipy.special.logsumexp``, whose input checks cost more
    than the sum on the small batches the bisection below evaluates thousands of
    times.
    """
    largest = values.max()
    return largest + np.log(np.exp(values - largest).sum())


def _log_tilt(losses, log_base, eta):
    """``log q`` for ``q ∝ base * exp(eta * losses)``, normalised to sum one."""
    logits = eta * losses + log_base
    return logits - _logsumexp(logits)


def _log_chi2_plus_one(log_q, log_base):
    """``log(1 + chi2(q || base))`` with ``base`` normalised, in log space."""
    return float(_logsumexp(2 * log_q - log_base))


def _bounded_eta(losses, log_base, eta, min_ess):
    """The largest eta' <= eta whose tilt keeps ``1 / (1 + chi2) >= min_ess``.

    ``1 + chi2(q || base)`` grows with eta (it is ``exp(K(2 eta) - 2 K(eta))`` for the
    convex cumulant generating function ``K`` of the losses under ``base``), so
    bisection finds the boundary.
    """
    if min_ess is None or eta == 0:
        return eta
    limit = -np.log(min_ess)
    if _log_chi2_plus_one(_log_tilt(losses, log_base, eta), log_base) <= limit:
        return eta
    low, high = 0.0, float(eta)
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        log_q = _log_tilt(losses, log_base, middle)
        if _log_chi2_plus_one(log_q, log_base) <= limit:
            low = middle
        else:
            high = middle
    return low


class AdversarialReweighting(BaseEstimator):
    """Adversarial sample weights ``q ∝ w exp(eta L)``, in minibatches, with a bound.

    The weights solve the entropy-regularised (KL) distributionally robust problem in
    penalised form: among all reweightings ``q`` of the data, the one maximising
    ``sum_i q_i L_i - KL(q || w) / eta`` is the tilt ``q_i ∝ w_i exp(eta L_i)``, with
    ``L_i`` a sample's loss and ``w`` the data's own (sample) weights. Fitting a model
    with these weights trains it against the worst case near the data.
    :class:`~skmoe.MixtureOfExpertsClassifier` and
    :class:`~skmoe.MixtureOfExpertsRegressor` take an instance (or the strings
    ``"adversarial"`` and ``"adversarial_filtered"``) as ``reweighting``; see there
    how the weights enter EM.

    How the weights are computed, given losses ``L``, data weights ``w`` and a random
    generator:

    1. **Minibatches.** The samples are cut into a random partition of batches of
       ``batch_size`` (one batch holding everything when ``batch_size=None``). Each
       batch ``B`` keeps its share ``W_B / W`` of the total data weight; the tilt only
       moves weight inside a batch.
    2. **Tilt.** Inside a batch, ``t_i ∝ w_i exp(eta' L_i)`` (computed as a
       log-softmax, so no exponential overflows whatever ``eta`` and ``L``).
    3. **Safeguard.** ``eta' = eta`` unless that tilt moves too far from ``w``:
       ``eta'`` is the largest value up to ``eta`` for which the relative effective
       sample size ``1 / (1 + chi2(t || w_B))`` stays at least ``min_ess`` (a
       chi-square ball around the data, found by bisection). For equal data weights
       this is ``ESS(t) >= min_ess * |B|``. ``min_ess=None`` turns the safeguard off
       (the raw tilt of the paper). The bound is what keeps underfitting experts,
       whose hard samples keep large losses, from handing all the weight to those
       samples: with ``min_ess=0.5`` a class holding 14% of the data can get at most
       about half of the weight, whatever ``eta``.
    4. **Filtered variant** (``filtered=True``). The tilt is taken only over the
       batch's routing-relevant samples ``R`` (``relevant``), and added to the plain
       weights: ``q_B = (w_B / W_B + lambda t_R) / (1 + lambda)`` with
       ``lambda = filter_strength`` and ``t_R`` the safeguarded tilt over ``R`` (zero
       outside ``R``). The gradient of ``mean loss + lambda * tilted loss on R`` is
       this weighted loss. A batch without relevant samples keeps its plain weights.

    Parameters
    ----------
    eta : float, default=2.0
        Inverse temperature of the tilt; 0 gives the data weights unchanged, large
        values concentrate the weight on the largest losses (as far as ``min_ess``
        allows).
    warmup : float, default=0.4
        Fraction of the mixture's ``max_iter`` trained without reweighting before the
        tilt starts (the paper's 20 of 50 epochs); the warm-up also ends when the
        unweighted EM converges.
    batch_size : int or None, default=128
        Size of the minibatches the tilt is normalised in, drawn afresh at each
        iteration; ``None`` tilts over all samples at once.
    filtered : bool, default=False
        Tilt only the routing-relevant samples, on top of the plain weights.
    filter_strength : float, default=1.0
        Weight ``lambda`` of the tilted term in the filtered variant.
    min_ess : float in (0, 1] or None, default=0.5
        Smallest relative effective sample size ``1 / (1 + chi2(q || w))`` the tilt
        may reach inside a batch (or inside the relevant set); ``None`` for no bound.

    See Also
    --------
    effective_sample_size : how concentrated a set of weights is.
    skmoe.MixtureOfExpertsClassifier : uses these weights as ``reweighting``.

    References
    ----------
    .. [1] Wong, Prinster, Saria, Chellappa and Liu (2026). Calibrated mixtures of
       experts under distribution shift. ICML.
    .. [2] Li, Beirami, Sanjabi and Smith (2021). Tilted empirical risk
       minimization. ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.reweighting import AdversarialReweighting
    >>> losses = np.array([0.1, 0.2, 0.3, 3.0])
    >>> tilt = AdversarialReweighting(eta=1.0, batch_size=None, min_ess=None)
    >>> tilt.compute_weights(losses).round(3)
    array([0.047, 0.051, 0.057, 0.845])
    >>> bounded = AdversarialReweighting(eta=1.0, batch_size=None, min_ess=0.5)
    >>> bounded.compute_weights(losses).round(3)
    array([0.099, 0.106, 0.113, 0.683])
    """

    _parameter_constraints = {
        "eta": [Interval(Real, 0, None, closed="left")],
        "warmup": [Interval(Real, 0, 1, closed="both")],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "filtered": ["boolean"],
        "filter_strength": [Interval(Real, 0, None, closed="neither")],
        "min_ess": [None, Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        eta=2.0,
        *,
        warmup=0.4,
        batch_size=128,
        filtered=False,
        filter_strength=1.0,
        min_ess=0.5,
    ):
        self.eta = eta
        self.warmup = warmup
        self.batch_size = batch_size
        self.filtered = filtered
        self.filter_strength = filter_strength
        self.min_ess = min_ess

    def compute_weights(
        self, losses, sample_weight=None, *, relevant=None, random_state=None
    ):
        """Adversarial weights of the samples, normalised to sum one.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Finite per-sample losses ``L_i`` (larger is worse).
        sample_weight : array-like of shape (n_samples,), default=None
            The data's own non-negative weights ``w``; ``None`` means equal weights.
            Samples of zero weight get zero weight.
        relevant : array-like of bool of shape (n_samples,), default=None
            The routing-relevant samples, used when ``filtered=True`` (``None``: all
            samples). Ignored otherwise.
        random_state : int, RandomState instance or None, default=None
            Draws the minibatch partition.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            The weights ``q``, non-negative and summing to one.
        """
        self._validate_params()
        losses = np.asarray(losses, dtype=np.float64)
        if losses.ndim != 1 or not np.all(np.isfinite(losses)):
            raise ValueError("losses must be a 1-D array of finite numbers.")
        n_samples = losses.shape[0]
        if sample_weight is None:
            base = np.ones(n_samples)
        else:
            base = np.asarray(sample_weight, dtype=np.float64)
            if base.shape != losses.shape or np.any(base < 0):
                raise ValueError(
                    "sample_weight must be non-negative, of the shape of losses; got "
                    f"shape {base.shape} for {n_samples} losses."
                )
        if not base.sum() > 0:
            raise ValueError("sample_weight must not sum to zero.")
        if relevant is None or not self.filtered:
            relevant = np.ones(n_samples, dtype=bool)
        else:
            relevant = np.asarray(relevant, dtype=bool)
        base = base / base.sum()
        random_state = check_random_state(random_state)
        if self.batch_size is None or self.batch_size >= n_samples:
            batches = [np.arange(n_samples)]
        else:
            n_batches = -(-n_samples // self.batch_size)
            batches = np.array_split(random_state.permutation(n_samples), n_batches)
        weights = np.zeros(n_samples)
        for batch in batches:
            share = base[batch].sum()
            if share > 0:
                weights[batch] = share * self._batch_weights(
                    losses[batch], base[batch] / share, relevant[batch]
                )
        return weights / weights.sum()

    def _batch_weights(self, losses, base, relevant):
        """The weights inside one batch, summing to one; ``base`` sums to one."""
        support = relevant & (base > 0)
        if not np.any(support):
            return base
        with np.errstate(divide="ignore"):
            log_base = np.log(base[support])
        log_base = log_base - _logsumexp(log_base)
        eta = _bounded_eta(losses[support], log_base, self.eta, self.min_ess)
        tilted = np.zeros_like(base)
        tilted[support] = np.exp(_log_tilt(losses[support], log_base, eta))
        if not self.filtered:
            return tilted
        strength = self.filter_strength
        return (base + strength * tilted) / (1 + strength)

    def _n_warmup(self, max_iter):
        """Number of unweighted EM iterations before the tilt starts."""
        return int(np.floor(self.warmup * max_iter))
