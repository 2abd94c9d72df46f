"""Tests of the shift-aware splitters: split properties, real shift, sklearn use."""

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

import skmoe.model_selection
from skmoe.model_selection import (
    AdversarialValidationSplit,
    CovariateShiftSplit,
    DomainShuffleSplit,
    LabelShiftSplit,
    LeaveOneDomainOut,
    TemporalSplit,
)

FAST = settings(max_examples=15, deadline=None)


def _splits(cv, X, y=None, groups=None):
    return [(train, test) for train, test in cv.split(X, y, groups)]


def _check_partition_properties(splits, n_samples, *, tested_once=None):
    """Train and test disjoint, valid, non-empty; optionally each sample tested once."""
    tested = np.zeros(n_samples, dtype=int)
    for train, test in splits:
        assert test.size > 0
        assert np.intersect1d(train, test).size == 0
        for indices in (train, test):
            assert indices.dtype.kind == "i"
            assert np.all((indices >= 0) & (indices < n_samples))
            assert np.unique(indices).size == indices.size
        tested[test] += 1
    if tested_once is not None:
        np.testing.assert_array_equal(tested[tested_once], 1)
    return tested


def _same_splits(first, second):
    return len(first) == len(second) and all(
        np.array_equal(a_train, b_train) and np.array_equal(a_test, b_test)
        for (a_train, a_test), (b_train, b_test) in zip(first, second, strict=True)
    )


@st.composite
def grouped_data(draw, min_groups=2):
    n_groups = draw(st.integers(min_groups, 6))
    n_samples = draw(st.integers(max(2 * n_groups, 10), 60))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.RandomState(seed)
    # every group and both classes appear at least once
    groups = np.r_[
        np.arange(n_groups), rng.randint(n_groups, size=n_samples - n_groups)
    ]
    y = np.r_[[0, 1], rng.randint(2, size=n_samples - 2)]
    X = rng.normal(size=(n_samples, 3))
    return X, y, groups, seed


# -- hypothesis properties, one per splitter ---------------------------------------


@FAST
@given(data=grouped_data(), max_splits=st.none() | st.integers(1, 6))
def test_leave_one_domain_out_properties(data, max_splits):
    X, y, groups, seed = data
    cv = LeaveOneDomainOut(max_splits=max_splits, random_state=seed)
    splits = _splits(cv, X, y, groups)
    n_domains = np.unique(groups).size
    assert len(splits) == cv.get_n_splits(groups=groups)
    everyone = np.arange(X.shape[0]) if max_splits is None else None
    tested = _check_partition_properties(splits, X.shape[0], tested_once=everyone)
    for train, test in splits:
        # one whole domain held out, all others trained on
        assert np.unique(groups[test]).size == 1
        np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(len(X)))
    if max_splits is not None:
        assert len(splits) == min(max_splits, n_domains)
        assert np.all(tested <= 1)
    assert _same_splits(splits, _splits(cv, X, y, groups))


@FAST
@given(
    data=grouped_data(min_groups=3),
    test_size=st.sampled_from([1, 0.3, 0.5]),
    stratify=st.booleans(),
)
@pytest.mark.filterwarnings("ignore:DomainShuffleSplit. n_splits:UserWarning")
def test_domain_shuffle_split_properties(data, test_size, stratify):
    X, y, groups, seed = data
    cv = DomainShuffleSplit(
        n_splits=4, test_size=test_size, stratify=stratify, random_state=seed
    )
    splits = _splits(cv, X, y, groups)
    assert len(splits) == cv.get_n_splits() == 4
    _check_partition_properties(splits, X.shape[0])
    n_test_domains = (
        test_size
        if isinstance(test_size, int)
        else int(np.ceil(test_size * np.unique(groups).size))
    )
    for train, test in splits:
        # domains never straddle train and test
        assert np.intersect1d(groups[train], groups[test]).size == 0
        assert np.unique(groups[test]).size == n_test_domains
    assert _same_splits(splits, _splits(cv, X, y, groups))


