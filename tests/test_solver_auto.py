"""solver="auto", the classifier's default: which solver it picks, and that the fit it
makes is exactly the chosen solver's; the k-means start on a subsample of large data."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from skmoe import MixtureOfExpertsClassifier
from skmoe import _base as base
from skmoe.gating import SoftmaxGate
from skmoe.solvers import _auto

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def _data(n_samples, random_state=0):
    rng = np.random.default_rng(random_state)
    X = rng.normal(size=(n_samples, 3))
    region = X[:, 0] > 0
    logits = np.where(region, 3 * X[:, 1], -3 * X[:, 2])
    y = (rng.random(n_samples) < 1 / (1 + np.exp(-logits))).astype(int)
    return X, y


@pytest.fixture
def small_threshold(monkeypatch):
    """"auto" picks Adam from 400 rows on, with a budget of 30 minibatch steps."""
    monkeypatch.setattr(_auto, "MIN_SAMPLES", 400)
    monkeypatch.setattr(_auto, "STEP_BUDGET", 30)


def test_default_solver_is_auto():
    assert MixtureOfExpertsClassifier().solver == "auto"


def test_below_the_threshold_auto_is_em_exactly():
    X, y = _data(300)
    auto = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    em = MixtureOfExpertsClassifier(n_experts=2, solver="em", random_state=0).fit(X, y)
    assert auto.solver_ == "em" and em.solver_ == "em"
    np.testing.assert_array_equal(auto.predict_proba(X), em.predict_proba(X))
    np.testing.assert_array_equal(auto.lower_bounds_, em.lower_bounds_)


def test_above_the_threshold_auto_is_adam_with_its_budget(small_threshold):
    X, y = _data(500)
    auto = MixtureOfExpertsClassifier(n_experts=2, batch_size=64, random_state=0)
    auto.fit(X, y)
    # 8 minibatches of 64 rows per epoch: 30 steps are 4 epochs (whole ones)
    assert auto.solver_ == "adam" and auto.n_iter_ == 4 and auto.converged_
    adam = MixtureOfExpertsClassifier(
        n_experts=2, solver="adam", batch_size=64, max_iter=4, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X), adam.predict_proba(X))
    assert isinstance(auto.experts_[0], LogisticRegression)
    assert isinstance(auto.gate_, SoftmaxGate)
    # max_iter still caps the epochs
    capped = MixtureOfExpertsClassifier(
        n_experts=2, batch_size=64, max_iter=2, random_state=0
    ).fit(X, y)
    assert capped.solver_ == "adam" and capped.n_iter_ == 2


@pytest.mark.parametrize(
    ("n_samples", "batch_size", "max_iter", "expected"),
    [
        (50_000, 128, 100, 26),  # 391 steps per epoch
        (200_000, 128, 100, 7),  # 1,563 steps per epoch
        (10_000_000, 128, 100, 1),  # at least one epoch
        (50_000, 128, 10, 10),  # never more than max_iter
        (100, 128, 100, 100),  # one minibatch per epoch
    ],
)
def test_epoch_budget(n_samples, batch_size, max_iter, expected):
    mixture = MixtureOfExpertsClassifier(batch_size=batch_size, max_iter=max_iter)
    assert _auto.max_epochs(mixture, n_samples) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"routing": "hard"},
        {"routing": "topk"},
        {"expert": DecisionTreeClassifier(max_depth=2)},
        {"expert": LogisticRegression(class_weight="balanced")},
        {"expert": LogisticRegression(l1_ratio=1, solver="liblinear")},
        {"reweighting": "adversarial"},
        {"gate_features": [0]},
        {"min_prior": 0.01},
        {"hidden_layer_sizes": (4,)},
        {"gate": DecisionTreeClassifier(max_depth=2)},
    ],
    ids=lambda params: next(iter(params)) + "=" + repr(next(iter(params.values()))),
)
def test_auto_keeps_em_for_what_adam_does_not_train_alike(small_threshold, params):
    X, y = _data(500)
    moe = MixtureOfExpertsClassifier(n_experts=2, max_iter=3, random_state=0)
    moe.set_params(**params).fit(X, y)
    assert moe.solver_ == "em"


def test_auto_trains_sparse_x_by_em(small_threshold):
    X, y = _data(500)
    moe = MixtureOfExpertsClassifier(n_experts=2, max_iter=3, random_state=0)
    moe.fit(sp.csr_matrix(X), y)
    assert moe.solver_ == "em"
    assert moe.__sklearn_tags__().input_tags.sparse
    # fitted by EM or by Adam, an "auto" mixture predicts sparse X
    dense = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    assert dense.solver_ == "adam"
    np.testing.assert_allclose(
        dense.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), rtol=1e-12
    )


def test_refit_below_the_threshold_forgets_adam(small_threshold):
    X, y = _data(500)
    moe = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    assert moe.solver_ == "adam"
    moe.fit(X[:300], y[:300])
    assert moe.solver_ == "em"
    em = MixtureOfExpertsClassifier(n_experts=2, solver="em", random_state=0)
    np.testing.assert_array_equal(
        moe.predict_proba(X), em.fit(X[:300], y[:300]).predict_proba(X)
    )


def test_partial_fit_records_adam():
    X, y = _data(200)
    moe = MixtureOfExpertsClassifier(n_experts=2, solver="adam", random_state=0)
    assert moe.partial_fit(X, y, classes=[0, 1]).solver_ == "adam"


def test_auto_is_not_a_partial_fit_solver():
    assert not hasattr(MixtureOfExpertsClassifier(), "partial_fit")


class _RowCountingKMeans(KMeans):
    """KMeans that records how many rows (and which weights) it was fitted on."""

    fitted_rows = []

    def fit(self, X, y=None, sample_weight=None):
        type(self).fitted_rows.append((X.shape[0], sample_weight))
        return super().fit(X, y, sample_weight=sample_weight)


def test_kmeans_start_uses_a_subsample_of_large_data(monkeypatch):
    monkeypatch.setattr(base, "KMeans", _RowCountingKMeans)
    monkeypatch.setattr(_RowCountingKMeans, "fitted_rows", [])
    X, y = _data(600)
    weights = np.ones(600)
    weights[:100] = 0.0  # never drawn: they do not count for k-means

    def fit():
        moe = MixtureOfExpertsClassifier(n_experts=3, max_iter=2, random_state=0)
        return moe.fit(X, y, sample_weight=weights)

    fit()
    assert _RowCountingKMeans.fitted_rows[-1][0] == 600  # all rows, as before
    monkeypatch.setattr(base, "_KMEANS_MAX_ROWS", 200)
    first = fit()
    rows, sample_weight = _RowCountingKMeans.fitted_rows[-1]
    assert rows == 200 and np.all(sample_weight > 0)
    # the same seed gives the same start, and so the same fit
    np.testing.assert_array_equal(first.predict_proba(X), fit().predict_proba(X))
