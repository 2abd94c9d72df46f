"""Hypothesis strategies for finite mixture-of-experts populations and their shifts.

:func:`finite_moe_populations` draws a finite set of input cells with gate weights,
true label distributions and experts calibrated on their routed (hard) or weighted
(soft) views; :func:`shifts_preserving` draws target distributions that keep the
hard-routing theorem's premise. hypothesis is imported when a strategy is built, so
that importing :mod:`skmoe.testing` needs only the core dependencies.
"""

from numbers import Integral

import numpy as np
from sklearn.utils import Bunch

from skmoe.testing._checks import (
    _class_proba,
    _group_statistic,
    _hit_proba,
    _levels,
    configuration_groups,
    premise_groups,
)

# A group whose confidence is this close to 1 / n_classes (but not equal) cannot
# carry a strict argmax in floating point; such draws are rejected.
_TIE_MARGIN = 1e-9


def _hypothesis():
    try:
        import hypothesis
        import hypothesis.strategies
    except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
        raise ImportError(
            "The strategies of skmoe.testing need hypothesis; install it with "
            'pip install "skmoe[test]".'
        ) from exc
    return hypothesis


def _as_strategy(value, name, low, high):
    """An int becomes a constant strategy, a strategy is kept, anything else fails."""
    strategies = _hypothesis().strategies
    if isinstance(value, Integral) and not isinstance(value, bool):
        if not low <= value <= high:
            raise ValueError(
                f"{name} must be between {low} and {high}; got {name}={value!r}."
            )
        return strategies.just(int(value))
    if isinstance(value, strategies.SearchStrategy):
        return value
    raise TypeError(
        f"{name} must be an int or a hypothesis strategy of ints; got {value!r}."
    )


def _check_option(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}; got {value!r}.")


def _simplex(draw, shape):
    """Rows on the probability simplex, with exact zeros and ties allowed.

    Each row is a vector of floats in [0, 1] divided by its sum; an all-zero row
    becomes uniform. This reaches every point of the simplex, including vertices
    (deterministic labels) and the uniform point, which hypothesis tries early.
    """
    strategies = _hypothesis().strategies
    size = int(np.prod(shape))
    raw = np.array(
        draw(
            strategies.lists(strategies.floats(0.0, 1.0), min_size=size, max_size=size)
        ),
        dtype=np.float64,
    ).reshape(shape)
    total = raw.sum(axis=-1, keepdims=True)
    uniform = np.full(shape, 1.0 / shape[-1])
    return np.where(total > 0, raw / np.where(total > 0, total, 1.0), uniform)


def _top_label_prediction(draw, confidence, selected, n_classes):
    """A probability vector whose largest entry is ``confidence``, at ``selected``.

    The other entries share ``1 - confidence`` in drawn proportions, pulled towards
    uniform just enough to stay strictly below ``confidence`` (only the top entry
    matters for top-label calibration).
    """
    rest = 1.0 - confidence
    others = _simplex(draw, (n_classes - 1,))
    uniform = 1.0 / (n_classes - 1)
    spread = others.max() - uniform
    if rest > 0 and spread > 0:
        # strictly below confidence: rest * uniform < confidence as confidence > 1/C
        pull = min(1.0, 0.5 * (confidence / rest - uniform) / spread)
        others = uniform + pull * (others - uniform)
    prediction = np.insert(rest * others, selected, confidence)
    return prediction


