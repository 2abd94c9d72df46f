"""Calibration under natural shift: routing, expert calibration and reweighting.

Every method of issue 6 (a single logistic regression, soft and hard mixtures, hard
routing with calibrated experts, per-expert temperature scaling after training
(MoCaE), soft routing with adversarial and filtered reweighting, and, when the
installed skmoe has them, Group DRO over the training domains and the joint gradient
solver without and with the adversarial tilt) is fitted on the source domains of
real data with a natural shift and scored on held-out source data (in-domain) and on
unseen domains (out-of-domain):

- ``flights-origin``: NYC flights 2013, delay > 15 min; train on EWR and LGA, test on
  JFK (leave-one-origin-out with JFK held out).
- ``flights-month``: the same flights; train on January-August, test on
  September-December (each month a test domain).
- ``mpls-precinct``: Minneapolis stops 2017, was the person searched; train on
  precincts 1-4, test on precinct 5 (the probe of DESIGN.md).
- ``penguins-island``: Palmer penguins, predict sex from the measurements, species and
  year; leave-one-island-out (each island held out once per seed; sex, unlike
  species, occurs on every island, so no test class is unseen).
- ``digits-covshift``: scikit-learn digits (10 classes) cut by
  ``CovariateShiftSplit(n_splits=5, direction="pca", severity=0.5)``: one fold is the
  out-of-domain test set, the other four the source.

Per seed (0-4): the subsample, the source split into train / validation / in-domain
test (60 / 20 / 20, stratified), and every model's ``random_state``. Preprocessing is
fitted on the training split only (numeric: median imputation and standard scaling;
categorical: one-hot with unknown categories ignored).

Metrics (``--n-bins 15`` equal-width bins, top-label, also for binary targets:
confidence ``max_c p_c``, correct when its class is the label):

- accuracy and ECE on the in-domain test split and on the out-of-domain set;
- worst-domain ECE: the largest ECE over the test domains, which are the held-out
  source domains (in-domain test split, by domain) and the out-of-domain domains;
- OOD ECE after one temperature fitted on the in-domain validation split;
- accuracy and ECE on the hard subset: the 20% of out-of-domain samples with the
  smallest margin (top-1 minus top-2 probability) of a reference ensemble (mean
  probability of LogisticRegression, HistGradientBoostingClassifier and a 25-nearest-
  neighbour classifier, all fitted on the training split). It uses no test labels.

Adding a method is one entry of ``METHODS``. Output: a Markdown report
(``README_calibration_shift.md``), the per-seed numbers
(``figures/calibration_under_shift.csv``) and the accuracy-calibration plot
(``figures/calibration_under_shift.png``), all from the measured numbers.

    OPENBLAS_NUM_THREADS=1 python benchmarks/calibration_under_shift.py  # 5 seeds
    OPENBLAS_NUM_THREADS=1 python benchmarks/calibration_under_shift.py --quick
"""

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import skmoe
from skmoe import MixtureOfExpertsClassifier
from skmoe.calibration import ProbabilityCalibrator
from skmoe.datasets import load_flights, load_mpls_stops, load_penguins
from skmoe.metrics import expected_calibration_error
from skmoe.model_selection import CovariateShiftSplit

HERE = Path(__file__).resolve().parent
N_EXPERTS = 4
HARD_FRACTION = 0.2


# --------------------------------------------------------------------------- data


def _preprocess(frame_train, frames):
    """Fit imputation, scaling and one-hot on the training frame; transform all."""
    categorical = [
        column
        for column in frame_train.columns
        if isinstance(frame_train[column].dtype, pd.CategoricalDtype)
        or frame_train[column].dtype == object
    ]
    numeric = [column for column in frame_train.columns if column not in categorical]
    transformer = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"),
                                      StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore",
                                          sparse_output=False), categorical),
        ],
    ).fit(frame_train)
    return [transformer.transform(frame) for frame in frames]


