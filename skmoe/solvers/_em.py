"""EM, hard EM and top-k EM: the default solver, ``solver="em"``.

One initialisation alternates an M-step (every expert refitted on its responsibilities
times the data weights, in parallel through joblib, then the gate on the soft targets)
and an E-step (responsibilities from the gate and the experts' likelihoods, in log
space). With reweighting, after a warm-up, the M-steps use the data weights times the
adversary's weights, which the adversary object computes from the per-sample losses
of the last E-step. The estimator supplies the per-expert pieces (how an expert is
fitted on a routed view, how likely it finds the targets, the routing); this module
holds the loop. It follows the interface of :mod:`skmoe.solvers`.
"""

import copy
import warnings
from time import perf_counter

import numpy as np
from joblib import Parallel, delayed
from scipy.special import logsumexp
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import (
    GammaRegressor,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    TweedieRegressor,
)

from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, GroupDRO, effective_sample_size
from skmoe.solvers import routing_relevant, sample_losses

# Responsibilities below this fraction of an expert's largest one are dropped from its
# weighted fit: they do not change the fit measurably and keeping them makes tree and
# neighbour experts pay for samples they never see.
_MIN_RELATIVE_WEIGHT = 1e-8
# Adversarial weights are floored at this fraction of the largest one: a tilt with a
# huge eta would otherwise give most samples a weight of exactly zero, and experts
# that lose every sample cannot be refitted.
_MIN_ADVERSARIAL_WEIGHT = 1e-6
# A decrease of the objective smaller than this (relative to its size, at least 1)
# is rounding and the inexact inner fits (L-BFGS to its tolerance), not a failure.
_DECREASE_NOISE = 1e-7
# Under top-k routing a gate step that lowers the objective is retried this many
# times, each time halfway back towards the previous gate, before it is rejected.
_GATE_BACKTRACKS = 6


def check(mixture):
    """Raise a clear error if ``mixture``'s parameters do not fit EM.

    EM refits the experts on weighted views: every expert (and a general gate) must
    take ``sample_weight`` unless routing is hard and nothing reweights the data.
    Whether ``fit`` receives ``sample_weight`` is checked in ``fit`` itself.

    Returns
    -------
    templates : list of estimators
        The expert templates, one per expert.
    """
    templates = mixture._expert_templates()
    mixture._check_weight_support(
        templates,
        needs_weights=mixture.routing != "hard" or mixture.reweighting is not None,
    )
    return templates


def run(
    mixture,
    X,
    y,
    weights,
    templates,
    responsibilities,
    init_index,
    random_state,
    max_iter=None,
):
    """Alternate M- and E-steps from ``responsibilities`` (None: current model).

    At most ``max_iter`` iterations (None: the mixture's ``max_iter``); the short
    runs of ``init="auto"`` pass a few.

    With reweighting, after the warm-up, the M-steps use ``fit_weights``: the data
    weights moved towards the adversary's weights by a slow step (see
    :func:`_adversary_move`).

    The objective is the one the M-steps increase (:func:`_penalty`): the weighted
    mean log-likelihood under the current ``fit_weights`` minus the L2 penalties
    of the softmax gate and of logistic-regression experts (divided by the total
    weight, as the likelihood is). EM has converged when an M-step increased it by
    less than ``tol`` per unit of weight (the rule of sklearn's GaussianMixture, on
    the penalised objective) and, with reweighting, the adversary's move changed it
    by less than ``tol`` too. A decrease is never convergence: the plain
    likelihood of a penalised fit can fall, then rise again, and a rule on
    ``|change|`` stopped at the turn (flexmix's NPreg data, issue 14). An M-step
    that decreases the objective beyond rounding and beyond what the shrinkage of
    ``Ridge`` experts explains (:func:`_shrinkage_allowance`) is reported by a
    ``ConvergenceWarning``.
    """
    reweighting = mixture._reweighting()
    n_warmup = 0 if reweighting is None else reweighting._n_warmup(mixture.max_iter)
    tilting = False
    fit_weights = weights
    adversary_state = None  # the adversary's running state (Group DRO's log pi)
    n_tilts = 0  # adversary moves so far
    lower_bounds, effective_sizes = [], []
    converged = False
    if responsibilities is None:
        log_joint = mixture._log_joint(X, y)
        responsibilities, _ = _e_step(mixture, log_joint, weights)
    else:
        responsibilities = reseed_empty_start(responsibilities, weights, random_state)
    previous = -np.inf
    decreases = []  # (iteration, decrease) of M-steps that lowered the objective
    # the best iterate is kept where a step can lower the objective by design
    keeps_best = mixture.routing != "soft" and reweighting is None
    best = None
    n_iter = 0
    if max_iter is None:
        max_iter = mixture.max_iter
    for n_iter in range(1, max_iter + 1):
        tic = perf_counter()
        # the penalised experts before the M-step, with its weights
        shrinkable = _noise_scaled_penalties(
            mixture, responsibilities * fit_weights[:, None]
        )
        log_likelihood = _m_step(
            mixture, X, y, fit_weights, templates, responsibilities
        )
        expert_weights = responsibilities * fit_weights[:, None]
        log_gate = mixture._log_gate(X)
        if log_likelihood is None:
            log_likelihood = mixture._expert_log_likelihood(X, y)
        log_joint = log_gate + log_likelihood
        responsibilities, lower_bound = _e_step(mixture, log_joint, fit_weights)
        lower_bound -= _penalty(mixture) / fit_weights.sum()
        lower_bounds.append(lower_bound)
        if keeps_best and (best is None or lower_bound > best["lower_bound_"]):
            best = _snapshot(mixture, lower_bound, expert_weights)
        if mixture.verbose:
            print(
                f"init {init_index} iteration {n_iter}: lower bound "
                f"{lower_bound:.6f} ({perf_counter() - tic:.2f}s)"
            )
        change = lower_bound - previous
        rounding = _DECREASE_NOISE * max(1.0, abs(lower_bound))
        decreased = change < -rounding
        shrinkage = _shrinkage_allowance(shrinkable, mixture) / fit_weights.sum()
        if change < -(rounding + shrinkage):
            decreases.append((n_iter, -change))
        settled = abs(change) < mixture.tol and not decreased
        previous = lower_bound
        if reweighting is not None:
            effective_sizes.append(effective_sample_size(fit_weights))
            tilting = tilting or settled or n_iter >= n_warmup
            if tilting:
                target, adversary_state = _adversarial_weights(
                    mixture,
                    X,
                    y,
                    log_gate,
                    log_likelihood,
                    weights,
                    reweighting,
                    random_state,
                    adversary_state,
                )
                n_tilts += 1
                fit_weights = _adversary_move(
                    reweighting, fit_weights, target, weights, n_tilts
                )
                # the objective at the new weights and the current model: the
                # next M-step's gain is measured from here, and the adversary's
                # own move must be small too (for eta -> 0 it vanishes, so EM
                # stops where unweighted EM stops)
                moved = _objective(mixture, log_joint, fit_weights)
                settled = settled and abs(moved - lower_bound) < mixture.tol
                previous = moved
        if settled:
            converged = True
            break
    if mixture.verbose:
        status = "converged" if converged else "did not converge"
        print(f"init {init_index} {status} after {n_iter} iterations.")
    if decreases:
        worst = max(decrease for _, decrease in decreases)
        warnings.warn(
            f"{type(mixture).__name__}: an M-step decreased the objective EM "
            f"maximises (lower_bounds_) at {len(decreases)} of {n_iter} iterations "
            f"(first at iteration {decreases[0][0]}, by up to {worst:.3g} per unit "
            "of weight). EM increases it when each M-step improves the experts' "
            "and the gate's weighted fits; an expert fitted inexactly or not by "
            "weighted likelihood, a reseeded empty expert, or a gate other than "
            "SoftmaxGate can break that.",
            ConvergenceWarning,
            stacklevel=4,
        )
    lower_bound = lower_bounds[-1]
    if best is not None and best["lower_bound_"] > lower_bound:
        # a later step lowered the objective: return the model EM had reached
        for name, value in best.items():
            if name not in ("lower_bound_", "_expert_weights"):
                setattr(mixture, name, value)
        lower_bound = best["lower_bound_"]
        expert_weights = best["_expert_weights"]
    state = {
        "experts_": mixture.experts_,
        "gate_": mixture.gate_,
        "n_iter_": n_iter,
        "converged_": converged,
        "lower_bound_": lower_bound,
        "lower_bounds_": np.asarray(lower_bounds),
        "_expert_weights": expert_weights,
        **mixture._extra_state(),
    }
    if reweighting is not None:
        # the weights the final experts and gate were fitted with
        used = expert_weights.sum(axis=1)
        state["adversarial_weights_"] = used / used.sum()
        state["effective_sample_sizes_"] = np.asarray(effective_sizes)
    if isinstance(reweighting, GroupDRO):
        # the group weights of the last M-step: those behind fit_weights before
        # the final update (the data's group shares if the tilt never started)
        state["group_weights_"] = _fitted_group_weights(mixture, expert_weights)
    return state


