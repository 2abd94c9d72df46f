"""Calibration metrics, their scorers and a ``get_scorer`` that knows their names.

Binned calibration errors (:func:`expected_calibration_error` and its named
shortcuts), the debiased and the smooth calibration error, the Brier score's
calibration–refinement decomposition, a multiclass :func:`calibration_curve` with
counts, per-group and worst-group errors and bootstrap confidence intervals. Every
metric takes ``sample_weight`` and ``labels``; the scorers (built with
:func:`make_calibration_scorer`, which passes the estimator's ``classes_``) are usable
as ``scoring=`` anywhere in scikit-learn.
"""

from skmoe.metrics._calibration import (
    adaptive_calibration_error,
    bootstrap_confidence_interval,
    brier_score_decomposition,
    calibration_curve,
    classwise_calibration_error,
    debiased_calibration_error,
    expected_calibration_error,
    groupwise_calibration_error,
    maximum_calibration_error,
    root_mean_squared_calibration_error,
    smooth_calibration_error,
    worst_group_calibration_error,
)
from skmoe.metrics._scorers import (
    get_scorer,
    get_scorer_names,
    make_calibration_scorer,
    neg_adaptive_calibration_error_scorer,
    neg_classwise_calibration_error_scorer,
    neg_debiased_calibration_error_scorer,
    neg_expected_calibration_error_scorer,
    neg_maximum_calibration_error_scorer,
    neg_root_mean_squared_calibration_error_scorer,
    neg_smooth_calibration_error_scorer,
    neg_worst_group_calibration_error_scorer,
)

__all__ = [
    "adaptive_calibration_error",
    "bootstrap_confidence_interval",
    "brier_score_decomposition",
    "calibration_curve",
    "classwise_calibration_error",
    "debiased_calibration_error",
    "expected_calibration_error",
    "get_scorer",
    "get_scorer_names",
    "groupwise_calibration_error",
    "make_calibration_scorer",
    "maximum_calibration_error",
    "neg_adaptive_calibration_error_scorer",
    "neg_classwise_calibration_error_scorer",
    "neg_debiased_calibration_error_scorer",
    "neg_expected_calibration_error_scorer",
    "neg_maximum_calibration_error_scorer",
    "neg_root_mean_squared_calibration_error_scorer",
    "neg_smooth_calibration_error_scorer",
    "neg_worst_group_calibration_error_scorer",
    "root_mean_squared_calibration_error",
    "smooth_calibration_error",
    "worst_group_calibration_error",
]
