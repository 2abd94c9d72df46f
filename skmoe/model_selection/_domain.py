"""Splitters that hold out whole domains: leave-one-domain-out and domain shuffles.

A domain is whatever the samples were collected under (a hospital, a site, a month);
the domain of each sample is passed to ``split`` as ``groups``. Both splitters request
``groups`` through metadata routing, so they work in ``cross_validate`` and
``GridSearchCV`` whether routing is enabled or not.
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _num_samples

from skmoe.model_selection._base import _ShiftSplitterMixin

# How many distinct random sets of test domains the stratified domain shuffle split
# compares for each split.
_N_STRATIFY_CANDIDATES = 32


class LeaveOneDomainOut(_ShiftSplitterMixin, GroupsConsumerMixin, BaseCrossValidator):
    """Hold out one domain at a time; train on all the others.

    The domain of each sample is given to ``split`` as ``groups``. Without
    ``max_splits`` this is :class:`~sklearn.model_selection.LeaveOneGroupOut`: one
    split per domain, in sorted order of the domain labels, and every sample is in
    exactly one test fold. With ``max_splits`` smaller than the number of domains,
    that many domains are drawn at random (without replacement) to be held out, which
    caps the cost when there are many domains.

    Parameters
    ----------
    max_splits : int, default=None
        Largest number of splits (held-out domains). ``None`` holds out every
        domain once.
    random_state : int, RandomState instance or None, default=None
        Draws the held-out domains when ``max_splits`` is smaller than the number
        of domains. Pass an int for the same domains at every call of ``split``.

    See Also
    --------
    DomainShuffleSplit : random sets of held-out domains, optionally stratified.
    sklearn.model_selection.LeaveOneGroupOut : the same without a cap.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.model_selection import LeaveOneDomainOut
    >>> X = np.zeros((6, 1))
    >>> domains = np.array(["a", "a", "b", "b", "c", "c"])
    >>> cv = LeaveOneDomainOut()
    >>> cv.get_n_splits(groups=domains)
    3
    >>> for train, test in cv.split(X, groups=domains):
    ...     print(train, test)
    [2 3 4 5] [0 1]
    [0 1 4 5] [2 3]
    [0 1 2 3] [4 5]
    >>> LeaveOneDomainOut(max_splits=2, random_state=0)
    LeaveOneDomainOut(max_splits=2, random_state=0)
    """

    _parameter_constraints = {
        "max_splits": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, max_splits=None, *, random_state=None):
        self.max_splits = max_splits
        self.random_state = random_state
        self._validate_init_params()

    def _held_out_domains(self, groups):
        domains = np.unique(groups)
        if domains.shape[0] < 2:
            raise ValueError(
                "LeaveOneDomainOut needs at least 2 domains in groups; got "
                f"{domains.tolist()!r}."
            )
        if self.max_splits is None or self.max_splits >= domains.shape[0]:
            return domains
        rng = check_random_state(self.random_state)
        chosen = rng.choice(domains.shape[0], size=self.max_splits, replace=False)
        return domains[np.sort(chosen)]

    def _iter_test_masks(self, X, y=None, groups=None):
        groups = self._check_groups(groups, _num_samples(X))
        for domain in self._held_out_domains(groups):
            yield groups == domain

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splits: the number of domains, capped by ``max_splits``.

        Parameters
        ----------
        X : object
            Ignored.
        y : object
            Ignored.
        groups : array-like of shape (n_samples,)
            Domain of each sample; required.

        Returns
        -------
        n_splits : int
        """
        n_domains = np.unique(self._check_groups(groups)).shape[0]
        if self.max_splits is None:
            return n_domains
        return min(n_domains, self.max_splits)

    def split(self, X, y=None, groups=None):
        """Generate indices of the training and test sets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Ignored.
        groups : array-like of shape (n_samples,)
            Domain of each sample.

        Yields
        ------
        train : ndarray
            Indices of the samples outside the held-out domain.
        test : ndarray
            Indices of the samples of the held-out domain.
        """
        return super().split(X, y, groups)