def _snapshot(mixture, lower_bound, expert_weights):
    """A copy of the fitted model, which the next M-step changes in place (warm
    experts, the gate's warm start), with its objective."""
    return {
        "experts_": copy.deepcopy(mixture.experts_),
        "gate_": copy.deepcopy(mixture.gate_),
        **copy.deepcopy(mixture._extra_state()),
        "lower_bound_": lower_bound,
        "_expert_weights": expert_weights,
    }


def _objective(mixture, log_joint, weights):
    """The objective (``lower_bound``) of ``log_joint`` under ``weights``."""
    if mixture.routing == "hard":
        values = log_joint.max(axis=1)
    else:
        values = logsumexp(log_joint, axis=1)
    return float((weights @ values - _penalty(mixture)) / weights.sum())


def _penalty(mixture):
    """The L2 penalties the M-step's fits add to their weighted sums of losses.

    A :class:`~skmoe.gating.SoftmaxGate` adds ``||coef||^2 / (2 C)`` to its
    weighted log loss, an L2-penalised ``LogisticRegression`` expert
    ``||coef||^2 / (2 C)`` to its weighted log loss: EM with these M-steps is EM
    for the penalised likelihood (a MAP estimate), which it increases while the
    plain likelihood may fall. The penalties of other estimators are not known
    here and count as zero (a ``Ridge`` expert's, for one, enters the Gaussian
    likelihood through the noise scale, which the M-step fits without it; what it
    costs the objective is bounded by :func:`_shrinkage_allowance` instead).
    """
    total = 0.0
    gate = mixture.gate_
    if isinstance(gate, SoftmaxGate) and np.isfinite(gate.C):
        total += 0.5 * float(np.sum(gate.coef_**2)) / gate.C
    for expert in mixture.experts_:
        if not isinstance(expert, LogisticRegression) or not hasattr(expert, "coef_"):
            continue
        params = expert.get_params()
        if (
            params["penalty"] in ("deprecated", "l2")
            and params["l1_ratio"] in (None, 0, 0.0)
            and np.isfinite(expert.C)
        ):
            total += 0.5 * float(np.sum(expert.coef_**2)) / expert.C
    return total


_GLM_EXPERTS = (PoissonRegressor, GammaRegressor, TweedieRegressor)