@FAST
@given(
    n_samples=st.integers(10, 80),
    n_splits=st.integers(2, 6),
    severity=st.floats(0, 1),
    direction=st.sampled_from(["pca", "random", 1]),
    seed=st.integers(0, 2**16),
)
def test_covariate_shift_split_properties(
    n_samples, n_splits, severity, direction, seed
):
    X = np.random.RandomState(seed).normal(size=(n_samples, 3))
    cv = CovariateShiftSplit(
        n_splits=n_splits, direction=direction, severity=severity, random_state=seed
    )
    splits = _splits(cv, X)
    assert len(splits) == cv.get_n_splits() == n_splits
    _check_partition_properties(splits, n_samples, tested_once=np.arange(n_samples))
    sizes = [test.size for _, test in splits]
    assert max(sizes) - min(sizes) <= 1
    assert _same_splits(splits, _splits(cv, X))


@FAST
@given(
    n_per_class=st.lists(st.integers(2, 30), min_size=2, max_size=4),
    alpha=st.floats(0.05, 20),
    test_size=st.sampled_from([0.2, 0.5, 5]),
    seed=st.integers(0, 2**16),
)
def test_label_shift_split_properties(n_per_class, alpha, test_size, seed):
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    X = np.zeros((y.size, 1))
    cv = LabelShiftSplit(
        n_splits=3, alpha=alpha, test_size=test_size, random_state=seed
    )
    if isinstance(test_size, int) and test_size >= y.size:
        with pytest.raises(ValueError, match=f"test_size={test_size}"):
            _splits(cv, X, y)
        return
    splits = _splits(cv, X, y)
    assert len(splits) == cv.get_n_splits() == 3
    _check_partition_properties(splits, y.size)
    requested = test_size if isinstance(test_size, int) else np.ceil(test_size * y.size)
    for train, test in splits:
        assert test.size <= requested
        # every class keeps a training sample
        np.testing.assert_array_equal(np.unique(y[train]), np.unique(y))
    assert _same_splits(splits, _splits(cv, X, y))


@FAST
@given(
    n_periods=st.integers(4, 12),
    n_splits=st.integers(1, 3),
    gap=st.integers(0, 1),
    max_train_periods=st.none() | st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_temporal_split_properties(n_periods, n_splits, gap, max_train_periods, seed):
    rng = np.random.RandomState(seed)
    periods = rng.permutation(
        np.r_[np.arange(n_periods), rng.randint(n_periods, size=30)]
    )
    X = np.zeros((periods.size, 1))
    cv = TemporalSplit(n_splits=n_splits, gap=gap, max_train_periods=max_train_periods)
    if n_periods < n_splits + gap + 1:
        with pytest.raises(ValueError, match="distinct periods"):
            _splits(cv, X, groups=periods)
        return
    splits = _splits(cv, X, groups=periods)
    assert len(splits) == cv.get_n_splits() == n_splits
    last_periods = np.flatnonzero(periods >= n_periods - n_splits)
    tested = _check_partition_properties(splits, periods.size, tested_once=last_periods)
    assert tested.sum() == last_periods.size
    for train, test in splits:
        assert np.unique(periods[test]).size == 1
        # the past only, and the gap respected
        assert periods[train].max() + gap < periods[test].min()
        if max_train_periods is not None:
            assert np.unique(periods[train]).size <= max_train_periods


@settings(max_examples=6, deadline=None)
@given(n_samples=st.integers(20, 60), shift=st.floats(0, 3), seed=st.integers(0, 2**16))
def test_adversarial_validation_split_properties(n_samples, shift, seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 2))
    X_target = rng.normal(loc=shift, size=(15, 2))
    cv = AdversarialValidationSplit(X_target, test_size=0.25, cv=3, random_state=seed)
    splits = _splits(cv, X)
    assert len(splits) == cv.get_n_splits() == 1
    _check_partition_properties(splits, n_samples)
    train, test = splits[0]
    assert test.size == np.ceil(0.25 * n_samples)
    np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(n_samples))
    assert _same_splits(splits, _splits(cv, X))


# -- the shift is really there -----------------------------------------------------


