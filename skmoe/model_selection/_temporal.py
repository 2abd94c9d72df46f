"""A temporal splitter: train on the past, test on later periods.

The ordering comes from ``groups``: any sortable label per sample (a date, a month
number, a year). Unlike :class:`~sklearn.model_selection.TimeSeriesSplit`, which cuts
the rows in the order they are stored, whole periods stay together, and the gap is
counted in periods.
"""

from numbers import Integral

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _num_samples

from skmoe.model_selection._base import _ShiftSplitterMixin


class TemporalSplit(_ShiftSplitterMixin, GroupsConsumerMixin, BaseCrossValidator):
    """Forward-chaining splits over the periods given as ``groups``.

    The distinct values of ``groups``, sorted, are the periods. The last
    ``n_splits * test_periods`` periods are cut into ``n_splits`` consecutive test
    windows of ``test_periods`` periods each; split ``i`` tests on window ``i`` and
    trains on the periods before it, leaving out the ``gap`` periods just before the
    window (so that information that leaks across neighbouring periods, such as
    lagged features, does not reach the test set). ``max_train_periods`` turns the
    expanding training window into a rolling one.

    Every training period comes strictly before every test period. Each sample of the
    last ``n_splits * test_periods`` periods is tested exactly once; earlier samples
    are never tested.

    Parameters
    ----------
    n_splits : int, default=5
        Number of splits.
    test_periods : int, default=1
        Number of periods in each test window.
    gap : int, default=0
        Number of periods left out between the training and the test window.
    max_train_periods : int, default=None
        Largest number of periods in the training window; ``None`` trains on all
        earlier periods.

    See Also
    --------
    sklearn.model_selection.TimeSeriesSplit : the same over rows instead of periods.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.model_selection import TemporalSplit
    >>> months = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    >>> X = np.zeros((10, 1))
    >>> cv = TemporalSplit(n_splits=2, gap=1)
    >>> for train, test in cv.split(X, groups=months):
    ...     print(np.unique(months[train]), np.unique(months[test]))
    [1 2] [4]
    [1 2 3] [5]
    """

    _parameter_constraints = {
        "n_splits": [Interval(Integral, 1, None, closed="left")],
        "test_periods": [Interval(Integral, 1, None, closed="left")],
        "gap": [Interval(Integral, 0, None, closed="left")],
        "max_train_periods": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_splits=5, *, test_periods=1, gap=0, max_train_periods=None):
        self.n_splits = n_splits
        self.test_periods = test_periods
        self.gap = gap
        self.max_train_periods = max_train_periods
        self._validate_init_params()

    def split(self, X, y=None, groups=None):
        """Generate indices of the training and test sets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Ignored.
        groups : array-like of shape (n_samples,)
            Period of each sample; any values that sort in time order.

        Yields
        ------
        train : ndarray
            Indices of the samples of the training periods.
        test : ndarray
            Indices of the samples of the test window.
        """
        groups = self._check_groups(groups, _num_samples(X))
        periods, period_index = np.unique(groups, return_inverse=True)
        n_periods = periods.shape[0]
        n_needed = self.n_splits * self.test_periods + self.gap + 1
        if n_periods < n_needed:
            raise ValueError(
                f"TemporalSplit with n_splits={self.n_splits}, "
                f"test_periods={self.test_periods} and gap={self.gap} needs at least "
                f"{n_needed} distinct periods in groups; got {n_periods}."
            )
        indices = np.arange(period_index.shape[0])
        for split in range(self.n_splits):
            test_start = n_periods - (self.n_splits - split) * self.test_periods
            train_stop = test_start - self.gap
            train_start = 0
            if self.max_train_periods is not None:
                train_start = max(0, train_stop - self.max_train_periods)
            train = (period_index >= train_start) & (period_index < train_stop)
            test = (period_index >= test_start) & (
                period_index < test_start + self.test_periods
            )
            yield indices[train], indices[test]

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splits, ``n_splits``.

        Parameters
        ----------
        X : object
            Ignored.
        y : object
            Ignored.
        groups : object
            Ignored.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits
