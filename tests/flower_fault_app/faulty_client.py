"""A ClientApp that misbehaves on purpose, for the deployment's fault tests.

It answers as skmoe's ClientApp does, except that in ``train`` the client named by
the run config ``fault-nan`` sends a NaN gate, and the one named by ``fault-shape``
a gate with a column missing; in the guard's exchange the ``fault-nan`` client sends
NaN counts. The test ships this file in the app bundle next to
skmoe's ``pyproject.toml`` (with this ClientApp as the component).
"""

import numpy as np
from flwr.app import Message
from flwr.clientapp import ClientApp

from skmoe.federated import _flower_app as skmoe_app
from skmoe.federated._flower import decode, encode

client_app = ClientApp()
client_app.query("describe")(skmoe_app.describe)
client_app.query("gate_scores")(skmoe_app.gate_scores)


@client_app.train()
def train(message, context):
    reply = skmoe_app.train(message, context)
    name = str(context.node_config.get("client-id", ""))
    payload = decode(reply.content)
    if name == str(context.run_config["fault-nan"]):
        payload["gate_coef"] = np.full_like(payload["gate_coef"], np.nan)
    if name == str(context.run_config["fault-shape"]):
        payload["gate_coef"] = payload["gate_coef"][:, :-1]
    return Message(encode(payload), reply_to=message)


@client_app.query("guard")
def guard(message, context):
    reply = skmoe_app.guard(message, context)
    name = str(context.node_config.get("client-id", ""))
    payload = decode(reply.content)
    if name == str(context.run_config["fault-nan"]):
        payload["n_expert_only"] = np.full(payload["n_expert_only"].shape, np.nan)
    return Message(encode(payload), reply_to=message)
