"""solver="gradient": the joint kernel against NumPy, the objectives' gradients, the
tilted objectives' identities, and the classifier trained jointly."""

import pickle
import warnings

import _naive
import numpy as np
import pytest
from _mixtures import sample_linear_mixture
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from skmoe import MixtureOfExpertsClassifier
from skmoe._kernels.joint import joint_loss_grad, joint_losses
from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, GroupDRO
from skmoe.reweighting._adversarial import _bounded_eta
from skmoe.solvers._gradient import _JointObjective


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# ------------------------------------------------------------------ the kernel


def _kernel_loss_grad(X, y, gate, experts, coefficients):
    losses = np.empty(X.shape[0])
    grad_gate, grad_experts = np.empty_like(gate), np.empty_like(experts)
    value = joint_loss_grad(
        X, y, gate, experts, coefficients, losses, grad_gate, grad_experts
    )
    return losses, value, grad_gate, grad_experts


def _kernel_problem(n_samples, n_features, n_experts, n_classes, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    gate = scale * rng.normal(size=(n_experts, n_features + 1))
    experts = scale * rng.normal(size=(n_experts, n_classes, n_features + 1))
    coefficients = rng.normal(size=n_samples)
    coefficients[::5] = 0.0
    return X, y, gate, experts, coefficients


def _layouts(X):
    read_only = X.copy()
    read_only.setflags(write=False)
    wide = np.repeat(X, 2, axis=1)
    return {
        "c": X,
        "fortran": np.asfortranarray(X),
        "read-only": read_only,
        "strided": wide[:, ::2],
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["c", "fortran", "read-only", "strided"])
def test_kernel_matches_numpy(dtype, layout):
    X, y, gate, experts, coefficients = _kernel_problem(150, 4, 3, 3, 0)
    X = _layouts(X.astype(dtype))[layout]
    expected = _naive.joint_loss_grad(X, y, gate, experts, coefficients)
    got = _kernel_loss_grad(X, y, gate, experts, coefficients)
    for value, reference in zip(got, expected, strict=True):
        assert_allclose(value, reference, rtol=1e-10, atol=1e-10)
    assert_allclose(
        joint_losses(X, y, gate, experts, np.empty(X.shape[0])), expected[0], rtol=1e-12
    )


@settings(max_examples=40)
@given(
    n_samples=st.integers(1, 30),
    n_features=st.integers(1, 5),
    n_experts=st.integers(1, 4),
    n_classes=st.integers(2, 4),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]),
)
def test_kernel_matches_numpy_on_random_problems(
    n_samples, n_features, n_experts, n_classes, seed, scale
):
    # scale=1e3 gives logits in the thousands: exp overflows unless log-sum-exp
    X, y, gate, experts, coefficients = _kernel_problem(
        n_samples, n_features, n_experts, n_classes, seed, scale
    )
    got = _kernel_loss_grad(X, y, gate, experts, coefficients)
    for value in got:
        assert np.all(np.isfinite(value))
    # a loss is non-negative, up to the rounding of logits of size ~scale * d
    assert np.all(got[0] >= -1e-13 * max(1.0, scale) * (n_features + 1))
    expected = _naive.joint_loss_grad(X, y, gate, experts, coefficients)
    for value, reference in zip(got, expected, strict=True):
        assert_allclose(value, reference, rtol=1e-9, atol=1e-9 * max(1.0, scale))


