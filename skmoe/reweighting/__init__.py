"""Adversarial reweighting: sample weights for training against a worst case.

:class:`AdversarialReweighting` computes the tilted (KL-DRO) weights
``q ∝ w exp(eta L)`` over per-sample losses, in minibatches, with a bound on their
divergence from the data and a filtered variant that tilts only routing-relevant
samples. :class:`GroupDRO` moves weight between known groups (domains) instead, by
exponentiated-gradient steps on each group's mean loss. The mixtures of experts take
either as their ``reweighting`` parameter.
"""

from skmoe.reweighting._adversarial import (
    AdversarialReweighting,
    effective_sample_size,
)
from skmoe.reweighting._group import GroupDRO

__all__ = ["AdversarialReweighting", "GroupDRO", "effective_sample_size"]
