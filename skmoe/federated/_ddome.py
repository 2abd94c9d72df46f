"""DDOMEClassifier: joint gating-expert training over decentralized clients."""

import inspect
import warnings
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
from sklearn.pipeline import Pipeline, make_pipeline
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
    same_shapes,
    validate_fit_data,
)
from skmoe.federated._protocol import (
    expert_parameters,
    gate_log_proba,
    initial_expert_parameters,
    materialise_expert,
    set_expert_parameters,
)
from skmoe.federated._server import (
    InProcessTransport,
    run_ddome,
    top_experts,
    uncovered_labels,
)
from skmoe.gating import SoftmaxGate

_EMBEDDING_METHODS = ("transform", "decision_function", "predict_proba")
# validation="auto" holds whole clients out for the guard when that gives it at
# least this many: fewer make its pooled evidence one or two data owners' word
MIN_VALIDATION_CLIENTS = 5


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


def expert_input_mode(common_expert, expert_input):
    """``"raw"`` or ``"common_preprocessing"``: what ``expert_input`` resolves to.

    "auto" is the common expert's preprocessing when the common expert is a
    :class:`~sklearn.pipeline.Pipeline` of more than one step, else the raw
    features.
    """
    is_pipeline = isinstance(common_expert, Pipeline) and len(common_expert) > 1
    if expert_input == "auto":
        return "common_preprocessing" if is_pipeline else "raw"
    if expert_input == "common_preprocessing" and not is_pipeline:
        raise ValueError(
            "expert_input='common_preprocessing' needs a common expert that is a "
            f"Pipeline of at least two steps; got {type(common_expert).__name__}."
        )
    return expert_input


def expert_features(common_expert, X, mode):
    """The features the experts see: ``X``, or the common expert's preprocessing.

    Computed where the data are (each client, like the embedding).
    """
    if mode == "raw":
        return X
    features = common_expert[:-1].transform(X)
    if hasattr(features, "toarray"):  # a sparse output (e.g. a one-hot encoder)
        features = features.toarray()
    return np.asarray(features, dtype=np.float64)


def expert_head(common_expert, mode):
    """The part of the common expert that maps the experts' features to labels."""
    return common_expert if mode == "raw" else common_expert[-1]


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
    on their training data. With the guard (the default), a sample routed to an
    expert that did not beat the common expert on held-out validation clients (or
    rows, in small federations) gets the common expert's prediction.

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
    anchors : {"auto", "label_groups"} or dict, default="auto"
        Mapping from client identifier to expert index (distinct experts). "auto"
        picks ``n_experts`` clients with the most distinct label distributions
        (farthest-first on the label proportions each client reports once).
        "label_groups" splits the labels into ``n_experts`` groups
        (``label_groups``) and binds each group's expert to the client most
        concentrated in it (largest share of its samples in the group; one client
        per group, by an optimal assignment), so that the anchors cover the labels;
        a label that no anchor holds is warned about.
    label_groups : list of array-like, default=None
        With ``anchors="label_groups"``: one list of labels per expert (disjoint;
        a label in no group is warned about). None derives balanced groups from
        the clients' label counts: greedily, each group is the labels that the
        client most concentrated on that many ungrouped labels holds.
    share_label_counts : bool, default=True
        Whether each client tells the server, once, how many samples of each label
        it holds (the counts choose the anchors). False keeps them at home: then
        ``anchors`` must be a dict, or "label_groups" with given ``label_groups``,
        for which a client sends only how many of its samples fall in each group.
    anchor_fraction : float, default=0.5
        Share of each round's clients that are anchors; the paper's default is half.
        The paper sees routing collapse below about 0.3.
    n_rounds : int, default=30
    clients_per_round : int, default=10
    local_epochs : int, default=2
    gate_learning_rate : float, default=0.5
        Step of the gate's minibatch gradient descent on the standardised embedding.
    gate_batch_size : int, default=32
    embedding : {"auto", "transform", "decision_function", "predict_proba"}, \
