"""Tests of the calibration metrics: kernels against NumPy, properties, validation."""

import functools

import numpy as np
import pytest
from _naive_calibration import (
    naive_bin_stats,
    naive_check_proba,
    naive_expected_calibration_error,
    naive_top_label_bin_stats,
    naive_top_label_confidence,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss
from sklearn.utils._param_validation import InvalidParameterError

from skmoe._kernels.calibration import (
    bin_stats,
    check_proba,
    top_label_bin_stats,
    top_label_confidence,
)
from skmoe.metrics import (
    bootstrap_confidence_interval,
    brier_score_decomposition,
    calibration_curve,
    classwise_calibration_error,
    debiased_calibration_error,
    expected_calibration_error,
    groupwise_calibration_error,
    root_mean_squared_calibration_error,
    smooth_calibration_error,
    worst_group_calibration_error,
)

BINNED_OPTIONS = [
    {"strategy": strategy, "norm": norm, "multiclass": multiclass}
    for strategy in ("uniform", "quantile", "equal_count")
    for norm in ("l1", "l2", "max")
    for multiclass in ("top_label", "classwise")
]


def _multiclass_data(seed, n_samples=300, n_classes=4, dtype=np.float64):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(n_classes, 0.7), size=n_samples)
    # labels drawn from a sharpened version of proba: miscalibrated on purpose
    sharpened = proba**2 / (proba**2).sum(1, keepdims=True)
    y = (rng.random(n_samples)[:, None] > sharpened.cumsum(1)).sum(1)
    return np.minimum(y, n_classes - 1), proba.astype(dtype)


def _layouts(proba):
    """The same matrix as C, Fortran, strided and read-only arrays."""
    doubled = np.repeat(proba, 2, axis=0)[::2]
    read_only = proba.copy()
    read_only.setflags(write=False)
    return {
        "C": np.ascontiguousarray(proba),
        "F": np.asfortranarray(proba),
        "strided": doubled,
        "read_only": read_only,
    }


# ---------------------------------------------------------------- public names


@pytest.mark.parametrize("module_name", ["skmoe.metrics", "skmoe.inspection"])
def test_every_public_name_resolves_and_is_documented(module_name):
    import importlib

    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj) and not name.endswith("_scorer"):
            assert obj.__doc__ and "Examples" in obj.__doc__, name
    assert sorted(module.__all__) == module.__all__


# ---------------------------------------------------------------- kernels vs NumPy


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "read_only"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("uniform", [True, False])
def test_top_label_bin_stats_matches_numpy(dtype, layout, weighted, uniform):
    y, proba = _multiclass_data(0, n_samples=500, dtype=dtype)
    proba[7] = np.nan  # invalid rows are reported and skipped
    proba[11, 0] = 1.5
    proba = _layouts(proba)[layout]
    rng = np.random.default_rng(1)
    sample_weight = rng.random(500) if weighted else np.empty(0)
    if uniform:
        edges = np.linspace(0, 1, 16, dtype=dtype)
    else:
        edges = np.array([0.0, 0.2, 0.35, 0.5, 0.55, 0.9, 1.0])
    n_bins = edges.shape[0] - 1
    stats = [np.zeros(n_bins, dtype=np.int64)] + [np.zeros(n_bins) for _ in "abc"]
    status = top_label_bin_stats(proba, y, sample_weight, edges, uniform, *stats)
    expected, expected_status = naive_top_label_bin_stats(proba, y, sample_weight,
                                                          edges)
    assert status[0] == expected_status[0] == 7
    assert status[1] == pytest.approx(expected_status[1], abs=1e-12)
    np.testing.assert_array_equal(stats[0], expected[0])
    for got, want in zip(stats[1:], expected[1:], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "read_only"])