def _fold_detection_auc(X, test):
    """AUC of a quadratic domain classifier telling a test fold from the rest."""
    in_test = np.zeros(X.shape[0], dtype=int)
    in_test[test] = 1
    domain_classifier = make_pipeline(
        PolynomialFeatures(2), StandardScaler(), LogisticRegression(max_iter=1000)
    )
    proba = cross_val_predict(
        domain_classifier,
        X,
        in_test,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        method="predict_proba",
    )[:, 1]
    return roc_auc_score(in_test, proba)


def test_covariate_shift_detectable_and_rising_with_severity():
    X = np.random.RandomState(0).normal(size=(600, 4))
    aucs = []
    for severity in (0.0, 0.5, 1.0):
        cv = CovariateShiftSplit(n_splits=4, severity=severity, random_state=0)
        aucs.append(np.mean([_fold_detection_auc(X, test) for _, test in cv.split(X)]))
    assert abs(aucs[0] - 0.5) < 0.06
    assert aucs[1] > 0.6
    assert aucs[2] > 0.85
    assert aucs[0] < aucs[1] < aucs[2]


@pytest.mark.parametrize(
    "direction",
    [
        "pca",
        "random",
        2,
        np.array([0.0, 0.0, 1.0]),
        lambda X: X[:, 2],
    ],
)
def test_covariate_shift_directions_order_the_folds(direction):
    rng = np.random.RandomState(1)
    # three noisy copies of one latent factor, which pca finds
    X = rng.normal(size=(300, 1)) + 0.2 * rng.normal(size=(300, 3))
    cv = CovariateShiftSplit(n_splits=3, direction=direction, random_state=0)
    scores = cv.direction_scores(X)
    folds = [test for _, test in cv.split(X)]
    # disjoint score intervals at severity 1, in increasing order of score
    for lower, upper in zip(folds[:-1], folds[1:], strict=False):
        assert scores[lower].max() <= scores[upper].min()
    if not isinstance(direction, str) or direction == "pca":
        assert abs(np.corrcoef(scores, X[:, 2])[0, 1]) > 0.95


def test_covariate_shift_propensity_and_column_name():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    is_late = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    propensity_model = LogisticRegression().fit(X, is_late)
    cv = CovariateShiftSplit(n_splits=2, direction=propensity_model)
    low, high = (test for _, test in cv.split(X))
    assert X[high, 0].mean() > X[low, 0].mean() + 1.0
    frame = pd.DataFrame(X, columns=["a", "b"])
    by_name = CovariateShiftSplit(n_splits=2, direction="b")
    low, high = (test for _, test in by_name.split(frame))
    assert X[low, 1].max() <= X[high, 1].min()
    with pytest.raises(ValueError, match="DataFrame"):
        next(by_name.split(X))
    # a decision function works as a propensity too, and pca accepts a DataFrame
    margin_model = RidgeClassifier().fit(X, is_late)
    assert not hasattr(margin_model, "predict_proba")
    by_margin = CovariateShiftSplit(n_splits=2, direction=margin_model)
    low, high = (test for _, test in by_margin.split(X))
    assert X[high, 0].mean() > X[low, 0].mean() + 1.0
    on_frame = [test for _, test in CovariateShiftSplit(n_splits=2).split(frame)]
    on_array = [test for _, test in CovariateShiftSplit(n_splits=2).split(X)]
    for frame_fold, array_fold in zip(on_frame, on_array, strict=True):
        np.testing.assert_array_equal(frame_fold, array_fold)


def test_label_shift_fold_follows_drawn_proportions():
    y = np.repeat([0, 1, 2], 1000)
    X = np.zeros((y.size, 1))
    cv = LabelShiftSplit(n_splits=20, alpha=1.0, test_size=300, random_state=0)
    drawn = cv.get_target_proportions(X, y)
    assert drawn.shape == (20, 3)
    np.testing.assert_allclose(drawn.sum(axis=1), 1.0)
    for proportions, (_, test) in zip(drawn, cv.split(X, y), strict=True):
        assert test.size == 300
        observed = np.bincount(y[test], minlength=3) / test.size
        assert np.max(np.abs(observed - proportions)) <= 1.0 / test.size
    # the drawn proportions really vary: a Dirichlet(1, 1, 1), not the data's 1/3 each
    assert drawn.std(axis=0).mean() > 0.1


