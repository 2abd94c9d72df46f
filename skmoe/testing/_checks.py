"""Exact calibration errors and the hard-routing check on finite populations.

A finite population lists, per input cell, its probability, the true ``P(Y | cell)``
and a model's prediction, so a calibration error is a finite sum with no sampling
error. :func:`calibration_error_exact` computes it;
:func:`check_hard_routing_calibrated` uses it to check the hard-routing theorem
(DESIGN.md, item 1) on a population and a shift. Nothing here imports hypothesis.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

# Predictions equal to this many decimals share a confidence level: a level computed
# twice (once per cell) may differ in its last bits.
LEVEL_DECIMALS = 12

# Largest tolerated deviation of a probability row's sum from one (as in skmoe.metrics).
_SUM_TOLERANCE = 1e-5


def _class_proba(proba, name):
    """Return ``proba`` as an (n_cells, n_classes) matrix.

    A 1-D array is ``P(Y = 1)`` of a binary problem, the convention of
    :func:`skmoe.datasets.make_routing_shift` and of :mod:`skmoe.metrics`.
    """
    proba = given = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.c_[1.0 - proba, proba]
    elif proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(
            f"{name} must be a 1-D array of P(Y = 1) or a matrix with one column per "
            f"class (at least two); got an array of shape {proba.shape}."
        )
    # the same checks as skmoe.metrics: a "probability" of 1.2 gives a finite,
    # meaningless error
    invalid = ~((proba >= 0.0) & (proba <= 1.0)).all(axis=1)
    if invalid.any():
        row = int(np.argmax(invalid))
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; got {name}[{row}] = "
            f"{given[row].tolist()!r}."
        )
    sum_error = np.abs(proba.sum(axis=1) - 1.0)
    if sum_error.max(initial=0.0) > _SUM_TOLERANCE:
        row = int(np.argmax(sum_error))
        raise ValueError(
            f"Each row of {name} must sum to 1 (within {_SUM_TOLERANCE:g}); got "
            f"{name}[{row}] = {proba[row].tolist()!r}, summing to "
            f"{proba[row].sum():.6g}."
        )
    return proba


def _require_keys(mapping, keys, name):
    """Raise a ValueError naming ``name`` and the keys it lacks."""
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise ValueError(
            f"{name} lacks the key(s) {missing!r}; it needs {list(keys)!r}, as drawn "
            "by finite_moe_populations or returned by make_routing_shift. Got "
            f"keys {sorted(mapping)!r}."
        )


def _levels(proba, by, multiclass, n_bins):
    """Group index of every cell, the statistic compared, and the predicted value.

    Returns ``(level, outcome, predicted)`` where, within a level, the weighted means
    of ``outcome`` (a function of ``P(Y | cell)`` given later) and of ``predicted``
    must agree for calibration. ``outcome`` is a column selector: the class whose
    probability is compared (top-label on three or more classes) or None (all
    columns).
    """
    n_classes = proba.shape[1]
    if multiclass == "top_label" and n_classes > 2:
        selected = np.argmax(proba, axis=1)  # the first class on ties
        value = proba[np.arange(proba.shape[0]), selected]
        keys = value[:, None]
    elif multiclass == "top_label":  # binary: scored on P(Y = 1), as skmoe.metrics
        selected = np.ones(proba.shape[0], dtype=np.intp)
        value = proba[:, 1]
        keys = value[:, None]
    else:
        selected = None
        value = proba
        keys = proba
    if n_bins is not None:
        if multiclass != "top_label":
            raise ValueError(
                "n_bins bins the top-label confidence; it needs "
                f"multiclass='top_label', got multiclass={multiclass!r}."
            )
        # numpy.histogram's rule: [a, b) with the last bin closed
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        keys = np.clip(np.searchsorted(edges, value, side="right") - 1, 0, n_bins - 1)
        keys = keys[:, None].astype(np.float64)
    else:
        keys = np.round(keys, LEVEL_DECIMALS)
    if by is not None:
        by = np.asarray(by)
        if by.shape[0] != proba.shape[0]:
            raise ValueError(
                f"by must give one key per cell; got {by.shape[0]} keys for "
                f"{proba.shape[0]} cells."
            )
        keys = np.c_[np.reshape(by, (by.shape[0], -1)).astype(np.float64), keys]
    _, level = np.unique(keys, axis=0, return_inverse=True)
    return level.ravel(), selected, value


def _level_gaps(proba, proba_true, weights, by, multiclass, n_bins):
    """Per level: its weight and the gap ``sum_i w_i (truth_i - prediction_i)``."""
    level, selected, value = _levels(proba, by, multiclass, n_bins)
    n_levels = level.max() + 1 if level.size else 0
    if selected is None:
        residual = weights[:, None] * (proba_true - value)
        gaps = np.zeros((n_levels, proba.shape[1]))
        np.add.at(gaps, level, residual)
        # half the L1 norm: for two classes, |P(Y = 1) - p| at the level
        gap = 0.5 * np.abs(gaps).sum(axis=1)
    else:
        truth = proba_true[np.arange(proba.shape[0]), selected]
        gap = np.abs(
            np.bincount(level, weights=weights * (truth - value), minlength=n_levels)
        )
    mass = np.bincount(level, weights=weights, minlength=n_levels)
    return level, mass, gap


def _check_weights(weights, n_cells, name="weights"):
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_cells,):
        raise ValueError(
            f"{name} must hold one probability per cell, shape ({n_cells},); got "
            f"shape {weights.shape}."
        )
    if np.any(weights < 0) or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise ValueError(
            f"{name} must be finite, non-negative and not all zero; got {weights!r}."
        )
    return weights / weights.sum()


@validate_params(
    {
        "y_proba": ["array-like"],
        "proba_true": ["array-like"],
        "weights": ["array-like"],
        "by": ["array-like", None],
        "multiclass": [StrOptions({"top_label", "canonical"})],
        "n_bins": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def calibration_error_exact(
    y_proba, proba_true, weights, *, by=None, multiclass="top_label", n_bins=None
):
    """Exact expected calibration error of a prediction on a finite population.

    The population is a finite set of cells with probabilities ``weights``, the
    true ``P(Y | cell)`` and a prediction per cell. The cells are grouped into
    levels by their prediction, and the error is
    ``sum_levels |sum_{i in level} w_i (truth_i - predicted_i)|``: each level's
    probability times its calibration gap, with no sampling error. It is zero
    exactly when the prediction is calibrated on the population.

    - ``multiclass="top_label"``: a level is a value of the confidence (the largest
      predicted probability) and ``truth_i`` is the true probability of the
      predicted class (the first largest on ties). Binary input is scored on
      ``P(Y = 1)`` as in :mod:`skmoe.metrics`.
    - ``multiclass="canonical"``: a level is a whole probability vector and the
      gap is half the L1 distance between the level's mean true distribution and
      the vector (for two classes, ``|P(Y = 1 | level) - p|``).

    Predictions equal to 12 decimals share a level. With ``n_bins`` the levels
    are equal-width confidence bins instead, assigned like :func:`numpy.histogram`
    does (``[a, b)``, the last bin closed): the population value of
    :func:`skmoe.metrics.expected_calibration_error` with ``strategy="uniform"``.

    Parameters
    ----------
    y_proba : array-like of shape (n_cells,) or (n_cells, n_classes)
        Predicted ``P(Y = 1)`` (binary) or class probabilities of every cell:
        values in ``[0, 1]``, rows summing to one within ``1e-5``, as in
        :mod:`skmoe.metrics`.
    proba_true : array-like of the same shape as ``y_proba``
        True ``P(Y = 1 | cell)`` or ``P(Y | cell)``, with the same checks.
    weights : array-like of shape (n_cells,)
        Probability of every cell; normalised to sum to one, so the weights of a
        sub-population (for example ``P(cell) * r_k(cell)``, an expert's weighted
        view) can be passed as they are.
    by : array-like of shape (n_cells,) or (n_cells, n_keys), default=None
        Further keys that split the levels, such as the routed expert: the error
        is then the calibration error conditional on the key and the prediction
        (zero when the prediction is calibrated within every key).
    multiclass : {"top_label", "canonical"}, default="top_label"
        The notion of calibration, see above.
    n_bins : int, default=None
        Bin the top-label confidence into ``n_bins`` equal-width bins instead of
        grouping equal predictions.

    Returns
    -------
    error : float
        The expected calibration error; zero up to rounding on a calibrated
        prediction.

    See Also
    --------
    skmoe.metrics.expected_calibration_error : the same error estimated on a sample.
    check_hard_routing_calibrated : the hard-routing theorem on a population.

    Examples
    --------
    Two cells of equal probability that both predict 0.5, with true probabilities
    0.7 and 0.3: calibrated on the whole, not within each cell.

    >>> from skmoe.testing import calibration_error_exact
    >>> predicted, truth = [0.5, 0.5], [0.7, 0.3]
    >>> round(calibration_error_exact(predicted, truth, [0.5, 0.5]), 12)
    0.0
    >>> round(calibration_error_exact(predicted, truth, [0.5, 0.5], by=[0, 1]), 3)
    0.2
    >>> round(calibration_error_exact(predicted, truth, [0.8, 0.2]), 3)
    0.12
    """
    proba = _class_proba(y_proba, "y_proba")
    truth = _class_proba(proba_true, "proba_true")
    if truth.shape != proba.shape:
        raise ValueError(
            f"proba_true must have the shape of y_proba, {proba.shape}; got "
            f"{truth.shape}."
        )
    weights = _check_weights(weights, proba.shape[0])
    _, _, gap = _level_gaps(proba, truth, weights, by, multiclass, n_bins)
    return float(gap.sum())


def _hit_proba(proba_true, predicted, multiclass):
    """Per cell, the true probability of what is scored: a class, or all of them."""
    if multiclass == "canonical":
        return proba_true
    if predicted.shape[1] == 2:
        return proba_true[:, 1:]
    selected = np.argmax(predicted, axis=1)
    return proba_true[np.arange(predicted.shape[0]), selected][:, None]


def premise_groups(population, *, multiclass="top_label"):
    """Index of every cell's (routed expert, confidence level) group.

    Parameters
    ----------
    population : dict
        A population as drawn by :func:`finite_moe_populations`, or as returned by
        :func:`skmoe.datasets.make_routing_shift`.
    multiclass : {"top_label", "canonical"}, default="top_label"
        What a confidence level is: the top-label confidence (``P(Y = 1)`` for two
        classes) or the whole probability vector.

    Returns
    -------
    group : ndarray of shape (n_cells,)
        Consecutive group indices.

    Examples
    --------
    >>> from skmoe.datasets import make_routing_shift
    >>> from skmoe.testing import premise_groups
    >>> premise_groups(make_routing_shift(n_pairs=2))
    array([0, 2, 1, 3])
    """
    _require_keys(population, ("routed_proba", "routed_expert"), "population")
    routed_proba = _class_proba(population["routed_proba"], "routed_proba")
    level, _, _ = _levels(
        routed_proba, np.asarray(population["routed_expert"]), multiclass, None
    )
    return level


def configuration_groups(population):
    """Index of every cell's gate/expert configuration.

    Two cells share a configuration when their gate weights and every expert's
    probabilities agree to 12 decimals: a soft mixture cannot tell them apart.

    Parameters
    ----------
    population : dict
        With ``gate_proba`` of shape (n_cells, n_experts) and ``expert_proba`` of
        shape (n_cells, n_experts, n_classes), or (n_cells, n_experts) for
        ``P(Y = 1)`` of a binary problem, as drawn by
        :func:`finite_moe_populations` or returned by
        :func:`skmoe.datasets.make_routing_shift`.

    Returns
    -------
    group : ndarray of shape (n_cells,)
        Consecutive configuration indices.

    Examples
    --------
    >>> from skmoe.datasets import make_routing_shift
    >>> from skmoe.testing import configuration_groups
    >>> configuration_groups(make_routing_shift(n_pairs=2))
    array([2, 0, 3, 1])
    """
    gate_proba = np.asarray(population["gate_proba"], dtype=np.float64)
    expert_proba = np.asarray(population["expert_proba"], dtype=np.float64)
    n_cells = gate_proba.shape[0]
    keys = np.c_[gate_proba, expert_proba.reshape(n_cells, -1)]
    _, group = np.unique(np.round(keys, LEVEL_DECIMALS), axis=0, return_inverse=True)
    return group.ravel()


def _shift_parts(population, shift):
    """Target cell probabilities and target ``P(Y | cell)`` of a shift."""
    proba_true = _class_proba(population["proba_true"], "proba_true")
    if isinstance(shift, dict):
        _require_keys(shift, ("target_proba",), "shift")
        target_proba = shift["target_proba"]
        target_true = _class_proba(shift.get("proba_true", proba_true), "proba_true")
    else:
        target_proba, target_true = shift, proba_true
    if target_true.shape != proba_true.shape:
        raise ValueError(
            "The shift's proba_true must have the shape of the population's, "
            f"{proba_true.shape}; got {target_true.shape}."
        )
    n_cells = proba_true.shape[0]
    return _check_weights(target_proba, n_cells, "target_proba"), target_true


def _group_statistic(group, weights, hit):
    """Weighted mean of ``hit`` within every group; NaN where a group has no mass."""
    n_groups = group.max() + 1
    mass = np.bincount(group, weights=weights, minlength=n_groups)
    total = np.zeros((n_groups, hit.shape[1]))
    np.add.at(total, group, weights[:, None] * hit)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mass[:, None] > 0, total / mass[:, None], np.nan), mass


@validate_params(
    {
        "population": [dict],
        "shift": ["array-like", dict],
        "multiclass": [StrOptions({"top_label", "canonical"}), None],
        "atol": [Interval(Real, 0, None, closed="left")],
        "require_premise": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def check_hard_routing_calibrated(
    population, shift, *, multiclass=None, atol=1e-12, require_premise=True
):
    """Check that hard routing is calibrated on a population and under a shift.

    The theorem (DESIGN.md, item 1): if every expert is calibrated on the cells
    routed to it, the hard-routed model stays calibrated under every shift that
    keeps ``P(Y | selected expert, its confidence)`` fixed. This check computes
    both sides exactly:

    - the premise: the error of the routed prediction conditional on the routed
      expert, on the source (``routed_view_error``), and the change the shift
      makes to ``P(Y | expert, confidence level)`` (``premise_gap``: its mean over
      the target's groups, weighted by their target probability, with the change
      measured on the probability of the predicted class for top-label
      calibration and in total variation for canonical calibration; infinite when
      the target reaches a group the source does not). The target error is at
      most ``premise_gap`` plus the routed experts' miscalibration on the
      target's mix of groups, so zero premise terms give a zero target error;
    - the conclusion: the calibration error of the routed prediction on the source
      and on the target (``source_error``, ``target_error``).

    Parameters
    ----------
    population : dict
        With ``routed_proba``, ``routed_expert``, ``proba_true`` and
        ``source_proba`` as drawn by :func:`finite_moe_populations` or returned by
        :func:`skmoe.datasets.make_routing_shift` (1-D binary arrays accepted).
    shift : array-like of shape (n_cells,) or dict
        The target probability of every cell (``P(Y | cell)`` unchanged), or a
        dict with ``target_proba`` and optionally the target ``proba_true``, as
        drawn by :func:`shifts_preserving`.
    multiclass : {"top_label", "canonical"}, default=None
        The notion of calibration, as in :func:`calibration_error_exact`; by
        default the population's ``calibration``, or ``"top_label"``.
    atol : float, default=1e-12
        Tolerance on every error and gap.
    require_premise : bool, default=True
        Also fail when the premise does not hold (an expert miscalibrated on its
        routed view, or a shift that changes ``P(Y | expert, confidence)``). With
        False only the target error is checked.

    Returns
    -------
    report : :class:`~sklearn.utils.Bunch`
        ``source_error``, ``target_error``, ``routed_view_error`` and
        ``premise_gap`` as floats, and ``premise_holds`` (bool).

    Raises
    ------
    AssertionError
        When the hard-routed model is miscalibrated on the target beyond ``atol``,
        or, with ``require_premise=True``, when the premise fails; the message
        gives the report.

    See Also
    --------
    shifts_preserving : shifts that keep the premise.
    calibration_error_exact : the error computed here.

    Examples
    --------
    >>> from skmoe.datasets import make_routing_shift
    >>> from skmoe.testing import check_hard_routing_calibrated
    >>> population = make_routing_shift()
    >>> report = check_hard_routing_calibrated(population, population.target_proba)
    >>> report.premise_holds, report.target_error < 1e-12
    (True, True)

    A shift that raises ``P(Y = 1 | cell)`` everywhere changes
    ``P(Y | expert, confidence)``: the premise fails, and so does calibration.

    >>> import numpy as np
    >>> drift = {"target_proba": population.source_proba,
    ...          "proba_true": population.proba_true + 0.05}
    >>> check_hard_routing_calibrated(population, drift, require_premise=False)
    Traceback (most recent call last):
    ...
    AssertionError: Hard routing is miscalibrated on the target beyond atol=1e-12; \
