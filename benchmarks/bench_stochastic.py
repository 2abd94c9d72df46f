"""Speed, held-out quality and streaming memory of ``solver="adam"``.

Three measurements, in one run:

1. **Speed target of issue 12.** ``MixtureOfExpertsClassifier(n_experts=8,
   solver="adam")`` (no hidden layer) trained on ``n=100_000`` samples, ``d=20``
   features, 3 classes (``make_classification``), against one
   ``LogisticRegression()`` fit on the same data: the ratio of the two wall-clock
   times (each the best of ``--repeat`` fits, measured in the same run after a
   warm-up fit that compiles or loads the numba kernels).
2. **Held-out log loss** on 20,000 further samples of the same generator: the
   logistic regression, ``solver="adam"``, ``solver="gradient"`` and ``solver="em"``
   (``n_experts=8`` each; their fit time too, one fit each).
3. **partial_fit memory.** ``partial_fit`` over chunks of 5,000 samples generated on
   the fly (each chunk dropped after its call), for two numbers of chunks: the peak
   of the memory traced by :mod:`tracemalloc` (NumPy's buffers included) during the
   loop, which must not grow with the number of chunks.
4. **Minibatch tilts, both ways.** The authors' 50 epochs with 20 untilted
   (``warmup=0.4``), ``eta=2``, in Danskin's form and through the weights, each
   with and without our two extensions (the ``min_ess`` bound and the
   class-conditional tilt), on an imbalanced binary task: held-out mean predicted
   positive rate, log loss, accuracy and top-label ECE, in distribution and on a
   label-shifted test set (positives three times rarer).

Run from the repository root with one BLAS and one OpenMP thread::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    python benchmarks/bench_stochastic.py --repeat 3
    python benchmarks/bench_stochastic.py --quick
"""

import argparse
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_core import machine_description  # noqa: E402

from skmoe import MixtureOfExpertsClassifier  # noqa: E402
from skmoe.metrics import expected_calibration_error  # noqa: E402
from skmoe.reweighting import AdversarialReweighting  # noqa: E402

N_FEATURES, N_CLASSES, N_EXPERTS = 20, 3, 8
# solver="adam" as timed: max_iter counts epochs
ADAM = {"solver": "adam", "max_iter": 10, "random_state": 0}


def make_data(n_train, n_test, seed=0):
    X, y = make_classification(
        n_train + n_test,
        N_FEATURES,
        n_informative=10,
        n_classes=N_CLASSES,
        n_clusters_per_class=3,
        random_state=seed,
    )
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def best_time(make, X, y, repeat):
    best, model = np.inf, None
    for _ in range(repeat):
        estimator = make()
        tic = time.perf_counter()
        estimator.fit(X, y)
        elapsed = time.perf_counter() - tic
        if elapsed < best:
            best, model = elapsed, estimator
    return best, model


def part_speed_and_quality(n_train, n_test, repeat, em_iter, gradient_iter):
    X, y, X_test, y_test = make_data(n_train, n_test)
    # compile (or load) the kernels outside the timings
    MixtureOfExpertsClassifier(n_experts=N_EXPERTS, **ADAM).fit(X[:2000], y[:2000])
    logistic_time, logistic = best_time(LogisticRegression, X, y, repeat)
    adam_time, adam = best_time(
        lambda: MixtureOfExpertsClassifier(n_experts=N_EXPERTS, **ADAM), X, y, repeat
    )
    print(f"\n## Speed: n={n_train}, d={N_FEATURES}, K={N_EXPERTS}, C={N_CLASSES}")
    print(f"LogisticRegression() fit: {logistic_time:.3f} s (best of {repeat})")
    print(
        f"solver='adam' {ADAM} fit: {adam_time:.3f} s (best of {repeat}), "
        f"{adam.n_iter_} epochs"
    )
    print(f"ratio adam / LogisticRegression: {adam_time / logistic_time:.2f}")

    rows = [("LogisticRegression()", logistic_time, logistic)]
    rows.append((f"adam {ADAM}", adam_time, adam))
    for name, params in [
        ("gradient", {"solver": "gradient", "max_iter": gradient_iter}),
        ("em", {"solver": "em", "max_iter": em_iter}),
    ]:
        estimator = MixtureOfExpertsClassifier(
            n_experts=N_EXPERTS, random_state=0, **params
        )
        tic = time.perf_counter()
        estimator.fit(X, y)
        rows.append((f"{name} max_iter={params['max_iter']}", time.perf_counter() - tic,
                     estimator))
    print(f"\n## Held-out ({n_test} samples)")
    print("| model | fit time (s) | time / LogisticRegression | log loss | accuracy |")
    print("|---|---|---|---|---|")
    for name, elapsed, model in rows:
        proba = model.predict_proba(X_test)
        print(
            f"| {name} | {elapsed:.2f} | {elapsed / logistic_time:.2f} | "
            f"{log_loss(y_test, proba):.4f} | "
            f"{accuracy_score(y_test, model.classes_[proba.argmax(axis=1)]):.4f} |"
        )


