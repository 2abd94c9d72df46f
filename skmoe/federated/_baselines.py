"""Baselines for decentralized data: FedAvg, FedProx and one model per client.

They take the same ``(X, y, client_ids)`` as :class:`DDOMEClassifier`, reuse its
client functions (one shared model is one expert that every client trains), and
simulate the federation in-process with the same faults: dropouts and rejected replies.
"""

from numbers import Integral, Real
from time import perf_counter

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skmoe.federated._common import (
    ClientScoreMixin,
    check_client_ids,
    client_key,
    default_expert,
    same_shapes,
    validate_fit_data,
)
from skmoe.federated._protocol import (
    check_model_reply,
    client_error,
    client_fit_model,
    expert_parameters,
    initial_expert_parameters,
    materialise_expert,
    set_expert_parameters,
    weighted_average,
)


class FedAvgClassifier(
    ClientScoreMixin, ClassifierMixin, MetaEstimatorMixin, BaseEstimator
):
    """One model averaged over the clients each round (FedAvg).

    Every round ``clients_per_round`` clients are picked; each that answers runs
    ``local_epochs`` passes of ``partial_fit`` from the shared parameters, and the
    server averages the replies weighted by sample counts. Replies that are not
    finite, have the wrong shape or were trained on other classes are rejected and
    counted in ``history_``.

    Parameters
    ----------
    estimator : estimator, default=None
        Unfitted classifier with ``partial_fit`` (as the experts of
        :class:`DDOMEClassifier`). None means the same ``SGDClassifier`` as there.
    init : estimator, default=None
        A fitted classifier whose parameters start the shared model, such as
        DDOME's common expert (the paper starts its baselines there). It must be of
        ``estimator``'s kind and shapes, fitted on the raw features with the same
        classes; it is read, never modified. None starts from ``estimator``'s own
        initialisation.
    n_rounds : int, default=30
    clients_per_round : int, default=10
    local_epochs : int, default=2
    dropout_rate : float, default=0.0
        Probability that a picked client does not answer in a round.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    estimator_ : estimator
        The averaged model (predicts encoded classes ``0 .. n_classes - 1``).
    history_ : list of dict
        Per round: ``clients``, ``n_dropped``, ``n_replies``, ``n_rejected``,
        ``rejected``, ``time``.
    n_features_in_ : int

    See Also
    --------
    skmoe.federated.DDOMEClassifier : a mixture of experts over the same clients.
    skmoe.federated.FedProxClassifier : FedAvg with a proximal pull.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmoe.federated import FedAvgClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = FedAvgClassifier(n_rounds=5, random_state=0).fit(X / 16, y, y // 2)
    >>> round(model.score(X / 16, y), 1)
    0.8
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["partial_fit", "predict_proba"])],
        "init": [None, HasMethods(["predict_proba"])],
        "n_rounds": [Interval(Integral, 0, None, closed="left")],
        "clients_per_round": [Interval(Integral, 1, None, closed="left")],
        "local_epochs": [Interval(Integral, 1, None, closed="left")],
        "dropout_rate": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        init=None,
        n_rounds=30,
        clients_per_round=10,
        local_epochs=2,
        dropout_rate=0.0,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.init = init
        self.n_rounds = n_rounds
        self.clients_per_round = clients_per_round
        self.local_epochs = local_epochs
        self.dropout_rate = dropout_rate
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, client_ids):
        """Run the federation in-process.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        client_ids : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y, client_ids = validate_fit_data(self, X, y, client_ids)
        n_classes = self.classes_.shape[0]
        clients, client_index = np.unique(client_ids, return_inverse=True)
        rows = [np.flatnonzero(client_index == c) for c in range(clients.shape[0])]
        rng = check_random_state(self.random_state)
        template = default_expert() if self.estimator is None else clone(self.estimator)
        seed = rng.randint(np.iinfo(np.int32).max)
        state = {
            "n_classes": n_classes,
            "parameters": initial_expert_parameters(
                template, X.shape[1], n_classes, seed
            ),
        }
        if self.init is not None:
            state["parameters"] = self._init_parameters(state["parameters"])
        self.history_ = []
        for round_index in range(self.n_rounds):
            started = perf_counter()
            size = min(self.clients_per_round, clients.shape[0])
            picked = np.sort(rng.choice(clients.shape[0], size, replace=False))
            seeds = rng.randint(np.iinfo(np.int32).max, size=size)
            answering = rng.random_sample(size) >= self.dropout_rate
            accepted, rejected = [], {}
            for c, client_seed in zip(picked[answering], seeds[answering], strict=True):
                instruction = {
                    "parameters": state["parameters"],
                    "n_classes": n_classes,
                    "seed": int(client_seed),
                    "local_epochs": self.local_epochs,
                    "proximal_mu": self._proximal_mu_value(),
                }
                try:
                    reply = client_fit_model(
                        X[rows[c]], y[rows[c]], instruction, template
                    )
                except Exception as exc:  # noqa: BLE001 - a failing client is rejected
                    reply = client_error(exc)
                reason = check_model_reply(reply, state)
                if reason is None:
                    accepted.append(reply)
                else:
                    rejected[client_key(clients[c])] = reason
            if accepted:
                state["parameters"] = weighted_average(
                    [r["parameters"] for r in accepted],
                    [r["n_samples"] for r in accepted],
                )
            entry = {
                "round": round_index,
                "clients": [client_key(clients[c]) for c in picked],
                "n_dropped": int(size - answering.sum()),
                "n_replies": int(answering.sum()),
                "n_rejected": len(rejected),
                "rejected": rejected,
                "time": perf_counter() - started,
            }
            self.history_.append(entry)
            if self.verbose:
                print(
                    f"round {round_index + 1}/{self.n_rounds}: "
                    f"{entry['n_replies']} replies, {entry['n_dropped']} dropped, "
                    f"{entry['n_rejected']} rejected"
                )
        self.estimator_ = set_expert_parameters(
            materialise_expert(template, X.shape[1], n_classes, seed),
            state["parameters"],
        )
        return self

    def _proximal_mu_value(self):
        return 0.0

    def _init_parameters(self, reference):
        """Copies of ``init``'s parameters, checked against the model's shapes."""
        try:
            parameters = expert_parameters(self.init)
        except AttributeError:
            parameters = None
        if (
            not same_shapes(parameters, reference)
            or not np.array_equal(getattr(self.init, "classes_", []), self.classes_)
            or getattr(self.init, "n_features_in_", None) != self.n_features_in_
        ):
            raise ValueError(
                "init must be a fitted classifier with the estimator's parameter "
                "shapes, fitted on the raw features and the same classes; got "
                f"init={self.init!r}."
            )
        return parameters

    def predict_proba(self, X, client_ids=None):
        """Class probabilities of the shared model (``client_ids`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None
            Accepted for a common interface with the other federated estimators.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.estimator_.predict_proba(X)

    def predict(self, X, client_ids=None):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None
            Ignored.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class FedProxClassifier(FedAvgClassifier):
    """FedAvg whose clients are pulled toward the shared model (FedProx).

    Each local pass of ``partial_fit`` is followed by the proximal step of
    ``proximal_mu / 2 ||w - w_shared||^2``, taken with the pass's total step size
    (learning rate times optimiser steps), which keeps clients with skewed labels
    from drifting far from the shared model.

    Parameters
    ----------
    estimator : estimator, default=None
    proximal_mu : float, default=0.1
        Strength of the pull; 0 gives FedAvg.
    init : estimator, default=None
        As in :class:`FedAvgClassifier`.
    n_rounds : int, default=30
    clients_per_round : int, default=10
    local_epochs : int, default=2
    dropout_rate : float, default=0.0
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    estimator_ : estimator
    history_ : list of dict
    n_features_in_ : int

    See Also
    --------
    skmoe.federated.FedAvgClassifier : the same without the pull.

    References
    ----------
    .. [1] Li et al., Federated optimization in heterogeneous networks, MLSys 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmoe.federated import FedProxClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = FedProxClassifier(n_rounds=5, random_state=0).fit(X / 16, y, y // 2)
    >>> model.predict_proba(X[:3] / 16).shape
    (3, 10)
    """

    _parameter_constraints = {
        **FedAvgClassifier._parameter_constraints,
        "proximal_mu": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        estimator=None,
        *,
        proximal_mu=0.1,
        init=None,
        n_rounds=30,
        clients_per_round=10,
        local_epochs=2,
        dropout_rate=0.0,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            estimator,
            init=init,
            n_rounds=n_rounds,
            clients_per_round=clients_per_round,
            local_epochs=local_epochs,
            dropout_rate=dropout_rate,
            random_state=random_state,
            verbose=verbose,
        )
        self.proximal_mu = proximal_mu

    def _proximal_mu_value(self):
        return self.proximal_mu


class LocalClassifier(
    ClientScoreMixin, ClassifierMixin, MetaEstimatorMixin, BaseEstimator
):
    """One model per client, trained on that client's data alone.

    A client whose data hold a single class predicts that class. A client not seen
    in training gets the average of all clients' probabilities.

    Parameters
    ----------
    estimator : estimator, default=None
        Unfitted classifier cloned per client; None means
        ``LogisticRegression(max_iter=1000)``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    estimators_ : dict
        Client identifier -> fitted estimator, or the encoded class of a client
        with one class.
    n_features_in_ : int

    See Also
    --------
    skmoe.federated.DDOMEClassifier : experts shared between clients.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmoe.federated import LocalClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = LocalClassifier().fit(X / 16, y, y // 2)
    >>> model.predict(X[:3] / 16, client_ids=[0, 0, 1])
    array([0, 1, 2])
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit", "predict_proba"])],
    }

    def __init__(self, estimator=None):
        self.estimator = estimator

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, client_ids):
        """Fit one model per client.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        client_ids : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y, client_ids = validate_fit_data(self, X, y, client_ids)
        template = (
            LogisticRegression(max_iter=1000)
            if self.estimator is None
            else self.estimator
        )
        self.estimators_ = {}
        for client in np.unique(client_ids):
            rows = client_ids == client
            key = client_key(client)
            if np.unique(y[rows]).shape[0] < 2:
                self.estimators_[key] = int(y[rows][0])
            else:
                self.estimators_[key] = clone(template).fit(X[rows], y[rows])
        return self

    def _client_proba(self, model, X):
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        if isinstance(model, int):
            proba[:, model] = 1.0
        else:
            proba[:, model.classes_] = model.predict_proba(X)
        return proba

    def predict_proba(self, X, client_ids=None):
        """Probabilities from each sample's own client model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None
            Unseen clients (or None) get the average over all client models.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if client_ids is None:
            client_ids = np.full(X.shape[0], None, dtype=object)
        client_ids = check_client_ids(client_ids, X.shape[0])
        proba = np.empty((X.shape[0], self.classes_.shape[0]))
        keys = np.array([client_key(c) for c in client_ids], dtype=object)
        for key in set(keys.tolist()):
            rows = keys == key
            model = self.estimators_.get(key)
            if model is None:
                proba[rows] = np.mean(
                    [self._client_proba(m, X[rows]) for m in self.estimators_.values()],
                    axis=0,
                )
            else:
                proba[rows] = self._client_proba(model, X[rows])
        return proba

    def predict(self, X, client_ids=None):
        """Most probable class under each sample's client model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        client_ids : array-like of shape (n_samples,), default=None

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba(X, client_ids), axis=1)]
