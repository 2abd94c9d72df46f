"""The softmax gate: its kernels against NumPy, and its optimum against sklearn."""

import _naive
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import softmax
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skmoe._kernels import gating as gating_kernels
from skmoe._kernels.gating import (
    blocked_softmax_hessp,
    blocked_softmax_log_proba,
    blocked_softmax_loss_grad,
    softmax_hessp,
    softmax_log_proba,
    softmax_loss_grad,
)
from skmoe.gating import SoftmaxGate


def _problem(n_samples, n_features, n_experts, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    targets = rng.dirichlet(np.ones(n_experts), size=n_samples)
    sample_weight = rng.uniform(0, 2, size=n_samples)
    sample_weight[::7] = 0.0
    coef = rng.normal(size=(n_experts, n_features))
    intercept = rng.normal(size=n_experts)
    return X, targets, sample_weight, coef, intercept


def _kernel_loss_grad(X, targets, sample_weight, coef, intercept):
    grad_coef = np.empty_like(coef)
    grad_intercept = np.empty_like(intercept)
    loss = softmax_loss_grad(
        X, targets, sample_weight, coef, intercept, grad_coef, grad_intercept
    )
    return loss, grad_coef, grad_intercept


def _layouts(X):
    read_only = X.copy()
    read_only.setflags(write=False)
    wide = np.repeat(X, 2, axis=1)  # every other column is X: a strided view
    return {
        "c": X,
        "fortran": np.asfortranarray(X),
        "read-only": read_only,
        "strided": wide[:, ::2],
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["c", "fortran", "read-only", "strided"])
def test_loss_grad_kernel_matches_numpy(dtype, layout):
    X, targets, sample_weight, coef, intercept = _problem(200, 5, 4, 0, dtype)
    X = _layouts(X)[layout]
    expected = _naive.softmax_loss_grad(X, targets, sample_weight, coef, intercept)
    got = _kernel_loss_grad(X, targets, sample_weight, coef, intercept)
    for value, reference in zip(got, expected, strict=True):
        assert_allclose(value, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hessp_kernel_matches_numpy_and_finite_differences(dtype):
    X, targets, sample_weight, coef, intercept = _problem(150, 4, 3, 1, dtype)
    rng = np.random.default_rng(2)
    vec_coef, vec_intercept = rng.normal(size=coef.shape), rng.normal(size=3)
    out_coef, out_intercept = np.empty_like(coef), np.empty(3)
    softmax_hessp(
        X,
        targets,
        sample_weight,
        coef,
        intercept,
        vec_coef,
        vec_intercept,
        out_coef,
        out_intercept,
    )
    ref_coef, ref_intercept = _naive.softmax_hessp(
        X, targets, sample_weight, coef, intercept, vec_coef, vec_intercept
    )
    assert_allclose(out_coef, ref_coef, rtol=1e-10, atol=1e-10)
    assert_allclose(out_intercept, ref_intercept, rtol=1e-10, atol=1e-10)
    step = 1e-6
    _, plus_coef, plus_intercept = _kernel_loss_grad(
        X,
        targets,
        sample_weight,
        coef + step * vec_coef,
        intercept + step * vec_intercept,
    )
    _, minus_coef, minus_intercept = _kernel_loss_grad(
        X,
        targets,
        sample_weight,
        coef - step * vec_coef,
        intercept - step * vec_intercept,
    )
    assert_allclose(
        out_coef, (plus_coef - minus_coef) / (2 * step), rtol=1e-5, atol=1e-6
    )
    assert_allclose(
        out_intercept,
        (plus_intercept - minus_intercept) / (2 * step),
        rtol=1e-5,
        atol=1e-6,
    )


@settings(max_examples=30)
@given(
    n_samples=st.integers(1, 40),
    n_features=st.integers(1, 6),
    n_experts=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 300.0]),
)
def test_kernels_match_numpy_on_random_problems(
    n_samples, n_features, n_experts, seed, scale
):
    X, targets, sample_weight, coef, intercept = _problem(
        n_samples, n_features, n_experts, seed
    )
    coef *= scale  # large scores: the log-sum-exp must not overflow
    expected = _naive.softmax_loss_grad(X, targets, sample_weight, coef, intercept)
    got = _kernel_loss_grad(X, targets, sample_weight, coef, intercept)
    assert np.isfinite(got[0])
    for value, reference in zip(got, expected, strict=True):
        assert_allclose(value, reference, rtol=1e-9, atol=1e-9 * max(1.0, scale))
    log_proba = softmax_log_proba(X, coef, intercept, np.empty((n_samples, n_experts)))
    assert np.all(np.isfinite(log_proba))
    assert_allclose(np.exp(log_proba).sum(axis=1), 1.0, rtol=1e-12)


def _sklearn_objective(X, y, coef, intercept, C):
    log_proba = np.log(softmax(X @ coef.T + intercept, axis=1))
    return -log_proba[np.arange(len(y)), y].sum() + 0.5 / C * np.sum(coef**2)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("loader", [load_wine, load_iris])
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_one_hot_optimum_equals_logistic_regression(loader, C, solver):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    reference = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    gate = SoftmaxGate(C=C, solver=solver, tol=1e-10, max_iter=1000).fit(X, y)
    assert_allclose(gate.coef_, reference.coef_, atol=2e-5)
    # intercepts are identified only up to a common shift when unpenalised
    assert_allclose(
        gate.intercept_ - gate.intercept_.mean(),
        reference.intercept_ - reference.intercept_.mean(),
        atol=2e-5,
    )
    ours = _sklearn_objective(X, y, gate.coef_, gate.intercept_, C)
    theirs = _sklearn_objective(X, y, reference.coef_, reference.intercept_, C)
    assert ours <= theirs * (1 + 1e-9)
    assert_allclose(gate.predict_proba(X), reference.predict_proba(X), atol=1e-5)