def _noise_scaled_penalties(mixture, expert_weights=None):
    """The L2 penalties of ``Ridge`` and GLM experts, on the likelihood's scale.

    A ``Ridge`` expert minimises ``sum_i w_i (y_i - f(x_i))^2 + alpha ||coef||^2``
    (its ``sample_weight`` ``w``): in a Gaussian mixture with noise variance
    ``sigma^2``, it maximises the expert's weighted log-likelihood minus
    ``alpha ||coef||^2 / (2 sigma^2)``. That penalty is on the likelihood's scale
    only through ``sigma^2``, which the M-step fits without it (the weighted mean
    squared residual). No objective has both fits as its maximisers: the noise
    variance that maximises the likelihood minus this penalty is the mean squared
    residual plus ``alpha ||coef||^2`` over the expert's weight, which inflates a
    small noise scale (``alpha = 1``, ``coef = 3`` and 1000 rows of noise 0.1: 0.14
    instead of 0.1). So this penalty is left out of the objective, and
    :func:`_shrinkage_allowance` bounds what it costs the objective instead.

    scikit-learn's GLMs (``PoissonRegressor``, ``GammaRegressor``,
    ``TweedieRegressor``) minimise ``sum_i w_i d_i / (2 sum_i w_i) + alpha / 2
    ||coef||^2`` with the unit deviance ``d = 2 phi (l_saturated - l)``: they
    maximise the weighted log-likelihood minus ``alpha S ||coef||^2 / (2 phi)``, with
    ``S`` the expert's weight in the M-step and ``phi`` its dispersion (1 for
    Poisson), the same kind of penalty.

    Parameters
    ----------
    mixture : estimator
    expert_weights : ndarray of shape (n_samples, n_experts), default=None
        The weights of the coming M-step (for the GLMs' ``S``); without them the
        GLM experts count 0.

    Returns
    -------
    penalties : tuple of two ndarrays of shape (n_experts,), or None
        ``||coef||^2`` weighted by the penalty (``alpha`` per coefficient) of each
        fitted ``Ridge`` or GLM expert (0 for the other experts), and the factor
        that puts it on the log-likelihood's scale (``1 / (2 sigma^2)``, ``S / (2
        phi)``); None without fitted experts, for the classifier, or without such
        an expert.
    """
    experts = getattr(mixture, "experts_", None)
    family = getattr(mixture, "likelihood_", None)
    if experts is None or family is None:
        return None
    dispersion = mixture._dispersion()
    if dispersion is None:  # Poisson
        dispersion = np.ones(len(experts))
    dispersion = np.broadcast_to(np.asarray(dispersion, dtype=np.float64),
                                 (len(experts),))
    totals = (
        None if expert_weights is None or expert_weights.shape[1] != len(experts)
        else expert_weights.sum(axis=0)
    )
    penalties = np.zeros(len(experts))
    scales = np.zeros(len(experts))
    for k, expert in enumerate(experts):
        if not hasattr(expert, "coef_") or not dispersion[k] > 0:
            continue
        if isinstance(expert, Ridge) and family == "gaussian":
            scales[k] = 1.0 / (2.0 * dispersion[k])
        elif isinstance(expert, _GLM_EXPERTS) and totals is not None:
            scales[k] = totals[k] / (2.0 * dispersion[k])
        else:
            continue
        penalties[k] = _weighted_norm(expert)
    if not np.any(penalties * scales > 0):
        return None
    return penalties, scales


def _weighted_norm(expert):
    """``alpha ||coef||^2`` of a fitted ``Ridge`` or GLM expert (``alpha`` may be
    one per coefficient)."""
    return float(np.sum(np.asarray(expert.alpha) * expert.coef_**2))