got source_error=0, target_error=0.05, routed_view_error=0, premise_gap=0.05.
    """
    _require_keys(
        population,
        ("routed_proba", "routed_expert", "proba_true", "source_proba"),
        "population",
    )
    if multiclass is None:
        multiclass = population.get("calibration", "top_label")
    routed_proba = _class_proba(population["routed_proba"], "routed_proba")
    proba_true = _class_proba(population["proba_true"], "proba_true")
    routed_expert = np.asarray(population["routed_expert"])
    source = _check_weights(
        population["source_proba"], proba_true.shape[0], "source_proba"
    )
    target, target_true = _shift_parts(population, shift)

    def error(weights, truth, by=None):
        return calibration_error_exact(
            routed_proba, truth, weights, by=by, multiclass=multiclass
        )

    group = premise_groups(population, multiclass=multiclass)
    source_stat, _ = _group_statistic(
        group, source, _hit_proba(proba_true, routed_proba, multiclass)
    )
    target_stat, target_mass = _group_statistic(
        group, target, _hit_proba(target_true, routed_proba, multiclass)
    )
    reached = target_mass > 0
    # half the L1 distance: for one column (top-label), the absolute change
    scale = 1.0 if source_stat.shape[1] == 1 else 0.5
    change = scale * np.abs(target_stat[reached] - source_stat[reached]).sum(axis=1)
    # weighted by the target's group masses: a group of mass 1e-300 holds a
    # conditional probability with few significant bits and cannot move the error
    premise_gap = float(
        np.inf if np.isnan(change).any() else target_mass[reached] @ change
    )
    report = Bunch(
        source_error=error(source, proba_true),
        target_error=error(target, target_true),
        routed_view_error=error(source, proba_true, by=routed_expert),
        premise_gap=premise_gap,
    )
    report.premise_holds = bool(
        report.routed_view_error <= atol and report.premise_gap <= atol
    )
    summary = ", ".join(
        f"{name}={value:.3g}"
        for name, value in report.items()
        if name != "premise_holds"
    )
    if require_premise and not report.premise_holds:
        raise AssertionError(
            "The premise of the hard-routing theorem does not hold: every expert must "
            "be calibrated on its routed view (routed_view_error) and the shift must "
            "keep P(Y | expert, confidence) fixed (premise_gap); got " + summary + "."
        )
    if report.target_error > atol:
        raise AssertionError(
            f"Hard routing is miscalibrated on the target beyond atol={atol!r}; got "
            + summary
            + "."
        )
    return report
