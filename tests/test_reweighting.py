"""Adversarial reweighting: the weights themselves, and EM trained on them."""

import pickle
import warnings

import numpy as np
import pytest
from _mixtures import sample_linear_mixture
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.reweighting import AdversarialReweighting, effective_sample_size
from skmoe.solvers._em import _adversary_move

losses_strategy = arrays(
    np.float64,
    st.integers(2, 60),
    elements=st.floats(0, 50, allow_nan=False, allow_infinity=False),
)


# ------------------------------------------------------------------ the weights
@given(
    losses=losses_strategy,
    eta=st.floats(0, 1e6),
    batch_size=st.one_of(st.none(), st.integers(1, 20)),
    filtered=st.booleans(),
    min_ess=st.one_of(st.none(), st.floats(0.05, 1)),
    seed=st.integers(0, 2**16),
)
def test_weights_are_a_distribution(losses, eta, batch_size, filtered, min_ess, seed):
    rng = np.random.default_rng(seed)
    sample_weight = rng.uniform(0, 2, size=losses.shape[0])
    sample_weight[0] = 1.0  # not all zero
    sample_weight[rng.uniform(size=losses.shape[0]) < 0.2] = 0.0
    sample_weight[0] = 1.0
    relevant = rng.uniform(size=losses.shape[0]) < 0.5
    weights = AdversarialReweighting(
        eta, batch_size=batch_size, filtered=filtered, min_ess=min_ess
    ).compute_weights(losses, sample_weight, relevant=relevant, random_state=seed)
    assert weights.shape == losses.shape
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    assert_allclose(weights.sum(), 1.0)
    assert np.all(weights[sample_weight == 0] == 0)


@given(losses=losses_strategy, batch_size=st.one_of(st.none(), st.integers(1, 20)))
def test_weights_reduce_to_the_data_weights_as_eta_goes_to_zero(losses, batch_size):
    sample_weight = np.linspace(1, 2, losses.shape[0])
    for eta in (0.0, 1e-12):
        weights = AdversarialReweighting(
            eta, batch_size=batch_size, min_ess=None
        ).compute_weights(losses, sample_weight, random_state=0)
        assert_allclose(weights, sample_weight / sample_weight.sum(), rtol=1e-9)


@given(losses=losses_strategy, eta=st.floats(0, 20), factor=st.floats(1, 10))
def test_weights_concentrate_on_the_worst_losses_as_eta_grows(losses, eta, factor):
    def tilt(value):
        return AdversarialReweighting(
            value, batch_size=None, min_ess=None
        ).compute_weights(losses)

    low, high = tilt(eta), tilt(eta * factor)
    worst = losses == losses.max()
    # more weight on the largest losses, and a larger expected loss
    assert high[worst].sum() >= low[worst].sum() - 1e-9
    assert high @ losses >= low @ losses - 1e-9 * max(1.0, losses.max())
    # in the limit, all the weight is on the largest losses, shared equally: once
    # eta times the gap to the next loss is 50, the rest holds at most n exp(-50)
    gap = losses.max() - losses[~worst].max() if np.any(~worst) else 1.0
    if gap > 1e-6:
        limit = tilt(50 / gap)
        assert_allclose(limit[worst].sum(), 1.0, atol=1e-12 * losses.size)
        assert_allclose(limit[worst], 1.0 / worst.sum(), atol=1e-12 * losses.size)


def test_weights_follow_the_tilt_formula_with_sample_weight():
    losses = np.array([0.1, 0.5, 1.0, 2.0])
    sample_weight = np.array([1.0, 2.0, 0.5, 1.0])
    weights = AdversarialReweighting(
        0.7, batch_size=None, min_ess=None
    ).compute_weights(losses, sample_weight)
    expected = sample_weight * np.exp(0.7 * losses)
    assert_allclose(weights, expected / expected.sum())


@pytest.mark.parametrize("batch_size", [None, 7, 128])
@pytest.mark.parametrize("filtered", [False, True])
def test_weights_never_overflow(batch_size, filtered):
    rng = np.random.default_rng(0)
    losses = rng.uniform(0, 1e3, size=500)
    weights = AdversarialReweighting(
        1e6, batch_size=batch_size, filtered=filtered, min_ess=None
    ).compute_weights(losses, relevant=losses > 500, random_state=0)
    assert np.all(np.isfinite(weights))
    assert_allclose(weights.sum(), 1.0)
    if batch_size is None and not filtered:
        assert weights[np.argmax(losses)] == pytest.approx(1.0)


