"""MixtureOfExpertsClassifier: a gate routes each sample to classifier experts."""

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from skmoe._base import _LOG_TINY, BaseMixtureOfExperts
from skmoe.calibration import ProbabilityCalibrator
from skmoe.solvers import _em, _gradient

# Folds of the cross-fitting behind expert_calibration.
_CALIBRATION_FOLDS = 5


def _aligned_proba(expert, X, n_classes):
    """``expert.predict_proba(X)`` with one column per class of the mixture.

    An expert fitted on a routed view may have seen only some classes; the classes it
    never saw get probability zero.
    """
    proba = expert.predict_proba(X)
    seen = expert.classes_
    if seen.shape[0] == n_classes:
        return proba
    aligned = np.zeros((X.shape[0], n_classes))
    aligned[:, seen.astype(np.intp)] = proba
    return aligned


class MixtureOfExpertsClassifier(ClassifierMixin, BaseMixtureOfExperts):
    """Mixture-of-Experts classifier trained by EM, hard EM, top-k EM or gradient.

    A gate ``r(x)`` (by default a multinomial logistic regression,
    :class:`~skmoe.gating.SoftmaxGate`) weighs ``K`` classifier experts ``p_k(y | x)``.
    ``routing="soft"`` predicts with the mixture ``sum_k r_k(x) p_k(y | x)`` and is
    trained by EM; ``routing="hard"`` predicts with the single expert the gate selects
    (only that expert is evaluated) and is trained by hard (classification) EM;
    ``routing="topk"`` predicts with the renormalised mixture of the ``top_k`` experts
    the gate ranks highest.

    EM alternates an E-step, which computes in log space the responsibilities
    ``h_ik ∝ r_k(x_i) p_k(y_i | x_i)``, and an M-step, which refits expert ``k`` with
    ``sample_weight = w_i h_ik`` (``w`` the user's sample weights) and the gate on the
    soft targets ``h`` with weights ``w``. Hard EM replaces ``h`` by the indicator of
    its argmax; an expert that loses all its samples is re-seeded with the samples the
    mixture explains worst. ``solver="gradient"`` trains a softmax gate and logistic
    experts together instead, by L-BFGS on the mixture's likelihood or on its exact
    tilted (adversarial) objective.

    Parameters
    ----------
    expert : estimator or list of estimators, default=None
        Classifier cloned once per expert, or a list of classifiers for heterogeneous
        experts. Each needs ``predict_proba``, and a ``fit`` that accepts
        ``sample_weight`` unless ``routing="hard"`` and no ``sample_weight`` is
        given. ``None`` means ``LogisticRegression()``. An expert whose routed view
        holds a single class is replaced by a
        :class:`~sklearn.dummy.DummyClassifier` predicting that class.
    n_experts : int, default=None
        Number of experts. ``None`` means ``len(expert)`` for a list, else 2.
    gate : classifier, default=None
        The gate. ``None`` means ``SoftmaxGate(max_iter=20)``
        (:class:`~skmoe.gating.SoftmaxGate`): each M-step takes at most 20 L-BFGS
        iterations from the previous solution, since EM needs a gate that improves,
        not its optimum. A ``SoftmaxGate`` given here is used with its own
        ``max_iter``. Any classifier
        with ``predict_proba`` whose ``fit`` accepts ``sample_weight`` works; it learns
        the soft targets from one weighted copy of each sample per expert.
    routing : {"soft", "hard", "topk"}, default="soft"
        How the experts are combined, in training and at prediction.
    top_k : int, default=2
        Number of experts per sample with ``routing="topk"``; at most ``n_experts``.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation; with
        ``solver="gradient"``, of L-BFGS iterations (warm-up and tilted phase
        together), of which joint training usually needs several hundred.
    tol : float, default=1e-4
        EM stops when an M-step increases its objective (``lower_bound_``, a mean
        per unit of sample weight) by less than ``tol``, and, with
        ``reweighting``, the adversary's move changes it by less than ``tol`` too;
        a decrease is never taken for convergence (and an M-step that decreases it
        beyond rounding raises a ``ConvergenceWarning``). With
        ``solver="gradient"``, L-BFGS stops when no component of the objective's
        gradient (the objective being a mean over samples) exceeds ``tol``.
    n_init : int, default=1
        Number of initialisations; the one with the best final likelihood is kept.
    init : {"kmeans", "pca", "random"}, default="kmeans"
        Initial responsibilities: the clusters of k-means on ``X``; ``n_experts``
        slabs of equal weight along the first (weighted) principal component, a
        deterministic start under which integer sample weights are exactly equivalent
        to repeated rows; or each sample given to the nearest of ``n_experts``
        samples drawn at random.
    warm_start : bool, default=False
        Continue EM from the fitted experts and gate when fit is called again (then
        ``n_init`` is ignored).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, and the ``random_state`` of experts and gate that
        have one left at ``None`` (as scikit-learn's ensembles do), so that an int
        makes fit reproducible.
    verbose : int, default=0
        Print the likelihood at each iteration when positive.
    n_jobs : int, default=None
        Experts fitted in parallel through joblib (``None``: 1 unless in a
        :func:`joblib.parallel_backend` context; ``-1``: all processors).
    reweighting : {"adversarial", "adversarial_filtered", "group_dro"}, \
            AdversarialReweighting, GroupDRO or None, default=None
        Train against adversarial sample weights (KL-DRO): after a warm-up, each
        M-step refits expert ``k`` with ``sample_weight = W q_i h_ik`` and the gate
        with ``W q_i`` (``solver="gradient"`` minimises the tilted objective
        itself; see ``solver``), where ``q`` are the weights
        :class:`~skmoe.reweighting.AdversarialReweighting` computes from the
        per-sample losses of the current mixture, ``L_i = -log sum_k r_k(x_i)
        p_k(y_i | x_i)`` (for hard routing, ``-log p_s(y_i | x_i)`` of the selected
        expert ``s``), tilting the user's ``sample_weight`` ``w`` (``q ∝ w exp(eta L)``
        inside minibatches, with the default divergence bound), and ``W = sum w``.
        ``"adversarial"`` means ``AdversarialReweighting()``,
        ``"adversarial_filtered"`` ``AdversarialReweighting(filtered=True)``, whose
        routing-relevant samples are those with mixture regret
        ``L_i - min_k(-log p_k(y_i | x_i)) > 1e-6`` or expert disagreement
        ``sum_k r_k(x_i) ||p_k(x_i) - f(x_i)||^2 > 0.01``. ``None``: plain EM.
        ``"group_dro"`` means :class:`~skmoe.reweighting.GroupDRO` with its
        defaults: the weights are spread over the ``groups`` given to :meth:`fit`
        by exponentiated-gradient steps on each group's mean loss (Group DRO), and
        evenly inside a group. Needs experts whose ``fit`` accepts
        ``sample_weight``.
    expert_calibration : {"temperature", "sigmoid", "isotonic"} or None, \
            default=None
        Calibrate every expert on its routed view after EM, with cross-fitting: the
        samples are cut into 5 folds; for each fold and expert a fresh copy of the
        expert is fitted on the other folds with the weights the final expert was
        fitted with (its responsibilities), and predicts the fold. A
        :class:`~skmoe.calibration.ProbabilityCalibrator` per expert is then fitted
        on these out-of-fold probabilities with the routing weights as sample
        weights: under hard routing the samples the gate sends to the expert, under
        soft and top-k routing every sample weighted by ``w_i r_k(x_i)``, the weight
        the expert gets at prediction. The final expert is the one fitted on all its
        data; its predictions go through the map. ``None``: no calibration. With
        ``solver="gradient"`` the copies are fitted by ``LogisticRegression.fit``
        with the final posterior responsibilities as weights (EM's M-step, not joint
        training).
    solver : {"em", "gradient"}, default="em"
        How the mixture is trained. ``"em"``: EM (soft, hard or top-k as
        ``routing`` says), with any experts whose ``fit`` accepts
        ``sample_weight``. ``"gradient"``: the gate and the experts are trained
        jointly by L-BFGS on all their coefficients at once; it needs
        ``routing="soft"``, ``gate=None`` or a
        :class:`~skmoe.gating.SoftmaxGate`, and ``LogisticRegression`` experts
        with an L2 penalty (or none) and no ``class_weight``. The objective is the
        weighted mean loss ``sum_i (w_i / W) L_i``, ``L_i = -log sum_k r_k(x_i)
        p_k(y_i | x_i)`` computed by log-sum-exp, plus the experts' and the gate's
        L2 penalties ``||coef||^2 / (2 C)`` divided by ``W = sum w``: the same
        penalised likelihood as EM's M-steps, whose experts and gate add the
        penalty to a weighted sum of losses. Training starts from one M-step of
        EM on the initial responsibilities (so ``init``, ``n_init``,
        ``random_state`` and ``warm_start`` keep their meaning); the experts'
        and the gate's own ``max_iter`` and ``tol`` are not used. With
        ``reweighting``, after the warm-up the objective is the exact tilted one
        inside minibatches, differentiated as
        :class:`~skmoe.reweighting.AdversarialReweighting`'s ``gradient`` says;
        each of at most 3 rounds fixes the minibatch partition, the relevant sets
        and the bounded ``eta'`` of each batch at its start (so that L-BFGS sees
        one smooth objective), the next round redraws them after convergence.
        ``experts_`` are then fitted ``LogisticRegression`` objects and ``gate_``
        a fitted ``SoftmaxGate``. The regressor has EM only.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    experts_ : list of estimators
        The fitted experts, without their calibration maps; their ``classes_`` index
        into ``classes_``.
    expert_calibrators_ : list of ProbabilityCalibrator or None
        The calibration map of each expert (``None`` for an expert the gate never
        selects); only with ``expert_calibration`` set.
    gate_ : classifier
        The fitted gate.
    n_iter_ : int
        EM iterations of the best initialisation.
    converged_ : bool
        Whether the best initialisation converged.
    lower_bound_ : float
        The objective EM increases, at the end of the best initialisation: the
        weighted mean log-likelihood of the training data (for hard routing, the
        classification log-likelihood) minus the L2 penalties of a ``SoftmaxGate``
        and of L2-penalised ``LogisticRegression`` experts, ``||coef||^2 / (2 C)``
        each, divided by the total weight (EM with penalised M-steps maximises the
        penalised likelihood, while the plain one may fall). With ``reweighting``,
        the weights are those of the last M-step, ``w q``: the tilted objective
        that M-step increased. With ``solver="gradient"``, the weighted mean
        log-likelihood without the penalties.
    lower_bounds_ : ndarray of shape (n_iter_,)
        The objective after each iteration of the best initialisation (with
        ``solver="gradient"``, after each L-BFGS iteration, weighted as
        ``lower_bound_`` is by that iteration's weights).
    adversarial_weights_ : ndarray of shape (n_samples,)
        The weights ``w q`` the final experts and gate were fitted with, normalised
        to sum one (with ``solver="gradient"``: the weights of the final tilted
        objective at the final losses); only with ``reweighting``.
    effective_sample_sizes_ : ndarray of shape (n_iter_,)
        Kish's effective sample size ``(sum v)^2 / sum v^2`` (``1 / sum q^2`` for
        ``v = q`` summing to one) of the weights ``v`` of each M-step, or of each
        L-BFGS iteration with ``solver="gradient"`` (Kish's size of ``w`` during
        an unweighted warm-up); only with ``reweighting``.
    group_weights_ : ndarray of shape (n_groups,)
        The weight of each group (in the order of ``np.unique(groups)``) in the
        final M-step; only with Group DRO.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when ``X`` has string feature names.

    See Also
    --------
    MixtureOfExpertsRegressor : the same model for regression.
    sklearn.ensemble.VotingClassifier : fixed, input-independent weights.

    References
    ----------
    .. [1] Jordan, M. I. and Jacobs, R. A. (1994). Hierarchical mixtures of experts and
       the EM algorithm. Neural Computation 6(2).
    .. [2] Wong, Prinster, Saria, Chellappa and Liu (2026). Calibrated mixtures of
       experts under distribution shift. ICML.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmoe import MixtureOfExpertsClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> moe = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    >>> moe.predict_proba(X[:2]).shape
    (2, 3)
    >>> moe.predict_gate_proba(X[:2]).shape
    (2, 2)

    Hard routing with experts calibrated on the samples routed to them:

    >>> calibrated = MixtureOfExpertsClassifier(
    ...     n_experts=2, routing="hard", expert_calibration="temperature",
    ...     random_state=0,
    ... ).fit(X, y)
    >>> len(calibrated.expert_calibrators_)
    2

    Joint gradient training of the gate and the logistic experts:

    >>> joint = MixtureOfExpertsClassifier(
    ...     n_experts=2, solver="gradient", max_iter=500, random_state=0,
    ... ).fit(X, y)
    >>> type(joint.experts_[0]).__name__, bool(joint.converged_)
    ('LogisticRegression', True)
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
        expert_calibration=None,
        solver="em",
    ):
        self.expert_calibration = expert_calibration
        self.solver = solver
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

    _parameter_constraints = {
        **BaseMixtureOfExperts._parameter_constraints,
        "expert_calibration": [
            None,
            StrOptions({"sigmoid", "isotonic", "temperature"}),
        ],
        "solver": [StrOptions({"em", "gradient"})],
    }

    def _default_expert(self):
        return LogisticRegression()

    def _check_expert(self, estimator, name):
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(
                f"{name}={estimator!r} has no predict_proba; the experts of "
                "MixtureOfExpertsClassifier must predict class probabilities."
            )

    def _fit_expert_fallback(self, index, X, y, sample_weight):
        if np.unique(y).shape[0] < 2:
            return DummyClassifier(strategy="prior").fit(X, y, sample_weight)
        return None

    def fit(self, X, y, sample_weight=None, groups=None, **fit_params):
        """Fit the mixture by EM (soft or top-k routing), hard EM or joint gradient.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
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
            enabled (``sklearn.set_config(enable_metadata_routing=True)``).

        Returns
        -------
        self : MixtureOfExpertsClassifier
            The fitted mixture.
        """
        self._validate_params()
        self._solver_module().check(self)  # before the data: parameter errors first
        self._raise_for_fit_params(fit_params)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if self.classes_.shape[0] < 2:
            raise ValueError(
                "MixtureOfExpertsClassifier needs samples of at least 2 classes in y; "
                f"got only one class: {self.classes_[0]!r}."
            )
        return self._fit(X, encoded, sample_weight, fit_params, groups)

    def _solver_module(self):
        return _gradient if self.solver == "gradient" else _em

    def _after_em(self, X, y, weights, templates, expert_weights, random_state):
        if self.expert_calibration is None:
            if hasattr(self, "expert_calibrators_"):
                del self.expert_calibrators_  # from an earlier fit with calibration
            return
        self.expert_calibrators_ = None  # the cross-fitting sees raw experts
        n_classes = self.classes_.shape[0]
        routing_weights = self._routing_weights(X) * weights[:, None]
        counts = np.bincount(y, minlength=n_classes)
        n_splits = min(_CALIBRATION_FOLDS, X.shape[0])
        splitter = (StratifiedKFold if counts.min() >= n_splits else KFold)(
            n_splits=n_splits,
            shuffle=True,
            random_state=random_state.randint(np.iinfo(np.int32).max),
        )
        folds = list(splitter.split(X, y))
        jobs = []
        for k, template in enumerate(templates):
            for train, test in folds:
                test = test[routing_weights[test, k] > 0]
                if test.size:
                    rows, sample_weight = self._weighted_view(
                        expert_weights[:, k], candidates=train
                    )
                    jobs.append((k, template, rows, sample_weight, test))
        predictions = Parallel(n_jobs=self.n_jobs)(
            delayed(self._out_of_fold_proba)(
                k, template, X, y, rows, sample_weight, test
            )
            for k, template, rows, sample_weight, test in jobs
        )
        out_of_fold = np.zeros((X.shape[0], len(templates), n_classes))
        for (k, _, _, _, test), proba in zip(jobs, predictions, strict=True):
            out_of_fold[test, k] = proba
        calibrators = []
        for k in range(len(templates)):
            routed = np.flatnonzero(routing_weights[:, k] > 0)
            if routed.size == 0:
                calibrators.append(None)  # never selected: nothing to calibrate on
                continue
            calibrators.append(
                ProbabilityCalibrator(method=self.expert_calibration).fit(
                    out_of_fold[routed, k],
                    y[routed],
                    sample_weight=routing_weights[routed, k],
                )
            )
        self.expert_calibrators_ = calibrators

    def _out_of_fold_proba(self, index, template, X, y, rows, sample_weight, test):
        """Probabilities on ``test`` of a fresh expert fitted on ``rows`` only."""
        n_classes = self.classes_.shape[0]
        if rows.size == 0:
            return np.full((test.size, n_classes), 1.0 / n_classes)
        expert = self._fit_one(index, template, X, y, rows, sample_weight, warm=False)
        return _aligned_proba(expert, X[test], n_classes)

    def _expert_proba(self, index, X):
        """Class probabilities of expert ``index``, through its calibration map."""
        proba = _aligned_proba(self.experts_[index], X, self.classes_.shape[0])
        calibrators = getattr(self, "expert_calibrators_", None)
        if calibrators is None or calibrators[index] is None:
            return proba
        return calibrators[index].predict(proba)

    def _expert_disagreement(self, X, routing_weights):
        # raw experts: the calibration maps are fitted after EM
        n_classes = self.classes_.shape[0]
        expert_proba = np.stack(
            [_aligned_proba(expert, X, n_classes) for expert in self.experts_], axis=1
        )
        mixture = np.einsum("nk,nkc->nc", routing_weights, expert_proba)
        squared = ((expert_proba - mixture[:, None, :]) ** 2).sum(axis=2)
        return (routing_weights * squared).sum(axis=1)

    def _expert_log_likelihood(self, X, y):
        rows = np.arange(X.shape[0])
        log_likelihood = np.empty((X.shape[0], len(self.experts_)))
        n_classes = self.classes_.shape[0]
        with np.errstate(divide="ignore"):
            for k, expert in enumerate(self.experts_):
                proba = _aligned_proba(expert, X, n_classes)[rows, y]
                log_likelihood[:, k] = np.maximum(np.log(proba), _LOG_TINY)
        return log_likelihood

    def predict_expert_proba(self, X):
        """Class probabilities of every expert, whatever the routing.

        With ``expert_calibration`` these are the calibrated probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        expert_proba : ndarray of shape (n_samples, n_experts, n_classes)
        """
        X = self._validate_predict_input(X)
        return np.stack(
            [self._expert_proba(k, X) for k in range(len(self.experts_))], axis=1
        )

    def predict_proba(self, X):
        """Class probabilities of the mixture under its routing.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._validate_predict_input(X)
        n_classes = self.classes_.shape[0]
        proba = self._combine(
            X, lambda k, expert, rows: self._expert_proba(k, rows), n_classes
        )
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
