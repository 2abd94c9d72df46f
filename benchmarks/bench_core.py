"""Speed of the core of the mixtures: the gate's M-step, one EM iteration, routing.

Three measurements, in one run so that the ratios come from the same machine state
(absolute times drift on shared machines; the ratios are what the targets are about):

1. The gate's M-step, :class:`~skmoe.gating.SoftmaxGate` fitted on soft targets,
   against the usual workaround: :class:`~sklearn.linear_model.LogisticRegression`
   fitted on ``X`` replicated once per expert, with labels ``0..K-1`` and the soft
   targets as sample weights. Both minimise the same objective
   ``-sum_ik T_ik log softmax(z_i)_k + ||coef||^2 / (2 C)``; the tolerances are
   tightened until each solution is within ``1e-6`` (relative) of the best objective
   found, and each solver is timed at the loosest tolerance that gets there. Target:
   the gate at least 5x faster.
2. One EM iteration of ``MixtureOfExpertsClassifier(LogisticRegression(),
   n_experts=8)``, split into the E-step, the gate's M-step and the experts' M-step,
   each timed on a copy of a fitted model (so that the warm starts are those of the
   next EM iteration). Target: gate plus E-step under a third of the experts' fits.
3. ``predict_proba`` with ``routing="hard"`` against ``routing="soft"`` on the same
   fitted experts and gate. Target: hard/soft well under 0.5.

Every time is the best of ``--repeat`` calls timed with ``time.perf_counter`` after a
warm-up call that compiles (or loads) the numba kernels. Run from the repository root,
once with and once without one BLAS thread::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_core.py
    python benchmarks/bench_core.py
    python benchmarks/bench_core.py --quick   # smaller smoke run, a few seconds
"""

import argparse
import copy
import os
import platform
import sys
import time
import warnings

import numba
import numpy as np
import scipy
import sklearn
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info

from skmoe import MixtureOfExpertsClassifier
from skmoe.gating import SoftmaxGate
from skmoe.solvers import _em
from skmoe.solvers._em import _MIN_RELATIVE_WEIGHT

RELATIVE_ACCURACY = 1e-6
TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9)


def machine_description():
    """Platform, CPU model, core count, library versions and BLAS, as text lines."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [
        f"platform: {platform.platform()}",
        f"cpu: {cpu} ({os.cpu_count()} logical cores visible)",
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"numba {numba.__version__}",
        "OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}",
    ]
    for pool in threadpool_info():
        lines.append(
            f"threadpool: {pool['internal_api']} {pool.get('version') or ''} "
            f"({pool['prefix']}), {pool['num_threads']} threads, "
            f"{pool.get('architecture') or ''}".rstrip(", ")
        )
    try:
        lines.append(f"load average: {os.getloadavg()}")
    except OSError:
        pass
    return lines


def best_times(functions, repeat, setup=None):
    """Smallest wall time of ``repeat`` calls of each function, interleaved.

    The functions take turns (round robin), so that a burst of load from other jobs
    on a shared machine hits all of them alike and the ratios stay meaningful.
    ``setup`` (untimed) builds a fresh argument for each call, e.g. a copy of a fitted
    model whose warm starts a call would otherwise consume.
    """
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            argument = setup() if setup is not None else None
            start = time.perf_counter()
            if setup is not None:
                function(argument)
            else:
                function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def gate_objective(X, targets, coef, intercept, C):
    """``-sum_ik T_ik log softmax(z_i)_k + ||coef||^2 / (2 C)`` in plain NumPy."""
    scores = X @ coef.T + intercept
    log_proba = scores - logsumexp(scores, axis=1, keepdims=True)
    return float(-(targets * log_proba).sum() + (coef**2).sum() / (2 * C))


def soft_targets(n_samples, n_features, n_experts, rng):
    """Responsibilities as a gate would see them: softmax of a random linear model of
    ``X`` plus noise (neither one-hot nor uniform, and not exactly realisable)."""
    X = rng.standard_normal((n_samples, n_features))
    coef = rng.standard_normal((n_experts, n_features)) / np.sqrt(n_features)
    scores = 2.0 * X @ coef.T + rng.normal(scale=1.0, size=(n_samples, n_experts))
    targets = np.exp(scores - logsumexp(scores, axis=1, keepdims=True))
    return X, targets


# --------------------------------------------------------------------- part 1
def fit_skmoe(X, targets, C, tol, solver):
    gate = SoftmaxGate(C=C, solver=solver, tol=tol, max_iter=10_000)
    gate.fit(X, targets)
    return gate.coef_, gate.intercept_, gate.n_iter_


def replicate(X, targets):
    """The workaround's data: one copy of ``X`` per expert, labels, weights."""
    n_samples, n_experts = targets.shape
    X_replicated = np.tile(X, (n_experts, 1))
    labels = np.repeat(np.arange(n_experts), n_samples)
    return X_replicated, labels, targets.T.ravel()


