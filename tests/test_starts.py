"""Starts of EM: soft, non-separable, exploring, or given by the user.

The flexmix optima of ``../shared/reference/flexmix_reference.md`` (NPreg: two linear
regressions of ``yn`` on ``x``, gate on ``x``) are read from there, not copied.
"""

import warnings

import numpy as np
import pytest
from _flexmix import needs_npreg, npreg, npreg_optimum_per_row
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.gating import SoftmaxGate
from skmoe.solvers._em import reseed_empty_start


def _mean_log_likelihood(model, X, y):
    log_likelihood, _ = model._log_likelihood_terms(X, y)
    return float(np.mean(log_likelihood))


@needs_npreg
def test_unpenalised_gate_does_not_freeze_em():
    """The k-means start is a separable partition of x: an unpenalised gate fitted on
    it used to diverge in the first M-step and freeze the assignments (-3.618 per
    row against flexmix's -3.506)."""
    X, y = npreg()
    model = MixtureOfExpertsRegressor(
        LinearRegression(),
        n_experts=2,
        gate=SoftmaxGate(C=np.inf),
        init="kmeans",
        max_iter=1000,
        tol=1e-10,
        random_state=0,
    ).fit(X, y)
    assert np.all(np.isfinite(model.gate_.coef_))
    assert _mean_log_likelihood(model, X, y) > npreg_optimum_per_row() - 0.01


@needs_npreg
@pytest.mark.parametrize("C", [np.inf, 1.0])
def test_random_partition_reaches_flexmix_optimum_on_npreg(C):
    """flexmix's own start (each row to a random expert) reaches its optimum from
    every seed tried, with the unpenalised gate flexmix fits and with the default
    penalty (weak on 200 rows)."""
    X, y = npreg()
    optimum = npreg_optimum_per_row()
    for seed in range(3):
        model = MixtureOfExpertsRegressor(
            LinearRegression(),
            n_experts=2,
            gate=SoftmaxGate(C=C),
            init="random_partition",
            max_iter=1000,
            tol=1e-10,
            random_state=seed,
        ).fit(X, y)
        assert _mean_log_likelihood(model, X, y) == pytest.approx(optimum, abs=1e-3)
    slopes = sorted(float(expert.coef_[0]) for expert in model.experts_)
    assert_allclose(slopes, [0.5583151, 5.1270159], atol=0.05)


