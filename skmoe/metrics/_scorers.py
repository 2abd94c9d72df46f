"""Scorers of the calibration metrics, and a ``get_scorer`` that knows their names.

Each scorer is a :func:`sklearn.metrics.make_scorer` of a metric of
:mod:`skmoe.metrics._calibration` with ``response_method="predict_proba"`` and
``greater_is_better=False``, so it returns the negated error (higher is better) and
goes into ``scoring=`` of ``cross_val_score``, ``cross_validate`` and
``GridSearchCV``. :func:`get_scorer` returns a copy of skmoe's scorer for its name
and falls back to :func:`sklearn.metrics.get_scorer` for every other name.
"""

import copy

from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import get_scorer_names as _sklearn_get_scorer_names
from sklearn.metrics import make_scorer

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


def _negated(metric):
    return make_scorer(
        metric, response_method="predict_proba", greater_is_better=False
    )


neg_expected_calibration_error_scorer = _negated(expected_calibration_error)
neg_maximum_calibration_error_scorer = _negated(maximum_calibration_error)
neg_root_mean_squared_calibration_error_scorer = _negated(
    root_mean_squared_calibration_error
)
neg_classwise_calibration_error_scorer = _negated(classwise_calibration_error)
neg_adaptive_calibration_error_scorer = _negated(adaptive_calibration_error)
neg_debiased_calibration_error_scorer = _negated(debiased_calibration_error)
neg_smooth_calibration_error_scorer = _negated(smooth_calibration_error)
neg_worst_group_calibration_error_scorer = _negated(worst_group_calibration_error)

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