def _calibrate_view(draw, view, proba_true, calibration):
    """Predictions of one expert, calibrated on the cells of ``view`` weighted by it.

    ``view`` holds each cell's weight in the expert's view (``P(cell)`` on its
    routed cells for hard routing, ``P(cell) r_k(cell)`` for soft routing, zero
    outside). The view's cells are split into drawn groups; within a group the
    prediction is the group's conditional probability: the mean ``P(Y | cell)``
    (canonical, and always with two classes) or, for top-label, the mean true
    probability of each cell's drawn predicted class as the confidence shared by
    the group. Cells outside the view get arbitrary predictions.
    """
    strategies = _hypothesis().strategies
    n_cells, n_classes = proba_true.shape
    prediction = _simplex(draw, (n_cells, n_classes))
    members = np.flatnonzero(view > 0)
    if members.size == 0:
        return prediction
    n_groups = draw(strategies.integers(1, members.size))
    group = np.array(
        draw(
            strategies.lists(
                strategies.integers(0, n_groups - 1),
                min_size=members.size,
                max_size=members.size,
            )
        )
    )
    for label in np.unique(group):
        cells = members[group == label]
        weights = view[cells] / view[cells].sum()
        if calibration == "canonical" or n_classes == 2:
            prediction[cells] = weights @ proba_true[cells]
            continue
        selected = np.array(
            draw(
                strategies.lists(
                    strategies.integers(0, n_classes - 1),
                    min_size=cells.size,
                    max_size=cells.size,
                )
            )
        )
        confidence = weights @ proba_true[cells, selected]
        if confidence <= 1.0 / n_classes + _TIE_MARGIN:
            # a drawn class too unlikely to be the top class: predict each cell's
            # most likely class, whose mean probability is at least 1 / C
            selected = np.argmax(proba_true[cells], axis=1)
            confidence = weights @ proba_true[cells, selected]
        if confidence == 1.0 / n_classes:  # every P(Y | cell) uniform
            prediction[cells] = 1.0 / n_classes
            continue
        _hypothesis().assume(confidence > 1.0 / n_classes + _TIE_MARGIN)
        for cell, chosen in zip(cells, selected, strict=True):
            prediction[cell] = _top_label_prediction(
                draw, confidence, chosen, n_classes
            )
    return prediction


