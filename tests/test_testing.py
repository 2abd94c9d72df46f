"""Tests of skmoe.testing: exact calibration on finite populations, and the theorem.

The hard-routing theorem (DESIGN.md, item 1) is checked as a property over the
populations and shifts the strategies draw, with exact errors (no sampling): zero
within 1e-12. The soft-routing counterexample is checked on make_routing_shift and
searched for by hypothesis. The sanity tests break the premise and expect the checks
to see miscalibration, so that the property tests can fail.
"""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, find, given, settings
from hypothesis import strategies as st

import skmoe.testing
from skmoe.datasets import make_routing_shift
from skmoe.metrics import expected_calibration_error
from skmoe.testing import (
    calibration_error_exact,
    check_hard_routing_calibrated,
    configuration_groups,
    finite_moe_populations,
    premise_groups,
    shifts_preserving,
)

EXACT = 1e-12
NOTIONS = ["top_label", "canonical"]
# a search stops at its first hit: shrinking would cost tens of seconds for nothing
SEARCH = settings(
    max_examples=2000,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _naive_error(y_proba, proba_true, weights, multiclass, by=None):
    """The exact error by a loop over levels: the reference for the vectorised one."""
    weights = np.asarray(weights) / np.sum(weights)
    if multiclass == "top_label" and y_proba.shape[1] == 2:
        keys = [(round(p[1], 12),) for p in y_proba]
    elif multiclass == "top_label":
        keys = [(round(p.max(), 12),) for p in y_proba]
    else:
        keys = [tuple(np.round(p, 12)) for p in y_proba]
    if by is not None:
        keys = [(key_by, *key) for key_by, key in zip(by, keys, strict=True)]
    error = 0.0
    for level in set(keys):
        cells = [i for i, key in enumerate(keys) if key == level]
        if multiclass == "top_label":
            column = [
                1 if y_proba.shape[1] == 2 else np.argmax(y_proba[i]) for i in cells
            ]
            gap = sum(
                weights[i] * (proba_true[i, c] - y_proba[i, c])
                for i, c in zip(cells, column, strict=True)
            )
            error += abs(gap)
        else:
            gap = sum(weights[i] * (proba_true[i] - y_proba[i]) for i in cells)
            error += 0.5 * np.abs(gap).sum()
    return error


def _routed_error(population, weights, proba_true, multiclass, by=None):
    return calibration_error_exact(
        population.routed_proba, proba_true, weights, by=by, multiclass=multiclass
    )


# -- the exact error -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    population=finite_moe_populations(
        n_cells=st.integers(1, 8), n_classes=st.integers(2, 4)
    ),
    multiclass=st.sampled_from(NOTIONS),
    by_expert=st.booleans(),
)
def test_exact_error_matches_a_loop_over_levels(population, multiclass, by_expert):
    # the mixture's predictions are arbitrary, not calibrated by construction
    for proba in (population.mixture_proba, population.routed_proba):
        by = population.routed_expert if by_expert else None
        expected = _naive_error(
            proba, population.proba_true, population.source_proba, multiclass, by
        )
        error = calibration_error_exact(
            proba,
            population.proba_true,
            population.source_proba,
            by=by,
            multiclass=multiclass,
        )
        assert error == pytest.approx(expected, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    population=finite_moe_populations(n_classes=st.integers(2, 4), routing="soft"),
    n_bins=st.integers(1, 20),
)
def test_binned_error_is_the_population_value_of_the_metric(population, n_bins):
    # a weighted sample that holds every (cell, label) pair with weight
    # P(cell) P(label | cell) is the population itself
    n_cells, n_classes = population.proba_true.shape
    cells = np.repeat(np.arange(n_cells), n_classes)
    labels = np.tile(np.arange(n_classes), n_cells)
    weights = population.source_proba[cells] * population.proba_true.ravel()
    proba = population.mixture_proba[cells]
    expected = expected_calibration_error(
        labels,
        proba,
        n_bins=n_bins,
        sample_weight=weights,
        labels=np.arange(n_classes),
    )
    error = calibration_error_exact(
        population.mixture_proba,
        population.proba_true,
        population.source_proba,
        n_bins=n_bins,
    )
    assert error == pytest.approx(expected, abs=1e-9)


