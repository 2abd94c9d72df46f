"""Adversarial reweighting: sample weights for training against a worst case.

:class:`AdversarialReweighting` computes the tilted (KL-DRO) weights
``q ∝ w exp(eta L)`` over per-sample losses, in minibatches, with a bound on their
divergence from the data and a filtered variant that tilts only routing-relevant
samples. The mixtures of experts take it as their ``reweighting`` parameter.
"""

from skmoe.reweighting._adversarial import (
    AdversarialReweighting,
    effective_sample_size,
)

__all__ = ["AdversarialReweighting", "effective_sample_size"]
