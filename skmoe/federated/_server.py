"""The server side of a DDOME federation, and the in-process transport.

:func:`run_ddome` is the server's main loop: choose the round's clients (anchors
first), query their gate scores, send each client only its top-k experts, check the
replies and average them. It talks to the clients only through a *transport* with
three methods (``summaries``, ``gate_scores``, ``update``), each taking a mapping from
client index to instruction and returning the replies of the clients that answered.
:class:`InProcessTransport` calls the client functions of
:mod:`skmoe.federated._protocol` directly; the Flower transport sends them as messages.
"""

from time import perf_counter

import numpy as np

from skmoe.federated._protocol import (
    aggregate,
    aggregate_summaries,
    check_reply,
    client_gate_scores,
    client_summary,
    client_update,
    initial_expert_parameters,
)


class InProcessTransport:
    """Run the client functions in this process, on cached per-client data.

    Parameters
    ----------
    client_data : list of (X, y, embedding)
        One entry per client; the embedding is the common expert's output, computed
        once here and reused every round.
    template : estimator
        The unfitted expert.
    n_classes : int
    """

    def __init__(self, client_data, template, n_classes):
        self.client_data = client_data
        self.template = template
        self.n_classes = n_classes
        self.standardise = None

    def summaries(self, instructions):
        return {
            c: client_summary(
                self.client_data[c][2], self.client_data[c][1], self.n_classes
            )
            for c in instructions
        }

    def _embedding(self, c, instruction):
        mean, scale = instruction["embedding_mean"], instruction["embedding_scale"]
        return (self.client_data[c][2] - mean) / scale

    def gate_scores(self, instructions):
        return {
            c: client_gate_scores(self._embedding(c, inst), inst)
            for c, inst in instructions.items()
        }

    def update(self, instructions):
        return {
            c: client_update(
                self.client_data[c][0],
                self.client_data[c][1],
                self._embedding(c, inst),
                inst,
                self.template,
            )
            for c, inst in instructions.items()
        }