def test_label_shift_small_class_shrinks_test_set():
    y = np.r_[np.zeros(100, dtype=int), np.ones(5, dtype=int)]
    X = np.zeros((y.size, 1))
    cv = LabelShiftSplit(n_splits=10, alpha=[1.0, 1.0], test_size=50, random_state=0)
    for proportions, (train, test) in zip(
        cv.get_target_proportions(X, y), cv.split(X, y), strict=True
    ):
        assert np.sum(y[test] == 1) <= 4 and np.sum(y[train] == 1) >= 1
        if test.size >= 10:
            observed = np.mean(y[test] == 1)
            assert abs(observed - proportions[1]) < 2.0 / test.size


def test_domain_shuffle_split_stratify_balances_labels():
    rng = np.random.RandomState(0)
    groups = np.repeat(np.arange(20), 30)
    # each domain has its own positive rate
    rates = rng.uniform(0.0, 1.0, size=20)
    y = (rng.uniform(size=groups.size) < rates[groups]).astype(int)
    X = np.zeros((y.size, 1))

    def mean_deviation(stratify):
        cv = DomainShuffleSplit(
            n_splits=30, test_size=3, stratify=stratify, random_state=0
        )
        deviations = [
            abs(y[test].mean() - y.mean()) for _, test in cv.split(X, y, groups)
        ]
        return np.mean(deviations)

    assert mean_deviation(True) < 0.5 * mean_deviation(False)


def _few_domain_labels(n_domains):
    rng = np.random.RandomState(0)
    groups = rng.randint(0, n_domains, size=2000)
    y = (rng.uniform(size=2000) < 0.2 + 0.6 * (groups % 3 == 0)).astype(int)
    return np.zeros((2000, 1)), y, groups


@pytest.mark.parametrize(
    "n_domains, test_size, n_splits", [(4, 1, 4), (6, 2, 5), (10, 3, 5), (5, 2, 10)]
)
def test_domain_shuffle_split_stratify_holds_out_distinct_sets(
    n_domains, test_size, n_splits
):
    X, y, groups = _few_domain_labels(n_domains)
    cv = DomainShuffleSplit(
        n_splits=n_splits, test_size=test_size, stratify=True, random_state=0
    )
    test_sets = [frozenset(groups[test]) for _, test in cv.split(X, y, groups)]
    assert len(set(test_sets)) == n_splits
    assert test_sets == [frozenset(groups[test]) for _, test in cv.split(X, y, groups)]


def test_domain_shuffle_split_stratify_first_split_is_best_balanced():
    # with 4 sets of one domain, all are compared: the first split holds out the
    # domain whose label mix is closest to the overall one
    X, y, groups = _few_domain_labels(4)
    cv = DomainShuffleSplit(n_splits=4, test_size=1, stratify=True, random_state=0)
    first_test = next(cv.split(X, y, groups))[1]
    shift = [abs(y[groups == domain].mean() - y.mean()) for domain in range(4)]
    assert set(groups[first_test]) == {int(np.argmin(shift))}


def test_domain_shuffle_split_stratify_warns_when_sets_run_out():
    X, y, groups = _few_domain_labels(4)
    cv = DomainShuffleSplit(n_splits=5, test_size=1, stratify=True, random_state=0)
    with pytest.warns(UserWarning, match=r"n_splits=5 but only 4 distinct sets"):
        test_sets = [frozenset(groups[test]) for _, test in cv.split(X, y, groups)]
    # every domain is held out before any is held out again
    assert len(set(test_sets[:4])) == 4