def _shrinkage_allowance(shrinkable, mixture):
    """How far the penalised experts can lower the objective in an M-step.

    EM's inequality: the log-likelihood rises at least as much as the M-step raises
    the expected complete-data log-likelihood ``Q`` of the E-step's
    responsibilities. A ``Ridge`` expert's fit maximises ``Q_k - alpha ||coef||^2 /
    (2 sigma^2)`` over its coefficients at the noise variance ``sigma^2`` of the
    previous M-step (the fit is the same for any ``sigma``), so it lowers ``Q_k`` by
    at most ``alpha (||coef_before||^2 - ||coef_after||^2) / (2 sigma^2)``, and only
    when it shrinks the coefficients; a GLM expert likewise with the factor ``S /
    (2 phi)`` (:func:`_noise_scaled_penalties`). The dispersion fit that follows
    raises ``Q_k`` (it maximises it), and the gate's fit raises its penalised part.
    The objective therefore falls by at most the sum of these terms over the
    experts (divided by the total weight by the caller, as the objective is): a
    fall within it is the penalised fits doing what they should, a larger one is
    reported.

    Parameters
    ----------
    shrinkable : tuple of two ndarrays, or None
        :func:`_noise_scaled_penalties` of the mixture before the M-step (with the
        M-step's weights).
    mixture : estimator
        The mixture after the M-step.

    Returns
    -------
    allowance : float
        The bound on the objective's fall times the total weight; 0 without
        penalised experts.
    """
    if shrinkable is None:
        return 0.0
    penalties_before, scales = shrinkable
    experts = getattr(mixture, "experts_", None)
    if experts is None or len(experts) != penalties_before.shape[0]:
        return 0.0
    penalties_after = np.array(
        [
            _weighted_norm(expert)
            if scale > 0 and hasattr(expert, "coef_") and hasattr(expert, "alpha")
            else 0.0
            for expert, scale in zip(experts, scales, strict=True)
        ]
    )
    shrinkage = np.maximum(penalties_before - penalties_after, 0.0)
    return float(np.sum(shrinkage * scales))


def _adversary_move(reweighting, fit_weights, target, weights, n_tilts):
    """The weights of the next M-step, moved from ``fit_weights`` towards ``target``.

    Refitting on the latest tilt is a best response to the current losses, which
    oscillates (benchmarks/README_tilt_averaging.md). The adversary moves slowly
    instead, by a mirror (exponentiated-gradient) step on the log-weights with the
    decaying step ``s_t = 1 / t``:

        log q_t = (1 - s_t) log q_{t-1} + s_t log q*(L_t)   (renormalised),

    so that ``log q_t`` is the mean of the log-tilts so far; for the plain tilt
    ``q* ∝ w exp(eta L)`` this is ``q_t ∝ w exp(eta mean_s L_s)``, the tilt of the
    mean losses (follow the regularised leader). The first move (``s_1 = 1``) is the
    first tilt. ``AdversarialReweighting(averaging=True)`` takes the arithmetic mean
    of the tilts instead; Group DRO's adversary already moves by its own
    exponentiated-gradient step (``step_size``) and is taken as it comes.
    """
    if not isinstance(reweighting, AdversarialReweighting) or n_tilts == 1:
        return target
    if reweighting.averaging:
        # fictitious play: the mean of the tilts so far
        return fit_weights + (target - fit_weights) / n_tilts
    step = 1.0 / n_tilts
    positive = weights > 0
    log_moved = np.full(weights.shape[0], -np.inf)
    log_moved[positive] = (1 - step) * np.log(fit_weights[positive]) + step * np.log(
        target[positive]
    )
    largest = log_moved[positive].max()
    moved = np.exp(log_moved - largest)
    return weights.sum() * moved / moved.sum()


def _adversarial_weights(
    mixture,
    X,
    y,
    log_gate,
    log_likelihood,
    weights,
    reweighting,
    random_state,
    adversary_state,
):
    """Data weights times the adversary's weights, rescaled to the data's total, and
    the adversary's new state."""
    losses = sample_losses(mixture.routing, log_gate, log_likelihood)
    relevant = None
    if getattr(reweighting, "filtered", False):
        relevant = routing_relevant(mixture, X, losses, log_gate, log_likelihood)
    tilt, adversary_state = reweighting.step(
        losses,
        weights,
        groups=mixture._groups,
        relevant=relevant,
        random_state=random_state,
        state=adversary_state,
        classes=y if is_classifier(mixture) else None,
    )
    if isinstance(reweighting, AdversarialReweighting):
        positive = weights > 0
        tilt[positive] = np.maximum(
            tilt[positive], _MIN_ADVERSARIAL_WEIGHT * tilt.max()
        )
    return weights.sum() * tilt / tilt.sum(), adversary_state


def _fitted_group_weights(mixture, expert_weights):
    """Each group's share of the weights the final M-step used."""
    used = expert_weights.sum(axis=1)
    shares = np.bincount(mixture._groups, weights=used)
    return shares / shares.sum()


