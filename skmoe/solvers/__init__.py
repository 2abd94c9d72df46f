"""The solvers that train a mixture of experts, one module each.

``_em`` (EM, hard EM, top-k EM), ``_gradient`` (joint L-BFGS) and ``_stochastic``
(minibatch Adam) train the same estimator parameters behind one small interface; the
adversaries of :mod:`skmoe.reweighting` are objects every solver calls the same way.

**The interface.** Every solver module defines two functions:

``check(mixture) -> templates``
    Raise a ``ValueError`` naming the parameter and its value if the mixture's
    parameters do not fit this solver; return the expert templates (unfitted
    estimators, one per expert). Called by ``fit`` before any training.

``run(mixture, X, y, weights, templates, ...) -> state``
    Train one initialisation; the arguments are ``mixture, X, y, weights,
    templates, responsibilities, init_index, random_state``. ``X`` and the
    encoded ``y`` are validated, ``weights`` are the data's sample weights (ones
    without ``sample_weight``), ``templates`` the seeded expert templates,
    ``responsibilities`` the initial (n, K) responsibilities or None to continue
    from the fitted model (``warm_start``); ``mixture.gate_`` holds a fresh (or,
    warm, the fitted ``SoftmaxGate`` with the current parameters) gate; a warm
    start with another gate passes the fitted model's responsibilities and a
    fresh gate. The returned dict holds the fitted attributes the
    estimator sets from the best initialisation: ``experts_``, ``gate_``,
    ``n_iter_``, ``converged_``, ``lower_bound_`` (the objective the solver
    maximises, compared across initialisations; EM under top-k and hard routing
    returns its best iterate and that iterate's objective), ``lower_bounds_``,
    ``_expert_weights`` ((n, K) weights each final expert was fitted with, for the
    cross-fitted calibration), what ``mixture._extra_state()`` returns, and with
    reweighting ``adversarial_weights_`` and ``effective_sample_sizes_`` (and
    Group DRO's ``group_weights_``).

The estimator (``skmoe._base.BaseMixtureOfExperts``) keeps the parameters, the
validation, the initialisation, the restarts (``n_init``), the routing and the
prediction; ``mixture._solver_module()`` names the module that trains it.

**The adversaries.** :class:`~skmoe.reweighting.AdversarialReweighting` and
:class:`~skmoe.reweighting.GroupDRO` share one method, ``step(losses,
sample_weight, *, groups=None, relevant=None, random_state=None, state=None) ->
(weights, state)``: the per-sample losses of the current model (see
``sample_losses`` here), the data weights, Group DRO's encoded groups, the
routing-relevant mask of the filtered variant (see ``routing_relevant`` here), a
random generator for minibatch partitions, and the adversary's running state from
its previous step (None at the first); it returns weights summing to one and the
state to hand to the next step.
"""

import numpy as np
from scipy.special import logsumexp

# The solvers are reached through the estimators' ``solver`` parameter; nothing here
# is public API.
__all__ = []

# Thresholds of the filtered reweighting's routing-relevant samples (DESIGN.md).
_REGRET_THRESHOLD = 1e-6
_DISAGREEMENT_THRESHOLD = 0.01


def sample_losses(routing, log_gate, log_likelihood):
    """Per-sample loss of the mixture under its routing, ``-log f(y_i | x_i)``.

    Parameters
    ----------
    routing : {"soft", "hard", "topk"}
    log_gate : ndarray of shape (n_samples, n_experts)
        Log routing weights (top-k renormalised for ``"topk"``).
    log_likelihood : ndarray of shape (n_samples, n_experts)
        ``log p_k(y_i | x_i)``.

    Returns
    -------
    losses : ndarray of shape (n_samples,)
    """
    if routing == "hard":
        selected = np.argmax(log_gate, axis=1)
        rows = np.arange(log_gate.shape[0])
        return -log_likelihood[rows, selected]
    return -logsumexp(log_gate + log_likelihood, axis=1)


def routing_relevant(mixture, X, losses, log_gate, log_likelihood):
    """The routing-relevant samples of the filtered reweighting (DESIGN.md).

    A sample is relevant when the mixture's loss exceeds the best expert's (regret
    above 1e-6) or, except under hard routing, when the experts disagree around the
    mixture's prediction (spread above 0.01).

    Returns
    -------
    relevant : ndarray of bool of shape (n_samples,)
    """
    relevant = losses + log_likelihood.max(axis=1) > _REGRET_THRESHOLD
    if mixture.routing != "hard":
        disagreement = mixture._expert_disagreement(X, np.exp(log_gate))
        relevant |= disagreement > _DISAGREEMENT_THRESHOLD
    return relevant