def test_each_minibatch_keeps_its_share():
    losses = np.random.default_rng(0).permutation(100).astype(float)
    weights = AdversarialReweighting(1e3, batch_size=10, min_ess=None).compute_weights(
        losses, random_state=0
    )
    # each batch of 10 puts its share 1/10 on its largest loss
    assert np.count_nonzero(weights > 1e-12) == 10
    assert_allclose(weights[weights > 1e-12], 0.1)


def test_filtered_weights_formula_and_fallback():
    losses = np.array([0.1, 0.2, 3.0, 1.0])
    relevant = np.array([False, True, True, False])
    tilt = AdversarialReweighting(
        1.0, batch_size=None, filtered=True, filter_strength=0.5, min_ess=None
    )
    weights = tilt.compute_weights(losses, relevant=relevant)
    tilted = np.zeros(4)
    tilted[relevant] = np.exp(losses[relevant]) / np.exp(losses[relevant]).sum()
    assert_allclose(weights, (np.full(4, 0.25) + 0.5 * tilted) / 1.5)
    # no relevant sample: the plain mean loss
    none = tilt.compute_weights(losses, relevant=np.zeros(4, dtype=bool))
    assert_allclose(none, 0.25)


@given(losses=losses_strategy, min_ess=st.floats(0.05, 1), eta=st.floats(0, 1e4))
def test_divergence_bound_holds(losses, min_ess, eta):
    weights = AdversarialReweighting(
        eta, batch_size=None, min_ess=min_ess
    ).compute_weights(losses)
    assert effective_sample_size(weights) >= min_ess * losses.shape[0] * (1 - 1e-6)


def test_bound_caps_the_share_of_a_minority_with_large_losses():
    """14% of the samples with large losses get at most about half of the weight."""
    losses = np.r_[np.full(14, 5.0), np.full(86, 0.1)]
    unbounded = AdversarialReweighting(2.0, batch_size=None, min_ess=None)
    assert unbounded.compute_weights(losses)[:14].sum() > 0.99
    bounded = AdversarialReweighting(2.0, batch_size=None, min_ess=0.5)
    assert bounded.compute_weights(losses)[:14].sum() < 0.5


