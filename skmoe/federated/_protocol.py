"""The federated protocol as pure functions: what clients compute, what servers merge.

Everything that crosses the network is a plain dictionary of numbers and NumPy arrays
(an *instruction* from the server, a *reply* from a client), so the same functions run
in-process (:mod:`skmoe.federated._server`) and inside Flower's ``ClientApp`` and
``ServerApp`` (:mod:`skmoe.federated._flower`), and give the same model with the same
seed. A client function reads only its own data and the instruction; a server function
reads only replies and the server's state.

Experts are scikit-learn estimators trained with ``partial_fit``; their parameters are
the arrays ``coef_`` and ``intercept_`` (linear models such as ``SGDClassifier``) or the
lists ``coefs_`` and ``intercepts_`` (``MLPClassifier``), flattened to a list of arrays.
"""

import copy
import warnings

import numpy as np
from scipy.special import log_softmax, logsumexp, softmax
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

# log of the smallest normal float: a zero expert probability becomes this, not -inf
_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))


# ------------------------------------------------------------------ validation rows
def validation_mask(n_samples, instruction):
    """The rows a client keeps out of training to check its experts (the guard).

    ``floor(validation_fraction * n_samples)`` rows drawn with the federation's
    ``validation_seed`` (the same draw in every round, on every transport), so that
    a client with fewer than ``1 / validation_fraction`` samples keeps none and
    trains on all. Without ``validation_fraction`` in the instruction no row is kept.
    """
    mask = np.zeros(n_samples, dtype=bool)
    fraction = float(instruction.get("validation_fraction", 0.0))
    n_validation = int(np.floor(fraction * n_samples))
    if n_validation > 0:
        rng = np.random.RandomState(int(instruction["validation_seed"]))
        mask[rng.permutation(n_samples)[:n_validation]] = True
    return mask


# --------------------------------------------------------------------------- experts
def expert_parameters(estimator):
    """The trainable arrays of a fitted expert, as a list (copies)."""
    if hasattr(estimator, "coefs_"):
        return [a.copy() for a in estimator.coefs_] + [
            a.copy() for a in estimator.intercepts_
        ]
    return [estimator.coef_.copy(), np.atleast_1d(estimator.intercept_).copy()]


def set_expert_parameters(estimator, parameters):
    """Write a list made by :func:`expert_parameters` back into ``estimator``."""
    parameters = [np.array(p, dtype=np.float64) for p in parameters]
    if hasattr(estimator, "coefs_"):
        n_layers = len(estimator.coefs_)
        estimator.coefs_ = parameters[:n_layers]
        estimator.intercepts_ = parameters[n_layers:]
        # the optimiser's state (SGD's velocities, Adam's moments) belongs to the
        # arrays just replaced, e.g. to materialise_expert's all-zero sample: the
        # next partial_fit starts a fresh one
        if hasattr(estimator, "_optimizer"):
            del estimator._optimizer
    else:
        estimator.coef_, estimator.intercept_ = parameters
    return estimator


