"""One epoch of ``solver="adam"``'s kernel against the plain NumPy reference.

``skmoe._kernels.stochastic.adam_epoch`` (numba; the minibatch's gate, head and
hidden-layer scores and their gradients as BLAS products, softmaxes row by row)
against ``tests/_naive.py``'s ``adam_epoch`` (NumPy, vectorised per minibatch: the
reference the tests compare the kernel with), on the known mixture's shape of
``time_to_good_model.py``: 20 features, 8 experts, 3 classes, minibatches of 128,
and one ``LogisticRegression()`` fit on the same rows for scale. CPU time, best of
``--repeat``; both give the same iterates (printed: the largest difference).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_adam_epoch.py
"""

import argparse
import os
import sys
import time

import numpy as np
from bench_core import machine_description
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import _naive  # noqa: E402

from skmoe._kernels import stochastic as kernels  # noqa: E402


def _best(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("\n".join(machine_description()))
    n_features, n_experts, n_classes, batch = 20, 8, 3, 128
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n_samples, n_features))
    y = rng.integers(0, n_classes, args.n_samples).astype(np.intp)
    dims = np.array([n_features, 0, n_experts, n_classes, 0, 0], dtype=np.intp)
    size = kernels.parameter_layout(dims)[4]
    theta = rng.normal(size=size) * 0.1
    weights = np.ones(args.n_samples)
    groups = np.zeros(args.n_samples, dtype=np.intp)
    settings = (np.full(size, 1e-6), np.zeros(size), np.ones(size, dtype=np.bool_),
                dims, 1e-3, 0, 0, 0.9, 0.999, 1e-8, 1, kernels.NO_TILT, 0.0, -1.0,
                False, 1.0, 0.1, 0.01, 0.0)  # fmt: skip

    def kernel(n_rows):
        order = np.arange(n_rows)
        parameters = theta.copy()
        kernels.adam_epoch(
            X, y, np.zeros(1), weights, groups, order, batch, parameters,
            np.zeros(size), np.zeros(size), *settings, np.zeros(args.n_samples),
        )  # fmt: skip
        return parameters

    def reference(n_rows):
        order = np.arange(n_rows)
        return _naive.adam_epoch(
            X, y, np.zeros(1), weights, groups, order, batch, theta.copy(),
            np.zeros(size), np.zeros(size), *settings,
        )[2]  # fmt: skip

    kernel(batch)  # numba compiles or loads the kernel
    n_ref = min(args.reference_rows, args.n_samples)
    kernel_time, _ = _best(lambda: kernel(args.n_samples), args.repeat)
    kernel_small, ours = _best(lambda: kernel(n_ref), args.repeat)
    reference_small, theirs = _best(lambda: reference(n_ref), 1)
    logistic, _ = _best(lambda: LogisticRegression().fit(X, y), args.repeat)
    fits = kernel_time / logistic
    difference = np.abs(ours - theirs).max()
    print(
        f"\nrows {args.n_samples:,}, d={n_features}, K={n_experts}, C={n_classes}, "
        f"batch {batch}"
    )
    print(
        f"numba kernel, one epoch: {kernel_time:.3f} CPU s ({fits:.2f} "
        f"LogisticRegression fits of {logistic:.3f} s)"
    )
    print(
        f"on {n_ref:,} rows: numba {kernel_small:.3f} s, NumPy reference "
        f"{reference_small:.3f} s: {reference_small / kernel_small:.0f}x; "
        f"largest parameter difference {difference:.1e}"
    )

if __name__ == "__main__":
    main()
