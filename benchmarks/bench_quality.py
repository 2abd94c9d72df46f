"""Held-out quality of mixtures of logistic-regression experts on real data.

For every classification data set that ships with scikit-learn, a 5-fold stratified
cross-validation (shuffled, seed 0) of a standardised pipeline compares one
LogisticRegression with MixtureOfExpertsClassifier(LogisticRegression, n_experts=K)
under soft and hard routing: accuracy, log loss and top-label ECE (15 equal-width
bins), averaged over the folds. Every model uses the same expert configuration; nothing
is tuned per data set.

    python benchmarks/bench_quality.py            # prints a Markdown table
"""

import argparse
import platform
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier
from skmoe.metrics import expected_calibration_error

LOADERS = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}


def models(n_experts_grid):
    expert = LogisticRegression(max_iter=2000)
    yield "LogisticRegression", expert
    for n_experts in n_experts_grid:
        for routing in ("soft", "hard"):
            yield (
                f"MoE {routing}, K={n_experts}",
                MixtureOfExpertsClassifier(
                    expert, n_experts=n_experts, routing=routing, random_state=0
                ),
            )


def evaluate(model, X, y, cv):
    scores = []
    for train, test in cv.split(X, y):
        pipeline = make_pipeline(StandardScaler(), model).fit(X[train], y[train])
        proba = pipeline.predict_proba(X[test])
        scores.append(
            (
                accuracy_score(y[test], pipeline.classes_[proba.argmax(axis=1)]),
                log_loss(y[test], proba, labels=pipeline.classes_),
                expected_calibration_error(y[test], proba, labels=pipeline.classes_),
            )
        )
    return np.mean(scores, axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-experts", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}")
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    print("| data | model | accuracy | log loss | ECE | seconds |")
    print("|---|---|---|---|---|---|")
    for name, loader in LOADERS.items():
        X, y = loader(return_X_y=True)
        for label, model in models(args.n_experts):
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                accuracy, loss, ece = evaluate(model, X, y, cv)
            seconds = time.perf_counter() - tic
            print(
                f"| {name} | {label} | {accuracy:.4f} | {loss:.4f} | {ece:.4f} "
                f"| {seconds:.1f} |"
            )


if __name__ == "__main__":
    main()