def test_binary_gate_is_logistic_regression_with_twice_the_C():
    # two symmetric columns penalised each: the logit difference sees 1 / (4 C)
    X, y = load_wine(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[y < 2]), y[y < 2]
    gate = SoftmaxGate(C=0.5, tol=1e-10, max_iter=1000).fit(X, y)
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)
    assert_allclose(gate.coef_[1] - gate.coef_[0], reference.coef_[0], atol=1e-5)
    assert_allclose(
        gate.decision_function(X), reference.decision_function(X), atol=1e-4
    )


def test_soft_targets_are_recovered_when_realisable():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    true_coef = rng.normal(size=(4, 3))
    targets = softmax(X @ true_coef.T, axis=1)
    gate = SoftmaxGate(C=np.inf, tol=1e-10, max_iter=2000).fit(X, targets)
    assert_allclose(gate.predict_proba(X), targets, atol=1e-4)


def test_sample_weight_equals_repetition_and_zero_weight_equals_removal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    targets = rng.dirichlet(np.ones(3), size=60)
    counts = rng.integers(0, 3, size=60)
    weighted = SoftmaxGate(tol=1e-10).fit(X, targets, sample_weight=counts)
    repeated = SoftmaxGate(tol=1e-10).fit(
        np.repeat(X, counts, axis=0), np.repeat(targets, counts, axis=0)
    )
    assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)


def test_warm_start_starts_from_previous_solution():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    gate = SoftmaxGate(warm_start=True, tol=1e-8, max_iter=500).fit(X, y)
    first = gate.n_iter_
    gate.fit(X, y)
    assert gate.n_iter_ < first


def test_soft_targets_validation():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="non-negative"):
        SoftmaxGate().fit(X, np.array([[1.0, -0.5], [0.5, 0.5], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="one class"):
        SoftmaxGate().fit(X, [1, 1, 1])


def _sparse_problem(n_samples, n_features, n_experts, seed, dtype, fmt):
    X, targets, sample_weight, coef, intercept = _problem(
        n_samples, n_features, n_experts, seed, dtype
    )
    X[np.random.default_rng(seed).uniform(size=X.shape) < 0.7] = 0.0
    X[3] = 0.0  # an empty row
    return sp.csr_matrix(X).asformat(fmt), targets, sample_weight, coef, intercept


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_blocked_kernels_match_numpy_on_sparse_input(dtype, fmt, monkeypatch):
    # several blocks, the last one partial
    monkeypatch.setattr(gating_kernels, "BLOCK_ROWS", 64)
    X, targets, sample_weight, coef, intercept = _sparse_problem(
        200, 6, 4, 3, dtype, fmt
    )
    expected = _naive.softmax_loss_grad(X, targets, sample_weight, coef, intercept)
    grad_coef, grad_intercept = np.empty_like(coef), np.empty_like(intercept)
    loss = blocked_softmax_loss_grad(
        X, targets, sample_weight, coef, intercept, grad_coef, grad_intercept
    )
    for value, reference in zip(
        (loss, grad_coef, grad_intercept), expected, strict=True
    ):
        assert_allclose(value, reference, rtol=1e-10, atol=1e-10)
    rng = np.random.default_rng(4)
    vec_coef, vec_intercept = rng.normal(size=coef.shape), rng.normal(size=4)
    out_coef, out_intercept = np.empty_like(coef), np.empty(4)
    blocked_softmax_hessp(
        X,
        targets,
        sample_weight,
        coef,
        intercept,
        vec_coef,
        vec_intercept,
        out_coef,
        out_intercept,
    )
    ref_coef, ref_intercept = _naive.softmax_hessp(
        X, targets, sample_weight, coef, intercept, vec_coef, vec_intercept
    )
    assert_allclose(out_coef, ref_coef, rtol=1e-10, atol=1e-10)
    assert_allclose(out_intercept, ref_intercept, rtol=1e-10, atol=1e-10)
    log_proba = blocked_softmax_log_proba(X, coef, intercept, np.empty((200, 4)))
    dense = X.toarray().astype(np.float64)
    assert_allclose(
        log_proba,
        softmax_log_proba(dense, coef, intercept, np.empty((200, 4))),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_sparse_fit_equals_dense_fit(fmt, solver):
    rng = np.random.default_rng(0)
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X[rng.uniform(size=X.shape) < 0.5] = 0.0
    targets = softmax(X @ rng.normal(size=(3, X.shape[1])).T, axis=1)
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    for fit_targets in (y, targets):
        dense = SoftmaxGate(solver=solver, tol=1e-10, max_iter=1000).fit(
            X, fit_targets
        )
        sparse = SoftmaxGate(solver=solver, tol=1e-10, max_iter=1000).fit(
            X_sparse, fit_targets
        )
        assert_allclose(sparse.coef_, dense.coef_, atol=1e-6)
        assert_allclose(
            sparse.predict_proba(X_sparse), dense.predict_proba(X), atol=1e-7
        )
        assert_allclose(
            sparse.decision_function(X_sparse), dense.decision_function(X), atol=1e-6
        )