def test_one_dimensional_binary_input_is_p_of_the_positive_class():
    predicted, truth, weights = [0.2, 0.2, 0.9], [0.1, 0.3, 0.6], [1, 1, 2]
    two_columns = np.c_[1 - np.array(predicted), predicted]
    truth_columns = np.c_[1 - np.array(truth), truth]
    for multiclass in NOTIONS:
        assert calibration_error_exact(
            predicted, truth, weights, multiclass=multiclass
        ) == pytest.approx(0.5 * 0.3)
        assert calibration_error_exact(
            two_columns, truth_columns, weights, multiclass=multiclass
        ) == pytest.approx(0.15)


def test_exact_error_agrees_with_make_routing_shift():
    population = make_routing_shift(n_pairs=3, target_weight=0.9)
    for name in ("source", "target"):
        weights = population[f"{name}_proba"]
        for prediction, by in (
            (population.mixture_proba, None),
            (population.routed_proba, population.routed_expert),
        ):
            assert calibration_error_exact(
                prediction, population.proba_true, weights, by=by
            ) == pytest.approx(
                population.calibration_error(prediction, distribution=name, by=by),
                abs=1e-15,
            )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_proba": [[1.0]], "proba_true": [[1.0]], "weights": [1.0]}, "one column"),
        ({"y_proba": [0.5], "proba_true": [0.5, 0.5], "weights": [1]}, "shape of"),
        ({"y_proba": [0.5], "proba_true": [0.5], "weights": [1, 1]}, r"shape \(1,\)"),
        ({"y_proba": [0.5], "proba_true": [0.5], "weights": [-1.0]}, "non-negative"),
        ({"y_proba": [0.5], "proba_true": [0.5], "weights": [0.0]}, "not all zero"),
        (
            {"y_proba": [0.5], "proba_true": [0.5], "weights": [1], "by": [0, 1]},
            "one key per cell",
        ),
        (
            {
                "y_proba": [0.5],
                "proba_true": [0.5],
                "weights": [1],
                "n_bins": 5,
                "multiclass": "canonical",
            },
            "multiclass='top_label'",
        ),
        (
            {"y_proba": [0.5], "proba_true": [0.5], "weights": [1], "n_bins": 0},
            "'n_bins' parameter",
        ),
        # out of [0, 1] and rows off a sum of one gave 0.5 and 0.1
        (
            {"y_proba": [1.2, 0.3], "proba_true": [0.2, 0.3], "weights": [1, 1]},
            r"y_proba must hold probabilities in \[0, 1\]; got y_proba\[0\] = 1.2",
        ),
        (
            {"y_proba": [[0.5, 0.5]], "proba_true": [[0.5, -0.1]], "weights": [1]},
            r"proba_true must hold probabilities .* proba_true\[0\] = \[0.5, -0.1\]",
        ),
        (
            {"y_proba": [[0.5, 0.6]], "proba_true": [[0.5, 0.5]], "weights": [1]},
            r"Each row of y_proba must sum to 1 .* summing to 1.1",
        ),
        (
            {"y_proba": [np.nan], "proba_true": [0.5], "weights": [1]},
            r"y_proba must hold probabilities .* y_proba\[0\] = nan",
        ),
    ],
)
def test_exact_error_rejects_invalid_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        calibration_error_exact(**kwargs)


def test_hard_routing_check_names_missing_population_keys():
    # a bare KeyError 'proba_true' used to surface
    with pytest.raises(ValueError, match=r"population lacks the key\(s\) \['routed_e"):
        check_hard_routing_calibrated({"routed_proba": [0.5]}, [1.0])
    population = make_routing_shift()
    no_target = {"proba_true": population.proba_true}
    with pytest.raises(ValueError, match=r"shift lacks the key\(s\) \['target_p"):
        check_hard_routing_calibrated(population, no_target)