def test_effective_sample_size():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size([0, 0, 3]) == pytest.approx(1)
    assert effective_sample_size([1e-300, 1e-300]) == pytest.approx(2)
    with pytest.raises(ValueError, match="zero"):
        effective_sample_size([0.0, 0.0])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"eta": -1.0}, "eta"),
        ({"min_ess": 0.0}, "min_ess"),
        ({"batch_size": 0}, "batch_size"),
        ({"warmup": 1.5}, "warmup"),
    ],
)
def test_bad_parameters_name_themselves(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        AdversarialReweighting(**params).compute_weights(np.ones(3))


# --------------------------------------------------------------- EM with weights
def _imbalanced(n_samples, seed):
    """About 14% positives that a linear expert explains badly, as on MplsStops."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 3))
    logit = -2.2 + X[:, 0] + 0.5 * X[:, 1] * X[:, 2]
    y = (rng.uniform(size=n_samples) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def imbalanced():
    return _imbalanced(1500, 0), _imbalanced(1500, 1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_default_safeguard_keeps_linear_experts_from_flipping(imbalanced):
    """The naive tilt at eta=2 puts nearly all the weight on a few samples (ESS 27
    of 1500 at its first move; refitted on it as a best response, EM predicted the
    minority class everywhere, DESIGN.md's probe); the default divergence bound
    keeps the weights spread, the base rate and the accuracy at every move."""
    (X, y), (X_test, y_test) = imbalanced
    params = dict(n_experts=2, max_iter=30, random_state=0)
    plain = MixtureOfExpertsClassifier(**params).fit(X, y)
    naive = MixtureOfExpertsClassifier(
        **params,
        reweighting=AdversarialReweighting(
            2.0, batch_size=None, min_ess=None, class_conditional=False
        ),
    ).fit(X, y)
    safe = MixtureOfExpertsClassifier(**params, reweighting="adversarial").fit(X, y)
    assert naive.effective_sample_sizes_.min() < 0.05 * X.shape[0]
    assert safe.predict(X_test).mean() < 0.3
    assert safe.score(X_test, y_test) > plain.score(X_test, y_test) - 0.1
    assert safe.effective_sample_sizes_.min() >= 0.5 * X.shape[0] * (1 - 1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("routing", ["soft", "hard", "topk"])
@pytest.mark.parametrize("reweighting", ["adversarial", "adversarial_filtered"])
def test_em_records_weights_and_effective_sample_sizes(routing, reweighting):
    X, y = _imbalanced(400, 0)
    moe = MixtureOfExpertsClassifier(
        n_experts=3,
        routing=routing,
        reweighting=reweighting,
        max_iter=12,
        random_state=0,
    ).fit(X, y)
    assert moe.effective_sample_sizes_.shape == (moe.n_iter_,)
    assert np.all(moe.effective_sample_sizes_ <= X.shape[0] + 1e-9)
    # the warm-up is unweighted
    assert_allclose(moe.effective_sample_sizes_[0], X.shape[0])
    assert moe.adversarial_weights_.shape == (X.shape[0],)
    assert_allclose(moe.adversarial_weights_.sum(), 1.0)
    assert np.all(moe.adversarial_weights_ > 0)
    assert moe.lower_bounds_.shape == (moe.n_iter_,)
    # refitting without reweighting drops the attributes
    moe.set_params(reweighting=None).fit(X, y)
    assert not hasattr(moe, "adversarial_weights_")
    assert not hasattr(moe, "effective_sample_sizes_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_eta_zero_gives_the_unweighted_model(imbalanced):
    (X, y), (X_test, _) = imbalanced
    params = dict(n_experts=2, max_iter=40, tol=1e-10, random_state=0)
    plain = MixtureOfExpertsClassifier(**params).fit(X, y)
    flat = MixtureOfExpertsClassifier(
        **params, reweighting=AdversarialReweighting(0.0)
    ).fit(X, y)
    assert_allclose(flat.adversarial_weights_, 1 / X.shape[0])
    assert_allclose(flat.predict_proba(X_test), plain.predict_proba(X_test), atol=1e-4)


def test_user_sample_weight_is_multiplied_in():
    X, y = _imbalanced(300, 0)
    sample_weight = np.ones(300)
    sample_weight[:50] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe = MixtureOfExpertsClassifier(
            reweighting=AdversarialReweighting(batch_size=None, warmup=0.0),
            max_iter=10,
            init="pca",
            random_state=0,
        ).fit(X, y, sample_weight=sample_weight)
    assert np.all(moe.adversarial_weights_[:50] == 0)
    assert np.all(moe.adversarial_weights_[50:] > 0)


def test_integer_weights_equal_repeated_rows_without_minibatches():
    """Tilting the weighted empirical distribution makes weights and repeats agree."""
    X, y = _imbalanced(200, 0)
    repeats = np.random.default_rng(1).integers(1, 3, size=200)
    params = dict(
        reweighting=AdversarialReweighting(batch_size=None, warmup=0.0),
        max_iter=8,
        init="pca",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MixtureOfExpertsClassifier(**params).fit(X, y, sample_weight=repeats)
        repeated = MixtureOfExpertsClassifier(**params).fit(
            np.repeat(X, repeats, axis=0), np.repeat(y, repeats)
        )
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-4)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("reweighting", ["adversarial", "adversarial_filtered"])
def test_regressor_reweighting(reweighting):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 2))
    y = np.abs(3 * X[:, 0]) + 0.1 * rng.standard_t(2, size=400)
    moe = MixtureOfExpertsRegressor(
        reweighting=reweighting, max_iter=15, random_state=0
    ).fit(X, y)
    assert_allclose(moe.adversarial_weights_.sum(), 1.0)
    assert moe.effective_sample_sizes_.shape == (moe.n_iter_,)
    assert moe.score(X, y) > 0.5
    restored = pickle.loads(pickle.dumps(moe))
    assert_allclose(restored.predict(X), moe.predict(X))


def test_reweighting_object_is_cloned_with_its_parameters():
    moe = MixtureOfExpertsClassifier(reweighting=AdversarialReweighting(eta=0.5))
    cloned = clone(moe)
    assert cloned.reweighting is not moe.reweighting
    assert cloned.get_params()["reweighting__eta"] == 0.5


@pytest.mark.parametrize(
    "estimator", [MixtureOfExpertsClassifier, MixtureOfExpertsRegressor]
)
def test_bad_reweighting_names_the_parameter(estimator):
    X, y = _imbalanced(50, 0)
    with pytest.raises(InvalidParameterError, match="reweighting.*'tilted'"):
        estimator(reweighting="tilted").fit(X, y)
    with pytest.raises(InvalidParameterError, match="eta"):
        estimator(reweighting=AdversarialReweighting(eta=-1.0)).fit(X, y)


def test_reweighting_needs_experts_with_sample_weight():
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _imbalanced(60, 0)
    with pytest.raises(ValueError, match="reweighting is set"):
        MixtureOfExpertsClassifier(
            KNeighborsClassifier(), routing="hard", reweighting="adversarial"
        ).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_lower_bound_is_the_likelihood_under_the_last_weights():
    """With reweighting, lower_bound_ is the log-likelihood of the final model
    weighted by the weights its last M-step used (adversarial_weights_), minus
    the L2 penalties of gate and experts per unit of weight (the objective EM
    increases)."""
    X, y = _imbalanced(400, 0)
    moe = MixtureOfExpertsClassifier(
        reweighting="adversarial", max_iter=12, random_state=0
    ).fit(X, y)
    log_likelihood = np.log(moe.predict_proba(X)[np.arange(X.shape[0]), y])
    penalty = 0.5 * np.sum(moe.gate_.coef_**2) / moe.gate_.C + sum(
        0.5 * np.sum(expert.coef_**2) / expert.C for expert in moe.experts_
    )
    assert_allclose(
        moe.lower_bound_,
        moe.adversarial_weights_ @ log_likelihood - penalty / X.shape[0],
    )
    assert not np.isclose(moe.lower_bound_, log_likelihood.mean())


def test_slow_adversary_settles_without_losing_accuracy(imbalanced):
    """Refitting on the latest tilt alternated between two models (the tilted
    likelihood flipped back and forth and EM never settled, losing 5 points here);
    the mirror step with a decaying step size (the default) and the mean of the
    tilts both settle, inside the divergence bound, without losing the plain
    model's accuracy."""
    (X, y), (X_test, y_test) = imbalanced
    params = dict(n_experts=2, max_iter=60, random_state=0)
    plain = MixtureOfExpertsClassifier(**params).fit(X, y)
    for averaging in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            tilted = MixtureOfExpertsClassifier(
                **params,
                reweighting=AdversarialReweighting(
                    batch_size=None, averaging=averaging
                ),
            ).fit(X, y)
        assert tilted.converged_ and tilted.n_iter_ < params["max_iter"]
        bounds = tilted.lower_bounds_[-4:]
        assert np.ptp(bounds) < 1e-3  # no period-2 oscillation
        assert tilted.effective_sample_sizes_.min() >= 0.5 * X.shape[0] * (1 - 1e-6)
        assert tilted.score(X_test, y_test) >= plain.score(X_test, y_test) - 0.01


def test_mirror_step_averages_the_log_tilts():
    """log q_t = (1 - 1/t) log q_{t-1} + (1/t) log q*_t: after t moves the
    log-weights are the mean of the t log-tilts (renormalised, at the data's
    total weight)."""
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 2.0, size=20)
    reweighting = AdversarialReweighting()
    targets = [rng.dirichlet(np.ones(20)) * weights.sum() for _ in range(5)]
    moved = weights
    for t, target in enumerate(targets, start=1):
        moved = _adversary_move(reweighting, moved, target, weights, t)
        expected = np.exp(np.mean(np.log(targets[:t]), axis=0))
        assert_allclose(moved, weights.sum() * expected / expected.sum(), rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "solver, params",
    [
        ("em", {}),  # the warm-up converges: the tilt starts and moves nothing
        ("em", {"warmup": 0.0}),  # tilted from the first M-step
        ("em", {"warmup": 0.0, "batch_size": None, "min_ess": None}),
        ("em", {"warmup": 0.02}),  # the warm-up is cut by its budget
        ("gradient", {}),
    ],
)
def test_eta_to_zero_reproduces_the_unweighted_fit(solver, params):
    """eta -> 0 gives back the unweighted mixture, predictions within 1e-8.

    It did not (0.01-0.08 apart) when the end of the warm-up restarted the
    convergence test: EM then ran extra iterations the unweighted fit never ran.
    The convergence test now also asks the adversary's move to be small, which it
    is for a tiny eta, so EM stops where unweighted EM stops. (solver="gradient"
    agrees exactly when its warm-up converges, as here; a warm-up cut by its
    iteration budget restarts L-BFGS, and the two fits then agree to L-BFGS's
    tolerance only.)"""
    X, y, _, _ = sample_linear_mixture(1500, 0)
    common = dict(n_experts=3, solver=solver, max_iter=300, random_state=0)
    plain = MixtureOfExpertsClassifier(**common).fit(X, y)
    tilted = MixtureOfExpertsClassifier(
        **common, reweighting=AdversarialReweighting(eta=1e-10, **params)
    ).fit(X, y)
    assert tilted.n_iter_ == plain.n_iter_
    assert_allclose(tilted.predict_proba(X), plain.predict_proba(X), rtol=0, atol=1e-8)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_eta_and_averaging_are_tunable_by_grid_search():
    from sklearn.model_selection import GridSearchCV

    from skmoe.metrics import neg_expected_calibration_error_scorer

    X, y = _imbalanced(300, 0)
    search = GridSearchCV(
        MixtureOfExpertsClassifier(
            reweighting=AdversarialReweighting(), max_iter=8, random_state=0
        ),
        {"reweighting__eta": [0.0, 2.0], "reweighting__averaging": [False, True]},
        scoring=neg_expected_calibration_error_scorer,
        cv=2,
        error_score="raise",
    ).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    chosen = search.best_estimator_.reweighting
    assert chosen.eta == search.best_params_["reweighting__eta"]
    assert chosen.averaging == search.best_params_["reweighting__averaging"]


@settings(max_examples=40)
@given(
    n_samples=st.integers(2, 60),
    batch_size=st.sampled_from([None, 7, 16]),
    seed=st.integers(0, 2**31 - 1),
)
def test_class_conditional_tilt_keeps_each_class_share_of_each_batch(
    n_samples, batch_size, seed
):
    """The class-conditional tilt (ours) moves weight only within a class of a
    batch: every (batch, class) keeps its data share, whatever the losses."""
    rng = np.random.default_rng(seed)
    losses = rng.exponential(size=n_samples) * rng.choice([0.1, 10.0])
    classes = rng.integers(0, 3, size=n_samples)
    weights = rng.uniform(0.1, 2.0, size=n_samples)
    tilt = AdversarialReweighting(
        eta=5.0, batch_size=batch_size, min_ess=None, class_conditional=True
    )
    plan = tilt._plan(losses, weights, None, np.random.RandomState(seed), classes)
    q = plan.weights(losses)
    assert_allclose(q.sum(), 1.0)
    # each segment is one class of one batch, and carries that subset's data share
    for start, end in zip(
        plan.starts, [*plan.starts[1:], plan.order.size], strict=True
    ):
        members = plan.order[start:end]
        assert np.unique(classes[members]).size == 1
        assert_allclose(q[members].sum(), weights[members].sum() / weights.sum())
    # so the class shares are those of the data
    assert_allclose(
        np.bincount(classes, weights=q, minlength=3),
        np.bincount(classes, weights=weights, minlength=3) / weights.sum(),
    )


@pytest.mark.parametrize("solver", ["em", "gradient", "adam"])
def test_class_conditional_tilt_keeps_the_label_proportions_in_every_solver(solver):
    """On imbalanced data the plain tilt up-weights the rare class; the
    class-conditional tilt keeps its share of the weights at the data's."""
    X, y = make_classification(
        n_samples=1500, n_features=6, weights=[0.85], flip_y=0.05, random_state=0
    )
    shares = {}
    for conditional in (False, True):
        model = MixtureOfExpertsClassifier(
            n_experts=2,
            solver=solver,
            max_iter=20 if solver != "gradient" else 200,
            random_state=0,
            reweighting=AdversarialReweighting(
                eta=2.0, class_conditional=conditional, warmup=0.3
            ),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        if solver == "adam":
            proba = model.predict_proba(X)[:, 1].mean()
            shares[conditional] = proba
        else:
            shares[conditional] = model.adversarial_weights_[y == 1].sum()
    base_rate = y.mean()
    assert shares[False] > base_rate + 0.02
    assert abs(shares[True] - base_rate) < 0.02