def test_adversarial_validation_picks_target_like_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3))
    X_target = rng.normal(loc=[1.5, 0.0, 0.0], size=(200, 3))
    cv = AdversarialValidationSplit(X_target, test_size=80, random_state=0)
    train, test = next(cv.split(X))
    propensity = cv.target_propensity(X)
    assert propensity[test].min() >= propensity[train].max()
    assert X[test, 0].mean() > X[train, 0].mean() + 1.0
    # the unshifted features are not what is selected on
    assert abs(X[test, 1].mean() - X[train, 1].mean()) < 0.4


# -- arguments, repr, sklearn plumbing ---------------------------------------------


@pytest.mark.parametrize(
    "make, parameter",
    [
        (lambda: LeaveOneDomainOut(max_splits=0), "max_splits"),
        (lambda: DomainShuffleSplit(n_splits=0), "n_splits"),
        (lambda: DomainShuffleSplit(test_size=1.5), "test_size"),
        (lambda: DomainShuffleSplit(stratify="yes"), "stratify"),
        (lambda: CovariateShiftSplit(n_splits=1), "n_splits"),
        (lambda: CovariateShiftSplit(severity=1.5), "severity"),
        (lambda: CovariateShiftSplit(direction=-1), "direction"),
        (lambda: CovariateShiftSplit(random_state="seed"), "random_state"),
        (lambda: LabelShiftSplit(alpha=0.0), "alpha"),
        (lambda: LabelShiftSplit(test_size=0.0), "test_size"),
        (lambda: TemporalSplit(gap=-1), "gap"),
        (lambda: TemporalSplit(test_periods=0), "test_periods"),
        (lambda: TemporalSplit(max_train_periods=0), "max_train_periods"),
        (lambda: AdversarialValidationSplit(np.zeros((3, 2)), cv=1), "cv"),
        (
            lambda: AdversarialValidationSplit(np.zeros((3, 2)), estimator="lr"),
            "estimator",
        ),
    ],
)
def test_invalid_arguments_fail_at_construction(make, parameter):
    with pytest.raises((ValueError, TypeError), match=f"'{parameter}' parameter"):
        make()


def test_errors_at_split_name_the_problem():
    X = np.zeros((6, 2))
    with pytest.raises(ValueError, match="groups=None"):
        next(LeaveOneDomainOut().split(X))
    with pytest.raises(ValueError, match="at least 2 domains"):
        next(LeaveOneDomainOut().split(X, groups=np.zeros(6)))
    with pytest.raises(ValueError, match="y=None"):
        next(LabelShiftSplit().split(X))
    with pytest.raises(ValueError, match="alpha must hold 2"):
        next(LabelShiftSplit(alpha=[1.0, 1.0, 1.0]).split(X, [0, 1] * 3))
    with pytest.raises(ValueError, match="3 components but X has 2"):
        next(CovariateShiftSplit(direction=[1.0, 0.0, 0.0]).split(X))
    with pytest.raises(ValueError, match="test_size=4 holds out 4 of 3 domains"):
        next(DomainShuffleSplit(test_size=4).split(X, groups=[0, 0, 1, 1, 2, 2]))