def materialise_expert(template, n_features, n_classes, seed):
    """A clone of ``template`` whose parameter arrays exist, with the given seed.

    ``partial_fit`` allocates the arrays on its first call; it is called once on a
    single all-zero sample so that the shapes do not depend on anybody's data. The
    caller then overwrites the arrays with the server's.
    """
    estimator = clone(template)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=int(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.partial_fit(
            np.zeros((1, n_features)),
            np.zeros(1, dtype=np.intp),
            classes=np.arange(n_classes),
        )
    return estimator


def initial_expert_parameters(template, n_features, n_classes, seed):
    """The server's starting point for one expert (zeros for a linear model)."""
    estimator = materialise_expert(template, n_features, n_classes, seed)
    parameters = expert_parameters(estimator)
    if not hasattr(estimator, "coefs_"):
        parameters = [np.zeros_like(p) for p in parameters]
    return parameters


def _epoch_step_size(estimator, n_samples):
    """Learning rate times optimiser steps in one epoch (for the proximal step)."""
    if hasattr(estimator, "coefs_"):
        batch = estimator.batch_size
        batch = min(200, n_samples) if batch == "auto" else min(batch, n_samples)
        return estimator.learning_rate_init * np.ceil(n_samples / batch)
    return getattr(estimator, "eta0", 0.01) * n_samples


# a pass of partial_fit that diverges is taken again from where it started with
# half the step size, at most this many times, before the client gives up
MAX_STEP_HALVINGS = 4
# a row whose routing posterior for an expert is below this does not train it
MIN_EXPERT_WEIGHT = 0.01
# ... and a pass (or a client's reply) that multiplies an expert's parameter norm by
# more than this (from max(norm, 1)) has blown up even if every value is finite: an
# MLP's SGD pass reached 1e305 on MNIST-1D, and the server averaged it in
MAX_NORM_GROWTH = 1e3


def parameter_norm(parameters):
    """The L2 norm of all of an expert's parameter arrays together (inf if huge)."""
    with np.errstate(over="ignore"):
        return float(np.sqrt(sum(np.sum(np.square(a)) for a in parameters)))


def blown_up(parameters, start):
    """Whether ``parameters`` are non-finite or grew too far from ``start``."""
    if not all(np.all(np.isfinite(a)) for a in parameters):
        return True
    limit = MAX_NORM_GROWTH * max(parameter_norm(start), 1.0)
    return parameter_norm(parameters) > limit


def _step_parameter(estimator):
    """The name of the estimator's step-size parameter, or None."""
    params = estimator.get_params()
    for name in ("learning_rate_init", "eta0"):
        if name in params:
            return name
    return None


def _partial_fit_pass(estimator, X, y, fit_params):
    """One pass of ``partial_fit``, retried at half the step size if it diverges.

    An SGD pass of an MLP can blow up (scikit-learn raises on non-finite weights;
    finite weights can still grow by orders of magnitude, :func:`blown_up`) where
    the received parameters are fine, e.g. on a client that holds one class; the
    pass restarts from the same parameters with a halved step
    (``MAX_STEP_HALVINGS`` times at most), which stays halved for the rest of this
    client's round. Returns the number of halvings.
    """
    step = _step_parameter(estimator)
    before = expert_parameters(estimator)
    for halvings in range(MAX_STEP_HALVINGS + 1):
        try:
            # a pass that overflows is checked and taken again, not reported
            with np.errstate(over="ignore", invalid="ignore"):
                estimator.partial_fit(X, y, **fit_params)
            diverged = blown_up(expert_parameters(estimator), before)
        except ValueError as exc:
            if "non-finite" not in str(exc):
                raise
            diverged = True
        if not diverged:
            return halvings
        if step is None or halvings == MAX_STEP_HALVINGS:
            break
        set_expert_parameters(estimator, before)
        estimator.set_params(**{step: estimator.get_params()[step] / 2})
    raise ValueError(
        "Solver produced non-finite or exploding parameter weights, also after "
        f"{MAX_STEP_HALVINGS if step else 0} halvings of the step size"
        + (f" ({step}={estimator.get_params()[step]:g})." if step else ".")
    )


def train_expert(
    estimator, X, y, *, sample_weight=None, local_epochs=1, proximal_mu=0.0
):
    """Run ``local_epochs`` passes of ``partial_fit``; FedProx's pull if asked.

    With ``proximal_mu > 0`` each pass is followed by the proximal step of
    ``mu / 2 ||w - w_start||^2`` (FedProx's term), taken with the pass's total step
    size: a splitting approximation that needs nothing from the estimator's loss.
    A pass that diverges is retried at half the step size
    (:func:`_partial_fit_pass`). Returns the number of halvings.
    """
    start = expert_parameters(estimator) if proximal_mu > 0 else None
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    halvings = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(local_epochs):
            halvings += _partial_fit_pass(estimator, X, y, fit_params)
            if start is not None:
                tau = _epoch_step_size(estimator, X.shape[0]) * proximal_mu
                current = expert_parameters(estimator)
                pulled = [
                    (w + tau * w0) / (1 + tau)
                    for w, w0 in zip(current, start, strict=True)
                ]
                set_expert_parameters(estimator, pulled)
    return halvings


def expert_log_likelihood(estimator, X, y):
    """``log p(y_i | x_i)`` under one expert, floored at the smallest normal float."""
    proba = estimator.predict_proba(X)[np.arange(X.shape[0]), y]
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(proba), _LOG_TINY)


