"""DDOME against FedAvg, FedProx, local-only and central MoE on label-skewed clients.

The digits data set (1,797 images, 10 classes, pixels scaled to [0, 1]) is split over
``--clients`` clients in two ways: *quantity skew* (each client holds
``--labels-per-client`` labels, the samples of a label shared among the clients that
hold it) and *Dirichlet skew* (each label spread over the clients with proportions
drawn from Dirichlet(alpha = 0.1)). ``--held-out`` clients are kept out of training
entirely (they test zero-shot routing); every other client keeps 30% of its samples
for testing. Reported per method, averaged over ``--seeds`` seeds: accuracy on the
seen clients' test samples (each predicted with its own client id) and on the
held-out clients (as unseen clients), and fit time. Every federated method runs the
same number of rounds and clients per round with the same SGD expert.

    python benchmarks/federated.py                 # Markdown table on stdout
    python benchmarks/federated.py --flower        # also time DDOME on Flower
"""

import argparse
import platform
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skmoe import MixtureOfExpertsClassifier
from skmoe.federated import (
    DDOMEClassifier,
    FedAvgClassifier,
    FedProxClassifier,
    LocalClassifier,
    run_flower_simulation,
)


def quantity_skew(y, n_clients, labels_per_client, rng):
    """Client of each sample when each client holds ``labels_per_client`` labels."""
    n_classes = np.unique(y).shape[0]
    # every label goes to the same number of clients, so no label is left out
    slots = np.concatenate(
        [rng.permutation(n_classes) for _ in range(n_clients * labels_per_client)]
    )[: n_clients * labels_per_client]
    label_sets = slots.reshape(n_clients, labels_per_client)
    client_ids = np.empty(y.shape[0], dtype=np.intp)
    for label in range(n_classes):
        owners = np.flatnonzero((label_sets == label).any(axis=1))
        rows = rng.permutation(np.flatnonzero(y == label))
        client_ids[rows] = owners[np.arange(rows.shape[0]) % owners.shape[0]]
    return client_ids


def dirichlet_skew(y, n_clients, alpha, rng):
    """Client of each sample when each label is spread by Dirichlet(alpha)."""
    client_ids = np.empty(y.shape[0], dtype=np.intp)
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        shares = rng.dirichlet(np.full(n_clients, alpha))
        client_ids[rows] = rng.choice(n_clients, size=rows.shape[0], p=shares)
    return client_ids


def methods(args, seed):
    common = {
        "n_rounds": args.rounds,
        "clients_per_round": args.clients_per_round,
        "random_state": seed,
    }
    return {
        "DDOME": DDOMEClassifier(n_experts=args.experts, **common),
        "FedAvg": FedAvgClassifier(**common),
        "FedProx": FedProxClassifier(proximal_mu=0.1, **common),
        "local only": LocalClassifier(),
        "central MoE": MixtureOfExpertsClassifier(
            n_experts=args.experts, routing="hard", random_state=seed
        ),
    }


def run_split(name, client_ids, X, y, args, seed, rows_out):
    clients = np.unique(client_ids)
    rng = np.random.RandomState(seed)
    held_out = rng.choice(clients, args.held_out, replace=False)
    unseen = np.isin(client_ids, held_out)
    seen_rows = np.flatnonzero(~unseen)
    train, test = train_test_split(
        seen_rows, test_size=0.3, random_state=seed, stratify=None
    )
    for method, model in methods(args, seed).items():
        started = time.perf_counter()
        central = method == "central MoE"
        if central:
            model.fit(X[train], y[train])
        else:
            model.fit(X[train], y[train], client_ids[train])
        fit_time = time.perf_counter() - started

        def accuracy(rows, ids, central=central, model=model):
            if central:
                return float(np.mean(model.predict(X[rows]) == y[rows]))
            return float(np.mean(model.predict(X[rows], ids) == y[rows]))

        per_round = (
            np.mean([h["time"] for h in model.history_])
            if hasattr(model, "history_")
            else np.nan
        )
        rows_out.append(
            {
                "split": name,
                "method": method,
                "seed": seed,
                "seen": accuracy(test, client_ids[test]),
                "unseen": accuracy(np.flatnonzero(unseen), client_ids[unseen]),
                "fit": fit_time,
                "round": per_round,
            }
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--held-out", type=int, default=10)
    parser.add_argument("--labels-per-client", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--experts", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--clients-per-round", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--flower", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rows = []
    for seed in range(args.seeds):
        rng = np.random.RandomState(seed)
        splits = {
            f"quantity skew ({args.labels_per_client} labels)": quantity_skew(
                y, args.clients, args.labels_per_client, rng
            ),
            f"Dirichlet skew (alpha={args.alpha})": dirichlet_skew(
                y, args.clients, args.alpha, rng
            ),
        }
        for name, client_ids in splits.items():
            run_split(name, client_ids, X, y, args, seed, rows)
    print(
        f"digits, {args.clients} clients ({args.held_out} held out), "
        f"{args.rounds} rounds of {args.clients_per_round} clients, "
        f"{args.experts} experts, seeds 0..{args.seeds - 1}; "
        f"{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}\n"
    )
    print(
        "| split | method | seen clients acc. | unseen clients acc. | fit (s) "
        "| s / round |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for split in dict.fromkeys(r["split"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            cell = [r for r in rows if r["split"] == split and r["method"] == method]
            seen = np.array([r["seen"] for r in cell])
            unseen = np.array([r["unseen"] for r in cell])
            per_round = np.mean([r["round"] for r in cell])
            print(
                f"| {split} | {method} | {seen.mean():.3f} ± {seen.std():.3f} "
                f"| {unseen.mean():.3f} ± {unseen.std():.3f} "
                f"| {np.mean([r['fit'] for r in cell]):.1f} "
                f"| {'' if np.isnan(per_round) else f'{per_round:.2f}'} |"
            )
    if args.flower:
        client_ids = quantity_skew(
            y, args.clients, args.labels_per_client, np.random.RandomState(0)
        )
        n_rounds = 5
        started = time.perf_counter()
        in_process = DDOMEClassifier(
            n_experts=args.experts, n_rounds=n_rounds, random_state=0
        ).fit(X, y, client_ids)
        in_process_time = time.perf_counter() - started
        started = time.perf_counter()
        on_flower = run_flower_simulation(
            DDOMEClassifier(n_experts=args.experts, n_rounds=n_rounds, random_state=0),
            X,
            y,
            client_ids,
        )
        flower_time = time.perf_counter() - started
        gap = np.abs(in_process.gate_.coef_ - on_flower.gate_.coef_).max()
        print(
            f"\nDDOME, {n_rounds} rounds, quantity skew, seed 0: in-process "
            f"{in_process_time:.1f} s, Flower simulation (Ray) {flower_time:.1f} s "
            f"including engine start-up; largest gate coefficient difference {gap:.1e}"
        )


if __name__ == "__main__":
    main()
