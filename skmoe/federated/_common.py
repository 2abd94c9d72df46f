"""What the federated estimators share: client identifiers, default expert, score."""

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from skmoe._validation import check_ids


def default_expert():
    """The expert used when none is given: linear, log loss, constant step 0.1."""
    return SGDClassifier(
        loss="log_loss", learning_rate="constant", eta0=0.1, alpha=1e-4
    )


def check_client_ids(client_ids, n_samples):
    """Validate ``client_ids`` as a 1-D array with one entry per sample."""
    if client_ids is None:
        raise ValueError(
            "client_ids is required: pass one client identifier per sample."
        )
    client_ids = check_ids(np.asarray(client_ids), "client_ids")
    if client_ids.shape[0] != n_samples:
        raise ValueError(
            f"client_ids has {client_ids.shape[0]} entries for {n_samples} samples."
        )
    return client_ids


def validate_fit_data(estimator, X, y, client_ids):
    """Validate the data of a federated ``fit`` and set ``estimator.classes_``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)
        The labels encoded as indices into ``classes_``.
    client_ids : ndarray of shape (n_samples,)
    """
    X, y = validate_data(estimator, X, y, dtype=np.float64)
    check_classification_targets(y)
    client_ids = check_client_ids(client_ids, X.shape[0])
    estimator.classes_, y = np.unique(y, return_inverse=True)
    return X, y, client_ids


def client_key(client):
    """A client identifier as a plain Python value (a dictionary key)."""
    return client.item() if hasattr(client, "item") else client


class ClientScoreMixin:
    """``score`` that passes ``client_ids`` on to ``predict``."""

    def score(self, X, y, client_ids=None, sample_weight=None):
        """Accuracy of ``predict(X, client_ids)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        client_ids : array-like of shape (n_samples,), default=None
            The client of each sample, as in ``predict``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        correct = self.predict(X, client_ids) == np.asarray(y)
        return float(np.average(correct, weights=sample_weight))


def same_shapes(parameters, reference):
    """Whether ``parameters`` (a list of arrays, or None) has ``reference``'s shapes:
    the check a model must pass to start training from another's parameters."""
    return (
        parameters is not None
        and len(parameters) == len(reference)
        and all(p.shape == r.shape for p, r in zip(parameters, reference, strict=True))
    )
