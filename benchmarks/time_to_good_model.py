"""Time to a good model: each solver against one LogisticRegression fit (issue 13).

Data: a known mixture of ``K=8`` logistic experts behind a softmax gate
(:func:`make_known_mixture`: ``d=20`` standard normal features, 3 classes, gate and
expert coefficients drawn once from seed 0), ``--n-train`` training rows (200,000)
and ``--n-test`` held-out rows (50,000); the Bayes log loss, the held-out log loss
of the true model, is printed.

For every solver the held-out log loss is followed along the fit, and the time to a
held-out log loss within ``--margin`` (0.01) of the best that any solver reached is
reported as a ratio to one ``LogisticRegression()`` fit on the same rows, timed in
the same run (the best of 3 fits, before and after the solvers). Times are CPU
seconds of this process (``time.process_time``): with one BLAS and one OpenMP thread
and single-threaded numba kernels they equal wall time on an idle machine, and
other jobs on a shared machine do not inflate them. How each solver is followed:

- EM (soft and hard routing; ``max_iter`` capped at ``--em-max-iter``): the
  experts and gate after every M-step, copied by a hook on the E-step;
- ``solver="gradient"`` (``max_iter=500``): the coefficients after every L-BFGS
  iteration, by a hook on its ``minimize`` call;
- ``solver="adam"`` (minibatches of 128, its default, and of 16): one fresh fit
  per budget of epochs (the cosine schedule spans ``max_iter``), as a user would
  choose ``max_iter``;
- the default ``MixtureOfExpertsClassifier(LogisticRegression(), n_experts=8)``
  (``solver="auto"``): one fit per seed in ``--seeds``, as it comes.

The copies and held-out evaluations are made with the clock stopped. Run from the
repository root (``PYTHONPATH=.`` when the installed skmoe is another copy)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/time_to_good_model.py
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/time_to_good_model.py \\
        --n-train 50000 --em-max-iter 100    # 50k rows, EM to convergence
"""

import argparse
import copy
import os
import sys
import time
import warnings

import numpy as np
from scipy.special import log_softmax, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_core import machine_description  # noqa: E402

from skmoe import MixtureOfExpertsClassifier  # noqa: E402
from skmoe import _base as skmoe_base  # noqa: E402
from skmoe.solvers import _auto, _em, _gradient  # noqa: E402

N_FEATURES, N_EXPERTS, N_CLASSES = 20, 8, 3
# Scales of the gate's and the experts' coefficient vectors: a sharp gate and
# confident experts, for a Bayes log loss near 0.21
GATE_SCALE, EXPERT_SCALE = 13.0, 15.0
# (key for --skip, label, parameters, budgets of epochs) of solver="adam": its
# defaults (minibatches of 128), and minibatches of 16, whose progress per epoch is
# larger here
ADAM_LADDERS = [
    ("adam", "", {}, (1, 2, 3, 5, 7, 10, 15, 20)),
    ("adam-batch16", ", batch_size=16", {"batch_size": 16}, (1, 2, 3, 5)),
]
clock = time.process_time


def make_known_mixture(n_samples, random_state=0):
    """Rows of a fixed mixture of logistic experts and their Bayes log-likelihood.

    Returns ``X``, ``y`` and ``log P(y_i | x_i)`` under the true model.
    """
    model = np.random.default_rng(0)
    gate = model.normal(size=(N_EXPERTS, N_FEATURES)) * GATE_SCALE / np.sqrt(N_FEATURES)
    experts = (
        model.normal(size=(N_EXPERTS, N_CLASSES, N_FEATURES))
        * EXPERT_SCALE
        / np.sqrt(N_FEATURES)
    )
    intercepts = model.normal(size=(N_EXPERTS, N_CLASSES))
    rng = np.random.default_rng(1000 + random_state)
    X = rng.normal(size=(n_samples, N_FEATURES))
    log_gate = log_softmax(X @ gate.T, axis=1)
    log_experts = log_softmax(np.einsum("nd,kcd->nkc", X, experts) + intercepts, axis=2)
    log_proba = logsumexp(log_gate[:, :, None] + log_experts, axis=1)
    cumulative = np.cumsum(np.exp(log_proba), axis=1)
    y = (rng.random(n_samples)[:, None] > cumulative).sum(axis=1)
    y = np.minimum(y, N_CLASSES - 1)
    return X, y, log_proba[np.arange(n_samples), y]


