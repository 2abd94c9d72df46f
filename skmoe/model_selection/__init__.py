"""Cross-validation splitters that put a distribution shift between train and test.

They subclass :class:`sklearn.model_selection.BaseCrossValidator` and go wherever
scikit-learn takes ``cv=``: :func:`~sklearn.model_selection.cross_val_score`,
:func:`~sklearn.model_selection.cross_validate`,
:class:`~sklearn.model_selection.GridSearchCV`. Splitters over domains or periods
(:class:`LeaveOneDomainOut`, :class:`DomainShuffleSplit`, :class:`TemporalSplit`) read
them from ``groups`` and request ``groups`` through metadata routing; the others build
the shift from one data set (:class:`CovariateShiftSplit`, :class:`LabelShiftSplit`,
:class:`AdversarialValidationSplit`). None of them changes scikit-learn's global
configuration.
"""

from skmoe.model_selection._domain import DomainShuffleSplit, LeaveOneDomainOut
from skmoe.model_selection._shift import (
    AdversarialValidationSplit,
    CovariateShiftSplit,
    LabelShiftSplit,
)
from skmoe.model_selection._temporal import TemporalSplit

__all__ = [
    "AdversarialValidationSplit",
    "CovariateShiftSplit",
    "DomainShuffleSplit",
    "LabelShiftSplit",
    "LeaveOneDomainOut",
    "TemporalSplit",
]
