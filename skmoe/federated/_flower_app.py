"""DDOME as a deployable Flower app: the components of skmoe's Flower app project.

``flwr run`` reads the app project (:func:`skmoe.federated.flower_app_path`), whose
``[tool.flwr.app.components]`` name :data:`server_app` and :data:`client_app`. Each
SuperNode is one data owner: it reads its own partition (``--node-config
"partition='/path/part0.npz'"``), loads the frozen common expert from its own copy of
the file, embeds its data itself, and answers the server with the client functions
of :mod:`skmoe.federated._protocol`. The server never sees a sample: it learns each
node's name, sizes, label counts and embedding moments once, then runs
:func:`run_ddome`, the loop of the in-process fit, through :class:`GridTransport`;
with the same files and seed it fits the model that ``DDOMEClassifier.fit`` fits in
one process, and saves it with joblib.

This module imports ``flwr``; Flower imports it when it loads the app.
"""

import json
from logging import INFO, WARNING
from pathlib import Path
from time import monotonic, sleep

import joblib
import numpy as np
from flwr.app import Message
from flwr.clientapp import ClientApp
from flwr.common.logger import log
from flwr.serverapp import ServerApp
from sklearn.utils import check_random_state

from skmoe.federated._common import default_expert
from skmoe.federated._ddome import (
    DDOMEClassifier,
    _is_fitted,
    embed,
    embedding_method,
    expert_features,
    expert_input_mode,
)
from skmoe.federated._deploy import (
    ESTIMATOR_KEYS,
    file_digest,
    load_partition,
    load_verified,
)
from skmoe.federated._flower import decode, encode
from skmoe.federated._protocol import (
    client_gate_scores,
    client_guard_counts,
    client_summary,
    client_update,
)
from skmoe.federated._server import run_ddome

server_app = ServerApp()
client_app = ClientApp()


# ------------------------------------------------------------------ the client side
def _setting(context, key):
    """A node's own setting, else the run's (a node names its local copy of a file)."""
    value = context.node_config.get(key, "")
    return value if value != "" else context.run_config.get(key, "")


def partition_path(context):
    """The partition file of this SuperNode.

    ``partition`` in the node configuration (a deployment), else the run's
    ``partitions`` template with ``{partition-id}`` filled in by the simulation
    engine.
    """
    if context.node_config.get("partition", "") != "":
        return Path(context.node_config["partition"])
    template = context.run_config.get("partitions", "")
    if template and "partition-id" in context.node_config:
        partition_id = str(context.node_config["partition-id"])
        return Path(template.replace("{partition-id}", partition_id))
    raise ValueError(
        "This SuperNode names no data: start it with "
        "--node-config \"partition='/path/to/partition.npz'\" (or, on the "
        "simulation engine, set the run config partitions='/path/part{partition-id}"
        ".npz')."
    )


_LOADED = {}


def local_data(context, instruction):
    """The node's data; loaded once per process.

    Returns its name, the experts' features (``expert_input`` of the instruction),
    the labels, the embedding, where the common expert is right, and the number of
    raw features.

    The common expert is read from the node's own file after its digest was checked
    against the one the server sent.
    """
    path = partition_path(context)
    label = str(context.node_config.get("label", "y"))
    expert_path = _setting(context, "common-expert")
    digest = instruction["common_expert_sha256"]
    mode = instruction.get("expert_input", "raw")
    key = (str(path), label, str(expert_path), bytes(digest), mode)
    if key not in _LOADED:
        if expert_path == "":
            raise ValueError(
                "No common expert: set the run config common-expert (or this node's "
                "--node-config common-expert='/path/common_expert.joblib')."
            )
        X, y = load_partition(path, label=label)
        common_expert = load_verified(expert_path, digest, "common expert")
        method = embedding_method(common_expert, context.run_config["embedding"])
        name = context.node_config.get("client-id", path.stem)
        # where the common expert is right here: for its accuracy (a count) and
        # for the guard (counts of where it and the experts differ)
        common_correct = np.asarray(common_expert.predict(X) == y)
        embedding = embed(common_expert, X, method)
        # the experts' input (the common expert's preprocessing, if asked)
        features = expert_features(common_expert, X, mode)
        _LOADED.clear()
        _LOADED[key] = (name, features, y, embedding, common_correct, X.shape[1])
    return _LOADED[key]


