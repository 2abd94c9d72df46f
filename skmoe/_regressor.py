"""MixtureOfExpertsRegressor: a gate routes each sample to regression experts."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.utils.validation import validate_data

from skmoe._base import BaseMixtureOfExperts


class MixtureOfExpertsRegressor(RegressorMixin, BaseMixtureOfExperts):
    """Mixture-of-Experts regressor with Gaussian expert likelihoods.

    Each expert ``k`` is a regressor ``f_k`` with its own noise scale ``sigma_k``, so
    that ``p_k(y | x) = N(y; f_k(x), sigma_k^2)``; a gate ``r(x)`` weighs the experts.
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
        ``None`` means ``Ridge()``.
    n_experts : int, default=None
        Number of experts. ``None`` means ``len(expert)`` for a list, else 2.
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
        Number of initialisations; the one with the best final likelihood is kept.
    init : {"kmeans", "pca", "random"}, default="kmeans"
        Initial responsibilities: k-means clusters of ``X``, equal-weight slabs along
        the first principal component (deterministic), or the cells of
        ``n_experts`` random samples.
    warm_start : bool, default=False
        Continue EM from the fitted model when fit is called again.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the experts' ``random_state`` left at ``None``.
    verbose : int, default=0
        Print the likelihood at each iteration when positive.
    n_jobs : int, default=None
        Experts fitted in parallel through joblib.
    reweighting : {"adversarial", "adversarial_filtered", "group_dro"}, \
            AdversarialReweighting, GroupDRO or None, default=None
        Train against adversarial sample weights, as in
        :class:`MixtureOfExpertsClassifier`; the per-sample loss is the mixture's
        negative Gaussian log-likelihood, and the expert disagreement of the filtered
        variant is ``sum_k r_k (f_k - f)^2`` divided by the variance of ``y``.
        ``"group_dro"`` (:class:`~skmoe.reweighting.GroupDRO`) weighs the
        ``groups`` given to :meth:`fit` instead of single samples.

    Attributes
    ----------
    experts_ : list of estimators
        The fitted experts.
    gate_ : classifier
        The fitted gate.
    noise_scale_ : ndarray of shape (n_experts,)
        Standard deviation of each expert's Gaussian noise. It is floored at
        ``1e-3`` times the standard deviation of ``y`` so that an expert that
        interpolates its data (a deep tree) cannot make the likelihood infinite.
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
        scale is fitted without it.)
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
        init="kmeans",
        warm_start=False,
        random_state=None,
        verbose=0,
        n_jobs=None,
        reweighting=None,
    ):
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
        )

    def _default_expert(self):
        return Ridge()

    def _check_expert(self, estimator, name):
        if not hasattr(estimator, "predict"):
            raise TypeError(f"{name}={estimator!r} has no predict method.")

    def fit(self, X, y, sample_weight=None, groups=None, **fit_params):
        """Fit the mixture by EM (soft or top-k routing) or hard EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
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
        self._raise_for_fit_params(fit_params)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        return self._fit(X, y, sample_weight, fit_params, groups)

    def _before_em(self, X, y, weights):
        mean = np.average(y, weights=weights)
        spread = np.sqrt(np.average((y - mean) ** 2, weights=weights))
        self._noise_floor = max(1e-3 * float(spread), 1e-12)
        self._target_scale = max(float(spread), 1e-12)

    def _after_m_step(self, X, y, weights):
        residuals = y[:, None] - self._expert_predictions(X)
        totals = np.maximum(weights.sum(axis=0), np.finfo(float).tiny)
        variance = (weights * residuals**2).sum(axis=0) / totals
        self.noise_scale_ = np.maximum(np.sqrt(variance), self._noise_floor)

    def _extra_state(self):
        return {"noise_scale_": self.noise_scale_}

    def _expert_disagreement(self, X, routing_weights):
        # standardised by the spread of y, so the classifier's threshold applies
        predictions = self._expert_predictions(X) / self._target_scale
        mixture = (routing_weights * predictions).sum(axis=1, keepdims=True)
        return (routing_weights * (predictions - mixture) ** 2).sum(axis=1)

    def _expert_predictions(self, X):
        return np.column_stack([expert.predict(X) for expert in self.experts_])

    def _expert_log_likelihood(self, X, y):
        standardized = (y[:, None] - self._expert_predictions(X)) / self.noise_scale_
        return (
            -0.5 * standardized**2 - np.log(self.noise_scale_) - 0.5 * np.log(2 * np.pi)
        )

    def predict_expert(self, X):
        """Prediction of every expert, whatever the routing.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        expert_predictions : ndarray of shape (n_samples, n_experts)
        """
        X = self._validate_predict_input(X)
        return self._expert_predictions(X)

    def predict(self, X):
        """Mixture mean under the routing.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X = self._validate_predict_input(X)
        return self._combine(
            X, lambda k, expert, rows: expert.predict(rows)[:, None], 1
        )[:, 0]
