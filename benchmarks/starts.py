"""How often each ``init`` reaches the best optimum, and at what cost (issue 16).

For every start (``init``) and ``--seeds`` seeds, one EM fit (``n_init=1``, every other
parameter at its default unless the model needs it) on five problems:

- flexmix's NPreg (two linear regressions of ``yn`` on ``x``), with the default gate
  and with the unpenalised gate flexmix fits (``SoftmaxGate(C=np.inf)``);
- flexmix's patent vignette (three Poisson experts on ``lgRD``, unpenalised gate on
  ``RDS``);
- breast cancer (standardised, three ``LogisticRegression`` experts);
- a synthetic mixture of four 3-class multinomial experts with a softmax gate on
  four features (3000 rows).

NPreg and patent are read from ``../shared/reference/flexmix`` (flexmix's data, GPL:
never copied here); without it those rows are left out. A fit *hits* when its final
objective (``lower_bound_``, the penalised mean log-likelihood EM maximises) lies
within ``--tolerance`` per row of the best objective any fit of that problem reached;
for NPreg and patent the best is also compared with flexmix's optimum. The report
gives the hit rate, the number of distinct optima (objectives rounded to the
tolerance), how different the starts of two seeds are (adjusted Rand index of the
partitions of consecutive seeds, 1 = the same start: restarts that do not explore),
and the mean fit time relative to ``init="kmeans"`` on the same problem, all measured
in one run. A last table times a default fit on a large synthetic regression
(``--large`` rows) against ``init="kmeans"``. The report is generated
(``--output``), never edited by hand.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/starts.py
"""

import argparse
import datetime
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.special import softmax
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LinearRegression, PoissonRegressor
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calibration_under_shift import git_commit, machine  # noqa: E402

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor  # noqa: E402
from skmoe.gating import SoftmaxGate  # noqa: E402

REFERENCE = HERE.parents[1] / "shared" / "reference"
INITS = ["auto", "kmeans", "random", "pca", "random_partition"]


def _flexmix_optima():
    """flexmix's NPreg (gate on x) and patent optima, per row, from the reference."""
    text = (REFERENCE / "flexmix_reference.md").read_text()
    row = next(line for line in text.splitlines() if "concomitant multinomial" in line)
    npreg = float(re.findall(r"-?\d+\.\d+", row)[-1])
    section = text[text.index("`patent` vignette") :]
    patent = float(re.search(r"log-likelihood (-\d+\.\d+)", section).group(1)) / 70
    return npreg, patent


def _npreg():
    data = np.genfromtxt(REFERENCE / "flexmix" / "npreg.csv", delimiter=",", names=True)
    return data["x"][:, None], data["yn"]


def _patent():
    import pandas as pd

    data = pd.read_csv(REFERENCE / "flexmix" / "patent.csv")
    X = data[["RDS", "lgRD"]].to_numpy(dtype=float)
    return X, data["Patents"].to_numpy(dtype=float)


