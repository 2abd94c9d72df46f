"""Group DRO: the adversary's weights, and the mixtures trained on them."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils._param_validation import InvalidParameterError

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.reweighting import GroupDRO


# ------------------------------------------------------------------ the weights
@given(
    n_samples=st.integers(1, 60),
    n_groups=st.integers(1, 5),
    step_size=st.floats(0, 1e4),
    seed=st.integers(0, 2**16),
)
def test_weights_are_distributions_that_give_each_group_its_share(
    n_samples, n_groups, step_size, seed
):
    rng = np.random.default_rng(seed)
    losses = rng.uniform(0, 50, size=n_samples)
    groups = rng.integers(0, n_groups, size=n_samples)
    sample_weight = rng.uniform(0, 2, size=n_samples)
    sample_weight[0] = 1.0
    group_weights = rng.dirichlet(np.ones(np.unique(groups).size))
    weights, new = GroupDRO(step_size).compute_weights(
        losses, groups, sample_weight, group_weights=group_weights
    )
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    assert_allclose(weights.sum(), 1.0)
    assert np.all(np.isfinite(new)) and np.all(new >= 0)
    assert_allclose(new.sum(), 1.0)
    # each group holds exactly its weight, spread in proportion to sample_weight
    labels, encoded = np.unique(groups, return_inverse=True)
    assert_allclose(np.bincount(encoded, weights=weights), new, atol=1e-12)
    for g in range(labels.size):
        inside = encoded == g
        assert_allclose(
            weights[inside] * sample_weight[inside].sum(),
            new[g] * sample_weight[inside],
            atol=1e-12,
        )


def test_step_is_exponentiated_gradient_on_the_group_mean_losses():
    losses = np.array([0.1, 0.3, 1.0, 2.0, 0.5])
    groups = np.array(["b", "b", "a", "a", "c"])
    sample_weight = np.array([1.0, 3.0, 2.0, 2.0, 1.0])
    prior = np.array([0.2, 0.5, 0.3])  # groups a, b, c
    group_losses = np.array([1.5, (0.1 + 0.9) / 4, 0.5])
    expected = prior * np.exp(0.7 * group_losses)
    expected /= expected.sum()
    weights, group_weights = GroupDRO(0.7).compute_weights(
        losses, groups, sample_weight, group_weights=prior
    )
    assert_allclose(group_weights, expected)
    assert_allclose(weights[[2, 3]], expected[0] / 2)
    assert_allclose(weights[[0, 1]], expected[1] * np.array([0.25, 0.75]))
    # two steps of a constant loss are one step of twice the size
    _, once = GroupDRO(1.4).compute_weights(losses, groups, sample_weight)
    _, first = GroupDRO(0.7).compute_weights(losses, groups, sample_weight)
    _, twice = GroupDRO(0.7).compute_weights(
        losses, groups, sample_weight, group_weights=first
    )
    assert_allclose(twice, once)


def test_zero_step_gives_equal_group_weights_not_the_data_proportions():
    groups = np.array([0, 0, 0, 1])
    weights, group_weights = GroupDRO(0.0).compute_weights(
        np.array([5.0, 5.0, 5.0, 0.0]), groups
    )
    assert_allclose(group_weights, [0.5, 0.5])
    assert_allclose(weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2])


def test_weights_never_overflow_and_concentrate_on_the_worst_group():
    losses = np.array([1e300, 1e300, 0.0, 1.0])
    groups = np.array([0, 0, 1, 2])
    weights, group_weights = GroupDRO(1e10).compute_weights(losses, groups)
    assert np.all(np.isfinite(weights))
    assert_allclose(group_weights, [1.0, 0.0, 0.0])
    assert_allclose(weights, [0.5, 0.5, 0.0, 0.0])


def test_a_group_without_weight_gets_none():
    weights, group_weights = GroupDRO(1.0).compute_weights(
        np.array([1.0, 9.0, 2.0]), np.array([0, 1, 2]), np.array([1.0, 0.0, 1.0])
    )
    assert group_weights[1] == 0.0 and weights[1] == 0.0
    assert_allclose(weights.sum(), 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"losses": [1.0, np.nan], "groups": [0, 1]}, "losses"),
        ({"losses": [1.0, 2.0], "groups": [0]}, "groups must have the shape"),
        (
            {"losses": [1.0, 2.0], "groups": [0, 1], "sample_weight": [1.0, -1.0]},
            "sample_weight",
        ),
        (
            {"losses": [1.0, 2.0], "groups": [0, 1], "sample_weight": [0.0, 0.0]},
            "sample_weight must not sum to zero",
        ),
        (
            {"losses": [1.0, 2.0], "groups": [0, 1], "group_weights": [1.0]},
            "group_weights",
        ),
    ],
)
def test_bad_input_names_itself(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GroupDRO().compute_weights(**kwargs)


@pytest.mark.parametrize(
    "params, match", [({"step_size": -1.0}, "step_size"), ({"warmup": 2.0}, "warmup")]
)
def test_bad_parameters_name_themselves(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        GroupDRO(**params).compute_weights([1.0], [0])


# ------------------------------------------------------------------ the mixture
def _conflicting_groups(n_samples=2000, seed=0):
    """A 10% group whose label depends on x0 the other way round from the rest's."""
    rng = np.random.default_rng(seed)
    groups = (rng.random(n_samples) < 0.1).astype(int)
    X = rng.normal(size=(n_samples, 2))
    X[:, 1] += 1.5 * groups
    logit = np.where(groups == 0, 3 * X[:, 0], -3 * X[:, 0] + 1.0)
    y = (rng.random(n_samples) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, groups


def _group_losses(model, X, y, groups):
    proba = model.predict_proba(X)
    return np.array(
        [log_loss(y[groups == g], proba[groups == g], labels=[0, 1]) for g in (0, 1)]
    )


@pytest.mark.parametrize("n_experts", [1, 2])
def test_group_dro_lowers_the_worst_group_loss(n_experts):
    X, y, groups = _conflicting_groups()
    params = dict(n_experts=n_experts, random_state=0, max_iter=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MixtureOfExpertsClassifier(**params).fit(X, y)
        robust = MixtureOfExpertsClassifier(reweighting="group_dro", **params).fit(
            X, y, groups=groups
        )
    plain_losses = _group_losses(plain, X, y, groups)
    robust_losses = _group_losses(robust, X, y, groups)
    # measured: worst group 1.47 -> 0.71 (one expert), 1.00 -> 0.57 (two)
    assert robust_losses.max() < 0.8 * plain_losses.max()
    # the price is paid by the majority group
    assert robust_losses[0] > plain_losses[0]
    # the adversary moved weight to the minority group far beyond its 10%
    assert robust.group_weights_.shape == (2,)
    assert_allclose(robust.group_weights_.sum(), 1.0)
    assert robust.group_weights_[1] > 0.3
    assert_allclose(robust.adversarial_weights_.sum(), 1.0)
    assert_allclose(
        np.bincount(groups, weights=robust.adversarial_weights_),
        robust.group_weights_,
    )
    assert robust.effective_sample_sizes_.shape == (robust.n_iter_,)


def test_groups_are_ignored_without_group_dro():
    X, y, groups = _conflicting_groups(400)
    params = dict(n_experts=2, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        without = MixtureOfExpertsClassifier(**params).fit(X, y)
        with_groups = MixtureOfExpertsClassifier(**params).fit(X, y, groups=groups)
    assert_array_equal(without.predict_proba(X), with_groups.predict_proba(X))
    assert not hasattr(with_groups, "group_weights_")


def test_group_labels_may_be_strings_and_are_not_mutated():
    X, y, groups = _conflicting_groups(400)
    names = np.where(groups == 1, "minority", "majority").astype(object)
    copy = names.copy()
    params = dict(n_experts=2, random_state=0, max_iter=20, reweighting="group_dro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        by_name = MixtureOfExpertsClassifier(**params).fit(X, y, groups=names)
        by_code = MixtureOfExpertsClassifier(**params).fit(X, y, groups=groups)
    assert_array_equal(names, copy)
    assert_allclose(by_name.predict_proba(X), by_code.predict_proba(X))
    # np.unique order: "majority" < "minority", as 0 < 1
    assert_allclose(by_name.group_weights_, by_code.group_weights_)


def test_integer_weights_equal_repeated_rows():
    X, y, groups = _conflicting_groups(300)
    counts = np.random.default_rng(1).integers(0, 3, size=y.size)
    params = dict(
        n_experts=2, init="pca", random_state=0, max_iter=15, reweighting="group_dro"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MixtureOfExpertsClassifier(**params).fit(
            X, y, sample_weight=counts, groups=groups
        )
        rows = np.repeat(np.arange(y.size), counts)
        repeated = MixtureOfExpertsClassifier(**params).fit(
            X[rows], y[rows], groups=groups[rows]
        )
    assert_allclose(weighted.group_weights_, repeated.group_weights_, rtol=1e-5)
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize(
    "groups, error, match",
    [
        (None, ValueError, "needs the group of every sample"),
        (np.zeros(5), ValueError, "inconsistent numbers of samples"),
        (np.zeros((400, 2)), ValueError, "groups must be 1-D"),
        (np.full(400, np.nan), ValueError, "groups contains NaN"),
    ],
)
def test_bad_groups_name_the_parameter(groups, error, match):
    X, y, _ = _conflicting_groups(400)
    with pytest.raises(error, match=match):
        MixtureOfExpertsClassifier(reweighting="group_dro").fit(X, y, groups=groups)


def test_regressor_group_dro():
    rng = np.random.default_rng(0)
    groups = (rng.random(600) < 0.15).astype(int)
    X = rng.normal(size=(600, 1))
    y = np.where(groups == 0, 2 * X[:, 0], -2 * X[:, 0]) + 0.1 * rng.normal(size=600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MixtureOfExpertsRegressor(n_experts=1, random_state=0).fit(X, y)
        robust = MixtureOfExpertsRegressor(
            n_experts=1, reweighting="group_dro", random_state=0
        ).fit(X, y, groups=groups)
    errors = [
        [np.mean((m.predict(X[groups == g]) - y[groups == g]) ** 2) for g in (0, 1)]
        for m in (plain, robust)
    ]
    assert max(errors[1]) < max(errors[0])
    assert robust.group_weights_[1] > 0.15


def test_object_is_cloned_and_pickles():
    X, y, groups = _conflicting_groups(300)
    dro = GroupDRO(step_size=0.5, warmup=0.2)
    model = MixtureOfExpertsClassifier(n_experts=2, reweighting=dro, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, groups=groups)
    assert model.reweighting is dro and dro.get_params()["step_size"] == 0.5
    restored = pickle.loads(pickle.dumps(model))
    assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


def test_grid_search_routes_groups_to_fit_and_to_the_splitter():
    X, y, groups = _conflicting_groups(600)
    with sklearn.config_context(enable_metadata_routing=True):
        model = MixtureOfExpertsClassifier(
            n_experts=2, max_iter=15, random_state=0
        ).set_fit_request(groups=True)
        search = GridSearchCV(
            model,
            {"reweighting": [None, "group_dro"]},
            cv=GroupKFold(n_splits=2),
            scoring="neg_log_loss",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y, groups=groups)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert hasattr(search.best_estimator_, "classes_")


def test_groups_for_a_splitter_need_no_request_on_the_mixture():
    # groups is not requested by default: routing it to LeaveOneDomainOut alone
    # works as with any estimator whose fit takes no groups
    from sklearn.model_selection import cross_val_score

    from skmoe.model_selection import LeaveOneDomainOut

    X, y, groups = _conflicting_groups(300)
    domains = np.arange(y.size) % 3
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores = cross_val_score(
                MixtureOfExpertsClassifier(max_iter=5, random_state=0),
                X,
                y,
                cv=LeaveOneDomainOut(),
                params={"groups": domains},
            )
    assert scores.shape == (3,)