def _task(name, frame, y, domains, is_source, seed, *, ood_name=None):
    """Split the source 60/20/20 (stratified) and keep every non-source row as OOD."""
    y = np.asarray(y)
    domains = np.asarray(domains).astype(str)
    source = np.flatnonzero(is_source)
    ood = np.flatnonzero(~is_source)
    train, rest = train_test_split(
        source, train_size=0.6, stratify=y[source], random_state=seed
    )
    val, test = train_test_split(
        rest, train_size=0.5, stratify=y[rest], random_state=seed
    )
    frame = frame.reset_index(drop=True)
    X_train, X_val, X_test, X_ood = _preprocess(
        frame.iloc[train], [frame.iloc[index] for index in (train, val, test, ood)]
    )
    return dict(
        name=name if ood_name is None else f"{name} ({ood_name})",
        X_train=X_train, y_train=y[train], groups_train=domains[train],
        X_val=X_val, y_val=y[val],
        X_test=X_test, y_test=y[test], domains_test=domains[test],
        X_ood=X_ood, y_ood=y[ood], domains_ood=domains[ood],
        n_classes=int(y.max()) + 1,
    )


def flights_origin(seed, n_samples):
    flights = load_flights(n_samples=n_samples, random_state=seed)
    origin = flights.domains["origin"].astype(str).to_numpy()
    yield _task("flights-origin", flights.data, flights.target.astype(int), origin,
                origin != "JFK", seed)


def flights_month(seed, n_samples):
    flights = load_flights(n_samples=n_samples, random_state=seed)
    month = flights.domains["month"].to_numpy()
    yield _task("flights-month", flights.data, flights.target.astype(int), month,
                month <= 8, seed)


def mpls_precinct(seed, n_samples):
    stops = load_mpls_stops(n_samples=n_samples, random_state=seed)
    precinct = stops.domains["policePrecinct"].to_numpy()
    yield _task("mpls-precinct", stops.data, stops.target.astype(int), precinct,
                precinct <= 4, seed)


def penguins_island(seed, n_samples):
    penguins = load_penguins()
    frame = penguins.data.assign(
        species=pd.Categorical(penguins.target_names[penguins.target])
    )
    known = frame["sex"].notna().to_numpy()
    frame = frame[known].reset_index(drop=True)
    y = (frame.pop("sex").astype(str) == "male").to_numpy().astype(int)
    island = penguins.domains["island"].astype(str).to_numpy()[known]
    for held_out in np.unique(island):
        yield _task("penguins-island", frame, y, island, island != held_out, seed,
                    ood_name=held_out)


def digits_covshift(seed, n_samples):
    digits = load_digits()
    frame = pd.DataFrame(digits.data).rename(columns=str)
    splitter = CovariateShiftSplit(
        n_splits=5, direction="pca", severity=0.5, random_state=seed
    )
    _, ood = next(iter(splitter.split(digits.data)))
    domain = np.where(np.isin(np.arange(len(frame)), ood), "shifted", "source")
    yield _task("digits-covshift", frame, digits.target, domain, domain == "source",
                seed)


DATASETS = {
    "flights-origin": flights_origin,
    "flights-month": flights_month,
    "mpls-precinct": mpls_precinct,
    "penguins-island": penguins_island,
    "digits-covshift": digits_covshift,
}


# ------------------------------------------------------------------------ methods


def _mixture(seed, **params):
    return MixtureOfExpertsClassifier(
        LogisticRegression(max_iter=1000), n_experts=N_EXPERTS, random_state=seed,
        **params,
    )


def _supports(**params):
    """Whether the installed MixtureOfExpertsClassifier accepts these parameters."""
    try:
        MixtureOfExpertsClassifier(**params)._validate_params()
    except (InvalidParameterError, TypeError, ValueError):
        return False
    return True


class PerExpertTemperature:
    """MoCaE: one temperature per expert of a fitted mixture, fitted on validation.

    Expert ``k``'s temperature minimises the log loss of its validation predictions
    weighted by its gate weights ``r_k(x)`` (the samples it is used on); the
    prediction is ``sum_k r_k(x) softmax(log p_k(x) / T_k)``.
    """

    def __init__(self, mixture, X_val, y_val):
        self.mixture = mixture
        gate = mixture.predict_gate_proba(X_val)
        experts = mixture.predict_expert_proba(X_val)
        self.calibrators_ = [
            ProbabilityCalibrator(method="temperature").fit(
                experts[:, k, :], y_val, sample_weight=gate[:, k] + 1e-12
            )
            for k in range(experts.shape[1])
        ]

    def predict_proba(self, X):
        gate = self.mixture.predict_gate_proba(X)
        experts = self.mixture.predict_expert_proba(X)
        return sum(
            gate[:, [k]] * calibrator.predict(experts[:, k, :])
            for k, calibrator in enumerate(self.calibrators_)
        )


