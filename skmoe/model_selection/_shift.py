"""Splitters that build the shift into the test fold of a single data set.

:class:`CovariateShiftSplit` cuts the data along a direction in feature space so that
test folds lie in regions the training folds cover thinly or not at all;
:class:`LabelShiftSplit` subsamples test folds whose class proportions are drawn from a
Dirichlet distribution; :class:`AdversarialValidationSplit` holds out the training rows
that a domain classifier finds most like a given target sample. None of them uses
``groups``.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    BaseCrossValidator,
    StratifiedKFold,
    cross_val_predict,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import _safe_indexing, check_array, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _num_features, _num_samples, column_or_1d

from skmoe.model_selection._base import _check_test_count, _ShiftSplitterMixin


def _standardization(X):
    """``X`` validated (dense, or CSR/CSC kept sparse), its column means and scales."""
    X = check_array(
        X, dtype=np.float64, ensure_all_finite=True, accept_sparse=["csr", "csc"]
    )
    if sp.issparse(X):
        mean = np.asarray(X.mean(axis=0)).ravel()
        variance = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
        scale = np.sqrt(np.maximum(variance, 0.0))
    else:
        mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0.0] = 1.0
    return X, mean, scale


def _standardized_product(X, mean, scale, axis):
    """``((X - mean) / scale) @ axis`` without centring (densifying) a sparse X."""
    if sp.issparse(X):
        weights = axis / scale
        return np.asarray(X @ weights).ravel() - mean @ weights
    return ((X - mean) / scale) @ axis


def _first_principal_axis(X, mean, scale):
    if sp.issparse(X):
        # (d, d): the scatter of the standardized columns, never the (n, d) matrix
        gram = (X.T @ X).toarray() - X.shape[0] * np.outer(mean, mean)
        covariance = gram / np.outer(scale, scale)
    else:
        standardized = (X - mean) / scale
        covariance = standardized.T @ standardized
    _, eigenvectors = np.linalg.eigh(covariance)
    axis = eigenvectors[:, -1]
    # eigh leaves the sign free; fix it so the split does not depend on LAPACK
    return axis if axis[np.argmax(np.abs(axis))] > 0 else -axis


class CovariateShiftSplit(_ShiftSplitterMixin, BaseCrossValidator):
    """K-fold splits cut along a direction, with a severity from random to disjoint.

    Each sample gets a score, its position along ``direction``. The samples are
    ranked by score, the ranks scaled to ``[0, 1)``, and each sample is given the key
    ``severity * rank + (1 - severity) * u`` with ``u`` uniform on ``[0, 1)``. Sorted
    by key, the samples are cut into ``n_splits`` consecutive folds of (nearly) equal
    size, and each fold is the test set once, as in
    :class:`~sklearn.model_selection.KFold`: every sample is tested exactly once.

    ``severity=0`` is a shuffled K-fold (no shift); ``severity=1`` makes the folds
    disjoint intervals of the score, so each test fold is a region of feature space
    the training set does not reach (for the first and last folds, an
    extrapolation; for inner folds, a gap between the two sides of the training
    set). Values in between interleave the folds more and more.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    direction : {"pca", "random"}, int, str, array-like, estimator or callable, \
            default="pca"
        What the data are cut along:

        - ``"pca"``: the first principal component of the standardized features;
        - ``"random"``: a random direction (drawn with ``random_state``) in the
          standardized feature space;
        - an int: the feature at that column index; another str: the column of that
          name (``X`` a DataFrame);
        - an array-like of shape ``(n_features,)``: the projection ``X @ direction``
          on the raw features;
        - a fitted classifier with ``predict_proba`` (its probability of the last
          class) or ``decision_function``: a propensity, for instance from a domain
          classifier fitted to tell this data set from a target one;
        - a callable ``direction(X) -> scores`` of shape ``(n_samples,)``.
    severity : float in [0, 1], default=1.0
        How far the folds are separated along the direction, from a random split
        (0) to disjoint regions (1).
    random_state : int, RandomState instance or None, default=None
        Draws the random key ``u``, the tie-breaking among equal scores and, for
        ``direction="random"``, the direction. Pass an int for the same splits at
        every call of ``split``.

    See Also
    --------
    LabelShiftSplit : test folds with shifted class proportions.
    AdversarialValidationSplit : a validation fold that resembles a target sample.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.model_selection import CovariateShiftSplit
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> cv = CovariateShiftSplit(n_splits=2, direction=0, severity=1.0)
    >>> for train, test in cv.split(X):
    ...     print(test)
    [0 1 2 3 4]
    [5 6 7 8 9]
    >>> cv = CovariateShiftSplit(n_splits=2, direction=0, severity=0.0, random_state=0)
    >>> [test.tolist() for _, test in cv.split(X)]
    [[1, 2, 4, 5, 6], [0, 3, 7, 8, 9]]
    """

    _parameter_constraints = {
        "n_splits": [Interval(Integral, 2, None, closed="left")],
        "direction": [
            StrOptions({"pca", "random"}),
            str,
            Interval(Integral, 0, None, closed="left"),
            HasMethods(["predict_proba"]),
            HasMethods(["decision_function"]),
            callable,
            "array-like",
        ],
        "severity": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_splits=5, *, direction="pca", severity=1.0, random_state=None):
        self.n_splits = n_splits
        self.direction = direction
        self.severity = severity
        self.random_state = random_state
        self._validate_init_params()

    def direction_scores(self, X, random_state=None):
        """Position of every sample along ``direction``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : RandomState instance, default=None
            Generator for ``direction="random"``; by default one made from the
            splitter's ``random_state``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        direction = self.direction
        rng = (
            check_random_state(self.random_state)
            if random_state is None
            else random_state
        )
        if isinstance(direction, str) and direction in ("pca", "random"):
            X_checked, mean, scale = _standardization(X)
            if direction == "pca":
                axis = _first_principal_axis(X_checked, mean, scale)
            else:
                axis = rng.standard_normal(X_checked.shape[1])
                axis /= np.linalg.norm(axis)
            scores = _standardized_product(X_checked, mean, scale, axis)
        elif isinstance(direction, str | Integral):
            if isinstance(direction, str) and not hasattr(X, "columns"):
                raise ValueError(
                    f"CovariateShiftSplit: direction={direction!r} names a column, "
                    "which needs X to be a DataFrame; got "
                    f"{type(X).__name__}."
                )
            scores = np.asarray(_safe_indexing(X, direction, axis=1), dtype=np.float64)
        elif hasattr(direction, "predict_proba"):
            scores = np.asarray(direction.predict_proba(X))[:, -1]
        elif hasattr(direction, "decision_function"):
            scores = np.asarray(direction.decision_function(X))
        elif callable(direction):
            scores = np.asarray(direction(X), dtype=np.float64)
        else:
            vector = column_or_1d(np.asarray(direction, dtype=np.float64))
            X_checked = check_array(X, dtype=np.float64, accept_sparse=["csr", "csc"])
            if vector.shape[0] != X_checked.shape[1]:
                raise ValueError(
                    "CovariateShiftSplit: direction has "
                    f"{vector.shape[0]} components but X has {X_checked.shape[1]} "
                    "features."
                )
            scores = np.asarray(X_checked @ vector).ravel()
        scores = column_or_1d(scores)
        if scores.shape[0] != _num_samples(X) or not np.all(np.isfinite(scores)):
            raise ValueError(
                "CovariateShiftSplit: the direction must give one finite score per "
                f"sample; got {scores.shape[0]} scores for {_num_samples(X)} samples."
            )
        return scores

    def _iter_test_indices(self, X, y=None, groups=None):
        n_samples = _num_samples(X)
        if n_samples < self.n_splits:
            raise ValueError(
                f"CovariateShiftSplit: cannot cut n_samples={n_samples} into "
                f"n_splits={self.n_splits} folds."
            )
        rng = check_random_state(self.random_state)
        scores = self.direction_scores(X, random_state=rng)
        tie_break = rng.uniform(size=n_samples)
        ranks = np.empty(n_samples)
        ranks[np.lexsort((tie_break, scores))] = np.arange(n_samples) / n_samples
        keys = self.severity * ranks + (1.0 - self.severity) * rng.uniform(
            size=n_samples
        )
        order = np.argsort(keys, kind="stable")
        for fold in np.array_split(order, self.n_splits):
            yield np.sort(fold)

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


