"""DDOME on Flower: a ClientApp and a ServerApp made of the in-process functions.

The ``ServerApp``'s main loop is :func:`~skmoe.federated._server.run_ddome` itself,
given a transport that sends each instruction as a Flower ``Message`` and decodes the
replies; the ``ClientApp`` answers with the client functions of
:mod:`skmoe.federated._protocol` on its own partition. The payloads are the same
dictionaries of arrays as in-process, serialised losslessly, so the same seed gives the
same model. ``flwr`` is imported only here, and only when these functions are called.
"""

from time import perf_counter, sleep

import numpy as np

from skmoe.federated._protocol import (
    client_gate_scores,
    client_guard_counts,
    client_summary,
    client_update,
)

_FLOWER_MISSING = (
    'Running DDOME on Flower needs flwr: pip install "skmoe[federated]" '
    '(or pip install "flwr[simulation]").'
)
_SEPARATOR = "/"


def _import_flwr():
    try:
        import flwr  # noqa: F401
    except ImportError as exc:
        raise ImportError(_FLOWER_MISSING) from exc


def encode(payload):
    """A payload (dict of numbers, arrays, lists of arrays) as a Flower RecordDict.

    Every value becomes a named array (numbers as ``name/number``, nested lists as
    ``name/i/j`` and ``name/len``), so that float64 values cross the wire bit for
    bit.
    """
    from flwr.app import Array, ArrayRecord, RecordDict

    arrays = {}

    def put(key, value):
        if isinstance(value, (list, tuple)):
            arrays[key + _SEPARATOR + "len"] = Array(np.asarray(len(value)))
            for i, item in enumerate(value):
                put(f"{key}{_SEPARATOR}{i}", item)
        elif np.ndim(value) == 0:
            # Flower stores 0-d arrays with shape (1,); mark numbers as such
            arrays[key + _SEPARATOR + "number"] = Array(np.asarray([value]))
        else:
            arrays[key] = Array(np.ascontiguousarray(np.asarray(value)))

    for key, value in payload.items():
        put(key, value)
    return RecordDict({"payload": ArrayRecord(arrays)})


def decode(content):
    """The payload that :func:`encode` wrote into a RecordDict."""
    arrays = {key: array.numpy() for key, array in content["payload"].items()}

    def get(key):
        if key + _SEPARATOR + "len" in arrays:
            length = int(arrays[key + _SEPARATOR + "len"])
            return [get(f"{key}{_SEPARATOR}{i}") for i in range(length)]
        if key + _SEPARATOR + "number" in arrays:
            return arrays[key + _SEPARATOR + "number"][0].item()
        return arrays[key]

    tops = {key.split(_SEPARATOR)[0] for key in arrays}
    return {key: get(key) for key in tops}


def make_client_app(client_data, template, n_classes):
    """A Flower ``ClientApp`` that serves the partitions in ``client_data``.

    Each SuperNode answers for the partition named by its ``partition-id`` node
    configuration (set by the simulation engine; set it with ``--node-config`` on a
    real SuperNode).
    """
    _import_flwr()
    from flwr.app import Message
    from flwr.clientapp import ClientApp

    app = ClientApp()

    def partition(context, content):
        index = int(context.node_config["partition-id"])
        X, y, embedding = client_data[index][:3]
        instruction = decode(content)
        if "embedding_mean" in instruction:
            embedding = (embedding - instruction["embedding_mean"]) / instruction[
                "embedding_scale"
            ]
        return index, X, y, embedding, instruction

    @app.query("summary")
    def summary(message, context):
        index, _, y, embedding, instruction = partition(context, message.content)
        predictions = client_data[index][3] if len(client_data[index]) > 3 else None
        summary = client_summary(embedding, y, n_classes, instruction, predictions)
        reply = {**summary, "client": index}
        return Message(encode(reply), reply_to=message)

    @app.query("gate_scores")
    def gate_scores(message, context):
        index, _, _, embedding, instruction = partition(context, message.content)
        reply = {**client_gate_scores(embedding, instruction), "client": index}
        return Message(encode(reply), reply_to=message)

    @app.query("guard")
    def guard(message, context):
        index, X, y, embedding, instruction = partition(context, message.content)
        common_correct = np.asarray(client_data[index][3]) == y
        reply = client_guard_counts(
            X, y, embedding, common_correct, instruction, template
        )
        reply["client"] = index
        return Message(encode(reply), reply_to=message)

    @app.train()
    def train(message, context):
        index, X, y, embedding, instruction = partition(context, message.content)
        reply = {**client_update(X, y, embedding, instruction, template)}
        reply["client"] = index
        return Message(encode(reply), reply_to=message)

    return app