# name -> build(seed) for a fitted-from-scratch model, or after=(base, wrap) for a
# post-hoc method applied to another method's fitted model; groups=True passes the
# training domains to fit.
METHODS = {
    "single LR": dict(build=lambda seed: LogisticRegression(max_iter=1000)),
    "soft MoE": dict(build=lambda seed: _mixture(seed, routing="soft")),
    "hard MoE": dict(build=lambda seed: _mixture(seed, routing="hard")),
    "hard MoE + expert temperature": dict(
        build=lambda seed: _mixture(
            seed, routing="hard", expert_calibration="temperature"
        )
    ),
    "soft MoE + MoCaE": dict(after=("soft MoE", PerExpertTemperature)),
    "soft MoE + adversarial": dict(
        build=lambda seed: _mixture(seed, routing="soft", reweighting="adversarial")
    ),
    "soft MoE + filtered": dict(
        build=lambda seed: _mixture(
            seed, routing="soft", reweighting="adversarial_filtered"
        )
    ),
}
OPTIONAL_METHODS = {
    "soft MoE + group DRO": dict(
        requires=dict(reweighting="group_dro"),
        build=lambda seed: _mixture(seed, routing="soft", reweighting="group_dro"),
        groups=True,
    ),
    "soft MoE (gradient solver)": dict(
        requires=dict(solver="gradient"),
        build=lambda seed: _mixture(seed, routing="soft", solver="gradient"),
    ),
    "soft MoE + adversarial (gradient solver)": dict(
        requires=dict(solver="gradient", reweighting="adversarial"),
        build=lambda seed: _mixture(
            seed, routing="soft", solver="gradient", reweighting="adversarial"
        ),
    ),
}


def available_methods():
    methods = dict(METHODS)
    skipped = []
    for name, spec in OPTIONAL_METHODS.items():
        if _supports(**spec["requires"]):
            methods[name] = spec
        else:
            skipped.append(name)
    return methods, skipped


# ------------------------------------------------------------------------ metrics


def top_label_ece(y, proba, n_bins):
    """Top-label ECE of the ``(n, n_classes)`` matrix; for two classes too.

    ``binary="top_label"`` is the paper's convention for binary tasks (the
    library's default scores P(y=1) there); ``labels`` names every column, since
    a domain or the hard subset may miss classes.
    """
    if len(y) == 0:
        return np.nan
    return expected_calibration_error(
        y, proba, n_bins=n_bins, binary="top_label",
        labels=np.arange(proba.shape[1]),
    )


def _full_proba(proba, classes, n_classes):
    """Probabilities with one column per class 0..n_classes-1."""
    full = np.zeros((proba.shape[0], n_classes))
    full[:, np.asarray(classes, dtype=int)] = proba
    return full


def hard_subset(task, seed):
    """The HARD_FRACTION of OOD samples with the smallest reference-ensemble margin."""
    references = [
        LogisticRegression(max_iter=1000),
        HistGradientBoostingClassifier(max_iter=100, random_state=seed),
        KNeighborsClassifier(n_neighbors=25),
    ]
    mean_proba = np.mean(
        [
            _full_proba(
                model.fit(task["X_train"], task["y_train"]).predict_proba(
                    task["X_ood"]
                ),
                model.classes_,
                task["n_classes"],
            )
            for model in references
        ],
        axis=0,
    )
    top_two = np.sort(mean_proba, axis=1)[:, -2:]
    margin = top_two[:, 1] - top_two[:, 0]
    n_hard = max(1, math.ceil(HARD_FRACTION * len(margin)))
    return np.argsort(margin, kind="stable")[:n_hard]


def score(task, model, hard, n_bins):
    classes = model.classes_ if hasattr(model, "classes_") else model.mixture.classes_
    proba = {
        part: _full_proba(model.predict_proba(task[f"X_{part}"]), classes,
                          task["n_classes"])
        for part in ("val", "test", "ood")
    }
    temperature = ProbabilityCalibrator(method="temperature").fit(
        proba["val"], task["y_val"]
    )
    ood_scaled = temperature.predict(proba["ood"])
    y_test, y_ood = task["y_test"], task["y_ood"]
    test_domains = np.r_[task["domains_test"], task["domains_ood"]]
    y_all = np.r_[y_test, y_ood]
    proba_all = np.r_[proba["test"], proba["ood"]]
    return {
        "acc ID": np.mean(proba["test"].argmax(axis=1) == y_test),
        "acc OOD": np.mean(proba["ood"].argmax(axis=1) == y_ood),
        "ECE ID": top_label_ece(y_test, proba["test"], n_bins),
        "ECE OOD": top_label_ece(y_ood, proba["ood"], n_bins),
        "worst-domain ECE": max(
            top_label_ece(y_all[test_domains == domain],
                          proba_all[test_domains == domain], n_bins)
            for domain in np.unique(test_domains)
        ),
        "ECE OOD after TS": top_label_ece(y_ood, ood_scaled, n_bins),
        "acc hard": np.mean(proba["ood"][hard].argmax(axis=1) == y_ood[hard]),
        "ECE hard": top_label_ece(y_ood[hard], proba["ood"][hard], n_bins),
    }


