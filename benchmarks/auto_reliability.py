"""How often the default classifier (``solver="auto"``, Adam on large data) lands in
a poor optimum, over seeds, and whether the minibatch size changes that.

On the known mixture of ``time_to_good_model.py`` (8 logistic experts behind a
softmax gate, 20 features, 3 classes), fit ``MixtureOfExpertsClassifier(
LogisticRegression(), n_experts=8, random_state=seed)`` for each seed and report
the held-out log loss and how many seeds end above ``--poor`` (0.25; Bayes is about
0.21). ``--batch-sizes`` are values of the classifier's ``batch_size``, which
"auto" hands to Adam (its step budget then sets the epochs).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/auto_reliability.py \
        --n-train 200000 100000 --batch-sizes 128 64 32

``--starts``, ``--screen-steps`` and ``--step-budget`` override "auto"'s racing of
starts and its step budget (``skmoe.solvers._auto``'s ``N_STARTS``,
``SCREEN_STEPS``, ``STEP_BUDGET``; each value one row) to measure the choice.
"""

import argparse
import time
import warnings

import numpy as np
from bench_core import machine_description
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from time_to_good_model import make_known_mixture

from skmoe import MixtureOfExpertsClassifier
from skmoe.solvers import _auto


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, nargs="+", default=[200_000, 100_000])
    parser.add_argument("--n-test", type=int, default=50_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first-seed, +1, ..."
    )
    parser.add_argument("--poor", type=float, default=0.25)
    parser.add_argument("--starts", type=int, nargs="+", default=[_auto.N_STARTS])
    parser.add_argument(
        "--screen-steps", type=int, nargs="+", default=[_auto.SCREEN_STEPS]
    )
    parser.add_argument(
        "--step-budget", type=int, nargs="+", default=[_auto.STEP_BUDGET]
    )
    args = parser.parse_args()
    settings = [
        (batch_size, starts, screen, budget)
        for batch_size in args.batch_sizes
        for starts in args.starts
        for screen in args.screen_steps
        for budget in args.step_budget
    ]
    warnings.simplefilter("ignore", ConvergenceWarning)
    print("\n".join(machine_description()))
    # numba loads (or compiles) Adam's kernel once per process: not in a timing
    X, y, _ = make_known_mixture(2_000)
    MixtureOfExpertsClassifier(n_experts=8, solver="adam", max_iter=1).fit(X, y)
    print(
        "\n| rows | batch_size | starts | screen steps | step budget | seeds above "
        f"{args.poor} | median log loss | worst | CPU time / LR fit (median, max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n_train in args.n_train:
        X, y, _ = make_known_mixture(n_train + args.n_test)
        X_test, y_test = X[n_train:], y[n_train:]
        X, y = X[:n_train], y[:n_train]
        logistic = []
        for _ in range(3):
            start = time.process_time()
            LogisticRegression().fit(X, y)
            logistic.append(time.process_time() - start)
        for batch_size, starts, screen, budget in settings:
            _auto.N_STARTS, _auto.SCREEN_STEPS = starts, screen
            _auto.STEP_BUDGET = budget
            losses, ratios = [], []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                model = MixtureOfExpertsClassifier(
                    LogisticRegression(),
                    n_experts=8,
                    batch_size=batch_size,
                    random_state=seed,
                )
                start = time.process_time()
                model.fit(X, y)
                ratios.append((time.process_time() - start) / min(logistic))
                losses.append(log_loss(y_test, model.predict_proba(X_test)))
            losses = np.array(losses)
            print(
                f"| {n_train:,} | {batch_size} | {starts} | {screen:,} | {budget:,} | "
                f"{(losses > args.poor).sum()} of {args.seeds} | "
                f"{np.median(losses):.4f} | {losses.max():.4f} | "
                f"{np.median(ratios):.1f}, {max(ratios):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