def finite_moe_populations(
    n_cells=None,
    n_experts=None,
    n_classes=2,
    *,
    routing="hard",
    calibration="top_label",
):
    """Strategy for finite populations whose experts are calibrated on their views.

    A population is a finite set of input cells. Each cell has a probability
    ``P(cell)``, gate weights ``r_k(cell)``, a true label distribution
    ``P(Y | cell)`` and a class distribution ``p_k(cell)`` from every expert. The
    draw is built so that every expert is calibrated on its view:

    1. ``P(cell)`` (positive), ``r(cell)`` and ``P(Y | cell)`` are drawn freely
       (exact zeros, deterministic labels and ties included).
    2. The view of expert ``k`` weighs cell ``i`` by ``P(i)`` if the gate routes
       ``i`` to ``k`` (``argmax_k r_k``, the first on ties) under
       ``routing="hard"``, by ``P(i) r_k(i)`` under ``routing="soft"``.
    3. The cells of each view are split into drawn groups, and the expert's
       prediction in a group is the group's conditional probability under the
       view: with ``calibration="canonical"`` (and always for two classes) the
       mean ``P(Y | cell)``, shared by the group's cells; with ``"top_label"`` each
       cell gets a drawn predicted class, and the group shares as confidence the
       mean true probability of those classes (the other entries are drawn below
       it). A drawn class too unlikely to be the top one falls back to the cell's
       most likely class.
    4. Predictions of an expert on cells outside its view are arbitrary.

    So within a group the true probabilities may differ from cell to cell and
    from the prediction: an expert is calibrated on its view, not on each cell,
    and under top-label calibration cells of one group may even predict
    different classes. Every population whose experts are calibrated on their
    views arises this way (take the groups to be the confidence levels), except
    that under top-label calibration the entries below the top one are kept at a
    margin from it, and a group whose confidence lies within 1e-9 of
    ``1 / n_classes`` (without equalling it) is rejected: no strict argmax there.

    Parameters
    ----------
    n_cells : int or strategy, default=None
        Number of cells; by default drawn from 1 to 8.
    n_experts : int or strategy, default=None
        Number of experts; by default drawn from 1 to 4.
    n_classes : int or strategy, default=2
        Number of classes, at least two.
    routing : {"hard", "soft"}, default="hard"
        The view on which each expert is calibrated.
    calibration : {"top_label", "canonical"}, default="top_label"
        The notion of calibration, as in :func:`calibration_error_exact`. For two
        classes both are calibration of ``P(Y = 1)``. Canonical calibration implies
        top-label calibration.

    Returns
    -------
    strategy : hypothesis strategy of :class:`~sklearn.utils.Bunch`
        Each drawn population has, with ``n_cells`` cells, ``n_experts`` experts
        and ``n_classes`` classes:

        source_proba : ndarray of shape (n_cells,)
            ``P(cell)``, positive, summing to one.
        gate_proba : ndarray of shape (n_cells, n_experts)
            Gate weights ``r_k(cell)``; rows sum to one.
        expert_proba : ndarray of shape (n_cells, n_experts, n_classes)
            ``p_k(Y | cell)``.
        proba_true : ndarray of shape (n_cells, n_classes)
            ``P(Y | cell)``.
        routed_expert : ndarray of shape (n_cells,)
            ``argmax_k r_k(cell)``.
        routed_proba : ndarray of shape (n_cells, n_classes)
            The hard-routed prediction, ``p_k`` of the routed expert.
        mixture_proba : ndarray of shape (n_cells, n_classes)
            The soft mixture ``sum_k r_k p_k``.
        routing, calibration : str
            The arguments the population was drawn with.

    See Also
    --------
    shifts_preserving : shifts of a population that keep the premise of the
        hard-routing theorem.
    skmoe.datasets.make_routing_shift : a fixed population on which soft routing
        loses calibration.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from skmoe.testing import calibration_error_exact, finite_moe_populations
    >>> @settings(max_examples=20, deadline=None)
    ... @given(finite_moe_populations(n_classes=3))
    ... def test_experts_are_calibrated_on_their_routed_views(population):
    ...     error = calibration_error_exact(
    ...         population.routed_proba, population.proba_true,
    ...         population.source_proba, by=population.routed_expert)
    ...     assert error < 1e-12
    >>> test_experts_are_calibrated_on_their_routed_views()
    """
    hypothesis = _hypothesis()
    strategies = hypothesis.strategies
    n_cells = _as_strategy(
        strategies.integers(1, 8) if n_cells is None else n_cells, "n_cells", 1, 10**4
    )
    n_experts = _as_strategy(
        strategies.integers(1, 4) if n_experts is None else n_experts,
        "n_experts",
        1,
        10**3,
    )
    n_classes = _as_strategy(n_classes, "n_classes", 2, 10**3)
    _check_option(routing, "routing", {"hard", "soft"})
    _check_option(calibration, "calibration", {"top_label", "canonical"})

    @strategies.composite
    def populations(draw):
        size = draw(n_cells)
        width = draw(n_experts)
        classes = draw(n_classes)
        if not (size >= 1 and width >= 1 and classes >= 2):
            raise ValueError(
                "The strategies must draw n_cells >= 1, n_experts >= 1 and "
                f"n_classes >= 2; got {size}, {width} and {classes}."
            )
        mass = np.array(
            draw(
                strategies.lists(
                    strategies.floats(1e-3, 1.0), min_size=size, max_size=size
                )
            )
        )
        source_proba = mass / mass.sum()
        gate_proba = _simplex(draw, (size, width))
        proba_true = _simplex(draw, (size, classes))
        routed_expert = np.argmax(gate_proba, axis=1)
        expert_proba = np.empty((size, width, classes))
        for expert in range(width):
            if routing == "hard":
                view = np.where(routed_expert == expert, source_proba, 0.0)
            else:
                view = source_proba * gate_proba[:, expert]
            expert_proba[:, expert] = _calibrate_view(
                draw, view, proba_true, calibration
            )
        return Bunch(
            source_proba=source_proba,
            gate_proba=gate_proba,
            expert_proba=expert_proba,
            proba_true=proba_true,
            routed_expert=routed_expert,
            routed_proba=expert_proba[np.arange(size), routed_expert],
            mixture_proba=np.einsum("ik,ikc->ic", gate_proba, expert_proba),
            routing=routing,
            calibration=calibration,
        )

    return populations()


def _null_space(matrix):
    """Orthonormal basis of the null space of ``matrix`` (columns), by SVD."""
    _, singular, vt = np.linalg.svd(matrix)
    tolerance = max(matrix.shape) * np.finfo(np.float64).eps * max(singular.max(), 1)
    rank = int(np.sum(singular > tolerance))
    return vt[rank:].T