def test_random_partition_restarts_explore():
    """k-means on one feature lands on nearly the same partition whatever its seed
    (the NPreg restarts were identical); random partitions are unrelated."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(300, 1))
    starts = {
        init: [
            MixtureOfExpertsRegressor(n_experts=3, init=init, random_state=seed)
            ._initial_responsibilities(X, np.ones(300), 3, np.random.RandomState(seed))
            .argmax(axis=1)
            for seed in range(3)
        ]
        for init in ("kmeans", "random_partition")
    }
    kmeans, random = starts["kmeans"], starts["random_partition"]
    assert adjusted_rand_score(kmeans[0], kmeans[1]) > 0.8
    assert adjusted_rand_score(kmeans[1], kmeans[2]) > 0.8
    assert abs(adjusted_rand_score(random[0], random[1])) < 0.05
    assert abs(adjusted_rand_score(random[1], random[2])) < 0.05


@pytest.mark.parametrize(
    ("routing", "C", "expected"),
    [
        ("soft", np.inf, {0.025, 0.925}),
        ("hard", np.inf, {0.0, 1.0}),
        ("soft", 1.0, {0.0, 1.0}),
    ],
)
def test_start_is_softened_for_an_unpenalised_gate_under_soft_routing(
    routing, C, expected
):
    X, y = load_iris(return_X_y=True)
    model = MixtureOfExpertsClassifier(
        n_experts=4, routing=routing, gate=SoftmaxGate(C=C)
    )
    start = model._initial_responsibilities(
        X, np.ones(len(y)), 4, np.random.RandomState(0)
    )
    assert set(np.round(np.unique(start), 12)) == expected
    assert_allclose(start.sum(axis=1), 1.0)


def test_given_start_is_used_as_given():
    """init as labels (flexmix's cluster=) or as responsibilities: the first M-step
    uses them, so one EM iteration from the true labels equals fitting each expert
    on its own rows."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(400, 1))
    labels = (X[:, 0] > 0).astype(int)
    y = np.where(labels == 1, 2 * X[:, 0], -X[:, 0] + 5) + 0.1 * rng.normal(size=400)
    model = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=2, init=labels, max_iter=1
    )
    with pytest.warns(Warning):
        model.fit(X, y)
    for k in range(2):
        own = LinearRegression().fit(X[labels == k], y[labels == k])
        assert_allclose(model.experts_[k].coef_, own.coef_)
    responsibilities = np.eye(2)[labels]
    same = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=2, init=responsibilities, max_iter=1
    )
    with pytest.warns(Warning):
        same.fit(X, y)
    assert_allclose(same.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("init", "n_init", "message"),
    [
        (np.zeros(5, dtype=int), 1, r"expected shape \(150,\)"),
        (np.full(150, 3), 1, r"must lie in \[0, n_experts=2\)"),
        (np.zeros(150), 1, "integer expert index"),
        (np.ones((150, 3)), 1, r"\(n_samples, n_experts\) = \(150, 2\)"),
        (-np.ones((150, 2)), 1, "non-negative"),
        (np.zeros(150, dtype=int), 2, "n_init must be 1; got n_init=2"),
    ],
)
def test_bad_given_start_names_itself(init, n_init, message):
    X, y = load_iris(return_X_y=True)
    model = MixtureOfExpertsClassifier(n_experts=2, init=init, n_init=n_init)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_empty_expert_of_a_start_takes_rows_as_em_reseeds():
    """A start that leaves expert 1 without weight: it takes whole rows of weight
    from the experts that can spare them (as many as EM's re-seeding moves, one
    sixth of the rows here), and a start without an empty expert is left as it is,
    without a draw from the random state."""
    labels = np.array([0, 2] * 15)
    start = np.eye(3)[labels]
    weights = np.ones(30)
    weights[:4] = 0.0  # rows of zero weight give an expert no weight
    random_state = np.random.RandomState(0)
    reseeded = reseed_empty_start(start, weights, random_state)
    assert np.all(weights @ reseeded > 0)
    assert_allclose(reseeded.sum(axis=1), 1.0)
    assert set(np.unique(reseeded)) == {0.0, 1.0}  # rows move whole
    moved = np.flatnonzero(reseeded[:, 1])
    assert moved.size == 26 // 6 and np.all(weights[moved] > 0)
    assert_allclose(np.delete(reseeded, moved, axis=0), np.delete(start, moved, axis=0))
    # the rows are drawn at random: another seed, other rows
    other = reseed_empty_start(start, weights, np.random.RandomState(1))
    assert not np.array_equal(np.flatnonzero(other[:, 1]), moved)
    state = random_state.get_state()[1].copy()
    assert reseed_empty_start(reseeded, weights, random_state) is reseeded
    assert_allclose(random_state.get_state()[1], state)


@pytest.mark.parametrize("solver", ["em", "gradient"])
def test_given_start_without_an_expert_fits_the_classifier(solver):
    """solver="gradient" starts with one M-step of EM, which failed on the empty
    expert ("zero-size array to reduction operation"); EM's first M-step fell back
    on a constant (DummyClassifier) for it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (2 * X[:, 0] + rng.normal(size=30) > 0).astype(int)
    model = MixtureOfExpertsClassifier(
        n_experts=3, init=np.array([0, 2] * 15), solver=solver, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # expert 1 may stay faint
        model.fit(X, y)
    assert len(model.experts_) == 3
    for expert in model.experts_:
        assert_allclose(expert.classes_, [0, 1])
    assert np.all(np.isfinite(model.predict_proba(X)))