# ------------------------------------------------------------------------ the gate
def gate_log_proba(embedding, gate):
    """Log routing weights of a softmax gate given as ``(coef, intercept)``."""
    coef, intercept = gate
    return log_softmax(embedding @ coef.T + intercept, axis=1)


def train_gate(
    embedding, targets, gate, *, learning_rate, batch_size, epochs, rng, active=None
):
    """Minibatch gradient descent on the soft-target cross-entropy of the gate.

    The gradient of ``-sum_k T_ik log softmax(z_i)_k`` with respect to ``z_i`` is
    ``sum_k T_ik softmax(z_i) - T_i``, averaged over the minibatch. With ``active``
    (a boolean mask of experts) the softmax runs over the active experts only, as in
    a top-k mixture that renormalises its selected weights: the other experts'
    scores get no gradient.
    """
    coef, intercept = (np.array(a, dtype=np.float64) for a in gate)
    n_samples = embedding.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            batch = order[start : start + batch_size]
            scores = embedding[batch] @ coef.T + intercept
            if active is not None:
                scores[:, ~active] = -np.inf
            residual = (
                softmax(scores, axis=1) * targets[batch].sum(axis=1, keepdims=True)
                - targets[batch]
            )
            coef -= learning_rate * residual.T @ embedding[batch] / batch.shape[0]
            intercept -= learning_rate * residual.mean(axis=0)
    return coef, intercept


# ---------------------------------------------------------------- client functions
def client_summary(embedding, y, n_classes, instruction=None, common_predictions=None):
    """What a client tells the server once: its size, label counts, embedding moments.

    The moments standardise the embedding for the gate; the label counts let the
    server choose anchor clients. With ``instruction["share_label_counts"]`` false
    the counts stay at home: the client sends, if the server gave it
    ``label_groups``, only how many of its samples fall in each group (what binding
    a group to its most concentrated client needs), else nothing about its labels.
    ``common_predictions`` (the common expert's encoded predictions of the client's
    samples) adds how many it gets right, for the common expert's accuracy.
    """
    instruction = {} if instruction is None else instruction
    summary = {
        "n_samples": int(embedding.shape[0]),
        "embedding_sum": embedding.sum(axis=0),
        "embedding_sum_squares": (embedding**2).sum(axis=0),
    }
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if instruction.get("share_label_counts", True):
        summary["label_counts"] = counts
    elif instruction.get("label_groups") is not None:
        summary["group_counts"] = np.array(
            [
                counts[np.asarray(g, dtype=np.intp)].sum()
                for g in instruction["label_groups"]
            ]
        )
    if common_predictions is not None:
        summary["n_common_correct"] = int(np.sum(np.asarray(common_predictions) == y))
    return summary


def client_gate_scores(embedding, instruction):
    """The mean routing weights of a client's data under the server's gate.

    With ``instruction["rows"] == "validation"`` over the client's validation rows
    only (:func:`validation_mask`): the guard routes them zero-shot, as an unseen
    client's data.
    """
    gate = (instruction["gate_coef"], instruction["gate_intercept"])
    if instruction.get("rows") == "validation":
        embedding = embedding[validation_mask(embedding.shape[0], instruction)]
    return {
        "n_samples": int(embedding.shape[0]),
        "gate_scores": np.exp(gate_log_proba(embedding, gate)).mean(axis=0),
    }