def _reweight_group(draw, weights, residual):
    """A distribution over a group's cells with the same mean ``residual`` (zero).

    The target distributions that keep ``sum_i t_i residual_i = 0`` form a
    polytope that contains the source ``weights``. Every point of it is
    ``weights + s z`` for a direction ``z`` in the null space of the constraints
    (with ``sum_i z_i = 0``) and a step ``s`` up to where a cell's weight reaches
    zero; both are drawn, so the draw reaches the whole polytope, its faces
    (cells dropped) and vertices included.
    """
    strategies = _hypothesis().strategies
    constraints = np.vstack([residual.T, np.ones(weights.size)])
    basis = _null_space(constraints)
    if basis.shape[1] == 0:
        return weights
    coefficients = np.array(
        draw(
            strategies.lists(
                strategies.floats(-1.0, 1.0),
                min_size=basis.shape[1],
                max_size=basis.shape[1],
            )
        )
    )
    direction = basis @ coefficients
    decreasing = direction < -1e-15
    if not decreasing.any():
        return weights
    longest = np.min(weights[decreasing] / -direction[decreasing])
    step = draw(strategies.floats(0.0, 1.0)) * longest
    target = weights + step * direction
    # the cell that reaches the boundary is zero, not -1e-17
    return np.clip(target, 0.0, None) / np.clip(target, 0.0, None).sum()


def _relabel_group(draw, hit_mass, cells, selected, n_classes, calibration):
    """Target masses ``m[i, y]`` of a group's cells and labels with fixed statistic.

    Canonical: the group's mass of each class ``y`` (``hit_mass[y]``) is spread
    over its cells in drawn proportions. Top-label: the mass of "label = the cell's
    predicted class" (``hit_mass[0]``) is spread over the cells, and the remaining
    mass over the pairs (cell, other class). Every joint distribution with the
    group's statistic arises this way.
    """
    masses = np.zeros((cells.size, n_classes))
    if calibration == "canonical":
        shares = _simplex(draw, (n_classes, cells.size))
        return shares.T * hit_mass
    shares = _simplex(draw, (cells.size,))
    masses[np.arange(cells.size), selected] = hit_mass[0] * shares
    others = _simplex(draw, (cells.size * (n_classes - 1),)).reshape(
        cells.size, n_classes - 1
    )
    other_mass = np.insert(others, 0, 0.0, axis=1)
    # move the zero column to the selected class of each cell
    for row, chosen in enumerate(selected):
        other_mass[row] = np.roll(other_mass[row], chosen)
    return masses + hit_mass[1] * other_mass


