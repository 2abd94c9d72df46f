"""The shared machinery of the mixtures of experts: parameters, EM and hard EM.

:class:`BaseMixtureOfExperts` holds what the classifier and the regressor share: the
parameters and their validation, the initialisation of the responsibilities, the EM loop
(soft, hard or top-k) in log space with restarts and warm starts, optionally on
adversarial sample weights after a warm-up, the M-step that fits the experts (in
parallel through joblib) and the gate, and the routing at predict time.
A subclass says how an expert is fitted on weighted data and how likely an expert finds
the observed targets (:meth:`_expert_log_likelihood`).
"""

import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real
from time import perf_counter

import numpy as np
from joblib import Parallel, delayed
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, GroupDRO, effective_sample_size

# Responsibilities below this fraction of an expert's largest one are dropped from its
# weighted fit: they do not change the fit measurably and keeping them makes tree and
# neighbour experts pay for samples they never see.
_MIN_RELATIVE_WEIGHT = 1e-8
# log of the smallest normal float: a zero likelihood becomes this, never -inf, so that
# log-sum-exp stays finite when every expert gives a sample probability zero.
_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))
# L-BFGS iterations of the default gate in one M-step (see _new_gate)
_DEFAULT_GATE_MAX_ITER = 20
# Adversarial weights are floored at this fraction of the largest one: a tilt with a
# huge eta would otherwise give most samples a weight of exactly zero, and experts
# that lose every sample cannot be refitted.
_MIN_ADVERSARIAL_WEIGHT = 1e-6
# Thresholds of the filtered reweighting's routing-relevant samples (DESIGN.md).
_REGRET_THRESHOLD = 1e-6
_DISAGREEMENT_THRESHOLD = 0.01


def _hidden_features(X, coef, intercept, activation):
    """The features ``act(X @ coef + intercept)`` of a hidden layer (solver="adam")."""
    pre = np.asarray(X, dtype=np.float64) @ coef + intercept
    return np.maximum(pre, 0.0) if activation == "relu" else np.tanh(pre)


def _fit_estimator(estimator, X, y, sample_weight, fit_params):
    """Fit one expert; module level so that joblib can pickle it."""
    if sample_weight is None:
        return estimator.fit(X, y, **fit_params)
    return estimator.fit(X, y, sample_weight=sample_weight, **fit_params)


def _seeded(estimator, random_state):
    """Give ``estimator`` (a fresh clone) a seed for every ``random_state`` left None.

    Mirrors ``sklearn.ensemble._base._set_random_states``: an int ``random_state`` of
    the mixture then makes the experts and the gate reproducible too.
    """
    estimator = clone(estimator)
    seeds = {
        name: random_state.randint(np.iinfo(np.int32).max)
        for name, value in sorted(estimator.get_params(deep=True).items())
        if (name == "random_state" or name.endswith("__random_state")) and value is None
    }
    if seeds:
        estimator.set_params(**seeds)
    return estimator


def _principal_slabs(X, weights, n_slabs):
    """Cut the data into ``n_slabs`` slabs of equal weight along the first weighted
    principal component.

    Rows with the same projection always share a slab, so integer weights give the
    same slabs as repeated rows.
    """
    mean = np.average(X, axis=0, weights=weights)
    centered = X - mean
    scatter = (centered * weights[:, None]).T @ centered
    _, vectors = np.linalg.eigh(scatter)
    direction = vectors[:, -1]
    direction = direction * np.sign(direction[np.argmax(np.abs(direction))])
    values, inverse = np.unique(centered @ direction, return_inverse=True)
    value_weights = np.bincount(inverse, weights=weights, minlength=values.shape[0])
    midpoints = np.cumsum(value_weights) - value_weights / 2
    slabs = np.minimum(
        (n_slabs * midpoints / value_weights.sum()).astype(np.intp), n_slabs - 1
    )
    return slabs[inverse]


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


