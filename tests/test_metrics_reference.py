"""Agreement of skmoe.metrics with the published reference values and with relplot."""

import numpy as np
import pytest

from skmoe.metrics import (
    adaptive_calibration_error,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    root_mean_squared_calibration_error,
    smooth_calibration_error,
)


def _reference_data():
    # the arrays of /work/shared/reference/calibration_reference.md
    rng = np.random.default_rng(0)
    n, n_classes = 1000, 3
    proba = rng.dirichlet(np.ones(n_classes), size=n)
    y = np.minimum(
        (rng.random(n)[:, None] > proba.cumsum(1)).sum(1), n_classes - 1
    )
    return y, proba


def test_reference_data_is_the_documented_one():
    y, proba = _reference_data()
    np.testing.assert_allclose(proba[0], [0.39546199, 0.59301806, 0.01151995],
                               atol=1e-8)
    np.testing.assert_array_equal(y[:10], [1, 1, 1, 0, 2, 2, 1, 1, 1, 1])
    np.testing.assert_array_equal(np.bincount(y), [333, 349, 318])
    assert np.mean(proba.argmax(1) == y) == pytest.approx(0.622)
    assert proba.max(1).mean() == pytest.approx(0.614128, abs=1e-6)


@pytest.mark.parametrize(
    "metric, kwargs, expected",
    [
        (expected_calibration_error, {}, 0.0314900658),
        (maximum_calibration_error, {}, 0.0979486764),
        (expected_calibration_error, {"norm": "max"}, 0.0979486764),
        (root_mean_squared_calibration_error, {}, 0.0410753144),
        (expected_calibration_error, {"norm": "l2"}, 0.0410753144),
        (classwise_calibration_error, {}, 0.0340259582),
        (expected_calibration_error, {"multiclass": "classwise"}, 0.0340259582),
        (adaptive_calibration_error, {}, 0.0562360153),
        (expected_calibration_error, {"strategy": "quantile"}, 0.0562360153),
        (expected_calibration_error, {"strategy": "equal_count"}, 0.0545415657),
        (smooth_calibration_error, {}, 0.0244711842),
        (smooth_calibration_error, {"multiclass": "classwise"}, 0.0294385044),
    ],
)
def test_reference_values(metric, kwargs, expected):
    y, proba = _reference_data()
    # the reference table gives 10 decimals
    assert metric(y, proba, **kwargs) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n_samples", [30, 400, 3000])
def test_smooth_ece_matches_relplot(seed, n_samples):
    relplot = pytest.importorskip("relplot")
    rng = np.random.default_rng(seed)
    scores = rng.beta(0.5 + seed, 1.0, size=n_samples)
    outcomes = rng.random(n_samples) < scores ** (0.5 * seed)
    expected = relplot.smECE(scores, outcomes.astype(float))
    assert smooth_calibration_error(outcomes, scores) == pytest.approx(
        expected, abs=1e-12
    )


def test_smooth_ece_matches_relplot_top_label_and_fixed_bandwidth():
    relplot = pytest.importorskip("relplot")
    rng = np.random.default_rng(7)
    proba = rng.dirichlet(np.full(5, 0.3), size=800)
    y = rng.integers(0, 5, size=800)
    confidence = proba.max(1)
    hits = (proba.argmax(1) == y).astype(float)
    assert smooth_calibration_error(y, proba) == pytest.approx(
        relplot.smECE(confidence, hits), abs=1e-12
    )
    assert smooth_calibration_error(y, proba, bandwidth=0.05) == pytest.approx(
        relplot.smECE_sigma(confidence, hits, 0.05), abs=1e-12
    )
    _, sigma = smooth_calibration_error(y, proba, return_bandwidth=True)
    assert relplot.smECE(confidence, hits, return_width=True)[1] == sigma
