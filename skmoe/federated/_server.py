"""The server side of a DDOME federation, and the in-process transport.

:func:`run_ddome` is the server's main loop: choose the round's clients (anchors
first), query their gate scores, send each client only its top-k experts, check the
replies and average them. It talks to the clients only through a *transport* with
the methods ``summaries``, ``gate_scores``, ``update`` (and ``guard`` when the guard
is on), each taking a mapping from client index to instruction and returning the
replies of the clients that answered.
:class:`InProcessTransport` calls the client functions of
:mod:`skmoe.federated._protocol` directly; the Flower transport sends them as messages.
"""

from time import perf_counter

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import binomtest

from skmoe.federated._protocol import (
    aggregate,
    aggregate_summaries,
    check_reply,
    client_error,
    client_gate_scores,
    client_guard_counts,
    client_summary,
    client_update,
    initial_expert_parameters,
)


class InProcessTransport:
    """Run the client functions in this process, on cached per-client data.

    Parameters
    ----------
    client_data : list of (X, y, embedding) or (X, y, embedding, predictions)
        One entry per client; the embedding is the common expert's output, computed
        once here and reused every round; the optional predictions are the common
        expert's (encoded classes), for its accuracy in the history.
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
                self.client_data[c][2],
                self.client_data[c][1],
                self.n_classes,
                inst,
                self.client_data[c][3] if len(self.client_data[c]) > 3 else None,
            )
            for c, inst in instructions.items()
        }

    def _embedding(self, c, instruction):
        mean, scale = instruction["embedding_mean"], instruction["embedding_scale"]
        return (self.client_data[c][2] - mean) / scale

    def gate_scores(self, instructions):
        return {
            c: client_gate_scores(self._embedding(c, inst), inst)
            for c, inst in instructions.items()
        }

    def guard(self, instructions):
        replies = {}
        for c, inst in instructions.items():
            X, y, _ = self.client_data[c][:3]
            try:
                replies[c] = client_guard_counts(
                    X,
                    y,
                    self._embedding(c, inst),
                    np.asarray(self.client_data[c][3]) == y,
                    inst,
                    self.template,
                )
            except Exception as exc:  # noqa: BLE001 - as in update
                replies[c] = client_error(exc)
        return replies

    def update(self, instructions):
        replies = {}
        for c, inst in instructions.items():
            try:
                replies[c] = client_update(
                    self.client_data[c][0],
                    self.client_data[c][1],
                    self._embedding(c, inst),
                    inst,
                    self.template,
                )
            except Exception as exc:  # noqa: BLE001 - a failing client must not stop the run
                # e.g. an MLP whose weights diverge raises in partial_fit; on Flower
                # the node's error reply is dropped, here the server is told why
                replies[c] = client_error(exc)
        return replies


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


def derive_label_groups(label_counts, n_groups):
    """Split the labels into ``n_groups`` groups of labels that clients hold together.

    Greedy and balanced: group ``m`` gets ``s_m`` of the labels not yet grouped (the
    sizes differ by at most one, larger first), namely the ``s_m`` labels that the
    client most concentrated on ``s_m`` ungrouped labels holds most of (its share of
    samples in them, times the share of them it holds at all). A label no
    client holds goes to the smallest group last, so that every label has an expert.

    Parameters
    ----------
    label_counts : ndarray of shape (n_clients, n_labels)
    n_groups : int

    Returns
    -------
    groups : list of ndarray
        Sorted label indices, one array per group (fewer groups than asked when
        there are fewer labels than groups).
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    n_labels = counts.shape[1]
    n_groups = min(n_groups, n_labels)
    sizes = np.full(n_groups, n_labels // n_groups)
    sizes[: n_labels % n_groups] += 1
    free = np.ones(n_labels, dtype=bool)
    free[counts.sum(axis=0) == 0] = False
    totals = np.maximum(counts.sum(axis=1), 1.0)
    groups = []
    for size in sizes:
        available = np.where(free, counts, -1.0)
        top = np.argsort(-available, axis=1, kind="stable")[:, :size]
        in_top = np.take_along_axis(np.where(free, counts, 0.0), top, axis=1)
        mass = in_top.sum(axis=1)
        # concentration times the share of the group the client holds at all: a
        # client holding one label only would leave the group's others uncovered
        score = mass / totals * (in_top > 0).sum(axis=1) / size
        best = int(np.lexsort((-mass, -score))[0])
        group = [label for label in top[best] if free[label]][:size]
        # a client with fewer free labels than the group's size leaves room: fill
        # it with the free labels most held overall
        for label in np.argsort(-np.where(free, counts.sum(axis=0), -1.0)):
            if len(group) >= size or not free[label]:
                break
            if label not in group:
                group.append(label)
        free[group] = False
        groups.append(np.sort(np.asarray(group, dtype=np.intp)))
    for label in np.flatnonzero(counts.sum(axis=0) == 0):
        m = int(np.argmin([g.shape[0] for g in groups]))
        groups[m] = np.sort(np.append(groups[m], label))
    return groups


def group_concentration(label_counts, groups):
    """Share of each client's samples that falls in each label group.

    Returns an array of shape (n_clients, n_groups).
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return np.column_stack([counts[:, g].sum(axis=1) for g in groups]) / totals


def bind_label_groups(concentration, mass=None):
    """Bind each label group to a distinct client, the one most concentrated in it.

    A one-to-one assignment (Hungarian) maximising the summed concentrations, ties
    broken by the samples a client holds in the group (``mass``).

    Parameters
    ----------
    concentration : ndarray of shape (n_clients, n_groups)
        What :func:`group_concentration` returns (or what clients reported).
    mass : ndarray of shape (n_clients, n_groups), default=None

    Returns
    -------
    anchors : dict
        Client index -> group index (= expert index); a group is left without a
        client only when there are fewer clients than groups.
    """
    concentration = np.asarray(concentration, dtype=np.float64)
    score = concentration.copy()
    if mass is not None:
        mass = np.asarray(mass, dtype=np.float64)
        score += 1e-6 * mass / max(mass.max(), 1.0)
    clients, groups = linear_sum_assignment(-score)
    return {int(c): int(m) for c, m in zip(clients, groups, strict=True)}


def uncovered_labels(label_counts, groups, anchors, n_labels):
    """Labels in no group, or that no anchor client holds within its own group.

    ``label_counts`` may be None (counts kept at home): then only the labels in no
    group are reported.
    """
    grouped = np.concatenate(groups) if groups else np.arange(0)
    missing = set(range(n_labels)) - set(grouped.tolist())
    for m in set(range(len(groups))) - set(anchors.values()):
        missing.update(np.asarray(groups[m]).tolist())
    if label_counts is not None:
        counts = np.asarray(label_counts)
        for c, m in anchors.items():
            held = counts[c, groups[m]] > 0
            missing.update(np.asarray(groups[m])[~held].tolist())
    return sorted(missing)


def _round_clients(
    rng, n_clients, anchors, clients_per_round, anchor_fraction, held_out=()
):
    """The clients of one round: a share of anchors, the rest among the others.

    ``held_out`` clients (the guard's validation clients) are never picked.
    """
    anchor_ids = np.array(sorted(anchors), dtype=np.intp)
    skipped = np.concatenate([anchor_ids, np.asarray(held_out, dtype=np.intp)])
    others = np.setdiff1d(np.arange(n_clients), skipped)
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
        ``gate_batch_size``, ``dropout_rate``; with ``guard`` true also
        ``validation`` (``"clients"`` or ``"rows"``), ``validation_fraction`` and
        ``guard_alpha``: ``validation_fraction`` of the clients (never anchors)
        or of each client's rows stay out of training, and the experts are
        checked on them after the last round.
    rng : numpy.random.RandomState
        The only source of randomness of the whole run.
    log : callable, default=None
        Called with each round's history entry.

    Returns
    -------
    result : dict
        ``state``, ``anchors``, ``client_experts`` (client index -> top-k experts
        under the final gate), ``embedding_mean``, ``embedding_scale``, ``history``,
        ``guard`` (what :func:`guard_decision` returns, or None),
        ``validation_clients`` (indices of the clients held out for the guard).
    """
    n_clients, n_experts = config["n_clients"], config["n_experts"]
    share_counts = config.get("share_label_counts", True)
    groups = config.get("label_groups")
    asked = {"share_label_counts": share_counts}
    if not share_counts and groups is not None:
        asked["label_groups"] = groups
    summaries = transport.summaries({c: asked for c in range(n_clients)})
    everyone = dict.fromkeys(range(n_clients), {})
    ordered = [summaries[c] for c in range(n_clients)]
    mean, scale = aggregate_summaries(ordered)
    label_counts = (
        np.array([s["label_counts"] for s in ordered]) if share_counts else None
    )
    anchors = config["anchors"]
    if anchors is None:
        anchors = {c: m for m, c in enumerate(choose_anchors(label_counts, n_experts))}
    elif isinstance(anchors, str):  # "label_groups"
        if groups is None:
            groups = derive_label_groups(label_counts, n_experts)
        if share_counts:
            concentration = group_concentration(label_counts, groups)
            mass = concentration * label_counts.sum(axis=1, keepdims=True)
        else:
            group_counts = np.array([s["group_counts"] for s in ordered])
            totals = np.array([s["n_samples"] for s in ordered], dtype=np.float64)
            concentration = group_counts / totals[:, None]
            mass = group_counts
        anchors = bind_label_groups(concentration, mass)
    if groups is not None:
        groups = [np.asarray(g, dtype=np.intp) for g in groups]
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
    if config.get("initial_expert") is not None:
        # every expert starts as the common expert (the paper's initialisation);
        # the gate's random start and the anchors tell them apart
        state["experts"] = [
            [np.array(a, dtype=np.float64) for a in config["initial_expert"]]
            for _ in range(n_experts)
        ]
    guard = config.get("guard", False)
    by_clients = guard and config.get("validation", "rows") == "clients"
    shared_validation = {}
    validation_clients = np.array([], dtype=np.intp)
    if by_clients:
        # whole clients held out: the guard's evidence is then what a new client
        # gets (its label combination unseen by the experts trained on it too)
        candidates = np.setdiff1d(
            np.arange(n_clients), np.array(sorted(anchors), dtype=np.intp)
        )
        n_validation = min(
            int(np.floor(config["validation_fraction"] * n_clients)),
            candidates.shape[0],
        )
        validation_clients = np.sort(
            rng.choice(candidates, n_validation, replace=False)
        )
    elif guard:
        shared_validation = {
            "validation_fraction": float(config["validation_fraction"]),
            "validation_seed": int(rng.randint(np.iinfo(np.int32).max)),
        }
    common_correct = {
        c: s["n_common_correct"]
        for c, s in summaries.items()
        if "n_common_correct" in s
    }
    shared = {
        "embedding_mean": mean,
        "embedding_scale": scale,
        "n_classes": config["n_classes"],
        "local_epochs": config["local_epochs"],
        "gate_learning_rate": config["gate_learning_rate"],
        "gate_batch_size": config["gate_batch_size"],
        **shared_validation,
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
            validation_clients,
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
            # the frozen common expert on the same clients, for comparison
            # (over all the client's rows, validation rows included)
            "common_expert_accuracy": _weighted_mean(
                [
                    common_correct.get(c, np.nan) / summaries[c]["n_samples"]
                    for c in sorted(replies)
                    if c not in rejected
                ],
                np.array(
                    [
                        summaries[c]["n_samples"]
                        for c in sorted(replies)
                        if c not in rejected
                    ],
                    dtype=np.float64,
                ),
            ),
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
    guard_result = (
        _run_guard(
            transport, config, shared, gate, state, summaries, validation_clients
        )
        if guard
        else None
    )
    return {
        "state": state,
        "anchors": anchors,
        "client_experts": client_experts,
        "guard": guard_result,
        "validation_clients": validation_clients,
        "embedding_mean": mean,
        "embedding_scale": scale,
        "history": history,
        "label_groups": groups,
        "label_counts": label_counts,
        "common_correct": common_correct,
        "client_sizes": {c: summaries[c]["n_samples"] for c in summaries},
    }


def guard_decision(replies, n_experts, alpha):
    """Which experts beat the common expert on the clients' validation rows.

    The counts of :func:`~skmoe.federated._protocol.client_guard_counts` are summed
    over the clients; expert ``m`` is *trusted* when, on the validation rows routed
    to it, it is right where the common expert is wrong significantly more often
    than the reverse: the one-sided exact sign test (McNemar's test) on the
    discordant pairs has a p-value below ``alpha``. An expert with no discordant
    pair (or no routed row) has shown no gain and is not trusted. A reply with an
    error or malformed counts is left out.

    Returns
    -------
    guard : dict
        ``trusted`` (bool array), ``p_values``, ``n_routed``, ``n_expert_only``,
        ``n_common_only`` (arrays over the experts), ``n_clients`` (replies used).
    """
    totals = np.zeros((3, n_experts), dtype=np.int64)
    n_clients = 0
    for reply in replies.values():
        try:
            experts = np.asarray(reply["experts"], dtype=np.intp)
            counts = np.array(
                [reply["n_routed"], reply["n_expert_only"], reply["n_common_only"]],
                dtype=np.float64,
            )
        except (KeyError, TypeError, ValueError):
            continue
        if (
            counts.shape != (3, experts.shape[0])
            or not np.all(np.isfinite(counts))
            or np.any(counts < 0)
            or np.any(counts[1:] > counts[0])
            or np.any((experts < 0) | (experts >= n_experts))
        ):
            continue
        np.add.at(totals.T, experts, counts.T.astype(np.int64))
        n_clients += 1
    p_values = np.ones(n_experts)
    for m in range(n_experts):
        wins, losses = int(totals[1, m]), int(totals[2, m])
        if wins + losses > 0:
            p_values[m] = binomtest(
                wins, wins + losses, 0.5, alternative="greater"
            ).pvalue
    return {
        "trusted": p_values < alpha,
        "p_values": p_values,
        "n_routed": totals[0],
        "n_expert_only": totals[1],
        "n_common_only": totals[2],
        "n_clients": n_clients,
    }


def _run_guard(transport, config, shared, gate, state, summaries, validation_clients):
    """The guard's exchange after the last round: route, count, test.

    With validation clients, they alone answer, over all their rows; otherwise
    every client answers over its validation rows.
    """
    if config.get("validation", "rows") == "clients":
        asked = {int(c): {**shared, **gate, "rows": "all"} for c in validation_clients}
    else:
        fraction = shared["validation_fraction"]
        asked = {
            c: {**shared, **gate, "rows": "validation"}
            for c, s in summaries.items()
            if int(np.floor(fraction * s["n_samples"])) > 0
        }
    scores = transport.gate_scores(asked)
    instructions = {}
    for c in sorted(scores):
        selected = top_experts(scores[c]["gate_scores"], config["top_k"])
        instructions[c] = {
            **asked[c],
            "experts": selected,
            "expert_parameters": [state["experts"][m] for m in selected],
        }
    replies = transport.guard(instructions)
    return guard_decision(replies, config["n_experts"], config["guard_alpha"])


def _weighted_mean(values, weights):
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.any():
        return float("nan")
    return float(np.average(values[keep], weights=weights[keep]))
