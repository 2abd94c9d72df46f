"""Numba kernels, grouped by domain.

Every ``@njit`` function of skmoe lives in this package, and nothing here imports
scikit-learn: the estimators validate their input and call these kernels on plain
arrays. Each kernel has a pure-NumPy reference in ``tests/_naive*.py`` that the tests
compare it against. The compile options are shared from :mod:`skmoe._kernels._config`.
"""
