"""Calibration metrics: binned, debiased and smooth calibration errors, and friends.

Every metric takes ``y_true`` (class labels) and ``y_proba`` (predicted probabilities:
a 1-D array of ``P(y = positive class)`` or an ``(n_samples, n_classes)`` matrix whose
columns follow the sorted ``labels``), ``sample_weight`` and ``labels``. Two columns
mean a binary problem scored on the second column, as in netcal, torchmetrics and
relplot. The input is validated here; the passes over the probability matrix are the
numba kernels of :mod:`skmoe._kernels.calibration`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    column_or_1d,
)

from skmoe._kernels.calibration import (
    bin_stats,
    check_proba,
    top_label_bin_stats,
    top_label_confidence,
)

# Largest tolerated deviation of a row sum from one, by dtype of y_proba.
_SUM_TOLERANCE = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-4}

# Argument of the smooth ECE's automatic bandwidth: the bisection stops below it.
_MIN_BANDWIDTH = 1e-3

_COMMON_CONSTRAINTS = {
    "y_true": ["array-like"],
    "y_proba": ["array-like"],
    "sample_weight": ["array-like", None],
    "labels": ["array-like", None],
}
_BINNING_CONSTRAINTS = {
    "n_bins": [Interval(Integral, 1, None, closed="left")],
    "strategy": [StrOptions({"uniform", "quantile", "equal_count"})],
}
_MULTICLASS_CONSTRAINT = {"multiclass": [StrOptions({"top_label", "classwise"})]}
_BINARY_CONSTRAINT = {"binary": [StrOptions({"positive", "top_label"})]}


class _Scores:
    """Validated input: the probabilities, the encoded labels, the weights.

    ``binary`` inputs keep only the positive-class scores ``positive`` (a view) and
    ``proba`` is None; multiclass inputs keep the matrix ``proba`` and ``positive`` is
    None; ``two_columns`` keeps a binary two-column matrix as given. ``encoded`` holds
    each sample's column index. ``sample_weight`` is an empty
    array when the samples are unweighted (the kernels' convention) and ``weights``
    is then an array of ones built on demand.
    """

    def __init__(self, proba, positive, encoded, classes, sample_weight,
                 two_columns=None):
        self.proba = proba
        self.two_columns = two_columns
        self.positive = positive
        self.encoded = encoded
        self.classes = classes
        self.sample_weight = sample_weight

    @property
    def binary(self):
        return self.proba is None

    @property
    def n_samples(self):
        return self.encoded.shape[0]

    @property
    def dtype(self):
        return (self.positive if self.binary else self.proba).dtype

    @property
    def weights(self):
        if self.sample_weight.shape[0] == 0:
            return np.ones(self.n_samples)
        return self.sample_weight

    def columns(self):
        """Yield ``(scores, hits)`` per one-vs-rest column: one for binary input."""
        if self.binary:
            yield self.positive, self.encoded == 1
            return
        for k in range(self.proba.shape[1]):
            yield self.proba[:, k], self.encoded == k

    def top_label(self):
        """``(confidence, hits)`` of the top label, or the binary scores."""
        if self.binary:
            return self.positive, self.encoded == 1
        confidence = np.empty(self.n_samples)
        hits = np.empty(self.n_samples, dtype=np.uint8)
        top_label_confidence(self.proba, self.encoded, confidence, hits)
        return confidence, hits


def _unique_labels(y_true):
    """Sorted unique values of ``y_true``; a bincount instead of a sort for integers."""
    if y_true.dtype.kind in "iu" and y_true.shape[0] > 0:
        low, high = int(y_true.min()), int(y_true.max())
        if high - low <= 4 * y_true.shape[0] + 1024:
            shifted = y_true if low == 0 else y_true - low
            return np.flatnonzero(np.bincount(shifted)) + low
    return np.unique(y_true)


def _encode(y_true, classes):
    """Index of each label in the sorted ``classes``; raises on unknown labels."""
    if y_true.dtype.kind in "iu" and classes.dtype.kind in "iu":
        n_classes = classes.shape[0]
        if np.array_equal(classes, np.arange(n_classes)):
            low, high = int(y_true.min()), int(y_true.max())
            if low >= 0 and high < n_classes:
                return y_true
    encoded = np.searchsorted(classes, y_true)
    np.clip(encoded, 0, classes.shape[0] - 1, out=encoded)
    unknown = classes[encoded] != y_true
    if np.any(unknown):
        raise ValueError(
            f"y_true holds labels missing from labels={classes.tolist()!r}, e.g. "
            f"{y_true[np.argmax(unknown)]!r}."
        )
    return encoded


def _classes(y_true, labels, n_columns, binary_1d):
    """The classes of ``y_proba``'s columns, from ``labels`` or from ``y_true``."""
    if labels is not None:
        given = column_or_1d(labels, input_name="labels")
        classes = np.unique(given)
        if classes.shape[0] != given.shape[0]:
            raise ValueError(f"labels must be unique; got labels={given.tolist()!r}.")
        if not np.array_equal(classes, given):
            # sklearn's convention (log_loss warns, roc_auc_score raises): column k
            # scores the k-th sorted label, so another order would be silently
            # re-sorted and every column scored against the wrong class
            raise ValueError(
                "labels must be sorted: the columns of y_proba follow the sorted "
                "labels, as in sklearn.metrics.log_loss; got "
                f"labels={given.tolist()!r}. Reorder y_proba's columns to "
                f"labels={classes.tolist()!r}."
            )
        if classes.shape[0] != n_columns:
            raise ValueError(
                f"labels has {classes.shape[0]} classes but y_proba has "
                f"{n_columns} columns; got labels={classes.tolist()!r}."
            )
        return classes
    classes = _unique_labels(y_true)
    if classes.shape[0] == n_columns:
        return classes
    if binary_1d and classes.shape[0] == 1 and classes[0] in (0, 1):
        # a single class of a 0/1 (or boolean) problem has an unambiguous role
        return np.array([0, 1], dtype=y_true.dtype if y_true.dtype != bool else int)
    raise ValueError(
        f"y_true holds {classes.shape[0]} classes ({classes.tolist()!r}) but y_proba "
        f"scores {n_columns}; pass the classes of y_proba's columns explicitly with "
        "labels= (for an estimator, labels=estimator.classes_)."
    )


def _raise_for_invalid(first_invalid_row, max_sum_error, y_proba, check_sums):
    if first_invalid_row >= 0:
        raise ValueError(
            "y_proba must hold finite probabilities in [0, 1]; got "
            f"y_proba[{first_invalid_row}] = {y_proba[first_invalid_row]!r}."
        )
    tolerance = _SUM_TOLERANCE[y_proba.dtype]
    if check_sums and max_sum_error > tolerance:
        raise ValueError(
            "Each row of y_proba must sum to 1; got a row whose sum is off by "
            f"{max_sum_error:.3g} (tolerance {tolerance:g}). Pass probabilities, e.g. "
            "from predict_proba, not decision scores."
        )


def _check_scores(y_true, y_proba, sample_weight, labels, validate=True,
                  binary="positive"):
    """Validate the common arguments of every metric into a :class:`_Scores`.

    With ``validate=False`` a matrix of three or more columns is not checked here,
    because the caller's kernel checks it in its own pass (the top-label hot path).
    ``binary="top_label"`` turns binary input into the two-column matrix of a
    two-class problem, so that it is scored like multiclass input.
    """
    if np.ndim(y_proba) not in (1, 2):
        raise ValueError(
            f"y_proba must be 1-D or 2-D; got shape {np.shape(y_proba)}."
        )
    y_proba = check_array(
        y_proba, ensure_2d=False, dtype=[np.float64, np.float32],
        ensure_all_finite=False, input_name="y_proba", order=None,
    )
    if y_proba.ndim == 2 and y_proba.shape[1] == 1:
        y_proba = y_proba[:, 0]
    y_true = column_or_1d(y_true, input_name="y_true")
    check_consistent_length(y_true, y_proba)
    binary_1d = y_proba.ndim == 1
    n_columns = 2 if binary_1d else y_proba.shape[1]
    if y_true.dtype == bool:
        y_true = y_true.astype(np.intp)
    classes = _classes(y_true, labels, n_columns, binary_1d)
    encoded = _encode(y_true, classes)
    if sample_weight is None:
        sample_weight = np.empty(0)
    else:
        sample_weight = _check_sample_weight(
            sample_weight, y_proba, dtype=np.float64, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must have a positive sum; got all zeros.")
    if binary_1d:
        _raise_for_invalid(*check_proba(y_proba[:, None], False), y_proba, False)
        if binary == "top_label":
            two_columns = np.column_stack([1 - y_proba, y_proba])
            return _Scores(two_columns, None, encoded, classes, sample_weight)
        return _Scores(None, y_proba, encoded, classes, sample_weight)
    if validate or n_columns == 2:
        _raise_for_invalid(*check_proba(y_proba, True), y_proba, True)
    if n_columns == 2 and binary == "positive":
        return _Scores(None, y_proba[:, 1], encoded, classes, sample_weight,
                       two_columns=y_proba)
    return _Scores(y_proba, None, encoded, classes, sample_weight)


def _uniform_edges(n_bins, dtype):
    # the edges numpy.histogram(p, n_bins, range=(0, 1)) uses, in p's dtype
    return np.linspace(0.0, 1.0, n_bins + 1, dtype=dtype)


def _quantile_edges(scores, n_bins):
    edges = np.quantile(scores, np.linspace(0.0, 1.0, n_bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    return edges


class _BinStats(Bunch):
    """Per-bin ``counts``, ``weight_sums``, ``confidence_sums``, ``hit_sums``, edges.

    The sums have shape ``(n_bins,)`` for one score column and ``(n_columns,
    n_bins)`` for one-vs-rest statistics; ``edges`` is None for ``"equal_count"``.
    """


def _empty_stats(shape):
    return _BinStats(
        counts=np.zeros(shape, dtype=np.int64),
        weight_sums=np.zeros(shape),
        confidence_sums=np.zeros(shape),
        hit_sums=np.zeros(shape),
        edges=None,
    )


def _equal_count_stats(scores, hits, weights, n_bins):
    """Statistics of ``np.array_split`` of the samples sorted by score."""
    n_samples = scores.shape[0]
    order = np.argsort(scores, kind="stable")
    sizes = np.full(n_bins, n_samples // n_bins)
    sizes[: n_samples % n_bins] += 1
    bins = np.empty(n_samples, dtype=np.intp)
    bins[order] = np.repeat(np.arange(n_bins), sizes)
    return _BinStats(
        counts=np.bincount(bins, minlength=n_bins).astype(np.int64),
        weight_sums=np.bincount(bins, weights, minlength=n_bins),
        confidence_sums=np.bincount(bins, weights * scores, minlength=n_bins),
        hit_sums=np.bincount(bins, weights * (hits != 0), minlength=n_bins),
        edges=None,
    )


def _column_stats(scores, hits, data, n_bins, strategy):
    """Bin statistics of one score column against its outcomes."""
    if strategy == "equal_count":
        return _equal_count_stats(scores, hits, data.weights, n_bins)
    if strategy == "uniform":
        edges = _uniform_edges(n_bins, scores.dtype)
    else:
        edges = _quantile_edges(scores, n_bins).astype(scores.dtype, copy=False)
    stats = _empty_stats(n_bins)
    bin_stats(
        scores, hits, data.sample_weight, edges, strategy == "uniform",
        stats.counts, stats.weight_sums, stats.confidence_sums, stats.hit_sums,
    )
    stats.edges = edges
    return stats


def _top_label_stats(y_true, y_proba, sample_weight, labels, n_bins, strategy,
                     binary="positive"):
    """Top-label bin statistics (for binary input, with ``binary="positive"``: of
    the positive-class scores)."""
    data = _check_scores(
        y_true, y_proba, sample_weight, labels, validate=strategy == "equal_count",
        binary=binary,
    )
    if data.binary:
        return _column_stats(data.positive, data.encoded == 1, data, n_bins, strategy)
    if strategy == "equal_count":
        return _column_stats(*data.top_label(), data, n_bins, strategy)
    if strategy == "uniform":
        edges = _uniform_edges(n_bins, data.dtype)
    else:
        confidence = np.empty(data.n_samples)
        hits = np.empty(data.n_samples, dtype=np.uint8)
        status = top_label_confidence(data.proba, data.encoded, confidence, hits)
        _raise_for_invalid(*status, data.proba, True)
        edges = _quantile_edges(confidence, n_bins)
    stats = _empty_stats(n_bins)
    status = top_label_bin_stats(
        data.proba, data.encoded, data.sample_weight, edges, strategy == "uniform",
        stats.counts, stats.weight_sums, stats.confidence_sums, stats.hit_sums,
    )
    _raise_for_invalid(*status, data.proba, True)
    stats.edges = edges
    return stats


def _classwise_stats(data, n_bins, strategy):
    """One-vs-rest statistics of every column, shape ``(n_columns, n_bins)``."""
    per_column = [
        _column_stats(scores, hits, data, n_bins, strategy)
        for scores, hits in data.columns()
    ]
    stats = _BinStats(
        **{
            key: np.stack([column[key] for column in per_column])
            for key in ("counts", "weight_sums", "confidence_sums", "hit_sums")
        }
    )
    stats.edges = None if strategy == "equal_count" else [c.edges for c in per_column]
    return stats


def _error_from_stats(stats, norm):
    """Binned calibration error of each row of the statistics (or of the one row)."""
    weight_sums = np.atleast_2d(stats.weight_sums)
    differences = np.abs(
        np.atleast_2d(stats.confidence_sums) - np.atleast_2d(stats.hit_sums)
    )
    totals = weight_sums.sum(axis=1)
    nonempty = weight_sums > 0
    gaps = np.divide(differences, weight_sums, out=np.zeros_like(differences),
                     where=nonempty)
    if norm == "l1":
        errors = differences.sum(axis=1) / totals
    elif norm == "l2":
        errors = np.sqrt((weight_sums * gaps**2).sum(axis=1) / totals)
    else:
        errors = gaps.max(axis=1, initial=0.0)
    return errors


def _binned_error(y_true, y_proba, n_bins, strategy, norm, multiclass, sample_weight,
                  labels, binary="positive"):
    if multiclass == "top_label":
        stats = _top_label_stats(y_true, y_proba, sample_weight, labels, n_bins,
                                 strategy, binary)
        return float(_error_from_stats(stats, norm)[0])
    data = _check_scores(y_true, y_proba, sample_weight, labels, binary=binary)
    if data.binary:
        stats = _column_stats(data.positive, data.encoded == 1, data, n_bins, strategy)
    else:
        stats = _classwise_stats(data, n_bins, strategy)
    return float(_error_from_stats(stats, norm).mean())


@validate_params(
    {
        **_COMMON_CONSTRAINTS,
        **_BINNING_CONSTRAINTS,
        **_MULTICLASS_CONSTRAINT,
        **_BINARY_CONSTRAINT,
        "norm": [StrOptions({"l1", "l2", "max"})],
    },
    prefer_skip_nested_validation=True,
)
def expected_calibration_error(
    y_true, y_proba, *, n_bins=15, strategy="uniform", norm="l1",
    multiclass="top_label", binary="positive", sample_weight=None, labels=None,
):
    """Binned expected calibration error (ECE) of predicted probabilities.

    The samples are grouped into bins by their confidence; in each bin the mean
    confidence is compared with the accuracy. With ``norm="l1"`` the error is
    ``sum_b (n_b / n) |conf_b - acc_b|``; ``"l2"`` gives the root-mean-square
    ``sqrt(sum_b (n_b / n) (conf_b - acc_b)^2)`` and ``"max"`` the largest gap over
    the non-empty bins. ``n_b / n`` is the bin's share of the total sample weight.

    With ``multiclass="top_label"`` the confidence of a sample is its largest
    probability and it is accurate when that class (the first on ties) is its label.
    With ``"classwise"`` the error is the mean over the columns ``k`` of the binary
    error of ``y_proba[:, k]`` against ``y_true == labels[k]``.

    Binary input (a 1-D array, or two columns) has two conventions, and they rank
    models differently. ``binary="positive"`` (the default, as in
    :func:`sklearn.calibration.calibration_curve`, netcal, torchmetrics and
    relplot) scores the probability of the positive class, the second of the
    sorted labels, against the event ``y_true == labels[1]``, on bins over
    ``[0, 1]``. ``binary="top_label"`` scores the two columns as the two-class
    problem they are, under ``multiclass``: by default the confidence
    ``max(p, 1 - p)`` against accuracy, as in Guo et al. (2017). The calibrated
    mixture-of-experts paper this library implements (Wong et al., 2026) reports
    top-label ECE with 15 equal-width bins, also on binary tasks:
    ``binary="top_label"``.

    Read more in the :ref:`User Guide <calibration_metrics>`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities: of the positive class (1-D), or of each class, the
        columns following the sorted ``labels``. Rows must sum to one within
        ``1e-5`` (``1e-4`` for float32).
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
        ``"uniform"``: equal-width bins on ``[0, 1]``, assigned exactly as
        ``numpy.histogram(conf, n_bins, range=(0, 1))`` assigns them: ``[a, b)``
        with the last bin closed, so a confidence on an edge goes to the bin on its
        right (libraries differ here). ``"quantile"``: equal-mass bins whose edges
        are the quantiles ``np.quantile(conf, np.linspace(0, 1, n_bins + 1))`` of the
        unweighted confidences, the outer edges set to 0 and 1. ``"equal_count"``:
        the samples sorted by confidence and split into ``n_bins`` groups of equal
        size with ``np.array_split``. In both equal-mass strategies the bins are
        formed from the samples' count, not their weight, so only ``"uniform"``
        treats an integer weight exactly as repeated samples.
    norm : {"l1", "l2", "max"}, default="l1"
        How the bins' gaps are combined.
    multiclass : {"top_label", "classwise"}, default="top_label"
        Which events are checked for calibration (see above).
    binary : {"positive", "top_label"}, default="positive"
        How binary input is scored: on the positive class's probability, or as a
        two-class problem under ``multiclass`` (see above).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights; an integer weight counts as that many copies.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``. Needed when ``y_true`` holds fewer classes than
        ``y_proba`` has columns (a subset of the data); ``None`` means the classes
        present in ``y_true``.

    Returns
    -------
    error : float
        The calibration error, in ``[0, 1]``.

    See Also
    --------
    maximum_calibration_error, root_mean_squared_calibration_error,
    classwise_calibration_error, adaptive_calibration_error : shortcuts.
    smooth_calibration_error : the binning-free smooth ECE.
    debiased_calibration_error : the L2 error without the binning bias.

    References
    ----------
    .. [1] M. P. Naeini, G. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", AAAI 2015.
    .. [2] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern
       neural networks", ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.metrics import expected_calibration_error
    >>> y_true = np.array([0, 1, 2, 2])
    >>> y_proba = np.array([[0.8, 0.1, 0.1],
    ...                     [0.2, 0.7, 0.1],
    ...                     [0.1, 0.2, 0.7],
    ...                     [0.6, 0.3, 0.1]])
    >>> round(expected_calibration_error(y_true, y_proba, n_bins=5), 4)
    0.35
    >>> round(expected_calibration_error([0, 1, 1], [0.2, 0.6, 0.9], n_bins=5), 4)
    0.2333

    Two negatives predicted at ``P(y = 1) = 0.3`` and ``0.7`` are two 70% top-label
    predictions, one right and one wrong:

    >>> round(expected_calibration_error([0, 0], [0.3, 0.7], n_bins=5), 4)
    0.5
    >>> round(expected_calibration_error([0, 0], [0.3, 0.7], n_bins=5,
    ...                                  binary="top_label"), 4)
    0.2
    """
    return _binned_error(y_true, y_proba, n_bins, strategy, norm, multiclass,
                         sample_weight, labels, binary)


_BINARY_DOC = """\
    binary : {"positive", "top_label"}, default="positive"
        How binary input is scored: on the positive class's probability, or as a
        two-class problem under ``multiclass`` (the paper's top-label convention).
"""


def _shortcut_doc(summary, call, value):
    """Docstring of a named shortcut of :func:`expected_calibration_error`."""
    binary_doc = _BINARY_DOC
    return f"""{summary}

    A shortcut for :func:`expected_calibration_error` with ``{call}``; see there for
    the binning, the binary and multiclass conventions and ``labels``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities.
    n_bins : int, default=15
        Number of bins.
    strategy : {{"uniform", "quantile", "equal_count"}}
        How the bins are formed.
    multiclass : {{"top_label", "classwise"}}
        Which events are checked for calibration.
{binary_doc}    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.

    Returns
    -------
    error : float
        The calibration error, in ``[0, 1]``.

    See Also
    --------
    expected_calibration_error : the general function.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import metrics
    >>> y_true = np.array([0, 1, 2, 2])
    >>> y_proba = np.array([[0.8, 0.1, 0.1],
    ...                     [0.2, 0.7, 0.1],
    ...                     [0.1, 0.2, 0.7],
    ...                     [0.6, 0.3, 0.1]])
    >>> round(metrics.{{name}}(y_true, y_proba, n_bins=5), 4)
    {value}
    """


_SHORTCUT_CONSTRAINTS = {
    **_COMMON_CONSTRAINTS, **_BINNING_CONSTRAINTS, **_MULTICLASS_CONSTRAINT,
    **_BINARY_CONSTRAINT,
}


@validate_params(_SHORTCUT_CONSTRAINTS, prefer_skip_nested_validation=True)
def maximum_calibration_error(
    y_true, y_proba, *, n_bins=15, strategy="uniform", multiclass="top_label",
    binary="positive", sample_weight=None, labels=None,
):
    return _binned_error(y_true, y_proba, n_bins, strategy, "max", multiclass,
                         sample_weight, labels, binary)


@validate_params(_SHORTCUT_CONSTRAINTS, prefer_skip_nested_validation=True)
def root_mean_squared_calibration_error(
    y_true, y_proba, *, n_bins=15, strategy="uniform", multiclass="top_label",
    binary="positive", sample_weight=None, labels=None,
):
    return _binned_error(y_true, y_proba, n_bins, strategy, "l2", multiclass,
                         sample_weight, labels, binary)


@validate_params(
    {**_COMMON_CONSTRAINTS, **_BINNING_CONSTRAINTS,
     "norm": [StrOptions({"l1", "l2", "max"})]},
    prefer_skip_nested_validation=True,
)
def classwise_calibration_error(
    y_true, y_proba, *, n_bins=15, strategy="uniform", norm="l1",
    sample_weight=None, labels=None,
):
    return _binned_error(y_true, y_proba, n_bins, strategy, norm, "classwise",
                         sample_weight, labels)


@validate_params(
    {**_COMMON_CONSTRAINTS, "n_bins": _BINNING_CONSTRAINTS["n_bins"],
     **_MULTICLASS_CONSTRAINT, **_BINARY_CONSTRAINT,
     "norm": [StrOptions({"l1", "l2", "max"})]},
    prefer_skip_nested_validation=True,
)
def adaptive_calibration_error(
    y_true, y_proba, *, n_bins=15, norm="l1", multiclass="top_label",
    binary="positive", sample_weight=None, labels=None,
):
    return _binned_error(y_true, y_proba, n_bins, "quantile", norm, multiclass,
                         sample_weight, labels, binary)


maximum_calibration_error.__doc__ = _shortcut_doc(
    "Maximum calibration error (MCE): the largest gap over the non-empty bins.",
    'norm="max"', "0.6",
).replace("{name}", "maximum_calibration_error")
root_mean_squared_calibration_error.__doc__ = _shortcut_doc(
    "Root-mean-square calibration error (RMSCE, the binned L2 error).",
    'norm="l2"', "0.3808",
).replace("{name}", "root_mean_squared_calibration_error")
classwise_calibration_error.__doc__ = (
    _shortcut_doc(
        "Classwise calibration error: the mean one-vs-rest error over the columns.",
        'multiclass="classwise"', "0.25",
    )
    .replace("{name}", "classwise_calibration_error")
    .replace(_BINARY_DOC, "")
    .replace(
        '    multiclass : {"top_label", "classwise"}\n'
        "        Which events are checked for calibration.\n",
        '    norm : {"l1", "l2", "max"}, default="l1"\n'
        "        How the bins' gaps are combined.\n",
    )
)
adaptive_calibration_error.__doc__ = (
    _shortcut_doc(
        "Adaptive calibration error: the ECE on equal-mass (quantile) bins.",
        'strategy="quantile"', "0.35",
    )
    .replace("{name}", "adaptive_calibration_error")
    .replace(
        '    strategy : {"uniform", "quantile", "equal_count"}\n'
        "        How the bins are formed.\n",
        '    norm : {"l1", "l2", "max"}, default="l1"\n'
        "        How the bins' gaps are combined.\n",
    )
)


@validate_params(
    {**_COMMON_CONSTRAINTS, **_BINNING_CONSTRAINTS, **_MULTICLASS_CONSTRAINT,
     **_BINARY_CONSTRAINT},
    prefer_skip_nested_validation=True,
)
def debiased_calibration_error(
    y_true, y_proba, *, n_bins=15, strategy="uniform", multiclass="top_label",
    binary="positive", sample_weight=None, labels=None,
):
    """Debiased root-mean-square calibration error (Kumar, Liang and Ma, 2019).

    The plug-in squared error ``sum_b (n_b / n) (conf_b - acc_b)^2`` overestimates
    the true squared calibration error, because the bin accuracy ``acc_b`` is noisy.
    The debiased estimator subtracts the variance of that noise,
    ``acc_b (1 - acc_b) / (n_b - 1)``, in every bin whose total weight ``n_b``
    exceeds one (for unit weights: that holds two samples or more; the others
    contribute zero), and returns the square root of the estimate clipped at zero.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities (see :func:`expected_calibration_error`).
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
        How the bins are formed; Kumar et al. use equal-mass bins.
    multiclass : {"top_label", "classwise"}, default="top_label"
        Which events are checked for calibration.
    binary : {"positive", "top_label"}, default="positive"
        How binary input is scored (see :func:`expected_calibration_error`).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.

    Returns
    -------
    error : float
        The debiased L2 calibration error, in ``[0, 1]``.

    See Also
    --------
    root_mean_squared_calibration_error : the plug-in estimate.

    References
    ----------
    .. [1] A. Kumar, P. Liang and T. Ma, "Verified uncertainty calibration",
       NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.metrics import debiased_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(2000)
    >>> y = rng.random(2000) < p  # calibrated by construction
    >>> debiased_calibration_error(y, p, n_bins=10) < 0.02
    True
    """
    if multiclass == "top_label":
        stats = _top_label_stats(y_true, y_proba, sample_weight, labels, n_bins,
                                 strategy, binary)
    else:
        data = _check_scores(y_true, y_proba, sample_weight, labels, binary=binary)
        if data.binary:
            stats = _column_stats(data.positive, data.encoded == 1, data, n_bins,
                                  strategy)
        else:
            stats = _classwise_stats(data, n_bins, strategy)
    weight_sums = np.atleast_2d(stats.weight_sums)
    usable = weight_sums > 1
    safe = np.where(usable, weight_sums, 2.0)
    confidence = np.atleast_2d(stats.confidence_sums) / safe
    accuracy = np.atleast_2d(stats.hit_sums) / safe
    squared = (confidence - accuracy) ** 2 - accuracy * (1 - accuracy) / (safe - 1)
    totals = weight_sums.sum(axis=1)
    estimates = np.where(usable, weight_sums * squared, 0.0).sum(axis=1) / totals
    return float(np.sqrt(np.maximum(estimates, 0.0)).mean())


def _splat_to_grid(scores, values, n_points):
    """Spread ``values`` at ``scores`` onto a grid of ``n_points`` by linear weights."""
    scaled = scores * (n_points - 1)
    left = np.clip(scaled.astype(np.intp), 0, n_points - 2)
    fraction = scaled - left
    return np.bincount(left, (1 - fraction) * values, minlength=n_points) + np.bincount(
        left + 1, fraction * values, minlength=n_points
    )


def _reflected_gaussian_smooth(scores, values, bandwidth, points):
    """Gaussian kernel smoothing of ``values`` reflected at 0 and 1, at ``points``.

    As in relplot: the values are spread on a grid of ``max(2000, 20 / sigma) // 2
    + 1`` points, mirrored across both ends, convolved with the Gaussian kernel
    sampled on the grid, and linearly interpolated at ``points``.
    """
    n_grid = max(2000, round(20 / bandwidth)) // 2 + 1
    grid_values = _splat_to_grid(scores, values, n_grid)
    offsets = np.linspace(0, 1, n_grid) - 0.5
    kernel = np.exp(-offsets * offsets / (2 * bandwidth**2))
    kernel /= np.sqrt(2 * np.pi) * bandwidth
    mirrored = np.concatenate(
        [grid_values[::-1][:-1], grid_values, grid_values[::-1][1:]]
    )
    start = n_grid // 2
    smoothed = np.convolve(mirrored, kernel, "valid")[start : start + n_grid]
    cell = 1 / (n_grid - 1)
    left = np.clip((points * (n_grid - 1)).astype(np.intp), 0, n_grid - 2)
    fraction = (points - left * cell) / cell
    return smoothed[left] * (1 - fraction) + smoothed[left + 1] * fraction


def _smooth_ece_at(scores, outcomes, weights, bandwidth):
    """Smooth ECE of one score column at a fixed bandwidth, discretised as relplot."""
    points = np.linspace(0, 1, max(round(10 / bandwidth), 200))
    residual = _reflected_gaussian_smooth(
        scores, weights * (scores - outcomes), bandwidth, points
    )
    density = _reflected_gaussian_smooth(scores, weights, bandwidth, points) + 1e-4
    return float(np.sum(np.abs(residual / density) * density) / np.sum(density))


def _smooth_ece(scores, outcomes, weights, bandwidth):
    """Smooth ECE and its bandwidth; ``bandwidth=None`` finds the fixed point."""
    scores = np.asarray(scores, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    if bandwidth is not None:
        return _smooth_ece_at(scores, outcomes, weights, bandwidth), bandwidth

    def small_enough(sigma):
        # smECE(sigma) decreases in sigma: the fixed point is where they cross
        return sigma < _MIN_BANDWIDTH or sigma < _smooth_ece_at(
            scores, outcomes, weights, sigma
        )

    high, low = 1.0, 0.0
    if not small_enough(high):
        for _ in range(10):
            middle = (high + low) / 2
            if small_enough(middle):
                low = middle
            else:
                high = middle
    return _smooth_ece_at(scores, outcomes, weights, high), high


@validate_params(
    {
        **_COMMON_CONSTRAINTS,
        **_MULTICLASS_CONSTRAINT,
        **_BINARY_CONSTRAINT,
        "bandwidth": [Interval(Real, 0, None, closed="neither"), None],
        "return_bandwidth": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def smooth_calibration_error(
    y_true, y_proba, *, multiclass="top_label", binary="positive", bandwidth=None,
    sample_weight=None, labels=None, return_bandwidth=False,
):
    """Smooth expected calibration error (smECE, Błasiok and Nakkiran 2023).

    Instead of binning, the residuals ``conf - outcome`` are smoothed along the
    confidence axis with a Gaussian kernel of width ``sigma`` reflected at 0 and 1,
    and the error is the density-weighted mean absolute smoothed residual. With
    ``bandwidth=None`` the width is chosen automatically as the fixed point
    ``smECE(sigma) = sigma``, found by ten bisection steps on ``[0, 1]`` (stopping
    at ``1e-3``). The discretisation follows the reference implementation
    (relplot 1.0.3): the kernel is evaluated on a grid of ``max(2000, 20 / sigma) //
    2 + 1`` points and the error on ``max(200, 10 / sigma)`` points, so the values
    agree with ``relplot.smECE`` to rounding.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities (see :func:`expected_calibration_error`).
    multiclass : {"top_label", "classwise"}, default="top_label"
        ``"top_label"`` smooths the top probability against accuracy;
        ``"classwise"`` averages the error of every column, each with its own
        bandwidth.
    binary : {"positive", "top_label"}, default="positive"
        How binary input is scored (see :func:`expected_calibration_error`).
    bandwidth : float, default=None
        Kernel width ``sigma``; ``None`` chooses it automatically.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights; they multiply the kernel's contributions.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.
    return_bandwidth : bool, default=False
        Also return the bandwidth used (the mean over columns for classwise).

    Returns
    -------
    error : float
        The smooth calibration error.
    bandwidth : float
        Returned only with ``return_bandwidth=True``.

    See Also
    --------
    expected_calibration_error : the binned estimate.

    References
    ----------
    .. [1] J. Błasiok and P. Nakkiran, "Smooth ECE: Principled reliability diagrams
       via kernel smoothing", ICLR 2024 (arXiv:2309.12236).

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.metrics import smooth_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(1000)
    >>> y = rng.random(1000) < p ** 2  # overconfident
    >>> error, sigma = smooth_calibration_error(y, p, return_bandwidth=True)
    >>> round(error, 3), round(sigma, 3)
    (0.15, 0.15)
    """
    data = _check_scores(y_true, y_proba, sample_weight, labels, binary=binary)
    weights = data.weights
    if multiclass == "top_label":
        columns = [data.top_label()]
    else:
        columns = list(data.columns())
    results = [
        _smooth_ece(scores, hits, weights, bandwidth) for scores, hits in columns
    ]
    error = float(np.mean([value for value, _ in results]))
    if return_bandwidth:
        return error, float(np.mean([sigma for _, sigma in results]))
    return error


@validate_params(
    {**_COMMON_CONSTRAINTS, **_BINNING_CONSTRAINTS}, prefer_skip_nested_validation=True
)
def brier_score_decomposition(
    y_true, y_proba, *, n_bins=15, strategy="uniform", sample_weight=None,
    labels=None,
):
    """Calibration–refinement decomposition of the Brier score, on binned forecasts.

    For every one-vs-rest column (one column for binary input, every column for
    multiclass input, summed as in the multiclass Brier score) the forecasts are
    binned; with ``p_b`` and ``o_b`` the mean forecast and the observed frequency in
    bin ``b`` and ``n_b / n`` its weight share,

    - ``calibration = sum_b (n_b / n) (p_b - o_b)^2`` (reliability),
    - ``refinement = sum_b (n_b / n) o_b (1 - o_b) = uncertainty - resolution``,
    - ``uncertainty = o (1 - o)`` with ``o`` the overall frequency,
    - ``resolution = sum_b (n_b / n) (o_b - o)^2``,
    - ``within_bin = brier - calibration - refinement``, the spread of the
      forecasts inside the bins (zero when every bin holds a single forecast value).

    So ``brier = calibration + refinement + within_bin`` holds exactly, and ``brier``
    equals :func:`sklearn.metrics.brier_score_loss` (which halves the two-column
    sum for binary problems, as this function scores the positive column only).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities (see :func:`expected_calibration_error`).
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
        How the bins are formed.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.

    Returns
    -------
    decomposition : :class:`~sklearn.utils.Bunch`
        With the floats ``brier``, ``calibration``, ``refinement``, ``resolution``,
        ``uncertainty`` and ``within_bin``.

    References
    ----------
    .. [1] A. H. Murphy, "A new vector partition of the probability score", Journal
       of Applied Meteorology 12, 1973.
    .. [2] M. H. DeGroot and S. E. Fienberg, "The comparison and evaluation of
       forecasters", The Statistician 32, 1983.

    Examples
    --------
    >>> from skmoe.metrics import brier_score_decomposition
    >>> parts = brier_score_decomposition([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9],
    ...                                   n_bins=5)
    >>> round(parts.brier, 4), round(parts.calibration, 4), round(parts.refinement, 4)
    (0.05, 0.05, 0.0)
    """
    data = _check_scores(y_true, y_proba, sample_weight, labels)
    weights = data.weights
    total_weight = weights.sum()
    parts = dict.fromkeys(
        ("brier", "calibration", "refinement", "resolution", "uncertainty"), 0.0
    )
    for scores, hits in data.columns():
        stats = _column_stats(scores, hits, data, n_bins, strategy)
        nonempty = stats.weight_sums > 0
        shares = stats.weight_sums[nonempty] / total_weight
        forecast = stats.confidence_sums[nonempty] / stats.weight_sums[nonempty]
        observed = stats.hit_sums[nonempty] / stats.weight_sums[nonempty]
        frequency = float(np.dot(weights, hits)) / total_weight
        parts["brier"] += float(np.dot(weights, (scores - hits) ** 2)) / total_weight
        parts["calibration"] += float(np.dot(shares, (forecast - observed) ** 2))
        parts["refinement"] += float(np.dot(shares, observed * (1 - observed)))
        parts["resolution"] += float(np.dot(shares, (observed - frequency) ** 2))
        parts["uncertainty"] += frequency * (1 - frequency)
    parts["within_bin"] = parts["brier"] - parts["calibration"] - parts["refinement"]
    return Bunch(**{name: float(value) for name, value in parts.items()})


def _event_scores(data, pos_label):
    """``(scores, hits)`` of the top label, or of the column of ``pos_label``."""
    if pos_label is None:
        return data.top_label()
    matches = np.flatnonzero(data.classes == pos_label)
    if matches.shape[0] == 0:
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the classes "
            f"{data.classes.tolist()!r}."
        )
    column = int(matches[0])
    if data.binary:
        if column == 1:
            scores = data.positive
        elif data.two_columns is not None:
            scores = data.two_columns[:, 0]
        else:
            scores = 1 - data.positive
    else:
        scores = data.proba[:, column]
    return scores, data.encoded == column


def _reliability_bins(y_true, y_proba, n_bins, strategy, pos_label, sample_weight,
                      labels, binary="positive"):
    """Bin statistics of the top label, or of the column of ``pos_label``."""
    if pos_label is None:
        return _top_label_stats(y_true, y_proba, sample_weight, labels, n_bins,
                                strategy, binary)
    data = _check_scores(y_true, y_proba, sample_weight, labels)
    return _column_stats(*_event_scores(data, pos_label), data, n_bins, strategy)


@validate_params(
    {**_COMMON_CONSTRAINTS, **_BINNING_CONSTRAINTS, **_BINARY_CONSTRAINT,
     "pos_label": [Real, str, None]},
    prefer_skip_nested_validation=True,
)
def calibration_curve(
    y_true, y_proba, *, n_bins=15, strategy="uniform", pos_label=None,
    binary="positive", sample_weight=None, labels=None,
):
    """Reliability curve of binary or multiclass probabilities, with bin counts.

    The points of a reliability diagram: for every non-empty bin, the observed
    frequency of the event against the mean predicted probability, and the number
    of samples. Unlike :func:`sklearn.calibration.calibration_curve` this accepts a
    probability matrix; the event is "the top-label prediction is right" (with
    ``pos_label=None``) or "the label is ``pos_label``" scored by its column.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities (see :func:`expected_calibration_error`).
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
        How the bins are formed, as in :func:`expected_calibration_error`.
    pos_label : int, float, str or None, default=None
        ``None``: the top label (for binary input: the positive class, unless
        ``binary="top_label"``). A class label: that class against the rest.
    binary : {"positive", "top_label"}, default="positive"
        With ``pos_label=None``, how binary input is scored: the positive class's
        probability against its frequency, or the top-label confidence
        ``max(p, 1 - p)`` against accuracy (see
        :func:`expected_calibration_error`).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights; the frequencies and means are weighted, the
        counts are not.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.

    Returns
    -------
    prob_true : ndarray of shape (n_nonempty_bins,)
        Observed frequency (accuracy) in each non-empty bin.
    prob_pred : ndarray of shape (n_nonempty_bins,)
        Mean predicted probability (confidence) in each non-empty bin.
    counts : ndarray of shape (n_nonempty_bins,)
        Number of samples in each non-empty bin.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.metrics import calibration_curve
    >>> y_proba = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.2, 0.5, 0.3]])
    >>> prob_true, prob_pred, counts = calibration_curve(
    ...     [0, 1, 1], y_proba, n_bins=5, labels=[0, 1, 2])
    >>> prob_true, prob_pred, counts
    (array([1. , 0.5]), array([0.5 , 0.85]), array([1, 2]))
    """
    stats = _reliability_bins(y_true, y_proba, n_bins, strategy, pos_label,
                              sample_weight, labels, binary)
    nonempty = stats.weight_sums > 0
    weight_sums = stats.weight_sums[nonempty]
    return (
        stats.hit_sums[nonempty] / weight_sums,
        stats.confidence_sums[nonempty] / weight_sums,
        stats.counts[nonempty],
    )


def _full_labels(y_true, y_proba, labels):
    """The classes of the columns, decided once on the full data for its subsets."""
    if labels is not None:
        return labels
    n_columns = 2 if np.ndim(y_proba) == 1 else np.shape(y_proba)[1]
    y_true = column_or_1d(y_true, input_name="y_true")
    if y_true.dtype == bool:
        y_true = y_true.astype(np.intp)
    return _classes(y_true, None, max(n_columns, 2), np.ndim(y_proba) == 1)


_GROUP_CONSTRAINTS = {
    **_COMMON_CONSTRAINTS,
    **_BINNING_CONSTRAINTS,
    **_MULTICLASS_CONSTRAINT,
    **_BINARY_CONSTRAINT,
    "groups": ["array-like", None],
    "norm": [StrOptions({"l1", "l2", "max"})],
}


@validate_params(_GROUP_CONSTRAINTS, prefer_skip_nested_validation=True)
def groupwise_calibration_error(
    y_true, y_proba, *, groups, n_bins=15, strategy="uniform", norm="l1",
    multiclass="top_label", binary="positive", sample_weight=None, labels=None,
):
    """Expected calibration error of every group of samples.

    The data are split by ``groups`` (domains, sites, expert assignments, ...) and
    :func:`expected_calibration_error` is computed on each part. The classes of the
    probability columns are decided once on all samples (or taken from ``labels``),
    so a group that holds only some classes is scored correctly.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities (see :func:`expected_calibration_error`).
    groups : array-like of shape (n_samples,)
        Group label of every sample.
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
        How the bins are formed (within each group).
    norm : {"l1", "l2", "max"}, default="l1"
        How the bins' gaps are combined.
    multiclass : {"top_label", "classwise"}, default="top_label"
        Which events are checked for calibration.
    binary : {"positive", "top_label"}, default="positive"
        How binary input is scored (see :func:`expected_calibration_error`).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.

    Returns
    -------
    errors : dict
        The calibration error of every group, keyed by group label in sorted order.
        A group whose weights are all zero is left out.

    See Also
    --------
    worst_group_calibration_error : the largest of them.

    Examples
    --------
    >>> from skmoe.metrics import groupwise_calibration_error
    >>> errors = groupwise_calibration_error(
    ...     [0, 1, 1, 0], [0.1, 0.9, 0.6, 0.6], groups=["a", "a", "b", "b"],
    ...     n_bins=5)
    >>> {group: round(error, 2) for group, error in errors.items()}
    {'a': 0.1, 'b': 0.1}
    """
    if groups is None:
        raise ValueError(
            "groups is required. In a scorer, request it with "
            "scorer.set_score_request(groups=True) (metadata routing enabled) and "
            "pass groups= to cross_validate or GridSearchCV.fit."
        )
    groups = column_or_1d(groups, input_name="groups")
    check_consistent_length(y_true, y_proba, groups)
    labels = _full_labels(y_true, y_proba, labels)
    y_true = np.asarray(y_true)
    y_proba = np.asarray(y_proba)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    group_labels, group_index = np.unique(groups, return_inverse=True)
    errors = {}
    for index, group in enumerate(group_labels):
        rows = np.flatnonzero(group_index == index)
        weight = None if sample_weight is None else sample_weight[rows]
        if weight is not None and not weight.sum() > 0:
            continue
        errors[group.item() if hasattr(group, "item") else group] = _binned_error(
            y_true[rows], y_proba[rows], n_bins, strategy, norm, multiclass, weight,
            labels, binary,
        )
    return errors


@validate_params(_GROUP_CONSTRAINTS, prefer_skip_nested_validation=True)
def worst_group_calibration_error(
    y_true, y_proba, *, groups=None, n_bins=15, strategy="uniform", norm="l1",
    multiclass="top_label", binary="positive", sample_weight=None, labels=None,
):
    """Largest expected calibration error over groups of samples.

    The maximum of :func:`groupwise_calibration_error`: a model that is calibrated
    on average can be badly calibrated on one domain, and a shift towards that
    domain exposes it. Used as a scorer, ``groups`` reaches it through metadata
    routing: ``get_scorer("neg_worst_group_calibration_error")
    .set_score_request(groups=True)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities (see :func:`expected_calibration_error`).
    groups : array-like of shape (n_samples,)
        Group label of every sample. Required; ``None`` (the default only so that
        a scorer can be built before routing is set up) raises a ValueError.
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
        How the bins are formed (within each group).
    norm : {"l1", "l2", "max"}, default="l1"
        How the bins' gaps are combined.
    multiclass : {"top_label", "classwise"}, default="top_label"
        Which events are checked for calibration.
    binary : {"positive", "top_label"}, default="positive"
        How binary input is scored (see :func:`expected_calibration_error`).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.

    Returns
    -------
    error : float
        The largest per-group calibration error.

    Examples
    --------
    >>> from skmoe.metrics import worst_group_calibration_error
    >>> round(worst_group_calibration_error(
    ...     [0, 1, 1, 0], [0.1, 0.9, 0.9, 0.9], groups=[0, 0, 1, 1], n_bins=5), 2)
    0.4
    """
    errors = groupwise_calibration_error(
        y_true, y_proba, groups=groups, n_bins=n_bins, strategy=strategy, norm=norm,
        multiclass=multiclass, binary=binary, sample_weight=sample_weight,
        labels=labels,
    )
    return float(max(errors.values()))


@validate_params(
    {
        "metric": [callable],
        "y_true": ["array-like"],
        "y_proba": ["array-like"],
        "n_resamples": [Interval(Integral, 1, None, closed="left")],
        "confidence_level": [Interval(Real, 0, 1, closed="neither")],
        "sample_weight": ["array-like", None],
        "groups": ["array-like", None],
        "labels": ["array-like", None],
        "metric_params": [dict, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def bootstrap_confidence_interval(
    metric, y_true, y_proba, *, n_resamples=1000, confidence_level=0.95,
    sample_weight=None, groups=None, labels=None, metric_params=None,
    random_state=None,
):
    """Percentile bootstrap confidence interval of a calibration metric.

    The samples are drawn with replacement ``n_resamples`` times and ``metric`` is
    computed on every resample; the interval is formed by the
    ``(1 - confidence_level) / 2`` and ``(1 + confidence_level) / 2`` quantiles of
    those values. The classes of the columns are decided once on all samples and
    passed to ``metric`` as ``labels``, so a resample missing a class is scored
    correctly.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_proba, labels=..., **metric_params)`` returning a float,
        e.g. :func:`expected_calibration_error`; it also receives ``sample_weight``
        and ``groups`` when those are given.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities.
    n_resamples : int, default=1000
        Number of bootstrap resamples.
    confidence_level : float, default=0.95
        Coverage of the interval, in ``(0, 1)``.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, resampled with the samples.
    groups : array-like of shape (n_samples,), default=None
        Group labels, resampled with the samples (for group metrics).
    labels : array-like of shape (n_classes,), default=None
        The classes of ``y_proba``'s columns, sorted: column ``k`` scores
        ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted ``labels``
        raise a ``ValueError``.
    metric_params : dict, default=None
        Further keyword arguments of ``metric``.
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling.

    Returns
    -------
    interval : :class:`~sklearn.utils.Bunch`
        ``estimate`` (the metric on all samples), ``low``, ``high`` and
        ``resamples`` (the metric on every resample).

    Notes
    -----
    A binned calibration error is biased upwards (noise in the bin accuracies only
    adds to it), and a resample, which repeats samples, is noisier still: the
    interval can lie above the estimate of a well-calibrated model, as in the
    example below. :func:`debiased_calibration_error` reduces this bias.

    References
    ----------
    .. [1] B. Efron and R. J. Tibshirani, "An Introduction to the Bootstrap",
       Chapman & Hall, 1993.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.metrics import (bootstrap_confidence_interval,
    ...                            expected_calibration_error)
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(500)
    >>> y = rng.random(500) < p
    >>> ci = bootstrap_confidence_interval(
    ...     expected_calibration_error, y, p, n_resamples=200, random_state=0)
    >>> round(ci.estimate, 3), round(ci.low, 3), round(ci.high, 3)
    (0.043, 0.048, 0.101)
    """
    y_true = column_or_1d(y_true, input_name="y_true")
    y_proba = np.asarray(y_proba)
    check_consistent_length(y_true, y_proba)
    labels = _full_labels(y_true, y_proba, labels)
    params = dict(metric_params or {}, labels=labels)
    arrays = {"sample_weight": sample_weight, "groups": groups}
    arrays = {name: np.asarray(value) for name, value in arrays.items()
              if value is not None}
    for value in arrays.values():
        check_consistent_length(y_true, value)
    estimate = float(metric(y_true, y_proba, **arrays, **params))
    random_state = check_random_state(random_state)
    n_samples = y_true.shape[0]
    resamples = np.empty(n_resamples)
    for r in range(n_resamples):
        rows = random_state.randint(0, n_samples, size=n_samples)
        resampled = {name: value[rows] for name, value in arrays.items()}
        resamples[r] = metric(y_true[rows], y_proba[rows], **resampled, **params)
    tail = (1 - confidence_level) / 2
    low, high = np.quantile(resamples, [tail, 1 - tail])
    return Bunch(estimate=estimate, low=float(low), high=float(high),
                 resamples=resamples)


def _smooth_reliability_curve(scores, outcomes, weights, n_points=200):
    """The smooth reliability curve at the automatic bandwidth (for the displays).

    Returns ``(points, curve, density, bandwidth)``: the smoothed outcome frequency
    ``points - smoothed residual`` and the kernel density of the scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    _, bandwidth = _smooth_ece(scores, outcomes, weights, None)
    points = np.linspace(0, 1, n_points)
    residual = _reflected_gaussian_smooth(
        scores, weights * (scores - outcomes), bandwidth, points
    )
    density = _reflected_gaussian_smooth(scores, weights, bandwidth, points) + 1e-4
    return points, points - residual / density, density, bandwidth
