"""Calibration of the experts: maps fitted on their cross-fitted, routed predictions.

:class:`ProbabilityCalibrator` maps predicted class probabilities to calibrated ones
(temperature scaling, Platt's sigmoid or isotonic regression, with sample weights).
:class:`~skmoe.MixtureOfExpertsClassifier` fits one per expert when
``expert_calibration`` is set, on the out-of-fold predictions of the expert on the
samples routed to it.
"""

from skmoe.calibration._calibrators import ProbabilityCalibrator

__all__ = ["ProbabilityCalibrator"]