class BaseMixtureOfExperts(MetaEstimatorMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the mixtures of experts; not to be used directly."""

    # ``groups`` is only Group DRO's: not requested unless the user says so, so that
    # meta-estimators routing ``groups`` to a splitter (LeaveOneDomainOut) need no
    # set_fit_request(groups=False) on every mixture.
    __metadata_request__fit = {"groups": False}

    _parameter_constraints = {
        "expert": [None, HasMethods(["fit"]), list],
        "n_experts": [None, Interval(Integral, 1, None, closed="left")],
        "gate": [None, HasMethods(["fit", "predict_proba"])],
        "routing": [StrOptions({"soft", "hard", "topk"})],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"kmeans", "pca", "random"})],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_jobs": [None, Integral],
        "reweighting": [
            None,
            StrOptions({"adversarial", "adversarial_filtered", "group_dro"}),
            AdversarialReweighting,
            GroupDRO,
        ],
    }

    @abstractmethod
    def __init__(
        self,
        expert=None,
        *,
        n_experts=None,
        gate=None,
        routing="soft",
        top_k=2,
        max_iter=100,
        tol=1e-4,
        n_init=1,
        init="kmeans",
        warm_start=False,
        random_state=None,
        verbose=0,
        n_jobs=None,
        reweighting=None,
    ):
        self.expert = expert
        self.n_experts = n_experts
        self.gate = gate
        self.routing = routing
        self.top_k = top_k
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init = init
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.reweighting = reweighting

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _default_expert(self):
        """The expert used when ``expert=None``."""

    @abstractmethod
    def _check_expert(self, estimator, name):
        """Raise a clear error if ``estimator`` cannot serve as an expert."""

    @abstractmethod
    def _expert_log_likelihood(self, X, y):
        """Return ``log p_k(y_i | x_i)`` for every sample and expert, shape (n, K)."""

    def _fit_expert_fallback(self, index, X, y, sample_weight):
        """An estimator for a routed view the expert cannot be fitted on, or None."""
        return None

    def _after_m_step(self, X, y, weights):
        """Update parameters that depend on the experts' fits (noise scales)."""

    def _before_em(self, X, y, weights):
        """Compute what every initialisation shares (validated data and weights)."""

    def _after_em(self, X, y, weights, templates, expert_weights, random_state):
        """Finish the fitted model; ``expert_weights`` (n, K) are the weights each
        final expert was fitted with."""

    def _expert_disagreement(self, X, routing_weights):
        """Per-sample spread of the experts' predictions around the mixture's."""
        raise NotImplementedError

    # ------------------------------------------------------------- validation
    def _expert_templates(self):
        """The unfitted estimators, one per expert, and the number of experts."""
        if isinstance(self.expert, list):
            if len(self.expert) == 0:
                raise ValueError("expert must be an estimator or a non-empty list.")
            if self.n_experts is not None and self.n_experts != len(self.expert):
                raise ValueError(
                    f"n_experts={self.n_experts} does not match the {len(self.expert)} "
                    "estimators given in expert; leave n_experts=None."
                )
            templates = list(self.expert)
            for index, estimator in enumerate(templates):
                if not hasattr(estimator, "fit"):
                    raise TypeError(
                        f"expert[{index}]={estimator!r} is not an estimator: it has no "
                        "fit method."
                    )
        else:
            template = self._default_expert() if self.expert is None else self.expert
            templates = [template] * (2 if self.n_experts is None else self.n_experts)
        for index, estimator in enumerate(templates):
            self._check_expert(
                estimator,
                f"expert[{index}]" if isinstance(self.expert, list) else "expert",
            )
        return templates

    def _check_weight_support(self, templates, needs_weights):
        if not needs_weights:
            return
        for index, estimator in enumerate(templates):
            if not has_fit_parameter(estimator, "sample_weight"):
                raise ValueError(
                    f"The expert {estimator!r} (expert {index}) does not accept "
                    "sample_weight in fit, which routing='soft' and routing='topk' "
                    "need for the responsibilities, and which any routing needs when "
                    "fit is given sample_weight or reweighting is set. Use "
                    "routing='hard' without sample_weight or reweighting, or an "
                    "expert whose fit takes sample_weight."
                )
        gate = self.gate
        if gate is not None and not has_fit_parameter(gate, "sample_weight"):
            raise ValueError(
                f"The gate {gate!r} does not accept sample_weight in fit, which the "
                "gate needs to learn from responsibilities."
            )

    def _check_sizes(self, n_samples, n_experts):
        if n_samples < n_experts:
            raise ValueError(
                f"Expected n_samples >= n_experts, got n_experts={n_experts} and "
                f"n_samples={n_samples}."
            )
        if self.routing == "topk" and self.top_k > n_experts:
            raise ValueError(
                f"top_k={self.top_k} must be at most n_experts={n_experts} with "
                "routing='topk'."
            )

    # ------------------------------------------------------------------- fit
    def _fit(self, X, y, sample_weight, fit_params, groups=None):
        """The EM template shared by the subclasses; ``X`` and ``y`` are validated."""
        templates = self._expert_templates()
        n_experts = len(templates)
        n_samples = X.shape[0]
        self._check_sizes(n_samples, n_experts)
        self._check_weight_support(
            templates,
            needs_weights=self.routing != "hard"
            or sample_weight is not None
            or self.reweighting is not None,
        )
        if isinstance(self.reweighting, AdversarialReweighting | GroupDRO):
            self.reweighting._validate_params()  # fail before EM, not after warm-up
        self._groups = self._check_groups(groups, X)
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
        if sample_weight is None:
            weights = np.ones(n_samples)
        else:
            weights = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            if weights.sum() <= 0:
                raise ValueError("sample_weight must not sum to zero.")
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            expert_fit_params = routed.expert.fit
        else:
            expert_fit_params = fit_params
        self._expert_fit_params = expert_fit_params
        self._before_em(X, y, weights)

        random_state = check_random_state(self.random_state)
        templates = [_seeded(template, random_state) for template in templates]
        warm = self.warm_start and hasattr(self, "experts_")
        n_init = 1 if warm else self.n_init
        best = None
        for init_index in range(n_init):
            if warm:
                responsibilities = None
            else:
                self.experts_ = None  # no warm start across initialisations
                responsibilities = self._initial_responsibilities(
                    X, weights, n_experts, random_state
                )
                self.gate_ = _seeded(self._new_gate(), random_state)
            state = self._run_em(
                X, y, weights, templates, responsibilities, init_index, random_state
            )
            if best is None or state["lower_bound_"] > best["lower_bound_"]:
                best = state
        expert_weights = best.pop("_expert_weights")
        del self._groups
        for name in (
            "adversarial_weights_",
            "effective_sample_sizes_",
            "group_weights_",
        ):
            if name not in best and hasattr(self, name):
                delattr(self, name)  # from an earlier fit with reweighting
        for name, value in best.items():
            setattr(self, name, value)
        self._after_em(
            self._features(X), y, weights, templates, expert_weights, random_state
        )
        del self._expert_fit_params
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                "iterations; increase max_iter or tol, or check the data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _new_gate(self):
        # The default gate takes at most 20 L-BFGS iterations per M-step: EM needs a
        # gate that improves, not its optimum (generalised EM), and each M-step warm
        # starts from the last. benchmarks/README.md: a full 100-iteration gate step
        # cost 1.7x the expert fits; 20 iterations reach 86% of its decrease in 22%
        # of the time.
        gate = (
            SoftmaxGate(max_iter=_DEFAULT_GATE_MAX_ITER)
            if self.gate is None
            else clone(self.gate)
        )
        if isinstance(gate, SoftmaxGate):
            # the gate's own copy: each M-step starts from the last solution
            gate.set_params(warm_start=True)
        return gate

    def _initial_responsibilities(self, X, weights, n_experts, random_state):
        n_samples = X.shape[0]
        if n_experts == 1:
            return np.ones((n_samples, 1))
        if self.init == "pca":
            labels = _principal_slabs(X, weights, n_experts)
            responsibilities = np.zeros((n_samples, n_experts))
            responsibilities[np.arange(n_samples), labels] = 1.0
        elif self.init == "kmeans":
            labels = (
                KMeans(
                    n_clusters=n_experts,
                    n_init=1,
                    random_state=random_state.randint(np.iinfo(np.int32).max),
                )
                .fit(X, sample_weight=weights)
                .labels_
            )
            responsibilities = np.zeros((n_samples, n_experts))
            responsibilities[np.arange(n_samples), labels] = 1.0
            # duplicated points can leave a cluster empty: give it random samples
            for k in np.flatnonzero(responsibilities.sum(axis=0) == 0):
                donors = random_state.choice(n_samples, size=1)
                responsibilities[donors] = 0.0
                responsibilities[donors, k] = 1.0
        else:
            # random centres drawn from the data (weight-proportionally), each sample
            # given to its nearest: random but spatially coherent. Responsibilities
            # drawn independently per sample would fit every expert to the same data,
            # a symmetric fixed point that EM never leaves.
            centres = (
                random_state.choice(
                    n_samples, size=n_experts, replace=False, p=weights / weights.sum()
                )
                if np.count_nonzero(weights) >= n_experts
                else random_state.choice(n_samples, size=n_experts, replace=False)
            )
            distances = ((X[:, None, :] - X[None, centres, :]) ** 2).sum(axis=2)
            labels = np.argmin(distances, axis=1)
            labels[centres] = np.arange(n_experts)
            responsibilities = np.zeros((n_samples, n_experts))
            responsibilities[np.arange(n_samples), labels] = 1.0
        return responsibilities

    def _reweighting(self):
        """The reweighting object, or None."""
        if self.reweighting is None or isinstance(
            self.reweighting, AdversarialReweighting | GroupDRO
        ):
            return self.reweighting
        if self.reweighting == "group_dro":
            return GroupDRO()
        return AdversarialReweighting(filtered=self.reweighting.endswith("filtered"))

    def _check_groups(self, groups, X):
        """Encoded groups for Group DRO (None when it is not used)."""
        if not isinstance(self._reweighting(), GroupDRO):
            return None  # groups are only Group DRO's: ignored otherwise
        if groups is None:
            raise ValueError(
                f"reweighting={self.reweighting!r} needs the group of every sample: "
                "pass fit(X, y, groups=...), or, inside a meta-estimator, enable "
                "metadata routing and call set_fit_request(groups=True)."
            )
        groups = np.asarray(groups)
        if groups.ndim != 1:
            raise ValueError(
                f"groups must be 1-D, one label per sample; got shape {groups.shape}."
            )
        check_consistent_length(X, groups)
        try:
            _, encoded = np.unique(groups, return_inverse=True)
        except TypeError as error:
            raise TypeError(
                f"groups must hold comparable labels (numbers or strings): {error}"
            ) from None
        if groups.dtype.kind == "f" and not np.all(np.isfinite(groups)):
            raise ValueError("groups contains NaN or infinity.")
        return encoded

    def _run_em(
        self, X, y, weights, templates, responsibilities, init_index, random_state
    ):
        """Alternate M- and E-steps from ``responsibilities`` (None: current model).

        With reweighting, the M-steps use ``fit_weights`` = the data weights tilted
        by the adversarial weights of the previous E-step, once the warm-up is over.
        """
        reweighting = self._reweighting()
        n_warmup = 0 if reweighting is None else reweighting._n_warmup(self.max_iter)
        tilting = False
        fit_weights = weights
        log_group_weights = None  # Group DRO's adversary, from equal weights
        n_tilts = 0  # tilts averaged so far (AdversarialReweighting(averaging=True))
        lower_bounds, effective_sizes = [], []
        converged = False
        if responsibilities is None:
            log_joint = self._log_joint(X, y)
            responsibilities, _ = self._e_step(log_joint, weights)
        previous = -np.inf
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            tic = perf_counter()
            self._m_step(X, y, fit_weights, templates, responsibilities)
            expert_weights = responsibilities * fit_weights[:, None]
            log_gate = self._log_gate(X)
            log_likelihood = self._expert_log_likelihood(X, y)
            log_joint = log_gate + log_likelihood
            responsibilities, lower_bound = self._e_step(log_joint, fit_weights)
            lower_bounds.append(lower_bound)
            if self.verbose:
                print(
                    f"init {init_index} iteration {n_iter}: lower bound "
                    f"{lower_bound:.6f} ({perf_counter() - tic:.2f}s)"
                )
            settled = abs(lower_bound - previous) < self.tol
            previous = lower_bound
            if reweighting is not None:
                effective_sizes.append(effective_sample_size(fit_weights))
                if not tilting and (settled or n_iter >= n_warmup):
                    # the warm-up ends: the tilted objective is a new one
                    tilting, settled, previous = True, False, -np.inf
                if tilting and isinstance(reweighting, GroupDRO):
                    fit_weights, log_group_weights = self._group_dro_weights(
                        log_gate,
                        log_likelihood,
                        weights,
                        reweighting,
                        log_group_weights,
                    )
                elif tilting:
                    tilt = self._adversarial_weights(
                        X, log_gate, log_likelihood, weights, reweighting, random_state
                    )
                    n_tilts += 1
                    if reweighting.averaging and n_tilts > 1:
                        # fictitious play: the mean of the tilts so far
                        fit_weights = fit_weights + (tilt - fit_weights) / n_tilts
                    else:
                        fit_weights = tilt
            if settled:
                converged = True
                break
        if self.verbose:
            status = "converged" if converged else "did not converge"
            print(f"init {init_index} {status} after {n_iter} iterations.")
        state = {
            "experts_": self.experts_,
            "gate_": self.gate_,
            "n_iter_": n_iter,
            "converged_": converged,
            "lower_bound_": lower_bounds[-1],
            "lower_bounds_": np.asarray(lower_bounds),
            "_expert_weights": expert_weights,
            **self._extra_state(),
        }
        if reweighting is not None:
            # the weights the final experts and gate were fitted with
            used = expert_weights.sum(axis=1)
            state["adversarial_weights_"] = used / used.sum()
            state["effective_sample_sizes_"] = np.asarray(effective_sizes)
        if isinstance(reweighting, GroupDRO):
            # the group weights of the last M-step: those behind fit_weights before
            # the final update (the data's group shares if the tilt never started)
            state["group_weights_"] = self._fitted_group_weights(expert_weights)
        return state

    def _sample_losses(self, log_gate, log_likelihood):
        """Per-sample loss of the mixture under its routing, ``-log f(y_i | x_i)``."""
        if self.routing == "hard":
            selected = np.argmax(log_gate, axis=1)
            rows = np.arange(log_gate.shape[0])
            return -log_likelihood[rows, selected]
        return -logsumexp(log_gate + log_likelihood, axis=1)

    def _adversarial_weights(
        self, X, log_gate, log_likelihood, weights, reweighting, random_state
    ):
        """Data weights times the adversarial weights, rescaled to the data's total."""
        losses = self._sample_losses(log_gate, log_likelihood)
        relevant = None
        if reweighting.filtered:
            regret = losses + log_likelihood.max(axis=1)
            relevant = regret > _REGRET_THRESHOLD
            if self.routing != "hard":
                routing_weights = np.exp(log_gate)
                disagreement = self._expert_disagreement(X, routing_weights)
                relevant |= disagreement > _DISAGREEMENT_THRESHOLD
        tilt = reweighting.compute_weights(
            losses, weights, relevant=relevant, random_state=random_state
        )
        positive = weights > 0
        tilt[positive] = np.maximum(
            tilt[positive], _MIN_ADVERSARIAL_WEIGHT * tilt.max()
        )
        return weights.sum() * tilt / tilt.sum()

    def _group_dro_weights(
        self, log_gate, log_likelihood, weights, reweighting, log_group_weights
    ):
        """Data weights spread by Group DRO's adversary after one more step."""
        groups = self._groups
        n_groups = int(groups.max()) + 1
        if log_group_weights is None:
            log_group_weights = np.full(n_groups, -np.log(n_groups))
        losses = self._sample_losses(log_gate, log_likelihood)
        tilt, log_group_weights = reweighting._step(
            losses, groups, n_groups, weights, log_group_weights
        )
        return weights.sum() * tilt, log_group_weights

    def _fitted_group_weights(self, expert_weights):
        """Each group's share of the weights the final M-step used."""
        used = expert_weights.sum(axis=1)
        shares = np.bincount(self._groups, weights=used)
        return shares / shares.sum()

    def _extra_state(self):
        return {}

    def _e_step(self, log_joint, weights):
        """Responsibilities and the weighted mean (classification) log-likelihood."""
        total = weights.sum()
        rows = np.arange(log_joint.shape[0])
        if self.routing == "hard":
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

    def _weighted_view(self, column, candidates=None):
        """The rows an expert is fitted on and their weights (None: all equal)."""
        if candidates is not None:
            column = column[candidates]
        keep = column > _MIN_RELATIVE_WEIGHT * column.max()
        rows = np.flatnonzero(keep)
        sample_weight = column[rows]
        if candidates is not None:
            rows = candidates[rows]
        if rows.size == 0:
            return rows, None
        if self.routing == "hard" and np.all(sample_weight == sample_weight[0]):
            sample_weight = None  # lets experts without sample_weight serve
        return rows, sample_weight

    def _m_step(self, X, y, weights, templates, responsibilities):
        expert_weights = responsibilities * weights[:, None]
        jobs = []
        for k, template in enumerate(templates):
            rows, sample_weight = self._weighted_view(expert_weights[:, k])
            jobs.append((k, template, rows, sample_weight))
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(self._fit_one)(k, template, X, y, rows, sample_weight)
            for k, template, rows, sample_weight in jobs
        )
        self.experts_ = fitted
        self._after_m_step(X, y, expert_weights)
        self._fit_gate(X, responsibilities, weights)

    def _fit_one(self, index, template, X, y, rows, sample_weight, warm=True):
        X_view, y_view = X[rows], y[rows]
        fallback = self._fit_expert_fallback(index, X_view, y_view, sample_weight)
        if fallback is not None:
            return fallback
        estimator = (
            self._warm_expert(index, template, y_view) if warm else clone(template)
        )
        return _fit_estimator(
            estimator, X_view, y_view, sample_weight, self._expert_fit_params
        )

    def _warm_expert(self, index, template, y_view):
        """The estimator to refit for expert ``index`` in this M-step.

        Linear models and neural networks are refitted from their previous solution
        (their ``warm_start`` only sets the starting point), which makes each M-step
        far cheaper; any other estimator is a fresh clone, since ``warm_start`` means
        something else for ensembles (adding members). A classifier whose routed view
        now holds other classes than before starts afresh.
        """
        previous = getattr(self, "experts_", None)
        module = type(template).__module__
        if (
            previous is not None
            and index < len(previous)
            and type(previous[index]) is type(template)
            and module.startswith(("sklearn.linear_model", "sklearn.neural_network"))
            and "warm_start" in template.get_params()
            and (
                not hasattr(previous[index], "classes_")
                or np.array_equal(previous[index].classes_, np.unique(y_view))
            )
        ):
            estimator = previous[index]
            estimator.set_params(warm_start=True)
            return estimator
        return clone(template)

    def _fit_gate(self, X, responsibilities, weights):
        if isinstance(self.gate_, SoftmaxGate):
            # EM needs an M-step that improves the gate, not its exact optimum
            # (generalised EM); the next M-step warm-starts from here.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.gate_._fit_targets(X, responsibilities, weights)
            return
        if self.routing == "hard":
            self.gate_.fit(X, responsibilities.argmax(axis=1), sample_weight=weights)
            return
        # a general classifier learns soft targets from one weighted copy per expert
        replicated = responsibilities * weights[:, None]
        rows, experts = np.nonzero(replicated > _MIN_RELATIVE_WEIGHT * replicated.max())
        self.gate_.fit(X[rows], experts, sample_weight=replicated[rows, experts])

    # --------------------------------------------------------------- routing
    def _log_gate(self, X):
        """Log routing weights used for training and prediction, shape (n, K)."""
        n_experts = len(self.experts_)
        if isinstance(self.gate_, SoftmaxGate):
            log_gate = self.gate_.predict_log_proba(X)
        else:
            proba = self.gate_.predict_proba(X)
            log_gate = np.full((X.shape[0], n_experts), _LOG_TINY)
            with np.errstate(divide="ignore"):
                log_gate[:, self.gate_.classes_.astype(int)] = np.maximum(
                    np.log(proba), _LOG_TINY
                )
        if self.routing == "topk" and self.top_k < n_experts:
            kept = np.argpartition(-log_gate, self.top_k - 1, axis=1)[:, : self.top_k]
            masked = np.full_like(log_gate, -np.inf)
            np.put_along_axis(
                masked, kept, np.take_along_axis(log_gate, kept, axis=1), axis=1
            )
            log_gate = masked - logsumexp(masked, axis=1, keepdims=True)
        return log_gate

    def _log_joint(self, X, y):
        return self._log_gate(X) + self._expert_log_likelihood(X, y)

    def _routing_weights(self, X):
        """Routing weights at predict time: one-hot for hard routing, else the gate."""
        log_gate = self._log_gate(X)
        if self.routing == "hard":
            weights = np.zeros_like(log_gate)
            weights[np.arange(X.shape[0]), np.argmax(log_gate, axis=1)] = 1.0
            return weights
        return np.exp(log_gate)

    def _validate_predict_input(self, X):
        """Validated ``X``, mapped to the inputs the gate and the experts see."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=True
        )
        return self._features(X)

    def _features(self, X):
        """The inputs of the gate and the experts: ``X`` itself, or the features
        ``act(X @ hidden_coef_ + hidden_intercept_)`` of the shared hidden layer
        that ``solver="adam"`` learns with ``hidden_layer_sizes``."""
        coef = getattr(self, "hidden_coef_", None)
        if coef is None:
            return X
        return _hidden_features(X, coef, self.hidden_intercept_, self.activation)

    def predict_gate_proba(self, X):
        """Routing weights of every expert for each sample.

        For ``routing="soft"`` these are the gate's probabilities; for ``"topk"`` the
        top-k renormalised probabilities (zero outside the top k); for ``"hard"`` the
        one-hot indicator of the selected expert.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        routing_weights : ndarray of shape (n_samples, n_experts)
        """
        X = self._validate_predict_input(X)
        return self._routing_weights(X)

    def _combine(self, X, expert_predict, n_outputs):
        """Sum ``routing weight * expert output``, evaluating each expert only where it
        has weight (for hard routing: only the selected expert of each sample)."""
        routing_weights = self._routing_weights(X)
        out = np.zeros((X.shape[0], n_outputs))
        for k, expert in enumerate(self.experts_):
            rows = np.flatnonzero(routing_weights[:, k] > 0)
            if rows.size:
                out[rows] += routing_weights[rows, k, None] * expert_predict(
                    k, expert, X[rows]
                )
        return out

    # -------------------------------------------------------- sklearn plumbing
    def get_metadata_routing(self):
        """Metadata routing of this estimator: ``fit`` parameters go to the experts.

        ``sample_weight`` is consumed by the mixture itself, which multiplies it into
        the responsibilities it passes to the experts and the gate.

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self).add_self_request(self)
        expert = self._default_expert() if self.expert is None else self.expert
        if isinstance(expert, list):
            expert = expert[0]
        router.add(
            expert=expert,
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )
        return router

    def _raise_for_fit_params(self, fit_params):
        _raise_for_params(fit_params, self, "fit")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        templates = (
            self.expert
            if isinstance(self.expert, list)
            else [self._default_expert() if self.expert is None else self.expert]
        )
        expert_tags = [get_tags(estimator) for estimator in templates]
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.input_tags.pairwise = False
        tags.non_deterministic = any(t.non_deterministic for t in expert_tags)
        return tags
