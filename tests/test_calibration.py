"""Expert calibration: the calibration maps, the cross-fitting, the estimator switch."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils._param_validation import InvalidParameterError

from skmoe import MixtureOfExpertsClassifier
from skmoe.calibration import ProbabilityCalibrator
from skmoe.metrics import expected_calibration_error

METHODS = ["temperature", "sigmoid", "isotonic"]


def _two_region_data(n_samples, seed):
    """Labels follow feature 1 where feature 0 > 0 and feature 2 elsewhere, noisily."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 4))
    logit = np.where(X[:, 0] > 0, 2 * X[:, 1], -2 * X[:, 2])
    y = (rng.uniform(size=n_samples) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def two_regions():
    return _two_region_data(2000, 0), _two_region_data(3000, 1)


# ------------------------------------------------------------ calibration maps
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibrator_returns_distributions_and_reduces_log_loss(method, n_classes):
    rng = np.random.default_rng(0)
    true_proba = rng.dirichlet(np.ones(n_classes), size=3000)
    y = np.array([rng.choice(n_classes, p=row) for row in true_proba])
    overconfident = true_proba**3
    overconfident /= overconfident.sum(axis=1, keepdims=True)
    calibrator = ProbabilityCalibrator(method=method).fit(overconfident, y)
    calibrated = calibrator.predict(overconfident)
    assert calibrated.shape == overconfident.shape
    assert np.all(calibrated >= 0)
    assert_allclose(calibrated.sum(axis=1), 1.0)
    before = expected_calibration_error(y, overconfident)
    after = expected_calibration_error(y, calibrated)
    assert after < before / 2
    if method == "temperature":
        assert calibrator.temperature_ > 1.5  # overconfident: softened


def test_temperature_uses_sample_weight():
    rng = np.random.default_rng(0)
    proba_1 = rng.uniform(0.05, 0.95, size=4000)
    y = (rng.uniform(size=4000) < proba_1).astype(int)
    proba = np.column_stack([1 - proba_1, proba_1])
    # the first half is relabelled at random: zero weight there must ignore it
    y[:2000] = rng.integers(0, 2, size=2000)
    weights = np.r_[np.zeros(2000), np.ones(2000)]
    weighted = ProbabilityCalibrator().fit(proba, y, sample_weight=weights)
    second_half = ProbabilityCalibrator().fit(proba[2000:], y[2000:])
    assert_allclose(weighted.temperature_, second_half.temperature_, rtol=1e-6)
    assert ProbabilityCalibrator().fit(proba, y).temperature_ > 1.5


def test_calibrator_bad_input():
    with pytest.raises(InvalidParameterError, match="method"):
        ProbabilityCalibrator(method="beta").fit(np.full((4, 2), 0.5), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="column indices"):
        ProbabilityCalibrator().fit(np.full((2, 2), 0.5), [0, 2])


# --------------------------------------------------------- the estimator switch
def _per_expert_ece(moe, X, y):
    """Every expert's ECE on its region: the samples it is the top expert for."""
    top = np.argmax(moe.predict_gate_proba(X), axis=1)
    expert_proba = moe.predict_expert_proba(X)
    return np.array(
        [
            expected_calibration_error(y[top == k], expert_proba[top == k, k])
            for k in range(expert_proba.shape[1])
        ]
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("routing", ["hard", "soft"])
@pytest.mark.parametrize("method", METHODS)
def test_each_expert_is_calibrated_on_its_routed_view(two_regions, routing, method):
    """Overconfident trees: every expert's ECE on its held-out routed view drops."""
    (X, y), (X_test, y_test) = two_regions
    params = dict(
        expert=DecisionTreeClassifier(min_samples_leaf=5),
        n_experts=2,
        routing=routing,
        max_iter=15,
        random_state=0,
    )
    raw = MixtureOfExpertsClassifier(**params).fit(X, y)
    calibrated = MixtureOfExpertsClassifier(**params, expert_calibration=method)
    calibrated.fit(X, y)
    # the same EM: calibration only adds maps on top of the same experts
    assert_array_equal(
        raw.predict_gate_proba(X_test), calibrated.predict_gate_proba(X_test)
    )
    before = _per_expert_ece(raw, X_test, y_test)
    after = _per_expert_ece(calibrated, X_test, y_test)
    assert np.all(before > 0.12), before
    assert np.all(after < 0.07), (before, after)
    assert expected_calibration_error(
        y_test, calibrated.predict_proba(X_test)
    ) < expected_calibration_error(y_test, raw.predict_proba(X_test))


def test_fitted_attributes_and_raw_experts(two_regions):
    (X, y), (X_test, _) = two_regions
    moe = MixtureOfExpertsClassifier(
        n_experts=3, routing="hard", expert_calibration="temperature", random_state=0
    ).fit(X, y)
    assert len(moe.expert_calibrators_) == 3
    for k, (expert, calibrator) in enumerate(
        zip(moe.experts_, moe.expert_calibrators_, strict=True)
    ):
        assert isinstance(calibrator, ProbabilityCalibrator)
        raw = expert.predict_proba(X_test)
        assert_allclose(moe.predict_expert_proba(X_test)[:, k], calibrator.predict(raw))
    expected = np.einsum(
        "nk,nkc->nc", moe.predict_gate_proba(X_test), moe.predict_expert_proba(X_test)
    )
    assert_allclose(moe.predict_proba(X_test), expected, atol=1e-12)
    # refitting without calibration leaves no stale maps behind
    moe.set_params(expert_calibration=None).fit(X, y)
    assert not hasattr(moe, "expert_calibrators_")


class MemorizingClassifier(ClassifierMixin, BaseEstimator):
    """Certain of the label of every sample it was fitted on (by the id in column 0),
    uniform on any other sample: in-sample predictions give themselves away."""

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.unique(y)
        self.memory_ = dict(zip(X[:, 0].tolist(), y.tolist(), strict=True))
        return self

    def predict_proba(self, X):
        proba = np.full((X.shape[0], self.classes_.shape[0]), 1 / self.classes_.size)
        for row, sample_id in enumerate(X[:, 0].tolist()):
            if sample_id in self.memory_:
                proba[row] = self.classes_ == self.memory_[sample_id]
        return proba


@pytest.mark.parametrize("routing", ["hard", "soft"])
def test_calibrators_never_see_in_sample_predictions(monkeypatch, routing):
    rng = np.random.default_rng(0)
    n_samples = 300
    X = np.column_stack([np.arange(n_samples) + 0.5, rng.normal(size=(n_samples, 2))])
    y = rng.integers(0, 3, size=n_samples)
    seen = []
    original_fit = ProbabilityCalibrator.fit

    def spy_fit(self, proba, y, sample_weight=None):
        seen.append(np.asarray(proba))
        return original_fit(self, proba, y, sample_weight)

    monkeypatch.setattr(ProbabilityCalibrator, "fit", spy_fit)
    moe = MixtureOfExpertsClassifier(
        MemorizingClassifier(),
        n_experts=2,
        routing=routing,
        max_iter=3,
        expert_calibration="isotonic",
        random_state=0,
    ).fit(X, y)
    assert len(seen) == 2
    for proba in seen:
        # a clone that had seen the sample would be certain; out of fold it is not
        assert_allclose(proba, 1 / 3)
    # the final experts did see all their data: in-sample they are certain
    assert np.any(moe.experts_[0].predict_proba(X).max(axis=1) == 1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_over_the_switches():
    X, y = _two_region_data(400, 0)
    search = GridSearchCV(
        MixtureOfExpertsClassifier(max_iter=10, random_state=0),
        param_grid={
            "expert_calibration": [None, "temperature"],
            "reweighting": [None, "adversarial"],
        },
        cv=3,
        scoring="neg_log_loss",
        error_score="raise",
    ).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert len(search.cv_results_["params"]) == 4


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("method", METHODS)
def test_clone_and_pickle(two_regions, method):
    (X, y), (X_test, _) = two_regions
    moe = MixtureOfExpertsClassifier(
        expert_calibration=method, reweighting="adversarial", max_iter=8, random_state=0
    )
    assert clone(moe).get_params() == moe.get_params()
    moe.fit(X[:500], y[:500])
    restored = pickle.loads(pickle.dumps(moe))
    assert_allclose(restored.predict_proba(X_test), moe.predict_proba(X_test))


def test_bad_expert_calibration_names_the_parameter():
    X, y = _two_region_data(50, 0)
    with pytest.raises(InvalidParameterError, match="expert_calibration.*'platt'"):
        MixtureOfExpertsClassifier(expert_calibration="platt").fit(X, y)


def test_temperature_is_not_driven_by_zero_probabilities():
    """An expert that never saw a class gives it probability zero; one sample of that
    class must not push the temperature to its bound (logits clipped at eps)."""
    rng = np.random.default_rng(0)
    proba_1 = rng.uniform(0.1, 0.9, size=1000)
    y = (rng.uniform(size=1000) < proba_1).astype(int)
    proba = np.column_stack([1 - proba_1, proba_1, np.zeros(1000)])
    proba[0] = [0.5, 0.5, 0.0]
    y[0] = 2
    temperature = ProbabilityCalibrator().fit(proba, y).temperature_
    assert 0.5 < temperature < 3


def _three_bands(n_samples, seed):
    """Classes {0}, {1} and {2, 3} in three bands of feature 0: experts of one band
    never see the classes of the others."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 2))
    y = np.select([X[:, 0] < -0.5, X[:, 0] < 0.5], [0, 1], 2)
    y[X[:, 0] > 0.5] += X[X[:, 0] > 0.5, 1] > 0
    return X, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("routing", ["soft", "topk"])
def test_soft_routing_maps_do_not_break_the_mixture(routing):
    """Maps fitted on every sample weighted by the gate took the temperature of an
    expert to 27 (the samples of classes it never saw) and the ECE from 0.14 to 0.36,
    and isotonic maps cost 13 points of accuracy. On the regions they help under
    soft routing; under top-k routing they no longer break the mixture."""
    (X, y), (X_test, y_test) = _three_bands(600, 0), _three_bands(3000, 1)
    params = dict(n_experts=3, routing=routing, random_state=0)
    raw = MixtureOfExpertsClassifier(**params).fit(X, y)
    raw_ece = expected_calibration_error(y_test, raw.predict_proba(X_test))
    raw_accuracy = raw.score(X_test, y_test)
    for method in METHODS:
        model = MixtureOfExpertsClassifier(**params, expert_calibration=method)
        model.fit(X, y)
        ece = expected_calibration_error(y_test, model.predict_proba(X_test))
        # top-k: a map can still cost a little (temperature: 0.134 -> 0.148 here)
        assert ece < raw_ece + (0.0 if routing == "soft" else 0.03), (method, ece)
        assert model.score(X_test, y_test) > raw_accuracy - 0.01, method
        if method == "temperature":
            temperatures = [c.temperature_ for c in model.expert_calibrators_ if c]
            assert max(temperatures) < 2.0, temperatures


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_isotonic_maps_give_no_class_probability_zero():
    (X, y), (X_test, y_test) = _three_bands(600, 0), _three_bands(3000, 1)
    model = MixtureOfExpertsClassifier(
        n_experts=3, routing="hard", expert_calibration="isotonic", random_state=0
    ).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.min() > 0
    assert np.isfinite(np.log(proba[np.arange(y_test.size), y_test])).all()
    # the bound is the rule of succession on the map's effective sample size
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=(200, 2))
    scores /= scores.sum(axis=1, keepdims=True)
    labels = (scores[:, 1] > 0.5).astype(int)  # separable: isotonic reaches 0 and 1
    calibrated = ProbabilityCalibrator(method="isotonic").fit(scores, labels)
    assert_allclose(calibrated.predict(scores).min(), 1 / 202)
