"""A finite population on which soft routing loses calibration under shift.

:func:`make_routing_shift` builds the counterexample of the calibrated-MoE paper
(DESIGN.md, item 1) as exact numbers rather than samples: a finite set of input
cells, the gate weights and expert probabilities of a two-expert mixture on every
cell, the true ``P(Y = 1 | cell)``, and a source and a target distribution over the
cells. The soft mixture is calibrated on the source and not on the target; hard
routing, whose experts are calibrated on the cells routed to them, is calibrated on
both. Property tests compute calibration exactly on it, and its sampler gives
``(X, y)`` for fitting models.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

_DESCR = """\
Routing-shift population (skmoe.datasets.make_routing_shift)
------------------------------------------------------------

Two experts, binary outcome, 2 * n_pairs input cells. Cell pair j holds an
"A" cell (feature row [j, 0]) and a "B" cell ([j, 1]). With v_j the pair's level,
g = gap and c = gate_weight:

    cell  gate (r_0, r_1)   expert 0 p_0         expert 1 p_1         P(Y=1|cell)
    A_j   (c, 1 - c)        v_j + g              v_j - c g / (1 - c)  v_j + g
    B_j   (1 - c, c)        v_j + c g / (1 - c)  v_j - g              v_j - g

The soft mixture sum_k r_k p_k equals v_j on both cells of pair j: two gate/expert
configurations that average to the same prediction. The source puts equal mass on
every cell, so E[Y | mixture = v_j] = v_j: calibrated. The target keeps the mass of
each pair but puts a share target_weight of it on the A cell, so
E[Y | mixture = v_j] = v_j + g (2 target_weight - 1): miscalibrated by that much at
every level. Hard routing sends A cells to expert 0 and B cells to expert 1, and the
routed expert's probability equals P(Y=1|cell) on every cell: each expert is
calibrated on the data routed to it, and stays so under any reweighting of the
cells (P(Y | expert, confidence) is unchanged), so the hard-routed model is
calibrated on source and target alike.
"""


@validate_params(
    {
        "n_pairs": [Interval(Integral, 1, None, closed="left")],
        "gap": [Interval(Real, 0, 0.5, closed="neither")],
        "gate_weight": [Interval(Real, 0.5, 1, closed="neither")],
        "target_weight": [Interval(Real, 0, 1, closed="both")],
    },
    prefer_skip_nested_validation=True,
)
def make_routing_shift(n_pairs=3, *, gap=0.15, gate_weight=0.6, target_weight=0.8):
    """Exact population where soft routing is calibrated on source, not on target.

    Every quantity is given per input cell, so calibration can be computed exactly
    (no sampling error): group cells by a model's prediction, and compare the
    cell-probability-weighted mean of ``proba_true`` in each group with the
    prediction. The returned ``calibration_error`` does this. The table of the
    construction is in the ``DESCR`` field.

    The experts are calibrated on their *routed* views only, as the hard-routing
    theorem requires and no more: expert 0's probability equals ``proba_true`` on
    the A cells, which hard routing sends to it, and expert 1's on the B cells.
    On the cells routed to the other expert, each is off by
    ``gap / (1 - gate_weight)`` (expert 0 too high on the B cells, expert 1 too
    low on the A cells); the soft mixture blends these errors in, and they cancel
    only at the source proportions.

    Parameters
    ----------
    n_pairs : int, default=3
        Number of cell pairs; pair ``j`` sits at level ``v_j``, evenly spaced in
        ``[0.3, 0.7]`` (0.5 for a single pair).
    gap : float in (0, 0.5), default=0.15
        Distance between ``P(Y = 1)`` on the two cells of a pair and their common
        mixture prediction.
    gate_weight : float in (0.5, 1), default=0.6
        Gate weight of the selected expert on every cell.
    target_weight : float in [0, 1], default=0.8
        Share of each pair's target mass on its A cell (the source puts 0.5).
        The soft mixture's miscalibration on the target is
        ``gap * |2 * target_weight - 1|`` at every level.

    Returns
    -------
    population : :class:`~sklearn.utils.Bunch`
        With ``n_cells = 2 * n_pairs``:

        cells : ndarray of shape (n_cells, 2)
            Feature row of each cell: ``[j, 0]`` for the A cell of pair ``j``,
            ``[j, 1]`` for its B cell.
        gate_proba : ndarray of shape (n_cells, 2)
            Gate weights ``r_k(cell)``; rows sum to one.
        expert_proba : ndarray of shape (n_cells, 2)
            ``p_k(Y = 1 | cell)`` of each expert.
        proba_true : ndarray of shape (n_cells,)
            ``P(Y = 1 | cell)``, the same under source and target.
        mixture_proba : ndarray of shape (n_cells,)
            Soft mixture ``sum_k r_k p_k``, stored as the pair's level ``v_j`` so
            that the two cells of a pair compare equal (the sum agrees with it up
            to floating-point rounding).
        pair : ndarray of shape (n_cells,)
            Index ``j`` of the pair of each cell.
        routed_expert : ndarray of shape (n_cells,)
            Expert chosen by hard routing, ``argmax_k r_k``.
        routed_proba : ndarray of shape (n_cells,)
            Prediction of hard routing, ``p_k`` of the routed expert.
        source_proba, target_proba : ndarray of shape (n_cells,)
            Probability of each cell under the source and the target; each sums
            to one.
        sample : callable
            ``sample(n_samples, *, distribution="source", random_state=None,
            return_cells=False)`` draws cells from ``"source"`` or ``"target"``
            and labels from ``proba_true``; returns ``X`` of shape
            ``(n_samples, 2)`` and ``y``, and the cell indices as well with
            ``return_cells=True``.
        calibration_error : callable
            ``calibration_error(predicted, *, distribution="source", by=None)``:
            the exact expected calibration error
            ``sum_v P(prediction = v) |P(Y = 1 | prediction = v) - v|`` of a
            prediction per cell (shape ``(n_cells,)``) under the source or the
            target. ``by`` (one key per cell, such as ``routed_expert``) splits the
            levels further, giving the error conditional on that key and the
            prediction. Predictions equal to 12 decimals share a level.
        DESCR : str
            Description of the construction.

    Raises
    ------
    ValueError
        When ``gap`` and ``gate_weight`` give an expert probability outside
        ``[0, 1]`` (needs ``gap * gate_weight / (1 - gate_weight) <= 0.3``).

    See Also
    --------
    make_shifted_classification : multi-domain data with other kinds of shift.

    References
    ----------
    Wong, Prinster, Saria, Chellappa, Liu. Calibrated mixtures of experts under
    distribution shift. ICML 2026, arXiv:2606.20544.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.datasets import make_routing_shift
    >>> population = make_routing_shift(n_pairs=1)
    >>> population.mixture_proba
    array([0.5, 0.5])
    >>> population.proba_true
    array([0.65, 0.35])
    >>> for weights in (population.source_proba, population.target_proba):
    ...     print(round(float(weights @ population.proba_true), 2))
    0.5
    0.59
    >>> for prediction in (population.mixture_proba, population.routed_proba):
    ...     for where in ("source", "target"):
    ...         error = population.calibration_error(prediction, distribution=where)
    ...         print(where, round(error, 3))
    source 0.0
    target 0.09
    source 0.0
    target 0.0
    >>> X, y = population.sample(1000, distribution="target", random_state=0)
    >>> X.shape, y.shape
    ((1000, 2), (1000,))
    >>> float(np.mean(X[:, 1] == 0))  # share of A cells, about target_weight
    0.797
    """
    levels = np.linspace(0.3, 0.7, n_pairs) if n_pairs > 1 else np.array([0.5])
    cross_term = gate_weight * gap / (1.0 - gate_weight)
    if levels.min() - cross_term < -1e-12 or levels.max() + cross_term > 1.0 + 1e-12:
        raise ValueError(
            "make_routing_shift needs gap * gate_weight / (1 - gate_weight) <= 0.3 "
            f"so that every expert probability lies in [0, 1]; got gap={gap!r} and "
            f"gate_weight={gate_weight!r}, which give {cross_term:.3g}."
        )
    pair = np.repeat(np.arange(n_pairs), 2)
    side = np.tile([0, 1], n_pairs)
    level = levels[pair]
    is_a = side == 0
    gate_proba = np.where(
        is_a[:, None],
        [gate_weight, 1.0 - gate_weight],
        [1.0 - gate_weight, gate_weight],
    )
    expert_proba = np.where(
        is_a[:, None],
        np.c_[level + gap, level - cross_term],
        np.c_[level + cross_term, level - gap],
    )
    proba_true = np.where(is_a, level + gap, level - gap)
    routed_expert = np.argmax(gate_proba, axis=1)
    source_proba = np.full(2 * n_pairs, 1.0 / (2 * n_pairs))
    target_proba = np.where(is_a, target_weight, 1.0 - target_weight) / n_pairs
    cells = np.c_[pair, side].astype(np.float64)

    def cell_proba(distribution):
        if distribution not in ("source", "target"):
            raise ValueError(
                "distribution must be 'source' or 'target'; got "
                f"distribution={distribution!r}."
            )
        return source_proba if distribution == "source" else target_proba

    def sample(
        n_samples, *, distribution="source", random_state=None, return_cells=False
    ):
        weights = cell_proba(distribution)
        rng = check_random_state(random_state)
        cell_index = rng.choice(weights.shape[0], size=n_samples, p=weights)
        y = (rng.uniform(size=n_samples) < proba_true[cell_index]).astype(np.int64)
        if return_cells:
            return cells[cell_index], y, cell_index
        return cells[cell_index], y

    def calibration_error(predicted, *, distribution="source", by=None):
        weights = cell_proba(distribution)
        predicted = np.asarray(predicted, dtype=np.float64)
        keys = predicted[:, None] if by is None else np.c_[by, predicted]
        # predictions equal up to rounding belong to one confidence level
        _, level_index = np.unique(np.round(keys, 12), axis=0, return_inverse=True)
        level_index = level_index.ravel()
        positives = np.bincount(level_index, weights=weights * proba_true)
        predicted_mass = np.bincount(level_index, weights=weights * predicted)
        return float(np.sum(np.abs(positives - predicted_mass)))

    return Bunch(
        cells=cells,
        gate_proba=gate_proba,
        expert_proba=expert_proba,
        proba_true=proba_true,
        mixture_proba=level,
        pair=pair,
        routed_expert=routed_expert,
        routed_proba=expert_proba[np.arange(2 * n_pairs), routed_expert],
        source_proba=source_proba,
        target_proba=target_proba,
        sample=sample,
        calibration_error=calibration_error,
        DESCR=_DESCR,
    )
