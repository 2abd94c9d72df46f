"""Property-testing tools for the calibration claims of mixtures of experts.

Finite populations make calibration exact: with a probability, a true label
distribution and a prediction per input cell, a calibration error is a finite sum.
:func:`calibration_error_exact` computes it, :func:`check_hard_routing_calibrated`
checks the hard-routing theorem (DESIGN.md, item 1) on a population and a shift, and
the hypothesis strategies :func:`finite_moe_populations` and
:func:`shifts_preserving` draw populations whose experts are calibrated on their views
and shifts that keep the theorem's premise, for users' own property tests. The
strategies need hypothesis (``pip install "skmoe[test]"``), imported only when a
strategy is built.
"""

from skmoe.testing._checks import (
    calibration_error_exact,
    check_hard_routing_calibrated,
    configuration_groups,
    premise_groups,
)
from skmoe.testing._strategies import finite_moe_populations, shifts_preserving

__all__ = [
    "calibration_error_exact",
    "check_hard_routing_calibrated",
    "configuration_groups",
    "finite_moe_populations",
    "premise_groups",
    "shifts_preserving",
]
