"""The shared machinery of the mixtures of experts: parameters, restarts, routing.

:class:`BaseMixtureOfExperts` holds what the classifier and the regressor share: the
parameters and their validation, the initialisation of the responsibilities, the
restarts (``n_init``) and warm starts around the solver that trains one
initialisation (a module of :mod:`skmoe.solvers`: EM by default), how one expert is
fitted on a weighted routed view, and the routing at predict time. A subclass says
how an expert is fitted on weighted data and how likely an expert finds the observed
targets (:meth:`_expert_log_likelihood`).
"""

import copy
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.pipeline import Pipeline
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
    _num_features,
    check_consistent_length,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)
from threadpoolctl import ThreadpoolController

from skmoe._criteria import count_parameters
from skmoe._validation import explained_input_errors
from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, GroupDRO
from skmoe.solvers import _em
from skmoe.solvers._em import _MIN_RELATIVE_WEIGHT

# log of the smallest normal float: a zero likelihood becomes this, never -inf, so that
# log-sum-exp stays finite when every expert gives a sample probability zero.
_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))
# Share of the initial responsibilities spread uniformly over the experts for an
# unpenalised gate under soft and top-k routing, so that the first M-step's targets
# are not a separable partition (see _initial_responsibilities).
_INITIAL_SOFTENING = 0.1
# k-means (init="kmeans") finds its centres on at most this many rows, drawn at
# random, and assigns every row to the nearest; below it, on all of them.
_KMEANS_MAX_ROWS = 20_000
# init="auto" under EM: short EM runs from these starts, of at most this many
# iterations each, on at most this many rows; the best run is continued (see
# _short_em_start; benchmarks/README_starts.md measures the choice).
_AUTO_STARTS = ("kmeans",) + ("random_partition",) * 4
_AUTO_SHORT_ITER = 15
_AUTO_MAX_SAMPLES = 10_000
# An expert whose prior (mean gate weight on the training data) falls below this is
# reported in a warning when min_prior does not drop it.
_FAINT_PRIOR = 0.001
# L-BFGS iterations of the default gate in one M-step (see _new_gate)
_DEFAULT_GATE_MAX_ITER = 20
# Sparse formats the mixtures take (with every solver); any other sparse format is
# converted to CSR by validate_data, and CSC to CSR once in fit, since the solvers
# select rows (EM's routed views, cross-fitting folds, minibatches).
SPARSE_FORMATS = ["csr", "csc"]


def _accepts_sample_weight(estimator):
    """Whether ``estimator.fit`` takes ``sample_weight``; for a Pipeline, whether its
    final step does (the mixture weighs the samples of that step)."""
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        return final not in (None, "passthrough") and _accepts_sample_weight(final)
    return has_fit_parameter(estimator, "sample_weight")


def _hidden_features(X, coef, intercept, activation):
    """The features ``act(X @ coef + intercept)`` of a hidden layer (solver="adam")."""
    if sp.issparse(X):
        pre = np.asarray(X @ coef, dtype=np.float64) + intercept
    else:
        pre = np.asarray(X, dtype=np.float64) @ coef + intercept
    return np.maximum(pre, 0.0) if activation == "relu" else np.tanh(pre)


_OPENMP = None  # threadpoolctl's view of the loaded OpenMP runtimes, made once


def _one_openmp_thread():
    """A context in which OpenMP runs one thread.

    For the fits that gain nothing from OpenMP threads and lose much when another
    process holds a core: scikit-learn's linear models evaluate their losses over
    the rows with OpenMP, and the k-means start clusters a few thousand rows. On two
    cores beside a busy process, libgomp's waiting threads made a mixture of two
    ``PoissonRegressor`` experts on 30,000 rows take 3.3 to 12.7 s instead of 1.4 to
    6.2 s (``benchmarks/bench_openmp_experts.py``), and a test of flexmix's patent
    model 302 s instead of 6 s. A ``ThreadpoolController``
    made once keeps the cost at about 10 microseconds a call (``threadpool_limits``
    looks up the loaded libraries every time: 1 ms).
    """
    global _OPENMP
    if _OPENMP is None:
        _OPENMP = ThreadpoolController()
    return _OPENMP.limit(limits=1, user_api="openmp")