# -- the populations -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    population=finite_moe_populations(
        n_cells=st.integers(1, 8),
        n_experts=st.integers(1, 4),
        n_classes=st.integers(2, 4),
    )
)
def test_hard_populations_are_valid_and_calibrated_on_routed_views(population):
    _assert_valid(population)
    error = _routed_error(
        population,
        population.source_proba,
        population.proba_true,
        "top_label",
        by=population.routed_expert,
    )
    assert error < EXACT


def _assert_valid(population):
    n_cells, n_experts, n_classes = population.expert_proba.shape
    assert population.gate_proba.shape == (n_cells, n_experts)
    assert population.proba_true.shape == (n_cells, n_classes)
    for rows in (
        population.gate_proba,
        population.proba_true,
        population.expert_proba.reshape(-1, n_classes),
        population.mixture_proba,
    ):
        assert np.all(rows >= 0)
        np.testing.assert_allclose(rows.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(population.source_proba > 0)
    assert population.source_proba.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(
        population.routed_expert, np.argmax(population.gate_proba, axis=1)
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    routing=st.sampled_from(["hard", "soft"]),
    calibration=st.sampled_from(NOTIONS),
)
def test_every_expert_is_calibrated_on_its_view(data, routing, calibration):
    population = data.draw(
        finite_moe_populations(
            n_classes=st.integers(2, 4), routing=routing, calibration=calibration
        )
    )
    _assert_valid(population)
    n_experts = population.gate_proba.shape[1]
    for expert in range(n_experts):
        if routing == "hard":
            view = population.source_proba * (population.routed_expert == expert)
        else:
            view = population.source_proba * population.gate_proba[:, expert]
        if view.sum() == 0:
            continue
        # canonical calibration implies top-label calibration: check both
        notions = NOTIONS if calibration == "canonical" else ["top_label"]
        for notion in notions:
            error = calibration_error_exact(
                population.expert_proba[:, expert],
                population.proba_true,
                view,
                multiclass=notion,
            )
            assert error < EXACT, (expert, notion)


def test_populations_cover_the_general_case():
    """Groups hold cells whose P(Y | cell) differ from each other and from the
    prediction, and under top-label calibration cells of one group predict
    different classes: the experts are calibrated on their views only."""
    population = find(
        finite_moe_populations(n_cells=6, n_experts=2, n_classes=3),
        lambda population: _has_mixed_group(population),
        settings=SEARCH,
        random=random.Random(0),
    )
    assert _has_mixed_group(population)


def _has_mixed_group(population):
    group = premise_groups(population)
    predicted = np.argmax(population.routed_proba, axis=1)
    for label in np.unique(group):
        cells = group == label
        hit = population.proba_true[cells, predicted[cells]]
        if np.unique(predicted[cells]).size > 1 and np.ptp(hit) > 0.1:
            return True
    return False


def test_strategy_arguments_are_checked():
    with pytest.raises(ValueError, match="n_classes must be between 2"):
        finite_moe_populations(n_classes=1)
    with pytest.raises(TypeError, match="n_cells must be an int"):
        finite_moe_populations(n_cells=2.5)
    with pytest.raises(ValueError, match="routing must be one of"):
        finite_moe_populations(routing="topk")
    population = make_routing_shift()
    with pytest.raises(ValueError, match="given must be one of"):
        shifts_preserving(population, given="cell")


# -- the theorem: hard routing survives every shift that keeps its premise -----------


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    calibration=st.sampled_from(NOTIONS),
    keep_proba_true=st.booleans(),
)
def test_hard_routing_stays_calibrated_under_premise_preserving_shifts(
    data, calibration, keep_proba_true
):
    population = data.draw(
        finite_moe_populations(
            n_cells=st.integers(1, 10),
            n_experts=st.integers(1, 4),
            n_classes=st.integers(2, 4),
            calibration=calibration,
        ),
        label="population",
    )
    shift = data.draw(
        shifts_preserving(population, keep_proba_true=keep_proba_true),
        label="shift",
    )
    assert np.all(shift.target_proba >= 0)
    assert shift.target_proba.sum() == pytest.approx(1.0)
    if keep_proba_true:
        np.testing.assert_array_equal(shift.proba_true, population.proba_true)
    np.testing.assert_allclose(shift.proba_true.sum(axis=1), 1.0)
    for notion in NOTIONS if calibration == "canonical" else ["top_label"]:
        source = _routed_error(
            population, population.source_proba, population.proba_true, notion
        )
        target = _routed_error(population, shift.target_proba, shift.proba_true, notion)
        assert source < EXACT
        assert target < EXACT
        # and so is every expert on its routed view of the target
        per_expert = _routed_error(
            population,
            shift.target_proba,
            shift.proba_true,
            notion,
            by=population.routed_expert,
        )
        assert per_expert < EXACT
    report = check_hard_routing_calibrated(population, shift, multiclass=calibration)
    assert report.premise_holds and report.premise_gap < EXACT


