"""The solvers that train a mixture of experts, one module each.

``_em`` (EM, hard EM, top-k EM), ``_gradient`` (joint L-BFGS) and ``_stochastic``
(minibatch Adam) train the same estimator parameters behind one small interface; the
adversaries of :mod:`skmoe.reweighting` are objects every solver calls the same way.
"""

__all__ = []
