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

import warnings
from time import perf_counter

import numpy as np
from joblib import Parallel, delayed
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

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


def run(mixture, X, y, weights, templates, responsibilities, init_index, random_state):
    """Alternate M- and E-steps from ``responsibilities`` (None: current model).

    With reweighting, the M-steps use ``fit_weights`` = the data weights tilted
    by the adversarial weights of the previous E-step, once the warm-up is over.
    """
    reweighting = mixture._reweighting()
    n_warmup = 0 if reweighting is None else reweighting._n_warmup(mixture.max_iter)
    tilting = False
    fit_weights = weights
    adversary_state = None  # the adversary's running state (Group DRO's log pi)
    n_tilts = 0  # tilts averaged so far (AdversarialReweighting(averaging=True))
    lower_bounds, effective_sizes = [], []
    converged = False
    if responsibilities is None:
        log_joint = mixture._log_joint(X, y)
        responsibilities, _ = _e_step(mixture, log_joint, weights)
    previous = -np.inf
    n_iter = 0
    for n_iter in range(1, mixture.max_iter + 1):
        tic = perf_counter()
        _m_step(mixture, X, y, fit_weights, templates, responsibilities)
        expert_weights = responsibilities * fit_weights[:, None]
        log_gate = mixture._log_gate(X)
        log_likelihood = mixture._expert_log_likelihood(X, y)
        log_joint = log_gate + log_likelihood
        responsibilities, lower_bound = _e_step(mixture, log_joint, fit_weights)
        lower_bounds.append(lower_bound)
        if mixture.verbose:
            print(
                f"init {init_index} iteration {n_iter}: lower bound "
                f"{lower_bound:.6f} ({perf_counter() - tic:.2f}s)"
            )
        settled = abs(lower_bound - previous) < mixture.tol
        previous = lower_bound
        if reweighting is not None:
            effective_sizes.append(effective_sample_size(fit_weights))
            if not tilting and (settled or n_iter >= n_warmup):
                # the warm-up ends: the tilted objective is a new one
                tilting, settled, previous = True, False, -np.inf
            if tilting:
                tilt, adversary_state = _adversarial_weights(
                    mixture,
                    X,
                    log_gate,
                    log_likelihood,
                    weights,
                    reweighting,
                    random_state,
                    adversary_state,
                )
                n_tilts += 1
                if (
                    isinstance(reweighting, AdversarialReweighting)
                    and reweighting.averaging
                    and n_tilts > 1
                ):
                    # fictitious play: the mean of the tilts so far
                    fit_weights = fit_weights + (tilt - fit_weights) / n_tilts
                else:
                    fit_weights = tilt
        if settled:
            converged = True
            break
    if mixture.verbose:
        status = "converged" if converged else "did not converge"
        print(f"init {init_index} {status} after {n_iter} iterations.")
    state = {
        "experts_": mixture.experts_,
        "gate_": mixture.gate_,
        "n_iter_": n_iter,
        "converged_": converged,
        "lower_bound_": lower_bounds[-1],
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


def _adversarial_weights(
    mixture,
    X,
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
    an expert is in no sample's top k. The samples come from the experts that can spare
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
    """Refit every expert on its weighted view, then the gate on the soft targets."""
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
    _fit_gate(mixture, X, responsibilities, weights)


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