default="auto"
        Method of the common expert that embeds; "auto" takes the first one it has.
    expert_input : {"auto", "raw", "common_preprocessing"}, default="auto"
        What the experts see. "raw" is ``X``; "common_preprocessing" is ``X``
        through the common expert pipeline's steps before its last (with the
        default common expert, the standardised features), computed by each
        client on its own rows with the frozen steps, like the embedding; "auto"
        is "common_preprocessing" when the common expert is a
        :class:`~sklearn.pipeline.Pipeline` of two steps or more, else "raw".
        Linear SGD experts on unscaled features learn slowly: with the earlier
        defaults ("raw", experts from zeros) the unguarded experts lost 4.7 points
        to the common expert on unseen digits clients, and now gain 3.5
        (``benchmarks/README_federated_defaults.md``).
    expert_init : {"auto", "default", "common_expert"}, default="auto"
        Where the experts start. "default" is the expert's own start (zeros for a
        linear model, the seeded random weights of an ``MLPClassifier``);
        "common_expert" starts every expert from the parameters of the common
        expert (as in the paper) or, with ``expert_input="common_preprocessing"``,
        of the pipeline's last step; they must have the experts' shapes and
        classes (a ``LogisticRegression`` head starts ``SGDClassifier`` experts,
        an ``MLPClassifier`` the experts of its architecture), else a
        ``ValueError``. "auto" is "common_expert" where the parameters fit and
        "default" elsewhere (``expert_init_`` says which).
    guard : {"common_expert"} or None, default="common_expert"
        Keeps the model from doing worse than the common expert where its experts
        do not beat it. Validation data (see ``validation``) stay out of
        training; after the last round they are routed zero-shot (as an unseen
        client's) and each validation client counts, per expert, the rows the
        expert gets right and the common expert wrong and the reverse; the
        server trusts an expert whose one-sided sign test on the pooled counts
        has a p-value below ``guard_alpha``, and at prediction a sample routed to
        an untrusted expert gets the common expert's probabilities. The default
        because a mixture that serves unseen clients worse than the model it
        starts from is a worse model: the gate misroutes them when the common
        expert's embedding cannot tell the label groups apart, and federated
        experts can lose some of the common expert's accuracy. It costs the
        held-out data's training and, where an expert's gain is not shown, that
        gain. None trains on all data and always uses the experts (the paper's
        method).
    guard_alpha : float, default=0.5
        Level of the guard's sign test. 0.5 asks an expert to win more often than
        it loses by more than a fair coin's median; a federation has few
        validation rows per expert, and at 0.05 the guard replaced experts that
        gained 12 points. Lower it for a stricter guard.
    validation : {"auto", "clients", "rows"}, default="auto"
        Where the guard's evidence comes from. "clients":
        ``floor(validation_fraction * n_clients)`` clients, drawn by the server
        among those that are not anchors, never train; they check the experts
        on all their rows, exactly as a new client would be served, so the
        evidence holds for new clients and their unseen label combinations.
        "rows": every client keeps ``validation_fraction`` of its rows out of
        training; that evidence comes from label combinations the experts
        trained on, and on MNIST-1D it trusted experts that lost to the common
        expert on new clients (``benchmarks/README_federated.md``). "auto":
        "clients" when that holds out at least 5 clients (25 clients at the
        default fraction), else "rows" (a small federation cannot spare whole
        data owners). Unused without the guard.
    validation_fraction : float, default=0.2
        Share of the clients (``validation="clients"``) or of each client's rows
        (``"rows"``: ``floor(validation_fraction * n)`` rows, so a client with
        fewer than ``1 / validation_fraction`` rows keeps none) kept out of
        training for the guard. Unused without the guard.
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
    expert_input_ : {"raw", "common_preprocessing"}
        What the experts see (``expert_input`` resolved).
    expert_init_ : {"default", "common_expert"}
        Where the experts started (``expert_init`` resolved).
    gate_ : SoftmaxGate
        The averaged gate, applicable to the raw embedding (the standardisation is
        folded into its coefficients).
    experts_ : list of estimators
        The averaged experts, on the features of ``expert_input_``; they predict
        encoded classes ``0 .. n_classes - 1``.
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
        (weighted), the frozen common expert's ``common_expert_accuracy`` on the
        same clients, and wall ``time``.
    label_groups_ : list of ndarray or None
        With ``anchors="label_groups"``: the labels of each expert's group.
    trusted_experts_ : ndarray of shape (n_experts,) of bool
        The experts the guard lets predict (all of them without the guard).
    validation_ : {"clients", "rows"} or None
        Where the guard's evidence came from (``validation`` resolved); None
        without the guard.
    validation_clients_ : ndarray
        The clients held out of training for the guard (empty unless
        ``validation_ == "clients"``).
    guard_ : dict or None
        The guard's pooled evidence: ``n_routed``, ``n_expert_only`` (rows the
        expert gets right and the common expert wrong), ``n_common_only``,
        ``p_values`` and ``trusted`` per expert, and ``n_clients`` (replies
        counted). None without the guard.
    common_expert_accuracy_ : float
        The common expert's accuracy over all training clients (each client counts
        its correct predictions at home and sends the number).
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
        "anchors": [StrOptions({"auto", "label_groups"}), dict],
        "label_groups": [None, list],
        "share_label_counts": ["boolean"],
        "anchor_fraction": [Interval(Real, 0, 1, closed="both")],
        "n_rounds": [Interval(Integral, 0, None, closed="left")],
        "clients_per_round": [Interval(Integral, 1, None, closed="left")],
        "local_epochs": [Interval(Integral, 1, None, closed="left")],
        "gate_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "gate_batch_size": [Interval(Integral, 1, None, closed="left")],
        "embedding": [StrOptions({"auto", *_EMBEDDING_METHODS})],
        "expert_input": [StrOptions({"auto", "raw", "common_preprocessing"})],
        "expert_init": [StrOptions({"auto", "default", "common_expert"})],
        "guard": [StrOptions({"common_expert"}), None],
        "guard_alpha": [Interval(Real, 0, 1, closed="right")],
        "validation": [StrOptions({"auto", "clients", "rows"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
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
        label_groups=None,
        share_label_counts=True,
        anchor_fraction=0.5,
        n_rounds=30,
        clients_per_round=10,
        local_epochs=2,
        gate_learning_rate=0.5,
        gate_batch_size=32,
        embedding="auto",
        expert_input="auto",
        expert_init="auto",
        guard="common_expert",
        guard_alpha=0.5,
        validation="auto",
        validation_fraction=0.2,
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
        self.label_groups = label_groups
        self.share_label_counts = share_label_counts
        self.anchor_fraction = anchor_fraction
        self.n_rounds = n_rounds
        self.clients_per_round = clients_per_round
        self.local_epochs = local_epochs
        self.gate_learning_rate = gate_learning_rate
        self.gate_batch_size = gate_batch_size
        self.embedding = embedding
        self.expert_input = expert_input
        self.expert_init = expert_init
        self.guard = guard
        self.guard_alpha = guard_alpha
        self.validation = validation
        self.validation_fraction = validation_fraction
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
        self.expert_input_ = expert_input_mode(self.common_expert_, self.expert_input)
        self.clients_, client_index = np.unique(client_ids, return_inverse=True)
        client_data = []
        for c in range(self.clients_.shape[0]):
            rows = np.flatnonzero(client_index == c)
            embedding = embed(self.common_expert_, X[rows], self.embedding_method_)
            # computed at the client, like the embedding: only a count leaves it
            predictions = self._encode(self.common_expert_.predict(X[rows]))
            features = expert_features(self.common_expert_, X[rows], self.expert_input_)
            client_data.append((features, y_encoded[rows], embedding, predictions))
        config = self._federation_config(
            client_data[0][0].shape[1], client_data[0][2].shape[1]
        )
        return config, client_data, rng

    def _federation_config(self, n_features, n_embedding):
        """The settings of :func:`run_ddome`, from the parameters and the data's sizes.

        ``n_features`` is the width of the experts' input (``expert_input_``).
        Needs ``classes_``, ``clients_`` and ``common_expert_``; shared by the
        in-process run and the deployed Flower app, whose server sees sizes but no
        data.
        """
        if self.top_k > self.n_experts:
            raise ValueError(
                f"Expected top_k <= n_experts, got top_k={self.top_k} and "
                f"n_experts={self.n_experts}."
            )
        template = default_expert() if self.expert is None else clone(self.expert)
        if "sample_weight" not in inspect.signature(template.partial_fit).parameters:
            # each expert learns from a client's samples weighted by the routing
            # posterior; an expert that cannot weight them cannot be shared
            raise ValueError(
                f"The expert's partial_fit takes no sample_weight "
                f"(expert={self.expert!r}); DDOME weights each expert's samples by "
                "the routing posterior. MLPClassifier takes it from scikit-learn "
                "1.7 on: upgrade scikit-learn, or use a linear SGDClassifier."
            )
        anchors = self._anchor_indices()
        groups = self._label_group_indices()
        if not self.share_label_counts and (
            anchors is None or (anchors == "label_groups" and groups is None)
        ):
            raise ValueError(
                "share_label_counts=False keeps the label counts at home, so the "
                f"server cannot choose anchors={self.anchors!r} from them: pass "
                "anchors as a dict, or anchors='label_groups' with label_groups."
            )
        return {
            "n_clients": self.clients_.shape[0],
            "n_features": n_features,
            "n_embedding": n_embedding,
            "n_classes": self.classes_.shape[0],
            "template": template,
            "n_experts": self.n_experts,
            "top_k": self.top_k,
            "anchors": anchors,
            "label_groups": groups,
            "share_label_counts": self.share_label_counts,
            "initial_expert": self._initial_expert(template, n_features),
            "anchor_fraction": self.anchor_fraction,
            "n_rounds": self.n_rounds,
            "clients_per_round": self.clients_per_round,
            "local_epochs": self.local_epochs,
            "gate_learning_rate": self.gate_learning_rate,
            "gate_batch_size": self.gate_batch_size,
            "dropout_rate": self.dropout_rate,
            "guard": self.guard is not None,
            "guard_alpha": self.guard_alpha,
            "validation": self._validation_mode(),
            "validation_fraction": self.validation_fraction,
        }

    def _validation_mode(self):
        """``"clients"`` or ``"rows"``: where the guard's evidence comes from."""
        if self.validation != "auto":
            return self.validation
        n_held_out = int(np.floor(self.validation_fraction * self.clients_.shape[0]))
        return "clients" if n_held_out >= MIN_VALIDATION_CLIENTS else "rows"

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
        self.label_groups_ = (
            None
            if result.get("label_groups") is None
            else [self.classes_[g] for g in result["label_groups"]]
        )
        if self.label_groups_ is not None:
            missing = uncovered_labels(
                result.get("label_counts"),
                result["label_groups"],
                result["anchors"],
                self.classes_.shape[0],
            )
            if missing:
                warnings.warn(
                    f"Labels {self.classes_[missing].tolist()} have no expert: no "
                    "anchor client holds them within its label group (or they are in "
                    "no group). Their samples reach an expert only through the "
                    "gate; give label_groups or more experts.",
                    UserWarning,
                    stacklevel=3,
                )
        self.common_expert_accuracy_ = self._common_accuracy(result)
        guard = result.get("guard")
        self.validation_ = None if guard is None else config["validation"]
        self.validation_clients_ = self.clients_[
            np.asarray(result.get("validation_clients", []), dtype=np.intp)
        ]
        if guard is None:
            self.trusted_experts_ = np.ones(self.n_experts, dtype=bool)
            self.guard_ = None
        else:
            self.trusted_experts_ = np.asarray(guard["trusted"], dtype=bool)
            self.guard_ = {
                key: np.asarray(value) if key != "n_clients" else int(value)
                for key, value in guard.items()
            }
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

    @staticmethod
    def _common_accuracy(result):
        correct = result.get("common_correct", {})
        sizes = result.get("client_sizes", {})
        if not correct or not sizes:
            return float("nan")
        return float(sum(correct.values()) / sum(sizes[c] for c in correct))

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

    def _encode(self, labels):
        """Labels as indices into ``classes_``; -1 for labels not among them."""
        labels = np.asarray(labels)
        index = np.clip(
            np.searchsorted(self.classes_, labels), 0, len(self.classes_) - 1
        )
        return np.where(self.classes_[index] == labels, index, -1)

    def _initial_expert(self, template, n_features):
        """The common expert's parameters, if the experts start from them.

        Sets ``expert_init_``: "auto" starts from them when they fit.
        """
        self.expert_init_ = self.expert_init
        if self.expert_init == "default":
            return None
        head = expert_head(self.common_expert_, self.expert_input_)
        reference = initial_expert_parameters(
            template, n_features, self.classes_.shape[0], 0
        )
        try:
            parameters = expert_parameters(head)
        except AttributeError:
            parameters = None
        same_classes = np.array_equal(
            np.asarray(getattr(head, "classes_", [])), self.classes_
        )
        if (
            not same_shapes(parameters, reference)
            or not same_classes
            or getattr(head, "n_features_in_", None) != n_features
        ):
            if self.expert_init == "auto":
                self.expert_init_ = "default"
                return None
            raise ValueError(
                "expert_init='common_expert' needs a common expert (or, with "
                "expert_input='common_preprocessing', a pipeline's last step) with "
                "the experts' parameter shapes, fitted on the experts' features and "
                f"the same classes (got {type(head).__name__}; experts are "
                f"{type(template).__name__})."
            )
        self.expert_init_ = "common_expert"
        return parameters

    def _label_group_indices(self):
        """The user's label groups as encoded labels, checked; None if not given."""
        if self.anchors != "label_groups" or self.label_groups is None:
            return None
        if len(self.label_groups) != self.n_experts:
            raise ValueError(
                f"label_groups must hold one group per expert (n_experts="
                f"{self.n_experts}); got {len(self.label_groups)} groups."
            )
        groups = []
        for group in self.label_groups:
            labels = np.asarray(group).ravel()
            encoded = self._encode(labels)
            if labels.shape[0] == 0 or np.any(encoded < 0):
                raise ValueError(
                    f"label_groups holds an empty group or labels that are not among "
                    f"the classes {self.classes_.tolist()}: {group!r}."
                )
            groups.append(np.unique(encoded))
        flat = np.concatenate(groups)
        if np.unique(flat).shape[0] != flat.shape[0]:
            raise ValueError(
                f"label_groups must be disjoint; got {self.label_groups!r}."
            )
        return groups

    def _anchor_indices(self):
        if self.anchors in ("auto", "label_groups"):
            return None if self.anchors == "auto" else "label_groups"
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

    def _guarded(self, chosen):
        """The routed experts; -1 where the guard gives the common expert."""
        trusted = getattr(self, "trusted_experts_", None)
        if trusted is None:  # a model fitted before the guard existed
            return chosen
        return np.where(trusted[chosen], chosen, -1)

    def _common_proba(self, X):
        """The common expert's class probabilities over ``classes_``."""
        common = self.common_expert_
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        if hasattr(common, "predict_proba"):
            columns = self._encode(common.classes_)
            known = columns >= 0
            proba[:, columns[known]] = np.asarray(common.predict_proba(X))[:, known]
        else:
            predicted = self._encode(common.predict(X))
            rows = np.flatnonzero(predicted >= 0)
            proba[rows, predicted[rows]] = 1.0
        return proba

    def predict_proba(self, X, client_ids=None):
        """Class probabilities, each from the sample's routed expert.

        A sample routed to an expert that the guard does not trust
        (``trusted_experts_``) gets the common expert's probabilities.

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
        chosen = self._guarded(chosen)
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        if np.any(chosen >= 0):
            # fitted before expert_input existed: the experts saw the raw features
            mode = getattr(self, "expert_input_", "raw")
            features = expert_features(self.common_expert_, X, mode)
        for m in np.unique(chosen):
            rows = chosen == m
            if m < 0:
                proba[rows] = self._common_proba(X[rows])
            else:
                proba[rows] = self.experts_[m].predict_proba(features[rows])
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
            -1 where the guard hands the sample to the common expert.
        """
        return self._guarded(self._routing(X, client_ids)[1])
