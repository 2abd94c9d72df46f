"""Compile options shared by every numba kernel of skmoe.

Kernels are compiled lazily with ``cache=True`` (the compiled code is stored next to the
module, so a second process starts warm) and ``nogil=True`` (joblib's threading backend
and user threads run them concurrently). None is ``parallel=True``: numba's default
``workqueue`` threading layer aborts the process when two threads launch parallel
kernels at once, which GridSearchCV with a threading backend would do; the experts are
parallelised through joblib instead.

``FASTMATH`` leaves out ``nnan`` and ``ninf`` (as stumpy does) so that the ``-inf`` and
NaN checks the kernels rely on stay correct under fast math.
"""

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": FASTMATH}