class Trace:
    """Snapshots of a model along a fit, with their CPU times (clock stopped while
    copying)."""

    def __init__(self):
        self.start = clock()
        self.paused = 0.0
        self.points = []

    def add(self, snapshot):
        tic = clock()
        self.points.append((tic - self.start - self.paused, copy.deepcopy(snapshot)))
        self.paused += clock() - tic


def held_out_loss(model, X_test, y_test):
    return log_loss(y_test, model.predict_proba(X_test), labels=[0, 1, 2])


def trace_em(params, X, y, X_test, y_test):
    """Held-out log loss after each EM iteration: [(seconds, loss)], the model."""
    model = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, solver="em", **params)
    original = _em._e_step
    trace = None

    def e_step(mixture, log_joint, weights):
        result = original(mixture, log_joint, weights)
        trace.add((mixture.experts_, mixture.gate_))
        return result

    _em._e_step = e_step
    try:
        trace = Trace()
        model.fit(X, y)
        total = clock() - trace.start - trace.paused
    finally:
        _em._e_step = original
    curve = []
    final = (model.experts_, model.gate_)
    for seconds, (experts, gate) in trace.points:
        model.experts_, model.gate_ = experts, gate
        curve.append((seconds, held_out_loss(model, X_test, y_test)))
    model.experts_, model.gate_ = final
    return curve, total, model


def trace_gradient(params, X, y, X_test, y_test):
    """Held-out log loss after each L-BFGS iteration of ``solver="gradient"``."""
    model = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, solver="gradient", **params)
    original = _gradient.minimize
    trace = None
    objectives = []

    def minimize(fun, x0, *args, callback=None, **kwargs):
        objectives.append(fun)

        def record(theta):
            trace.add(theta)
            if callback is not None:
                callback(theta)

        return original(fun, x0, *args, callback=record, **kwargs)

    _gradient.minimize = minimize
    try:
        trace = Trace()
        model.fit(X, y)
        total = clock() - trace.start - trace.paused
    finally:
        _gradient.minimize = original
    final = (model.experts_, model.gate_)
    curve = []
    templates = [LogisticRegression() for _ in range(N_EXPERTS)]
    gate = copy.deepcopy(model.gate_)
    for seconds, theta in trace.points:
        model.gate_ = gate
        _gradient._install(model, objectives[0], theta, templates, 0)
        curve.append((seconds, held_out_loss(model, X_test, y_test)))
    model.experts_, model.gate_ = final
    return curve, total, model


def adam_curve(params, budgets, X, y, X_test, y_test):
    """Held-out log loss of one ``solver="adam"`` fit per budget of epochs."""
    curve = []
    for epochs in budgets:
        seconds, model = timed_fit(
            MixtureOfExpertsClassifier(
                n_experts=N_EXPERTS,
                solver="adam",
                max_iter=epochs,
                random_state=0,
                **params,
            ),
            X,
            y,
        )
        curve.append((seconds, held_out_loss(model, X_test, y_test)))
        print(f"adam {params} {epochs}: {seconds:.2f} s, {curve[-1][1]:.4f}")
    return curve


def timed_fit(model, X, y):
    tic = clock()
    model.fit(X, y)
    return clock() - tic, model


def logistic_time(X, y, repeat=3):
    return min(timed_fit(LogisticRegression(), X, y)[0] for _ in range(repeat))