class DomainShuffleSplit(_ShiftSplitterMixin, GroupsConsumerMixin, BaseCrossValidator):
    """Random sets of held-out domains, optionally stratified by the target.

    Each of the ``n_splits`` splits draws ``test_size`` domains at random; their
    samples form the test set and the samples of all other domains the training
    set. Splits are independent draws, so a domain may be held out in several splits
    and some in none (as in :class:`~sklearn.model_selection.GroupShuffleSplit`).

    With ``stratify=True`` each split compares up to 32 random sets of test domains
    that no earlier split held out, and keeps the one whose test-set class
    proportions are closest (in total variation) to those of the whole data set.
    The test sets of the splits are therefore all different as long as there are at
    least ``n_splits`` possible sets of test domains; when there are fewer, a
    :class:`UserWarning` is raised and the sets are reused. Domains that differ in
    their label mix are still held out, but test sets that lack a class or are
    dominated by one are avoided when a better-balanced set is available, which
    keeps scores comparable across splits.

    Parameters
    ----------
    n_splits : int, default=5
        Number of splits.
    test_size : float or int, default=0.2
        A float in (0, 1) is the fraction of the domains held out (rounded up); an
        int is their number.
    stratify : bool, default=False
        Choose the held-out domains so that the class proportions of the test set
        follow the overall ones, with a different set of test domains in every
        split while enough sets exist. Needs ``y`` in ``split``.
    random_state : int, RandomState instance or None, default=None
        Pass an int for the same splits at every call of ``split``.

    See Also
    --------
    LeaveOneDomainOut : every domain held out once.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.model_selection import DomainShuffleSplit
    >>> X = np.zeros((8, 1))
    >>> domains = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> cv = DomainShuffleSplit(n_splits=2, test_size=1, random_state=0)
    >>> for train, test in cv.split(X, groups=domains):
    ...     print(np.unique(domains[test]), np.unique(domains[train]))
    [2] [0 1 3]
    [0] [1 2 3]
    """

    _parameter_constraints = {
        "n_splits": [Interval(Integral, 1, None, closed="left")],
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "stratify": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, n_splits=5, *, test_size=0.2, stratify=False, random_state=None):
        self.n_splits = n_splits
        self.test_size = test_size
        self.stratify = stratify
        self.random_state = random_state
        self._validate_init_params()

    def _n_test_domains(self, n_domains):
        if isinstance(self.test_size, Integral):
            n_test = self.test_size
        else:
            n_test = int(np.ceil(self.test_size * n_domains))
        if not 1 <= n_test < n_domains:
            raise ValueError(
                f"DomainShuffleSplit: test_size={self.test_size!r} holds out {n_test} "
                f"of {n_domains} domains; expected between 1 and n_domains - 1."
            )
        return n_test

    def _iter_test_masks(self, X, y=None, groups=None):
        n_samples = _num_samples(X)
        groups = self._check_groups(groups, n_samples)
        domains, domain_index = np.unique(groups, return_inverse=True)
        n_domains = domains.shape[0]
        n_test = self._n_test_domains(n_domains)
        rng = check_random_state(self.random_state)
        if not self.stratify:
            for _ in range(self.n_splits):
                test_domains = rng.choice(n_domains, size=n_test, replace=False)
                yield np.isin(domain_index, test_domains)
            return
        y = self._check_y(y, n_samples)
        _, y_index = np.unique(y, return_inverse=True)
        # class counts per domain, so that a candidate is scored without a pass over
        # the samples
        counts = np.zeros((n_domains, y_index.max() + 1))
        np.add.at(counts, (domain_index, y_index), 1.0)
        for test_domains in self._stratified_test_domains(counts, n_test, rng):
            yield np.isin(domain_index, test_domains)

    def _stratified_test_domains(self, counts, n_test, rng):
        """Yield the held-out domains of each split, best of random unused candidates.

        Each split draws up to ``_N_STRATIFY_CANDIDATES`` distinct sets of ``n_test``
        domains that no earlier split held out, and keeps the one whose class
        proportions are closest in total variation to the overall ones. Excluding
        the sets already used is what keeps the splits distinct: with few domains
        the same set would otherwise win every split. Once every set has been held
        out (fewer sets than ``n_splits``), the next splits start a new round.
        """
        n_domains = counts.shape[0]
        overall = counts.sum(axis=0) / counts.sum()
        n_sets = math.comb(n_domains, n_test)
        if n_sets < self.n_splits:
            warnings.warn(
                f"DomainShuffleSplit: n_splits={self.n_splits} but only {n_sets} "
                f"distinct sets of {n_test} test domains exist among {n_domains} "
                "domains; some splits repeat a test set. Lower n_splits or change "
                "test_size.",
                UserWarning,
                stacklevel=4,
            )

        def label_shift(candidate):
            test_counts = counts[list(candidate)].sum(axis=0)
            return 0.5 * np.abs(test_counts / test_counts.sum() - overall).sum()

        used = set()
        for _ in range(self.n_splits):
            if len(used) == n_sets:
                used.clear()
            n_candidates = min(_N_STRATIFY_CANDIDATES, n_sets - len(used))
            # a dict keeps the draw order, so ties go to the earliest draw
            candidates = {}
            while len(candidates) < n_candidates:
                draw = rng.choice(n_domains, size=n_test, replace=False)
                candidate = tuple(np.sort(draw).tolist())
                if candidate not in used:
                    candidates[candidate] = None
            best = min(candidates, key=label_shift)
            used.add(best)
            yield np.asarray(best)

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

    def split(self, X, y=None, groups=None):
        """Generate indices of the training and test sets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Targets; needed with ``stratify=True``.
        groups : array-like of shape (n_samples,)
            Domain of each sample.

        Yields
        ------
        train : ndarray
            Indices of the samples of the domains kept for training.
        test : ndarray
            Indices of the samples of the held-out domains.
        """
        return super().split(X, y, groups)
