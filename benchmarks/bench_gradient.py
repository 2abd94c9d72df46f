"""Speed and quality of ``solver="gradient"`` (joint training) against EM.

Two measurements:

1. The joint kernel :func:`skmoe._kernels.joint.joint_loss_grad` (per-sample losses of
   the mixture and the gradient of ``sum_i c_i L_i`` over gate and expert
   coefficients, one pass over the rows) against a plain NumPy reference that forms
   the ``(n, K, C)`` array of expert log-probabilities, on ``n=100_000``, ``d=20``,
   ``K=4``, ``C=3``, float64. Also the two-pass form the tilted objectives use
   (``joint_losses`` then ``joint_loss_grad``).
2. ``MixtureOfExpertsClassifier`` trained by ``solver="em"`` and ``"gradient"``, with
   and without adversarial reweighting (Danskin and through-weights gradients), on
   digits (a stratified 70/30 split) and on ``make_shifted_classification``
   (covariate shift; trained on domain 0, tested on held-out domain-0 samples and on
   the most shifted domain): fit time, and held-out log loss, accuracy and top-label
   ECE (15 equal-width bins).

Times are the best of ``--repeat`` calls (``time.perf_counter``; part 2: of
``--repeat // 5`` fits) after a warm-up call that compiles (or loads) the numba
kernels. Run from the repository root with one BLAS and one OpenMP thread (k-means,
the default start of both solvers, runs OpenMP threads that on a busy 2-core machine
made a fit vary between 0.05 s and 0.85 s)::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    python benchmarks/bench_gradient.py --repeat 15
    python benchmarks/bench_gradient.py --quick
"""

import argparse
import os
import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_core import best_times, machine_description  # noqa: E402

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
)
from _naive import joint_loss_grad as numpy_loss_grad  # noqa: E402

from skmoe import MixtureOfExpertsClassifier  # noqa: E402
from skmoe._kernels.joint import joint_loss_grad, joint_losses  # noqa: E402
from skmoe.datasets import make_shifted_classification  # noqa: E402
from skmoe.metrics import expected_calibration_error  # noqa: E402
from skmoe.reweighting import AdversarialReweighting  # noqa: E402


def part_kernel(n_samples, repeat):
    n_features, n_experts, n_classes = 20, 4, 3
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    gate = rng.normal(size=(n_experts, n_features + 1))
    experts = rng.normal(size=(n_experts, n_classes, n_features + 1))
    coefficients = np.full(n_samples, 1.0 / n_samples)
    losses = np.empty(n_samples)
    grad_gate, grad_experts = np.empty_like(gate), np.empty_like(experts)

    def kernel():
        joint_loss_grad(
            X, y, gate, experts, coefficients, losses, grad_gate, grad_experts
        )

    def two_pass():
        joint_losses(X, y, gate, experts, np.empty(n_samples))
        kernel()

    def reference():
        numpy_loss_grad(X, y, gate, experts, coefficients)

    kernel()  # compile or load the cache
    two_pass()
    expected_losses, _, expected_gate, expected_experts = numpy_loss_grad(
        X, y, gate, experts, coefficients
    )
    assert np.allclose(losses, expected_losses)
    assert np.allclose(grad_gate, expected_gate)
    assert np.allclose(grad_experts, expected_experts)
    times = best_times(
        {"kernel": kernel, "two_pass": two_pass, "numpy": reference}, repeat
    )
    print(
        f"\n## 1. joint loss + gradient, n={n_samples}, d={n_features}, "
        f"K={n_experts}, C={n_classes}, float64 (best of {repeat})"
    )
    print(f"numba kernel, one pass:        {times['kernel'] * 1e3:8.1f} ms")
    print(f"numba, losses then gradient:   {times['two_pass'] * 1e3:8.1f} ms")
    print(f"NumPy reference:               {times['numpy'] * 1e3:8.1f} ms")
    print(f"NumPy / kernel:                {times['numpy'] / times['kernel']:8.1f}x")


def configurations(gradient_max_iter):
    em = {"solver": "em"}
    joint = {"solver": "gradient", "max_iter": gradient_max_iter}
    return {
        "em": em,
        "em + adversarial": {**em, "reweighting": AdversarialReweighting()},
        "gradient": joint,
        "gradient + adversarial (danskin)": {
            **joint,
            "reweighting": AdversarialReweighting(gradient="danskin"),
        },
        "gradient + adversarial (through_weights)": {
            **joint,
            "reweighting": AdversarialReweighting(gradient="through_weights"),
        },
    }


def evaluate(model, X, y):
    proba = model.predict_proba(X)
    return (
        log_loss(y, proba, labels=model.classes_),
        accuracy_score(y, model.classes_[proba.argmax(axis=1)]),
        expected_calibration_error(y, proba),
    )


def part_quality(datasets, n_experts, gradient_max_iter, repeat):
    print(
        f"\n## 2. solver='gradient' vs 'em', n_experts={n_experts}, "
        f"gradient max_iter={gradient_max_iter}, EM max_iter=100 (best of {repeat})"
    )
    for name, (X_train, y_train, tests) in datasets.items():
        print(
            f"\n### {name}: {X_train.shape[0]} training samples, "
            f"{X_train.shape[1]} features, {np.unique(y_train).size} classes"
        )
        header = "| configuration | fit s | iterations | converged |"
        for test_name in tests:
            header += f" {test_name}: log loss / acc / ECE |"
        print(header)
        print("|" + "---|" * (4 + len(tests)))
        for label, params in configurations(gradient_max_iter).items():
            model = MixtureOfExpertsClassifier(
                n_experts=n_experts, random_state=0, **params
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                times = best_times(
                    {"fit": lambda m=model, X=X_train, y=y_train: m.fit(X, y)}, repeat
                )
            row = (
                f"| {label} | {times['fit']:.2f} | {model.n_iter_} | "
                f"{model.converged_} |"
            )
            for X_test, y_test in tests.values():
                loss, accuracy, ece = evaluate(model, X_test, y_test)
                row += f" {loss:.3f} / {accuracy:.3f} / {ece:.3f} |"
            print(row, flush=True)


def load_datasets(quick):
    X, y = load_digits(return_X_y=True)
    if quick:
        X, y = X[:600], y[:600]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    datasets = {
        "digits": (
            scaler.transform(X_train),
            y_train,
            {"held out": (scaler.transform(X_test), y_test)},
        )
    }
    n_samples = 1500 if quick else 6000
    X, y, domains = make_shifted_classification(
        n_samples,
        n_features=5,
        n_classes=3,
        n_domains=3,
        shift="covariate",
        random_state=0,
    )
    source = np.flatnonzero(domains == 0)
    train, held_out = source[: source.size * 2 // 3], source[source.size * 2 // 3 :]
    shifted = np.flatnonzero(domains == 2)
    datasets["shifted_classification (covariate)"] = (
        X[train],
        y[train],
        {
            "domain 0 held out": (X[held_out], y[held_out]),
            "domain 2": (X[shifted], y[shifted]),
        },
    )
    return datasets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--n-experts", type=int, default=3)
    parser.add_argument("--gradient-max-iter", type=int, default=500)
    args = parser.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    print("\n".join(machine_description()))
    part_kernel(10_000 if args.quick else 100_000, repeat)
    part_quality(
        load_datasets(args.quick),
        args.n_experts,
        args.gradient_max_iter,
        1 if args.quick else max(1, repeat // 5),
    )


if __name__ == "__main__":
    main()