def expert_template(context, instruction):
    """The unfitted expert: the default, or the node's copy of the server's file."""
    path = _setting(context, "expert")
    if "expert_sha256" not in instruction:
        if path != "":
            raise ValueError(
                f"This node names an expert file ({path}) but the server uses the "
                "default expert."
            )
        return default_expert()
    if path == "":
        raise ValueError(
            "The server uses an expert from a file: set this node's "
            "--node-config expert='/path/expert.joblib'."
        )
    return load_verified(path, instruction["expert_sha256"], "expert")


def encode_labels(y, classes):
    """Labels as indices into the federation's sorted ``classes``."""
    classes = np.asarray(classes)
    index = np.clip(np.searchsorted(classes, y), 0, classes.shape[0] - 1)
    unknown = classes[index] != y
    if np.any(unknown):
        raise ValueError(
            f"Labels {np.unique(y[unknown]).tolist()} are not among the "
            f"federation's classes {classes.tolist()}."
        )
    return index


def _standardised(embedding, instruction):
    return (embedding - instruction["embedding_mean"]) / instruction["embedding_scale"]


def _reply(message, payload):
    return Message(encode(payload), reply_to=message)


@client_app.query("describe")
def describe(message, context):
    """Everything the server asks once: name, sizes, labels and the summary.

    The summary (:func:`client_summary`) counts the labels over the client's own
    label set; the server maps the counts onto the federation's classes, which it
    knows only when every client has described itself. With ``share_label_counts``
    false the counts stay here: the node sends, if the server gave ``label_groups``
    (lists of label values), how many of its samples fall in each group. The set
    of labels it holds is sent either way (the server builds the classes from it).
    One exchange instead of two: each message costs a ClientApp process on the node.
    """
    instruction = decode(message.content)
    name, X, y, embedding, common_correct, n_features = local_data(context, instruction)
    labels, y_local = np.unique(y, return_inverse=True)
    summary = client_summary(embedding, y_local, labels.shape[0])
    summary["n_common_correct"] = int(np.sum(common_correct))
    if not instruction.get("share_label_counts", True):
        del summary["label_counts"]
        if "label_groups" in instruction:
            summary["group_counts"] = np.array(
                [np.isin(y, group).sum() for group in instruction["label_groups"]],
                dtype=np.float64,
            )
    return _reply(
        message,
        {
            **summary,
            "name": name,
            "n_features": n_features,
            "n_expert_features": X.shape[1],
            "n_embedding": embedding.shape[1],
            "labels": labels,
        },
    )


@client_app.query("gate_scores")
def gate_scores(message, context):
    instruction = decode(message.content)
    embedding = local_data(context, instruction)[3]
    reply = client_gate_scores(_standardised(embedding, instruction), instruction)
    return _reply(message, reply)


@client_app.train()
def train(message, context):
    instruction = decode(message.content)
    _, X, y, embedding = local_data(context, instruction)[:4]
    reply = client_update(
        X,
        encode_labels(y, instruction["classes"]),
        _standardised(embedding, instruction),
        instruction,
        expert_template(context, instruction),
    )
    return _reply(message, reply)


@client_app.query("guard")
def guard(message, context):
    """The guard's counts on this node's validation rows (client_guard_counts)."""
    instruction = decode(message.content)
    _, X, y, embedding, common_correct = local_data(context, instruction)[:5]
    reply = client_guard_counts(
        X,
        encode_labels(y, instruction["classes"]),
        _standardised(embedding, instruction),
        common_correct,
        instruction,
        expert_template(context, instruction),
    )
    return _reply(message, reply)


