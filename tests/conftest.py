"""Shared fixtures and settings of the test suite.

Hypothesis runs without deadlines (numba compiles on a kernel's first call, which
would otherwise count against the first example) and with a fixed seed in CI, so a
failure there can be replayed. Data generators with known structure are session-scoped
fixtures, as in skada.
"""

import os

# One OpenMP thread per test process, set before scikit-learn's OpenMP runtime loads
# (threadpool_limits below only reaches the libraries already loaded): with two
# pytest-xdist workers on two cores, the OpenMP threads of scikit-learn's loss and
# gradient kernels spin against each other, and a test of many small
# PoissonRegressor fits ran 50 times slower (302 s against 6 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib  # noqa: E402
import pytest  # noqa: E402
from _mixtures import sample_linear_mixture  # noqa: E402
from hypothesis import settings  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

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
