"""Mixture-of-Experts estimators for scikit-learn that stay calibrated under shift.

The top-level namespace holds the estimators; the capabilities around them live in
subpackages (``skmoe.gating``, ``skmoe.calibration``, ``skmoe.reweighting``,
``skmoe.metrics``, ``skmoe.inspection``, ``skmoe.model_selection``, ``skmoe.datasets``,
``skmoe.testing``, ``skmoe.federated``), imported on demand so that importing
:mod:`skmoe` has no side effects and pulls in no optional dependency.
"""

from skmoe._classifier import MixtureOfExpertsClassifier
from skmoe._regressor import MixtureOfExpertsRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "MixtureOfExpertsClassifier",
    "MixtureOfExpertsRegressor",
    "__version__",
]
