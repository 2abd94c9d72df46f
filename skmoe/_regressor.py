"""MixtureOfExpertsRegressor: a gate routes each sample to regression experts."""

import warnings

import numpy as np
from scipy.special import logsumexp, ndtr, ndtri
from sklearn.base import RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from skmoe import _families
from skmoe._base import SPARSE_FORMATS, BaseMixtureOfExperts
from skmoe._validation import explained_input_errors
from skmoe.solvers import _em, _stochastic
from skmoe.solvers._stochastic import (
    STOCHASTIC_PARAMETER_CONSTRAINTS,
    check_stochastic_solver,
    forget_adam_fit,
    hidden_size,
    partial_fit_stochastic,
)


def _describe_family(family, power):
    """The likelihood family as an error message names it."""
    return repr(family) if power is None else f"{family!r} with power {power}"


def _uses_adam(mixture):
    """``partial_fit`` exists with ``solver="adam"`` only."""
    return mixture.solver == "adam"


class MixtureOfExpertsRegressor(RegressorMixin, BaseMixtureOfExperts):
    """Mixture-of-Experts regressor with Gaussian, Poisson, Gamma or Tweedie experts.

    Each expert ``k`` is a regressor ``f_k`` with its own noise scale ``sigma_k``, so
    that ``p_k(y | x) = N(y; f_k(x), sigma_k^2)`` (or, with ``likelihood``, a
    Poisson, Gamma or Tweedie distribution of mean ``f_k(x)``: GLM experts);
    a gate ``r(x)`` weighs the experts.
    EM alternates responsibilities ``h_ik ∝ r_k(x_i) p_k(y_i | x_i)`` (in log space)
    with weighted refits of the experts, of their noise scales (the weighted mean
    squared residual) and of the gate. ``predict`` returns the mixture mean
    ``sum_k r_k(x) f_k(x)`` (``routing="soft"``), the prediction of the expert the gate
    selects (``"hard"``, only that expert is evaluated), or the renormalised mean over
    the ``top_k`` experts (``"topk"``).

    Parameters
    ----------
    expert : estimator or list of estimators, default=None
        Regressor cloned once per expert, or a list of regressors. ``fit`` must accept
        ``sample_weight`` unless ``routing="hard"`` and no ``sample_weight`` is given.
        ``None`` means ``Ridge()``, made at fit time: to tune its parameters
        (``expert__alpha`` in a grid search) pass ``expert=Ridge()`` explicitly.
    n_experts : int, default=None
        Number of experts. ``None`` means ``len(expert)`` for a list, else 2. At
        most the number of samples of positive weight (a ``ValueError`` otherwise,
        as for :class:`~sklearn.mixture.GaussianMixture`'s ``n_components``).
    gate : classifier, default=None
        The gate. ``None`` means ``SoftmaxGate(max_iter=20)``
        (:class:`~skmoe.gating.SoftmaxGate`): each M-step takes at most 20 L-BFGS
        iterations from the previous solution, since EM needs a gate that improves,
        not its optimum. A ``SoftmaxGate`` given here is used with its own
        ``max_iter``. Any classifier
        with ``predict_proba`` whose ``fit`` accepts ``sample_weight`` works.
    routing : {"soft", "hard", "topk"}, default="soft"
        How the experts are combined, in training and at prediction.
    top_k : int, default=2
        Number of experts per sample with ``routing="topk"``.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    tol : float, default=1e-4
        EM stops when an M-step increases its objective (``lower_bound_``) by less
        than ``tol``, as in :class:`MixtureOfExpertsClassifier`; a decrease is
        never taken for convergence.
    n_init : int, default=1
        Number of initialisations (flexmix's ``nrep``), each a full EM run from its
        own start (under ``init="auto"``, from the best of its own short runs);
        the one with the best final objective is kept. They run in parallel with
        ``n_jobs``.
    init : {"auto", "kmeans", "pca", "random", "random_partition"} or \
            array-like, default="auto"
        The start of EM. ``"auto"`` (under EM): short EM runs (at most 15
        iterations each, on at most 10,000 rows drawn at random) from the
        ``"kmeans"`` start and from four ``"random_partition"`` starts, and EM
        continues from the best of them (the em-EM strategy of Biernacki et al.,
        2003; flexmix's ``tol.em``): it reaches flexmix's optima on its NPreg and
        patent data, where k-means alone does not (:ref:`flexmix`); with the
        joint solvers ``"auto"`` is ``"kmeans"``. The named starts are partitions
        of the samples into experts (for an unpenalised gate,
        ``SoftmaxGate(C=np.inf)``, under soft and top-k routing, softened to 90%
        on the sample's expert and the rest spread evenly, so that the first gate
        fit stays finite).
        ``"kmeans"``: the clusters of k-means on ``X``; ``"pca"``: ``n_experts``
        slabs of equal weight along the first (weighted) principal component, a
        deterministic start under which integer sample weights are exactly
        equivalent to repeated rows; ``"random"``: each sample to the nearest of
        ``n_experts`` samples drawn at random; ``"random_partition"``: each sample
        to an expert drawn uniformly at random (flexmix's start), which suits
        experts that overlap in ``X`` (mixtures of regressions) and explores more
        across ``n_init`` restarts. An array gives the start itself (flexmix's
        ``cluster=``): integer expert labels of shape (n_samples,) or
        responsibilities of shape (n_samples, n_experts), used as given (rows
        normalised); then ``n_init`` must be 1. A start that leaves an expert
        without weight (a random partition of a few rows, slabs of tied rows,
        labels that skip an expert) gives it rows of the others, drawn at random,
        as EM re-seeds an expert that loses all its rows: every expert is fitted
        on data.
    warm_start : bool, default=False
        Continue from the fitted model when fit is called again (then ``n_init`` is
        ignored), as in :class:`MixtureOfExpertsClassifier`: the fitted state
        carries over, the current parameters always apply (after
        ``set_params(expert__alpha=0.1)`` every expert is refitted with
        ``alpha=0.1``), and a change the fitted state cannot follow raises a
        ``ValueError`` naming the parameter and both values: other columns in
        ``X`` (``n_features_in_``), another ``n_experts``, experts or a gate of
        another class, another likelihood, other ``gate_features``, another
        hidden layer (``hidden_layer_sizes`` under ``solver="adam"``).
        ``warm_start=False`` fits afresh.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the experts' ``random_state`` left at ``None``.
    verbose : int, default=0
        Print the likelihood at each iteration when positive.
    n_jobs : int, default=None
        Experts, and the ``n_init`` starts when ``n_init > 1``, fitted in parallel
        through joblib, as for :class:`MixtureOfExpertsClassifier`.
    reweighting : {"adversarial", "adversarial_filtered", "group_dro"}, \
            AdversarialReweighting, GroupDRO or None, default=None
        Train against adversarial sample weights, as in
        :class:`MixtureOfExpertsClassifier`; the per-sample loss is the mixture's
        negative Gaussian log-likelihood, and the expert disagreement of the filtered
        variant is ``sum_k r_k (f_k - f)^2`` divided by the variance of ``y``.
        ``"group_dro"`` (:class:`~skmoe.reweighting.GroupDRO`) weighs the
        ``groups`` given to :meth:`fit` instead of single samples. With
        ``solver="adam"`` the tilt is inside each minibatch, as for the
        classifier; ``class_conditional`` is ignored (there are no classes: the
        tilt is normalised over each batch).
    min_prior : float in [0, 1), default=0.0
        Drop an expert whose prior (its gate weight averaged over the training
        data) falls below ``min_prior``, as flexmix's ``minprior`` does: after EM
        converges, the experts below it are removed and EM goes on from the
        posteriors of the others, until every prior is at least ``min_prior``
        (when every prior falls below it, the largest expert stays and carries
        them all; ``kept_experts_`` says which remain; flexmix checks during EM, skmoe
        between runs, so an expert is dropped once its run has settled). The
        default ``0`` keeps every expert: the mixture has the ``n_experts`` asked
        for (what a grid search over ``n_experts`` compares), and experts that
        vanish are reported instead, in ``expert_priors_`` and by a warning below
        a prior of 0.001. Hard and top-k EM re-seed an expert that loses every
        sample either way. Only with ``solver="em"``.
    gate_features : array-like of int, str or bool, default=None
        The columns of ``X`` the gate sees (flexmix's concomitant variables,
        ``concomitant = FLXPmultinom(~ z)``): column indices, column names (for a
        DataFrame) or a boolean mask; ``None``: every column. The experts see every
        column; to give them fewer, make each expert a Pipeline that selects them
        (``make_pipeline(ColumnTransformer([("x", "passthrough", [1])]),
        PoissonRegressor())``). Only with ``solver="em"``.
    solver : {"em", "adam"}, default="em"
        ``"em"``: EM as above. ``"adam"``: the softmax gate and linear-Gaussian
        experts ``N(coef_k . x + intercept_k, sigma_k^2)`` (and, with
        ``hidden_layer_sizes``, a shared hidden layer feeding both) trained
        jointly by minibatch AdamW on the weighted mean negative log-likelihood
        (the likelihood EM maximises), the log noise scales learned with the
        rest and floored as EM floors them. The targets are standardised by
        their weighted mean and spread for training (so that Adam's steps do not
        depend on the unit of ``y``); ``experts_``, ``noise_scale_`` and the
        predictions are in the unit of ``y``. Needs ``routing="soft"``,
        ``gate=None`` or a :class:`~skmoe.gating.SoftmaxGate`, and ``Ridge`` or
        ``LinearRegression`` experts: a ridge's ``alpha`` becomes the L2 penalty
        ``alpha ||coef||^2 / (2 W)`` on the coefficients in standardised units
        (``W`` the total sample weight), the gate's ``1 / C`` likewise. The other
        parameters below mean what they mean for
        :class:`MixtureOfExpertsClassifier` (``max_iter`` counts epochs).
    hidden_layer_sizes : int, tuple of at most one int, or None, default=None
        Width of the shared hidden layer of ``solver="adam"``; ``None``: none.
    activation : {"relu", "tanh"}, default="relu"
        Activation of the hidden layer.
    batch_size : int, default=128
        Minibatch size of ``solver="adam"``.
    learning_rate_init : float, default=1e-2
        Peak learning rate of ``solver="adam"``.
    learning_rate : {"cosine", "constant"}, default="cosine"
        Learning-rate schedule of ``solver="adam"`` over ``max_iter`` epochs.
    weight_decay : float, default=0.0
        AdamW's decoupled weight decay on every weight (not the intercepts).
    early_stopping : bool, default=False
        Stop on a held-out ``validation_fraction`` and keep the best epoch.
    validation_fraction : float in (0, 1), default=0.1
        Fraction of the data held out with ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before ``solver="adam"`` stops.
    likelihood : {"auto", "gaussian", "poisson", "gamma", "tweedie"}, \
            default="auto"
        The distribution of ``y`` around each expert's prediction, which is its
        mean (flexmix's ``FLXMRglm(family=...)``). ``"gaussian"``: a noise scale
        per expert (``noise_scale_``); ``"poisson"``: counts ``y >= 0``, no
        dispersion; ``"gamma"``: ``y > 0``, a shape per expert (``dispersion_`` is
        one over it); ``"tweedie"``: the compound Poisson-Gamma of a
        ``TweedieRegressor`` expert's ``power`` in (1, 2), ``y >= 0``, a
        dispersion ``phi`` per expert (``Var(y) = phi mu^power``), its density
        summed by Dunn and Smyth's series. ``"auto"`` reads the experts' class
        (the final step of a Pipeline): ``PoissonRegressor`` -> Poisson,
        ``GammaRegressor`` -> Gamma, ``TweedieRegressor`` -> its power (0, 1 and
        2 are Gaussian, Poisson and Gamma), any other regressor -> Gaussian. The
        likelihood drives the E-step, the dispersions of the M-step (maximum
        likelihood), ``log_likelihood``, ``bic``/``aic``/``icl`` and
        ``predict(return_std=True)``. Use GLM experts without penalty
        (``alpha=0``) for the maximum-likelihood mixture flexmix fits.

    Attributes
    ----------
    experts_ : list of estimators
        The fitted experts.
    gate_ : classifier
        The fitted gate.
    likelihood_ : {"gaussian", "poisson", "gamma", "tweedie"}
        The likelihood the mixture was fitted with (``likelihood`` resolved).
    tweedie_power_ : float or None
        The Tweedie power of ``likelihood_="tweedie"``, else None.
    noise_scale_ : ndarray of shape (n_experts,)
        Standard deviation of each expert's Gaussian noise (Gaussian likelihood
        only). It is floored at ``1e-3`` times the standard deviation of ``y`` so
        that an expert that interpolates its data (a deep tree) cannot make the
        likelihood infinite.
    dispersion_ : ndarray of shape (n_experts,)
        Each expert's dispersion: one over the Gamma shape, or the Tweedie ``phi``
        (Gamma and Tweedie likelihoods only).
    expert_priors_ : ndarray of shape (n_experts_kept,)
        Each expert's prior: its gate weight averaged over the (weighted)
        training data (flexmix's ``prior``); ``solver="em"`` and the joint
        solvers alike.
    kept_experts_ : ndarray of shape (n_experts_kept,)
        The indices (among the ``n_experts`` fitted first) of the experts left
        after ``min_prior``; all of them by default.
    n_iter_ : int
        EM iterations of the best initialisation.
    converged_ : bool
        Whether the best initialisation converged.
    lower_bound_ : float
        The objective EM increases: the weighted mean Gaussian log-likelihood of
        the training data (for hard routing, the classification log-likelihood)
        minus the L2 penalty of a ``SoftmaxGate`` gate, ``||coef||^2 / (2 C)``,
        divided by the total weight; with ``reweighting``, weighted by the weights
        of the last M-step. (A ``Ridge`` expert's penalty is not in it: the noise
        scale is fitted without it. An M-step whose ridges shrink their
        coefficients can lower it, by at most ``alpha (||coef_before||^2 -
        ||coef_after||^2) / (2 sigma^2)`` summed over the experts and divided by
        the total weight, with ``sigma`` the noise scale before the step; GLM
        experts likewise with ``alpha S / (2 phi)``, ``S`` the expert's weight and
        ``phi`` its dispersion; only a larger fall is reported by a
        ``ConvergenceWarning``.) For top-k routing the likelihood is that of the
        truncated, renormalised gate the predictions use. Under top-k and hard
        routing without ``reweighting``, EM returns its best iterate: this is the
        largest entry of ``lower_bounds_``, and ``experts_``, ``gate_`` and
        ``noise_scale_`` are that iterate's (a re-seeded empty expert or the
        penalised experts' shrinkage can lower the objective).
    lower_bounds_ : ndarray of shape (n_iter_,)
        The objective after each iteration of the best initialisation.
    adversarial_weights_ : ndarray of shape (n_samples,)
        The weights the final experts and gate were fitted with, normalised to sum
        one; only with ``reweighting``.
    effective_sample_sizes_ : ndarray of shape (n_iter_,)
        Kish's effective sample size of the weights of each M-step; only with
        ``reweighting``.
    group_weights_ : ndarray of shape (n_groups,)
        The weight of each group (in the order of ``np.unique(groups)``) in the
        final M-step; only with Group DRO.
    hidden_coef_ : ndarray of shape (n_features_in_, n_hidden) or None
        Weights of the shared hidden layer (``solver="adam"``; ``None`` without
        one).
    hidden_intercept_ : ndarray of shape (n_hidden,) or None
        Intercepts of the shared hidden layer.
    validation_scores_ : ndarray of shape (n_iter_,)
        Validation log-likelihood after each epoch (``solver="adam"`` with
        ``early_stopping``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when ``X`` has string feature names.

    See Also
    --------
    MixtureOfExpertsClassifier : the same model for classification.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(400, 1))
    >>> y = np.abs(3 * X[:, 0]) + 0.05 * rng.normal(size=400)
    >>> moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    >>> bool(moe.score(X, y) > 0.95)
    True
    """

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
        solver="em",
        hidden_layer_sizes=None,
        activation="relu",
        batch_size=128,
        learning_rate_init=1e-2,
        learning_rate="cosine",
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        likelihood="auto",
    ):
        self.likelihood = likelihood
        self.solver = solver
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        super().__init__(
            expert,
            n_experts=n_experts,
            gate=gate,
            routing=routing,
            top_k=top_k,
            max_iter=max_iter,
            tol=tol,
            n_init=n_init,
            init=init,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            n_jobs=n_jobs,
            reweighting=reweighting,
            gate_features=gate_features,
            min_prior=min_prior,
        )

    _parameter_constraints = {
        **BaseMixtureOfExperts._parameter_constraints,
        "solver": [StrOptions({"em", "adam"})],
        "likelihood": [StrOptions({"auto", "gaussian", "poisson", "gamma", "tweedie"})],
        **STOCHASTIC_PARAMETER_CONSTRAINTS,
    }

    def _default_expert(self):
        return Ridge()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # counts and positive targets: the Poisson, Gamma and Tweedie likelihoods
        if self.likelihood in ("poisson", "gamma", "tweedie"):
            tags.target_tags.positive_only = True
        elif self.likelihood == "auto":
            templates = self.expert if isinstance(self.expert, list) else [self.expert]
            tags.target_tags.positive_only = any(
                template is not None
                and _families.family_of_expert(template)[0] != "gaussian"
                for template in templates
            )
        return tags

    def _check_expert(self, estimator, name):
        if not hasattr(estimator, "predict"):
            raise TypeError(f"{name}={estimator!r} has no predict method.")

    def fit(self, X, y, sample_weight=None, groups=None, **fit_params):
        """Fit the mixture by EM (soft or top-k routing), hard EM or AdamW.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Numeric targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights multiplied into the responsibilities the experts and the gate are
            fitted with, and into the likelihood EM maximises.
        groups : array-like of shape (n_samples,), default=None
            Group (domain) label of each sample, used by
            ``reweighting="group_dro"`` (:class:`~skmoe.reweighting.GroupDRO`),
            which needs it; ignored otherwise, so that a grid search can route the
            same ``groups`` to every candidate. Meta-estimators pass it under
            metadata routing after ``set_fit_request(groups=True)`` (not requested
            by default, so routing ``groups`` to a splitter alone needs nothing).
        **fit_params : dict
            Further parameters of the experts' ``fit``; only with metadata routing
            enabled.

        Returns
        -------
        self : MixtureOfExpertsRegressor
            The fitted mixture.
        """
        self._validate_params()
        if self.solver == "adam":
            check_stochastic_solver(self, regression=True)
        self._raise_for_fit_params(fit_params)
        # a warm start checks everything it carries over before changing anything
        warm = self._continues_fit()
        if warm:
            self._check_warm_start_features(X)
        with explained_input_errors(self):
            X, y = validate_data(
                self,
                X,
                y,
                reset=not warm,
                dtype=[np.float64, np.float32],
                y_numeric=True,
                accept_sparse=SPARSE_FORMATS,
            )
        X = self._check_sparse_solver(X)
        y = np.asarray(y, dtype=np.float64)
        family, power = self._family()
        n_hidden = hidden_size(self) if self.solver == "adam" else 0
        if warm:
            self._check_warm_start_layout(
                self._layout(n_hidden, likelihood=_describe_family(family, power))
            )
        if self.solver != "adam":
            forget_adam_fit(self)
        self._set_family(family, power)
        if np.all(np.isfinite(y)):
            _families.check_targets(self.likelihood_, y)
        self._fit(X, y, sample_weight, fit_params, groups)
        self._fitted_layout = self._layout(
            n_hidden, likelihood=_describe_family(family, power)
        )
        if self.likelihood_ != "gaussian":
            self._warn_non_positive_means(X)
        return self

    def _warn_non_positive_means(self, X):
        """Warn when an expert predicts a mean of zero or less on the training data,
        which the Poisson, Gamma and Tweedie likelihoods do not allow: the density
        is then taken at a mean of 1e-300, which rewards a negative mean where y is
        0, and ``predict`` can return negative means."""
        means = self._expert_predictions(self._features(X))
        invalid = (means <= 0).sum(axis=0)
        if invalid.any():
            experts = np.flatnonzero(invalid)
            warnings.warn(
                f"Expert(s) {experts.tolist()} predict a mean of zero or less on "
                f"{invalid[experts].tolist()} of the {X.shape[0]} training samples, "
                f"which likelihood={self.likelihood_!r} does not allow (its density "
                "is then taken at a mean of 1e-300). Use experts whose means are "
                "positive, e.g. PoissonRegressor, GammaRegressor, TweedieRegressor "
                "with a log link or HistGradientBoostingRegressor(loss='poisson').",
                UserWarning,
                stacklevel=3,
            )

    def _family(self):
        """The likelihood family and Tweedie power from ``likelihood`` and the
        experts (the power is None but for the Tweedie family)."""
        templates = self._expert_templates()
        families = [_families.family_of_expert(template) for template in templates]
        if self.likelihood == "auto":
            if len(set(families)) > 1:
                raise ValueError(
                    "likelihood='auto' takes the likelihood from the experts, which "
                    f"disagree here ({sorted(set(f for f, _ in families))}); give "
                    "experts of one family or set likelihood explicitly."
                )
            family, power = families[0]
        elif self.likelihood == "tweedie":
            powers = {power for family, power in families if family == "tweedie"}
            if len(powers) != 1 or len(set(families)) != 1:
                raise ValueError(
                    "likelihood='tweedie' takes its power from TweedieRegressor "
                    "experts with one power in (1, 2); got experts with the families "
                    f"{sorted(set(f for f, _ in families))}. Use likelihood='auto' "
                    "with TweedieRegressor experts, or another likelihood."
                )
            family, power = "tweedie", powers.pop()
        else:
            family, power = self.likelihood, None
        if self.solver == "adam" and family != "gaussian":
            raise ValueError(
                "solver='adam' trains linear-Gaussian experts; got "
                f"likelihood={self.likelihood!r} (resolved to {family!r}). Use "
                "solver='em' for other likelihoods."
            )
        return family, power

    def _set_family(self, family, power):
        """Set ``likelihood_`` and ``tweedie_power_``, and forget the dispersion of
        another family from an earlier fit."""
        self.likelihood_, self.tweedie_power_ = family, power
        kept = {"gaussian": "noise_scale_", "gamma": "dispersion_",
                "tweedie": "dispersion_"}.get(family)
        for name in ("noise_scale_", "dispersion_"):
            if name != kept and hasattr(self, name):
                delattr(self, name)

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or not np.all(np.isfinite(y)):
            raise ValueError("y must be a 1-D array of finite numbers.")
        _families.check_targets(self.likelihood_, y)
        return y

    def _solver_module(self):
        return _stochastic if self.solver == "adam" else _em

    @available_if(_uses_adam)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of ``solver="adam"`` over a chunk of data.

        As ``partial_fit`` of :class:`MixtureOfExpertsClassifier`: training
        continues from earlier calls (or from :meth:`fit`) at the constant rate
        ``learning_rate_init``, and nothing of the chunk is kept. The first call
        standardises ``y`` with the mean and spread of its chunk (the scale Adam's
        steps are taken in; predictions are in the unit of ``y``), so make the
        first chunk representative, e.g. a shuffled one: a chunk of constant ``y``
        gets a spread of 1, and the noise scales it teaches recover only slowly.
        Only with ``solver="adam"``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data: an array, a slice of a NumPy memmap, or a
            CSR/CSC matrix (densified one chunk of minibatches at a time).
        y : array-like of shape (n_samples,)
            Its numeric targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's samples.

        Returns
        -------
        self : MixtureOfExpertsRegressor
            The updated mixture.
        """
        self._validate_params()
        check_stochastic_solver(self, regression=True)
        first_call = not hasattr(self, "experts_")
        if first_call:
            self._set_family(*self._family())
        X, y = validate_data(
            self,
            X,
            y,
            reset=first_call,
            dtype=[np.float64, np.float32],
            y_numeric=True,
            accept_sparse=SPARSE_FORMATS,
        )
        X = self._check_sparse_solver(X)
        if not first_call:
            self._check_warm_start_layout(
                self._layout(
                    hidden_size(self),
                    likelihood=_describe_family(*self._family()),
                ),
                partial=True,
            )
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
        y = np.asarray(y, dtype=np.float64)
        partial_fit_stochastic(self, X, y, sample_weight, first_call, regression=True)
        if first_call:
            self._fitted_layout = self._layout(
                hidden_size(self),
                likelihood=_describe_family(self.likelihood_, self.tweedie_power_),
            )
        return self

    def _before_em(self, X, y, weights):
        mean = np.average(y, weights=weights)
        spread = np.sqrt(np.average((y - mean) ** 2, weights=weights))
        self._noise_floor = max(1e-3 * float(spread), 1e-12)
        self._target_scale = max(float(spread), 1e-12)

    def _after_m_step(self, X, y, weights):
        dispersion = _families.fit_dispersion(
            self.likelihood_,
            y,
            self._expert_predictions(X),
            weights,
            power=self.tweedie_power_,
            floor=self._noise_floor**2,
        )
        if self.likelihood_ == "gaussian":
            self.noise_scale_ = np.sqrt(dispersion)
        elif dispersion is not None:
            self.dispersion_ = dispersion

    def _extra_state(self):
        return {
            name: getattr(self, name)
            for name in ("noise_scale_", "dispersion_")
            if hasattr(self, name)
        }

    def _dispersion(self):
        """Gaussian variance, Gamma ``1 / shape``, Tweedie ``phi``; None for Poisson."""
        if self.likelihood_ == "gaussian":
            return self.noise_scale_**2
        return getattr(self, "dispersion_", None)

    def _log_density(self, y, means):
        """``log p_k(y_i)`` of every expert with mean ``means[i, k]``, shape (n, K)."""
        return _families.log_density(
            self.likelihood_, y, means, self._dispersion(), self.tweedie_power_
        )

    def _expert_disagreement(self, X, routing_weights):
        # standardised by the spread of y, so the classifier's threshold applies
        predictions = self._expert_predictions(X) / self._target_scale
        mixture = (routing_weights * predictions).sum(axis=1, keepdims=True)
        return (routing_weights * (predictions - mixture) ** 2).sum(axis=1)

    def _expert_predictions(self, X):
        return np.column_stack([expert.predict(X) for expert in self.experts_])

    def _expert_log_likelihood(self, X, y):
        return self._log_density(y, self._expert_predictions(X))

    def predict_expert(self, X):
        """Prediction of every expert, whatever the routing.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        expert_predictions : ndarray of shape (n_samples, n_experts)
        """
        X = self._validate_predict_input(X)
        return self._expert_predictions(X)

    def predict(self, X, return_std=False):
        """Mixture mean under the routing, and optionally its standard deviation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation of the predictive distribution
            ``p(y | x) = sum_k w_k(x) N(y; f_k(x), sigma_k^2)``, with ``w`` the
            routing weights (one-hot for hard routing, renormalised for top-k):
            ``sqrt(sum_k w_k (sigma_k^2 + (f_k - mean)^2))``, the experts' noise
            plus their disagreement.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        X = self._validate_predict_input(X)
        if return_std:
            weights, means = self._predictive_mixture(X)
            mean = (weights * means).sum(axis=1)
            expert_variance = _families.variance(
                self.likelihood_, means, self._dispersion(), self.tweedie_power_
            )
            variance = (
                weights * (expert_variance + (means - mean[:, None]) ** 2)
            ).sum(axis=1)
            return mean, np.sqrt(variance)
        return self._combine(
            X, lambda k, expert, rows: expert.predict(rows)[:, None], 1
        )[:, 0]

    # ----------------------------------------------- the predictive distribution
    def _predictive_mixture(self, X):
        """Routing weights ``(n, K)`` and expert means ``(n, K)`` of ``p(y | x)``.

        An expert is evaluated only on the samples it has weight for (hard routing:
        one expert per sample); its mean is left at zero elsewhere.
        """
        weights = self._routing_weights(X)
        means = np.zeros_like(weights)
        for k, expert in enumerate(self.experts_):
            rows = np.flatnonzero(weights[:, k] > 0)
            if rows.size:
                means[rows, k] = expert.predict(X[rows])
        return weights, means

    def log_likelihood(self, X, y):
        """Log density of each ``y`` under the predictive distribution at its ``x``.

        ``log p(y_i | x_i) = log sum_k w_k(x_i) N(y_i; f_k(x_i), sigma_k^2)``, with
        the routing weights ``w`` (one-hot for hard routing). Its mean over
        held-out data is the mixture's predictive log-likelihood (higher is
        better), the score that compares probabilistic regressors.

        Not named ``score_samples``: in scikit-learn that method takes ``X``
        alone and returns the density of ``X``
        (:class:`~sklearn.mixture.GaussianMixture`,
        :class:`~sklearn.neighbors.KernelDensity`), and scikit-learn's estimator
        checks call it so; this is a density of ``y`` given ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        X = self._validate_predict_input(X)
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64,
                                     input_name="y"))
        check_consistent_length(X, y)
        _families.check_targets(self.likelihood_, y)
        weights, means = self._predictive_mixture(X)
        log_normal = self._log_density(y, means)
        with np.errstate(divide="ignore"):
            log_weights = np.log(weights)
        # experts without weight contribute nothing (log weight -inf)
        log_normal[weights == 0] = 0.0
        return logsumexp(log_weights + log_normal, axis=1)

    def predict_quantiles(self, X, quantiles=(0.05, 0.5, 0.95)):
        """Quantiles of the predictive distribution ``p(y | x)``.

        The mixture's CDF ``F(y) = sum_k w_k Phi((y - f_k) / sigma_k)`` has no
        closed-form inverse; each quantile ``q`` is found by bisection between the
        smallest and the largest of the experts' own ``q``-quantiles (the mixture's
        lies between them), to a width of ``1e-10`` times the noise scale. For hard
        routing it is the selected expert's Gaussian quantile. A central interval
        of coverage ``c`` is ``quantiles=((1 - c) / 2, (1 + c) / 2)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        quantiles : float or array-like of shape (n_quantiles,), \
                default=(0.05, 0.5, 0.95)
            Probability levels, each in ``(0, 1)``.

        Returns
        -------
        y_quantiles : ndarray of shape (n_samples, n_quantiles) or (n_samples,)
            One column per level (a 1-D array for a scalar ``quantiles``).
        """
        X = self._validate_predict_input(X)
        if self.likelihood_ != "gaussian":
            raise ValueError(
                "predict_quantiles inverts a mixture of Gaussians; this mixture was "
                f"fitted with likelihood={self.likelihood_!r}. Use predict(X, "
                "return_std=True) for its mean and spread."
            )
        levels = np.asarray(quantiles, dtype=np.float64)
        if levels.ndim > 1 or not np.all((levels > 0) & (levels < 1)):
            raise ValueError(
                "quantiles must be a float or a 1-D array of levels in (0, 1); got "
                f"quantiles={quantiles!r}."
            )
        weights, means = self._predictive_mixture(X)
        used = weights > 0
        scale = self.noise_scale_
        out = np.empty((X.shape[0], np.atleast_1d(levels).shape[0]))
        for j, level in enumerate(np.atleast_1d(levels)):
            expert_quantiles = means + scale * ndtri(level)
            low = np.where(used, expert_quantiles, np.inf).min(axis=1)
            high = np.where(used, expert_quantiles, -np.inf).max(axis=1)
            # bisection halves the bracket each step: enough steps to shrink the
            # widest bracket to 1e-10 of the smallest noise scale
            width = np.max(high - low, initial=0.0)
            n_steps = int(np.ceil(np.log2(max(width / (1e-10 * scale.min()), 1.0))))
            for _ in range(n_steps):
                middle = 0.5 * (low + high)
                cdf = (weights * ndtr((middle[:, None] - means) / scale)).sum(axis=1)
                below = cdf < level
                low = np.where(below, middle, low)
                high = np.where(below, high, middle)
            out[:, j] = 0.5 * (low + high)
        return out if levels.ndim == 1 else out[:, 0]
