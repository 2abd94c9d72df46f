"""warm_start: a second fit continues from the fitted state under the current
parameters, and refuses, naming the parameter, a change that state cannot follow."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge
from sklearn.tree import DecisionTreeClassifier

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.gating import SoftmaxGate


@pytest.fixture(scope="module")
def xor_data():
    """The audit's data: the label is a threshold on column 1 or 2, by the sign of
    column 0, so that two weak experts fit it badly and four strong ones well."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = np.where(X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0).astype(int)
    y_reg = np.where(X[:, 0] > 0, 2 * X[:, 1], -X[:, 2])
    return X, y, y_reg


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # four experts on data that needs fewer leave one nearly empty
        warnings.filterwarnings("ignore", "Expert.* carry less than", UserWarning)
        return model.fit(X, y)


def _classifier(**params):
    defaults = {
        "expert": LogisticRegression(C=1e-3),
        "n_experts": 2,
        "warm_start": True,
        "random_state": 0,
    }
    return MixtureOfExpertsClassifier(**{**defaults, **params})


def _regressor(**params):
    defaults = {
        "expert": Ridge(alpha=1000.0),
        "n_experts": 2,
        "warm_start": True,
        "random_state": 0,
    }
    return MixtureOfExpertsRegressor(**{**defaults, **params})


def _model_and_target(kind, xor_data, **params):
    X, y, y_reg = xor_data
    if kind == "classifier":
        return _classifier(**params), X, y
    return _regressor(**params), X, y_reg


def _prediction(model, X):
    if isinstance(model, MixtureOfExpertsClassifier):
        return model.predict_proba(X)
    return model.predict(X)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_changed_n_experts_is_refused_and_the_fit_kept(kind, xor_data):
    """The audit's reproducer: set_params(n_experts=4, expert__C=100.0) and a warm
    fit kept the two old experts with C=0.001, silently."""
    model, X, y = _model_and_target(kind, xor_data)
    _fit(model, X, y)
    before = _prediction(model, X)
    experts = model.experts_
    change = {"expert__C": 100.0} if kind == "classifier" else {"expert__alpha": 1e-3}
    model.set_params(n_experts=4, **change)
    message = (
        "warm_start=True continues the previous fit, but n_experts changed from 2 to "
        "4. Set warm_start=False"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X, y)
    # nothing of the previous fit was lost on the way to the error
    assert model.experts_ is experts
    assert_allclose(_prediction(model, X), before)
    # and without warm_start the new parameters fit afresh
    _fit(model.set_params(warm_start=False), X, y)
    assert len(model.experts_) == 4
    assert model.predict_gate_proba(X[:1]).shape == (1, 4)


@pytest.mark.parametrize("solver", ["em", "gradient", "adam"])
def test_changed_expert_and_gate_parameters_apply(solver, xor_data):
    X, y, _ = xor_data
    model = _classifier(n_experts=4, gate=SoftmaxGate(C=1e-4), solver=solver)
    _fit(model, X, y)
    # C=1e-3 shrinks the experts towards constants
    shrunk = max(np.abs(expert.coef_).max() for expert in model.experts_)
    model.set_params(expert__C=100.0, gate__C=10.0)
    _fit(model, X, y)
    assert [expert.C for expert in model.experts_] == [100.0] * 4
    assert model.gate_.C == 10.0
    # the new C is the one fitted with, not only the one displayed
    assert max(np.abs(expert.coef_).max() for expert in model.experts_) > 5 * shrunk


def test_changed_regressor_expert_parameters_apply(xor_data):
    X, _, y = xor_data
    model = _fit(_regressor(), X, y)
    shrunk = max(np.abs(expert.coef_).max() for expert in model.experts_)
    model.set_params(expert__alpha=1e-3)
    _fit(model, X, y)
    assert [expert.alpha for expert in model.experts_] == [1e-3, 1e-3]
    assert max(np.abs(expert.coef_).max() for expert in model.experts_) > 5 * shrunk


def test_unchanged_regressor_continues_where_it_stopped(xor_data):
    """Two warm fits of 3 iterations are one fit of 6, as for the classifier
    (tests/test_classifier.py::test_warm_start_continues_em)."""
    X, _, y = xor_data
    model = _regressor(expert=Ridge(), max_iter=3, tol=0)  # Ridge: no warm_start
    _fit(model, X, y)
    first = model.lower_bound_
    experts, gate = model.experts_, model.gate_
    _fit(model, X, y)
    assert model.lower_bound_ >= first - 1e-9
    assert model.gate_ is gate  # refitted from its solution
    assert all(new is not old for new, old in zip(model.experts_, experts, strict=True))
    cold = _fit(clone(model).set_params(warm_start=False, max_iter=6), X, y)
    assert_allclose(model.lower_bound_, cold.lower_bound_, rtol=1e-6)
    assert_allclose(model.predict(X), cold.predict(X), atol=1e-5)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_other_columns_are_refused_naming_n_features_in(kind, xor_data):
    """Before, the reused expert answered: 'X has 3 features, but
    LogisticRegression is expecting 4 features as input.'"""
    model, X, y = _model_and_target(kind, xor_data)
    _fit(model, X, y)
    before = _prediction(model, X)
    message = (
        "warm_start=True continues the previous fit, which had n_features_in_=4; X "
        "has 3 features."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X[:, :3], y)
    assert model.n_features_in_ == 4
    assert_allclose(_prediction(model, X), before)