def _reseed_empty(responsibilities, weights, fit_quality):
    """Give an expert that lost all its weight the samples the mixture explains worst.

    Happens in hard EM when no sample selects an expert, and under top-k routing when
    an expert is in no sample's top k (and at the start, see
    :func:`reseed_empty_start`). The samples come from the experts that can spare
    them, worst-explained first, and are moved whole (one-hot) to the empty expert, so
    it restarts where the current mixture fits least.
    """
    n_samples, n_experts = responsibilities.shape
    mass = weights @ responsibilities
    empty = list(np.flatnonzero(mass <= 0))
    if not empty:
        return responsibilities
    responsibilities = responsibilities.copy()
    owner = np.argmax(responsibilities, axis=1)
    counts = np.bincount(owner[weights > 0], minlength=n_experts)
    quota = max(1, int(np.count_nonzero(weights)) // (2 * n_experts))
    moved = 0
    for sample in np.argsort(fit_quality, kind="stable"):
        if not empty:
            break
        if weights[sample] <= 0 or counts[owner[sample]] <= quota:
            continue
        counts[owner[sample]] -= 1
        responsibilities[sample] = 0.0
        responsibilities[sample, empty[0]] = 1.0
        moved += 1
        if moved >= quota:
            empty.pop(0)
            moved = 0
    return responsibilities


def reseed_empty_start(responsibilities, weights, random_state):
    """The start ``responsibilities`` with weight for every expert.

    A start can leave an expert without weight: a random partition of a few rows
    (``init="random_partition"``, four of the short runs of ``"auto"``), slabs of
    tied rows (``"pca"``), labels given by the user that skip an expert, or an
    expert whose rows all have zero sample weight. The first M-step would fit that
    expert on no data. It is re-seeded by the rule EM applies when an expert loses
    all its weight later (:func:`_reseed_empty`); with no fit yet to say which
    samples are explained worst, the samples it takes are drawn at random (and
    drawn only then, so that a start without an empty expert uses the random state
    as before). Every expert gets samples when at least ``n_experts`` samples have
    positive weight, which ``fit`` checks.

    Parameters
    ----------
    responsibilities : ndarray of shape (n_samples, n_experts)
        The start, rows summing to one.
    weights : ndarray of shape (n_samples,)
        The data weights.
    random_state : RandomState instance
        Draws the samples an empty expert takes.

    Returns
    -------
    responsibilities : ndarray of shape (n_samples, n_experts)
        ``responsibilities`` itself when no expert is empty, else a re-seeded copy.
    """
    if np.all(weights @ responsibilities > 0):
        return responsibilities
    random_order = random_state.permutation(weights.shape[0])
    return _reseed_empty(responsibilities, weights, random_order)


def _e_step(mixture, log_joint, weights):
    """Responsibilities and the weighted mean (classification) log-likelihood."""
    total = weights.sum()
    rows = np.arange(log_joint.shape[0])
    if mixture.routing == "hard":
        assignment = np.argmax(log_joint, axis=1)
        fit_quality = log_joint[rows, assignment]
        responsibilities = np.zeros_like(log_joint)
        responsibilities[rows, assignment] = 1.0
        lower_bound = float(weights @ fit_quality / total)
    else:
        log_norm = logsumexp(log_joint, axis=1)
        responsibilities = np.exp(log_joint - log_norm[:, None])
        fit_quality = log_norm
        lower_bound = float(weights @ log_norm / total)
    return _reseed_empty(responsibilities, weights, fit_quality), lower_bound


def _m_step(mixture, X, y, weights, templates, responsibilities):
    """Refit every expert on its weighted view, then the gate on the soft targets.

    Returns
    -------
    log_likelihood : ndarray of shape (n_samples, n_experts) or None
        The refitted experts' log-likelihoods when the gate's step needed them
        (top-k routing), else None.
    """
    expert_weights = responsibilities * weights[:, None]
    jobs = []
    for k, template in enumerate(templates):
        rows, sample_weight = mixture._weighted_view(expert_weights[:, k])
        jobs.append((k, template, rows, sample_weight))
    fitted = Parallel(n_jobs=mixture.n_jobs)(
        delayed(mixture._fit_one)(k, template, X, y, rows, sample_weight)
        for k, template, rows, sample_weight in jobs
    )
    mixture.experts_ = fitted
    mixture._after_m_step(X, y, expert_weights)
    if mixture.routing == "topk" and mixture.top_k < len(fitted):
        return _fit_gate_monotone(mixture, X, y, responsibilities, weights)
    _fit_gate(mixture, X, responsibilities, weights)
    return None


def _fit_gate_monotone(mixture, X, y, responsibilities, weights):
    """The gate's step under top-k routing, never lowering the objective.

    Top-k EM's objective is the log-likelihood under the truncated gate
    ``g~_k(x) = g_k(x) / sum_{j in S(x)} g_j(x)`` on the top-k set ``S(x)`` (zero
    outside it), which the predictions use. Its E-step and the experts' fits
    increase it, as in soft EM. The gate's fit does not: it maximises
    ``sum_ik h_ik log g_k(x_i)`` over the full softmax, while the objective's
    gate term is ``sum_ik h_ik log g~_k(x_i)``, which also depends on the mass
    the gate puts inside each top-k set and drops to minus infinity for an expert
    that leaves a sample's set. So the fitted gate is accepted only if the
    objective (with the refitted experts) does not fall; otherwise a
    ``SoftmaxGate`` steps back halfway towards its previous coefficients, up to
    ``_GATE_BACKTRACKS`` times, and keeps them if no step helps; another gate is
    accepted or replaced by its previous fit. This is a generalised EM step: EM
    increases the tracked objective whatever the gate does, and stops where
    neither the gate nor the experts improve it.

    Returns
    -------
    log_likelihood : ndarray of shape (n_samples, n_experts)
        The refitted experts' log-likelihoods of ``y``.
    """
    gate = mixture.gate_
    try:
        log_gate = mixture._log_gate(X)
    except NotFittedError:
        # the first M-step: no previous gate to fall back on
        _fit_gate(mixture, X, responsibilities, weights)
        return mixture._expert_log_likelihood(X, y)
    log_likelihood = mixture._expert_log_likelihood(X, y)
    before = _objective(mixture, log_gate + log_likelihood, weights)
    if isinstance(gate, SoftmaxGate):
        start = gate.coef_.copy(), gate.intercept_.copy()
    else:
        previous = copy.deepcopy(gate)
    _fit_gate(mixture, X, responsibilities, weights)

    def improves():
        log_joint = mixture._log_gate(X) + log_likelihood
        return _objective(mixture, log_joint, weights) >= before

    if not isinstance(gate, SoftmaxGate):
        if not improves():
            mixture.gate_ = previous
        return log_likelihood
    fitted = gate.coef_, gate.intercept_
    if improves():
        return log_likelihood
    step = 1.0
    for _ in range(_GATE_BACKTRACKS):
        step /= 2
        gate.coef_ = start[0] + step * (fitted[0] - start[0])
        gate.intercept_ = start[1] + step * (fitted[1] - start[1])
        if improves():
            return log_likelihood
    gate.coef_, gate.intercept_ = start
    return log_likelihood


def _fit_gate(mixture, X, responsibilities, weights):
    gate = mixture.gate_
    X = mixture._gate_input(X)
    if isinstance(gate, SoftmaxGate):
        # EM needs an M-step that improves the gate, not its exact optimum
        # (generalised EM); the next M-step warm-starts from here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gate._fit_targets(X, responsibilities, weights)
        return
    if mixture.routing == "hard":
        gate.fit(X, responsibilities.argmax(axis=1), sample_weight=weights)
        return
    # a general classifier learns soft targets from one weighted copy per expert
    replicated = responsibilities * weights[:, None]
    rows, experts = np.nonzero(replicated > _MIN_RELATIVE_WEIGHT * replicated.max())
    gate.fit(X[rows], experts, sample_weight=replicated[rows, experts])