def _multinomial_mixture(n_samples=3000, n_features=4, n_experts=4, n_classes=3):
    """Labels from one of ``n_experts`` multinomial logits, chosen by a softmax gate."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, n_features))
    gate = softmax(X @ rng.normal(scale=2.0, size=(n_features, n_experts)), axis=1)
    expert = np.array([rng.choice(n_experts, p=row) for row in gate])
    coefs = rng.normal(scale=2.0, size=(n_experts, n_features, n_classes))
    proba = softmax(np.einsum("nd,ndc->nc", X, coefs[expert]), axis=1)
    y = np.array([rng.choice(n_classes, p=row) for row in proba])
    return X, y


def problems(only=None):
    """name -> (X, y, model factory taking init and random_state, flexmix optimum)."""
    found = {}
    if (REFERENCE / "flexmix" / "npreg.csv").is_file():
        npreg_optimum, patent_optimum = _flexmix_optima()
        X, y = _npreg()
        found["NPreg, default gate"] = (
            X, y,
            lambda **p: MixtureOfExpertsRegressor(LinearRegression(), n_experts=2, **p),
            npreg_optimum,
        )
        found["NPreg, unpenalised gate"] = (
            X, y,
            lambda **p: MixtureOfExpertsRegressor(
                LinearRegression(), n_experts=2, gate=SoftmaxGate(C=np.inf), **p
            ),
            npreg_optimum,
        )
        X, y = _patent()
        poisson = make_pipeline(
            ColumnTransformer([("lgRD", "passthrough", [1])]), PoissonRegressor(alpha=0)
        )
        found["patent, unpenalised gate on RDS"] = (
            X, y,
            lambda **p: MixtureOfExpertsRegressor(
                poisson, n_experts=3, gate=SoftmaxGate(C=np.inf), gate_features=[0],
                **p,
            ),
            patent_optimum,
        )
    X, y = load_breast_cancer(return_X_y=True)
    found["breast cancer, 3 experts"] = (
        StandardScaler().fit_transform(X), y,
        lambda **p: MixtureOfExpertsClassifier(n_experts=3, **p),
        None,
    )
    X, y = _multinomial_mixture()
    found["multinomial mixture, 4 experts"] = (
        X, y, lambda **p: MixtureOfExpertsClassifier(n_experts=4, **p), None
    )
    return {name: found[name] for name in found if only is None or only in name}


def _start(model, X, init, seed):
    """The partition a named start gives (the first restart of a fit)."""
    if init == "auto":
        return None
    return model._initial_partition(
        X, np.ones(X.shape[0]), model.n_experts, np.random.RandomState(seed), init
    )


def _start_agreement(starts):
    """Mean adjusted Rand index of the starts of consecutive seeds."""
    if starts[0] is None:
        return None
    pairs = zip(starts, starts[1:], strict=False)
    return float(np.mean([adjusted_rand_score(a, b) for a, b in pairs]))


def measure(name, X, y, factory, optimum, n_seeds, tolerance):
    rows = []
    for init in INITS:
        objectives, likelihoods, times, starts = [], [], [], []
        for seed in range(n_seeds):
            model = factory(init=init, random_state=seed)
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, y)
            times.append(time.perf_counter() - tic)
            objectives.append(model.lower_bound_)
            if optimum is not None:
                likelihoods.append(float(np.mean(model.log_likelihood(X, y))))
            starts.append(_start(model, X, init, seed))
        rows.append(
            {
                "problem": name,
                "init": init,
                "objectives": np.array(objectives),
                "likelihoods": np.array(likelihoods),
                "time": float(np.mean(times)),
                "start_ari": _start_agreement(starts),
                "optimum": optimum,
            }
        )
        print(f"{name:34s} {init:17s} {np.round(objectives, 4)}", flush=True)
    best = max(row["objectives"].max() for row in rows)
    kmeans_time = next(row["time"] for row in rows if row["init"] == "kmeans")
    for row in rows:
        row["hits"] = float(np.mean(row["objectives"] >= best - tolerance))
        row["distinct"] = len(np.unique(np.round(row["objectives"] / tolerance)))
        row["time_ratio"] = row["time"] / kmeans_time
        row["best"] = best
        if optimum is not None:
            row["flexmix_hits"] = float(
                np.mean(row["likelihoods"] >= optimum - tolerance)
            )
    return rows


def large_cost(n_samples, n_seeds):
    """Fit time of the default (init="auto") against init="kmeans" on a large
    mixture of three linear regressions."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 5))
    component = rng.integers(3, size=n_samples)
    coefs = rng.normal(size=(3, 5))
    y = np.einsum("nd,nd->n", X, coefs[component]) + 0.3 * rng.normal(size=n_samples)
    out = {}
    for init in ("kmeans", "auto", "random_partition"):
        times, iterations = [], []
        for seed in range(n_seeds):
            model = MixtureOfExpertsRegressor(n_experts=3, init=init, random_state=seed)
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, y)
            times.append(time.perf_counter() - tic)
            iterations.append(model.n_iter_)
        out[init] = (float(np.mean(times)), float(np.mean(iterations)),
                     float(model.lower_bound_))
        print(f"large {init}: {out[init]}", flush=True)
    return out


def report(rows, large, args):
    lines = [
        "# Starts of EM: hit rate and cost of each `init`",
        "",
        f"Generated by `benchmarks/starts.py --seeds {args.seeds} --tolerance "
        f"{args.tolerance} --large {args.large}` on {datetime.date.today()}, skmoe "
        f"{git_commit()}, {machine()}. Every figure comes from this one run. Never "
        "edit by hand.",
        "",
        f"One EM fit per seed ({args.seeds} seeds), `n_init=1`. *hits*: share of the "
        f"fits whose final objective (`lower_bound_`) is within {args.tolerance} per "
        "row of the best any fit reached; *flexmix*: share whose log-likelihood per "
        "row is within the same tolerance of flexmix's optimum; *optima*: distinct "
        "final objectives; *start ARI*: adjusted Rand index between the starts of "
        "consecutive seeds (1: every seed starts from the same partition; `auto` "
        "starts from the best of its short runs, which includes random partitions); "
        "*time*: mean fit time relative to `init=\"kmeans\"` on the same problem.",
        "",
        "| problem | init | hits | flexmix | optima | start ARI | time | best |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        flexmix = (
            f"{row['flexmix_hits']:.2f}" if row["optimum"] is not None else ""
        )
        ari = "" if row["start_ari"] is None else f"{row['start_ari']:.2f}"
        lines.append(
            f"| {row['problem']} | {row['init']} | {row['hits']:.2f} | {flexmix} | "
            f"{row['distinct']} | {ari} | {row['time_ratio']:.2f} | "
            f"{row['best']:.4f} |"
        )
    lines += [
        "",
        f"## Cost on large data ({args.large} rows, 5 features, 3 linear regressions, "
        f"default regressor, {args.large_seeds} seeds)",
        "",
        "| init | time relative to kmeans | EM iterations | final objective |",
        "|---|---|---|---|",
    ]
    for init, (seconds, iterations, objective) in large.items():
        lines.append(
            f"| {init} | {seconds / large['kmeans'][0]:.2f} | {iterations:.0f} | "
            f"{objective:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--large-seeds", type=int, default=2)
    parser.add_argument("--only", help="run the problems whose name contains this")
    parser.add_argument("--output", type=Path, default=HERE / "README_starts.md")
    args = parser.parse_args()
    rows = []
    for name, (X, y, factory, optimum) in problems(args.only).items():
        rows += measure(name, X, y, factory, optimum, args.seeds, args.tolerance)
    large = large_cost(args.large, args.large_seeds)
    args.output.write_text(report(rows, large, args))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