@pytest.mark.parametrize(
    "cv",
    [LeaveOneDomainOut(), DomainShuffleSplit(test_size=1), TemporalSplit(n_splits=1)],
    ids=lambda cv: type(cv).__name__,
)
def test_missing_or_2d_groups_are_named(cv):
    # None next to strings used to give "'<' not supported between instances of
    # 'str' and 'NoneType'" from np.unique
    X = np.zeros((6, 2))
    groups = np.array(["a", "a", None, "b", "c", "c"], dtype=object)
    with pytest.raises(ValueError, match=r"groups must not hold missing values.*"
                                         r"groups\[2\] = None"):
        next(cv.split(X, groups=groups))
    with pytest.raises(ValueError, match=r"groups\[1\] = .*nan.*1 missing of 6"):
        next(cv.split(X, groups=[0.0, np.nan, 1.0, 1.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match=r"groups must be 1-D.*shape \(6, 2\)"):
        next(cv.split(X, groups=np.zeros((6, 2))))


def test_adversarial_validation_errors_name_x_target_and_cv():
    X = np.random.RandomState(0).normal(size=(20, 3))
    # numpy's concatenate error used to surface
    with pytest.raises(ValueError, match="X_target has 2 features but X has 3"):
        next(AdversarialValidationSplit(X[:, :2]).split(X))
    # StratifiedKFold's message about n_splits and class members used to surface
    with pytest.raises(ValueError, match=r"cv=5 .* got 3 rows of X and 20 of X_target"):
        next(AdversarialValidationSplit(X, cv=5).split(X[:3]))
    with pytest.raises(ValueError, match=r"cv=5 .* got 20 rows of X and 4 of X_target"):
        next(AdversarialValidationSplit(X[:4], cv=5).split(X))


def test_repr_shows_arguments():
    assert repr(CovariateShiftSplit(severity=0.5, random_state=0)) == (
        "CovariateShiftSplit(direction='pca', n_splits=5, random_state=0, severity=0.5)"
    )
    assert repr(TemporalSplit(gap=2)) == (
        "TemporalSplit(gap=2, max_train_periods=None, n_splits=5, test_periods=1)"
    )
    assert "X_target=<ndarray of shape (30, 4)>" in repr(
        AdversarialValidationSplit(np.zeros((30, 4)))
    )


def test_public_names_resolve_and_are_documented():
    for name in skmoe.model_selection.__all__:
        obj = getattr(skmoe.model_selection, name)
        assert obj.__doc__ and "Examples" in obj.__doc__
        assert obj.__module__.startswith("skmoe.model_selection._")


@pytest.fixture(scope="module")
def domain_data():
    rng = np.random.RandomState(0)
    groups = np.repeat(np.arange(6), 40)
    X = rng.normal(size=(groups.size, 3)) + groups[:, None] * 0.2
    y = (X[:, 0] + rng.normal(size=groups.size) > 0.5).astype(int)
    return X, y, groups


GROUP_SPLITTERS = [
    LeaveOneDomainOut(max_splits=3, random_state=0),
    DomainShuffleSplit(n_splits=3, test_size=2, stratify=True, random_state=0),
    TemporalSplit(n_splits=2, gap=1),
]
PLAIN_SPLITTERS = [
    CovariateShiftSplit(n_splits=3, severity=0.7, random_state=0),
    LabelShiftSplit(n_splits=3, alpha=2.0, random_state=0),
]


@pytest.mark.parametrize("routing", [False, True])
@pytest.mark.parametrize("cv", GROUP_SPLITTERS + PLAIN_SPLITTERS, ids=repr)
def test_usable_in_sklearn_model_selection(cv, routing, domain_data):
    X, y, groups = domain_data
    uses_groups = cv in GROUP_SPLITTERS
    n_splits = cv.get_n_splits(X, y, groups)
    with sklearn.config_context(enable_metadata_routing=routing):
        if routing:
            group_params = {"params": {"groups": groups}} if uses_groups else {}
        else:
            group_params = {"groups": groups} if uses_groups else {}
        scores = cross_val_score(LogisticRegression(), X, y, cv=cv, **group_params)
        results = cross_validate(
            LogisticRegression(), X, y, cv=cv, scoring="neg_log_loss", **group_params
        )
        fit_params = {"groups": groups} if uses_groups else {}
        search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=cv).fit(
            X, y, **fit_params
        )
    assert scores.shape == (n_splits,) and np.all((scores >= 0) & (scores <= 1))
    assert results["test_score"].shape == (n_splits,)
    assert search.n_splits_ == n_splits
    assert not sklearn.get_config()["enable_metadata_routing"]


def test_group_splitters_request_groups_and_others_do_not():
    for cv in GROUP_SPLITTERS:
        assert cv.get_metadata_routing().consumes("split", ["groups"]) == {"groups"}
    for cv in PLAIN_SPLITTERS:
        assert cv.get_metadata_routing().consumes("split", ["groups"]) == set()


def test_adversarial_split_in_grid_search():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    cv = AdversarialValidationSplit(rng.normal(loc=1.0, size=(50, 2)), random_state=0)
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=cv).fit(X, y)
    assert search.n_splits_ == 1
