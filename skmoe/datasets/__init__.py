"""Data sets for evaluating models under distribution shift.

Generators of multi-domain data with a known kind of shift
(:func:`make_shifted_classification`, :func:`make_shifted_regression`), the finite
population on which soft routing provably loses calibration
(:func:`make_routing_shift`), and loaders for real data that ships inside installed
packages (:func:`load_flights`, :func:`load_mpls_stops`, :func:`load_penguins`; they
need the optional extra ``data``).
"""

from skmoe.datasets._loaders import load_flights, load_mpls_stops, load_penguins
from skmoe.datasets._routing_shift import make_routing_shift
from skmoe.datasets._samples_generator import (
    make_shifted_classification,
    make_shifted_regression,
)

__all__ = [
    "load_flights",
    "load_mpls_stops",
    "load_penguins",
    "make_routing_shift",
    "make_shifted_classification",
    "make_shifted_regression",
]
