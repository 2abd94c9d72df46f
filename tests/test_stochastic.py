"""solver="adam": kernels against their NumPy references, finite-difference gradients
of every block and of both tilt forms, and the estimator's documented behaviour."""

import pickle
import warnings

import _naive
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._kernels import stochastic as kernels
from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, GroupDRO
from skmoe.solvers import _stochastic

THRESHOLDS = (1e-6, 0.01)


def _problem(regression, n_hidden, activation, seed=0, n_samples=24):
    rng = np.random.default_rng(seed)
    n_features, n_experts = 3, 3
    n_outputs = 1 if regression else 3
    dims = np.array(
        [n_features, n_hidden, n_experts, n_outputs, int(regression), activation],
        dtype=np.intp,
    )
    size = kernels.parameter_layout(dims)[4]
    theta = rng.normal(scale=0.7, size=size)
    X = rng.normal(size=(n_samples, n_features))
    y_class = rng.integers(0, 3, n_samples).astype(np.intp)
    y_value = rng.normal(size=n_samples) if regression else np.zeros(1)
    if regression:
        y_class = np.zeros(n_samples, dtype=np.intp)
    weights = rng.uniform(0.2, 2.0, n_samples)
    return dims, theta, X, y_class, y_value, weights


MODELS = [
    (False, 0, 0),
    (False, 4, kernels.RELU),
    (False, 4, kernels.TANH),
    (True, 0, 0),
    (True, 4, kernels.TANH),
]
TILTS = [
    # (mode, eta, min_ess, filtered, class_conditional)
    (kernels.NO_TILT, 0.0, -1.0, False, False),
    (kernels.DANSKIN, 0.8, -1.0, False, False),
    (kernels.THROUGH_WEIGHTS, 0.8, -1.0, False, False),
    (kernels.DANSKIN, 3.0, 0.6, False, False),
    (kernels.THROUGH_WEIGHTS, 0.8, -1.0, True, False),
    (kernels.DANSKIN, 0.8, 0.6, True, True),
    (kernels.THROUGH_WEIGHTS, 0.8, -1.0, False, True),
]


def _objective(problem, tilt, theta=None, rows=None):
    dims, theta0, X, y_class, y_value, weights = problem
    mode, eta, min_ess, filtered, conditional = tilt
    theta = theta0 if theta is None else theta
    rows = np.arange(2, X.shape[0], dtype=np.intp) if rows is None else rows
    conditional = conditional and not dims[4]
    groups = y_class.copy() if conditional else np.zeros(X.shape[0], dtype=np.intp)
    n_groups = 3 if conditional else 1
    grad = np.empty(theta.size)
    tilt_weights = np.empty(rows.size)
    value = kernels.batch_objective(
        X, y_class, y_value, weights, groups, rows, theta, dims, n_groups, mode, eta,
        min_ess, filtered, 1.0, *THRESHOLDS, grad, tilt_weights,
    )
    reference = _naive.stochastic_batch_objective(
        X, y_class, y_value, weights, groups, rows, theta, dims, n_groups, mode, eta,
        min_ess, filtered, 1.0, *THRESHOLDS,
    )
    return value, grad, tilt_weights, reference


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("tilt", TILTS)
def test_batch_objective_matches_reference(model, tilt):
    problem = _problem(*model)
    value, grad, weights, (ref_value, ref_grad, ref_weights) = _objective(
        problem, tilt
    )
    np.testing.assert_allclose(value, ref_value, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-8, atol=1e-14)
    assert weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "tilt", [t for t in TILTS if t[2] <= 0]  # the bound's eta' is not differentiated
)
def test_batch_gradient_finite_differences(model, tilt):
    """Central differences of the batch objective in every coordinate: hidden
    layer, gate, heads, noise scales, and both forms of the tilt."""
    problem = _problem(*model)
    theta = problem[1]
    _, grad, _, _ = _objective(problem, tilt)
    step = 1e-6
    numeric = np.empty(theta.size)
    for p in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[p] += step
        down[p] -= step
        numeric[p] = (
            _objective(problem, tilt, up)[0] - _objective(problem, tilt, down)[0]
        ) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_danskin_and_through_weights_differ_as_documented():
    """Danskin's gradient is sum q grad L; through the weights adds
    eta' q (L - E_q L) grad L."""
    problem = _problem(False, 0, 0)
    _, danskin, q, _ = _objective(problem, TILTS[1])
    _, through, _, _ = _objective(problem, TILTS[2])
    assert not np.allclose(danskin, through)
    # with eta -> 0 both reduce to the plain weighted mean's gradient
    _, plain, _, _ = _objective(problem, TILTS[0])
    for mode in (kernels.DANSKIN, kernels.THROUGH_WEIGHTS):
        _, small, _, _ = _objective(problem, (mode, 1e-10, -1.0, False, False))
        np.testing.assert_allclose(small, plain, rtol=1e-8, atol=1e-12)


