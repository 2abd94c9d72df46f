"""Kernels of the binned calibration metrics: confidences, bin indices, bin statistics.

The hot path of :func:`skmoe.metrics.expected_calibration_error` is
:func:`top_label_bin_stats`, one pass over the ``(n_samples, n_classes)`` probability
matrix that validates each row, takes its top probability and the index of that
probability, compares it with the encoded label, finds the bin and accumulates the
bin's count, weight, confidence and accuracy sums; nothing of size ``n_samples`` is
allocated. The other kernels serve the slower paths (equal-mass bins, one-vs-rest
columns, smooth ECE). Bin indices follow :func:`numpy.histogram`: bins ``[a, b)`` with
the last bin closed; equal-width bins are found by scaling and then correcting the
estimate against the edges, as numpy does (``np.linspace(0, 1, 11)[3]`` is
``0.30000000000000004``, so a bare ``floor(p * n_bins)`` would misplace ``p = 0.3``).
Every accumulation is in float64, for float32 input too. Validity is reported, not
raised: the kernels return the first row holding a value outside ``[0, 1]`` (or NaN)
and the largest deviation of a row sum from one, and the caller raises a clear error.
Their pure-NumPy references are in ``tests/_naive_calibration.py``.
"""

import numpy as np
from numba import njit

from skmoe._kernels._boundary import (
    as_flag_input,
    as_float_input,
    as_index_input,
    as_input,
    as_output,
    boundary,
)
from skmoe._kernels._config import JIT_OPTIONS


@njit(**JIT_OPTIONS)
def bin_index(value, edges, uniform):
    """Index of the bin of ``value`` (in ``[0, 1]``) among ``edges``.

    ``uniform`` says that the edges are ``np.linspace(0, 1, n_bins + 1)`` in the dtype
    of ``value``; then the index is computed by scaling and corrected against the
    edges, otherwise by bisection. The last bin is closed on the right.
    """
    n_bins = edges.shape[0] - 1
    if uniform:
        index = int(value * n_bins)
        if index >= n_bins:
            index = n_bins - 1
        if value < edges[index]:
            index -= 1
        elif index != n_bins - 1 and value >= edges[index + 1]:
            index += 1
        return index
    low = 0
    high = n_bins
    # invariant: edges[low] <= value, and value < edges[high] unless high == n_bins
    while high - low > 1:
        middle = (low + high) // 2
        if value >= edges[middle]:
            low = middle
        else:
            high = middle
    return low


# inlined at numba IR level: as a call it cost the top-label ECE ~25% (0.63x vs 0.50x
# of a P.max pass in benchmarks/bench_metrics.py)
@njit(inline="always", **JIT_OPTIONS)
def _scan_row(proba, i):
    """Top probability of row ``i``, its class, the row sum and whether every value
    lies in ``[0, 1]`` (NaN does not)."""
    top = proba[i, 0]
    top_class = 0
    total = 0.0
    valid = True
    for k in range(proba.shape[1]):
        value = proba[i, k]
        # written so that NaN fails the test
        if not (value >= 0.0 and value <= 1.0):
            valid = False
        total += float(value)  # float64 sums, with or without the JIT
        if value > top:
            top = value
            top_class = k
    return top, top_class, total, valid


@njit(**JIT_OPTIONS)
def _top_label_bin_stats(
    proba, labels, sample_weight, edges, uniform, counts, weight_sums,
    confidence_sums, hit_sums,
):
    """Accumulate the top-label reliability statistics of every bin in one pass.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes), float32 or float64
        Any layout; read-only arrays are accepted.
    labels : ndarray of shape (n_samples,), integer
        Column index of each sample's true class.
    sample_weight : ndarray of shape (n_samples,) or (0,), float64
        An empty array means unit weights.
    edges : ndarray of shape (n_bins + 1,), same dtype as ``proba``
    uniform : bool
        Whether ``edges`` are equally spaced on ``[0, 1]``.
    counts : ndarray of shape (n_bins,), int64
    weight_sums, confidence_sums, hit_sums : ndarray of shape (n_bins,), float64
        Accumulated into (not reset): the number of samples, their total weight, the
        weighted sum of the top probabilities and the weight of the samples whose
        top-probability class (the first, on ties, as ``np.argmax``) is the label.

    Returns
    -------
    first_invalid_row : int
        The first row holding a value outside ``[0, 1]`` or NaN, or -1. Invalid rows
        are skipped.
    max_sum_error : float
        The largest ``abs(row sum - 1)`` over the valid rows.
    """
    n_samples = proba.shape[0]
    weighted = sample_weight.shape[0] > 0
    first_invalid_row = -1
    max_sum_error = 0.0
    for i in range(n_samples):
        top, top_class, total, valid = _scan_row(proba, i)
        if not valid:
            if first_invalid_row < 0:
                first_invalid_row = i
            continue
        sum_error = abs(total - 1.0)
        if sum_error > max_sum_error:
            max_sum_error = sum_error
        weight = sample_weight[i] if weighted else 1.0
        index = bin_index(top, edges, uniform)
        counts[index] += 1
        weight_sums[index] += weight
        confidence_sums[index] += weight * top
        if labels[i] == top_class:
            hit_sums[index] += weight
    return first_invalid_row, max_sum_error