def test_premise_preserving_shifts_move_more_than_cell_weights():
    """The drawn shifts change the experts' frequencies and, inside a group,
    reweight cells whose P(Y | cell) differ, with the group's statistic kept."""

    @st.composite
    def cases(draw):
        population = draw(finite_moe_populations(n_cells=6, n_experts=2))
        return population, draw(shifts_preserving(population))

    def moves_a_mixed_group_and_the_experts(case):
        population, shift = case
        group = premise_groups(population)
        source_share = np.bincount(
            population.routed_expert, population.source_proba, minlength=2
        )
        target_share = np.bincount(
            population.routed_expert, shift.target_proba, minlength=2
        )
        for label in np.unique(group):
            cells = group == label
            truth = population.proba_true[cells, 1]
            relative = shift.target_proba[cells] / max(
                shift.target_proba[cells].sum(), 1e-300
            )
            source = (
                population.source_proba[cells] / population.source_proba[cells].sum()
            )
            if (
                np.ptp(truth) > 0.1
                and np.abs(relative - source).max() > 0.1
                and np.abs(target_share - source_share).max() > 0.2
            ):
                return True
        return False

    population, shift = find(
        cases(),
        moves_a_mixed_group_and_the_experts,
        settings=SEARCH,
        random=random.Random(0),
    )
    assert check_hard_routing_calibrated(population, shift).target_error < EXACT


# -- soft routing: calibrated experts, P(Y | configuration) kept, and still broken ---


@pytest.mark.parametrize("target_weight", [0.0, 0.3, 0.8, 1.0])
def test_soft_routing_breaks_where_hard_routing_holds(target_weight):
    population = make_routing_shift(n_pairs=3, target_weight=target_weight)
    shift = population.target_proba
    # the shift keeps P(Y | configuration): every cell is its own configuration and
    # P(Y | cell) does not change
    assert np.unique(configuration_groups(population)).size == 6
    # hard routing: the premise holds and so does calibration
    report = check_hard_routing_calibrated(population, shift)
    assert report.premise_holds and report.target_error < EXACT
    # soft routing: calibrated on the source, not on the target
    soft = [
        calibration_error_exact(
            population.mixture_proba, population.proba_true, weights
        )
        for weights in (population.source_proba, shift)
    ]
    assert soft[0] < EXACT
    assert soft[1] == pytest.approx(0.15 * abs(2 * target_weight - 1))
    assert soft[1] > 0.01


