"""Group DRO: adversarial weights over known groups, by exponentiated gradient.

:class:`GroupDRO` keeps a distribution ``pi`` over the groups (domains) of the training
data and moves it towards the groups with the largest mean loss, one
exponentiated-gradient step per iteration of the learner, as in Sagawa, Koh, Hashimoto
and Liang (2020). The mixtures of experts take it as ``reweighting="group_dro"`` and
read the groups from ``fit(X, y, groups=...)``.
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval


def _log_normalise(log_weights):
    largest = log_weights.max()
    return log_weights - (largest + np.log(np.exp(log_weights - largest).sum()))


class GroupDRO(BaseEstimator):
    """Group DRO weights: exponentiated-gradient ascent on the worst group's loss.

    Group DRO minimises the largest mean loss over known groups,
    ``max_g L_g(theta)``, written as the game ``min_theta max_pi sum_g pi_g L_g``
    over distributions ``pi`` on the groups. The learner alternates a step on
    ``theta`` with the sample weights that ``pi`` induces and one
    exponentiated-gradient step of the adversary,

    .. math::

        \\pi_g \\leftarrow \\pi_g \\exp(\\eta L_g) / Z,

    starting from equal group weights (Algorithm 1 of Sagawa et al., 2020). A sample
    ``i`` of group ``g`` gets the weight ``pi_g w_i / W_g``, with ``w`` the data's own
    weights and ``W_g`` their total in the group: the group's weight is spread over
    its samples in proportion to ``w``, so that every group counts by ``pi_g``, not
    by its size. The group losses ``L_g`` are the ``w``-weighted mean losses of the
    group's samples.

    Unlike :class:`AdversarialReweighting`, which tilts every sample by its own loss
    and so can fasten on label noise, Group DRO moves weight only between groups the
    user names (sites, periods, sub-populations): it protects the worst *known*
    domain, and only that.

    Parameters
    ----------
    step_size : float, default=0.1
        The adversary's step ``eta``: how far ``log pi_g`` moves per unit of group
        loss at each step. Losses of classifiers are typically of order 0.1-1, so
        after ``m`` steps two groups whose losses differ by ``d`` have weights in
        the ratio ``exp(eta m d)``.
    warmup : float, default=0.4
        Fraction of the mixture's ``max_iter`` trained without reweighting (on the
        data's own weights) before Group DRO starts; the warm-up also ends when the
        unweighted EM converges.

    See Also
    --------
    AdversarialReweighting : per-sample (KL-DRO) adversarial weights, without groups.
    skmoe.metrics.worst_group_calibration_error : the worst group's calibration.

    References
    ----------
    .. [1] Sagawa, Koh, Hashimoto and Liang (2020). Distributionally robust neural
       networks for group shifts: on the importance of regularization for
       worst-case generalization. ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.reweighting import GroupDRO
    >>> losses = np.array([0.2, 0.2, 0.2, 1.2])
    >>> groups = np.array([0, 0, 0, 1])
    >>> dro = GroupDRO(step_size=1.0)
    >>> weights, group_weights = dro.compute_weights(losses, groups)
    >>> group_weights.round(3)
    array([0.269, 0.731])
    >>> weights.round(3)
    array([0.09 , 0.09 , 0.09 , 0.731])
    """

    _parameter_constraints = {
        "step_size": [Interval(Real, 0, None, closed="left")],
        "warmup": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, step_size=0.1, *, warmup=0.4):
        self.step_size = step_size
        self.warmup = warmup

    def compute_weights(
        self, losses, groups, sample_weight=None, *, group_weights=None
    ):
        """One step of the adversary and the sample weights it induces.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Finite per-sample losses (larger is worse).
        groups : array-like of shape (n_samples,)
            Group label of each sample.
        sample_weight : array-like of shape (n_samples,), default=None
            The data's own non-negative weights; ``None`` means equal weights.
        group_weights : array-like of shape (n_groups,), default=None
            The current group weights ``pi``, in the order of ``np.unique(groups)``;
            ``None`` means equal weights (the first step).

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Sample weights ``pi_g w_i / W_g`` after the step, summing to one.
        group_weights : ndarray of shape (n_groups,)
            The group weights ``pi`` after the step, summing to one.
        """
        self._validate_params()
        losses = np.asarray(losses, dtype=np.float64)
        if losses.ndim != 1 or not np.all(np.isfinite(losses)):
            raise ValueError("losses must be a 1-D array of finite numbers.")
        groups = np.asarray(groups)
        if groups.shape != losses.shape:
            raise ValueError(
                f"groups must have the shape of losses, {losses.shape}; got "
                f"{groups.shape}."
            )
        _, encoded = np.unique(groups, return_inverse=True)
        n_groups = int(encoded.max()) + 1 if encoded.size else 0
        if sample_weight is None:
            base = np.ones(losses.shape[0])
        else:
            base = np.asarray(sample_weight, dtype=np.float64)
            if base.shape != losses.shape or np.any(base < 0):
                raise ValueError(
                    "sample_weight must be non-negative, of the shape of losses; got "
                    f"shape {base.shape} for {losses.shape[0]} losses."
                )
        if group_weights is None:
            log_pi = np.full(n_groups, -np.log(max(n_groups, 1)))
        else:
            group_weights = np.asarray(group_weights, dtype=np.float64)
            if group_weights.shape != (n_groups,) or np.any(group_weights < 0):
                raise ValueError(
                    f"group_weights must be {n_groups} non-negative numbers, one per "
                    f"group; got shape {group_weights.shape}."
                )
            with np.errstate(divide="ignore"):
                log_pi = np.log(group_weights)
        weights, log_pi = self._step(losses, encoded, n_groups, base, log_pi)
        return weights, np.exp(log_pi)

    def step(
        self,
        losses,
        sample_weight=None,
        *,
        groups=None,
        relevant=None,
        random_state=None,
        state=None,
        classes=None,
    ):
        """One move of the adversary: the weights for the current losses.

        The method every solver of :mod:`skmoe.solvers` calls, with the signature
        :meth:`AdversarialReweighting.step` shares; the state carried from step to
        step is ``log pi``.

        Parameters
        ----------
        losses : array-like of shape (n_samples,)
            Finite per-sample losses of the current model.
        sample_weight : array-like of shape (n_samples,), default=None
            The data's own non-negative weights; ``None`` means equal weights.
        groups : array-like of shape (n_samples,)
            Group label of each sample (required).
        relevant : None
            Ignored: Group DRO moves weight between groups only.
        classes : None
            Ignored, as ``relevant``.
        random_state : None
            Ignored: the step is deterministic.
        state : ndarray of shape (n_groups,), default=None
            ``log pi`` after the previous step, in the order of
            ``np.unique(groups)``; ``None`` means equal group weights.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Sample weights ``pi_g w_i / W_g`` after the step, summing to one.
        state : ndarray of shape (n_groups,)
            ``log pi`` after the step, to pass to the next one.
        """
        if groups is None:
            raise ValueError("GroupDRO.step needs the group of every sample: groups.")
        _, encoded = np.unique(np.asarray(groups), return_inverse=True)
        n_groups = int(encoded.max()) + 1 if encoded.size else 0
        losses = np.asarray(losses, dtype=np.float64)
        if sample_weight is None:
            base = np.ones(losses.shape[0])
        else:
            base = np.asarray(sample_weight, dtype=np.float64)
        if state is None:
            state = np.full(n_groups, -np.log(max(n_groups, 1)))
        return self._step(losses, encoded, n_groups, base, state)

    def _step(self, losses, encoded, n_groups, base, log_pi):
        """The step on encoded groups, in log space; ``log_pi`` may hold -inf."""
        group_totals = np.bincount(encoded, weights=base, minlength=n_groups)
        if not group_totals.sum() > 0:
            raise ValueError("sample_weight must not sum to zero.")
        present = group_totals > 0
        group_losses = np.zeros(n_groups)
        group_losses[present] = (
            np.bincount(encoded, weights=base * losses, minlength=n_groups)[present]
            / group_totals[present]
        )
        # a group without weight cannot be moved towards: it keeps no mass
        with np.errstate(over="ignore"):
            increments = self.step_size * group_losses
        if np.any(np.isinf(increments[present])):
            # the limit of an overflowing step: everything on the worst groups
            present &= np.isinf(increments)
            increments = np.zeros(n_groups)
        else:
            increments = increments - increments[present].max()
        log_pi = np.where(present, log_pi + increments, -np.inf)
        if not np.any(np.isfinite(log_pi)):
            raise ValueError(
                "group_weights gives no weight to any group that has weight in the "
                "data."
            )
        log_pi = _log_normalise(log_pi)
        present &= np.isfinite(log_pi)
        share = np.zeros(n_groups)
        share[present] = np.exp(log_pi[present]) / group_totals[present]
        weights = base * share[encoded]
        return weights / weights.sum(), log_pi

    def _n_warmup(self, max_iter):
        """Number of unweighted EM iterations before the adversary starts."""
        return int(np.floor(self.warmup * max_iter))