def first_reaching(curve, target):
    for seconds, loss in curve:
        if loss <= target:
            return seconds
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200_000)
    parser.add_argument("--n-test", type=int, default=50_000)
    parser.add_argument("--em-max-iter", type=int, default=30)
    parser.add_argument("--gradient-max-iter", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument(
        "--kmeans-rows",
        type=int,
        default=None,
        help="rows the k-means start finds its centres on (skmoe._base."
        "_KMEANS_MAX_ROWS; default: the library's)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        help="leave out: default, adam, adam-batch16, gradient, em-soft, em-hard",
    )
    parser.add_argument(
        "--auto-min-samples",
        type=int,
        default=None,
        help="fewest rows for which solver='auto' takes Adam (skmoe.solvers._auto."
        "MIN_SAMPLES; default: the library's)",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.auto_min_samples is not None:
        _auto.MIN_SAMPLES = args.auto_min_samples
    if args.kmeans_rows is not None:
        skmoe_base._KMEANS_MAX_ROWS = args.kmeans_rows
    wall = time.perf_counter()
    print("\n".join(machine_description()))
    print(
        f"k-means start on at most {skmoe_base._KMEANS_MAX_ROWS} rows; "
        f"solver='auto' takes Adam from {_auto.MIN_SAMPLES} rows"
    )
    X, y, log_proba = make_known_mixture(args.n_train + args.n_test)
    X_test, y_test = X[args.n_train :], y[args.n_train :]
    bayes = -float(log_proba[args.n_train :].mean())
    X, y = X[: args.n_train], y[: args.n_train]
    print(
        f"\nknown mixture: n_train={args.n_train}, n_test={args.n_test}, "
        f"d={N_FEATURES}, K={N_EXPERTS}, C={N_CLASSES}; held-out Bayes log loss "
        f"{bayes:.4f}"
    )
    # compile (or load) the numba kernels outside the timings
    for solver in ("adam", "gradient", "em"):
        MixtureOfExpertsClassifier(n_experts=2, solver=solver, max_iter=2).fit(
            X[:2000], y[:2000]
        )
    lr_before = logistic_time(X, y)
    logistic = LogisticRegression().fit(X, y)
    print(
        f"LogisticRegression(): {lr_before:.3f} CPU s (best of 3), held-out log "
        f"loss {held_out_loss(logistic, X_test, y_test):.4f}"
    )

    results = {}  # name -> (curve [(seconds, loss)], note)
    if "default" not in args.skip:
        for seed in args.seeds:
            seconds, model = timed_fit(
                MixtureOfExpertsClassifier(
                    LogisticRegression(), n_experts=N_EXPERTS, random_state=seed
                ),
                X,
                y,
            )
            loss = held_out_loss(model, X_test, y_test)
            results[f"default (solver='auto'), random_state={seed}"] = (
                [(seconds, loss)],
                f"solver_={model.solver_!r}, n_iter_={model.n_iter_}",
            )
            print(f"default seed {seed}: {seconds:.2f} s, {loss:.4f}", flush=True)
    for key, label, params, budgets in ADAM_LADDERS:
        if key not in args.skip:
            results[f"solver='adam'{label} (max_iter = epochs)"] = (
                adam_curve(params, budgets, X, y, X_test, y_test),
                "one fit per budget of epochs: " + ", ".join(map(str, budgets)),
            )
    if "gradient" not in args.skip:
        curve, total, model = trace_gradient(
            {"max_iter": args.gradient_max_iter, "random_state": 0},
            X,
            y,
            X_test,
            y_test,
        )
        results[f"solver='gradient', max_iter={args.gradient_max_iter}"] = (
            curve,
            f"{model.n_iter_} L-BFGS iterations, {total:.1f} s in all",
        )
        print(f"gradient: {total:.1f} s, final {curve[-1][1]:.4f}", flush=True)
    for routing in ("soft", "hard"):
        if f"em-{routing}" in args.skip:
            continue
        curve, total, model = trace_em(
            {"routing": routing, "max_iter": args.em_max_iter, "random_state": 0},
            X,
            y,
            X_test,
            y_test,
        )
        results[f"solver='em', routing={routing!r}, max_iter={args.em_max_iter}"] = (
            curve,
            f"{model.n_iter_} iterations, converged={model.converged_}",
        )
        print(f"em {routing}: {total:.1f} s, final {curve[-1][1]:.4f}", flush=True)
    lr_after = logistic_time(X, y)
    lr = min(lr_before, lr_after)
    print(
        f"\nLogisticRegression() fit: {lr_before:.3f} CPU s before the solvers, "
        f"{lr_after:.3f} after; ratios below are to {lr:.3f} s"
    )

    best = min(loss for curve, _ in results.values() for _, loss in curve)
    target = best + args.margin
    print(
        f"\nbest held-out log loss of any solver: {best:.4f}; target (best + "
        f"{args.margin}): {target:.4f}; Bayes {bayes:.4f}\n"
    )
    print(
        "| solver | time to target / LR fit | log loss at the end | "
        "time at the end / LR fit | best log loss | note |"
    )
    print("|---|---|---|---|---|---|")
    for name, (curve, note) in results.items():
        reached = first_reaching(curve, target)
        reached = "not reached" if reached is None else f"{reached / lr:.1f}"
        print(
            f"| {name} | {reached} | {curve[-1][1]:.4f} | {curve[-1][0] / lr:.1f} | "
            f"{min(loss for _, loss in curve):.4f} | {note} |"
        )
    print("\nheld-out log loss along each fit (time / LR fit: log loss)")
    for name, (curve, _) in results.items():
        step = max(1, len(curve) // 12)
        shown = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])
        print(f"- {name}: " + ", ".join(f"{s / lr:.1f}: {v:.3f}" for s, v in shown))
    print(f"\nwall time of the benchmark: {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
