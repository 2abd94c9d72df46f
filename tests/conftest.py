"""Shared fixtures and settings of the test suite.

Hypothesis runs without deadlines (numba compiles on a kernel's first call, which
would otherwise count against the first example) and with a fixed seed in CI, so a
failure there can be replayed. Data generators with known structure are session-scoped
fixtures, as in skada.
"""

import os

import matplotlib
import pytest
from _mixtures import sample_linear_mixture
from hypothesis import settings
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")

# One BLAS thread per test process: pytest-xdist already runs a process per core, and
# OpenBLAS threads on the small matrices of these tests cost far more than they save.
threadpool_limits(1)

settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def linear_mixture():
    return sample_linear_mixture(3000, random_state=0)