def shifts_preserving(
    population, *, given="routed", keep_proba_true=True, calibration=None
):
    """Strategy for shifts that keep ``P(Y | selected expert, its confidence)`` fixed.

    The cells of the population are grouped by (routed expert, confidence level of
    its prediction); the hard-routing theorem needs exactly that the target keeps,
    in every group it reaches, the source's distribution of the label relative to
    the prediction: the probability that the label is the predicted class
    (top-label), or the whole label distribution (canonical). Drawn shifts:

    1. give each group an arbitrary target mass (zero included: experts and
       confidence levels may disappear or dominate);
    2. within a group, with ``keep_proba_true=True`` (covariate shift: cells are
       inputs and ``P(Y | cell)`` stays), reweight the cells anywhere in the
       polytope of distributions with the source's group statistic: the source
       weights moved along a drawn direction of the constraints' null space by a
       drawn step, up to dropping cells. Cells whose ``P(Y | cell)`` differ from
       the group's statistic can thus change weight as long as they balance;
       cells that share the statistic move freely.
    3. With ``keep_proba_true=False`` the label distribution inside a cell may
       change too: the group's joint mass over (cell, label) is drawn freely
       under the statistic's constraint, so a cell can become more or less
       likely to carry its predicted class, provided other cells compensate.

    Every target with the premise arises from step 1 and 2 (or 3). Groups of the
    target have positive source mass.

    With ``given="configuration"`` the groups are the cells' whole gate/expert
    configurations (gate weights and every expert's probabilities, equal to 12
    decimals) and the whole label distribution is kept in each: the shifts under
    which the soft-routing counterexample is stated.

    Parameters
    ----------
    population : dict
        A population as drawn by :func:`finite_moe_populations`, or as returned by
        :func:`skmoe.datasets.make_routing_shift`.
    given : {"routed", "configuration"}, default="routed"
        What the kept label distribution is conditional on: the routed expert and
        its confidence level (hard routing's premise), or the configuration.
    keep_proba_true : bool, default=True
        Keep ``P(Y | cell)``; otherwise draw a target one as well.
    calibration : {"top_label", "canonical"}, default=None
        The statistic kept with ``given="routed"``, as in
        :func:`calibration_error_exact`; by default the population's
        ``calibration``, or ``"top_label"``. ``given="configuration"`` keeps the
        whole label distribution.

    Returns
    -------
    strategy : hypothesis strategy of :class:`~sklearn.utils.Bunch`
        With ``target_proba`` (the target ``P(cell)``, shape ``(n_cells,)``) and
        ``proba_true`` (the target ``P(Y | cell)``, shape
        ``(n_cells, n_classes)``; the population's when ``keep_proba_true``).

    See Also
    --------
    check_hard_routing_calibrated : checks the theorem on a population and a shift.

    Examples
    --------
    >>> from hypothesis import given, settings, strategies as st
    >>> from skmoe.testing import (
    ...     check_hard_routing_calibrated, finite_moe_populations, shifts_preserving)
    >>> @settings(max_examples=20, deadline=None)
    ... @given(st.data())
    ... def test_hard_routing_survives_the_shift(data):
    ...     population = data.draw(finite_moe_populations(n_classes=3))
    ...     shift = data.draw(shifts_preserving(population, keep_proba_true=False))
    ...     check_hard_routing_calibrated(population, shift)
    >>> test_hard_routing_survives_the_shift()
    """
    strategies = _hypothesis().strategies
    _check_option(given, "given", {"routed", "configuration"})
    if given == "configuration":
        calibration = "canonical"
    elif calibration is None:
        calibration = population.get("calibration", "top_label")
    _check_option(calibration, "calibration", {"top_label", "canonical"})
    routed_proba = _class_proba(population["routed_proba"], "routed_proba")
    proba_true = _class_proba(population["proba_true"], "proba_true")
    source = np.asarray(population["source_proba"], dtype=np.float64)
    source = source / source.sum()
    n_cells, n_classes = proba_true.shape
    if given == "configuration":
        group = configuration_groups(population)
    else:
        group = premise_groups(population, multiclass=calibration)
    hit = _hit_proba(proba_true, routed_proba, calibration)
    statistic, group_mass = _group_statistic(group, source, hit)
    if calibration == "top_label" and n_classes > 2:
        _, selected, _ = _levels(routed_proba, None, "top_label", None)
    else:
        selected = np.ones(n_cells, dtype=np.intp)

    @strategies.composite
    def shifts(draw):
        reachable = np.flatnonzero(group_mass > 0)
        mass = np.zeros(group_mass.size)
        mass[reachable] = _simplex(draw, (reachable.size,))
        if draw(strategies.booleans()):
            # a draw that keeps the source's group masses, so that the within-group
            # moves are tried on their own
            mass = group_mass
        target_proba = np.zeros(n_cells)
        target_true = proba_true.copy()
        for label in reachable:
            cells = np.flatnonzero(group == label)
            weights = source[cells] / group_mass[label]
            if keep_proba_true:
                residual = hit[cells] - statistic[label]
                target_proba[cells] = mass[label] * _reweight_group(
                    draw, weights, residual
                )
                continue
            if calibration == "canonical" or n_classes == 2:
                class_stat = (
                    statistic[label]
                    if calibration == "canonical"
                    else np.r_[1.0 - statistic[label, 0], statistic[label, 0]]
                )
                joint = _relabel_group(
                    draw, class_stat, cells, None, n_classes, "canonical"
                )
            else:
                joint = _relabel_group(
                    draw,
                    np.r_[statistic[label, 0], 1.0 - statistic[label, 0]],
                    cells,
                    selected[cells],
                    n_classes,
                    "top_label",
                )
            cell_mass = joint.sum(axis=1)
            kept = cell_mass > 0
            target_true[cells[kept]] = joint[kept] / cell_mass[kept, None]
            target_proba[cells] = mass[label] * cell_mass
        return Bunch(target_proba=target_proba, proba_true=target_true)

    return shifts()
