"""ReliabilityDisplay: reliability diagrams with bin counts, smooth curves and experts.

A reliability diagram plots, bin by bin, the observed frequency of an event against
its mean predicted probability; a calibrated model lies on the diagonal. The display
draws the binned curve with the number of samples per bin as bars underneath,
optionally the smooth (kernel) reliability curve of Błasiok and Nakkiran, and for a
fitted mixture of experts one panel per expert on its routed view. matplotlib is
imported only when a diagram is drawn.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)

from skmoe.metrics._calibration import (
    _check_scores,
    _column_stats,
    _error_from_stats,
    _event_scores,
    _smooth_reliability_curve,
)


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "ReliabilityDisplay needs matplotlib; install it with "
            'pip install "skmoe[plot]".'
        ) from error
    return plt


_DISPLAY_CONSTRAINTS = {
    "n_bins": [Interval(Integral, 1, None, closed="left")],
    "strategy": [StrOptions({"uniform", "quantile", "equal_count"})],
    "pos_label": [Real, str, None],
    "binary": [StrOptions({"positive", "top_label"})],
    "smooth": ["boolean"],
    "per_expert": ["boolean"],
    "show_counts": ["boolean"],
    "name": [str, None],
}


class _Curve:
    """The numbers behind one reliability diagram (one panel)."""

    def __init__(self, y_true, y_proba, *, n_bins, strategy, pos_label, binary,
                 smooth, sample_weight, labels, title=None, expert=None):
        data = _check_scores(y_true, y_proba, sample_weight, labels, binary=binary)
        scores, hits = _event_scores(data, pos_label)
        if title is None:
            title = _title(pos_label, data)
        stats = _column_stats(scores, hits, data, n_bins, strategy)
        nonempty = stats.weight_sums > 0
        self.prob_true = stats.hit_sums[nonempty] / stats.weight_sums[nonempty]
        self.prob_pred = stats.confidence_sums[nonempty] / stats.weight_sums[nonempty]
        self.counts = stats.counts[nonempty]
        self.bin_edges = stats.edges
        self.nonempty = nonempty
        self.error = float(_error_from_stats(stats, "l1")[0])
        self.title = title
        # the expert's index: panels of experts without routed samples are left
        # out, so a panel's position does not say which expert it shows
        self.expert = expert
        self.smooth = None
        if smooth:
            points, curve, density, bandwidth = _smooth_reliability_curve(
                scores, hits, data.weights
            )
            self.smooth = {"points": points, "curve": curve, "density": density,
                           "bandwidth": bandwidth}


class ReliabilityDisplay:
    """Reliability diagram: observed frequency against predicted probability.

    The event is "the top-label prediction is right" (``pos_label=None`` with
    multiclass probabilities), or "the label is ``pos_label``" scored by that
    class's column. Binary probabilities default to the positive class;
    ``binary="top_label"`` scores them by their top label like multiclass ones
    (the convention of the calibrated mixture-of-experts paper). Bins are
    formed as in :func:`skmoe.metrics.expected_calibration_error`; bars under the
    curve give the number of samples per bin, and ``smooth=True`` adds the smooth
    reliability curve whose error is
    :func:`skmoe.metrics.smooth_calibration_error`.

    For a fitted :class:`~skmoe.MixtureOfExpertsClassifier`, ``per_expert=True`` in
    :meth:`from_estimator` adds one panel per expert: the expert's own
    probabilities on its routed view, the samples whose largest routing weight is
    that expert's. The hard-routing guarantee of a calibrated mixture rests on
    exactly these views being calibrated. A pipeline whose last step is such a
    mixture works too: the routed views are those of the transformed data.

    Several models can share one Axes (pass the same ``ax``): the diagonal is
    drawn once, the bin counts of all models share one right-hand axis, and the
    title names every model.

    Use :meth:`from_estimator` or :meth:`from_predictions` to build it; the
    constructor only stores the curves.

    Parameters
    ----------
    curves : list of _Curve
        The panels: the model's curve first, then one per expert.
    name : str, default=None
        Label of the model in the legend.

    Attributes
    ----------
    prob_true : ndarray of shape (n_nonempty_bins,)
        Observed frequency in each non-empty bin (of the model's panel).
    prob_pred : ndarray of shape (n_nonempty_bins,)
        Mean predicted probability in each non-empty bin.
    counts : ndarray of shape (n_nonempty_bins,)
        Number of samples in each non-empty bin.
    calibration_error : float
        The binned expected calibration error (L1) of the model's panel.
    expert_curves_ : list of dict
        Per expert with at least one routed sample (with ``per_expert=True``), in
        the order of the experts: ``expert`` (its index in the mixture),
        ``prob_true``, ``prob_pred``, ``counts``, ``calibration_error`` and
        ``n_routed``. An expert no sample is routed to has no entry and no panel.
    ax_ : matplotlib Axes or ndarray of Axes
        The axes of the diagram (an array when there are expert panels).
    figure_ : matplotlib Figure
    line_ : matplotlib Line2D
        The model's binned curve.

    See Also
    --------
    skmoe.metrics.calibration_curve : the numbers of the binned curve.
    sklearn.calibration.CalibrationDisplay : the binary display of scikit-learn.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmoe.inspection import ReliabilityDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=500).fit(X, y)
    >>> display = ReliabilityDisplay.from_estimator(model, X, y, n_bins=5,
    ...                                             smooth=True)
    >>> int(display.counts.sum())
    150
    """

    def __init__(self, curves, *, name=None):
        self.curves = curves
        self.name = name

    @property
    def prob_true(self):
        return self.curves[0].prob_true

    @property
    def prob_pred(self):
        return self.curves[0].prob_pred

    @property
    def counts(self):
        return self.curves[0].counts

    @property
    def calibration_error(self):
        return self.curves[0].error

    @property
    def expert_curves_(self):
        return [
            {"expert": c.expert, "prob_true": c.prob_true, "prob_pred": c.prob_pred,
             "counts": c.counts, "calibration_error": c.error,
             "n_routed": int(c.counts.sum())}
            for c in self.curves[1:]
        ]

    def plot(self, *, ax=None, name=None, show_counts=True):
        """Draw the diagram.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw: one Axes per panel. ``None`` creates a figure.
        name : str, default=None
            Label of the model in the legend; overrides the stored name.
        show_counts : bool, default=True
            Draw the number of samples per bin as bars under the curve.

        Returns
        -------
        display : ReliabilityDisplay
            With ``ax_``, ``figure_`` and ``line_`` set.
        """
        plt = _import_pyplot()
        n_panels = len(self.curves)
        if ax is None:
            figure, axes = plt.subplots(
                1, n_panels, figsize=(4.6 * n_panels, 4.4), squeeze=False,
                layout="constrained",
            )
            axes = axes[0]
        else:
            axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
            if axes.shape[0] != n_panels:
                raise ValueError(
                    f"ax must hold one Axes per panel ({n_panels}); got "
                    f"{axes.shape[0]}."
                )
            figure = axes[0].figure
        name = name if name is not None else self.name
        lines = []
        for i, (panel_ax, curve) in enumerate(zip(axes, self.curves, strict=True)):
            # an expert's panel names the expert in its title already
            label = name if i == 0 else f"expert {curve.expert}"
            lines.append(
                self._plot_curve(panel_ax, curve, label, show_counts, i == 0)
            )
        self.ax_ = axes[0] if n_panels == 1 else axes
        self.figure_ = figure
        self.line_ = lines[0]
        return self

    @staticmethod
    def _plot_curve(ax, curve, label, show_counts, models_in_title):
        # a second model drawn on the same Axes reuses the diagonal and the
        # counts axis of the first; the artists are found again by their gid
        if not any(line.get_gid() == _DIAGONAL_GID for line in ax.lines):
            ax.plot([0, 1], [0, 1], linestyle=":", color="0.5",
                    label="perfectly calibrated", gid=_DIAGONAL_GID)
        models = [line.get_gid()[len(_MODEL_GID):] for line in ax.lines
                  if (line.get_gid() or "").startswith(_MODEL_GID)]
        name = "model" if label is None else label
        (line,) = ax.plot(
            curve.prob_pred, curve.prob_true, marker="o", markersize=4,
            label=f"{name} (ECE {curve.error:.3f})", gid=_MODEL_GID + name,
        )
        models.append(name)
        if not models_in_title or (label is None and len(models) == 1):
            title = curve.title
        else:
            title = f"{', '.join(models)}: {curve.title}"
        if curve.smooth is not None:
            density = curve.smooth["density"]
            # away from the data the smoothed residual decays to zero and the curve
            # falls onto the diagonal: that is no evidence, so it is not drawn
            smooth_curve = np.where(density >= 0.02 * density.max(),
                                    curve.smooth["curve"], np.nan)
            ax.plot(
                curve.smooth["points"], smooth_curve, color=line.get_color(),
                alpha=0.6, linewidth=2, gid=_SMOOTH_GID + name,
                label=f"smooth, bandwidth {curve.smooth['bandwidth']:.3f}",
            )
        if len(models) > 1:
            # with several models, each smooth curve says whose it is
            for smooth_line in ax.lines:
                gid = smooth_line.get_gid() or ""
                text = smooth_line.get_label()
                if gid.startswith(_SMOOTH_GID) and text.startswith("smooth"):
                    smooth_line.set_label(f"{gid[len(_SMOOTH_GID):]} {text}")
        if show_counts and curve.counts.shape[0]:
            counts_ax = _counts_axes(ax)
            if curve.bin_edges is not None:
                edges = np.asarray(curve.bin_edges, dtype=float)
                left = edges[:-1][curve.nonempty]
                width = np.diff(edges)[curve.nonempty]
            else:
                width = np.full(curve.counts.shape[0], 0.02)
                left = curve.prob_pred - width / 2
            counts_ax.bar(left, curve.counts, width=width, align="edge",
                          color=line.get_color(), alpha=0.2, edgecolor="none")
            # the bars (of every model on this Axes) take the bottom quarter
            tallest = max(patch.get_height() for patch in counts_ax.patches)
            counts_ax.set_ylim(0, 4 * tallest)
            counts_ax.tick_params(axis="y", labelsize="x-small", colors="0.4")
            counts_ax.set_ylabel("samples per bin", fontsize="x-small", color="0.4")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize="small")
        return line

    @classmethod
    def from_predictions(
        cls, y_true, y_proba, *, n_bins=15, strategy="uniform", pos_label=None,
        binary="positive", smooth=False, sample_weight=None, labels=None, name=None,
        ax=None, show_counts=True,
    ):
        """Reliability diagram of given probabilities.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
            Predicted probabilities (see
            :func:`skmoe.metrics.expected_calibration_error`).
        n_bins : int, default=15
            Number of bins.
        strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
            How the bins are formed.
        pos_label : int, float, str or None, default=None
            ``None``: the top label (binary input: the positive class, unless
            ``binary="top_label"``); a class label: that class against the rest.
        binary : {"positive", "top_label"}, default="positive"
            With ``pos_label=None``, how binary input is scored (see
            :func:`skmoe.metrics.expected_calibration_error`).
        smooth : bool, default=False
            Also draw the smooth reliability curve (automatic bandwidth).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        labels : array-like of shape (n_classes,), default=None
            The classes of ``y_proba``'s columns, sorted: column ``k`` scores
            ``labels[k]``, as in :func:`sklearn.metrics.log_loss`. Unsorted
            ``labels`` raise a ``ValueError``.
        name : str, default=None
            Label of the model in the legend.
        ax : matplotlib Axes, default=None
            Where to draw; ``None`` creates a figure.
        show_counts : bool, default=True
            Draw the number of samples per bin as bars.

        Returns
        -------
        display : ReliabilityDisplay
        """
        validate_parameter_constraints(
            _DISPLAY_CONSTRAINTS,
            {"n_bins": n_bins, "strategy": strategy, "pos_label": pos_label,
             "binary": binary, "smooth": smooth, "name": name,
             "show_counts": show_counts},
            caller_name="ReliabilityDisplay.from_predictions",
        )
        curve = _Curve(
            y_true, y_proba, n_bins=n_bins, strategy=strategy, pos_label=pos_label,
            binary=binary, smooth=smooth, sample_weight=sample_weight, labels=labels,
        )
        return cls([curve], name=name).plot(ax=ax, show_counts=show_counts)

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, n_bins=15, strategy="uniform", pos_label=None,
        binary="positive", smooth=False, per_expert=False, sample_weight=None,
        name=None, ax=None, show_counts=True,
    ):
        """Reliability diagram of a fitted classifier's ``predict_proba``.

        Parameters
        ----------
        estimator : fitted classifier
            Has ``predict_proba`` and ``classes_``. With ``per_expert=True``, a
            mixture with ``predict_gate_proba`` and ``predict_expert_proba``, or
            a :class:`~sklearn.pipeline.Pipeline` ending in one.
        X : array-like of shape (n_samples, n_features)
            Input samples.
        y : array-like of shape (n_samples,)
            True labels.
        n_bins : int, default=15
            Number of bins.
        strategy : {"uniform", "quantile", "equal_count"}, default="uniform"
            How the bins are formed.
        pos_label : int, float, str or None, default=None
            ``None``: the top label (binary: the positive class, unless
            ``binary="top_label"``); a class label: that class against the rest.
        binary : {"positive", "top_label"}, default="positive"
            With ``pos_label=None``, how binary input is scored (see
            :func:`skmoe.metrics.expected_calibration_error`).
        smooth : bool, default=False
            Also draw the smooth reliability curve.
        per_expert : bool, default=False
            Add one panel per expert on its routed view.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.
        name : str, default=None
            Label of the model; ``None`` uses the estimator's class name.
        ax : matplotlib Axes or array of Axes, default=None
            One Axes per panel; ``None`` creates a figure.
        show_counts : bool, default=True
            Draw the number of samples per bin as bars.

        Returns
        -------
        display : ReliabilityDisplay
        """
        from sklearn.utils.validation import check_is_fitted

        validate_parameter_constraints(
            _DISPLAY_CONSTRAINTS,
            {"n_bins": n_bins, "strategy": strategy, "pos_label": pos_label,
             "binary": binary, "smooth": smooth, "per_expert": per_expert,
             "name": name, "show_counts": show_counts},
            caller_name="ReliabilityDisplay.from_estimator",
        )
        check_is_fitted(estimator)
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(
                "estimator must have predict_proba; got "
                f"{type(estimator).__name__}."
            )
        labels = estimator.classes_
        options = {"n_bins": n_bins, "strategy": strategy, "pos_label": pos_label,
                   "binary": binary, "smooth": smooth, "labels": labels}
        y = np.asarray(y)
        curves = [
            _Curve(y, estimator.predict_proba(X), sample_weight=sample_weight,
                   **options)
        ]
        if per_expert:
            curves += _expert_curves(estimator, X, y, sample_weight, options)
        name = type(estimator).__name__ if name is None else name
        return cls(curves, name=name).plot(ax=ax, show_counts=show_counts)


_DIAGONAL_GID = "skmoe-reliability-diagonal"
_MODEL_GID = "skmoe-reliability-model:"
_SMOOTH_GID = "skmoe-reliability-smooth:"
_COUNTS_GID = "skmoe-reliability-counts"


def _title(pos_label, data):
    if pos_label is not None:
        return f"class {pos_label!r}"
    if data.binary:
        return f"class {data.classes[1].item()!r}"
    return "top label"


def _counts_axes(ax):
    """The right-hand axis of the bin counts of ``ax``, created on first use."""
    for other in ax.figure.axes:
        if other.get_gid() == _COUNTS_GID and other.get_shared_x_axes().joined(
            ax, other
        ):
            return other
    counts_ax = ax.twinx()
    counts_ax.set_gid(_COUNTS_GID)
    return counts_ax


def _final_mixture(estimator, X):
    """The mixture at the end of a pipeline, and ``X`` transformed for it."""
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, Pipeline):
        X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    return estimator, X


def _expert_curves(estimator, X, y, sample_weight, options):
    """One curve per expert on the samples routed to it (largest routing weight)."""
    estimator, X = _final_mixture(estimator, X)
    for method in ("predict_gate_proba", "predict_expert_proba"):
        if not hasattr(estimator, method):
            raise TypeError(
                "per_expert=True needs a mixture of experts with predict_gate_proba "
                "and predict_expert_proba (or a pipeline ending in one); got "
                f"{type(estimator).__name__}."
            )
    routing = np.argmax(estimator.predict_gate_proba(X), axis=1)
    expert_proba = estimator.predict_expert_proba(X)
    curves = []
    for k in range(expert_proba.shape[1]):
        rows = np.flatnonzero(routing == k)
        if rows.shape[0] == 0:
            continue
        weight = None if sample_weight is None else np.asarray(sample_weight)[rows]
        curves.append(
            _Curve(y[rows], expert_proba[rows, k], sample_weight=weight,
                   title=f"expert {k} ({rows.shape[0]} routed)", expert=k,
                   **options)
        )
    return curves