# ------------------------------------------------------------------ the server side
class GridTransport:
    """The transport of :func:`run_ddome` over a Flower ``Grid`` of SuperNodes.

    Client ``c`` of the federation is the node ``node_of[c]``; a reply counts for
    the node that sent it, whatever it contains. Every message carries ``shared``
    (the classes and the digests of the files every node must hold). A node that
    fails, dies or does not answer within ``timeout`` seconds is left out of that
    exchange; the reasons are logged and kept in ``dropped`` (one entry per
    exchange: type, client -> reason).
    """

    def __init__(self, grid, shared, *, timeout=None):
        self.grid = grid
        self.shared = shared
        self.timeout = timeout
        self.node_of = {}
        self.names = {}
        self.described = {}
        self.dropped = []

    def send(self, message_type, contents):
        """Send ``contents`` (node -> payload); return (node -> reply, node -> why)."""
        messages = [
            Message(
                encode({**self.shared, **content}),
                dst_node_id=node,
                message_type=message_type,
            )
            for node, content in contents.items()
        ]
        replies, failures = {}, {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            node = reply.metadata.src_node_id
            if node not in contents:
                continue
            if reply.has_error():
                failures[node] = f"error on the node: {reply.error.reason}"
                continue
            try:
                replies[node] = decode(reply.content)
            except Exception as exc:  # noqa: BLE001 - any undecodable reply is dropped
                failures[node] = f"undecodable reply ({type(exc).__name__}: {exc})"
        for node in set(contents) - set(replies) - set(failures):
            failures[node] = f"no reply within {self.timeout} s"
        return replies, failures

    def _exchange(self, message_type, instructions):
        client_of = {self.node_of[c]: c for c in instructions}
        replies, failures = self.send(
            message_type, {self.node_of[c]: inst for c, inst in instructions.items()}
        )
        dropped = {client_of[node]: why for node, why in failures.items()}
        if dropped:
            self.dropped.append((message_type, dropped))
            for client, why in sorted(dropped.items()):
                log(
                    WARNING,
                    "DDOME: client %s dropped from %s: %s",
                    self.names.get(client, client),
                    message_type,
                    why,
                )
        return {client_of[node]: reply for node, reply in replies.items()}

    def summaries(self, instructions):
        """The summaries the clients sent with their description."""
        return {c: self.described[c] for c in instructions}

    def gate_scores(self, instructions):
        return self._exchange("query.gate_scores", instructions)

    def update(self, instructions):
        return self._exchange("train", instructions)

    def guard(self, instructions):
        return self._exchange("query.guard", instructions)


def wait_for_nodes(grid, min_nodes, patience):
    """The connected node ids once at least ``min_nodes`` are (or ``patience`` s)."""
    started = monotonic()
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < min_nodes and monotonic() - started < patience:
        sleep(1.0)
        nodes = sorted(grid.get_node_ids())
    if len(nodes) < min_nodes:
        raise RuntimeError(
            f"{len(nodes)} SuperNodes connected within {patience} s; the run needs "
            f"min-nodes={min_nodes}."
        )
    return nodes


def _sort_key(name):
    # integer names sort as numbers, as numpy.unique sorts integer client ids
    return (0, name, "") if isinstance(name, int) else (1, 0, str(name))


def describe_clients(transport, nodes, question=None):
    """Ask every node for its name, sizes, labels and summary; order them by name.

    ``question`` (the same for every node) may hold ``share_label_counts`` and
    ``label_groups``, as :func:`describe` reads them. Returns the sorted names, the
    number of features and of embedding dimensions, and the classes (the sorted
    union of the clients' labels). Nodes that fail are logged and left out.
    """
    question = {} if question is None else question
    replies, failures = transport.send("query.describe", dict.fromkeys(nodes, question))
    for node, why in sorted(failures.items()):
        log(WARNING, "DDOME: node %s left out of the federation: %s", node, why)
    if not replies:
        raise RuntimeError(
            "No SuperNode described its data; first failures: "
            f"{list(failures.values())[:3]}"
        )
    names = [replies[node]["name"] for node in replies]
    duplicated = sorted({str(n) for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(
            f"Several SuperNodes call themselves {duplicated}; give each a distinct "
            "--node-config client-id."
        )
    for key in ("n_features", "n_expert_features", "n_embedding"):
        sizes = {node: int(reply[key]) for node, reply in replies.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"The clients disagree on {key}: {sizes}.")
    labels = [np.asarray(reply["labels"]) for reply in replies.values()]
    kinds = {a.dtype.kind for a in labels}
    if len(kinds) > 1:
        raise ValueError(
            f"The clients' labels are of different kinds ({sorted(kinds)}): store "
            "them all as numbers or all as strings."
        )
    classes = np.unique(np.concatenate(labels))
    order = sorted(replies, key=lambda node: _sort_key(replies[node]["name"]))
    transport.node_of = dict(enumerate(order))
    transport.names = {c: replies[node]["name"] for c, node in enumerate(order)}
    for c, node in enumerate(order):
        reply = replies[node]
        transport.described[c] = {
            key: reply[key]
            for key in (
                "n_samples",
                "embedding_sum",
                "embedding_sum_squares",
                "n_common_correct",
                "group_counts",
            )
            if key in reply
        }
        if "label_counts" in reply:
            label_counts = np.zeros(classes.shape[0])
            where = np.searchsorted(classes, reply["labels"])
            label_counts[where] = reply["label_counts"]
            transport.described[c]["label_counts"] = label_counts
    first = replies[order[0]]
    return (
        [replies[node]["name"] for node in order],
        int(first["n_features"]),
        int(first["n_expert_features"]),
        int(first["n_embedding"]),
        classes,
    )


def _log_round(entry):
    log(
        INFO,
        "DDOME round %d: %d replies, %d dropped, %d rejected %s, loss %.4f, "
        "accuracy %.4f",
        entry["round"] + 1,
        entry["n_replies"],
        entry["n_dropped"],
        entry["n_rejected"],
        entry["rejected"],
        entry["loss"],
        entry["accuracy"],
    )


def fit_on_grid(grid, run_config):
    """Fit a DDOMEClassifier over the SuperNodes of ``grid``; save it if asked.

    Parameters
    ----------
    grid : flwr.serverapp.Grid
    run_config : dict
        The app's run configuration (see the app's ``pyproject.toml``).

    Returns
    -------
    estimator : DDOMEClassifier
        Fitted; ``clients_`` holds the nodes' names, ``history_`` the rounds, and
        ``dropped_`` the failures of every exchange.
    """
    common_path = run_config["common-expert"]
    if common_path == "":
        raise ValueError(
            "Set the run config common-expert to the joblib file of the fitted "
            "common expert (flwr run ... --run-config "
            "\"common-expert='/path/common_expert.joblib'\")."
        )
    common_expert = joblib.load(common_path)
    if not _is_fitted(common_expert):
        raise ValueError(f"The common expert in {common_path} is not fitted.")
    shared = {"common_expert_sha256": file_digest(common_path)}
    expert = None
    if run_config["expert"] != "":
        expert = joblib.load(run_config["expert"])
        shared["expert_sha256"] = file_digest(run_config["expert"])
    groups = run_config.get("label-groups", "")
    # a TOML setting cannot be None: "" switches the guard off
    guard = run_config.get("guard", "common_expert")
    estimator = DDOMEClassifier(
        common_expert,
        expert=expert,
        label_groups=json.loads(groups) if groups != "" else None,
        guard=guard if guard != "" else None,
        **{
            param: run_config[key]
            for key, param in ESTIMATOR_KEYS.items()
            if key in run_config
        },
    )
    estimator._validate_params()
    # every node computes the experts' features the same way as the server says
    estimator.expert_input_ = expert_input_mode(common_expert, estimator.expert_input)
    shared["expert_input"] = estimator.expert_input_
    question = {"share_label_counts": estimator.share_label_counts}
    if not estimator.share_label_counts and estimator.label_groups is not None:
        question["label_groups"] = [np.asarray(g) for g in estimator.label_groups]

    timeout = float(run_config["reply-timeout"]) or None
    transport = GridTransport(grid, shared, timeout=timeout)
    nodes = wait_for_nodes(
        grid, int(run_config["min-nodes"]), float(run_config["node-patience"])
    )
    names, n_features, n_expert_features, n_embedding, classes = describe_clients(
        transport, nodes, question
    )
    log(INFO, "DDOME: %d clients %s, classes %s", len(names), names, classes.tolist())
    transport.shared["classes"] = classes
    estimator.classes_ = classes
    estimator.clients_ = np.array(names)
    estimator.n_features_in_ = n_features
    estimator.common_expert_ = common_expert
    estimator.embedding_method_ = estimator._embedding_method()
    config = estimator._federation_config(n_expert_features, n_embedding)
    rng = check_random_state(estimator.random_state)
    result = run_ddome(transport, config, rng, log=_log_round)
    estimator._finish(result, config)
    estimator.dropped_ = [
        (kind, {names[c]: why for c, why in dropped.items()})
        for kind, dropped in transport.dropped
    ]
    if run_config["model-path"] != "":
        joblib.dump(estimator, run_config["model-path"])
        log(INFO, "DDOME: model saved to %s", run_config["model-path"])
    return estimator


@server_app.main()
def main(grid, context):
    fit_on_grid(grid, context.run_config)
