"""Scorers of the calibration metrics, and a ``get_scorer`` that knows their names.

A calibration scorer calls ``predict_proba`` of the fitted estimator and returns the
negated error (higher is better), so it goes into ``scoring=`` of
``cross_val_score``, ``cross_validate`` and ``GridSearchCV``. Unlike a
:func:`sklearn.metrics.make_scorer` scorer it passes the estimator's ``classes_`` to
the metric as ``labels``: a shifted test fold often misses a class that the model
scores, and a metric given only ``y_true`` cannot tell which column is which (it
raised, and scikit-learn turned the error into a NaN score). :func:`get_scorer`
returns a copy of skmoe's scorer for its name and falls back to
:func:`sklearn.metrics.get_scorer` for every other name.
"""

import copy
import inspect

import numpy as np
import sklearn
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import get_scorer_names as _sklearn_get_scorer_names
from sklearn.utils.metadata_routing import MetadataRequest

from skmoe.metrics._calibration import (
    adaptive_calibration_error,
    classwise_calibration_error,
    debiased_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    root_mean_squared_calibration_error,
    smooth_calibration_error,
    worst_group_calibration_error,
)

# Parameters of a metric that the scorer fills itself, never metadata.
_SCORER_FILLED = frozenset({"y_true", "y_proba", "labels"})


def _proba_with_classes(estimator, X, y_true):
    """``predict_proba(X)`` and the classes of its columns, widened to ``y_true``'s.

    A domain held out by a shift splitter can hold a class that the training
    folds lacked (a penguin species found on one island only): the model gives it
    probability zero, so it gets a column of zeros. Its samples then count as
    top-label mistakes at the model's confidence, which is what they are.
    """
    proba = np.asarray(estimator.predict_proba(X))
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return proba, None
    classes = np.asarray(classes)
    unseen = np.setdiff1d(np.unique(np.asarray(y_true)), classes)
    if unseen.shape[0] == 0:
        return proba, classes
    widened = np.union1d(classes, unseen)
    padded = np.zeros((proba.shape[0], widened.shape[0]), dtype=proba.dtype)
    padded[:, np.searchsorted(widened, classes)] = proba
    return padded, widened


class _CalibrationScorer:
    """A calibration scorer: minus a metric of ``estimator.predict_proba(X)``.

    Called as ``scorer(estimator, X, y_true)``; the metric receives the fitted
    estimator's ``classes_`` as ``labels``. A scorer object of skmoe's own
    (scikit-learn's scorer classes are private) that follows their protocol:
    ``set_score_request`` and ``get_metadata_routing`` for metadata routing, and
    ``_accept_sample_weight``, which scikit-learn asks of every scorer of a
    multi-metric ``scoring`` when routing is off. Build one with
    :func:`make_calibration_scorer`.

    Parameters
    ----------
    estimator : object
        A fitted classifier with ``predict_proba`` (a pipeline too).
    X : array-like of shape (n_samples, n_features)
        Test data.
    y_true : array-like of shape (n_samples,)
        True labels.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    **kwargs : dict
        Metadata for the metric, e.g. ``groups``.

    Returns
    -------
    score : float
        The negated calibration error (higher is better).
    """

    def __init__(self, metric, kwargs):
        self._score_func = metric
        self._kwargs = kwargs
        self._response_method = "predict_proba"

    def __repr__(self):
        options = "".join(f", {key}={value!r}" for key, value in self._kwargs.items())
        return f"make_calibration_scorer({self._score_func.__name__}{options})"

    def _metric_parameters(self):
        return [
            name for name in inspect.signature(self._score_func).parameters
            if name not in _SCORER_FILLED and name not in self._kwargs
        ]

    def _accept_sample_weight(self):
        return "sample_weight" in self._metric_parameters()

    def __call__(self, estimator, X, y_true, sample_weight=None, **kwargs):
        """Minus the metric of the estimator's probabilities on ``X``.

        Parameters
        ----------
        estimator : object
            A fitted classifier with ``predict_proba`` (a pipeline too); its
            ``classes_``, when it has them, name the probability columns.
        X : array-like of shape (n_samples, n_features)
            Test data.
        y_true : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        **kwargs : dict
            Metadata for the metric, e.g. ``groups`` (routed when requested with
            :meth:`set_score_request`).

        Returns
        -------
        score : float
            The negated calibration error.
        """
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        # all columns, also for binary problems: the metric's `binary` option
        # decides how two columns are scored
        proba, classes = _proba_with_classes(estimator, X, y_true)
        return -float(
            self._score_func(y_true, proba, labels=classes, **self._kwargs, **kwargs)
        )

    def set_score_request(self, **kwargs):
        """Request metadata for the metric (metadata routing must be enabled).

        Parameters
        ----------
        **kwargs : dict
            ``param=alias`` with alias one of True, False, None or a str, as in
            scikit-learn's scorers, e.g. ``groups=True``.

        Returns
        -------
        self : object
            The scorer.
        """
        if not sklearn.get_config()["enable_metadata_routing"]:
            raise RuntimeError(
                "This method is only available when metadata routing is enabled. "
                "You can enable it using "
                "sklearn.set_config(enable_metadata_routing=True)."
            )
        request = self.get_metadata_routing()
        for param, alias in kwargs.items():
            request.score.add_request(param=param, alias=alias)
        self._metadata_request = request
        return self

    def get_metadata_routing(self):
        """The metadata this scorer requests for ``score``.

        Returns
        -------
        request : :class:`~sklearn.utils.metadata_routing.MetadataRequest`
            Every metric parameter that is metadata, unrequested by default.
        """
        if hasattr(self, "_metadata_request"):
            return copy.deepcopy(self._metadata_request)
        request = MetadataRequest(owner=self)
        for param in self._metric_parameters():
            if param in ("sample_weight", "groups"):
                request.score.add_request(param=param, alias=None)
        return request