def test_other_classes_are_refused(xor_data):
    X, y, _ = xor_data
    model = _fit(_classifier(), X, y)
    message = (
        "whose classes_ are [0, 1]; y has the classes [5, 6]. Set warm_start=False"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X, y + 5)
    assert model.classes_.tolist() == [0, 1]


@pytest.mark.parametrize(
    "kind, params, change, message",
    [
        (
            "classifier",
            {},
            {"expert": DecisionTreeClassifier(max_depth=2)},
            "the experts' classes changed from [LogisticRegression, "
            "LogisticRegression] to [DecisionTreeClassifier, DecisionTreeClassifier]",
        ),
        (
            "classifier",
            {"gate_features": [0]},
            {"gate_features": [1]},
            "the gate's columns (gate_features) changed from [0] to [1]",
        ),
        (
            "classifier",
            {"solver": "adam", "hidden_layer_sizes": 4, "max_iter": 3},
            {"hidden_layer_sizes": 8},
            "the hidden layer (hidden_layer_sizes under solver='adam') changed from "
            "4 units to 8 units",
        ),
        (
            "classifier",
            {"solver": "adam", "hidden_layer_sizes": 4, "max_iter": 3},
            {"solver": "em"},
            "the hidden layer (hidden_layer_sizes under solver='adam') changed from "
            "4 units to none",
        ),
        (
            "regressor",
            {"expert": Ridge()},
            {"likelihood": "poisson"},
            "the likelihood changed from 'gaussian' to 'poisson'",
        ),
    ],
    ids=["expert-class", "gate-features", "hidden-layer", "solver", "likelihood"],
)
def test_other_structure_is_refused(kind, params, change, message, xor_data):
    model, X, y = _model_and_target(kind, xor_data, **params)
    if kind == "regressor":
        y = np.abs(y) + 1.0  # positive, for the Poisson likelihood
    _fit(model, X, y)
    experts = model.experts_
    model.set_params(**change)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X, y)
    assert model.experts_ is experts
    _fit(model.set_params(warm_start=False), X, y)  # the same change fits afresh


def test_regressor_expert_family_change_is_refused(xor_data):
    X, _, y = xor_data
    y = np.abs(y) + 1.0
    model = _fit(_regressor(expert=Ridge()), X, y)
    model.set_params(expert=PoissonRegressor())
    with pytest.raises(ValueError, match=r"the experts' classes changed from"):
        model.fit(X, y)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_warm_fits_leave_the_users_estimators_alone(kind, xor_data):
    model, X, y = _model_and_target(kind, xor_data, gate=SoftmaxGate(C=0.5))
    _fit(model, X, y)
    change = {"expert__C": 100.0} if kind == "classifier" else {"expert__alpha": 1e-3}
    # set_params writes into the user's objects, as in scikit-learn; fit must not
    model.set_params(gate__C=2.0, **change)
    expert, gate = model.expert, model.gate
    params = (expert.get_params(), gate.get_params())
    for _ in range(2):
        _fit(model, X, y)
    assert (expert.get_params(), gate.get_params()) == params
    assert not hasattr(expert, "coef_") and not hasattr(gate, "coef_")
    assert all(fitted is not expert for fitted in model.experts_)
    assert model.gate_ is not gate


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("after_fit", [False, True], ids=["partial_fit", "fit"])
def test_partial_fit_refuses_a_changed_layout_and_keeps_what_it_learnt(
    kind, after_fit, xor_data
):
    """partial_fit used to start afresh, silently, when n_experts or the hidden
    layer changed between calls: all it had learnt was lost."""
    X, y, y_reg = xor_data
    target = y if kind == "classifier" else y_reg
    estimator = (
        MixtureOfExpertsClassifier
        if kind == "classifier"
        else MixtureOfExpertsRegressor
    )(n_experts=2, solver="adam", batch_size=64, max_iter=3, random_state=0)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if after_fit:
            estimator.fit(X, target)
        else:
            estimator.partial_fit(X, target, **extra)
    before = estimator.predict(X)
    for change in ({"n_experts": 3}, {"hidden_layer_sizes": (4,)}):
        estimator.set_params(**change)
        with pytest.raises(ValueError, match="partial_fit continues the previous fit"):
            estimator.partial_fit(X, target)
        assert_allclose(estimator.predict(X), before)
        estimator.set_params(n_experts=2, hidden_layer_sizes=None)
    estimator.partial_fit(X, target)  # unchanged: continues
