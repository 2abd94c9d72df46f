"""Shared plumbing of the shift-aware splitters: argument validation and input checks.

Unlike estimators, scikit-learn's cross-validators check their arguments when they are
built, so that a wrong ``cv=`` object fails where it is written rather than deep inside
``cross_validate``. :class:`_ShiftSplitterMixin` does this from each splitter's
``_parameter_constraints`` and gives every splitter the same checks of ``groups`` and
``y``.
"""

import numpy as np
from sklearn.utils import check_array
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import column_or_1d

from skmoe._validation import check_ids


class _ShiftSplitterMixin:
    """Validate constructor arguments and the ``groups``/``y`` given to ``split``."""

    _parameter_constraints: dict = {}

    def _validate_init_params(self):
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=self.__class__.__name__,
        )

    def _check_groups(self, groups, n_samples=None, *, name="groups"):
        """Return ``groups`` as a 1-d array, with an error naming the splitter."""
        if groups is None:
            raise ValueError(
                f"{self.__class__.__name__} needs the '{name}' parameter of split "
                "(one label per sample); got groups=None. With metadata routing "
                "enabled, pass it as params={'groups': ...}."
            )
        groups = check_array(
            groups, input_name=name, ensure_2d=False, dtype=None, copy=True,
            ensure_all_finite=False,
        )
        groups = check_ids(groups, name)
        if n_samples is not None and groups.shape[0] != n_samples:
            raise ValueError(
                f"Expected groups of length n_samples={n_samples}, got "
                f"{groups.shape[0]} labels."
            )
        return groups

    def _check_y(self, y, n_samples):
        if y is None:
            raise ValueError(
                f"{self.__class__.__name__} needs the targets 'y' in split; got "
                "y=None."
            )
        y = column_or_1d(check_array(y, input_name="y", ensure_2d=False, dtype=None))
        if y.shape[0] != n_samples:
            raise ValueError(
                f"Expected y of length n_samples={n_samples}, got {y.shape[0]} "
                "values."
            )
        return y


def _check_test_count(test_size, n_samples, caller_name):
    """Number of test samples for a float fraction or an integer count."""
    if isinstance(test_size, float | np.floating):
        n_test = int(np.ceil(test_size * n_samples))
    else:
        n_test = int(test_size)
    if not 1 <= n_test < n_samples:
        raise ValueError(
            f"{caller_name}: test_size={test_size!r} gives {n_test} test samples out "
            f"of n_samples={n_samples}; expected between 1 and n_samples - 1."
        )
    return n_test

