"""What ``expert_calibration`` does to the mixture under hard, soft and top-k routing.

Every expert's calibration map is fitted on its *region*, the samples it is the top
expert for (under hard routing, the samples it is given), from cross-fitted
probabilities. Under hard routing this is the premise of the paper's theorem; under
soft and top-k routing the mixture averages the experts, and a map fitted on the
region says nothing about the rest of the prediction. This script measures, on seven
in-distribution tasks (no shift: calibration on the training distribution), whether the
calibrated mixture is better or worse than the uncalibrated one in top-label ECE (15
bins) and log loss on held-out data:

- ``3regions``: 2 features, three bands of feature 0 holding the classes {0}, {1}
  and {2, 3}; 600 training and 3000 test rows; 3 experts (experts that never saw a
  class: the case where the earlier gate-weighted maps failed).
- ``xor`` and ``xor-tree``: 2 features, label = sign(x0 * x1); 1000 / 3000 rows;
  3 experts, logistic regression or ``DecisionTreeClassifier(min_samples_leaf=5)``.
- ``2regions-tree``: 4 features, a noisy label that follows feature 1 where
  feature 0 > 0 and feature 2 elsewhere; 2000 / 3000 rows; 2 tree experts.
- ``digits``, ``breast-cancer``, ``synthetic-4``: standardised, half for training,
  stratified; 4, 3 and 4 experts (``synthetic-4``: ``make_classification`` with
  3000 rows, 10 features, 4 classes).

Every mixture has ``max_iter=30`` and otherwise default parameters (top-k: k = 2);
seeds 0, 1, 2 (data and ``random_state``). The report is printed as Markdown.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        python benchmarks/expert_calibration_routing.py
"""

import datetime
import os
import platform
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skmoe import MixtureOfExpertsClassifier
from skmoe.metrics import expected_calibration_error

sys.path.insert(0, os.path.dirname(__file__))
from calibration_under_shift import git_commit, machine  # noqa: E402

ROUTINGS = ("hard", "soft", "topk")
METHODS = ("temperature", "sigmoid", "isotonic")
SEEDS = (0, 1, 2)


def three_regions(seed):
    def draw(n_samples, rng):
        X = rng.normal(size=(n_samples, 2))
        y = np.select([X[:, 0] < -0.5, X[:, 0] < 0.5], [0, 1], 2)
        y[X[:, 0] > 0.5] += X[X[:, 0] > 0.5, 1] > 0
        return X, y

    rng = np.random.default_rng(seed)
    return (*draw(600, rng), *draw(3000, rng))


def xor(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(4000, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    return X[:1000], y[:1000], X[1000:], y[1000:]


def two_regions(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5000, 4))
    logit = np.where(X[:, 0] > 0, 2 * X[:, 1], -2 * X[:, 2])
    y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-logit))).astype(int)
    return X[:2000], y[:2000], X[2000:], y[2000:]


def _halves(X, y, seed):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), y_train, scaler.transform(X_test), y_test


def digits(seed):
    return _halves(*load_digits(return_X_y=True), seed)


def breast_cancer(seed):
    return _halves(*load_breast_cancer(return_X_y=True), seed)


def synthetic(seed):
    X, y = make_classification(
        3000, 10, n_informative=6, n_classes=4, n_clusters_per_class=2,
        random_state=seed,
    )
    return _halves(X, y, seed)


TREE = DecisionTreeClassifier(min_samples_leaf=5)
TASKS = {
    "3regions": (three_regions, None, 3),
    "xor": (xor, None, 3),
    "xor-tree": (xor, TREE, 3),
    "2regions-tree": (two_regions, TREE, 2),
    "digits": (digits, None, 4),
    "breast-cancer": (breast_cancer, None, 3),
    "synthetic-4": (synthetic, None, 4),
}