METRICS = [
    "acc ID", "acc OOD", "ECE ID", "ECE OOD", "worst-domain ECE", "ECE OOD after TS",
    "acc hard", "ECE hard",
]


# ---------------------------------------------------------------------- the run


def run(datasets, methods, seeds, n_samples, n_bins, log):
    rows = []
    for dataset in datasets:
        for seed in seeds:
            for task in DATASETS[dataset](seed, n_samples[dataset]):
                start = time.perf_counter()
                hard = hard_subset(task, seed)
                log(f"{task['name']} seed {seed}: n_train={len(task['y_train'])} "
                    f"n_ood={len(task['y_ood'])} d={task['X_train'].shape[1]} "
                    f"(references {time.perf_counter() - start:.1f}s)")
                fitted = {}
                for name, spec in methods.items():
                    start = time.perf_counter()
                    if "after" in spec:
                        base, wrap = spec["after"]
                        model = wrap(fitted[base], task["X_val"], task["y_val"])
                    else:
                        model = spec["build"](seed)
                        fit_params = (
                            {"groups": task["groups_train"]}
                            if spec.get("groups") else {}
                        )
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", ConvergenceWarning)
                            model.fit(task["X_train"], task["y_train"], **fit_params)
                    seconds = time.perf_counter() - start
                    fitted[name] = model
                    result = score(task, model, hard, n_bins)
                    rows.append(
                        {"dataset": dataset, "task": task["name"], "seed": seed,
                         "method": name, **result, "seconds": seconds}
                    )
                    log(f"  {name:32s} acc OOD {result['acc OOD']:.3f}  "
                        f"ECE OOD {result['ECE OOD']:.4f}  "
                        f"ECE hard {result['ECE hard']:.4f}  {seconds:.1f}s")
    return pd.DataFrame(rows)


def per_seed(results):
    """One row per (dataset, seed, method): penguins' held-out islands averaged."""
    return (
        results.groupby(["dataset", "seed", "method"], sort=False)[
            [*METRICS, "seconds"]
        ]
        .mean()
        .reset_index()
    )


def summary_table(seeded, dataset, methods):
    part = seeded[seeded["dataset"] == dataset]
    lines = [
        "| method | " + " | ".join(METRICS) + " | fit s |",
        "|---|" + "---|" * (len(METRICS) + 1),
    ]
    for method in methods:
        rows = part[part["method"] == method]
        cells = [
            f"{rows[metric].mean():.3f} ± {rows[metric].std(ddof=1):.3f}"
            if len(rows) > 1 else f"{rows[metric].mean():.3f}"
            for metric in METRICS
        ]
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | {rows['seconds'].mean():.1f} |"
        )
    return "\n".join(lines)


def paired(seeded, dataset, method, reference, metric):
    """Mean and std of method - reference over seeds, and seeds where it is lower."""
    part = seeded[seeded["dataset"] == dataset].pivot(
        index="seed", columns="method", values=metric
    )
    if method not in part or reference not in part:
        return None
    difference = part[method] - part[reference]
    return difference.mean(), difference.std(ddof=1), int((difference < 0).sum()), len(
        difference
    )


COMPARISONS = [
    ("ECE OOD", "soft MoE + filtered", "soft MoE"),
    ("ECE OOD", "soft MoE + adversarial", "soft MoE"),
    ("ECE OOD", "soft MoE + filtered", "soft MoE + adversarial"),
    ("ECE hard", "soft MoE + adversarial", "soft MoE"),
    ("ECE hard", "soft MoE + filtered", "soft MoE"),
    ("acc OOD", "soft MoE + adversarial", "soft MoE"),
    ("acc OOD", "soft MoE + filtered", "soft MoE"),
    ("acc hard", "soft MoE + adversarial", "soft MoE"),
    ("ECE OOD", "hard MoE", "soft MoE"),
    ("ECE OOD", "hard MoE + expert temperature", "hard MoE"),
    ("ECE OOD", "soft MoE + MoCaE", "soft MoE"),
    ("ECE OOD after TS", "soft MoE + adversarial", "soft MoE"),
    ("ECE OOD", "soft MoE + group DRO", "soft MoE"),
    ("ECE OOD", "soft MoE (gradient solver)", "soft MoE"),
    ("ECE OOD", "soft MoE + adversarial (gradient solver)",
     "soft MoE (gradient solver)"),
    ("ECE hard", "soft MoE + adversarial (gradient solver)",
     "soft MoE (gradient solver)"),
    ("acc OOD", "soft MoE + adversarial (gradient solver)",
     "soft MoE (gradient solver)"),
]