def test_kernel_is_exact_when_the_likelihood_underflows():
    # every expert gives the label a probability of about exp(-1000): the mixture's
    # likelihood underflows to zero, the loss must not
    X, y, gate, experts, coefficients = _kernel_problem(20, 3, 3, 3, 1)
    y[:] = 0
    experts[:, 1, -1] = 1000.0
    experts[0, 1, -1] = 800.0  # one expert far less wrong: posterior ~ one-hot
    got = _kernel_loss_grad(X, y, gate, experts, coefficients)
    expected = _naive.joint_loss_grad(X, y, gate, experts, coefficients)
    assert np.all(got[0] > 700)
    for value, reference in zip(got, expected, strict=True):
        assert np.all(np.isfinite(value))
        assert_allclose(value, reference, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------- the objectives
def _objective(n_classes=3, seed=0, penalties=(0.5, 2.0), gate_alpha=0.7):
    """A joint objective on random data with experts of different C."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 3))
    y = rng.integers(0, n_classes, size=80)
    weights = rng.uniform(0.2, 2.0, size=80)
    weights[::9] = 0.0
    templates = [LogisticRegression(C=C) for C in penalties]
    templates.append(LogisticRegression(C=1.0, fit_intercept=False))
    objective = _JointObjective(X, y, weights, n_classes, templates, gate_alpha)
    theta = rng.normal(size=int(objective.free.sum()))
    return objective, theta, weights


def _finite_difference_check(objective, theta, seed=0):
    """Central differences of the objective along random directions."""
    rng = np.random.default_rng(seed)
    _, grad = objective(theta)
    for _ in range(5):
        direction = rng.normal(size=theta.shape)
        step = 1e-6
        plus, _ = objective(theta + step * direction)
        minus, _ = objective(theta - step * direction)
        assert_allclose(
            (plus - minus) / (2 * step), grad @ direction, rtol=1e-6, atol=1e-8
        )


def _reweighting(**params):
    return AdversarialReweighting(**{"eta": 2.0, "batch_size": 25, **params})


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize(
    "tilt",
    [
        None,
        {"gradient": "danskin"},
        {"gradient": "through_weights"},
        {"gradient": "danskin", "filtered": True, "min_ess": 0.3},
        {"gradient": "through_weights", "filtered": True, "min_ess": None},
    ],
)
def test_gradient_matches_finite_differences(n_classes, tilt):
    objective, theta, weights = _objective(n_classes)
    if tilt is not None:
        reweighting = _reweighting(**tilt)
        losses = objective.losses(theta)
        relevant = np.arange(losses.size) % 3 != 0
        objective.plan = reweighting._plan(losses, weights, relevant, 0)
        objective.gradient = reweighting.gradient
    _finite_difference_check(objective, theta)


def test_frozen_coordinates_are_those_of_logistic_regression():
    objective, _, _ = _objective(n_classes=2)
    experts_free = objective.free[objective.n_gate :].reshape(objective.experts_shape)
    assert not experts_free[:, 0].any()  # binary: the first class's row is zero
    assert not experts_free[2, :, -1].any()  # fit_intercept=False
    assert experts_free[:2, 1].all()


@given(
    losses=st.lists(st.floats(0, 30), min_size=2, max_size=40),
    eta=st.floats(0.01, 20),
    batch_size=st.one_of(st.none(), st.integers(1, 15)),
    filtered=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_danskin_identity_and_through_weights_derivative(
    losses, eta, batch_size, filtered, seed
):
    # d/dL_i of the DRO value is the tilted weight q_i itself (Danskin); that of
    # sum q(L) L is q_i (1 + eta (L_i - batch mean under q))
    losses = np.asarray(losses)
    rng = np.random.default_rng(seed)
    sample_weight = rng.uniform(0.5, 2.0, size=losses.size)
    relevant = rng.uniform(size=losses.size) < 0.6
    reweighting = AdversarialReweighting(
        eta, batch_size=batch_size, filtered=filtered, min_ess=None
    )
    plan = reweighting._plan(losses, sample_weight, relevant, seed)
    value, coefficients = plan.objective(losses, "danskin")
    assert_allclose(coefficients, plan.weights(losses), rtol=1e-12, atol=1e-15)
    assert_allclose(coefficients.sum(), 1.0)
    step = 1e-6
    # the values carry a rounding error of about eps * eta * max(L) * max(L) (the
    # tilt's exponent times the losses it weighs); divided by the step
    rounding = 4e-16 * (1 + eta * losses.max()) * max(1.0, losses.max()) / step
    for mode in ("danskin", "through_weights"):
        _, coefficients = plan.objective(losses, mode)
        for i in rng.choice(losses.size, size=min(3, losses.size), replace=False):
            shift = np.zeros_like(losses)
            shift[i] = step
            plus, _ = plan.objective(losses + shift, mode)
            minus, _ = plan.objective(losses - shift, mode)
            assert_allclose(
                (plus - minus) / (2 * step),
                coefficients[i],
                rtol=1e-5,
                atol=1e-8 + rounding,
            )
    # the DRO value max_q sum q L - KL(q || w) / eta lies between the plain mean
    # (q = w) and the tilted mean (sum q* L at the maximiser q*)
    tilted_mean = float(plan.weights(losses) @ losses)
    tolerance = 1e-9 * max(1.0, losses.max())
    assert value <= tilted_mean + tolerance
    if not filtered:
        assert value >= sample_weight @ losses / sample_weight.sum() - tolerance


def _reference_weights(reweighting, losses, sample_weight, relevant, seed):
    """The documented weights, batch by batch, as a loop."""
    n_samples = losses.size
    base = sample_weight / sample_weight.sum()
    if not reweighting.filtered:
        relevant = np.ones(n_samples, dtype=bool)
    batch_size = reweighting.batch_size
    if batch_size is None or batch_size >= n_samples:
        batches = [np.arange(n_samples)]
    else:
        permutation = check_random_state(seed).permutation(n_samples)
        batches = np.array_split(permutation, -(-n_samples // batch_size))
    weights = np.zeros(n_samples)
    strength = reweighting.filter_strength
    for batch in batches:
        share = base[batch].sum()
        support = relevant[batch] & (base[batch] > 0)
        if share == 0 or not support.any():
            weights[batch] = base[batch]
            continue
        local = base[batch][support] / base[batch][support].sum()
        values = losses[batch][support]
        eta = _bounded_eta(values, np.log(local), reweighting.eta, reweighting.min_ess)
        tilt = np.zeros(batch.size)
        tilt[support] = local * np.exp(eta * (values - values.max()))
        tilt /= tilt.sum()
        if reweighting.filtered:
            weights[batch] = (base[batch] + share * strength * tilt) / (1 + strength)
        else:
            weights[batch] = share * tilt
    return weights / weights.sum()


@given(
    losses=st.lists(st.floats(0, 30), min_size=1, max_size=50),
    eta=st.floats(0, 50),
    batch_size=st.one_of(st.none(), st.integers(1, 15)),
    filtered=st.booleans(),
    min_ess=st.one_of(st.none(), st.floats(0.05, 1)),
    seed=st.integers(0, 2**16),
)
def test_plan_weights_are_the_documented_weights(
    losses, eta, batch_size, filtered, min_ess, seed
):
    losses = np.asarray(losses)
    rng = np.random.default_rng(seed)
    sample_weight = rng.uniform(0, 2, size=losses.size)
    sample_weight[rng.uniform(size=losses.size) < 0.2] = 0.0
    sample_weight[0] = 1.0
    relevant = rng.uniform(size=losses.size) < 0.5
    reweighting = AdversarialReweighting(
        eta, batch_size=batch_size, filtered=filtered, min_ess=min_ess
    )
    expected = _reference_weights(reweighting, losses, sample_weight, relevant, seed)
    got = reweighting.compute_weights(
        losses, sample_weight, relevant=relevant, random_state=seed
    )
    assert_allclose(got, expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("gradient", ["danskin", "through_weights"])
@pytest.mark.parametrize("batch_size", [None, 7])
def test_vanishing_eta_gives_the_plain_objective(gradient, batch_size):
    rng = np.random.default_rng(0)
    losses = rng.exponential(size=50)
    sample_weight = rng.uniform(0, 2, size=50)
    plain = sample_weight / sample_weight.sum()
    for eta in (0.0, 1e-12, 1e-8):
        plan = AdversarialReweighting(
            eta, batch_size=batch_size, min_ess=None, gradient=gradient
        )._plan(losses, sample_weight, None, 0)
        value, coefficients = plan.objective(losses, gradient)
        assert_allclose(value, plain @ losses, rtol=1e-7)
        assert_allclose(coefficients, plain, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("gradient", ["danskin", "through_weights"])
def test_weights_never_overflow(gradient):
    rng = np.random.default_rng(0)
    losses = np.concatenate([rng.exponential(size=40), [1e6, 1e6 + 1, 5e5]])
    for eta in (1e3, 1e6):
        plan = AdversarialReweighting(
            eta, batch_size=None, min_ess=None, gradient=gradient
        )._plan(losses, None, None, 0)
        weights = plan.weights(losses)
        value, coefficients = plan.objective(losses, gradient)
        assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
        assert_allclose(weights.sum(), 1.0)
        assert weights[-2] > 1 - 1e-12  # all the weight on the largest loss
        assert np.isfinite(value) and np.all(np.isfinite(coefficients))
        assert 1e6 <= value <= 1e6 + 1 + 1e-6


# ------------------------------------------------------------ the classifier
def _log_likelihood(model, X, y):
    proba = model.predict_proba(X)
    return float(np.mean(np.log(proba[np.arange(len(y)), y])))


def test_gradient_training_reaches_em_likelihood_and_recovers_the_mixture(
    linear_mixture,
):
    X, y, _, _ = linear_mixture
    X_test, y_test, _, posterior = sample_linear_mixture(5000, 1)
    params = {"n_experts": 3, "init": "pca", "random_state": 0}
    em = MixtureOfExpertsClassifier(
        LogisticRegression(C=10), tol=1e-5, max_iter=300, **params
    )
    joint = MixtureOfExpertsClassifier(
        LogisticRegression(C=10), solver="gradient", max_iter=1000, tol=1e-6, **params
    )
    em.fit(X, y)
    joint.fit(X, y)
    assert joint.converged_
    assert _log_likelihood(joint, X, y) >= _log_likelihood(em, X, y) - 1e-4
    # both recover the Bayes posterior about equally well
    em_error = np.abs(em.predict_proba(X_test)[:, 1] - posterior).mean()
    joint_error = np.abs(joint.predict_proba(X_test)[:, 1] - posterior).mean()
    assert joint_error < 0.05
    assert joint_error < em_error + 0.01
    assert len(joint.lower_bounds_) == joint.n_iter_
    assert_allclose(joint.lower_bound_, _log_likelihood(joint, X, y), rtol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fitted_objects_predict_the_trained_softmax(iris, n_classes):
    X, y = iris
    keep = y < n_classes
    X, y = X[keep], y[keep]
    moe = MixtureOfExpertsClassifier(
        n_experts=2, solver="gradient", max_iter=300, random_state=0
    ).fit(X, y)
    gate = np.column_stack([moe.gate_.coef_, moe.gate_.intercept_])
    experts = np.zeros((2, n_classes, X.shape[1] + 1))
    for k, expert in enumerate(moe.experts_):
        assert isinstance(expert, LogisticRegression)
        assert_allclose(expert.classes_, np.arange(n_classes))
        coef = np.column_stack([expert.coef_, expert.intercept_])
        experts[k, -coef.shape[0] :] = coef
    # the kernel's likelihood of every class is the fitted objects' probability
    for label in range(n_classes):
        labels = np.full(X.shape[0], label)
        losses = joint_losses(X, labels, gate, experts, np.empty(X.shape[0]))
        assert_allclose(np.exp(-losses), moe.predict_proba(X)[:, label], rtol=1e-12)
    assert isinstance(moe.gate_, SoftmaxGate)


def test_each_gradient_mode_minimises_its_own_objective(linear_mixture):
    # Danskin minimises the DRO value, through-weights sum q(theta) L(theta): each
    # fit is lower than the other two on its own objective (penalties are small)
    X, y, _, _ = linear_mixture
    X, y = X[:1000], y[:1000]
    params = {"n_experts": 3, "init": "pca", "random_state": 0, "max_iter": 600}
    fits = {"plain": MixtureOfExpertsClassifier(solver="gradient", **params).fit(X, y)}
    for gradient in ("danskin", "through_weights"):
        reweighting = AdversarialReweighting(
            3.0, batch_size=None, min_ess=None, warmup=0.2, gradient=gradient
        )
        tilted = MixtureOfExpertsClassifier(
            solver="gradient", reweighting=reweighting, **params
        ).fit(X, y)
        assert tilted.converged_
        assert len(tilted.effective_sample_sizes_) == tilted.n_iter_
        assert len(tilted.lower_bounds_) == tilted.n_iter_
        weights = tilted.adversarial_weights_
        assert_allclose(weights.sum(), 1.0)
        assert weights.max() > 2.0 / len(y)  # tilted towards the hard samples
        fits[gradient] = tilted
    reweighting = AdversarialReweighting(3.0, batch_size=None, min_ess=None)
    for gradient in ("danskin", "through_weights"):
        values = {}
        for name, model in fits.items():
            losses = -np.log(model.predict_proba(X)[np.arange(len(y)), y])
            plan = reweighting._plan(losses, None, None, 0, classes=y)
            values[name] = plan.objective(losses, gradient)[0]
        best = min(values, key=values.get)
        assert best == gradient, values


@pytest.mark.parametrize("reweighting", ["adversarial", "adversarial_filtered"])
def test_tilt_keeps_the_divergence_bound_and_records_it(iris, reweighting):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        n_experts=2,
        solver="gradient",
        reweighting=reweighting,
        max_iter=300,
        random_state=0,
    ).fit(X, y)
    sizes = moe.effective_sample_sizes_
    assert sizes.shape == (moe.n_iter_,)
    assert np.all((sizes >= 1) & (sizes <= X.shape[0] + 1e-9))
    # warm-up iterations are unweighted, the tilted ones bounded (min_ess=0.5 per
    # batch of 128, fixed at the start of each round; it may drift a little within)
    assert sizes[0] == pytest.approx(X.shape[0])
    assert sizes.min() > 0.4 * X.shape[0]
    weights = moe.adversarial_weights_
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    assert_allclose(weights.sum(), 1.0)


def test_huge_eta_gives_finite_weights_and_model(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        n_experts=2,
        solver="gradient",
        reweighting=AdversarialReweighting(1e3, min_ess=None, warmup=0.5),
        max_iter=100,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, y)
    assert np.all(np.isfinite(moe.adversarial_weights_))
    assert_allclose(moe.adversarial_weights_.sum(), 1.0)
    assert np.all(np.isfinite(moe.predict_proba(X)))
    assert np.all(np.isfinite(moe.lower_bounds_))


@pytest.mark.parametrize(
    "reweighting", [None, AdversarialReweighting(batch_size=None, warmup=0.3)]
)
def test_integer_sample_weight_equals_repeated_rows(iris, reweighting):
    X, y = iris
    counts = np.random.default_rng(0).integers(0, 3, size=X.shape[0])
    params = {
        "n_experts": 2,
        "solver": "gradient",
        "init": "pca",
        "tol": 1e-9,
        "max_iter": 2000,
        "random_state": 0,
        "reweighting": reweighting,
    }
    weighted = MixtureOfExpertsClassifier(**params).fit(X, y, sample_weight=counts)
    repeated = MixtureOfExpertsClassifier(**params).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-4)
    assert_allclose(weighted.lower_bound_, repeated.lower_bound_, atol=1e-6)


def test_grid_search_over_solver_and_reweighting(iris):
    X, y = iris
    search = GridSearchCV(
        MixtureOfExpertsClassifier(n_experts=2, max_iter=40, random_state=0),
        {
            "solver": ["em", "gradient"],
            "reweighting": [
                None,
                "adversarial",
                AdversarialReweighting(gradient="through_weights"),
            ],
        },
        cv=2,
        error_score="raise",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.cv_results_["mean_test_score"].min() > 0.8
    assert search.best_estimator_.solver in ("em", "gradient")


def test_pickle_clone_warm_start_and_calibration(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        n_experts=2,
        solver="gradient",
        reweighting=AdversarialReweighting(gradient="through_weights"),
        max_iter=300,
        random_state=0,
    )
    assert clone(moe).get_params()["reweighting"].gradient == "through_weights"
    moe.fit(X, y)
    restored = pickle.loads(pickle.dumps(moe))
    assert_allclose(restored.predict_proba(X), moe.predict_proba(X))
    # warm start continues from the fitted coefficients: a few iterations at most
    plain = MixtureOfExpertsClassifier(
        n_experts=2, solver="gradient", max_iter=500, random_state=0, warm_start=True
    ).fit(X, y)
    first = plain.n_iter_
    plain.fit(X, y)
    assert plain.n_iter_ < max(first // 4, 10)
    calibrated = MixtureOfExpertsClassifier(
        n_experts=2,
        solver="gradient",
        expert_calibration="temperature",
        max_iter=300,
        random_state=0,
    ).fit(X, y)
    assert len(calibrated.expert_calibrators_) == 2
    assert_allclose(calibrated.predict_proba(X).sum(axis=1), 1.0)


def test_user_estimators_are_not_mutated(iris):
    X, y = iris
    expert, gate = LogisticRegression(C=3.0), SoftmaxGate(C=2.0)
    params = (expert.get_params(), gate.get_params())
    MixtureOfExpertsClassifier(
        expert,
        gate=gate,
        n_experts=2,
        solver="gradient",
        max_iter=300,
        random_state=0,
    ).fit(X, y)
    assert (expert.get_params(), gate.get_params()) == params
    assert not hasattr(expert, "coef_") and not hasattr(gate, "coef_")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"routing": "hard"}, "routing='hard'"),
        ({"routing": "topk"}, "routing='topk'"),
        ({"expert": GaussianNB()}, "must be a LogisticRegression"),
        (
            {"expert": [LogisticRegression(), GaussianNB()]},
            r"expert\[1\] must be a LogisticRegression",
        ),
        ({"expert": LogisticRegression(l1_ratio=1.0, solver="saga")}, "l1_ratio=1.0"),
        ({"expert": LogisticRegression(class_weight="balanced")}, "class_weight"),
        ({"gate": LogisticRegression()}, "gate must be None or a SoftmaxGate"),
        ({"reweighting": "group_dro"}, "group_dro"),
        ({"reweighting": GroupDRO()}, "GroupDRO"),
    ],
)
def test_clear_errors(iris, params, message):
    X, y = iris
    moe = MixtureOfExpertsClassifier(solver="gradient", **params)
    with pytest.raises(ValueError, match=message):
        moe.fit(X, y)


def test_l1_penalty_is_an_error(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # penalty is deprecated
        expert = LogisticRegression(penalty="l1", solver="liblinear")
    moe = MixtureOfExpertsClassifier(expert, solver="gradient")
    with pytest.raises(ValueError, match="penalty='l1'"):
        moe.fit(X, y)


def test_verbose_reports_each_phase(iris, capsys):
    X, y = iris
    MixtureOfExpertsClassifier(
        n_experts=2,
        solver="gradient",
        reweighting="adversarial",
        max_iter=300,
        random_state=0,
        verbose=1,
    ).fit(X, y)
    out = capsys.readouterr().out
    assert "plain phase" in out and "tilted phase" in out


@pytest.mark.parametrize("gradient", ["danskin", "through_weights"])
def test_zero_eta_trains_the_plain_objective(iris, gradient):
    # eta = 0 leaves the data weights: the tilted phase minimises the plain objective
    X, y = iris
    params = {
        "n_experts": 2,
        "solver": "gradient",
        "init": "pca",
        "tol": 1e-8,
        "max_iter": 2000,
        "random_state": 0,
    }
    plain = MixtureOfExpertsClassifier(**params).fit(X, y)
    tilted = MixtureOfExpertsClassifier(
        reweighting=AdversarialReweighting(0.0, warmup=0.1, gradient=gradient),
        **params,
    ).fit(X, y)
    assert_allclose(tilted.predict_proba(X), plain.predict_proba(X), atol=1e-4)
    assert_allclose(tilted.adversarial_weights_, 1.0 / X.shape[0])
    assert_allclose(tilted.effective_sample_sizes_, X.shape[0])