class FlowerTransport:
    """Send the server's instructions through a Flower ``Grid``."""

    def __init__(self, grid):
        self.grid = grid
        self.node_of = {}

    def _exchange(self, message_type, instructions):
        from flwr.app import Message

        messages = [
            Message(
                encode(inst), dst_node_id=self.node_of[c], message_type=message_type
            )
            for c, inst in instructions.items()
        ]
        replies = {}
        for reply in self.grid.send_and_receive(messages):
            if reply.has_error():  # a node that failed counts as dropped out
                continue
            payload = decode(reply.content)
            replies[int(payload.pop("client"))] = payload
        return replies

    def summaries(self, instructions):
        from flwr.app import Message

        # the node -> partition mapping is learnt from the first replies
        nodes = list(self.grid.get_node_ids())
        waited = perf_counter()
        # SuperNodes register while the ServerApp starts; wait for one per client
        while len(nodes) < len(instructions) and perf_counter() - waited < 300:
            sleep(0.5)
            nodes = list(self.grid.get_node_ids())
        messages = [
            Message(
                # every client gets the same question (the node of each is unknown)
                encode(next(iter(instructions.values()), {})),
                dst_node_id=node,
                message_type="query.summary",
            )
            for node in nodes
        ]
        replies = {}
        errors = []
        for reply in self.grid.send_and_receive(messages):
            if reply.has_error():
                errors.append(reply.error.reason)
                continue
            payload = decode(reply.content)
            client = int(payload.pop("client"))
            self.node_of[client] = reply.metadata.src_node_id
            replies[client] = payload
        missing = sorted(set(instructions) - set(replies))
        if missing:
            raise RuntimeError(
                f"No Flower node answered for clients {missing}; errors: {errors[:3]}"
            )
        return replies

    def gate_scores(self, instructions):
        return self._exchange("query.gate_scores", instructions)

    def update(self, instructions):
        return self._exchange("train", instructions)

    def guard(self, instructions):
        return self._exchange("query.guard", instructions)


def make_server_app(config, rng, result):
    """A Flower ``ServerApp`` whose main loop is :func:`run_ddome`.

    The result of the run is stored in the dictionary ``result`` under ``"run"``.
    """
    _import_flwr()
    from flwr.serverapp import ServerApp

    from skmoe.federated._server import run_ddome

    app = ServerApp()

    @app.main()
    def main(grid, context):
        result["run"] = run_ddome(FlowerTransport(grid), config, rng)

    return app


def run_flower_simulation(estimator, X, y, client_ids, *, backend_config=None):
    """Fit a DDOMEClassifier with Flower's simulation engine.

    The clients become Flower SuperNodes (one per client) running a ``ClientApp``;
    the server runs the same main loop as the in-process simulation in a
    ``ServerApp``. With the same ``random_state`` the fitted model equals that of
    ``estimator.fit(X, y, client_ids)`` up to floating-point rounding.

    Parameters
    ----------
    estimator : DDOMEClassifier
        Fitted in place.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    client_ids : array-like of shape (n_samples,)
    backend_config : dict, default=None
        Passed to ``flwr.simulation.run_simulation``; by default each
        ClientApp gets one CPU.

    Returns
    -------
    estimator : DDOMEClassifier
        The fitted estimator.

    Notes
    -----
    This runs ``flwr.simulation.run_simulation``, which Flower deprecated in 1.41
    in favour of ``flwr run``. Flower 1.42 offers no other way to run a
    ``ServerApp`` and a ``ClientApp`` built in this process: ``flwr run`` launches
    an app project's components in separate processes, which cannot hold closures
    over in-memory data. That route (partitions written to files) is the deployed
    app, :func:`skmoe.federated.flower_app_path`, which also runs on the
    simulation engine.

    Examples
    --------
    >>> from skmoe.federated import DDOMEClassifier, run_flower_simulation
    >>> model = DDOMEClassifier(n_rounds=3, random_state=0)
    >>> run_flower_simulation(model, X, y, client_ids)  # doctest: +SKIP
    DDOMEClassifier(n_rounds=3, random_state=0)
    """
    _import_flwr()
    from flwr.simulation import run_simulation

    estimator._validate_params()
    config, client_data, rng = estimator._prepare(X, y, client_ids)
    result = {}
    run_simulation(
        server_app=make_server_app(config, rng, result),
        client_app=make_client_app(
            client_data, config["template"], config["n_classes"]
        ),
        num_supernodes=config["n_clients"],
        backend_config=backend_config
        or {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    if "run" not in result:
        raise RuntimeError("The Flower simulation ended without a result.")
    return estimator._finish(result["run"], config)
