"""Speed of the gate's kernels on sparse X, and why dense X keeps the row-wise ones.

One loss-and-gradient evaluation of :class:`~skmoe.gating.SoftmaxGate`'s objective
(the inner step of its L-BFGS fit), timed in one run for:

1. dense X: the row-wise numba kernel (what the gate uses) against the blocked
   kernel (sparse-product blocks, what the gate uses for sparse X);
2. sparse X (one-hot-like, a few non-zeros per row): the blocked kernel on the CSR
   matrix against the row-wise kernel on the same matrix densified.

Every time is the best of ``--repeat`` calls after a warm-up call that compiles (or
loads) the numba kernels. Run from the repository root with one BLAS thread::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_sparse_gate.py
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp

from skmoe._kernels.gating import blocked_softmax_loss_grad, softmax_loss_grad


def _best_time(function, repeat):
    function()  # compile or load the kernels
    best = np.inf
    for _ in range(repeat):
        tic = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - tic)
    return best


def _timer(kernel, X, targets, weights, coef, intercept):
    grad_coef, grad_intercept = np.empty_like(coef), np.empty_like(intercept)

    def call():
        kernel(X, targets, weights, coef, intercept, grad_coef, grad_intercept)

    return call


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--n-experts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.n_samples, args.n_experts
    targets = rng.dirichlet(np.ones(k), size=n)
    weights = np.ones(n)

    n_features = 50
    X = rng.normal(size=(n, n_features))
    coef, intercept = rng.normal(size=(k, n_features)), rng.normal(size=k)
    rowwise = _best_time(
        _timer(softmax_loss_grad, X, targets, weights, coef, intercept), args.repeat
    )
    blocked = _best_time(
        _timer(blocked_softmax_loss_grad, X, targets, weights, coef, intercept),
        args.repeat,
    )
    print(f"dense X ({n} x {n_features}), K={k}:")
    print(f"  row-wise {rowwise * 1e3:.1f} ms, blocked {blocked * 1e3:.1f} ms, "
          f"blocked / row-wise = {blocked / rowwise:.2f}")

    n_features, per_row = 1_000, 8
    columns = rng.integers(0, n_features, size=(n, per_row))
    X_sparse = sp.csr_matrix(
        (np.ones(n * per_row), columns.ravel(), np.arange(0, n * per_row + 1, per_row)),
        shape=(n, n_features),
    )
    X_sparse.sum_duplicates()
    coef, intercept = rng.normal(size=(k, n_features)), rng.normal(size=k)
    blocked = _best_time(
        _timer(blocked_softmax_loss_grad, X_sparse, targets, weights, coef, intercept),
        args.repeat,
    )
    X_dense = X_sparse.toarray()
    rowwise = _best_time(
        _timer(softmax_loss_grad, X_dense, targets, weights, coef, intercept),
        args.repeat,
    )
    print(f"sparse X ({n} x {n_features}, {per_row} non-zeros a row), K={k}:")
    print(f"  blocked on CSR {blocked * 1e3:.1f} ms, row-wise on the densified "
          f"matrix {rowwise * 1e3:.1f} ms, blocked / row-wise = {blocked / rowwise:.2f}"
          f"; CSR {X_sparse.data.nbytes + X_sparse.indices.nbytes >> 20} MiB, "
          f"dense {X_dense.nbytes >> 20} MiB")


if __name__ == "__main__":
    main()