@settings(max_examples=40, deadline=None)
@given(data=st.data(), given_groups=st.sampled_from(["routed", "configuration"]))
def test_every_shift_of_make_routing_shift_keeps_hard_and_breaks_soft(
    data, given_groups
):
    # every cell of make_routing_shift is its own group under either premise, so
    # the strategy draws every reweighting of the cells; the soft mixture's error
    # is then gap * sum_j |t(A_j) - t(B_j)|, zero only for balanced pairs
    population = make_routing_shift(n_pairs=3, gap=0.1, gate_weight=0.7)
    shift = data.draw(shifts_preserving(population, given=given_groups))
    report = check_hard_routing_calibrated(population, shift)
    assert report.target_error < EXACT
    soft = calibration_error_exact(
        population.mixture_proba, shift.proba_true, shift.target_proba
    )
    pairs = shift.target_proba.reshape(3, 2)
    assert soft == pytest.approx(0.1 * np.abs(pairs[:, 0] - pairs[:, 1]).sum())


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_configuration_preserving_shifts_keep_p_y_given_configuration(data):
    population = data.draw(
        finite_moe_populations(n_classes=st.integers(2, 3), routing="soft")
    )
    shift = data.draw(
        shifts_preserving(
            population, given="configuration", keep_proba_true=data.draw(st.booleans())
        )
    )
    group = configuration_groups(population)
    for label in np.unique(group):
        cells = group == label
        target_mass = shift.target_proba[cells].sum()
        if target_mass == 0:
            continue
        source = population.source_proba[cells] @ population.proba_true[cells]
        target = shift.target_proba[cells] @ shift.proba_true[cells]
        # P_T(Y | configuration) = P_S(Y | configuration), multiplied out: a
        # configuration of mass 5e-324 has no conditional probability to compare
        np.testing.assert_allclose(
            target,
            target_mass * source / population.source_proba[cells].sum(),
            rtol=0,
            atol=EXACT,
        )


@settings(max_examples=60, deadline=None)
@given(
    population=finite_moe_populations(
        n_classes=st.integers(2, 4), routing="soft", calibration="canonical"
    )
)
def test_weighted_view_calibration_ties_disagreement_to_the_mixture(population):
    """With every expert calibrated on its gate-weighted view,
    sum_i P(i) sum_k r_k ||p_k - f||^2 = sum_i P(i) <f, P(Y | i) - f>: the
    disagreement of the experts equals a calibration moment of the mixture f,
    which is zero when f is calibrated. So a calibrated soft mixture of such
    experts has experts that agree with it wherever the gate gives them weight."""
    weights = population.source_proba
    gap = population.expert_proba - population.mixture_proba[:, None, :]
    disagreement = np.einsum("i,ik,ikc,ikc->", weights, population.gate_proba, gap, gap)
    moment = np.einsum(
        "i,ic,ic->",
        weights,
        population.mixture_proba,
        population.proba_true - population.mixture_proba,
    )
    assert disagreement == pytest.approx(moment, abs=1e-12)


def test_exact_soft_counterexample_with_weighted_view_calibrated_experts():
    """A calibrated soft mixture of experts calibrated on their gate-weighted
    views, broken by a shift that keeps P(Y | configuration). As the identity
    above demands, its experts agree: only the gate tells the cells apart."""
    proba_true = np.array([0.2, 0.4, 0.9])
    gate = np.array([0.6, 0.2, 0.5])  # sum_i r_0(i) (P(Y=1|i) - 0.5) = 0
    population = {
        "source_proba": np.full(3, 1 / 3),
        "gate_proba": np.c_[gate, 1 - gate],
        "expert_proba": np.full((3, 2), 0.5),
        "proba_true": proba_true,
    }
    for expert in range(2):
        view = population["source_proba"] * population["gate_proba"][:, expert]
        assert (
            calibration_error_exact(
                population["expert_proba"][:, expert], proba_true, view
            )
            < EXACT
        )
    mixture = np.full(3, 0.5)
    source_error = calibration_error_exact(
        mixture, proba_true, population["source_proba"]
    )
    assert source_error < EXACT
    assert np.unique(configuration_groups(population)).size == 3
    target = np.array([0.5, 0.5, 0.0])
    assert calibration_error_exact(mixture, proba_true, target) == pytest.approx(0.2)
    # the mixture is the hard-routed model, whose experts are not calibrated on
    # their routed views: the break lies outside the hard-routing theorem
    population["routed_expert"] = np.argmax(population["gate_proba"], axis=1)
    population["routed_proba"] = mixture
    with pytest.raises(AssertionError, match="routed_view_error=0.0667"):
        check_hard_routing_calibrated(population, target)