def _stream(n_chunks, chunk_size):
    """Chunks of the generator, made one at a time."""
    for index in range(n_chunks):
        X, y, _, _ = make_data(chunk_size, 0, seed=index)
        yield X, y


def part_partial_fit(chunk_counts, chunk_size):
    print(f"\n## partial_fit over chunks of {chunk_size} samples")
    print("| chunks | samples seen | peak traced memory (MB) | time (s) |")
    print("|---|---|---|---|")
    classes = np.arange(N_CLASSES)
    # compile outside the measurement
    warm = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, **ADAM)
    for X, y in _stream(1, 1000):
        warm.partial_fit(X, y, classes=classes)
    for n_chunks in chunk_counts:
        model = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, **ADAM)
        tracemalloc.start()
        tic = time.perf_counter()
        for X, y in _stream(n_chunks, chunk_size):
            model.partial_fit(X, y, classes=classes)
            del X, y
        elapsed = time.perf_counter() - tic
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"| {n_chunks} | {n_chunks * chunk_size} | {peak / 2**20:.2f} | "
            f"{elapsed:.2f} |"
        )


def _label_shifted(X, y, rate, rng):
    """A subsample of ``(X, y)`` whose positive rate is ``rate``."""
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_positive = int(round(rate * negatives.size / (1 - rate)))
    keep = np.concatenate(
        [negatives, rng.choice(positives, size=n_positive, replace=False)]
    )
    return X[keep], y[keep]


def part_tilts(n_train, n_test, epochs):
    """The minibatch tilt in both gradient forms, with and without our extensions
    (the ``min_ess`` bound, the class-conditional tilt), on an imbalanced binary
    task, tested in distribution and under label shift (positives 3x rarer)."""
    X, y = make_classification(
        n_train + n_test,
        10,
        n_informative=5,
        weights=[0.85],
        flip_y=0.05,
        n_clusters_per_class=2,
        random_state=0,
    )
    X_test, y_test = X[n_train:], y[n_train:]
    X, y = X[:n_train], y[:n_train]
    rng = np.random.default_rng(0)
    shifted = _label_shifted(X_test, y_test, y_test.mean() / 3, rng)
    print(
        f"\n## Minibatch tilts: imbalanced binary task, {n_train} training rows "
        f"(positive rate {y.mean():.3f}), {epochs} epochs, 3 experts, eta=2"
    )
    print(
        "held-out in distribution (positive rate "
        f"{y_test.mean():.3f}) and label-shifted (rate {shifted[1].mean():.3f}); "
        "mean P(y=1), log loss, accuracy, top-label ECE (15 bins)"
    )
    print(
        "| reweighting | mean P(y=1) | log loss | accuracy | ECE "
        "| shifted: mean P(y=1) | log loss | accuracy | ECE |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    settings = [("none", None)]
    for gradient in ("danskin", "through_weights"):
        for min_ess in (None, 0.5):
            for conditional in (False, True):
                settings.append(
                    (
                        f"{gradient}, min_ess={min_ess}, "
                        f"class_conditional={conditional}",
                        AdversarialReweighting(
                            eta=2.0,
                            gradient=gradient,
                            min_ess=min_ess,
                            class_conditional=conditional,
                        ),
                    )
                )
    for name, reweighting in settings:
        model = MixtureOfExpertsClassifier(
            n_experts=3,
            solver="adam",
            max_iter=epochs,
            reweighting=reweighting,
            random_state=0,
        ).fit(X, y)
        cells = []
        for X_eval, y_eval in ((X_test, y_test), shifted):
            proba = model.predict_proba(X_eval)
            cells += [
                f"{proba[:, 1].mean():.3f}",
                f"{log_loss(y_eval, proba):.4f}",
                f"{accuracy_score(y_eval, proba.argmax(axis=1)):.4f}",
                f"{expected_calibration_error(y_eval, proba):.4f}",
            ]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--tilts-only", action="store_true", help="run part 4 only (full size)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print("# bench_stochastic")
    print("\n".join(machine_description()))
    if args.tilts_only:
        part_tilts(20_000, 20_000, 50)
    elif args.quick:
        part_speed_and_quality(10_000, 2_000, 1, em_iter=5, gradient_iter=50)
        part_partial_fit((2, 4), 1000)
        part_tilts(2000, 2000, 10)
    else:
        part_speed_and_quality(
            100_000, 20_000, args.repeat, em_iter=20, gradient_iter=300
        )
        part_partial_fit((10, 40), 5000)
        part_tilts(20_000, 20_000, 50)


if __name__ == "__main__":
    main()