class LabelShiftSplit(_ShiftSplitterMixin, BaseCrossValidator):
    """Test folds whose class proportions are drawn from a Dirichlet distribution.

    For each split, target class proportions ``pi`` are drawn from
    ``Dirichlet(alpha)``, and a test set of about ``test_size`` samples is drawn
    without replacement with (up to rounding) those proportions; the training set is
    every other sample. When a class has too few samples for the requested size, the
    test set is made smaller rather than the proportions changed; every class keeps
    at least one sample in the training set. Only ``P(y)`` differs between the
    test set and the data set; ``P(X | y)`` does not (label shift). Splits are
    independent draws, as in :class:`~sklearn.model_selection.ShuffleSplit`.

    Small ``alpha`` gives proportions near a single class (severe shift); large
    ``alpha`` gives proportions near uniform (which is itself a shift when the
    classes are imbalanced).

    Parameters
    ----------
    n_splits : int, default=5
        Number of splits.
    alpha : float or array-like of shape (n_classes,), default=1.0
        Concentration of the Dirichlet distribution; a float is used for every
        class, classes in sorted order.
    test_size : float or int, default=0.2
        Requested size of the test set: a fraction of the samples in (0, 1) or a
        number.
    random_state : int, RandomState instance or None, default=None
        Pass an int for the same splits (and proportions) at every call.

    See Also
    --------
    CovariateShiftSplit : test folds shifted in feature space.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.model_selection import LabelShiftSplit
    >>> y = np.array([0] * 50 + [1] * 50)
    >>> X = np.zeros((100, 1))
    >>> cv = LabelShiftSplit(n_splits=2, alpha=0.5, test_size=20, random_state=0)
    >>> cv.get_target_proportions(X, y).round(2)
    array([[0.45, 0.55],
           [0.04, 0.96]])
    >>> [np.bincount(y[test]).tolist() for _, test in cv.split(X, y)]
    [[9, 11], [1, 19]]
    """

    _parameter_constraints = {
        "n_splits": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    }

    def __init__(self, n_splits=5, *, alpha=1.0, test_size=0.2, random_state=None):
        self.n_splits = n_splits
        self.alpha = alpha
        self.test_size = test_size
        self.random_state = random_state
        self._validate_init_params()

    def _concentration(self, n_classes):
        if isinstance(self.alpha, Real):
            return np.full(n_classes, float(self.alpha))
        alpha = column_or_1d(np.asarray(self.alpha, dtype=np.float64))
        if alpha.shape[0] != n_classes or not np.all(alpha > 0):
            raise ValueError(
                f"LabelShiftSplit: alpha must hold {n_classes} positive values (one "
                f"per class); got alpha={self.alpha!r}."
            )
        return alpha

    def _iter_draws(self, X, y):
        """Yield ``(proportions, test_indices)`` for each split."""
        n_samples = _num_samples(X)
        y = self._check_y(y, n_samples)
        classes, y_index = np.unique(y, return_inverse=True)
        concentration = self._concentration(classes.shape[0])
        n_requested = _check_test_count(self.test_size, n_samples, "LabelShiftSplit")
        members = [np.flatnonzero(y_index == c) for c in range(classes.shape[0])]
        capacity = np.array([max(m.shape[0] - 1, 0) for m in members])
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):
            proportions = rng.dirichlet(concentration)
            counts = _counts_for_proportions(proportions, n_requested, capacity)
            test = np.concatenate(
                [
                    rng.choice(class_members, size=count, replace=False)
                    for class_members, count in zip(members, counts, strict=True)
                ]
            )
            yield proportions, np.sort(test)

    def _iter_test_indices(self, X, y=None, groups=None):
        for _, test in self._iter_draws(X, y):
            yield test

    def get_target_proportions(self, X, y):
        """The class proportions drawn for each split, in sorted class order.

        They match the splits of :meth:`split` when ``random_state`` is an int.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        proportions : ndarray of shape (n_splits, n_classes)
        """
        return np.array([proportions for proportions, _ in self._iter_draws(X, y)])

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


