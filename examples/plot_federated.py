"""
==========================================
Decentralized mixture of experts (DDOME)
==========================================

Train a mixture of experts over clients that keep their data and each hold only a few
labels, with :class:`skmoe.federated.DDOMEClassifier` simulated in-process, and
compare it with FedAvg and with one model per client. Then serve clients that never
took part in training, zero-shot, from their unlabelled data, and look at which
experts the gate sends each client to.
"""

# %%
# Label-skewed clients
# --------------------
# The digits are split over 24 clients; each holds two labels, and each label is held
# by several clients. Four clients are kept out of training altogether: they stand
# for new data owners who arrive later. Every training client keeps 30% of its
# samples for testing.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skmoe.federated import DDOMEClassifier, FedAvgClassifier, LocalClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
rng = np.random.RandomState(0)
n_clients = 24
label_sets = np.concatenate([rng.permutation(10) for _ in range(5)])[: 2 * n_clients]
label_sets = label_sets.reshape(n_clients, 2)
client_ids = np.empty(y.shape[0], dtype=int)
for label in range(10):
    owners = np.flatnonzero((label_sets == label).any(axis=1))
    rows = rng.permutation(np.flatnonzero(y == label))
    client_ids[rows] = owners[np.arange(rows.shape[0]) % owners.shape[0]]

unseen = np.isin(client_ids, [0, 1, 2, 3])
test = ~unseen & (rng.random_sample(y.shape[0]) < 0.3)
train = ~unseen & ~test
print("labels of the first training clients:", label_sets[4:8].tolist())

# %%
# Three ways to learn from them
# -----------------------------
# DDOME with five experts, each non-anchor client training its top two, and anchors
# that cover the labels (``anchors="label_groups"``: the labels split into five
# groups, each bound to the client most concentrated in it); FedAvg of one model; one
# logistic regression per client. The federated models run 20 rounds of 8 clients
# with the same SGD expert.
common = {"n_rounds": 20, "clients_per_round": 8, "random_state": 0}
models = {
    "DDOME": DDOMEClassifier(n_experts=5, anchors="label_groups", **common),
    "FedAvg": FedAvgClassifier(**common),
    "local only": LocalClassifier(),
}
for name, model in models.items():
    model.fit(X[train], y[train], client_ids[train])
    seen = model.score(X[test], y[test], client_ids[test])
    new = model.score(X[unseen], y[unseen], client_ids[unseen])
    print(f"{name:>10}: seen clients {seen:.3f}, unseen clients {new:.3f}")

# %%
# Local-only models are hard to beat on the clients they were trained for — each
# solves a two-class problem — but they know nothing about a new client's labels
# and have to average. FedAvg serves everyone with one model. DDOME routes a new
# client, from its unlabelled data, to the experts whose clients looked like it.
#
# Training, round by round
# ------------------------
# ``history_`` records, per round, the loss and accuracy of the model each answering
# client received (before it trained), the frozen common expert's accuracy on the
# same clients (the bar DDOME has to clear), and how often each expert was trained.
ddome = models["DDOME"]
fig, (ax_accuracy, ax_usage) = plt.subplots(1, 2, figsize=(10, 3.5))
ax_accuracy.plot([h["accuracy"] for h in ddome.history_], marker="o", label="DDOME")
ax_accuracy.plot(
    [h["common_expert_accuracy"] for h in ddome.history_],
    linestyle="--",
    label="common expert",
)
ax_accuracy.set(xlabel="round", ylabel="accuracy on the round's clients")
ax_accuracy.legend()
usage = np.array([h["expert_usage"] for h in ddome.history_])
ax_usage.imshow(usage.T, aspect="auto", cmap="Blues")
ax_usage.set(xlabel="round", ylabel="expert", title="clients training each expert")
fig.tight_layout()

# %%
# Where the unseen clients are routed
# -----------------------------------
# Each unseen client averages the gate's scores over its data and keeps its two best
# experts; each sample then goes to whichever of the two the gate prefers for it,
# unless the guard (``trusted_experts_``: the experts that beat the common expert on
# the training clients' held-out rows) hands it to the common expert, which
# ``predict_expert`` reports as -1. The table shows, per unseen client, its labels,
# the share of its samples each expert predicts and the common expert's share.
print("trusted experts:", np.flatnonzero(ddome.trusted_experts_).tolist())
for client in [0, 1, 2, 3]:
    rows = client_ids == client
    routed = ddome.predict_expert(X[rows], np.full(rows.sum(), f"new-{client}"))
    shares = np.bincount(routed[routed >= 0], minlength=ddome.n_experts) / rows.sum()
    print(
        f"client {client}, labels {sorted(label_sets[client].tolist())}: "
        f"expert shares {np.round(shares, 2).tolist()}, "
        f"common expert {np.mean(routed < 0):.2f}"
    )

# %%
# The anchors — clients bound to one expert each, the client most concentrated in
# that expert's label group — are what spread the clients over the experts:
print("label groups:", [g.tolist() for g in ddome.label_groups_])
print({client: expert for client, expert in sorted(ddome.anchors_.items())})
print({e: sorted(label_sets[c].tolist()) for c, e in ddome.anchors_.items()})