def make_calibration_scorer(metric, **kwargs):
    """Make a scorer of a calibration metric that knows the estimator's classes.

    The scorer calls ``estimator.predict_proba(X)`` and returns
    ``-metric(y, proba, labels=estimator.classes_, **kwargs)``, so it is
    higher-is-better like every scikit-learn scorer. Passing ``classes_`` keeps
    the score defined on a test fold that misses some classes (shift splitters
    produce them often), where a :func:`sklearn.metrics.make_scorer` scorer gives
    ``y_true`` and ``y_proba`` only and the metric cannot know the columns.

    Parameters
    ----------
    metric : callable
        A metric ``metric(y_true, y_proba, *, labels=None, ...)`` of
        :mod:`skmoe.metrics`, or any function of that signature.
    **kwargs : dict
        Fixed options of the metric, e.g. ``n_bins=10`` or ``binary="top_label"``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None, **metadata)``; metadata such
        as ``groups`` reach it through metadata routing after
        ``scorer.set_score_request(groups=True)``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmoe.metrics import expected_calibration_error, make_calibration_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> scorer = make_calibration_scorer(expected_calibration_error, n_bins=10)
    >>> model = LogisticRegression(max_iter=500).fit(X, y)
    >>> # a subset holding only two of the three classes is still scored
    >>> bool(-0.2 < scorer(model, X[y > 0], y[y > 0]) <= 0)
    True
    """
    unknown = set(kwargs) - set(inspect.signature(metric).parameters)
    if unknown:
        raise TypeError(
            f"{metric.__name__} takes no parameter {sorted(unknown)[0]!r}; got "
            f"kwargs={kwargs!r}."
        )
    if set(kwargs) & _SCORER_FILLED:
        raise TypeError(
            f"The scorer passes {sorted(_SCORER_FILLED)} itself (labels are the "
            f"estimator's classes_); got kwargs={kwargs!r}."
        )
    return _CalibrationScorer(metric, kwargs)


neg_expected_calibration_error_scorer = make_calibration_scorer(
    expected_calibration_error
)
neg_maximum_calibration_error_scorer = make_calibration_scorer(
    maximum_calibration_error
)
neg_root_mean_squared_calibration_error_scorer = make_calibration_scorer(
    root_mean_squared_calibration_error
)
neg_classwise_calibration_error_scorer = make_calibration_scorer(
    classwise_calibration_error
)
neg_adaptive_calibration_error_scorer = make_calibration_scorer(
    adaptive_calibration_error
)
neg_debiased_calibration_error_scorer = make_calibration_scorer(
    debiased_calibration_error
)
neg_smooth_calibration_error_scorer = make_calibration_scorer(
    smooth_calibration_error
)
neg_worst_group_calibration_error_scorer = make_calibration_scorer(
    worst_group_calibration_error
)

_SCORERS = {
    "neg_expected_calibration_error": neg_expected_calibration_error_scorer,
    "neg_maximum_calibration_error": neg_maximum_calibration_error_scorer,
    "neg_root_mean_squared_calibration_error": (
        neg_root_mean_squared_calibration_error_scorer
    ),
    "neg_classwise_calibration_error": neg_classwise_calibration_error_scorer,
    "neg_adaptive_calibration_error": neg_adaptive_calibration_error_scorer,
    "neg_debiased_calibration_error": neg_debiased_calibration_error_scorer,
    "neg_smooth_calibration_error": neg_smooth_calibration_error_scorer,
    "neg_worst_group_calibration_error": neg_worst_group_calibration_error_scorer,
}


def get_scorer(scoring):
    """Get a scorer by name, knowing skmoe's calibration scorers and sklearn's.

    Parameters
    ----------
    scoring : str, callable or None
        One of :func:`get_scorer_names`; a callable or None is passed through as
        :func:`sklearn.metrics.get_scorer` does.

    Returns
    -------
    scorer : callable
        A fresh copy: setting its metadata requests (e.g.
        ``set_score_request(groups=True)`` on
        ``"neg_worst_group_calibration_error"``) leaves the module's scorer alone.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skmoe.metrics import get_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> scores = cross_val_score(LogisticRegression(max_iter=500), X, y, cv=3,
    ...                          scoring=get_scorer("neg_expected_calibration_error"))
    >>> bool(all(-0.2 < s <= 0 for s in scores))
    True
    """
    if isinstance(scoring, str) and scoring in _SCORERS:
        return copy.deepcopy(_SCORERS[scoring])
    return _sklearn_get_scorer(scoring)


def get_scorer_names():
    """Names of all scorers :func:`get_scorer` knows: skmoe's and sklearn's.

    Returns
    -------
    names : list of str
        Sorted.

    Examples
    --------
    >>> from skmoe.metrics import get_scorer_names
    >>> "neg_expected_calibration_error" in get_scorer_names()
    True
    """
    return sorted(set(_SCORERS) | set(_sklearn_get_scorer_names()))