def test_min_ess_bounds_every_tilt():
    problem = _problem(False, 0, 0, n_samples=64)
    dims, theta, X, y_class, y_value, weights = problem
    rows = np.arange(X.shape[0], dtype=np.intp)
    tilt = (kernels.DANSKIN, 50.0, 0.6, False, False)
    _, _, tilted, _ = _objective(problem, tilt, rows=rows)
    base = weights / weights.sum()
    chi2_plus_one = float((tilted**2 / base).sum())
    assert 1 / chi2_plus_one == pytest.approx(0.6, rel=1e-6)


def test_class_conditional_keeps_class_shares():
    problem = _problem(False, 0, 0, n_samples=64)
    dims, theta, X, y_class, y_value, weights = problem
    rows = np.arange(X.shape[0], dtype=np.intp)
    base = weights / weights.sum()
    for conditional in (False, True):
        tilt = (kernels.DANSKIN, 5.0, -1.0, False, conditional)
        _, _, tilted, _ = _objective(problem, tilt, rows=rows)
        shares = np.bincount(y_class, weights=tilted, minlength=3)
        expected = np.bincount(y_class, weights=base, minlength=3)
        assert np.allclose(shares, expected) == conditional


@pytest.mark.parametrize("model", MODELS)
def test_adam_epoch_matches_reference(model):
    dims, theta, X, y_class, y_value, weights = _problem(*model, n_samples=40)
    regression = bool(dims[4])
    rng = np.random.default_rng(1)
    order = rng.permutation(X.shape[0]).astype(np.intp)
    size = theta.size
    l2 = rng.uniform(0, 0.1, size)
    decay = rng.uniform(0, 0.01, size)
    free = rng.uniform(size=size) > 0.1
    groups = np.zeros(X.shape[0], dtype=np.intp)
    arguments = (
        X, y_class, y_value, weights, groups, order, 16, theta.copy(),
        np.zeros(size), np.zeros(size), l2, decay, free, dims, 0.05, 20, 3, 0.9,
        0.999, 1e-8, 1, kernels.THROUGH_WEIGHTS, 1.5, 0.7, False, 1.0, *THRESHOLDS,
        np.log(0.3) if regression else 0.0,
    )
    ref_value, ref_step, ref_theta, ref_first, ref_second, ref_used = (
        _naive.adam_epoch(*arguments)
    )
    used = np.zeros(X.shape[0])
    value, step = kernels.adam_epoch(*arguments, used)  # updates in place
    assert step == ref_step == 3 + 3
    assert value == pytest.approx(ref_value, rel=1e-10)
    np.testing.assert_allclose(arguments[7], ref_theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(arguments[8], ref_first, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(arguments[9], ref_second, rtol=1e-9, atol=1e-16)
    np.testing.assert_allclose(used, ref_used, rtol=1e-9, atol=1e-15)
    assert used.sum() == pytest.approx(1.0)


def test_adam_update_matches_reference():
    rng = np.random.default_rng(2)
    theta, grad, first, second = rng.normal(size=(4, 30))
    second = np.abs(second)
    l2, decay = rng.uniform(size=(2, 30))
    free = rng.uniform(size=30) > 0.3
    expected = _naive.adam_update(
        theta, grad, first, second, l2, decay, free, 0.01, 0.9, 0.99, 1e-8, 4
    )
    kernels.adam_update(
        theta, grad, first, second, l2, decay, free, 0.01, 0.9, 0.99, 1e-8, 4
    )
    for got, want in zip((theta, first, second), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_mixture_losses_match_reference(model):
    dims, theta, X, y_class, y_value, _ = _problem(*model, n_samples=2100)
    losses = kernels.mixture_losses(
        X, y_class, y_value, theta, dims, np.empty(X.shape[0])
    )
    expected = _naive.stochastic_forward(X, y_class, y_value, theta, dims)["losses"]
    np.testing.assert_allclose(losses, expected, rtol=1e-10)


# --------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        600, 6, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    return X, y


def _adam(**params):
    defaults = {"n_experts": 3, "solver": "adam", "max_iter": 8, "random_state": 0}
    return MixtureOfExpertsClassifier(**{**defaults, **params})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("hidden", [None, (5,)])
@pytest.mark.parametrize(
    "tilt",
    [
        {"gradient": "danskin"},
        {"gradient": "through_weights"},
        {"class_conditional": True},
        {"min_ess": None},
    ],
)
def test_eta_to_zero_gives_the_unweighted_fit(data, hidden, tilt):
    X, y = data
    plain = _adam(hidden_layer_sizes=hidden).fit(X, y)
    tilted = _adam(
        hidden_layer_sizes=hidden,
        reweighting=AdversarialReweighting(eta=1e-10, warmup=0.25, **tilt),
    ).fit(X, y)
    np.testing.assert_allclose(
        tilted.predict_proba(X), plain.predict_proba(X), rtol=0, atol=1e-8
    )
    assert tilted.adversarial_weights_.shape == (X.shape[0],)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_eta_to_zero_regressor():
    X, y = _regression_data()
    plain = _adam_regressor().fit(X, y)
    tilted = _adam_regressor(
        reweighting=AdversarialReweighting(eta=1e-10, gradient="through_weights")
    ).fit(X, y)
    np.testing.assert_allclose(tilted.predict(X), plain.predict(X), rtol=0, atol=1e-8)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"hidden_layer_sizes": 4, "activation": "tanh", "early_stopping": True},
        {"reweighting": "adversarial_filtered", "n_init": 2, "init": "random"},
    ],
)
def test_reproducible_with_int_random_state(data, params):
    X, y = data
    first = _adam(**params).fit(X, y).predict_proba(X)
    second = _adam(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    other = _adam(**{**params, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, other)


def test_early_stopping_keeps_the_best_iterate(data, monkeypatch):
    X, y = data
    splits = []
    split = _stochastic._validation_split

    def recorded(*args):
        splits.append(split(*args))
        return splits[-1]

    monkeypatch.setattr(_stochastic, "_validation_split", recorded)
    # a high rate without decay: the validation score goes up and down
    moe = _adam(
        early_stopping=True,
        learning_rate="constant",
        learning_rate_init=0.3,
        n_iter_no_change=4,
        max_iter=40,
        hidden_layer_sizes=8,
    ).fit(X, y)
    _, validation = splits[-1]
    scores = moe.validation_scores_
    assert scores.shape == (moe.n_iter_,)
    assert np.argmax(scores) < moe.n_iter_ - 1  # the last iterate is not the best
    proba = moe.predict_proba(X[validation])
    log_likelihood = np.mean(np.log(proba[np.arange(validation.size), y[validation]]))
    assert log_likelihood == pytest.approx(scores.max(), rel=1e-9)
    assert moe.converged_


@pytest.mark.parametrize("regression", [False, True])
def test_validation_fraction_leaving_no_training_rows_names_it(data, regression):
    """0.99 of 20 rows is 20 validation rows: the error names validation_fraction
    and the split it gives, not train_test_split's test_size."""
    X, y = data[0][:20], data[1][:20]
    params = {"early_stopping": True, "validation_fraction": 0.99, "max_iter": 2}
    moe = _adam_regressor(**params) if regression else _adam(**params)
    message = (
        r"validation_fraction=0.99 leaves 0 training and 20 validation samples of "
        r"n_samples=20"
    )
    with pytest.raises(ValueError, match=message):
        moe.fit(X, X[:, 0] if regression else y)
    # the largest fraction that leaves one training row trains
    moe.set_params(validation_fraction=0.95)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, X[:, 0] if regression else y)
    assert moe.validation_scores_.shape == (moe.n_iter_,)


def test_partial_fit_on_the_whole_data_equals_fit_with_a_constant_rate(data):
    """Documented: k calls of partial_fit on all the data are fit with max_iter=k
    and learning_rate="constant" (without penalties: partial_fit divides them by
    the weight seen so far, fit by the total)."""
    X, y = data
    params = {
        "expert": LogisticRegression(C=np.inf, random_state=0),
        "gate": SoftmaxGate(C=np.inf),
        "init": "pca",
        "learning_rate": "constant",
        "max_iter": 3,
    }
    fitted = _adam(**params).fit(X, y)
    streamed = _adam(**params)
    for _ in range(3):
        streamed.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_allclose(
        streamed.predict_proba(X), fitted.predict_proba(X), rtol=1e-12, atol=1e-14
    )
    assert streamed.n_iter_ == 3


def test_partial_fit_over_chunks_learns(data):
    X, y = data
    moe = _adam(hidden_layer_sizes=8)
    classes = np.unique(y)
    for _ in range(6):
        for chunk in np.array_split(np.arange(X.shape[0]), 5):
            moe.partial_fit(X[chunk], y[chunk], classes=classes)
    assert moe.n_iter_ == 30
    assert moe.score(X, y) > 0.85
    with pytest.raises(ValueError, match="classes must be passed"):
        _adam().partial_fit(X, y)
    with pytest.raises(ValueError, match="not in classes"):
        _adam().partial_fit(X, y + 5, classes=classes)
    with pytest.raises(ValueError, match="features"):
        moe.partial_fit(X[:, :3], y)
    assert not hasattr(MixtureOfExpertsClassifier(), "partial_fit")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_downstream_with_a_hidden_layer(data):
    X, y = data
    moe = _adam(hidden_layer_sizes=6, expert_calibration="temperature").fit(X, y)
    assert moe.hidden_coef_.shape == (X.shape[1], 6)
    assert all(isinstance(expert, LogisticRegression) for expert in moe.experts_)
    assert isinstance(moe.gate_, SoftmaxGate)
    features = np.maximum(X @ moe.hidden_coef_ + moe.hidden_intercept_, 0)
    gate = moe.gate_.predict_proba(features)
    np.testing.assert_allclose(moe.predict_gate_proba(X), gate)
    expert_proba = moe.predict_expert_proba(X)
    np.testing.assert_allclose(
        moe.predict_proba(X), np.einsum("nk,nkc->nc", gate, expert_proba), rtol=1e-10
    )
    clone = pickle.loads(pickle.dumps(moe))
    np.testing.assert_array_equal(clone.predict_proba(X), moe.predict_proba(X))
    assert len(moe.expert_calibrators_) == 3
    # refitting with another solver drops the hidden layer
    moe.set_params(solver="em", hidden_layer_sizes=None).fit(X, y)
    assert not hasattr(moe, "hidden_coef_")
    assert moe.predict_proba(X).shape == (X.shape[0], 3)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_without_hidden_layer_the_gate_and_experts_are_the_model(data):
    X, y = data
    moe = _adam(max_iter=3).fit(X, y)
    assert moe.hidden_coef_ is None
    expert_proba = np.stack([e.predict_proba(X) for e in moe.experts_], axis=1)
    mixture = np.einsum("nk,nkc->nc", moe.gate_.predict_proba(X), expert_proba)
    np.testing.assert_allclose(moe.predict_proba(X), mixture, rtol=1e-12)


def test_learns_as_well_as_gradient(data):
    X, y = data
    adam = _adam(max_iter=100, batch_size=32).fit(X, y)
    gradient = MixtureOfExpertsClassifier(
        n_experts=3, solver="gradient", max_iter=500, random_state=0
    ).fit(X, y)
    assert adam.lower_bound_ > gradient.lower_bound_ - 0.03


# --------------------------------------------------------------------- regressor
def _regression_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 2))
    y = 40 * np.abs(X[:, 0]) + 5 * X[:, 1] + rng.normal(size=300) + 100
    return X, y


