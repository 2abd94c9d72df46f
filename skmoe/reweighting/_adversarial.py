"""Adversarial (KL-DRO) sample weights over per-sample losses, tilted and filtered.

:class:`AdversarialReweighting` turns the per-sample losses of a model into the
sample weights of the entropy-regularised worst case, ``q ∝ w exp(eta L)``, inside
random minibatches or over the whole set, optionally only on routing-relevant samples
(the filtered variant), with a bound on how far ``q`` may move from the data's own
weights (the safeguard that keeps underfitting experts from collapsing onto a few
hard samples). EM calls :meth:`~AdversarialReweighting.step` between its iterations
and moves slowly towards the weights it returns; the gradient solver fixes the
batches and bounds once per round (:class:`_TiltPlan`) and differentiates the tilted
objective itself. :func:`effective_sample_size` measures how concentrated
the weights are.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

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
        unweighted EM converges. With ``solver="adam"``, ``max_iter`` counts
        epochs: the default 0.4 of 50 epochs is the authors' 20 untilted epochs.
    batch_size : int or None, default=128
        Size of the minibatches the tilt is normalised in, drawn afresh at each
        iteration; ``None`` tilts over all samples at once. Not used by
        ``solver="adam"``, which tilts inside its own minibatches.
    filtered : bool, default=False
        Tilt only the routing-relevant samples, on top of the plain weights.
    filter_strength : float, default=1.0
        Weight ``lambda`` of the tilted term in the filtered variant.
    min_ess : float in (0, 1] or None, default=0.5
        Smallest relative effective sample size ``1 / (1 + chi2(q || w))`` the tilt
        may reach inside a batch (or inside the relevant set); ``None`` for no bound.
        *An extension of ours, not the paper's*: unlike ``eta`` it does not depend
        on the scale of the losses. ``solver="adam"`` applies it in every
        minibatch.
    gradient : {"danskin", "through_weights"}, default="danskin"
        How the mixture's ``solver="gradient"`` (and ``solver="adam"``, in each
        minibatch) differentiates the tilted objective; ignored by EM, which
        refits on the weights themselves. With ``W_B`` the data
        weight of batch ``B`` and ``W`` the total:

        - ``"danskin"`` minimises the KL-DRO value of each batch,
          ``sum_B (W_B / W) (1 / eta') log sum_{i in B} (w_i / W_B) exp(eta' L_i)``,
          the maximum over ``q`` of ``sum q L - KL(q || w) / eta'``; by Danskin's
          theorem its exact gradient is ``sum_i q_i grad L_i`` with the weights
          ``q`` held fixed (stopped).
        - ``"through_weights"`` minimises ``sum_i q_i(theta) L_i(theta)`` with
          ``q = softmax(eta' L + log w)`` differentiated too, as the authors' code
          does (it does not detach the weights): the gradient is
          ``sum_i q_i (1 + eta' (L_i - sum_{j in B} q_j L_j)) grad L_i``. This is
          not the DRO value; it pushes harder on the samples above their batch's
          tilted mean loss.

        The filtered variant adds either form on the relevant samples to the plain
        mean, as in step 4.
    averaging : bool, default=False
        How EM moves the weights towards each new tilt. Refitting on the latest
        tilt would be a best response to the current losses, not a descent step,
        and it oscillates: fitted to hard samples, the experts make them easy, the
        next tilt moves elsewhere, and EM alternates between two models (with
        linear experts on imbalanced data it did on every data set we tried, lost
        5-10 points of out-of-domain accuracy and never converged). EM therefore
        moves slowly: by default a mirror (exponentiated-gradient) step on the
        log-weights with the decaying step ``s_t = 1 / t``,
        ``log q_t = (1 - s_t) log q_{t-1} + s_t log q*_t`` (renormalised), so that
        ``log q_t`` is the mean of the log-tilts so far and, for the plain tilt,
        ``q_t ∝ w exp(eta * mean of the losses so far)``; with ``averaging=True``
        the arithmetic mean of the tilts instead (fictitious play). Either changes
        by ``O(1 / t)`` per iteration, so EM settles. With the mirror step,
        ``eta -> 0`` gives back the unweighted fit. Ignored by
        ``solver="gradient"``, whose objective is fixed within each round.
    class_conditional : bool, default=True
        *An extension of ours, not the paper's* (``False`` is the paper's form).
        Normalise the tilt within each class
        of a batch: every class keeps its share of the batch's data weight, and the
        adversary only moves weight between samples of the same class, so it cannot
        change the label proportions (tilting the log loss otherwise up-weights the
        rare class, which over-predicts it where the rare class gets rarer, as under
        label shift). The ``min_ess`` bound and the filtered variant then apply
        within each class. Every solver of
        :class:`~skmoe.MixtureOfExpertsClassifier` applies it (EM and
        ``solver="gradient"`` within the batches of ``batch_size``, ``solver="adam"``
        within its minibatches); the regressor, which has no classes, ignores it.
        The default because it is the only form measured to keep the accuracy out
        of domain: on the five shifts of ``benchmarks/reweighting_default.py``
        (report ``README_reweighting_default.md``, 3 seeds) the tilt without it
        cost up to 2.3 points of out-of-domain accuracy with EM and 1.4 with
        ``solver="adam"`` (flights), with it at most 0.7 (penguins, 2.3 in its
        worst seed), and it gained 1.7 to 2.1 points on both flights shifts.

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
        "averaging": ["boolean"],
        "gradient": [StrOptions({"danskin", "through_weights"})],
        "class_conditional": ["boolean"],
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
        gradient="danskin",
        averaging=False,
        class_conditional=True,
    ):
        self.eta = eta
        self.warmup = warmup
        self.batch_size = batch_size
        self.filtered = filtered
        self.filter_strength = filter_strength
        self.min_ess = min_ess
        self.gradient = gradient
        self.averaging = averaging
        self.class_conditional = class_conditional

    def compute_weights(
        self,
        losses,
        sample_weight=None,
        *,
        relevant=None,
        random_state=None,
        classes=None,
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
        classes : array-like of shape (n_samples,), default=None
            The class of each sample: with ``class_conditional=True`` the tilt is
            normalised within each class of a batch; without classes (a
            regression), over the batch.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            The weights ``q``, non-negative and summing to one.
        """
        self._validate_params()
        losses = np.asarray(losses, dtype=np.float64)
        if losses.ndim != 1 or not np.all(np.isfinite(losses)):
            raise ValueError("losses must be a 1-D array of finite numbers.")
        plan = self._plan(losses, sample_weight, relevant, random_state, classes)
        weights = plan.weights(losses)
        return weights / weights.sum()

    def step(
        self,
        losses,
        sample_weight=None,
        *,
        groups=None,
        relevant=None,
        random_state=None,
        state=None,
        classes=None,
    ):
        """One move of the adversary: the weights for the current losses.

        The method every solver of :mod:`skmoe.solvers` calls, with the signature
        :meth:`GroupDRO.step` shares.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Finite per-sample losses ``L_i`` of the current model.
        sample_weight : array-like of shape (n_samples,), default=None
            The data's own non-negative weights ``w``; ``None`` means equal weights.
        groups : array-like of shape (n_samples,), default=None
            Ignored: the tilt is per sample.
        relevant : array-like of bool of shape (n_samples,), default=None
            The routing-relevant samples, used when ``filtered=True``.
        random_state : int, RandomState instance or None, default=None
            Draws the minibatch partition.
        state : None
            The running state of the previous step; the tilt keeps none.
        classes : array-like of shape (n_samples,), default=None
            The class of each sample: with ``class_conditional=True`` the tilt is
            normalised within each class of a batch; without classes (a
            regression), over the batch.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            The weights ``q``, non-negative and summing to one.
        state : None
            The state to pass to the next step.
        """
        weights = self.compute_weights(
            losses,
            sample_weight,
            relevant=relevant,
            random_state=random_state,
            classes=classes,
        )
        return weights, None

    def _plan(self, losses, sample_weight, relevant, random_state, classes=None):
        """Fix the partition, the relevant sets and each batch's ``eta'``.

        ``eta'`` is found from ``losses``; the returned :class:`_TiltPlan` then gives
        the weights, and the tilted objective, of any other losses under the same
        batches and the same ``eta'`` (the form the gradient solver minimises).
        """
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
        if self.class_conditional and classes is not None:
            classes = np.asarray(classes)
            # each class of a batch is tilted apart and keeps its share of the
            # batch's weight: the adversary cannot move weight between classes
            batches = [
                batch[classes[batch] == label]
                for batch in batches
                for label in np.unique(classes[batch])
            ]
        # the tilted share of a batch with relevant samples; the rest of its weight
        # stays on the data weights
        tilted_share = self.filter_strength / (1 + self.filter_strength)
        if not self.filtered:
            tilted_share = 1.0
        plain = base.copy()
        segments, log_bases, etas, masses = [], [], [], []
        for batch in batches:
            share = base[batch].sum()
            support = batch[relevant[batch] & (base[batch] > 0)]
            if share <= 0 or support.size == 0:
                continue  # no tilt: the batch keeps its data weights
            with np.errstate(divide="ignore"):
                log_base = np.log(base[support])
            log_base = log_base - _logsumexp(log_base)
            plain[batch] *= 1 - tilted_share
            segments.append(support)
            log_bases.append(log_base)
            etas.append(_bounded_eta(losses[support], log_base, self.eta, self.min_ess))
            masses.append(share * tilted_share)
        return _TiltPlan(plain, segments, log_bases, etas, masses)

    def _n_warmup(self, max_iter):
        """Number of unweighted EM iterations before the tilt starts."""
        return int(np.floor(self.warmup * max_iter))