def plot(seeded, datasets, methods, path):
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    n_columns = min(3, len(datasets) + 1)
    n_rows = math.ceil((len(datasets) + 1) / n_columns)
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(4.6 * n_columns, 4 * n_rows),
                             squeeze=False)
    axes = axes.ravel()
    markers = "osD^vP*Xhp<>"
    for ax, dataset in zip(axes, datasets, strict=False):
        part = seeded[seeded["dataset"] == dataset]
        for index, method in enumerate(methods):
            rows = part[part["method"] == method]
            ax.errorbar(
                rows["ECE OOD"].mean(), rows["acc OOD"].mean(),
                xerr=rows["ECE OOD"].std(ddof=1) if len(rows) > 1 else None,
                yerr=rows["acc OOD"].std(ddof=1) if len(rows) > 1 else None,
                fmt=markers[index % len(markers)], color=f"C{index}", capsize=2,
                label=method,
            )
        ax.set_title(dataset)
        ax.set_xlabel("out-of-domain top-label ECE")
        ax.grid(alpha=0.3)
        ax.set_ylabel("out-of-domain accuracy")
    # the legend takes the first unused panel
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[len(datasets):]:
        ax.axis("off")
    axes[len(datasets)].legend(handles, labels, loc="center", frameon=False,
                               title="mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine():
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines() if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:
        load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        load = "unknown"
    return model, os.cpu_count(), load


def git_commit():
    """The commit of the skmoe that runs: ``SKMOE_COMMIT`` for a snapshot, else HEAD."""
    if os.environ.get("SKMOE_COMMIT"):
        return os.environ["SKMOE_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            cwd=HERE,
        ).stdout.strip()
    except OSError:
        return "unknown"


def report(seeded, datasets, methods, skipped, args, elapsed, load_before):
    cpu, cores, load_after = machine()
    import numba

    command = "OPENBLAS_NUM_THREADS=1 python benchmarks/calibration_under_shift.py " + (
        " ".join(sys.argv[1:])
    )
    lines = [
        "# Calibration under shift: measured results",
        "",
        "Generated by `benchmarks/calibration_under_shift.py` from the run below; "
        "every number comes from that run (do not edit by hand).",
        "",
        f"- command: `{command.strip()}`",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        f"wall time {elapsed / 60:.1f} min",
        f"- machine: {cpu}, {cores} logical cores visible, shared "
        f"(load average {load_before} before, {load_after} after)",
        f"- versions: Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"numba {numba.__version__}, pandas {pd.__version__}, "
        f"skmoe {skmoe.__version__} (commit `{git_commit()}`"
        + (", run from a clean copy of that commit's `skmoe/`)"
           if os.environ.get("SKMOE_COMMIT") else ", with the working tree)"),
        f"- seeds: {', '.join(map(str, args.seeds))}; subsample sizes: "
        + ", ".join(f"{name} {size or 'all'}" for name, size in args.sizes.items()
                    if name in datasets),
        f"- mixtures: {N_EXPERTS} `LogisticRegression(max_iter=1000)` experts, every "
        "other parameter at its default; single LR: "
        "`LogisticRegression(max_iter=1000)`",
        "- methods not available in this skmoe and therefore not run: "
        + (", ".join(skipped) if skipped else "none"),
        "",
        "Mean ± standard deviation over the seeds (penguins: the three held-out "
        "islands averaged within each seed first). ECE is top-label with "
        f"{args.n_bins} equal-width bins. *worst-domain ECE*: the largest ECE over "
        "the test domains (the source domains' held-out test rows, each domain "
        "apart, and every out-of-domain domain). *ECE OOD after TS*: one temperature "
        "fitted on the in-domain validation split. *hard*: the "
        f"{HARD_FRACTION:.0%} of out-of-domain samples with the smallest margin of a "
        "reference ensemble (LR, gradient boosting, 25-NN) fitted on the training "
        "split. *fit s*: seconds to fit (MoCaE: to fit its temperatures).",
        "",
    ]
    for dataset in datasets:
        lines += [f"## {dataset}", "", summary_table(seeded, dataset, methods), ""]
    lines += [
        "## Paired differences (method minus reference, per seed)",
        "",
        "Negative is lower; for ECE lower is better, for accuracy higher is better. "
        "*lower in* counts the seeds where the method's value is below the "
        "reference's.",
        "",
        "| metric | method | reference | " + " | ".join(datasets) + " |",
        "|---|---|---|" + "---|" * len(datasets),
    ]
    for metric, method, reference in COMPARISONS:
        if method not in methods:
            continue
        cells = []
        for dataset in datasets:
            result = paired(seeded, dataset, method, reference, metric)
            if result is None:
                cells.append("n/a")
                continue
            mean, std, lower, n = result
            spread = f" ± {std:.3f}" if n > 1 else ""
            cells.append(f"{mean:+.3f}{spread} (lower in {lower}/{n})")
        lines.append(f"| {metric} | {method} | {reference} | " + " | ".join(cells)
                     + " |")
    lines += [
        "",
        "## Lowest out-of-domain ECE per data set",
        "",
        "| data set | lowest ECE OOD | lowest ECE hard | highest acc OOD |",
        "|---|---|---|---|",
    ]
    means = seeded.groupby(["dataset", "method"])[METRICS].mean()
    for dataset in datasets:
        table = means.loc[dataset]
        lines.append(
            f"| {dataset} | {table['ECE OOD'].idxmin()} "
            f"({table['ECE OOD'].min():.3f}) | {table['ECE hard'].idxmin()} "
            f"({table['ECE hard'].min():.3f}) | {table['acc OOD'].idxmax()} "
            f"({table['acc OOD'].max():.3f}) |"
        )
    lines += [
        "",
        # a path, not a Markdown image: the docs render this file on another page,
        # where a relative image link would break
        "The accuracy-ECE plot of this run is "
        f"`figures/{args.figure.name}`; the per-seed numbers are "
        f"`figures/{args.figure.with_suffix('.csv').name}`.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one seed, smaller subsamples (a smoke run)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS),
                        choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=None,
                        help="subset of the method names (default: all available)")
    parser.add_argument("--n-bins", type=int, default=15)
    parser.add_argument("--output", type=Path, default=None,
                        help="Markdown report (default: README_calibration_shift.md "
                        "here; with --quick, under the temporary directory)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="plot; the per-seed CSV is written next to it")
    args = parser.parse_args()
    # a smoke run never overwrites the committed results
    out_dir = HERE
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "skmoe_calibration_shift"
    args.output = args.output or out_dir / "README_calibration_shift.md"
    args.figure = args.figure or out_dir / "figures" / "calibration_under_shift.png"
    args.sizes = {
        "flights-origin": 10000, "flights-month": 10000, "mpls-precinct": 10000,
        "penguins-island": None, "digits-covshift": None,
    }
    if args.quick:
        args.seeds = args.seeds[:1]
        args.sizes.update({"flights-origin": 4000, "flights-month": 4000,
                           "mpls-precinct": 4000})
    methods, skipped = available_methods()
    if args.methods:
        keep = set(args.methods)
        keep |= {methods[name]["after"][0] for name in keep if "after" in methods[name]}
        methods = {name: spec for name, spec in methods.items() if name in keep}

    start = time.perf_counter()
    load_before = " / ".join(f"{value:.1f}" for value in os.getloadavg())

    def log(message):
        print(f"[{(time.perf_counter() - start) / 60:5.1f} min] {message}", flush=True)

    log(f"methods: {', '.join(methods)}; skipped (not in this skmoe): "
        f"{', '.join(skipped) or 'none'}")
    results = run(args.datasets, methods, args.seeds, args.sizes, args.n_bins, log)
    elapsed = time.perf_counter() - start
    seeded = per_seed(results)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(args.figure.with_suffix(".csv"), index=False, float_format="%.6g")
    plot(seeded, args.datasets, list(methods), args.figure)
    args.output.write_text(
        report(seeded, args.datasets, list(methods), skipped, args, elapsed,
               load_before)
    )
    log(f"wrote {args.output}, {args.figure} and {args.figure.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