def _adam_regressor(**params):
    defaults = {
        "n_experts": 2,
        "solver": "adam",
        "max_iter": 10,
        "batch_size": 32,
        "random_state": 0,
    }
    return MixtureOfExpertsRegressor(**{**defaults, **params})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_regressor_fits_in_the_unit_of_y():
    X, y = _regression_data()
    moe = _adam_regressor(max_iter=100, expert=LinearRegression()).fit(X, y)
    assert moe.score(X, y) > 0.95
    assert all(isinstance(expert, LinearRegression) for expert in moe.experts_)
    # the noise scales are those of the residuals of the experts, in y's unit
    assert np.all((moe.noise_scale_ > 0.5) & (moe.noise_scale_ < 3))
    hidden = _adam_regressor(max_iter=100, hidden_layer_sizes=8).fit(X, y)
    assert hidden.score(X, y) > 0.95
    clone = pickle.loads(pickle.dumps(hidden))
    np.testing.assert_array_equal(clone.predict(X), hidden.predict(X))
    streamed = _adam_regressor()
    for _ in range(50):
        for chunk in np.array_split(np.arange(300), 3):
            streamed.partial_fit(X[chunk], y[chunk])
    assert streamed.score(X, y) > 0.9


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "params, message",
    [
        ({"routing": "hard"}, "routing='soft'"),
        ({"gate": LogisticRegression()}, "SoftmaxGate"),
        ({"expert": DecisionTreeClassifier()}, "LogisticRegression"),
        ({"expert": LogisticRegression(l1_ratio=1.0)}, "L2"),
        ({"reweighting": GroupDRO()}, "reweighting"),
        ({"hidden_layer_sizes": (3, 3)}, "one shared hidden layer"),
    ],
)
def test_clear_errors(data, params, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        _adam(**params).fit(X, y)


def test_clear_errors_of_parameters_and_extensions(data):
    X, y = data
    with pytest.raises(ValueError, match="learning_rate"):
        _adam(learning_rate="adaptive").fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        _adam(batch_size=0).fit(X, y)
    Xr, yr = _regression_data()
    with pytest.raises(ValueError, match="Ridge or a LinearRegression"):
        _adam_regressor(expert=DecisionTreeRegressor()).fit(Xr, yr)
    with pytest.raises(ValueError, match="expert_calibration"):
        _adam(expert_calibration="sigmoid").partial_fit(X, y, classes=np.unique(y))
    ridge = _adam_regressor(expert=Ridge(alpha=2.0)).fit(Xr, yr)
    assert isinstance(ridge.experts_[0], Ridge)


def test_tilt_is_bounded_by_min_ess_in_every_epoch(data):
    X, y = data
    moe = _adam(
        max_iter=6,
        batch_size=50,
        reweighting=AdversarialReweighting(eta=50.0, min_ess=0.7, warmup=0.5),
    ).fit(X, y)
    sizes = moe.effective_sample_sizes_
    n_samples = X.shape[0]
    np.testing.assert_allclose(sizes[:3], n_samples)  # the untilted warm-up
    # each batch's relative size is at least min_ess, hence the epoch's too
    assert np.all(sizes[3:] >= 0.7 * n_samples * (1 - 1e-9))
    assert np.all(sizes[3:] < 0.75 * n_samples)  # eta=50 reaches the bound


def test_warm_start_continues_from_the_fitted_model(data):
    X, y = data
    moe = _adam(max_iter=5, warm_start=True, hidden_layer_sizes=4).fit(X, y)
    first = moe.lower_bounds_.copy()
    hidden = moe.hidden_coef_.copy()
    moe.fit(X, y)
    assert moe.lower_bounds_[0] > first[0] + 0.05  # not the cold start again
    assert not np.array_equal(moe.hidden_coef_, hidden)
    cold = _adam(max_iter=5, hidden_layer_sizes=4).fit(X, y)
    np.testing.assert_allclose(cold.lower_bounds_, first)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_class_conditional_tilt_keeps_the_predicted_base_rate():
    """The plain tilt up-weights the rare class and the model over-predicts it;
    normalised within classes, the tilt cannot move the label proportions."""
    X, y = make_classification(
        3000, 5, n_informative=3, weights=[0.85], flip_y=0.05, random_state=0
    )
    rates = {}
    for name, conditional in [("plain", None), ("tilt", False), ("within", True)]:
        reweighting = (
            None
            if conditional is None
            else AdversarialReweighting(class_conditional=conditional)
        )
        moe = _adam(max_iter=30, reweighting=reweighting).fit(X, y)
        rates[name] = moe.predict_proba(X)[:, 1].mean()
    assert rates["tilt"] > y.mean() + 0.1
    assert abs(rates["within"] - y.mean()) < 0.03
    assert abs(rates["plain"] - y.mean()) < 0.03


def test_restarts_forget_what_an_earlier_fit_left(data):
    """With n_init > 1 the starts run on copies (through joblib); what the solver
    deletes from an earlier fit is deleted from the estimator too."""
    X, y = data
    moe = _adam(early_stopping=True, max_iter=3)
    moe.fit(X, y)
    moe.partial_fit(X[:100], y[:100])
    assert hasattr(moe, "validation_scores_")
    assert hasattr(moe, "_partial_fit_random_state")
    moe.set_params(early_stopping=False, n_init=2).fit(X, y)
    assert not hasattr(moe, "validation_scores_")
    assert not hasattr(moe, "_partial_fit_random_state")
    # and partial_fit after this fit starts afresh from random_state, as after a
    # single start
    single = _adam(max_iter=3, n_init=2).fit(X, y)
    single.partial_fit(X[:100], y[:100])
    moe.partial_fit(X[:100], y[:100])
    np.testing.assert_allclose(moe.predict_proba(X), single.predict_proba(X), atol=0)
