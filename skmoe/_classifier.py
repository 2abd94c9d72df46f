"""MixtureOfExpertsClassifier: a gate routes each sample to classifier experts."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from skmoe._base import _LOG_TINY, BaseMixtureOfExperts


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
    """Mixture-of-Experts classifier trained by EM, hard EM or top-k EM.

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
    mixture explains worst.

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
        The gate. ``None`` means :class:`~skmoe.gating.SoftmaxGate()`. Any classifier
        with ``predict_proba`` whose ``fit`` accepts ``sample_weight`` works; it learns
        the soft targets from one weighted copy of each sample per expert.
    routing : {"soft", "hard", "topk"}, default="soft"
        How the experts are combined, in training and at prediction.
    top_k : int, default=2
        Number of experts per sample with ``routing="topk"``; at most ``n_experts``.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    tol : float, default=1e-4
        EM stops when the weighted mean log-likelihood (for hard EM, the
        classification log-likelihood) changes by less than ``tol``.
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

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    experts_ : list of estimators
        The fitted experts; their ``classes_`` index into ``classes_``.
    gate_ : classifier
        The fitted gate.
    n_iter_ : int
        EM iterations of the best initialisation.
    converged_ : bool
        Whether the best initialisation converged.
    lower_bound_ : float
        Weighted mean log-likelihood of the training data at the end of the best
        initialisation (for hard routing, the classification log-likelihood).
    lower_bounds_ : ndarray of shape (n_iter_,)
        The likelihood after each iteration of the best initialisation.
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
        )

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

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the mixture by EM (soft or top-k routing) or hard EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights multiplied into the responsibilities the experts and the gate are
            fitted with, and into the likelihood EM maximises.
        **fit_params : dict
            Further parameters of the experts' ``fit``; only with metadata routing
            enabled (``sklearn.set_config(enable_metadata_routing=True)``).

        Returns
        -------
        self : MixtureOfExpertsClassifier
            The fitted mixture.
        """
        self._validate_params()
        self._raise_for_fit_params(fit_params)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if self.classes_.shape[0] < 2:
            raise ValueError(
                "MixtureOfExpertsClassifier needs samples of at least 2 classes in y; "
                f"got only one class: {self.classes_[0]!r}."
            )
        return self._fit(X, encoded, sample_weight, fit_params)

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

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        expert_proba : ndarray of shape (n_samples, n_experts, n_classes)
        """
        X = self._validate_predict_input(X)
        n_classes = self.classes_.shape[0]
        return np.stack(
            [_aligned_proba(expert, X, n_classes) for expert in self.experts_], axis=1
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
            X,
            lambda k, expert, rows: _aligned_proba(expert, rows, n_classes),
            n_classes,
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