def test_top_label_confidence_and_check_proba_match_numpy(dtype, layout):
    y, proba = _multiclass_data(2, dtype=dtype)
    proba[3, 1] = -0.1
    proba = _layouts(proba)[layout]
    confidence = np.empty(proba.shape[0])
    hits = np.empty(proba.shape[0], dtype=np.uint8)
    status = top_label_confidence(proba, y, confidence, hits)
    expected_confidence, expected_hits = naive_top_label_confidence(proba, y)
    valid = np.arange(proba.shape[0]) != 3
    np.testing.assert_array_equal(confidence[valid], expected_confidence[valid])
    np.testing.assert_array_equal(hits[valid] == 1, expected_hits[valid])
    assert np.isnan(confidence[3])
    expected_status = naive_check_proba(proba)
    assert status[0] == expected_status[0] == 3
    assert status[1] == pytest.approx(expected_status[1], abs=1e-12)
    assert check_proba(proba, True)[0] == 3
    assert check_proba(proba, False) == (3, 0.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_bins", [1, 3, 10, 15, 100])
def test_bin_stats_follow_numpy_histogram_on_and_around_edges(dtype, n_bins):
    edges = np.linspace(0, 1, n_bins + 1, dtype=dtype)
    values = np.concatenate(
        [edges, np.nextafter(edges, dtype(-1)), np.nextafter(edges, dtype(2)),
         np.linspace(0, 1, 1001, dtype=dtype)]
    ).astype(dtype)
    values = values[(values >= 0) & (values <= 1)]
    read_only = values[::-1].copy()
    read_only.setflags(write=False)
    hits = np.arange(values.shape[0]) % 2
    for column in (values, read_only, np.repeat(values, 2)[::2]):
        for uniform in (True, False):
            stats = [np.zeros(n_bins, dtype=np.int64)] + [np.zeros(n_bins)] * 0
            stats += [np.zeros(n_bins) for _ in "abc"]
            bin_stats(column, hits[: column.shape[0]], np.empty(0), edges, uniform,
                      *stats)
            expected_counts, _ = np.histogram(column, n_bins, range=(0, 1))
            np.testing.assert_array_equal(stats[0], expected_counts)
            expected = naive_bin_stats(column, hits, np.empty(0), edges)
            for got, want in zip(stats[1:], expected[1:], strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-12)


def test_values_just_below_a_rounded_up_edge_stay_in_the_lower_bin():
    # np.linspace(0, 1, 11)[3] is 0.30000000000000004, so numpy puts 0.3 in bin 2
    # where a bare floor(0.3 * 10) says 3; 0.1 + 0.2 is that edge and goes to bin 3
    values = np.array([0.3, 0.6, 0.7, 0.1 + 0.2])
    counts, _ = np.histogram(values, 10, range=(0, 1))
    np.testing.assert_array_equal(np.flatnonzero(counts), [2, 3, 5, 6])
    assert np.floor(0.3 * 10) == 3
    stats = [np.zeros(10, dtype=np.int64)] + [np.zeros(10) for _ in "abc"]
    bin_stats(values, np.zeros(4), np.empty(0), np.linspace(0, 1, 11), True, *stats)
    np.testing.assert_array_equal(stats[0], counts)


# ---------------------------------------------------------------- metric values


def test_ece_matches_the_histogram_definition():
    y, proba = _multiclass_data(3)
    confidence, hits = naive_top_label_confidence(proba, y)
    weights = np.random.default_rng(0).random(y.shape[0])
    assert expected_calibration_error(y, proba) == pytest.approx(
        naive_expected_calibration_error(confidence, hits), abs=1e-14
    )
    assert expected_calibration_error(
        y, proba, sample_weight=weights, n_bins=7
    ) == pytest.approx(
        naive_expected_calibration_error(confidence, hits, 7, weights), abs=1e-14
    )


def test_classwise_is_the_mean_one_vs_rest_error():
    y, proba = _multiclass_data(4)
    per_class = [
        naive_expected_calibration_error(proba[:, k], y == k) for k in range(4)
    ]
    assert classwise_calibration_error(y, proba) == pytest.approx(
        np.mean(per_class), abs=1e-14
    )


def test_float32_bins_are_those_of_numpy_histogram_on_float32():
    y, proba = _multiclass_data(15, n_samples=2000)
    # put many confidences exactly on float32 edges
    proba32 = proba.astype(np.float32)
    edges32 = np.linspace(0, 1, 16, dtype=np.float32)
    _, _, counts = calibration_curve(y, proba32, labels=[0, 1, 2, 3])
    expected, _ = np.histogram(proba32.max(1), 15, range=(0, 1))
    np.testing.assert_array_equal(counts, expected[expected > 0])
    on_edges = np.column_stack([edges32[5:13], 1 - edges32[5:13]])
    _, _, counts = calibration_curve(np.zeros(8, int), on_edges, labels=[0, 1],
                                     pos_label=0)
    expected, _ = np.histogram(on_edges[:, 0], 15, range=(0, 1))
    np.testing.assert_array_equal(counts, expected[expected > 0])


def test_non_numeric_probabilities_raise_value_error():
    with pytest.raises(ValueError, match="y_proba|could not convert"):
        expected_calibration_error([0, 1], np.array(["a", "b"], dtype=object))


def test_float32_and_float64_agree():
    y, proba = _multiclass_data(5)
    # float32 values lie on different sides of some edges only rarely; the
    # metric moves by at most a few float32 ulps otherwise
    assert expected_calibration_error(y, proba.astype(np.float32)) == pytest.approx(
        expected_calibration_error(y, proba.astype(np.float32).astype(np.float64)),
        abs=1e-6,
    )


def test_subset_with_fewer_classes_needs_and_uses_labels():
    y, proba = _multiclass_data(6, n_classes=3)
    subset = y != 1
    with pytest.raises(ValueError, match="labels="):
        expected_calibration_error(y[subset], proba[subset])
    value = classwise_calibration_error(y[subset], proba[subset], labels=[0, 1, 2])
    expected = np.mean(
        [naive_expected_calibration_error(proba[subset, k], y[subset] == k)
         for k in range(3)]
    )
    assert value == pytest.approx(expected, abs=1e-14)
    # a two-class subset of a three-column matrix is not mistaken for binary input
    top = expected_calibration_error(y[subset], proba[subset], labels=[0, 1, 2])
    confidence, hits = naive_top_label_confidence(proba[subset], y[subset])
    assert top == pytest.approx(naive_expected_calibration_error(confidence, hits))


def test_string_labels_follow_sorted_columns():
    y, proba = _multiclass_data(7, n_classes=3)
    names = np.array(["ant", "bee", "cat"])[y]
    for multiclass in ("top_label", "classwise"):
        assert expected_calibration_error(
            names, proba, multiclass=multiclass
        ) == expected_calibration_error(y, proba, multiclass=multiclass)


@pytest.mark.parametrize(
    "metric",
    [
        expected_calibration_error,
        classwise_calibration_error,
        debiased_calibration_error,
        smooth_calibration_error,
        brier_score_decomposition,
        calibration_curve,
        functools.partial(groupwise_calibration_error, groups=np.arange(30) % 2),
    ],
    ids=lambda metric: getattr(metric, "__name__", "groupwise_calibration_error"),
)
def test_unsorted_labels_are_rejected_not_resorted(metric):
    # the columns follow the sorted labels (sklearn's convention); permuting the
    # columns and labels together used to change the ECE from 0.35 to 0.65
    y, proba = _multiclass_data(3, n_samples=30, n_classes=3)
    permutation = [2, 0, 1]
    with pytest.raises(ValueError, match=r"labels must be sorted.*\[2, 0, 1\]"):
        metric(y, proba[:, permutation], labels=permutation)
    names = np.array(["cat", "dog", "ant"])
    with pytest.raises(ValueError, match=r"labels=\['ant', 'cat', 'dog'\]"):
        metric(names[y], proba, labels=names)
    # sorted labels in another container are accepted
    metric(y, proba, labels=np.array([0, 1, 2]))


def test_binary_single_class_and_boolean_labels():
    p = np.array([0.9, 0.8, 0.7])
    assert expected_calibration_error([1, 1, 1], p) == pytest.approx(0.2)
    assert expected_calibration_error([0, 0, 0], p) == pytest.approx(0.8)
    assert expected_calibration_error([True, False, True], p) == pytest.approx(
        expected_calibration_error([1, 0, 1], p)
    )


def test_groupwise_and_worst_group():
    y, proba = _multiclass_data(8, n_samples=600, n_classes=3)
    groups = np.where(proba[:, 0] > 0.5, "high", "low")
    # a group holding fewer classes must not be taken for a binary problem
    groups[y == 2] = np.where(proba[y == 2, 0] > 0.3, "high", "low")
    errors = groupwise_calibration_error(y, proba, groups=groups)
    for name in ("high", "low"):
        rows = groups == name
        assert errors[name] == pytest.approx(
            expected_calibration_error(y[rows], proba[rows], labels=[0, 1, 2])
        )
    assert worst_group_calibration_error(y, proba, groups=groups) == max(
        errors.values()
    )
    with pytest.raises(ValueError, match="groups is required"):
        worst_group_calibration_error(y, proba)


def test_debiased_is_near_zero_when_calibrated_and_below_plugin():
    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = rng.random(20000) < p
    plugin = root_mean_squared_calibration_error(y, p)
    debiased = debiased_calibration_error(y, p)
    assert debiased < plugin
    assert debiased < 0.01
    miscalibrated = rng.random(20000) < p**2
    # the L2 error of p against p^2 is sqrt(E[(p - p^2)^2]) = sqrt(1/30)
    assert debiased_calibration_error(miscalibrated, p) == pytest.approx(
        np.sqrt(1 / 30), abs=0.01
    )


def test_brier_decomposition_is_exact_and_matches_sklearn():
    y, proba = _multiclass_data(9)
    parts = brier_score_decomposition(y, proba)
    assert parts.brier == pytest.approx(brier_score_loss(y, proba), abs=1e-12)
    assert parts.calibration + parts.refinement + parts.within_bin == pytest.approx(
        parts.brier, abs=1e-12
    )
    assert parts.refinement == pytest.approx(
        parts.uncertainty - parts.resolution, abs=1e-12
    )
    p = proba[:, 0]
    binary = brier_score_decomposition(y == 0, p)
    assert binary.brier == pytest.approx(brier_score_loss(y == 0, p), abs=1e-12)
    # forecasts constant within each bin leave nothing within the bins
    onbins = np.floor(p * 10) / 10 + 0.05
    assert brier_score_decomposition(y == 0, onbins, n_bins=10).within_bin == (
        pytest.approx(0.0, abs=1e-12)
    )


def test_calibration_curve_multiclass_with_counts():
    y, proba = _multiclass_data(10)
    prob_true, prob_pred, counts = calibration_curve(y, proba, n_bins=10)
    confidence, hits = naive_top_label_confidence(proba, y)
    expected_counts, edges = np.histogram(confidence, 10, range=(0, 1))
    np.testing.assert_array_equal(counts, expected_counts[expected_counts > 0])
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, 9)
    nonempty = np.flatnonzero(expected_counts)
    np.testing.assert_allclose(
        prob_true, [hits[index == b].mean() for b in nonempty], rtol=1e-12
    )
    np.testing.assert_allclose(
        prob_pred, [confidence[index == b].mean() for b in nonempty], rtol=1e-12
    )
    # one class against the rest agrees with sklearn's binary curve
    from sklearn.calibration import calibration_curve as sklearn_curve

    prob_true, prob_pred, _ = calibration_curve(y, proba, n_bins=5, pos_label=2)
    expected_true, expected_pred = sklearn_curve(y == 2, proba[:, 2], n_bins=5)
    np.testing.assert_allclose(prob_true, expected_true)
    np.testing.assert_allclose(prob_pred, expected_pred)


