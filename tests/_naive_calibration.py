"""Pure-NumPy references of the calibration kernels, for the tests to compare against.

Each function computes with whole-array NumPy operations what a kernel of
:mod:`skmoe._kernels.calibration` computes in one loop; bin indices come from
``np.searchsorted`` on the edges (for equal-width edges this is exactly what
``numpy.histogram`` does), not from the kernels' scaled-and-corrected estimate.
"""

import numpy as np


def naive_bin_index(values, edges):
    """Bins ``[a, b)`` with the last bin closed, as ``numpy.histogram``."""
    n_bins = edges.shape[0] - 1
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n_bins - 1)


def naive_bin_stats(values, hits, sample_weight, edges):
    """``(counts, weight_sums, confidence_sums, hit_sums)`` of one score column."""
    values = np.asarray(values)
    n_bins = edges.shape[0] - 1
    weights = (
        np.ones(values.shape[0]) if sample_weight.shape[0] == 0 else sample_weight
    )
    index = naive_bin_index(values, edges)
    return (
        np.bincount(index, minlength=n_bins),
        np.bincount(index, weights, minlength=n_bins),
        np.bincount(index, weights * values.astype(np.float64), minlength=n_bins),
        np.bincount(index, weights * (np.asarray(hits) != 0), minlength=n_bins),
    )


def naive_check_proba(proba, check_sums=True):
    """``(first_invalid_row, max_sum_error)`` of a probability matrix."""
    proba = np.asarray(proba)
    valid = np.all((proba >= 0) & (proba <= 1), axis=1)
    first_invalid_row = -1 if valid.all() else int(np.argmin(valid))
    if not check_sums or not valid.any():
        return first_invalid_row, 0.0
    sums = proba[valid].astype(np.float64).sum(axis=1)
    return first_invalid_row, float(np.abs(sums - 1).max())


def naive_top_label_confidence(proba, labels):
    """Top probability (float64) and whether its class (first on ties) is the label."""
    proba = np.asarray(proba)
    return proba.max(axis=1).astype(np.float64), proba.argmax(axis=1) == labels


def naive_top_label_bin_stats(proba, labels, sample_weight, edges):
    """The top-label statistics of the valid rows and the validity report."""
    status = naive_check_proba(proba)
    valid = np.all((proba >= 0) & (proba <= 1), axis=1)
    proba = np.asarray(proba)[valid]
    confidence = proba.max(axis=1)
    hits = proba.argmax(axis=1) == np.asarray(labels)[valid]
    weights = sample_weight[valid] if sample_weight.shape[0] else sample_weight
    return naive_bin_stats(confidence, hits, weights, edges), status


def naive_expected_calibration_error(confidence, hits, n_bins=15, weights=None):
    """L1 ECE of ``(confidence, hits)`` with ``numpy.histogram`` equal-width bins."""
    confidence = np.asarray(confidence, dtype=np.float64)
    weights = np.ones_like(confidence) if weights is None else np.asarray(weights)
    counts, edges = np.histogram(confidence, n_bins, range=(0, 1), weights=weights)
    conf_sums, _ = np.histogram(confidence, edges, weights=weights * confidence)
    hit_sums, _ = np.histogram(confidence, edges, weights=weights * hits)
    return float(np.abs(conf_sums - hit_sums).sum() / weights.sum())