def fit_sklearn(replicated, C, tol, solver):
    X_replicated, labels, weights = replicated
    model = LogisticRegression(C=C, solver=solver, tol=tol, max_iter=10_000)
    model.fit(X_replicated, labels, sample_weight=weights)
    return model.coef_, model.intercept_, int(model.n_iter_[0])


def bench_gate(args, rng):
    n_samples, n_features, n_experts, C = args.gate_n, 20, 8, args.C
    X, targets = soft_targets(n_samples, n_features, n_experts, rng)
    print(
        f"\n== 1. gate M-step: n={n_samples}, d={n_features}, K={n_experts}, C={C}, "
        f"sample weights 1, best of {args.repeat_gate} ==="
    )
    start = time.perf_counter()
    replicated = replicate(X, targets)
    replicate_time = time.perf_counter() - start
    print(
        f"replicating X for the workaround: {replicate_time:.3f} s "
        f"({replicated[0].shape[0]} rows); not counted in its fit times below"
    )
    solvers = {
        "skmoe SoftmaxGate lbfgs": lambda tol: fit_skmoe(X, targets, C, tol, "lbfgs"),
        "skmoe SoftmaxGate newton-cg": lambda tol: fit_skmoe(
            X, targets, C, tol, "newton-cg"
        ),
        "sklearn LogisticRegression lbfgs (replicated)": lambda tol: fit_sklearn(
            replicated, C, tol, "lbfgs"
        ),
    }
    solvers["sklearn LogisticRegression newton-cg (replicated)"] = lambda tol: (
        fit_sklearn(replicated, C, tol, "newton-cg")
    )
    # The reference optimum: a very tight Newton-CG fit of the gate.
    coef, intercept, _ = fit_skmoe(X, targets, C, 1e-10, "newton-cg")
    reference = gate_objective(X, targets, coef, intercept, C)
    sweeps = {}
    for name, fit in solvers.items():
        sweep = []
        for tol in TOLERANCES:
            start = time.perf_counter()
            coef, intercept, n_iter = fit(tol)
            elapsed = time.perf_counter() - start
            objective = gate_objective(X, targets, coef, intercept, C)
            reference = min(reference, objective)
            sweep.append((tol, elapsed, objective, n_iter))
            if abs(objective - reference) <= RELATIVE_ACCURACY * abs(reference):
                break
        sweeps[name] = sweep
    print(f"best objective found: {reference:.10g}")
    print("tolerance sweep (one timed fit each; stops at the first within 1e-6):")
    chosen = {}
    for name, sweep in sweeps.items():
        for tol, elapsed, objective, n_iter in sweep:
            gap = (objective - reference) / abs(reference)
            print(
                f"  {name:50s} tol={tol:.0e} iter={n_iter:5d} "
                f"time={elapsed:7.3f} s rel. gap={gap:.1e}"
            )
            if name not in chosen and gap <= RELATIVE_ACCURACY:
                chosen[name] = (tol, elapsed, gap, n_iter)
        if name not in chosen:
            print(f"  {name}: did not reach 1e-6 at tol={TOLERANCES[-1]:.0e}")
    timed = best_times(
        {
            name: (lambda fit=solvers[name], tol=tol: fit(tol))
            for name, (tol, *_) in chosen.items()
        },
        args.repeat_gate - 1,
    )
    results = {
        name: (tol, min(first_time, timed[name]), gap, n_iter)
        for name, (tol, first_time, gap, n_iter) in chosen.items()
    }
    workaround = results.get("sklearn LogisticRegression lbfgs (replicated)")
    print("\nat 1e-6 relative accuracy of the objective:")
    print(
        f"  {'solver':50s} {'tol':>6s} {'iter':>5s} {'best (s)':>9s} "
        f"{'rel. gap':>8s} {'speed-up':>9s}"
    )
    for name, (tol, elapsed, gap, n_iter) in results.items():
        speedup = workaround[1] / elapsed if workaround else float("nan")
        print(
            f"  {name:50s} {tol:6.0e} {n_iter:5d} {elapsed:9.3f} {gap:8.1e} "
            f"{speedup:8.2f}x"
        )
    if workaround:
        for name in ("skmoe SoftmaxGate lbfgs", "skmoe SoftmaxGate newton-cg"):
            if name in results:
                speedup = workaround[1] / results[name][1]
                with_copy = (workaround[1] + replicate_time) / results[name][1]
                print(
                    f"  {name}: {speedup:.2f}x faster than the workaround "
                    f"({with_copy:.2f}x counting the replication); target >= 5x: "
                    f"{'MET' if speedup >= 5 else 'MISSED'}"
                )