def test_bootstrap_interval_contains_the_truth_for_a_smooth_metric():
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    y = rng.random(1000) < p**1.5
    interval = bootstrap_confidence_interval(
        debiased_calibration_error, y, p, n_resamples=100, random_state=0,
        metric_params={"n_bins": 10},
    )
    assert interval.low < interval.high
    assert interval.resamples.shape == (100,)
    # E[(p - p^1.5)^2] for uniform p
    truth = np.sqrt(1 / 3 - 2 / 3.5 + 1 / 4)
    assert interval.low - 0.02 < truth < interval.high + 0.02
    again = bootstrap_confidence_interval(
        debiased_calibration_error, y, p, n_resamples=100, random_state=0,
        metric_params={"n_bins": 10},
    )
    np.testing.assert_array_equal(interval.resamples, again.resamples)


def test_bootstrap_passes_groups_and_labels():
    y, proba = _multiclass_data(11, n_samples=200, n_classes=3)
    groups = np.arange(200) % 3
    interval = bootstrap_confidence_interval(
        worst_group_calibration_error, y, proba, groups=groups, n_resamples=20,
        random_state=0,
    )
    assert interval.estimate == worst_group_calibration_error(y, proba,
                                                              groups=groups)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.nan, r"y_proba\[1\]"),
        (np.inf, r"y_proba\[1\]"),
        (1.5, r"\[0, 1\]"),
        (-0.5, r"\[0, 1\]"),
    ],
)
@pytest.mark.parametrize("multiclass", ["top_label", "classwise"])
def test_invalid_probabilities_raise_value_error(bad, match, multiclass):
    y, proba = _multiclass_data(12, n_samples=5, n_classes=3)
    proba[1, 0] = bad
    kwargs = {"multiclass": multiclass, "labels": [0, 1, 2]}
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y, proba, **kwargs)
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y, proba, strategy="quantile", **kwargs)
    with pytest.raises(ValueError, match=match):
        smooth_calibration_error(y, proba, **kwargs)
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y == 0, proba[:, 0], multiclass=multiclass,
                                   labels=[False, True])


