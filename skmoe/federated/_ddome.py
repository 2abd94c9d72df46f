"""DDOMEClassifier: joint gating-expert training over decentralized clients."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from skmoe.federated._common import (
    ClientScoreMixin,
    check_client_ids,
    client_key,
    default_expert,
    validate_fit_data,
)
from skmoe.federated._protocol import (
    gate_log_proba,
    materialise_expert,
    set_expert_parameters,
)
from skmoe.federated._server import InProcessTransport, run_ddome, top_experts
from skmoe.gating import SoftmaxGate

_EMBEDDING_METHODS = ("transform", "decision_function", "predict_proba")


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def embed(estimator, X, method):
    """The common expert's embedding of ``X`` as a 2-D float array."""
    embedding = np.asarray(getattr(estimator, method)(X), dtype=np.float64)
    return embedding.reshape(embedding.shape[0], -1)


def embedding_method(common_expert, embedding):
    """The method of ``common_expert`` that embeds, as ``embedding`` asks."""
    if embedding != "auto":
        if not hasattr(common_expert, embedding):
            raise ValueError(
                f"The common expert has no {embedding!r} method "
                f"(embedding={embedding!r})."
            )
        return embedding
    for method in _EMBEDDING_METHODS:
        if hasattr(common_expert, method):
            return method
    raise ValueError(
        "The common expert has none of transform, decision_function and "
        "predict_proba; it cannot embed the data."
    )