# --------------------------------------------------------------------- part 2
def expert_m_step(moe, X, y, weights, templates, responsibilities):
    """The expert half of ``skmoe.solvers._em._m_step``, with the same inputs."""
    expert_weights = responsibilities * weights[:, None]
    fitted = []
    for k, template in enumerate(templates):
        column = expert_weights[:, k]
        rows = np.flatnonzero(column > _MIN_RELATIVE_WEIGHT * column.max())
        fitted.append(moe._fit_one(k, template, X, y, rows, column[rows]))
    moe.experts_ = fitted
    moe._after_m_step(X, y, expert_weights)


def fitted_copy(moe):
    """A deep copy whose experts and gate warm-start as in the next EM iteration."""
    model = copy.deepcopy(moe)
    model._expert_fit_params = {}
    return model


def mixture_data(n_samples, rng_seed):
    return make_classification(
        n_samples=n_samples,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        n_classes=3,
        n_clusters_per_class=4,
        class_sep=1.5,
        flip_y=0.02,
        random_state=rng_seed,
    )


def bench_em_iteration(args, moe, X, y):
    n_samples = X.shape[0]
    y_encoded = np.searchsorted(moe.classes_, y)
    weights = np.ones(n_samples)
    n_experts = len(moe.experts_)
    templates = [clone(moe.expert)] * n_experts
    model = fitted_copy(moe)
    log_joint = model._log_joint(X, y_encoded)
    responsibilities, _ = _em._e_step(model, log_joint, weights)
    print(
        f"\n== 2. one EM iteration: n={n_samples}, d={X.shape[1]}, "
        f"{moe.classes_.shape[0]} classes, K={n_experts} LogisticRegression experts, "
        f"after {moe.n_iter_} EM iterations; best of {args.repeat_em} ==="
    )
    kept = responsibilities > _MIN_RELATIVE_WEIGHT * responsibilities.max(axis=0)
    print(
        "rows each expert is fitted on: "
        + ", ".join(str(count) for count in kept.sum(axis=0))
    )

    def e_step(model):
        return _em._e_step(model, model._log_joint(X, y_encoded), weights)

    def log_joint_only(model):
        return model._log_joint(X, y_encoded)

    def gate_m_step(model):
        _em._fit_gate(model, X, responsibilities, weights)

    def experts_m_step(model):
        expert_m_step(model, X, y_encoded, weights, templates, responsibilities)

    def experts_cold(model):
        model.experts_ = None  # no warm start: what the first iteration pays
        expert_m_step(model, X, y_encoded, weights, templates, responsibilities)

    def whole_iteration(model):
        _em._m_step(model, X, y_encoded, weights, templates, responsibilities)
        _em._e_step(model, model._log_joint(X, y_encoded), weights)

    def capped_gate_m_step(model, max_iter=None, solver="lbfgs"):
        if max_iter is not None:
            model.gate_.set_params(max_iter=max_iter)
        model.gate_.set_params(solver=solver)
        _em._fit_gate(model, X, responsibilities, weights)
        return model.gate_

    gate_variants = {
        f"  gate M-step, lbfgs max_iter={max_iter}": (
            lambda model, max_iter=max_iter: capped_gate_m_step(model, max_iter)
        )
        for max_iter in (5, 10, 20)
    }
    gate_variants["  gate M-step, newton-cg"] = lambda model: capped_gate_m_step(
        model, solver="newton-cg"
    )
    setup = lambda: fitted_copy(moe)  # noqa: E731
    times = best_times(
        {
            "E-step (_log_joint + _e_step)": e_step,
            "  of which _log_joint": log_joint_only,
            "gate M-step (_fit_gate, warm)": gate_m_step,
            "expert M-step (8 x _fit_one, warm)": experts_m_step,
            "expert M-step (8 x _fit_one, cold)": experts_cold,
            "whole iteration (_m_step + E-step)": whole_iteration,
            **gate_variants,
        },
        args.repeat_em,
        setup,
    )
    # How much of the warm M-step's decrease of the gate objective a capped or a
    # Newton-CG M-step makes (EM only needs a decrease: generalised EM).
    start_gate = setup().gate_
    start_objective = gate_objective(
        X, responsibilities, start_gate.coef_, start_gate.intercept_, np.inf
    )
    print("gate M-step variants (objective: cross-entropy to the responsibilities):")
    for name, variant in {
        "  gate M-step (_fit_gate, warm)": capped_gate_m_step,
        **gate_variants,
    }.items():
        gate = variant(setup())
        objective = gate_objective(
            X, responsibilities, gate.coef_, gate.intercept_, np.inf
        )
        decrease = start_objective - objective
        print(
            f"  {name.strip():32s} {gate.n_iter_:4d} iterations, objective decrease "
            f"{decrease:.6g} ({decrease / n_samples:.2e} per sample)"
        )
    experts = times["expert M-step (8 x _fit_one, warm)"]
    for name, elapsed in times.items():
        print(f"  {name:40s} {elapsed:8.3f} s  {elapsed / experts:6.3f} x experts")
    overhead = (
        times["E-step (_log_joint + _e_step)"] + times["gate M-step (_fit_gate, warm)"]
    )
    ratio = overhead / experts
    print(
        f"  gate + E-step = {overhead:.3f} s = {ratio:.3f} of the experts' fits; "
        f"target < 1/3: {'MET' if ratio < 1 / 3 else 'MISSED'}"
    )