def _final_step(estimator):
    """The model a Pipeline ends with (the estimator itself otherwise)."""
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def _fit_estimator(estimator, X, y, sample_weight, fit_params):
    """Fit one expert; module level so that joblib can pickle it.

    A linear model of scikit-learn (alone or ending a Pipeline) is fitted with one
    OpenMP thread (:func:`_one_openmp_thread`); other experts (gradient boosting, whose
    OpenMP threads do real work) as they are.
    """
    if type(_final_step(estimator)).__module__.startswith("sklearn.linear_model"):
        with _one_openmp_thread():
            return _fit_weighted(estimator, X, y, sample_weight, fit_params)
    return _fit_weighted(estimator, X, y, sample_weight, fit_params)


def _fit_weighted(estimator, X, y, sample_weight, fit_params):
    """Fit one expert with its sample weights.

    A Pipeline gets ``sample_weight`` in its final step, the model the weights are
    for (the preprocessing steps, a scaler or a spline basis, are fitted unweighted):
    as ``<last step>__sample_weight`` without metadata routing, and through the final
    step's fit request with it (set on this clone, never on the user's estimator).
    """
    if sample_weight is None:
        return estimator.fit(X, y, **fit_params)
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        if not _routing_enabled():
            weight_param = {f"{name}__sample_weight": sample_weight}
            return estimator.fit(X, y, **weight_param, **fit_params)
        final.set_fit_request(sample_weight=True)
        for _, step in estimator.steps[:-1]:
            # a preprocessing step that could take the weights and was not told
            # otherwise does without them, as without metadata routing
            requests = step.get_metadata_routing().fit.requests
            if requests.get("sample_weight", False) is None:
                step.set_fit_request(sample_weight=False)
        return estimator.fit(X, y, sample_weight=sample_weight, **fit_params)
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


def _same_parameters(estimator, template):
    """Whether ``estimator`` has ``template``'s parameters, ``warm_start`` and
    ``random_state`` aside (those two only say where a fit starts)."""
    fitted = estimator.get_params(deep=False)
    current = template.get_params(deep=False)
    if fitted.keys() != current.keys():
        return False
    for name, value in current.items():
        if name in ("warm_start", "random_state") or fitted[name] is value:
            continue
        try:
            if not np.array_equal(fitted[name], value):
                return False
        except (TypeError, ValueError):  # values that do not compare: unequal
            return False
    return True


def _run_start(mixture, X, y, weights, templates, init_index, random_state, warm):
    """One start of the fit: a solver run from ``init``'s start (or, ``warm``,
    from the fitted model), repeated after dropping the experts whose prior fell
    below ``min_prior``; module level so that joblib can pickle it.

    Runs on ``mixture`` itself (one start) or on a shallow copy (restarts through
    joblib). Returns the solver's state with ``kept_experts_``, ``expert_priors_``
    and ``_removed``: the attributes the solver deleted from ``mixture``, which the
    caller deletes from the estimator when ``mixture`` was a copy.
    """
    random_state = check_random_state(random_state)
    solver = mixture._solver_module()
    before = set(vars(mixture))
    n_experts = len(templates)
    kept = np.arange(n_experts)
    if warm:
        # the previous fit's state under the current parameters (their shapes
        # are checked in fit): the fitted experts give the first E-step, the
        # M-steps refit clones of the current templates (_warm_expert)
        responsibilities = None
        kept = getattr(mixture, "kept_experts_", kept)
        gate = _seeded(mixture._new_gate(), random_state)
        if isinstance(gate, SoftmaxGate):
            # the fitted coefficients with the current C, tol and max_iter: the
            # gate's own warm start goes on from them
            mixture.gate_.set_params(**gate.get_params())
        else:
            # a general gate is refitted from scratch at every M-step: the
            # posteriors of the previous model are all of its state to keep
            responsibilities, _ = _em._e_step(
                mixture, mixture._log_joint(X, y), weights
            )
            mixture.gate_ = gate
    else:
        mixture.experts_ = None  # no warm start across initialisations
        mixture.gate_ = _seeded(mixture._new_gate(), random_state)
        # init="auto" leaves experts_ and gate_ at its best short run
        responsibilities = mixture._initial_responsibilities(
            X, weights, n_experts, random_state, y=y, templates=templates
        )
    while True:
        state = solver.run(
            mixture,
            X,
            y,
            weights,
            [templates[k] for k in kept],
            responsibilities,
            init_index,
            random_state,
        )
        priors = mixture._gate_priors(mixture._features(X), weights)
        vanished = priors < mixture.min_prior
        if vanished.all():
            # a min_prior above every prior: only fewer experts can meet it, so the
            # largest stays (it then carries the whole prior)
            vanished[np.argmax(priors)] = False
        if not vanished.any():
            break
        # flexmix's minprior: drop the experts whose prior fell below it and go on
        # from the posteriors of the others, with a fresh gate
        responsibilities = state["_expert_weights"][:, ~vanished]
        totals = responsibilities.sum(axis=1, keepdims=True)
        responsibilities = np.where(
            totals > 0, responsibilities / np.where(totals > 0, totals, 1), 1.0
        )
        responsibilities /= responsibilities.sum(axis=1, keepdims=True)
        kept = kept[~vanished]
        mixture.experts_ = None
        mixture.gate_ = _seeded(mixture._new_gate(), random_state)
    state["kept_experts_"] = kept
    state["expert_priors_"] = priors
    state["_removed"] = sorted(before - set(vars(mixture)))
    return state