def test_rows_not_summing_to_one_raise():
    y, proba = _multiclass_data(13, n_samples=20, n_classes=3)
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error(y, proba * 0.9)
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error(y > 0, np.column_stack([proba[:, 0], proba[:, 0]]))
    # within the tolerance is fine
    expected_calibration_error(y, proba * (1 + 1e-7))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_bins": 0}, InvalidParameterError, "n_bins"),
        ({"strategy": "kmeans"}, InvalidParameterError, "strategy"),
        ({"norm": "l3"}, InvalidParameterError, "norm"),
        ({"multiclass": "ovr"}, InvalidParameterError, "multiclass"),
        ({"labels": [0, 1]}, ValueError, "labels"),
        ({"labels": [0, 1, 1]}, ValueError, "unique"),
        ({"labels": [1, 2, 3]}, ValueError, "missing from labels"),
        ({"sample_weight": np.ones(3)}, ValueError, "sample_weight|inconsistent"),
        ({"sample_weight": np.zeros(10)}, ValueError, "(?i)sample.weight"),
        ({"sample_weight": -np.ones(10)}, ValueError, "sample_weight"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, error, match):
    y, proba = _multiclass_data(14, n_samples=10, n_classes=3)
    y[:3] = [0, 1, 2]
    with pytest.raises(error, match=match):
        expected_calibration_error(y, proba, **kwargs)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="inconsistent"):
        expected_calibration_error([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        expected_calibration_error([0, 1], np.full((2, 2, 2), 0.5))


# ---------------------------------------------------------------- properties


@st.composite
def _problems(draw, max_samples=60):
    n_samples = draw(st.integers(1, max_samples))
    n_classes = draw(st.sampled_from([2, 3, 5]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    concentration = draw(st.sampled_from([0.1, 1.0, 10.0]))
    proba = rng.dirichlet(np.full(n_classes, concentration), size=n_samples)
    y = rng.integers(0, n_classes, size=n_samples)
    weights = rng.integers(0, 4, size=n_samples).astype(float)
    weights[0] = max(weights[0], 1.0)
    return y, proba, weights, n_classes


@settings(max_examples=40, deadline=None)
@given(problem=_problems(), options=st.sampled_from(BINNED_OPTIONS),
       n_bins=st.integers(1, 20))
def test_error_lies_in_unit_interval(problem, options, n_bins):
    y, proba, weights, n_classes = problem
    labels = np.arange(n_classes)
    value = expected_calibration_error(y, proba, n_bins=n_bins, labels=labels,
                                       sample_weight=weights, **options)
    assert 0.0 <= value <= 1.0


@settings(max_examples=30, deadline=None)
@given(
    groups=st.lists(
        st.tuples(st.integers(1, 8), st.integers(0, 8)), min_size=1, max_size=8
    ),
    strategy=st.sampled_from(["uniform", "quantile"]),
    norm=st.sampled_from(["l1", "l2", "max"]),
    n_bins=st.integers(1, 20),
)
def test_error_is_zero_when_accuracy_equals_confidence(groups, strategy, norm,
                                                       n_bins):
    # every group of samples sharing a score has hit rate equal to that score, so
    # any bin holding whole groups is exactly calibrated
    scores, outcomes = [], []
    for size, hits in groups:
        hits = min(hits, size)
        scores += [hits / size] * size
        outcomes += [1] * hits + [0] * (size - hits)
    scores, outcomes = np.array(scores), np.array(outcomes)
    assert expected_calibration_error(
        outcomes, scores, n_bins=n_bins, strategy=strategy, norm=norm,
        labels=[0, 1],
    ) == pytest.approx(0.0, abs=1e-12)
    # the same for top-label confidences 1/2 + v/2 of a three-class problem: twice
    # the samples, size + hits of them right
    top, labels = [], []
    for size, hits in groups:
        hits = min(hits, size)
        top += [0.5 + hits / size / 2] * (2 * size)
        labels += [0] * (size + hits) + [1] * (size - hits)
    top = np.array(top)
    proba = np.column_stack([top, (1 - top) / 2, (1 - top) / 2])
    assert expected_calibration_error(
        labels, proba, n_bins=n_bins, strategy=strategy, norm=norm,
        labels=[0, 1, 2],
    ) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(problem=_problems(), options=st.sampled_from(
    [o for o in BINNED_OPTIONS if o["strategy"] != "equal_count"]
), order_seed=st.integers(0, 1000))
def test_invariant_to_sample_order(problem, options, order_seed):
    y, proba, weights, n_classes = problem
    order = np.random.default_rng(order_seed).permutation(y.shape[0])
    labels = np.arange(n_classes)
    kwargs = {"labels": labels, "sample_weight": weights, **options}
    assert expected_calibration_error(
        y[order], proba[order], **{**kwargs, "sample_weight": weights[order]}
    ) == pytest.approx(expected_calibration_error(y, proba, **kwargs), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(problem=_problems(), multiclass=st.sampled_from(["top_label", "classwise"]),
       norm=st.sampled_from(["l1", "l2", "max"]))
def test_integer_weights_equal_repetition(problem, multiclass, norm):
    y, proba, weights, n_classes = problem
    repeats = weights.astype(int)
    labels = np.arange(n_classes)
    weighted = expected_calibration_error(
        y, proba, sample_weight=weights, labels=labels, multiclass=multiclass,
        norm=norm,
    )
    repeated = expected_calibration_error(
        np.repeat(y, repeats), np.repeat(proba, repeats, axis=0), labels=labels,
        multiclass=multiclass, norm=norm,
    )
    assert weighted == pytest.approx(repeated, abs=1e-12)
    smooth_weighted = smooth_calibration_error(
        y, proba, sample_weight=weights, labels=labels, bandwidth=0.1
    )
    smooth_repeated = smooth_calibration_error(
        np.repeat(y, repeats), np.repeat(proba, repeats, axis=0), labels=labels,
        bandwidth=0.1,
    )
    assert smooth_weighted == pytest.approx(smooth_repeated, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(problem=_problems(), options=st.sampled_from(BINNED_OPTIONS),
       n_bins=st.integers(1, 20))
def test_binary_1d_and_two_columns_agree(problem, options, n_bins):
    y, proba, weights, _ = problem
    p = proba[:, 0]
    two_columns = np.column_stack([1 - p, p])
    y = y % 2
    kwargs = {"n_bins": n_bins, "labels": [0, 1], "sample_weight": weights,
              **options}
    assert expected_calibration_error(y, p, **kwargs) == expected_calibration_error(
        y, two_columns, **kwargs
    )


@settings(max_examples=40, deadline=None)
@given(
    cells=st.lists(st.tuples(st.integers(0, 14), st.floats(0.02, 0.98),
                             st.booleans()), min_size=1, max_size=50),
)
def test_classwise_on_two_columns_equals_the_binary_value(cells):
    # scores kept away from the bin edges, where p and 1 - p would not mirror
    p = np.array([(index + offset) / 15 for index, offset, _ in cells])
    y = np.array([int(hit) for *_, hit in cells])
    binary = expected_calibration_error(y, p, labels=[0, 1])
    by_definition = np.mean(
        [naive_expected_calibration_error(1 - p, y == 0),
         naive_expected_calibration_error(p, y == 1)]
    )
    assert binary == pytest.approx(by_definition, abs=1e-12)
    assert classwise_calibration_error(
        y, np.column_stack([1 - p, p]), labels=[0, 1]
    ) == pytest.approx(by_definition, abs=1e-12)


# --------------------------------------------------------- the binary convention
def _binary_data(seed, n_samples=400):
    rng = np.random.default_rng(seed)
    p = rng.random(n_samples)
    p[:5] = 0.5  # ties: the top label is the first class, as argmax says
    y = (rng.random(n_samples) < p**2).astype(int)
    return y, p


@pytest.mark.parametrize("seed", range(3))
def test_binary_top_label_is_the_top_label_ece_of_the_two_columns(seed):
    y, p = _binary_data(seed)
    weights = np.random.default_rng(seed).uniform(0.5, 2, y.shape[0])
    confidence = np.maximum(p, 1 - p)
    hits = (np.where(p > 0.5, 1, 0) == y).astype(float)
    expected = naive_expected_calibration_error(confidence, hits, 15, weights)
    for y_proba in (p, np.column_stack([1 - p, p])):
        assert expected_calibration_error(
            y, y_proba, binary="top_label", sample_weight=weights
        ) == pytest.approx(expected, abs=1e-12)
    # the default is unchanged: the positive class's probability
    positive = naive_expected_calibration_error(p, y, 15, weights)
    assert expected_calibration_error(y, p, sample_weight=weights) == pytest.approx(
        positive, abs=1e-12)
    assert abs(expected - positive) > 0.01  # the two conventions differ here


def test_binary_option_reaches_every_metric():
    y, p = _binary_data(0)
    two_columns = np.column_stack([1 - p, p])
    groups = np.arange(y.shape[0]) % 3
    metrics = [
        (expected_calibration_error, {}),
        (root_mean_squared_calibration_error, {}),
        (debiased_calibration_error, {}),
        (smooth_calibration_error, {}),
        (worst_group_calibration_error, {"groups": groups}),
    ]
    for metric, extra in metrics:
        top = metric(y, p, binary="top_label", **extra)
        # binary="top_label" scores the two columns as multiclass input would:
        # compare with a three-class matrix whose third column is zero
        three = np.column_stack([two_columns, np.zeros_like(p)])
        assert top == pytest.approx(
            metric(y, three, labels=[0, 1, 2], **extra), abs=1e-12), metric
        assert top == pytest.approx(
            metric(y, two_columns, binary="top_label", **extra), abs=1e-12)
        assert metric(y, p, **extra) == pytest.approx(
            metric(y, p, binary="positive", **extra))
        with pytest.raises(InvalidParameterError, match="binary"):
            metric(y, p, binary="negative", **extra)
    errors = groupwise_calibration_error(y, p, groups=groups, binary="top_label")
    for group, error in errors.items():
        rows = groups == group
        assert error == pytest.approx(expected_calibration_error(
            y[rows], p[rows], binary="top_label"))


def test_binary_option_of_the_calibration_curve():
    y, p = _binary_data(1)
    prob_true, prob_pred, counts = calibration_curve(y, p, binary="top_label")
    three = np.column_stack([1 - p, p, np.zeros_like(p)])
    expected = calibration_curve(y, three, labels=[0, 1, 2])
    for got, want in zip((prob_true, prob_pred, counts), expected, strict=True):
        np.testing.assert_allclose(got, want)
    assert prob_pred.min() >= 0.5
    # pos_label picks a column whatever the binary convention
    for binary in ("positive", "top_label"):
        curve = calibration_curve(y, p, pos_label=0, binary=binary)
        np.testing.assert_allclose(curve[1], calibration_curve(1 - y, 1 - p)[1])


def test_binary_top_label_scorer():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from skmoe.metrics import make_calibration_scorer

    X, y = make_classification(n_samples=300, random_state=0)
    model = LogisticRegression().fit(X, y)
    scorer = make_calibration_scorer(expected_calibration_error, binary="top_label")
    proba = model.predict_proba(X)
    assert scorer(model, X, y) == pytest.approx(
        -expected_calibration_error(y, proba, binary="top_label"))
    assert "binary='top_label'" in repr(scorer)