def choose_anchors(label_counts, n_experts):
    """Pick up to ``n_experts`` clients with the most distinct label distributions.

    Farthest-first on the clients' label proportions (L1 distance), starting with
    the client that holds the most distinct labels (then the most samples).
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    proportions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    n_labels = (counts > 0).sum(axis=1)
    first = int(np.lexsort((-counts.sum(axis=1), -n_labels))[0])
    chosen = [first]
    distance = np.abs(proportions - proportions[first]).sum(axis=1)
    while len(chosen) < min(n_experts, counts.shape[0]):
        distance[chosen] = -np.inf
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(
            distance, np.abs(proportions - proportions[nxt]).sum(axis=1)
        )
    return chosen


def _round_clients(rng, n_clients, anchors, clients_per_round, anchor_fraction):
    """The clients of one round: a share of anchors, the rest among the others."""
    anchor_ids = np.array(sorted(anchors), dtype=np.intp)
    others = np.setdiff1d(np.arange(n_clients), anchor_ids)
    size = min(clients_per_round, n_clients)
    n_anchors = min(anchor_ids.shape[0], int(round(anchor_fraction * size)))
    n_others = min(others.shape[0], size - n_anchors)
    n_anchors = min(anchor_ids.shape[0], size - n_others)
    picked = np.concatenate(
        [
            rng.choice(anchor_ids, n_anchors, replace=False),
            rng.choice(others, n_others, replace=False),
        ]
    ).astype(np.intp)
    return np.sort(picked)


def top_experts(gate_scores, top_k):
    """Indices of the ``top_k`` largest aggregated gate scores (ties: lower index)."""
    return np.sort(np.argsort(-np.asarray(gate_scores), kind="stable")[:top_k])


def run_ddome(transport, config, rng, log=None):
    """Run a DDOME federation; return the final state, anchors, routing and history.

    Parameters
    ----------
    transport : InProcessTransport or a transport with the same methods
    config : dict
        ``n_clients``, ``n_features``, ``n_embedding``, ``n_classes``, ``template``,
        ``n_experts``, ``top_k``, ``anchors`` (mapping client index -> expert, or
        None to choose them), ``anchor_fraction``, ``n_rounds``,
        ``clients_per_round``, ``local_epochs``, ``gate_learning_rate``,
        ``gate_batch_size``, ``dropout_rate``.
    rng : numpy.random.RandomState
        The only source of randomness of the whole run.
    log : callable, default=None
        Called with each round's history entry.

    Returns
    -------
    result : dict
        ``state``, ``anchors``, ``client_experts`` (client index -> top-k experts
        under the final gate), ``embedding_mean``, ``embedding_scale``, ``history``.
    """
    n_clients, n_experts = config["n_clients"], config["n_experts"]
    everyone = dict.fromkeys(range(n_clients), {})
    summaries = transport.summaries(everyone)
    ordered = [summaries[c] for c in range(n_clients)]
    mean, scale = aggregate_summaries(ordered)
    anchors = config["anchors"]
    if anchors is None:
        label_counts = np.array([s["label_counts"] for s in ordered])
        anchors = {c: m for m, c in enumerate(choose_anchors(label_counts, n_experts))}
    state = {
        "n_classes": config["n_classes"],
        # small random scores break the ties of a gate that scores all experts alike
        "gate": [
            0.01 * rng.standard_normal((n_experts, config["n_embedding"])),
            np.zeros(n_experts),
        ],
        "experts": [
            initial_expert_parameters(
                config["template"],
                config["n_features"],
                config["n_classes"],
                rng.randint(np.iinfo(np.int32).max),
            )
            for _ in range(n_experts)
        ],
    }
    shared = {
        "embedding_mean": mean,
        "embedding_scale": scale,
        "n_classes": config["n_classes"],
        "local_epochs": config["local_epochs"],
        "gate_learning_rate": config["gate_learning_rate"],
        "gate_batch_size": config["gate_batch_size"],
    }
    history = []
    for round_index in range(config["n_rounds"]):
        started = perf_counter()
        picked = _round_clients(
            rng,
            n_clients,
            anchors,
            config["clients_per_round"],
            config["anchor_fraction"],
        )
        seeds = rng.randint(np.iinfo(np.int32).max, size=picked.shape[0])
        answering = picked[rng.random_sample(picked.shape[0]) >= config["dropout_rate"]]
        gate = {"gate_coef": state["gate"][0], "gate_intercept": state["gate"][1]}
        scores = transport.gate_scores({int(c): {**shared, **gate} for c in answering})
        instructions = {}
        for c, seed in zip(picked, seeds, strict=True):
            c = int(c)
            if c not in scores:
                continue
            if c in anchors:
                selected = np.array([anchors[c]])
            else:
                selected = top_experts(scores[c]["gate_scores"], config["top_k"])
            instructions[c] = {
                **shared,
                **gate,
                "experts": selected,
                "expert_parameters": [state["experts"][m] for m in selected],
                "anchor": anchors.get(c, -1),
                "seed": int(seed),
            }
        replies = transport.update(instructions)
        accepted, rejected = [], {}
        for c in sorted(replies):
            reason = check_reply(replies[c], state, instructions[c]["experts"])
            if reason is None:
                accepted.append(replies[c])
            else:
                rejected[c] = reason
        state = aggregate(accepted, state)
        weights = np.array([r["n_samples"] for r in accepted], dtype=np.float64)
        usage = np.zeros(n_experts, dtype=np.intp)
        for inst in instructions.values():
            usage[inst["experts"]] += 1
        entry = {
            "round": round_index,
            "clients": picked.tolist(),
            "n_dropped": int(picked.shape[0] - len(replies)),
            "n_replies": len(replies),
            "n_rejected": len(rejected),
            "rejected": rejected,
            "expert_usage": usage,
            "loss": _weighted_mean([r["loss"] for r in accepted], weights),
            "accuracy": _weighted_mean([r["accuracy"] for r in accepted], weights),
            "time": perf_counter() - started,
        }
        history.append(entry)
        if log is not None:
            log(entry)
    gate = {"gate_coef": state["gate"][0], "gate_intercept": state["gate"][1]}
    final_scores = transport.gate_scores({c: {**shared, **gate} for c in everyone})
    client_experts = {
        c: top_experts(final_scores[c]["gate_scores"], config["top_k"])
        for c in final_scores
    }
    return {
        "state": state,
        "anchors": anchors,
        "client_experts": client_experts,
        "embedding_mean": mean,
        "embedding_scale": scale,
        "history": history,
    }


def _weighted_mean(values, weights):
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.any():
        return float("nan")
    return float(np.average(values[keep], weights=weights[keep]))