class DDOMEClassifier(
    ClientScoreMixin, ClassifierMixin, MetaEstimatorMixin, BaseEstimator
):
    """Decentralized mixture of experts trained jointly with its gate (DDOME).

    The data stay with their *clients* (``client_ids`` says which sample belongs to
    whom); by default the federation is simulated in this process, and the same
    client and server functions run on Flower
    (:func:`skmoe.federated.run_flower_simulation`).

    A frozen *common expert* embeds each client's data once. A softmax gate on that
    embedding scores ``n_experts`` experts. Every round the server picks
    ``clients_per_round`` clients, a share ``anchor_fraction`` of them *anchors*
    (clients bound one-to-one to an expert), asks each for its mean gate scores, and
    sends it only its ``top_k`` experts (an anchor gets its own expert). A client
    runs ``local_epochs`` epochs: the gate descends the cross-entropy to the
    posterior over its selected experts (an anchor's target is its expert), and each
    selected expert takes a ``partial_fit`` pass weighted by that posterior. The
    server averages the gate over all accepted replies and each expert over the
    replies that trained it, weighted by sample counts. A reply that is not finite,
    has the wrong shape or was trained on other classes is rejected and counted.

    At prediction a client, seen or not, routes *zero-shot*: it averages the gate
    scores over its data, keeps the ``top_k`` experts, and predicts each sample with
    the selected expert the gate scores highest. Seen clients use the experts chosen
    on their training data.

    Parameters
    ----------
    common_expert : estimator, default=None
        Embeds the data for the gate through ``embedding``. A fitted estimator (or
        pipeline) is used as is and never refitted; an unfitted one is cloned and
        fitted on the server split. None means
        ``make_pipeline(StandardScaler(), LogisticRegression())`` fitted on the
        server split.
    expert : estimator, default=None
        Unfitted classifier with ``partial_fit`` and ``predict_proba`` whose
        parameters are ``coef_``/``intercept_`` (linear models) or
        ``coefs_``/``intercepts_`` (``MLPClassifier``), cloned per expert. None
        means ``SGDClassifier(loss="log_loss", learning_rate="constant",
        eta0=0.1, alpha=1e-4)``; its ``eta0`` is the experts' learning rate.
    n_experts : int, default=5
    top_k : int, default=2
        Experts each non-anchor client trains and predicts with.
    anchors : "auto" or dict, default="auto"
        Mapping from client identifier to expert index (distinct experts). "auto"
        picks ``n_experts`` clients with the most distinct label distributions
        (farthest-first on the label proportions each client reports once).
    anchor_fraction : float, default=0.3
        Share of each round's clients that are anchors. The paper sees routing
        collapse below about 0.3.
    n_rounds : int, default=30
    clients_per_round : int, default=10
    local_epochs : int, default=2
    gate_learning_rate : float, default=0.5
        Step of the gate's minibatch gradient descent on the standardised embedding.
    gate_batch_size : int, default=32
    embedding : {"auto", "transform", "decision_function", "predict_proba"}, \
default="auto"
        Method of the common expert that embeds; "auto" takes the first one it has.
    server_fraction : float, default=0.1
        Share of the samples, drawn at random, that stand for the public data on
        which the server fits an unfitted common expert (the samples stay with their
        clients too). Unused with a fitted common expert.
    dropout_rate : float, default=0.0
        Probability that a picked client does not answer in a round (simulated
        faults; on Flower real failures come on top).
    random_state : int, RandomState instance or None, default=None
        Seeds everything: the server split, the rounds, dropouts and each client's
        local shuffles.
    verbose : int, default=0
        Print one line per round when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    common_expert_ : estimator
        The frozen common expert.
    embedding_method_ : str
    gate_ : SoftmaxGate
        The averaged gate, applicable to the raw embedding (the standardisation is
        folded into its coefficients).
    experts_ : list of estimators
        The averaged experts; they predict encoded classes ``0 .. n_classes - 1``.
    anchors_ : dict
        Client identifier -> expert index.
    clients_ : ndarray
        The training clients' identifiers.
    client_experts_ : dict
        Client identifier -> its ``top_k`` experts under the final gate.
    history_ : list of dict
        One entry per round: ``clients`` (identifiers), ``n_dropped``,
        ``n_replies``, ``n_rejected`` and ``rejected`` (client -> reason),
        ``expert_usage``,
        the received model's ``loss`` and ``accuracy`` on the answering clients
        (weighted), and wall ``time``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has feature names that are all strings.

    See Also
    --------
    skmoe.federated.FedAvgClassifier : one model averaged over all clients.
    skmoe.federated.LocalClassifier : one model per client.

    References
    ----------
    .. [1] DDOME: joint gating-expert training in decentralized settings (earlier
       titled FedJETs). arXiv:2306.08586.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skmoe.federated import DDOMEClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> client_ids = y // 2  # five clients, each with two digits
    >>> model = DDOMEClassifier(n_experts=5, n_rounds=5, clients_per_round=5,
    ...                         random_state=0).fit(X, y, client_ids)
    >>> model.predict(X[:3], client_ids[:3])
    array([0, 1, 2])
    >>> sorted(model.anchors_.values())
    [0, 1, 2, 3, 4]
    """

    _parameter_constraints = {
        "common_expert": [None, HasMethods(["fit"])],
        "expert": [None, HasMethods(["partial_fit", "predict_proba"])],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "anchors": [StrOptions({"auto"}), dict],
        "anchor_fraction": [Interval(Real, 0, 1, closed="both")],
        "n_rounds": [Interval(Integral, 0, None, closed="left")],
        "clients_per_round": [Interval(Integral, 1, None, closed="left")],
        "local_epochs": [Interval(Integral, 1, None, closed="left")],
        "gate_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "gate_batch_size": [Interval(Integral, 1, None, closed="left")],
        "embedding": [StrOptions({"auto", *_EMBEDDING_METHODS})],
        "server_fraction": [Interval(Real, 0, 1, closed="right")],
        "dropout_rate": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        common_expert=None,
        *,
        expert=None,
        n_experts=5,
        top_k=2,
        anchors="auto",
        anchor_fraction=0.3,
        n_rounds=30,
        clients_per_round=10,
        local_epochs=2,
        gate_learning_rate=0.5,
        gate_batch_size=32,
        embedding="auto",
        server_fraction=0.1,
        dropout_rate=0.0,
        random_state=None,
        verbose=0,
    ):
        self.common_expert = common_expert
        self.expert = expert
        self.n_experts = n_experts
        self.top_k = top_k
        self.anchors = anchors
        self.anchor_fraction = anchor_fraction
        self.n_rounds = n_rounds
        self.clients_per_round = clients_per_round
        self.local_epochs = local_epochs
        self.gate_learning_rate = gate_learning_rate
        self.gate_batch_size = gate_batch_size
        self.embedding = embedding
        self.server_fraction = server_fraction
        self.dropout_rate = dropout_rate
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting
    def _prepare(self, X, y, client_ids):
        """Validate, fit the common expert, and cut the data per client.

        Returns the federation's configuration, the per-client data (with the
        embedding computed once) and the random state; shared by :meth:`fit` and
        the Flower runner.
        """
        X, y_encoded, client_ids = validate_fit_data(self, X, y, client_ids)
        rng = check_random_state(self.random_state)
        # the common expert sees the validated labels, not the encoded ones
        self.common_expert_ = self._fit_common_expert(X, self.classes_[y_encoded], rng)
        self.embedding_method_ = self._embedding_method()
        self.clients_, client_index = np.unique(client_ids, return_inverse=True)
        client_data = []
        for c in range(self.clients_.shape[0]):
            rows = np.flatnonzero(client_index == c)
            embedding = embed(self.common_expert_, X[rows], self.embedding_method_)
            client_data.append((X[rows], y_encoded[rows], embedding))
        config = self._federation_config(X.shape[1], client_data[0][2].shape[1])
        return config, client_data, rng

    def _federation_config(self, n_features, n_embedding):
        """The settings of :func:`run_ddome`, from the parameters and the data's sizes.

        Needs ``classes_`` and ``clients_``; shared by the in-process run and the
        deployed Flower app, whose server sees sizes but no data.
        """
        if self.top_k > self.n_experts:
            raise ValueError(
                f"Expected top_k <= n_experts, got top_k={self.top_k} and "
                f"n_experts={self.n_experts}."
            )
        return {
            "n_clients": self.clients_.shape[0],
            "n_features": n_features,
            "n_embedding": n_embedding,
            "n_classes": self.classes_.shape[0],
            "template": default_expert() if self.expert is None else clone(self.expert),
            "n_experts": self.n_experts,
            "top_k": self.top_k,
            "anchors": self._anchor_indices(),
            "anchor_fraction": self.anchor_fraction,
            "n_rounds": self.n_rounds,
            "clients_per_round": self.clients_per_round,
            "local_epochs": self.local_epochs,
            "gate_learning_rate": self.gate_learning_rate,
            "gate_batch_size": self.gate_batch_size,
            "dropout_rate": self.dropout_rate,
        }

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, client_ids):
        """Train the gate and the experts over the clients (simulated in-process).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        client_ids : array-like of shape (n_samples,)
            The client that holds each sample.

        Returns
        -------
        self : DDOMEClassifier
        """
        config, client_data, rng = self._prepare(X, y, client_ids)
        transport = InProcessTransport(
            client_data, config["template"], config["n_classes"]
        )
        return self._finish(run_ddome(transport, config, rng, log=self._log), config)

    def _log(self, entry):
        if self.verbose:
            print(
                f"round {entry['round'] + 1}/{self.n_rounds}: "
                f"{entry['n_replies']} replies, {entry['n_dropped']} dropped, "
                f"{entry['n_rejected']} rejected, loss {entry['loss']:.4f}, "
                f"accuracy {entry['accuracy']:.4f}, {entry['time']:.2f} s"
            )

    def _finish(self, result, config):
        """Set the fitted attributes from the result of a federation."""
        state = result["state"]
        self.experts_ = [
            set_expert_parameters(
                materialise_expert(
                    config["template"], config["n_features"], config["n_classes"], 0
                ),
                parameters,
            )
            for parameters in state["experts"]
        ]
        mean, scale = result["embedding_mean"], result["embedding_scale"]
        coef, intercept = state["gate"]
        gate = SoftmaxGate()
        gate.coef_ = coef / scale
        gate.intercept_ = intercept - coef @ (mean / scale)
        gate.classes_ = np.arange(self.n_experts)
        gate.n_features_in_ = coef.shape[1]
        gate.n_iter_ = len(result["history"])
        self.gate_ = gate
        self.anchors_ = {
            client_key(self.clients_[c]): int(m) for c, m in result["anchors"].items()
        }
        self.client_experts_ = {
            client_key(self.clients_[c]): experts
            for c, experts in result["client_experts"].items()
        }
        # the federation counts clients by position; the user knows their identifiers
        self.history_ = [
            {
                **entry,
                "clients": [client_key(self.clients_[c]) for c in entry["clients"]],
                "rejected": {
                    client_key(self.clients_[c]): reason
                    for c, reason in entry["rejected"].items()
                },
            }
            for entry in result["history"]
        ]
        return self

    def _fit_common_expert(self, X, y, rng):
        if self.common_expert is not None and _is_fitted(self.common_expert):
            return self.common_expert
        estimator = (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            if self.common_expert is None
            else clone(self.common_expert)
        )
        n_server = max(int(round(self.server_fraction * X.shape[0])), 1)
        rows = rng.choice(X.shape[0], n_server, replace=False)
        if np.unique(y[rows]).shape[0] < 2:
            raise ValueError(
                f"The server split (server_fraction={self.server_fraction}, "
                f"{n_server} samples) holds a single class; raise server_fraction "
                "or pass a fitted common_expert."
            )
        return estimator.fit(X[rows], y[rows])

    def _embedding_method(self):
        return embedding_method(self.common_expert_, self.embedding)

    def _anchor_indices(self):
        if self.anchors == "auto":
            return None
        position = {client_key(c): i for i, c in enumerate(self.clients_)}
        unknown = [c for c in self.anchors if c not in position]
        if unknown:
            raise ValueError(f"anchors names clients that hold no data: {unknown}.")
        experts = list(self.anchors.values())
        if len(set(experts)) != len(experts) or not all(
            isinstance(m, Integral) and 0 <= m < self.n_experts for m in experts
        ):
            raise ValueError(
                "anchors must bind clients one-to-one to experts in "
                f"0 .. n_experts - 1 = {self.n_experts - 1}; got {self.anchors!r}."
            )
        return {position[c]: int(m) for c, m in self.anchors.items()}

    # -------------------------------------------------------------- predicting
    def _routing(self, X, client_ids):
        """The expert that predicts each sample (DDOME's zero-shot rule)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        client_ids = (
            np.full(X.shape[0], None, dtype=object)
            if client_ids is None
            else check_client_ids(client_ids, X.shape[0])
        )
        embedding = embed(self.common_expert_, X, self.embedding_method_)
        log_gate = gate_log_proba(embedding, (self.gate_.coef_, self.gate_.intercept_))
        chosen = np.empty(X.shape[0], dtype=np.intp)
        groups = {}
        for i, client in enumerate(client_ids):
            groups.setdefault(client_key(client), []).append(i)
        for client, rows in groups.items():
            rows = np.asarray(rows)
            selected = self.client_experts_.get(client)
            if selected is None:
                selected = top_experts(np.exp(log_gate[rows]).mean(axis=0), self.top_k)
            chosen[rows] = selected[np.argmax(log_gate[np.ix_(rows, selected)], axis=1)]
        return X, chosen

    def predict_proba(self, X, client_ids=None):
        """Class probabilities, each from the sample's routed expert.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None
            The client of each sample; clients not seen in training route
            zero-shot from their data. None treats ``X`` as one unseen client.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X, chosen = self._routing(X, client_ids)
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        for m in np.unique(chosen):
            rows = chosen == m
            proba[rows] = self.experts_[m].predict_proba(X[rows])
        return proba

    def predict(self, X, client_ids=None):
        """Most probable class under each sample's routed expert.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None
            As in :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X, client_ids)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_expert(self, X, client_ids=None):
        """Index of the expert that predicts each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None
            As in :meth:`predict_proba`.

        Returns
        -------
        experts : ndarray of shape (n_samples,)
        """
        return self._routing(X, client_ids)[1]