class _TiltPlan:
    """The adversarial weights with the batches, relevant sets and ``eta'`` fixed.

    ``plain`` (n,) holds the data weights that are not tilted; each *segment* is the
    set of positive-weight (relevant) samples of one batch, with its normalised log
    data weights, its ``eta'`` and the total ``mass`` its tilt carries. For losses
    ``L`` the weights are ``plain + mass_s t_s`` with ``t_s ∝ w exp(eta'_s L)`` inside
    segment ``s``. Segments are laid end to end (``order``) so that every batch is
    handled at once by ``reduceat``.
    """

    def __init__(self, plain, segments, log_bases, etas, masses):
        self.plain = plain
        lengths = np.array([segment.size for segment in segments], dtype=np.intp)
        self.order = np.concatenate(segments) if segments else np.empty(0, np.intp)
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
        self.segment_of = np.repeat(np.arange(lengths.size), lengths)
        self.log_base = np.concatenate(log_bases) if log_bases else np.empty(0)
        self.eta = np.asarray(etas, dtype=np.float64)
        self.mass = np.asarray(masses, dtype=np.float64)

    def _segment_sum(self, values):
        return np.add.reduceat(values, self.starts)

    def _tilt(self, losses):
        """The losses in segment order, the tilt ``t`` and each segment's DRO value.

        The DRO value is ``(1 / eta') log sum_s (w_i / W_s) exp(eta' L_i)``, written
        as ``E_w[L] + (1 / eta') log E_w[exp(eta' (L - E_w[L]))]``: the max-shifted
        log-sum-exp keeps it finite for any ``eta'`` and loss, and, where
        ``eta' |L - E_w[L]|`` is small, ``log1p(E_w[expm1(.)])`` keeps it accurate as
        ``eta' -> 0`` (where it tends to the plain weighted mean).
        """
        values = losses[self.order]
        segment_of = self.segment_of
        base = np.exp(self.log_base)
        mean = self._segment_sum(base * values)
        eta = self.eta[segment_of]
        centred = eta * (values - mean[segment_of])
        logits = centred + self.log_base
        peak = np.maximum.reduceat(logits, self.starts)
        log_norm = peak + np.log(self._segment_sum(np.exp(logits - peak[segment_of])))
        tilt = np.exp(logits - log_norm[segment_of])
        spread = np.maximum.reduceat(np.abs(centred), self.starts)
        near_zero = np.log1p(
            self._segment_sum(base * np.expm1(np.clip(centred, -1.0, 1.0)))
        )
        log_norm = np.where(spread < 0.5, near_zero, log_norm)
        scaled = np.divide(
            log_norm, self.eta, out=np.zeros_like(log_norm), where=self.eta > 0
        )
        return values, tilt, mean + scaled

    def weights(self, losses):
        """The weights ``q`` of the samples for ``losses`` (summing to one)."""
        weights = self.plain.copy()
        if self.order.size:
            _, tilt, _ = self._tilt(losses)
            weights[self.order] += self.mass[self.segment_of] * tilt
        return weights

    def objective(self, losses, gradient):
        """The tilted objective at ``losses`` and its derivative in each loss.

        Parameters
        ----------
        losses : ndarray of shape (n_samples,)
        gradient : {"danskin", "through_weights"}
            ``"danskin"``: ``sum plain L + sum_s mass_s DRO_s(L)``, whose derivative
            in ``L_i`` is exactly the weight ``q_i`` (the tilt is the maximiser of
            the penalised inner problem, so its own variation does not count);
            ``"through_weights"``: ``sum_i q_i(L) L_i``, whose derivative is
            ``plain_i + mass_s t_i (1 + eta' (L_i - sum_s t L))``.

        Returns
        -------
        value : float
        coefficients : ndarray of shape (n_samples,)
            The derivative of ``value`` in each ``L_i``.
        """
        value = float(self.plain @ losses)
        coefficients = self.plain.copy()
        if not self.order.size:
            return value, coefficients
        values, tilt, dro = self._tilt(losses)
        mass = self.mass[self.segment_of]
        if gradient == "danskin":
            value += float(self.mass @ dro)
            coefficients[self.order] += mass * tilt
        else:
            tilted_mean = self._segment_sum(tilt * values)
            value += float(self.mass @ tilted_mean)
            eta = self.eta[self.segment_of]
            coefficients[self.order] += (
                mass * tilt * (1 + eta * (values - tilted_mean[self.segment_of]))
            )
        return value, coefficients