@njit(**JIT_OPTIONS)
def _top_label_confidence(proba, labels, confidence, hits):
    """Write each row's top probability and whether its class is the label.

    ``confidence`` (float64) and ``hits`` (uint8) have shape ``(n_samples,)``. Returns
    ``(first_invalid_row, max_sum_error)`` as :func:`top_label_bin_stats` does; an
    invalid row gets confidence NaN.
    """
    n_samples = proba.shape[0]
    first_invalid_row = -1
    max_sum_error = 0.0
    for i in range(n_samples):
        top, top_class, total, valid = _scan_row(proba, i)
        if not valid:
            if first_invalid_row < 0:
                first_invalid_row = i
            confidence[i] = np.nan
            hits[i] = 0
            continue
        sum_error = abs(total - 1.0)
        if sum_error > max_sum_error:
            max_sum_error = sum_error
        confidence[i] = top
        hits[i] = 1 if labels[i] == top_class else 0
    return first_invalid_row, max_sum_error


@njit(**JIT_OPTIONS)
def _check_proba(proba, check_sums):
    """Return ``(first_invalid_row, max_sum_error)`` of a 2-D probability array.

    With ``check_sums`` false the row sums are not looked at (``max_sum_error`` is 0).
    """
    n_samples, n_classes = proba.shape
    first_invalid_row = -1
    max_sum_error = 0.0
    for i in range(n_samples):
        total = 0.0
        valid = True
        for k in range(n_classes):
            value = proba[i, k]
            if not (value >= 0.0 and value <= 1.0):
                valid = False
            total += float(value)  # float64 sums, with or without the JIT
        if not valid:
            if first_invalid_row < 0:
                first_invalid_row = i
            continue
        if check_sums:
            sum_error = abs(total - 1.0)
            if sum_error > max_sum_error:
                max_sum_error = sum_error
    return first_invalid_row, max_sum_error


@njit(**JIT_OPTIONS)
def _bin_stats(
    values, hits, sample_weight, edges, uniform, counts, weight_sums,
    confidence_sums, hit_sums,
):
    """Accumulate reliability statistics of one score column (valid values only).

    ``values`` (any layout, e.g. a column of the probability matrix) are the predicted
    probabilities of an event and ``hits`` (nonzero where the event happened) its
    outcomes; the other arguments are as in :func:`top_label_bin_stats`. The values
    must already be known to lie in ``[0, 1]``.
    """
    n_samples = values.shape[0]
    weighted = sample_weight.shape[0] > 0
    for i in range(n_samples):
        value = values[i]
        weight = sample_weight[i] if weighted else 1.0
        index = bin_index(value, edges, uniform)
        counts[index] += 1
        weight_sums[index] += weight
        confidence_sums[index] += weight * value
        if hits[i] != 0:
            hit_sums[index] += weight


# the probabilities keep float32: the metrics read the matrix in place, without a
# temporary as large as the input (benchmarks/bench_metrics.py measures float32 too);
# the edges are always float64, which compares a float32 value exactly as its own
# float32 edges did
top_label_bin_stats = boundary(
    _top_label_bin_stats, proba=as_float_input, labels=as_index_input,
    sample_weight=as_input, edges=as_input, uniform=bool, counts=as_output,
    weight_sums=as_output, confidence_sums=as_output, hit_sums=as_output,
)
top_label_confidence = boundary(
    _top_label_confidence, proba=as_float_input, labels=as_index_input,
    confidence=as_output, hits=as_output,
)
check_proba = boundary(_check_proba, proba=as_float_input, check_sums=bool)
bin_stats = boundary(
    _bin_stats, values=as_float_input, hits=as_flag_input, sample_weight=as_input,
    edges=as_input, uniform=bool, counts=as_output, weight_sums=as_output,
    confidence_sums=as_output, hit_sums=as_output,
)