def client_update(X, y, embedding, instruction, template):
    """One DDOME round on one client; returns the reply.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The client's features (what the experts see).
    y : ndarray of shape (n_samples,)
        Its labels, encoded as ``0 .. n_classes - 1``.
    embedding : ndarray of shape (n_samples, n_embedding)
        The common expert's standardised embedding (what the gate sees).
    instruction : dict
        ``gate_coef``, ``gate_intercept``, ``experts`` (indices sent),
        ``expert_parameters`` (a list of parameter lists, same order), ``anchor``
        (the expert the client is bound to, or -1), ``seed``, ``n_classes``,
        ``local_epochs``, ``gate_learning_rate``, ``gate_batch_size``.
    template : estimator
        The unfitted expert (static configuration of every client).

    Returns
    -------
    reply : dict
        ``n_samples``, the trained ``gate_coef`` and ``gate_intercept``, ``experts``
        and their trained ``expert_parameters``, ``classes`` (what the experts were
        trained on), and the received model's ``loss`` and ``accuracy`` on this
        client (measured before training).
    """
    # rows kept for the guard's check never train anything
    training = ~validation_mask(X.shape[0], instruction)
    X, y, embedding = X[training], y[training], embedding[training]
    rng = np.random.RandomState(int(instruction["seed"]))
    n_classes = int(instruction["n_classes"])
    selected = [int(m) for m in instruction["experts"]]
    # materialising costs a partial_fit; copies of one materialised expert do not
    blank = materialise_expert(template, X.shape[1], n_classes, 0)
    experts = []
    for parameters in instruction["expert_parameters"]:
        estimator = copy.deepcopy(blank)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
        experts.append(set_expert_parameters(estimator, parameters))
    gate = (instruction["gate_coef"], instruction["gate_intercept"])
    anchor = int(instruction["anchor"])
    loss = accuracy = np.nan
    halvings = 0
    for epoch in range(int(instruction["local_epochs"])):
        log_gate = gate_log_proba(embedding, gate)[:, selected]
        log_likelihood = np.column_stack(
            [expert_log_likelihood(e, X, y) for e in experts]
        )
        if epoch == 0:
            joint = log_gate + log_likelihood
            loss = float(-np.mean(logsumexp(joint, axis=1) - logsumexp(log_gate, 1)))
            routed = np.argmax(log_gate, axis=1)
            predicted = _routed_predictions(experts, X, routed)
            accuracy = float(np.mean(predicted == y))
        targets = np.zeros((X.shape[0], len(gate[1])))
        active = None
        if anchor >= 0:
            # an anchor client pulls the gate toward its own expert, which it alone
            # trains here: this is what keeps the experts apart
            targets[:, anchor] = 1.0
            weights = np.ones((X.shape[0], len(selected)))
        else:
            weights = softmax(log_gate + log_likelihood, axis=1)
            targets[:, selected] = weights
            # the client's mixture renormalises over its selected experts, so it
            # ranks them among themselves and leaves the other experts' scores to
            # the clients that use them (and to the anchors)
            active = np.zeros(len(gate[1]), dtype=bool)
            active[selected] = True
        gate = train_gate(
            embedding,
            targets,
            gate,
            learning_rate=float(instruction["gate_learning_rate"]),
            batch_size=int(instruction["gate_batch_size"]),
            epochs=1,
            rng=rng,
            active=active,
        )
        for j, estimator in enumerate(experts):
            # rows with a negligible posterior do not train the expert: they add
            # nothing to its weighted loss, and a minibatch made only of them has a
            # weight sum near zero, by which scikit-learn's MLP divides its L2
            # penalty (alpha / 1e-6 made the weights grow fourfold a step)
            keep = weights[:, j] >= MIN_EXPERT_WEIGHT
            # an expert none of whose samples this client routes to learns nothing
            if keep.any():
                halvings += train_expert(
                    estimator,
                    X[keep],
                    y[keep],
                    sample_weight=weights[keep, j],
                    local_epochs=1,
                )
    return {
        "n_samples": int(X.shape[0]),
        "gate_coef": gate[0],
        "gate_intercept": gate[1],
        "experts": np.array(selected, dtype=np.int64),
        "expert_parameters": [expert_parameters(e) for e in experts],
        "classes": np.asarray(experts[0].classes_) if experts else np.arange(0),
        "loss": loss,
        "accuracy": accuracy,
        "n_step_halvings": halvings,
    }