def _principal_slabs(X, weights, n_slabs):
    """Cut the data into ``n_slabs`` slabs of equal weight along the first weighted
    principal component.

    Rows with the same projection always share a slab, so integer weights give the
    same slabs as repeated rows. Sparse ``X`` is not centred (that would densify
    it): its scatter is ``X^T W X - w mean mean^T``, of shape (d, d).
    """
    if sp.issparse(X):
        mean = np.asarray(X.T @ weights).ravel() / weights.sum()
        weighted = sp.csr_matrix(X.multiply(weights[:, None]))
        scatter = (X.T @ weighted).toarray() - weights.sum() * np.outer(mean, mean)
    else:
        mean = np.average(X, axis=0, weights=weights)
        centered = X - mean
        scatter = (centered * weights[:, None]).T @ centered
    _, vectors = np.linalg.eigh(scatter)
    direction = vectors[:, -1]
    direction = direction * np.sign(direction[np.argmax(np.abs(direction))])
    if sp.issparse(X):
        projection = np.asarray(X @ direction).ravel() - mean @ direction
    else:
        projection = centered @ direction
    values, inverse = np.unique(projection, return_inverse=True)
    value_weights = np.bincount(inverse, weights=weights, minlength=values.shape[0])
    midpoints = np.cumsum(value_weights) - value_weights / 2
    slabs = np.minimum(
        (n_slabs * midpoints / value_weights.sum()).astype(np.intp), n_slabs - 1
    )
    return slabs[inverse]


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
        "init": [
            StrOptions({"auto", "kmeans", "pca", "random", "random_partition"}),
            "array-like",
        ],
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
        "gate_features": [None, "array-like"],
        "min_prior": [Interval(Real, 0, 1, closed="left")],
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
        init="auto",
        warm_start=False,
        random_state=None,
        verbose=0,
        n_jobs=None,
        reweighting=None,
        gate_features=None,
        min_prior=0.0,
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
        self.gate_features = gate_features
        self.min_prior = min_prior

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
            if not _accepts_sample_weight(estimator):
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

    # ------------------------------------------------------------- warm start
    def _continues_fit(self):
        """Whether this ``fit`` continues the previous one (``warm_start``)."""
        return self.warm_start and hasattr(self, "experts_")

    def _check_warm_start_features(self, X):
        """Raise if ``X`` has not the number of columns of the fit a warm start
        continues (before ``validate_data``, which then checks their names)."""
        try:
            n_features = _num_features(X)
        except TypeError:
            return  # not a 2-D X: validate_data says what is wrong with it
        if n_features != self.n_features_in_:
            raise ValueError(
                "warm_start=True continues the previous fit, which had "
                f"n_features_in_={self.n_features_in_}; X has {n_features} "
                "features. Set warm_start=False to fit afresh on these features."
            )

    def _check_warm_start_classes(self, classes):
        """Raise if ``y`` has not the classes of the fit a warm start continues."""
        if not np.array_equal(classes, self.classes_):
            raise ValueError(
                "warm_start=True continues the previous fit, whose classes_ are "
                f"{self.classes_.tolist()}; y has the classes {classes.tolist()}. "
                "Set warm_start=False to fit afresh on these classes."
            )

    def _layout(self, n_hidden, likelihood=None):
        """The shape of the fitted state, as it reads in an error message.

        A warm start carries the fitted gate and experts over to the next fit
        under the current parameters; these are the parts of them the current
        parameters must leave as they were: the number of experts (and of
        templates, ``min_prior`` may have dropped some), the experts' and the
        gate's classes, the gate's columns, the hidden layer of ``solver="adam"``
        and the regressor's likelihood ``likelihood``.
        """
        templates = self._expert_templates()
        gate = SoftmaxGate if self.gate is None else type(self.gate)
        layout = {
            "n_experts": str(len(templates)),
            "the experts' classes": (
                f"[{', '.join(type(template).__name__ for template in templates)}]"
            ),
            "the gate's class": gate.__name__,
            "the gate's columns (gate_features)": (
                f"all {self.n_features_in_}"
                if self.gate_features is None
                else str(self._gate_columns().tolist())
            ),
            "the hidden layer (hidden_layer_sizes under solver='adam')": (
                f"{n_hidden} units" if n_hidden else "none"
            ),
        }
        if likelihood is not None:
            layout["the likelihood"] = likelihood
        return layout

    def _check_warm_start_layout(self, layout, partial=False):
        """Raise a ValueError if the current parameters change the shape of the
        fitted state a warm start (or, ``partial``, a call of ``partial_fit``)
        continues from (see :meth:`_layout`).

        As scikit-learn's warm starts where they check: ``MLPClassifier`` refuses
        other classes and other columns, forests and gradient boosting fewer
        estimators; a cold start would hide that ``warm_start`` did nothing, and
        would silently discard what ``partial_fit`` had learnt.
        """
        previous = getattr(self, "_fitted_layout", layout)
        for what, value in layout.items():
            if previous.get(what, value) != value:
                if partial:
                    raise ValueError(
                        f"partial_fit continues the previous fit, but {what} "
                        f"changed from {previous[what]} to {value}. Call fit, or "
                        "partial_fit on a clone, to start afresh with the new "
                        "parameters."
                    )
                raise ValueError(
                    f"warm_start=True continues the previous fit, but {what} "
                    f"changed from {previous[what]} to {value}. Set "
                    "warm_start=False to fit afresh with the new parameters."
                )

    # ------------------------------------------------------------------- fit
    def _fit(self, X, y, sample_weight, fit_params, groups=None):
        """The EM template shared by the subclasses; ``X`` and ``y`` are validated."""
        solver = self._solver_module()
        templates = solver.check(self)
        n_experts = len(templates)
        n_samples = X.shape[0]
        self._check_sizes(n_samples, n_experts)
        self._check_weight_support(templates, needs_weights=sample_weight is not None)
        if isinstance(self.reweighting, AdversarialReweighting | GroupDRO):
            self.reweighting._validate_params()  # fail before EM, not after warm-up
        self._groups = self._check_groups(groups, X)
        if self.gate_features is not None:
            if solver is not _em:
                raise ValueError(
                    "gate_features (a gate on its own columns) is an option of EM: "
                    f"the joint solvers feed the gate every column; got "
                    f"gate_features={self.gate_features!r} with a solver other than "
                    "'em'."
                )
            self._gate_columns()  # errors before EM
        if self.min_prior > 0 and solver is not _em:
            raise ValueError(
                "min_prior drops experts between EM runs; the joint solvers train a "
                f"fixed number of experts. Got min_prior={self.min_prior!r} with a "
                "solver other than 'em'."
            )
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
            n_weighted = int(np.count_nonzero(weights))
            if n_weighted < n_experts:
                # an expert needs a sample of positive weight to be fitted on
                raise ValueError(
                    "Expected at least n_experts samples of positive sample_weight, "
                    f"got n_experts={n_experts} and {n_weighted} of the "
                    f"n_samples={n_samples} samples with positive weight."
                )
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            expert_fit_params = routed.expert.fit
        else:
            expert_fit_params = fit_params
        self._expert_fit_params = expert_fit_params
        self._before_em(X, y, weights)

        random_state = check_random_state(self.random_state)
        templates = [_seeded(template, random_state) for template in templates]
        warm = self._continues_fit()
        n_init = 1 if warm else self.n_init
        if n_init == 1:
            best = _run_start(self, X, y, weights, templates, 0, random_state, warm)
        else:
            # every start on its own copy with its own seed, so that joblib can run
            # them anywhere (processes, a Dask or Ray cluster) and the fit is the
            # same whatever the backend and n_jobs; X, y and the weights are the
            # same objects in every task, so loky memmaps them and Dask scatters
            # them once per fit, not once per start
            seeds = random_state.randint(np.iinfo(np.int32).max, size=n_init)
            starts = Parallel(n_jobs=self.n_jobs)(
                delayed(_run_start)(
                    copy.copy(self), X, y, weights, templates, index, seed, False
                )
                for index, seed in enumerate(seeds)
            )
            best = max(starts, key=lambda state: state["lower_bound_"])  # first max
            for name in best.pop("_removed"):
                if hasattr(self, name):
                    delattr(self, name)  # what the solver forgets of earlier fits
        best.pop("_removed", None)
        templates = [templates[k] for k in best["kept_experts_"]]
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
        faint = np.flatnonzero(self.expert_priors_ < _FAINT_PRIOR)
        if faint.size and self.min_prior == 0:
            warnings.warn(
                f"Expert(s) {faint.tolist()} of the fitted mixture carry less than "
                f"{100 * _FAINT_PRIOR:g}% of the gate's weight on the training data "
                f"(expert_priors_={np.round(self.expert_priors_, 4).tolist()}); fewer "
                "n_experts may do, or min_prior drops such experts while fitting.",
                UserWarning,
                stacklevel=3,
            )
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                "iterations; increase max_iter or tol, or check the data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _gate_priors(self, X, weights):
        """Each expert's prior: its gate weight averaged over the (weighted) data,
        flexmix's ``prior``."""
        return np.average(np.exp(self._log_gate(X)), axis=0, weights=weights)

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

    def _initial_responsibilities(
        self, X, weights, n_experts, random_state, *, y=None, templates=None
    ):
        """The responsibilities of the first M-step.

        Every named start but ``"auto"`` is a partition of the samples. One made
        from ``X`` (k-means, slabs, nearest centres) is linearly separable, and a
        gate without penalty (``SoftmaxGate(C=np.inf)``, flexmix's concomitant
        model) fitted on it diverges in the first M-step and freezes EM; for such a
        gate the partition is softened towards the uniform (``_INITIAL_SOFTENING``)
        under soft and top-k routing. A penalised gate stays finite on a partition
        and starts from it unchanged; hard EM's M-steps see only one-hot
        responsibilities, and keep the partition.

        ``init="auto"`` under EM, given ``y`` and the expert ``templates``, runs
        short EM runs (:meth:`_short_em_start`) and returns the posteriors of the
        best, leaving ``experts_`` and ``gate_`` at its fit; for the other solvers
        (or without ``y``) it is the k-means start.
        """
        n_samples = X.shape[0]
        if n_experts == 1:
            return np.ones((n_samples, 1))
        if not isinstance(self.init, str):
            return self._given_responsibilities(n_samples, n_experts)
        if self.init == "auto" and y is not None and self._solver_module() is _em:
            return self._short_em_start(X, y, weights, templates, random_state)
        init = "kmeans" if self.init == "auto" else self.init
        labels = self._initial_partition(X, weights, n_experts, random_state, init)
        return self._partition_responsibilities(labels, n_experts)

    def _partition_responsibilities(self, labels, n_experts):
        """One-hot responsibilities of a partition, softened for an unpenalised gate
        under soft and top-k routing (see :meth:`_initial_responsibilities`)."""
        responsibilities = np.zeros((labels.shape[0], n_experts))
        responsibilities[np.arange(labels.shape[0]), labels] = 1.0
        if self.routing != "hard" and self._unpenalised_gate():
            responsibilities = (
                1 - _INITIAL_SOFTENING
            ) * responsibilities + _INITIAL_SOFTENING / n_experts
        return responsibilities

    def _short_em_start(self, X, y, weights, templates, random_state):
        """``init="auto"``: the best of short EM runs from several starts.

        The em-EM strategy of Biernacki, Celeux and Govaert (2003), close to
        flexmix's ``tol.em`` start: EM from the k-means start and from random
        partitions (``_AUTO_STARTS``), each for at most ``_AUTO_SHORT_ITER``
        iterations; the run with the highest objective is continued. k-means suits
        experts that own regions of ``X`` (classifiers), random partitions experts
        that overlap in ``X`` (mixtures of regressions, flexmix's NPreg and
        patent), and the random ones differ from seed to seed, so that ``n_init``
        restarts explore. On more than ``_AUTO_MAX_SAMPLES`` rows the short runs
        see a random subset of that many rows (without metadata for the experts
        and without reweighting, which are tied to all the rows), so that their
        cost does not grow with the data. Returns the posteriors of the best run
        on all the rows, and leaves ``experts_``, ``gate_`` (and the noise scales)
        at its fit, from which the full run goes on.
        """
        n_experts = len(templates)
        n_samples = X.shape[0]
        n_iter = min(_AUTO_SHORT_ITER, self.max_iter)
        X_short, y_short, weights_short = X, y, weights
        if (
            n_samples > _AUTO_MAX_SAMPLES
            and not self._expert_fit_params
            and self._reweighting() is None
        ):
            rows = np.sort(
                random_state.choice(n_samples, size=_AUTO_MAX_SAMPLES, replace=False)
            )
            X_short, y_short, weights_short = X[rows], y[rows], weights[rows]
        best = None
        for init in _AUTO_STARTS:
            labels = self._initial_partition(
                X_short, weights_short, n_experts, random_state, init
            )
            self.experts_ = None
            self.gate_ = _seeded(self._new_gate(), random_state)
            with warnings.catch_warnings():
                # a short run stops before it converges; the run continued from
                # the best one reports on its own
                warnings.simplefilter("ignore", ConvergenceWarning)
                state = _em.run(
                    self,
                    X_short,
                    y_short,
                    weights_short,
                    templates,
                    self._partition_responsibilities(labels, n_experts),
                    0,
                    random_state,
                    max_iter=n_iter,
                )
            if best is None or state["lower_bound_"] > best["lower_bound_"]:
                best = state
        for name in ("experts_", "gate_", *self._extra_state()):
            setattr(self, name, best[name])
        responsibilities, _ = _em._e_step(self, self._log_joint(X, y), weights)
        return responsibilities

    def _unpenalised_gate(self):
        return isinstance(self.gate, SoftmaxGate) and np.isinf(self.gate.C)

    def _given_responsibilities(self, n_samples, n_experts):
        """``init`` given as labels or responsibilities (flexmix's ``cluster=``)."""
        if self.n_init != 1:
            raise ValueError(
                "init given as an array is a single start: n_init must be 1; got "
                f"n_init={self.n_init}."
            )
        given = np.asarray(self.init)
        if given.ndim == 1:
            if given.shape[0] != n_samples or not np.issubdtype(
                given.dtype, np.integer
            ):
                raise ValueError(
                    "init given as labels must hold one integer expert index per "
                    f"sample: expected shape ({n_samples},), got an array of shape "
                    f"{given.shape} and dtype {given.dtype}."
                )
            if given.min() < 0 or given.max() >= n_experts:
                raise ValueError(
                    f"init labels must lie in [0, n_experts={n_experts}); got values "
                    f"from {given.min()} to {given.max()}."
                )
            responsibilities = np.zeros((n_samples, n_experts))
            responsibilities[np.arange(n_samples), given] = 1.0
            return responsibilities
        if given.shape != (n_samples, n_experts):
            raise ValueError(
                "init given as responsibilities must have shape (n_samples, "
                f"n_experts) = ({n_samples}, {n_experts}); got {given.shape}."
            )
        given = given.astype(np.float64)
        totals = given.sum(axis=1, keepdims=True)
        if not np.all(np.isfinite(given)) or np.any(given < 0) or np.any(totals <= 0):
            raise ValueError(
                "init given as responsibilities must be finite and non-negative, with "
                "a positive sum in every row."
            )
        return given / totals

    def _initial_partition(self, X, weights, n_experts, random_state, init):
        """The expert each sample starts with, under the named start ``init``."""
        n_samples = X.shape[0]
        if init == "random_partition":
            # flexmix's start: every sample to an expert drawn uniformly at random.
            # Not made from X, so it suits experts that overlap in X (mixtures of
            # regressions); the softening keeps EM off the symmetric fixed point.
            return random_state.randint(n_experts, size=n_samples)
        if init == "pca":
            return _principal_slabs(X, weights, n_experts)
        if init == "kmeans":
            kmeans = KMeans(
                n_clusters=n_experts,
                n_init=1,
                random_state=random_state.randint(np.iinfo(np.int32).max),
            )
            with _one_openmp_thread():  # a start on at most a few thousand rows
                weighted = np.flatnonzero(weights > 0)
                if weighted.shape[0] > _KMEANS_MAX_ROWS:
                    # the centres of a uniform subsample (weighted as the data): on
                    # 200k rows, k-means on all of them cost 8 LogisticRegression fits,
                    # a third of an Adam fit (benchmarks/README_time_to_good_model.md)
                    sample = np.sort(
                        random_state.choice(weighted, _KMEANS_MAX_ROWS, replace=False)
                    )
                    kmeans.fit(X[sample], sample_weight=weights[sample])
                    labels = kmeans.predict(X)
                else:
                    labels = kmeans.fit(X, sample_weight=weights).labels_
            # duplicated points can leave a cluster empty: give it a random sample
            for k in np.setdiff1d(np.arange(n_experts), labels):
                labels[random_state.choice(n_samples, size=1)] = k
            return labels
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
        if sp.issparse(X):
            # ||x||^2 - 2 x.c + ||c||^2: no (n, K, d) difference array
            distances = euclidean_distances(X, X[centres], squared=True)
        else:
            distances = ((X[:, None, :] - X[None, centres, :]) ** 2).sum(axis=2)
        labels = np.argmin(distances, axis=1)
        labels[centres] = np.arange(n_experts)
        return labels

    def _solver_module(self):
        """The module of :mod:`skmoe.solvers` that trains this mixture."""
        return _em

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

    def _extra_state(self):
        return {}

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
        something else for ensembles (adding members). The previous estimator is
        reused only while it has the template's parameters (``random_state`` aside,
        which only seeds the start it skips): after ``set_params`` between two warm
        fits the first M-step refits a clone of the changed template. A classifier
        whose routed view now holds other classes than before starts afresh.
        """
        previous = getattr(self, "experts_", None)
        module = type(template).__module__
        if (
            previous is not None
            and index < len(previous)
            and type(previous[index]) is type(template)
            and module.startswith(("sklearn.linear_model", "sklearn.neural_network"))
            and "warm_start" in template.get_params()
            and _same_parameters(previous[index], template)
            and (
                not hasattr(previous[index], "classes_")
                or np.array_equal(previous[index].classes_, np.unique(y_view))
            )
        ):
            estimator = previous[index]
            estimator.set_params(warm_start=True)
            if "random_state" in template.get_params():
                estimator.set_params(random_state=template.random_state)
            return estimator
        return clone(template)

    # --------------------------------------------------------------- routing
    def _gate_columns(self):
        """Indices of the columns of ``X`` the gate sees (``gate_features``)."""
        selection = np.asarray(self.gate_features)
        n_features = self.n_features_in_
        if selection.ndim != 1 or selection.shape[0] == 0:
            raise ValueError(
                "gate_features must be a non-empty 1-D list of column indices, column "
                f"names or a boolean mask; got gate_features={self.gate_features!r}."
            )
        if selection.dtype.kind == "b":
            if selection.shape[0] != n_features or not selection.any():
                raise ValueError(
                    f"gate_features as a boolean mask needs {n_features} entries, one "
                    f"per column, at least one True; got "
                    f"gate_features={self.gate_features!r}."
                )
            return np.flatnonzero(selection)
        if selection.dtype.kind in "OUS":
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError(
                    "gate_features given as column names needs X with column names "
                    f"(a DataFrame); got gate_features={self.gate_features!r}."
                )
            missing = [str(name) for name in selection if name not in set(names)]
            if missing:
                raise ValueError(
                    f"gate_features names columns that X does not have: {missing}; "
                    f"X has {[str(name) for name in names]}."
                )
            return np.array([np.flatnonzero(names == name)[0] for name in selection])
        if selection.dtype.kind not in "iu" or np.any(
            (selection < -n_features) | (selection >= n_features)
        ):
            raise ValueError(
                "gate_features must hold column indices in [0, n_features_in_="
                f"{n_features}), column names or a boolean mask; got "
                f"gate_features={self.gate_features!r}."
            )
        return selection % n_features

    def _gate_input(self, X):
        """The columns of ``X`` the gate is fitted on and routes by."""
        if self.gate_features is None:
            return X
        return X[:, self._gate_columns()]

    def _log_gate(self, X):
        """Log routing weights used for training and prediction, shape (n, K)."""
        n_experts = len(self.experts_)
        X = self._gate_input(X)
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
        with explained_input_errors(self):
            X = validate_data(
                self, X, reset=False, dtype=[np.float64, np.float32],
                ensure_all_finite=True, accept_sparse=SPARSE_FORMATS,
            )
        return self._features(self._check_sparse_solver(X))

    def _check_sparse_solver(self, X):
        """``X`` row-sliceable: CSC as CSR, dense as it is.

        Every solver takes CSR: EM as it is, ``solver="gradient"`` and
        ``solver="adam"`` densifying one block of rows (of whole minibatches) at a
        time for their kernels, never the whole matrix.
        """
        if not sp.issparse(X):
            return X
        return X.tocsr() if X.format != "csr" else X

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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

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

    # ------------------------------------------------- information criteria
    @abstractmethod
    def _encode_targets(self, y):
        """``y`` as the fitted model's internal targets (class indices or floats)."""

    def _predictive_log_likelihood(self, X, y):
        """``log p_k(y_i | x_i)`` as the fitted model predicts it, shape (n, K)."""
        return self._expert_log_likelihood(X, y)

    def _log_likelihood_terms(self, X, y):
        """Per-sample log-likelihood ``log f(y_i | x_i)`` under the routing, and the
        posterior probability of each expert given ``(x_i, y_i)``."""
        X = self._validate_predict_input(X)
        y = self._encode_targets(y)
        check_consistent_length(X, y)
        log_gate = self._log_gate(X)
        log_joint = log_gate + self._predictive_log_likelihood(X, y)
        if self.routing == "hard":
            rows = np.arange(X.shape[0])
            selected = np.argmax(log_gate, axis=1)
            posterior = np.zeros_like(log_joint)
            posterior[rows, selected] = 1.0
            return log_joint[rows, selected] - log_gate[rows, selected], posterior
        log_norm = logsumexp(log_joint, axis=1)
        return log_norm, np.exp(log_joint - log_norm[:, None])

    def _criterion(self, X, y, penalty):
        """The criterion ``penalty`` ("bic" or "aic") and the posterior over experts
        (for ICL), from one pass over the data."""
        check_is_fitted(self)
        n_parameters = count_parameters(self)
        log_likelihood, posterior = self._log_likelihood_terms(X, y)
        n_samples = log_likelihood.shape[0]
        per_parameter = np.log(n_samples) if penalty == "bic" else 2.0
        value = -2.0 * float(log_likelihood.sum()) + per_parameter * n_parameters
        return value, posterior

    def bic(self, X, y):
        """Bayesian information criterion of the mixture on ``(X, y)``.

        ``-2 log L + p log n``, with ``log L`` the log-likelihood of ``y`` given
        ``X`` under the mixture's routing and ``p`` the number of free parameters
        of the gate and the experts (:ref:`choosing_experts` says what is counted;
        penalised experts count their nominal coefficients). Lower is better; fit
        ``n_experts = 1, 2, ...`` and keep the smallest, as with flexmix's
        ``stepFlexmix`` or scikit-learn's ``GaussianMixture``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        bic : float
        """
        return self._criterion(X, y, "bic")[0]

    def aic(self, X, y):
        """Akaike information criterion of the mixture on ``(X, y)``.

        ``-2 log L + 2 p``; see :meth:`bic`. Lower is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        aic : float
        """
        return self._criterion(X, y, "aic")[0]

    def icl(self, X, y):
        """Integrated completed likelihood criterion (ICL-BIC) on ``(X, y)``.

        :meth:`bic` plus twice the entropy of the posterior assignment of samples
        to experts, ``-2 sum_i sum_k h_ik log h_ik`` (Biernacki, Celeux and Govaert,
        2000): it also penalises experts that overlap, and prefers mixtures whose
        experts are well separated. Equal to BIC under hard routing. Lower is
        better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        icl : float
        """
        bic, posterior = self._criterion(X, y, "bic")
        positive = posterior > 0
        entropy = -float(np.sum(posterior[positive] * np.log(posterior[positive])))
        return bic + 2.0 * entropy

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
        # sparse X reaches the gate and every expert as it is
        gate_sparse = self.gate is None or get_tags(self.gate).input_tags.sparse
        tags.input_tags.sparse = gate_sparse and all(
            t.input_tags.sparse for t in expert_tags
        )
        tags.input_tags.pairwise = False
        tags.non_deterministic = any(t.non_deterministic for t in expert_tags)
        return tags