def scores(model, X_test, y_test, labels):
    proba = model.predict_proba(X_test)
    return (
        expected_calibration_error(y_test, proba, binary="top_label"),
        log_loss(y_test, proba, labels=labels),
        float(np.mean(model.predict(X_test) == y_test)),
    )


def main():
    started = time.time()
    load_before = machine()[2]
    rows = []  # (task, routing, method, seed, d_ece, d_log_loss, d_accuracy)
    for task, (load, expert, n_experts) in TASKS.items():
        for seed in SEEDS:
            X, y, X_test, y_test = load(seed)
            labels = np.unique(y)
            for routing in ROUTINGS:
                params = dict(
                    expert=expert, n_experts=n_experts, routing=routing,
                    max_iter=30, random_state=seed,
                )
                raw = scores(
                    MixtureOfExpertsClassifier(**params).fit(X, y),
                    X_test, y_test, labels,
                )
                for method in METHODS:
                    model = MixtureOfExpertsClassifier(
                        **params, expert_calibration=method
                    ).fit(X, y)
                    calibrated = scores(model, X_test, y_test, labels)
                    rows.append(
                        (task, routing, method, seed,
                         *(after - before for after, before in zip(
                             calibrated, raw, strict=True)))
                    )
            print(f"<!-- {task} seed {seed} done -->", file=sys.stderr, flush=True)
    model_name, n_cpus, load_after = machine()
    print("# Expert calibration under hard, soft and top-k routing\n")
    print(
        "Generated by `benchmarks/expert_calibration_routing.py` (do not edit by "
        "hand).\n\n"
        "- command: `OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python "
        "benchmarks/expert_calibration_routing.py > "
        "benchmarks/README_expert_calibration_routing.md`\n"
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; wall "
        f"time {(time.time() - started) / 60:.1f} min\n"
        f"- machine: {model_name}, {n_cpus} logical cores, shared (load average "
        f"{load_before} before, {load_after} after); Python "
        f"{platform.python_version()}; skmoe commit `{git_commit()}`\n"
        f"- tasks: {', '.join(TASKS)}; seeds {', '.join(map(str, SEEDS))}\n"
    )
    print(
        "Calibrated minus uncalibrated mixture on held-out data, for the same "
        "parameters and seed: top-label ECE (15 bins) and log loss (lower is "
        "better) and accuracy (points). *worse*: the runs (of 7 tasks x 3 seeds) "
        "where calibration raised the ECE or the log loss by more than 0.005.\n"
    )
    print("| routing | method | mean Δ ECE | ECE worse | mean Δ log loss "
          "| log loss worse | worst Δ log loss | mean Δ accuracy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    data = np.array([row[4:] for row in rows])
    keys = [(row[1], row[2]) for row in rows]
    for routing in ROUTINGS:
        for method in METHODS:
            selected = data[[key == (routing, method) for key in keys]]
            d_ece, d_loss, d_acc = selected.T
            print(
                f"| {routing} | {method} | {d_ece.mean():+.3f} "
                f"| {(d_ece > 0.005).sum()} of {d_ece.size} | {d_loss.mean():+.3f} "
                f"| {(d_loss > 0.005).sum()} of {d_loss.size} | {d_loss.max():+.3f} "
                f"| {100 * d_acc.mean():+.1f} |"
            )
    print("\n## Per task (mean over seeds)\n")
    print("| task | routing | method | Δ ECE | Δ log loss | Δ accuracy |")
    print("|---|---|---|---:|---:|---:|")
    for task in TASKS:
        for routing in ROUTINGS:
            for method in METHODS:
                selected = data[
                    [(row[0], row[1], row[2]) == (task, routing, method)
                     for row in rows]
                ]
                d_ece, d_loss, d_acc = selected.mean(axis=0)
                print(
                    f"| {task} | {routing} | {method} | {d_ece:+.3f} "
                    f"| {d_loss:+.3f} | {100 * d_acc:+.1f} |"
                )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        main()
