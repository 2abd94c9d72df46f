"""The calibration scorers inside scikit-learn's model selection tools."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.naive_bayes import GaussianNB

from skmoe.metrics import (
    expected_calibration_error,
    get_scorer,
    get_scorer_names,
    neg_expected_calibration_error_scorer,
    worst_group_calibration_error,
)

SKMOE_SCORERS = [
    "neg_expected_calibration_error",
    "neg_maximum_calibration_error",
    "neg_root_mean_squared_calibration_error",
    "neg_classwise_calibration_error",
    "neg_adaptive_calibration_error",
    "neg_debiased_calibration_error",
    "neg_smooth_calibration_error",
]


@pytest.fixture(scope="module")
def multiclass_data():
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X, y


@pytest.mark.parametrize("name", SKMOE_SCORERS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_scorer_is_the_negated_metric_on_predict_proba(name, n_classes):
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3,
                               n_classes=n_classes, random_state=1)
    model = GaussianNB().fit(X, y)
    scorer = get_scorer(name)
    proba = model.predict_proba(X)
    metric = scorer._score_func
    expected = -metric(y, proba[:, 1] if n_classes == 2 else proba)
    assert scorer(model, X, y) == pytest.approx(expected, abs=1e-12)
    assert scorer(model, X, y) <= 0


def test_get_scorer_falls_back_to_sklearn_and_copies():
    assert get_scorer("accuracy")._score_func is sklearn.metrics.accuracy_score
    assert get_scorer("neg_expected_calibration_error") is not (
        neg_expected_calibration_error_scorer
    )
    assert set(SKMOE_SCORERS) <= set(get_scorer_names())
    assert "neg_log_loss" in get_scorer_names()
    with pytest.raises(ValueError, match="not_a_scorer"):
        get_scorer("not_a_scorer")


def test_cross_val_score_and_cross_validate(multiclass_data):
    X, y = multiclass_data
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    model = LogisticRegression(max_iter=500)
    scores = cross_val_score(model, X, y, cv=cv,
                             scoring=get_scorer("neg_expected_calibration_error"))
    expected = []
    for train, test in cv.split(X, y):
        proba = model.fit(X[train], y[train]).predict_proba(X[test])
        expected.append(-expected_calibration_error(y[test], proba))
    np.testing.assert_allclose(scores, expected, atol=1e-12)

    scoring = {name: get_scorer(name) for name in SKMOE_SCORERS}
    scoring["neg_log_loss"] = "neg_log_loss"
    results = cross_validate(model, X, y, cv=cv, scoring=scoring)
    np.testing.assert_allclose(results["test_neg_expected_calibration_error"],
                               expected, atol=1e-12)
    for name in SKMOE_SCORERS:
        assert np.all(results[f"test_{name}"] <= 0)
        assert np.all(results[f"test_{name}"] >= -1)


def test_grid_search_selects_by_calibration(multiclass_data):
    X, y = multiclass_data
    search = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [1e-4, 1.0]},
        scoring=get_scorer("neg_smooth_calibration_error"), cv=3,
    ).fit(X, y)
    # an almost unregularised logistic model is far better calibrated than one
    # shrunk to the class prior
    assert search.best_params_ == {"C": 1.0}
    refit = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [1e-4, 1.0]},
        scoring={"ece": get_scorer("neg_expected_calibration_error"),
                 "classwise": get_scorer("neg_classwise_calibration_error")},
        refit="ece", cv=3,
    ).fit(X, y)
    assert refit.best_params_ == {"C": 1.0}
    assert "mean_test_classwise" in refit.cv_results_


def test_worst_group_scorer_gets_groups_through_metadata_routing(multiclass_data):
    X, y = multiclass_data
    groups = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    model = LogisticRegression(max_iter=500)
    cv = GroupKFold(2)
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = get_scorer("neg_worst_group_calibration_error")
        scorer.set_score_request(groups=True)
        results = cross_validate(
            model, X, y, cv=cv, params={"groups": groups},
            scoring={"worst": scorer,
                     "ece": get_scorer("neg_expected_calibration_error")},
        )
        expected = []
        for train, test in cv.split(X, y, groups):
            proba = model.fit(X[train], y[train]).predict_proba(X[test])
            expected.append(-worst_group_calibration_error(
                y[test], proba, groups=groups[test]))
        np.testing.assert_allclose(results["test_worst"], expected, atol=1e-12)
        assert np.all(results["test_worst"] <= results["test_ece"] + 1e-12)
        search = GridSearchCV(model, {"C": [0.01, 1.0]}, scoring=scorer, cv=cv)
        search.fit(X, y, groups=groups)
        assert search.best_score_ <= 0
    # the module's scorer was not changed by set_score_request on the copy
    with sklearn.config_context(enable_metadata_routing=True):
        fresh = get_scorer("neg_worst_group_calibration_error")
        assert fresh.get_metadata_routing().score.requests["groups"] is None


def test_worst_group_scorer_without_groups_explains_routing(multiclass_data):
    X, y = multiclass_data
    model = LogisticRegression(max_iter=500).fit(X, y)
    with pytest.raises(ValueError, match="set_score_request"):
        get_scorer("neg_worst_group_calibration_error")(model, X, y)
