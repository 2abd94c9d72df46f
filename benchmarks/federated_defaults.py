"""DDOMEClassifier as a user first fits it: the defaults on label-skewed federations.

``benchmarks/federated.py`` tests DDOME at equal capacity with MLP experts that the
benchmark configures. This script asks what the *defaults* give: a user who calls
``DDOMEClassifier(random_state=seed).fit(X, y, client_ids)`` gets a common expert
``StandardScaler() + LogisticRegression()`` fitted on a server split of 10% of the
rows, linear ``SGDClassifier`` experts, 30 rounds of 10 clients, the guard with
whole validation clients (100 clients: ``validation="auto"`` resolves to
"clients"). It backs two choices of the defaults with numbers:

- ``expert_input="auto"`` and ``expert_init="auto"``: the experts see the common
  expert pipeline's preprocessing (the standardised features) and start from its
  last step's parameters. Compared with the earlier defaults, raw features and
  experts from zeros (``expert_input="raw", expert_init="default"``).
- ``guard="common_expert"``: compared with ``guard=None`` and with the rows guard.

The federations are those of ``benchmarks/federated.py`` (same splitting code):
MNIST-1D and digits, 100 training clients and 10 unseen clients holding label
combinations no training client holds, quantity skew (2 and 4 labels per client)
and Dirichlet(0.1), 3 seeds; each training client keeps 30% of its rows as its
seen test set. The features go in as the loaders of ``benchmarks/federated.py``
give them (digits divided by 16, MNIST-1D as generated), not standardised.

    python benchmarks/federated_defaults.py              # the full protocol
    python benchmarks/federated_defaults.py --quick      # a check (results in $TMPDIR)
    python benchmarks/federated_defaults.py --report-only
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning

from skmoe.federated import DDOMEClassifier, FedAvgClassifier, LocalClassifier

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import federated as protocol  # noqa: E402  (the splits of benchmarks/federated.py)

COMMON = "common expert"
METHODS = {
    "defaults": {},
    "defaults, rows guard": {"validation": "rows"},
    "defaults, no guard": {"guard": None},
    "earlier defaults": {"expert_input": "raw", "expert_init": "default"},
    "earlier defaults, no guard": {
        "expert_input": "raw",
        "expert_init": "default",
        "guard": None,
    },
}
# the baselines as a user first fits them (linear SGD on the features as given)
BASELINES = {
    "FedAvg defaults": lambda seed, n_rounds: FedAvgClassifier(
        n_rounds=n_rounds, random_state=seed
    ),
    "local models": lambda seed, n_rounds: LocalClassifier(),
}
SPLITS = ["Dirichlet(0.1)", "quantity (2 labels)", "quantity (4 labels)"]


def run_setting(dataset, split, seed, X, y, n_rounds):
    rng = np.random.RandomState(seed)
    n_clients, n_test_clients = 100, 10
    if split.startswith("quantity"):
        per = int(split.split("(")[1].split()[0])
        owner = protocol.quantity_skew(y, n_clients, n_test_clients, per, rng)
    else:
        owner = protocol.dirichlet_skew(y, n_clients, n_test_clients, 0.1, rng)
    train = np.zeros(y.shape[0], dtype=bool)
    seen = np.zeros(y.shape[0], dtype=bool)
    for c in range(n_clients):
        rows = rng.permutation(np.flatnonzero(owner == c))
        cut = int(round(0.7 * rows.shape[0]))
        train[rows[:cut]] = True
        seen[rows[cut:]] = True
    unseen = owner >= n_clients
    results = {}
    for name, params in METHODS.items():
        model = DDOMEClassifier(random_state=seed, n_rounds=n_rounds, **params)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            model.fit(X[train], y[train], owner[train])
        elapsed = time.perf_counter() - started
        results[name] = {
            part: float(np.mean(model.predict(X[rows], owner[rows]) == y[rows]))
            for part, rows in (("seen", seen), ("unseen", unseen))
        }
        results[name].update(
            fit_s=elapsed,
            expert_input=model.expert_input_,
            expert_init=model.expert_init_,
            validation=model.validation_,
            trusted=model.trusted_experts_.tolist(),
        )
        common = model.common_expert_  # the same server split for every method
    for name, make in BASELINES.items():
        model = make(seed, n_rounds)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[train], y[train], owner[train])
        results[name] = {
            part: float(np.mean(model.predict(X[rows], owner[rows]) == y[rows]))
            for part, rows in (("seen", seen), ("unseen", unseen))
        }
        results[name]["fit_s"] = time.perf_counter() - started
    results[COMMON] = {
        part: float(common.score(X[rows], y[rows]))
        for part, rows in (("seen", seen), ("unseen", unseen))
    }
    return {
        "dataset": dataset,
        "split": split,
        "seed": seed,
        "n_rounds": n_rounds,
        "results": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}",
    }


def _gains(records, method, part):
    return np.array(
        [
            100 * (r["results"][method][part] - r["results"][COMMON][part])
            for r in records
        ]
    )


def write_report(records, path):
    latest = {}
    for r in records:
        latest[(r["dataset"], r["split"], r["seed"])] = r
    records = list(latest.values())
    datasets = sorted({r["dataset"] for r in records})
    lines = [
        "# DDOMEClassifier's defaults on label-skewed federations",
        "",
        "Generated by `benchmarks/federated_defaults.py` from "
        "`federated_defaults_results.jsonl`; every number is read from it. The "
        "script's docstring describes the protocol.",
        "",
        "```bash",
        "python benchmarks/federated_defaults.py",
        "```",
        "",
        "- methods: `DDOMEClassifier(random_state=seed)` (**defaults**: experts on "
        "the common expert's standardised features, started from its logistic "
        "regression, guard with validation clients), the same with "
        '`validation="rows"` and with `guard=None`; the **earlier defaults** '
        '(`expert_input="raw", expert_init="default"`: experts on the raw '
        "features from zeros) with and without the guard; the common expert alone",
        "- settings: "
        + "; ".join(
            f"{d} {s} seeds {sorted(r['seed'] for r in records if (r['dataset'], r['split']) == (d, s))}"  # noqa: E501
            for d in datasets
            for s in SPLITS
            if any((r["dataset"], r["split"]) == (d, s) for r in records)
        )
        + f"; {sorted({r['n_rounds'] for r in records})} rounds",
        f"- machine: {sorted({r['machine'] for r in records})}; fit times are "
        "wall times on a shared machine",
        "- accuracy in %, mean ± sd over seeds; unseen clients are served zero-shot",
        "",
        "## Accuracy",
        "",
        "| dataset | split | method | seen clients | unseen clients | fit (s) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for d in datasets:
        for s in SPLITS:
            group = [r for r in records if (r["dataset"], r["split"]) == (d, s)]
            if not group:
                continue
            for m in [*METHODS, *BASELINES, COMMON]:
                if any(m not in r["results"] for r in group):
                    continue
                cells = []
                for part in ("seen", "unseen"):
                    v = 100 * np.array([r["results"][m][part] for r in group])
                    cells.append(
                        f"{v.mean():.1f} ± {v.std():.1f}"
                        if len(v) > 1
                        else f"{v[0]:.1f}"
                    )
                fit = np.mean([r["results"][m].get("fit_s", 0.0) for r in group])
                lines.append(
                    f"| {d} | {s} | {m} | {cells[0]} | {cells[1]} | {fit:.0f} |"
                )
    lines += [
        "",
        "## Against the common expert",
        "",
        "Accuracy minus the common expert's, in points, over every (split, seed) "
        "of a dataset: mean, worst, and how many fell below it.",
        "",
        "| dataset | method | seen: mean | seen: worst | unseen: mean | unseen: "
        "worst | unseen: below |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    summary = {}
    for d in datasets:
        group = [r for r in records if r["dataset"] == d]
        for m in [*METHODS, *BASELINES]:
            if any(m not in r["results"] for r in group):
                continue
            seen, unseen = _gains(group, m, "seen"), _gains(group, m, "unseen")
            summary[d, m] = (seen, unseen)
            lines.append(
                f"| {d} | {m} | {seen.mean():+.1f} | {seen.min():+.1f} | "
                f"{unseen.mean():+.1f} | {unseen.min():+.1f} | "
                f"{np.sum(unseen < 0)} of {unseen.shape[0]} |"
            )
    lines += ["", "## Verdict (written by the script from the numbers above)", ""]
    for d in datasets:
        new, old = summary[d, "defaults"], summary[d, "earlier defaults"]
        new_free = summary[d, "defaults, no guard"]
        old_free = summary[d, "earlier defaults, no guard"]
        better = "gain more" if new[1].mean() >= old[1].mean() else "gain less"
        lines.append(
            f"- **{d}**: with the guard the defaults {better} on unseen clients than "
            f"the earlier defaults ({new[1].mean():+.1f} against "
            f"{old[1].mean():+.1f} points over the common expert; seen clients "
            f"{new[0].mean():+.1f} against {old[0].mean():+.1f}). Without the "
            f"guard: {new_free[1].mean():+.1f} against {old_free[1].mean():+.1f} "
            f"on unseen clients (worst {new_free[1].min():+.1f} against "
            f"{old_free[1].min():+.1f}). The default guard is "
            + (
                "never below the common expert on unseen clients"
                if new[1].min() >= 0
                else f"below the common expert on unseen clients in "
                f"{np.sum(new[1] < 0)} of {new[1].shape[0]} runs (worst "
                f"{new[1].min():+.1f})"
            )
            + "; without it the defaults are "
            + (
                "never below it"
                if new_free[1].min() >= 0
                else f"below it in {np.sum(new_free[1] < 0)} of "
                f"{new_free[1].shape[0]} (worst {new_free[1].min():+.1f})"
            )
            + (
                ": the guard is what keeps linear experts from losing to the "
                "common expert here."
                if new_free[1].min() < new[1].min()
                else ": here the guard does not protect the worst case"
                + (
                    f", and costs {new_free[1].mean() - new[1].mean():.1f} points "
                    "on average."
                    if new_free[1].mean() > new[1].mean()
                    else "."
                )
            )
        )
        group = [
            r
            for r in records
            if r["dataset"] == d and "FedAvg defaults" in r["results"]
        ]
        if group:
            gaps = [
                100
                * np.array(
                    [
                        r["results"][m][part] - r["results"]["FedAvg defaults"][part]
                        for r in group
                    ]
                )
                for m in ("defaults", "defaults, no guard")
                for part in ("seen", "unseen")
            ]
            lines.append(
                f"  Against `FedAvgClassifier()`'s defaults (same runs): the DDOME "
                f"defaults {gaps[0].mean():+.1f} on seen and {gaps[1].mean():+.1f} "
                f"on unseen clients; without the guard {gaps[2].mean():+.1f} and "
                f"{gaps[3].mean():+.1f} (worst run {gaps[3].min():+.1f} unseen)."
            )
    path.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="MNIST-1D,digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.seeds, args.rounds = "digits", "0", 5
        out = Path(tempfile.gettempdir())
        args.results = args.results or out / "federated_defaults_results.jsonl"
        args.report = args.report or out / "README_federated_defaults.md"
    results = args.results or HERE / "federated_defaults_results.jsonl"
    report = args.report or HERE / "README_federated_defaults.md"
    if not args.report_only:
        for dataset in args.datasets.split(","):
            X, y = protocol.DATASETS[dataset]()
            for split in SPLITS:
                for seed in map(int, args.seeds.split(",")):
                    record = run_setting(dataset, split, seed, X, y, args.rounds)
                    with results.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(dataset, split, seed, "done", flush=True)
    records = [json.loads(line) for line in results.open()]
    write_report(records, report)
    print(f"report written to {report}")


if __name__ == "__main__":
    main()
