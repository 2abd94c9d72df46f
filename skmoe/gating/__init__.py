"""Gates: the models that route each sample to the experts.

:class:`SoftmaxGate` is the built-in multinomial-logistic gate, fitted on soft targets
with numba kernels. Any scikit-learn classifier with ``predict_proba`` whose ``fit``
accepts ``sample_weight`` can be used as a gate too; the mixture fits it on the soft
targets by replicating each sample once per expert with the responsibility as weight.
"""

from skmoe.gating._softmax import SoftmaxGate

__all__ = ["SoftmaxGate"]