def _counts_for_proportions(proportions, n_requested, capacity):
    """Per-class counts summing to at most ``n_requested``, proportional, capped."""
    positive = proportions > 0
    # the largest test size whose proportional share fits every class
    n_test = min(
        float(n_requested),
        float(np.min(capacity[positive] / proportions[positive])),
    )
    ideal = proportions * np.floor(n_test)
    counts = np.minimum(np.floor(ideal).astype(np.int64), capacity)
    shortfall = int(np.floor(n_test)) - counts.sum()
    for c in np.argsort(counts - ideal, kind="stable"):
        if shortfall <= 0:
            break
        if counts[c] < capacity[c]:
            counts[c] += 1
            shortfall -= 1
    if counts.sum() == 0:
        # a draw concentrated on a class with a single sample: fall back to the
        # most probable class that can spare one
        spare = np.flatnonzero(capacity > 0)
        if spare.shape[0] == 0:
            raise ValueError(
                "LabelShiftSplit needs a class with at least 2 samples to draw a "
                "test set."
            )
        counts[spare[np.argmax(proportions[spare])]] = 1
    return counts


class AdversarialValidationSplit(_ShiftSplitterMixin, BaseCrossValidator):
    """Hold out the training rows a domain classifier finds most like a target sample.

    Adversarial validation: the rows of ``X`` (label 0) and of ``X_target`` (label 1)
    are pooled, a domain classifier is fitted to tell them apart, and each row of
    ``X`` gets its out-of-fold probability of being a target row (cross-fitted over
    ``cv`` folds, so that no row is scored by a classifier that saw it). The
    ``test_size`` rows with the highest probabilities form the validation fold; the
    rest is the training fold. Model selection on that fold favours models that do
    well where the training data look like the target data. There is one split.

    Parameters
    ----------
    X_target : array-like of shape (n_target_samples, n_features)
        Unlabelled sample of the target distribution, with the features of ``X``.
    estimator : classifier, default=None
        Domain classifier with ``predict_proba``; cloned before fitting. ``None``
        uses ``make_pipeline(StandardScaler(), LogisticRegression())``.
    test_size : float or int, default=0.2
        Size of the validation fold: a fraction of the rows of ``X`` in (0, 1) or a
        number.
    cv : int, default=5
        Number of folds of the cross-fitting of the domain classifier.
    random_state : int, RandomState instance or None, default=None
        Shuffles the cross-fitting folds and breaks ties between equal
        probabilities.

    See Also
    --------
    CovariateShiftSplit : cut along a given direction, with a severity.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.model_selection import AdversarialValidationSplit
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 2))
    >>> X_target = rng.normal(loc=[2.0, 0.0], size=(100, 2))
    >>> cv = AdversarialValidationSplit(X_target, test_size=0.1, random_state=0)
    >>> train, test = next(cv.split(X))
    >>> len(train), len(test)
    (180, 20)
    >>> bool(X[test, 0].mean() > X[train, 0].mean() + 1.0)
    True
    >>> cv
    AdversarialValidationSplit(X_target=<ndarray of shape (100, 2)>, cv=5, \
estimator=None, random_state=0, test_size=0.1)
    """

    _parameter_constraints = {
        "X_target": ["array-like", "sparse matrix"],
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self, X_target, *, estimator=None, test_size=0.2, cv=5, random_state=None
    ):
        self.X_target = X_target
        self.estimator = estimator
        self.test_size = test_size
        self.cv = cv
        self.random_state = random_state
        self._validate_init_params()

    def __repr__(self):
        target = self.X_target
        shape = getattr(target, "shape", (_num_samples(target),))
        others = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("cv", "estimator", "random_state", "test_size")
        )
        return (
            f"{self.__class__.__name__}(X_target=<{type(target).__name__} of shape "
            f"{tuple(shape)}>, {others})"
        )

    def target_propensity(self, X):
        """Cross-fitted probability that each row of ``X`` is a target row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        propensity : ndarray of shape (n_samples,)
        """
        n_samples = _num_samples(X)
        n_target = _num_samples(self.X_target)
        n_features, n_target_features = _num_features(X), _num_features(self.X_target)
        if n_features != n_target_features:
            raise ValueError(
                f"AdversarialValidationSplit: X_target has {n_target_features} "
                f"features but X has {n_features}; X_target must have the features "
                "of X."
            )
        if min(n_samples, n_target) < self.cv:
            # StratifiedKFold's own message speaks of n_splits and class members
            raise ValueError(
                f"AdversarialValidationSplit: cv={self.cv} cross-fitting folds need "
                f"at least {self.cv} rows of X and of X_target; got {n_samples} rows "
                f"of X and {n_target} of X_target. Lower cv or pass more rows."
            )
        if hasattr(X, "iloc") and hasattr(self.X_target, "iloc"):
            import pandas as pd

            pooled = pd.concat([X, self.X_target], axis=0, ignore_index=True)
        else:
            parts = [
                check_array(part, dtype=None, accept_sparse=["csr", "csc"])
                for part in (X, self.X_target)
            ]
            sparse = any(sp.issparse(part) for part in parts)
            pooled = sp.vstack(parts, format="csr") if sparse else np.concatenate(parts)
        is_target = np.r_[np.zeros(n_samples, dtype=int), np.ones(n_target, dtype=int)]
        if self.estimator is None:
            # centring would densify sparse rows: scale them only
            scaler = StandardScaler(with_mean=not sp.issparse(pooled))
            estimator = make_pipeline(scaler, LogisticRegression())
        else:
            estimator = clone(self.estimator)
        folds = StratifiedKFold(
            n_splits=self.cv,
            shuffle=True,
            random_state=check_random_state(self.random_state).randint(2**31 - 1),
        )
        proba = cross_val_predict(
            estimator, pooled, is_target, cv=folds, method="predict_proba"
        )
        return proba[:n_samples, 1]

    def _iter_test_indices(self, X, y=None, groups=None):
        n_samples = _num_samples(X)
        n_test = _check_test_count(
            self.test_size, n_samples, "AdversarialValidationSplit"
        )
        propensity = self.target_propensity(X)
        tie_break = check_random_state(self.random_state).uniform(size=n_samples)
        most_like_target = np.lexsort((tie_break, -propensity))[:n_test]
        yield np.sort(most_like_target)

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splits, 1.

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
        return 1