# --------------------------------------------------------------------- part 3
def bench_routing(args, moe, X_test):
    hard = copy.deepcopy(moe).set_params(routing="hard")
    soft = moe
    print(
        f"\n== 3. predict_proba, hard vs soft routing: {X_test.shape[0]} test rows, "
        f"K={len(moe.experts_)}; best of {args.repeat_predict} ==="
    )
    selected = np.bincount(
        hard.predict_gate_proba(X_test).argmax(axis=1), minlength=len(moe.experts_)
    )
    print(f"rows routed to each expert (hard): {', '.join(map(str, selected))}")
    times = best_times(
        {
            "soft predict_proba": lambda: soft.predict_proba(X_test),
            "hard predict_proba": lambda: hard.predict_proba(X_test),
            "gate alone (predict_gate_proba, soft)": lambda: soft.predict_gate_proba(
                X_test
            ),
            "one expert predict_proba, all rows": lambda: soft.experts_[
                0
            ].predict_proba(X_test),
        },
        args.repeat_predict,
    )
    for name, elapsed in times.items():
        print(f"  {name:40s} {elapsed:8.4f} s")
    ratio = times["hard predict_proba"] / times["soft predict_proba"]
    print(
        f"  hard / soft = {ratio:.3f}; target well under 0.5: "
        f"{'MET' if ratio < 0.5 else 'MISSED'}"
    )


def warm_up():
    """Compile (or load from cache) every numba kernel the timings call."""
    rng = np.random.default_rng(1)
    X, targets = soft_targets(200, 5, 3, rng)
    for solver in ("lbfgs", "newton-cg"):
        SoftmaxGate(solver=solver).fit(X, targets).predict_proba(X)
        SoftmaxGate(solver=solver).fit(X.astype(np.float32), targets)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--skip", default="", help="parts to skip, e.g. '1' or '2,3'")
    args = parser.parse_args()
    if args.quick:
        args.gate_n, args.moe_n, args.predict_n = 20_000, 10_000, 20_000
        args.em_iter = 5
        args.repeat_gate, args.repeat_em, args.repeat_predict = 2, 2, 3
    else:
        args.gate_n, args.moe_n, args.predict_n = 200_000, 50_000, 200_000
        args.em_iter = 8
        args.repeat_gate, args.repeat_em, args.repeat_predict = 3, 3, 7
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when redirected

    total = time.perf_counter()
    for line in machine_description():
        print(line)
    start = time.perf_counter()
    warm_up()
    print(f"numba warm-up: {time.perf_counter() - start:.2f} s")
    rng = np.random.default_rng(0)
    if "1" not in skip:
        bench_gate(args, rng)
    if skip >= {"2", "3"}:
        print(f"\ntotal run time: {time.perf_counter() - total:.0f} s")
        return
    X_all, y_all = mixture_data(args.moe_n + args.predict_n, 0)
    X, y = X_all[: args.moe_n], y_all[: args.moe_n]
    X_test = X_all[args.moe_n :]
    start = time.perf_counter()
    with warnings.catch_warnings():
        # a capped EM run only has to produce a realistic fitted state
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe = MixtureOfExpertsClassifier(
            LogisticRegression(), n_experts=8, max_iter=args.em_iter, random_state=0
        ).fit(X, y)
    print(
        f"\nfitting the mixture ({moe.n_iter_} EM iterations): "
        f"{time.perf_counter() - start:.1f} s, training accuracy "
        f"{moe.score(X, y):.3f}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if "2" not in skip:
            bench_em_iteration(args, moe, X, y)
    if "3" not in skip:
        bench_routing(args, moe, X_test)
    print(f"\ntotal run time: {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    main()
