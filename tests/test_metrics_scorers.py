"""The calibration scorers inside scikit-learn's model selection tools."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe.datasets import load_penguins
from skmoe.metrics import (
    expected_calibration_error,
    get_scorer,
    get_scorer_names,
    make_calibration_scorer,
    neg_expected_calibration_error_scorer,
    worst_group_calibration_error,
)
from skmoe.model_selection import (
    AdversarialValidationSplit,
    CovariateShiftSplit,
    DomainShuffleSplit,
    LabelShiftSplit,
    LeaveOneDomainOut,
    TemporalSplit,
)

ALL_SCORERS = [
    "neg_expected_calibration_error",
    "neg_maximum_calibration_error",
    "neg_root_mean_squared_calibration_error",
    "neg_classwise_calibration_error",
    "neg_adaptive_calibration_error",
    "neg_debiased_calibration_error",
    "neg_smooth_calibration_error",
    "neg_worst_group_calibration_error",
]

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


@pytest.fixture(scope="module")
def digits_scaled():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def penguins():
    pytest.importorskip("palmerpenguins")
    bunch = load_penguins(as_frame=False)
    X = np.asarray(bunch.data[:, :4], dtype=np.float64)
    complete = ~np.isnan(X).any(axis=1)
    years = np.asarray(bunch.data[:, 5], dtype=np.int64)
    return (X[complete], bunch.target[complete],
            bunch.domains[complete, 0], years[complete])


def _all_scorers(groups_requested):
    scoring = {name: get_scorer(name) for name in ALL_SCORERS}
    if groups_requested:
        scoring["neg_worst_group_calibration_error"].set_score_request(groups=True)
    return scoring


def _shift_cases(digits, penguins):
    X_digits, y_digits = digits
    # the groups scored by the worst-group scorer on digits: the rows' halves
    halves = (np.arange(y_digits.shape[0]) % 2).astype(int)
    X_p, y_p, islands, years = penguins
    return [
        (CovariateShiftSplit(n_splits=5, severity=1.0, random_state=0),
         X_digits, y_digits, halves),
        (LabelShiftSplit(n_splits=3, alpha=0.3, random_state=0),
         X_digits, y_digits, halves),
        (AdversarialValidationSplit(X_digits[y_digits < 3], random_state=0),
         X_digits, y_digits, halves),
        (LeaveOneDomainOut(), X_p, y_p, islands),
        (DomainShuffleSplit(n_splits=3, test_size=0.3, random_state=0),
         X_p, y_p, islands),
        (TemporalSplit(n_splits=2), X_p, y_p, years),
    ]


def test_every_scorer_is_finite_under_every_shift_splitter(digits_scaled, penguins):
    # Shift splitters leave classes out of test folds (and, holding out a penguin
    # island, out of training folds): the scorers must use the model's classes_
    # instead of guessing the columns from y_true, which gave NaN scores.
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    for cv, X, y, groups in _shift_cases(digits_scaled, penguins):
        with sklearn.config_context(enable_metadata_routing=True):
            with warnings.catch_warnings():
                # a NaN score comes with a UserWarning: make it fail loudly
                warnings.simplefilter("error", UserWarning)
                results = cross_validate(
                    model, X, y, cv=cv, params={"groups": groups},
                    scoring=_all_scorers(True), error_score="raise",
                )
        for name in ALL_SCORERS:
            scores = results[f"test_{name}"]
            assert np.all(np.isfinite(scores)), (type(cv).__name__, name, scores)
            assert np.all((scores <= 0) & (scores >= -1)), (type(cv).__name__, name)


def test_scorer_counts_a_class_unseen_in_training_as_a_mistake(penguins):
    X, y, islands, _ = penguins
    # hold out Biscoe, the only island with Gentoo besides none: train lacks class 2
    train, test = islands != "Biscoe", islands == "Biscoe"
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        X[train], y[train])
    assert model.classes_.tolist() == [0, 1]
    proba = np.zeros((test.sum(), 3))
    proba[:, :2] = model.predict_proba(X[test])
    expected = -expected_calibration_error(y[test], proba, labels=[0, 1, 2])
    score = get_scorer("neg_expected_calibration_error")(model, X[test], y[test])
    assert score == pytest.approx(expected, abs=1e-12)
    # every Gentoo sample is a confident mistake: far from the score the columns
    # misread as classes [0, 2] gave before
    assert score < -0.5


def test_scorer_passes_the_estimator_classes_on_a_fold_missing_classes():
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    subset = y != 3
    proba = model.predict_proba(X[subset])
    for name in ALL_SCORERS[:-1]:
        scorer = get_scorer(name)
        expected = -scorer._score_func(y[subset], proba, labels=model.classes_)
        assert scorer(model, X[subset], y[subset]) == pytest.approx(expected)


def test_grid_search_under_a_shift_splitter_picks_the_best_finite_score(
    digits_scaled,
):
    X, y = digits_scaled
    cv = CovariateShiftSplit(n_splits=5, severity=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
            {"logisticregression__C": [0.01, 0.1, 1.0]},
            scoring=neg_expected_calibration_error_scorer, cv=cv,
        ).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(means))
    assert search.best_index_ == int(np.argmax(means))


def test_make_calibration_scorer_options_and_errors(multiclass_data):
    X, y = multiclass_data
    model = LogisticRegression(max_iter=500).fit(X, y)
    scorer = make_calibration_scorer(expected_calibration_error, n_bins=5)
    proba = model.predict_proba(X)
    assert scorer(model, X, y) == pytest.approx(
        -expected_calibration_error(y, proba, n_bins=5))
    assert "n_bins=5" in repr(scorer)
    with pytest.raises(TypeError, match="no parameter 'bins'"):
        make_calibration_scorer(expected_calibration_error, bins=5)
    with pytest.raises(TypeError, match="labels"):
        make_calibration_scorer(expected_calibration_error, labels=[0, 1, 2])
    with pytest.raises(RuntimeError, match="metadata routing"):
        get_scorer("neg_worst_group_calibration_error").set_score_request(
            groups=True)
