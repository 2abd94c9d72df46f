"""Mixtures of experts trained over decentralized clients (federated learning).

:class:`DDOMEClassifier` trains a gate and experts jointly over clients that keep
their data (DDOME, arXiv:2306.08586); the federation is simulated in-process by
default, and :func:`run_flower_simulation` runs the same client and server functions
on Flower (the optional ``federated`` extra). :func:`flower_app_path` is the Flower
app that ``flwr run`` deploys on a SuperLink with one SuperNode per data owner, each
reading its own partition (:func:`load_partition`). The baselines
:class:`FedAvgClassifier`, :class:`FedProxClassifier` and :class:`LocalClassifier`
fit on the same ``(X, y, client_ids)``.
"""

from skmoe.federated._baselines import (
    FedAvgClassifier,
    FedProxClassifier,
    LocalClassifier,
)
from skmoe.federated._ddome import DDOMEClassifier
from skmoe.federated._deploy import flower_app_path, load_partition
from skmoe.federated._flower import run_flower_simulation

__all__ = [
    "DDOMEClassifier",
    "FedAvgClassifier",
    "FedProxClassifier",
    "LocalClassifier",
    "flower_app_path",
    "load_partition",
    "run_flower_simulation",
]