def test_hypothesis_finds_soft_mixtures_that_a_shift_breaks():
    """Experts calibrated on their gate-weighted views, a shift that keeps
    P(Y | configuration), and the soft mixture's error grows by at least 0.05;
    under hard routing's premise no such growth exists (the property above)."""

    @st.composite
    def cases(draw):
        population = draw(
            finite_moe_populations(
                n_cells=st.integers(2, 6),
                n_experts=st.integers(2, 3),
                routing="soft",
                calibration="canonical",
            )
        )
        return population, draw(shifts_preserving(population, given="configuration"))

    def soft_errors(case):
        population, shift = case
        return [
            calibration_error_exact(
                population.mixture_proba, truth, weights, multiclass="canonical"
            )
            for weights, truth in (
                (population.source_proba, population.proba_true),
                (shift.target_proba, shift.proba_true),
            )
        ]

    population, shift = find(
        cases(),
        lambda case: soft_errors(case)[1] >= soft_errors(case)[0] + 0.05,
        settings=SEARCH,
        random=random.Random(0),
    )
    for expert in range(population.gate_proba.shape[1]):
        view = population.source_proba * population.gate_proba[:, expert]
        assert (
            calibration_error_exact(
                population.expert_proba[:, expert],
                population.proba_true,
                view,
                multiclass="canonical",
            )
            < EXACT
        )
    source, target = soft_errors((population, shift))
    assert target >= source + 0.05


# -- sanity: a broken premise is seen ------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    population=finite_moe_populations(
        n_cells=st.integers(2, 8), n_classes=st.integers(2, 4)
    )
)
def test_a_shift_that_breaks_the_premise_breaks_calibration(population):
    # put all the target mass on the one cell whose P(Y | cell) is furthest from its
    # expert's confidence: P(Y | expert, confidence) becomes that cell's, and the
    # error becomes that distance. (Choosing by the spread within a group is not
    # enough: a group whose source mass sits on its highest cell is calibrated there
    # to within its tiny remaining mass.)
    n_cells = population.proba_true.shape[0]
    if population.proba_true.shape[1] == 2:
        hit = population.proba_true[:, 1]
        confidence = population.routed_proba[:, 1]
    else:
        predicted = np.argmax(population.routed_proba, axis=1)
        hit = population.proba_true[np.arange(n_cells), predicted]
        confidence = population.routed_proba[np.arange(n_cells), predicted]
    distance = np.abs(hit - confidence)
    assume(distance.max() > 1e-3)
    target = np.zeros(n_cells)
    target[np.argmax(distance)] = 1.0
    error = _routed_error(population, target, population.proba_true, "top_label")
    assert error > 0.5 * distance.max()
    with pytest.raises(AssertionError, match="premise of the hard-routing theorem"):
        check_hard_routing_calibrated(population, target)
    with pytest.raises(AssertionError, match="miscalibrated on the target"):
        check_hard_routing_calibrated(population, target, require_premise=False)


def test_check_sees_experts_miscalibrated_on_their_routed_views():
    population = make_routing_shift()
    # the soft mixture is calibrated on the source but not per routed expert
    broken = dict(population, routed_proba=population.mixture_proba)
    with pytest.raises(AssertionError, match="routed_view_error=0.15"):
        check_hard_routing_calibrated(broken, population.source_proba)
    report = check_hard_routing_calibrated(
        broken, population.source_proba, require_premise=False
    )
    assert not report.premise_holds and report.target_error < EXACT


def test_shift_reaching_a_group_without_source_mass_breaks_the_premise():
    population = make_routing_shift(n_pairs=1)
    population.source_proba = np.array([1.0, 0.0])
    report = check_hard_routing_calibrated(
        population, [0.0, 1.0], require_premise=False
    )
    assert report.premise_gap == np.inf and not report.premise_holds


def test_public_names_resolve_and_are_documented():
    for name in skmoe.testing.__all__:
        function = getattr(skmoe.testing, name)
        assert "Examples" in function.__doc__


def test_importing_skmoe_testing_does_not_import_hypothesis():
    import subprocess
    import sys

    code = (
        "import sys, skmoe, skmoe.testing; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
