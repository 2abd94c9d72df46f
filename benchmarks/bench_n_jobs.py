"""When does ``n_jobs`` speed up a mixture's fit? Fit time with n_jobs=None and 2.

Hard routing, 4 experts, 3 EM iterations (``tol=0``), on ``make_classification``
data (20 features, seed 0): logistic-regression experts on 200,000 rows, and
histogram gradient boosting experts (50 iterations) on 50,000 rows. Each setting is
fitted twice, alternating, and the faster fit is kept. Run with one BLAS and one
OpenMP thread per process, as the user guide advises when ``n_jobs`` is used:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_n_jobs.py
"""

import time
import warnings

from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skmoe import MixtureOfExpertsClassifier

CASES = [
    ("4 LogisticRegression(max_iter=200)", LogisticRegression(max_iter=200), 200_000),
    ("4 HistGradientBoostingClassifier(max_iter=50)",
     HistGradientBoostingClassifier(max_iter=50), 50_000),
]


def main():
    X, y = make_classification(
        n_samples=200_000, n_features=20, n_informative=10, random_state=0
    )
    print("| experts | rows | n_jobs=None (s) | n_jobs=2 (s) | ratio 2 / None |")
    print("|---|---|---|---|---|")
    for name, expert, n_rows in CASES:
        times = {None: [], 2: []}
        for n_jobs in (None, 2, None, 2):
            model = MixtureOfExpertsClassifier(
                expert, n_experts=4, routing="hard", max_iter=3, tol=0,
                random_state=0, n_jobs=n_jobs,
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X[:n_rows], y[:n_rows])
            times[n_jobs].append(time.perf_counter() - start)
        serial, parallel = min(times[None]), min(times[2])
        print(f"| {name} | {n_rows} | {serial:.2f} | {parallel:.2f} "
              f"| {parallel / serial:.2f} |", flush=True)


if __name__ == "__main__":
    main()