def _routed_predictions(experts, X, routed):
    """Class index predicted for each sample by the expert it is routed to."""
    predicted = np.empty(X.shape[0], dtype=np.intp)
    for j, estimator in enumerate(experts):
        rows = routed == j
        if rows.any():
            predicted[rows] = np.argmax(estimator.predict_proba(X[rows]), axis=1)
    return predicted


def client_guard_counts(X, y, embedding, common_correct, instruction, template):
    """How the final experts fare against the common expert on the validation rows.

    The validation rows are all the client's rows with ``instruction["rows"] ==
    "all"`` (a client held out of training), else its :func:`validation_mask`.

    The client routes its validation rows zero-shot, as an unseen client does: each
    row goes to the expert, among the ``experts`` the server sent (the top-k of the
    rows' mean gate scores), that the gate scores highest. For each sent expert it
    counts the rows routed to it, those that the expert gets right and the common
    expert wrong, and the reverse: the discordant pairs of a paired (sign) test. No
    row, label or prediction leaves the client, only these counts.

    Parameters
    ----------
    X, y, embedding : ndarray
        As in :func:`client_update` (all the client's rows).
    common_correct : ndarray of shape (n_samples,) of bool
        Whether the common expert predicts each row right (computed at home).
    instruction : dict
        ``gate_coef``, ``gate_intercept``, ``experts``, ``expert_parameters``,
        ``n_classes``, ``validation_fraction``, ``validation_seed``.
    template : estimator

    Returns
    -------
    reply : dict
        ``n_samples`` (validation rows), ``experts``, and per expert ``n_routed``,
        ``n_expert_only`` and ``n_common_only``.
    """
    if instruction.get("rows") == "all":  # a validation client: it never trained
        rows = np.ones(X.shape[0], dtype=bool)
    else:
        rows = validation_mask(X.shape[0], instruction)
    X, y, embedding = X[rows], y[rows], embedding[rows]
    common_correct = np.asarray(common_correct, dtype=bool)[rows]
    selected = [int(m) for m in instruction["experts"]]
    blank = materialise_expert(template, X.shape[1], int(instruction["n_classes"]), 0)
    experts = [
        set_expert_parameters(copy.deepcopy(blank), parameters)
        for parameters in instruction["expert_parameters"]
    ]
    gate = (instruction["gate_coef"], instruction["gate_intercept"])
    routed = np.argmax(gate_log_proba(embedding, gate)[:, selected], axis=1)
    expert_correct = _routed_predictions(experts, X, routed) == y
    counts = np.zeros((3, len(selected)), dtype=np.int64)
    for j in range(len(selected)):
        here = routed == j
        counts[0, j] = here.sum()
        counts[1, j] = np.sum(here & expert_correct & ~common_correct)
        counts[2, j] = np.sum(here & ~expert_correct & common_correct)
    return {
        "n_samples": int(X.shape[0]),
        "experts": np.array(selected, dtype=np.int64),
        "n_routed": counts[0],
        "n_expert_only": counts[1],
        "n_common_only": counts[2],
    }


def client_error(exc):
    """The reply of a client whose local training raised ``exc``."""
    return {"error": f"{type(exc).__name__}: {exc}"}


def client_fit_model(X, y, instruction, template):
    """One FedAvg or FedProx round on one client: train the single shared model."""
    estimator = materialise_expert(
        template, X.shape[1], int(instruction["n_classes"]), instruction["seed"]
    )
    set_expert_parameters(estimator, instruction["parameters"])
    train_expert(
        estimator,
        X,
        y,
        local_epochs=int(instruction["local_epochs"]),
        proximal_mu=float(instruction["proximal_mu"]),
    )
    return {
        "n_samples": int(X.shape[0]),
        "parameters": expert_parameters(estimator),
        "classes": np.asarray(estimator.classes_),
    }


