"""Tests of ReliabilityDisplay: the numbers it draws, its panels, the PNG it renders."""

import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from skmoe import MixtureOfExpertsClassifier  # noqa: E402
from skmoe.inspection import ReliabilityDisplay  # noqa: E402
from skmoe.metrics import (  # noqa: E402
    calibration_curve,
    expected_calibration_error,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4,
                               n_classes=3, n_clusters_per_class=2, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def mixture(data):
    X, y = data
    # a few EM iterations are enough to give the experts different views
    model = MixtureOfExpertsClassifier(n_experts=3, routing="soft", max_iter=8,
                                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def test_from_predictions_draws_the_calibration_curve(data):
    X, y = data
    proba = LogisticRegression(max_iter=500).fit(X, y).predict_proba(X)
    display = ReliabilityDisplay.from_predictions(y, proba, n_bins=10, smooth=True,
                                                  name="logistic")
    prob_true, prob_pred, counts = calibration_curve(y, proba, n_bins=10)
    np.testing.assert_allclose(display.prob_true, prob_true)
    np.testing.assert_allclose(display.prob_pred, prob_pred)
    np.testing.assert_array_equal(display.counts, counts)
    assert display.calibration_error == pytest.approx(
        expected_calibration_error(y, proba, n_bins=10)
    )
    np.testing.assert_allclose(display.line_.get_xdata(), prob_pred)
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert any(text.startswith("logistic (ECE") for text in legend)
    assert any(text.startswith("smooth") for text in legend)
    # one class against the rest
    one_class = ReliabilityDisplay.from_predictions(y, proba, n_bins=10, pos_label=2)
    prob_true, _, _ = calibration_curve(y, proba, n_bins=10, pos_label=2)
    np.testing.assert_allclose(one_class.prob_true, prob_true)


def test_per_expert_panels_use_the_routed_views(data, mixture):
    X, y = data
    display = ReliabilityDisplay.from_estimator(mixture, X, y, n_bins=10,
                                                per_expert=True)
    routing = mixture.predict_gate_proba(X).argmax(1)
    expert_proba = mixture.predict_expert_proba(X)
    used = [k for k in range(3) if np.any(routing == k)]
    assert len(display.expert_curves_) == len(used)
    assert np.asarray(display.ax_).shape == (1 + len(used),)
    for k, curve in zip(used, display.expert_curves_, strict=True):
        rows = routing == k
        assert curve["n_routed"] == rows.sum()
        assert curve["calibration_error"] == pytest.approx(
            expected_calibration_error(y[rows], expert_proba[rows, k], n_bins=10,
                                       labels=mixture.classes_)
        )
    assert display.calibration_error == pytest.approx(
        expected_calibration_error(y, mixture.predict_proba(X), n_bins=10)
    )


def test_per_expert_panels_name_the_expert_when_one_gets_no_samples(data, mixture):
    # rows none of which are routed to the first used expert: its panel is left
    # out, and the others used to be labelled by position (expert 0, expert 1, ...)
    X, y = data
    routing = mixture.predict_gate_proba(X).argmax(1)
    skipped = routing.min()
    subset = routing != skipped
    display = ReliabilityDisplay.from_estimator(mixture, X[subset], y[subset],
                                                per_expert=True)
    shown = [k for k in range(3) if k != skipped and np.any(routing == k)]
    assert [curve["expert"] for curve in display.expert_curves_] == shown
    for panel_ax, k in zip(display.ax_[1:], shown, strict=True):
        assert panel_ax.get_title().startswith(f"expert {k} (")
        legend = [t.get_text() for t in panel_ax.get_legend().get_texts()]
        assert any(text.startswith(f"expert {k} (ECE") for text in legend), legend


def test_renders_a_png(data, mixture, tmp_path):
    X, y = data
    display = ReliabilityDisplay.from_estimator(
        mixture, X, y, n_bins=10, smooth=True, per_expert=True
    )
    path = tmp_path / "reliability.png"
    display.figure_.savefig(path, dpi=60)
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 400
    # something besides the white background was drawn
    assert image[..., :3].std() > 0.05


def test_existing_axes_and_errors(data, mixture):
    import matplotlib.pyplot as plt

    X, y = data
    _, ax = plt.subplots()
    display = ReliabilityDisplay.from_estimator(mixture, X, y, ax=ax,
                                                show_counts=False)
    assert display.ax_ is ax
    with pytest.raises(ValueError, match="one Axes per panel"):
        ReliabilityDisplay.from_estimator(mixture, X, y, ax=ax, per_expert=True)
    with pytest.raises(ValueError, match="n_bins"):
        ReliabilityDisplay.from_estimator(mixture, X, y, n_bins=0)
    with pytest.raises(ValueError, match="strategy"):
        ReliabilityDisplay.from_predictions(y, mixture.predict_proba(X),
                                            strategy="kmeans")
    with pytest.raises(ValueError, match=r"labels must be sorted.*\[2, 0, 1\]"):
        ReliabilityDisplay.from_predictions(
            y, mixture.predict_proba(X)[:, [2, 0, 1]], labels=[2, 0, 1]
        )
    with pytest.raises(ValueError, match="pos_label=7"):
        ReliabilityDisplay.from_estimator(mixture, X, y, pos_label=7)
    with pytest.raises(TypeError, match="predict_gate_proba"):
        ReliabilityDisplay.from_estimator(
            LogisticRegression(max_iter=500).fit(X, y), X, y, per_expert=True
        )


def test_missing_matplotlib_names_the_extra(data, monkeypatch):
    X, y = data
    proba = LogisticRegression(max_iter=500).fit(X, y).predict_proba(X)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "skmoe\[plot\]"'):
        ReliabilityDisplay.from_predictions(y, proba)


def test_per_expert_panels_of_a_pipeline(data):
    # the README's own example is a pipeline; per_expert=True raised TypeError
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    pipeline = make_pipeline(
        StandardScaler(),
        MixtureOfExpertsClassifier(n_experts=3, routing="hard", random_state=0),
    ).fit(X, y)
    display = ReliabilityDisplay.from_estimator(pipeline, X, y, n_bins=10,
                                                per_expert=True)
    mixture = pipeline[-1]
    X_scaled = pipeline[0].transform(X)
    routing = mixture.predict_gate_proba(X_scaled).argmax(1)
    expert_proba = mixture.predict_expert_proba(X_scaled)
    used = [k for k in range(3) if np.any(routing == k)]
    assert len(display.expert_curves_) == len(used) >= 2
    for k, curve in zip(used, display.expert_curves_, strict=True):
        rows = routing == k
        assert curve["n_routed"] == rows.sum()
        assert curve["calibration_error"] == pytest.approx(
            expected_calibration_error(y[rows], expert_proba[rows, k], n_bins=10,
                                       labels=mixture.classes_)
        )
    assert display.ax_[0].get_title() == "Pipeline: top label"
    assert display.ax_[1].get_title() == (
        f"expert {used[0]} ({display.expert_curves_[0]['n_routed']} routed)")


def test_two_models_share_one_axes(data, mixture, tmp_path):
    import matplotlib.pyplot as plt

    X, y = data
    logistic = LogisticRegression(C=0.01, max_iter=500).fit(X, y)
    figure, ax = plt.subplots()
    first = ReliabilityDisplay.from_estimator(mixture, X, y, ax=ax, n_bins=10,
                                              name="mixture", smooth=True)
    second = ReliabilityDisplay.from_estimator(logistic, X, y, ax=ax, n_bins=10,
                                               name="logistic", smooth=True)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    # one diagonal, two models, two smooth curves told apart by their model
    assert legend.count("perfectly calibrated") == 1
    assert sum(text.startswith(("mixture (ECE", "logistic (ECE")) for text in
               legend) == 2
    assert sum(text.startswith(("mixture smooth", "logistic smooth")) for text in
               legend) == 2
    assert ax.get_title() == "mixture, logistic: top label"
    # one right-hand axis holds both models' counts, scaled to the larger
    assert len(figure.axes) == 2
    counts_ax = figure.axes[1]
    heights = [patch.get_height() for patch in counts_ax.patches]
    assert sorted(heights) == sorted([*first.counts, *second.counts])
    assert counts_ax.get_ylim()[1] == pytest.approx(4 * max(heights))
    path = tmp_path / "two_models.png"
    figure.savefig(path, dpi=60)
    assert matplotlib.image.imread(path)[..., :3].std() > 0.05


def test_binary_convention_of_the_display():
    rng = np.random.default_rng(0)
    p = rng.random(400)
    y = (rng.random(400) < p**2).astype(int)
    positive = ReliabilityDisplay.from_predictions(y, p, n_bins=10)
    top = ReliabilityDisplay.from_predictions(y, p, n_bins=10, binary="top_label")
    for display, binary in ((positive, "positive"), (top, "top_label")):
        prob_true, prob_pred, counts = calibration_curve(y, p, n_bins=10,
                                                         binary=binary)
        np.testing.assert_allclose(display.prob_pred, prob_pred)
        np.testing.assert_allclose(display.prob_true, prob_true)
        assert display.calibration_error == pytest.approx(
            expected_calibration_error(y, p, n_bins=10, binary=binary)
        )
    assert positive.ax_.get_title() == "class 1"
    assert top.ax_.get_title() == "top label"
    # top-label confidences are at least one half
    assert top.prob_pred.min() >= 0.5
