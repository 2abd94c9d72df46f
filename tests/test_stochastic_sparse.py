"""solver="adam" on sparse X: a sparse fit (and partial_fit) equals the dense fit on
the same data with the same seed, whether the epoch is densified in one chunk or in
many, and memory stays sparse."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.reweighting import AdversarialReweighting
from skmoe.solvers import _gradient, _stochastic

# a few epochs on purpose
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def _sparse_problem(n_samples=240, n_features=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    y_class = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 0.5)
    y_value = (
        2 * X[:, 0]
        + np.where(X[:, 1] > 0, X[:, 2], -X[:, 2])
        + 0.1 * rng.normal(size=n_samples)
    )
    return X, y_class, y_value


def _assert_same_classifier(sparse, dense, X_sparse, X):
    assert sparse.n_iter_ == dense.n_iter_
    assert_allclose(sparse.lower_bounds_, dense.lower_bounds_, rtol=1e-9)
    assert_allclose(sparse.predict_proba(X_sparse), dense.predict_proba(X), atol=1e-9)
    assert_allclose(
        sparse.predict_gate_proba(X_sparse), dense.predict_gate_proba(X), atol=1e-9
    )
    assert np.array_equal(sparse.predict(X_sparse), dense.predict(X))


@pytest.mark.parametrize(
    "params",
    [
        {"init": "kmeans"},
        {"init": "pca", "hidden_layer_sizes": 5, "activation": "tanh"},
        {
            "init": "random",
            "reweighting": AdversarialReweighting(
                filtered=True, gradient="through_weights", warmup=0.3
            ),
            "early_stopping": True,
        },
        {"init": "pca", "reweighting": "adversarial", "expert_calibration": "sigmoid"},
    ],
    ids=["plain", "hidden", "tilt-early-stopping", "calibration"],
)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("chunk_batches", [None, 2, 0])
def test_sparse_fit_equals_dense_fit(params, fmt, chunk_batches, monkeypatch):
    """``chunk_batches``: None keeps the default chunk (the whole epoch here), 2
    densifies two minibatches at a time, 0 asks for less than one minibatch (one
    is the least). Both densified-block sizes are shrunk with it."""
    X, y, _ = _sparse_problem()
    batch_size = 16
    if chunk_batches is not None:
        monkeypatch.setattr(
            _stochastic,
            "_DENSE_BLOCK_ELEMENTS",
            chunk_batches * batch_size * X.shape[1],
        )
        monkeypatch.setattr(_gradient, "_DENSE_BLOCK_ELEMENTS", 50 * X.shape[1])
    settings = {
        "n_experts": 3,
        "solver": "adam",
        "max_iter": 4,
        "batch_size": batch_size,
        "learning_rate_init": 0.02,
        "random_state": 0,
        **params,
    }
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    dense = MixtureOfExpertsClassifier(**settings).fit(X, y)
    sparse = MixtureOfExpertsClassifier(**settings).fit(X_sparse, y)
    _assert_same_classifier(sparse, dense, X_sparse, X)
    if "reweighting" in params:
        assert_allclose(
            sparse.adversarial_weights_, dense.adversarial_weights_, atol=1e-12
        )


@pytest.mark.parametrize("hidden", [None, 4])
def test_sparse_regressor_equals_dense(hidden, monkeypatch):
    X, _, y = _sparse_problem(seed=1)
    monkeypatch.setattr(_stochastic, "_DENSE_BLOCK_ELEMENTS", 3 * 32 * X.shape[1])
    settings = {
        "n_experts": 2,
        "solver": "adam",
        "max_iter": 5,
        "batch_size": 32,
        "hidden_layer_sizes": hidden,
        "init": "pca",
        "random_state": 0,
    }
    dense = MixtureOfExpertsRegressor(**settings).fit(X, y)
    sparse = MixtureOfExpertsRegressor(**settings).fit(sp.csr_matrix(X), y)
    assert_allclose(sparse.lower_bounds_, dense.lower_bounds_, rtol=1e-9)
    assert_allclose(sparse.noise_scale_, dense.noise_scale_, rtol=1e-9)
    assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X), atol=1e-9)


@pytest.mark.parametrize("regression", [False, True])
def test_partial_fit_takes_sparse_chunks(regression, monkeypatch):
    """Sparse chunks, fed to partial_fit, give the model dense chunks give."""
    X, y_class, y_value = _sparse_problem(n_samples=300, seed=2)
    y = y_value if regression else y_class
    monkeypatch.setattr(_stochastic, "_DENSE_BLOCK_ELEMENTS", 2 * 16 * X.shape[1])
    estimator = MixtureOfExpertsRegressor if regression else MixtureOfExpertsClassifier
    settings = {
        "n_experts": 2,
        "solver": "adam",
        "batch_size": 16,
        "init": "pca",
        "random_state": 0,
    }
    dense, sparse = estimator(**settings), estimator(**settings)
    classes = {} if regression else {"classes": np.unique(y)}
    for _ in range(2):
        for rows in np.array_split(np.arange(X.shape[0]), 3):
            dense.partial_fit(X[rows], y[rows], **classes)
            sparse.partial_fit(sp.csr_matrix(X[rows]), y[rows], **classes)
    assert sparse.n_iter_ == dense.n_iter_ == 6
    assert sparse.lower_bound_ == pytest.approx(dense.lower_bound_, rel=1e-9)
    method = "predict" if regression else "predict_proba"
    assert_allclose(
        getattr(sparse, method)(sp.csr_matrix(X)), getattr(dense, method)(X), atol=1e-9
    )


def test_sparse_adam_memory_stays_sparse():
    # 20_000 x 2_000 dense float64 is 320 MB; the sparse matrix is under 1 MB and
    # the densified chunks of minibatches are at most 16 MiB
    n_samples, n_features = 20_000, 2_000
    rng = np.random.default_rng(0)
    columns = rng.integers(0, n_features, size=(n_samples, 3))
    X = sp.csr_matrix(
        (np.ones(3 * n_samples), columns.ravel(), np.arange(0, 3 * n_samples + 1, 3)),
        shape=(n_samples, n_features),
    )
    X.sum_duplicates()
    y = (columns[:, 0] < n_features // 2).astype(int)
    mixture = MixtureOfExpertsClassifier(
        n_experts=2,
        solver="adam",
        max_iter=2,
        learning_rate_init=0.05,
        init="random",
        random_state=0,
    )
    tracemalloc.start()
    try:
        mixture.fit(X, y)
        mixture.partial_fit(X[:5000], y[:5000])
        mixture.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense_bytes = n_samples * n_features * 8
    assert peak < dense_bytes / 8, f"peak {peak / 2**20:.0f} MiB"
    assert mixture.score(X, y) > 0.7  # learned: the classes are balanced