# ---------------------------------------------------------------- server functions
def aggregate_summaries(summaries):
    """Pooled mean and scale of the embedding from the clients' moments."""
    n_total = sum(s["n_samples"] for s in summaries)
    total = sum(s["embedding_sum"] for s in summaries)
    total_squares = sum(s["embedding_sum_squares"] for s in summaries)
    mean = total / n_total
    variance = np.maximum(total_squares / n_total - mean**2, 0.0)
    scale = np.sqrt(variance)
    scale[scale < 1e-12] = 1.0
    return mean, scale


def weighted_average(arrays_per_reply, weights):
    """Average lists of arrays with the given weights (FedAvg)."""
    weights = np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    return [
        sum(w * arrays[i] for w, arrays in zip(weights, arrays_per_reply, strict=True))
        for i in range(len(arrays_per_reply[0]))
    ]


def _shapes_match(arrays, reference):
    return len(arrays) == len(reference) and all(
        np.shape(a) == np.shape(r) for a, r in zip(arrays, reference, strict=True)
    )


def _all_finite(arrays):
    return all(np.all(np.isfinite(a)) for a in arrays)


def check_reply(reply, state, sent_experts):
    """Why a DDOME reply cannot be averaged in, or None if it can.

    A reply is rejected when it is not finite, when an expert's parameter norm grew
    more than ``MAX_NORM_GROWTH``-fold (:func:`blown_up`), when an array has the
    wrong shape,
    when it returns experts it was not sent, or when its experts were trained on
    other classes than the federation's.
    """
    if "error" in reply:
        return f"failed on the client ({reply['error']})"
    try:
        gate = [reply["gate_coef"], reply["gate_intercept"]]
        experts = [int(m) for m in reply["experts"]]
        parameters = reply["expert_parameters"]
        n_samples = reply["n_samples"]
        classes = np.asarray(reply["classes"])
    except (KeyError, TypeError, ValueError):
        return "malformed"
    if not (np.isfinite(n_samples) and n_samples > 0):
        return "malformed"
    if sorted(experts) != sorted(sent_experts) or len(parameters) != len(experts):
        return "wrong experts"
    if not _shapes_match(gate, state["gate"]) or not all(
        _shapes_match(p, state["experts"][m])
        for m, p in zip(experts, parameters, strict=True)
    ):
        return "wrong shape"
    if not (_all_finite(gate) and all(_all_finite(p) for p in parameters)):
        return "not finite"
    if any(
        blown_up(p, state["experts"][m])
        for m, p in zip(experts, parameters, strict=True)
    ):
        return "exploded"
    if not np.array_equal(classes, np.arange(state["n_classes"])):
        return "wrong classes"
    return None


def aggregate(replies, state):
    """New server state from the accepted DDOME replies.

    The gate is averaged over all replies, each expert over the replies that trained
    it, both weighted by the clients' sample counts. An expert that no reply trained
    keeps its parameters.
    """
    if not replies:
        return state
    counts = [r["n_samples"] for r in replies]
    gate = weighted_average(
        [[r["gate_coef"], r["gate_intercept"]] for r in replies], counts
    )
    experts = list(state["experts"])
    for m in range(len(experts)):
        trained = [
            (params, r["n_samples"])
            for r in replies
            for k, params in zip(r["experts"], r["expert_parameters"], strict=True)
            if int(k) == m
        ]
        if trained:
            experts[m] = weighted_average(
                [p for p, _ in trained], [n for _, n in trained]
            )
    return {**state, "gate": gate, "experts": experts}


def check_model_reply(reply, state):
    """Why a FedAvg reply cannot be averaged in, or None if it can."""
    if "error" in reply:
        return f"failed on the client ({reply['error']})"
    try:
        parameters = reply["parameters"]
        classes = np.asarray(reply["classes"])
        n_samples = reply["n_samples"]
    except (KeyError, TypeError, ValueError):
        return "malformed"
    if not (np.isfinite(n_samples) and n_samples > 0):
        return "malformed"
    if not _shapes_match(parameters, state["parameters"]):
        return "wrong shape"
    if not _all_finite(parameters):
        return "not finite"
    if not np.array_equal(classes, np.arange(state["n_classes"])):
        return "wrong classes"
    return None
