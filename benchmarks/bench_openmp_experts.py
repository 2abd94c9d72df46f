"""What OpenMP threads cost linear-model experts when a core is busy.

skmoe fits scikit-learn's linear models as experts (and runs its k-means start) with
one OpenMP thread. This script fits a mixture of two ``PoissonRegressor`` experts
(30,000 rows, 3 features, ``max_iter=30``, one BLAS thread) with that limit and
without it (``skmoe._base._one_openmp_thread`` replaced by a no-op, so OpenMP runs
as many threads as there are cores), alternating, ``--repeat`` times each, while one
busy process (a Python loop) holds a core, and prints every wall time.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_openmp_experts.py --repeat 5
"""

import argparse
import contextlib
import multiprocessing
import os
import time
import warnings

import numpy as np
from sklearn.linear_model import PoissonRegressor

import skmoe._base
from skmoe import MixtureOfExpertsRegressor


def _busy(stop):
    while not stop.is_set():
        pass


def fit_time(X, y, limited):
    limit = skmoe._base._one_openmp_thread
    if not limited:
        skmoe._base._one_openmp_thread = contextlib.nullcontext
    try:
        started = time.perf_counter()
        MixtureOfExpertsRegressor(
            PoissonRegressor(), n_experts=2, likelihood="poisson", max_iter=30,
            random_state=0,
        ).fit(X, y)
        return time.perf_counter() - started
    finally:
        skmoe._base._one_openmp_thread = limit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30000, 3))
    y = rng.poisson(np.exp(np.where(X[:, 0] > 0, X[:, 1], -X[:, 2])))
    fit_time(X[:300], y[:300], True)  # compile and load everything once
    stop = multiprocessing.Event()
    busy = multiprocessing.Process(target=_busy, args=(stop,), daemon=True)
    busy.start()
    times = {True: [], False: []}
    try:
        for _ in range(args.repeat):
            for limited in (False, True):
                times[limited].append(fit_time(X, y, limited))
    finally:
        stop.set()
        busy.join()
    print(f"{os.cpu_count()} logical cores, one busy process, load average "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for limited, label in ((False, "OpenMP threads as the machine"),
                           (True, "one OpenMP thread (skmoe)")):
        values = ", ".join(f"{value:.2f}" for value in times[limited])
        print(f"{label}: {values} s (median {np.median(times[limited]):.2f} s)")


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
