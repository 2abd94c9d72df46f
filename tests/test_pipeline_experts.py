"""Pipelines as experts: the mixture's weights reach the pipeline's final step."""

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("routing_enabled", [False, True])
def test_identity_pipeline_expert_equals_its_final_step(iris, routing_enabled):
    """An identity step in front changes nothing: the weights reach the final step
    (with and without metadata routing)."""
    X, y = iris
    params = dict(n_experts=3, max_iter=20, random_state=0)
    # tight expert fits: the plain expert warm-starts from the last M-step, the
    # pipeline starts afresh, and both must land on the same optimum
    expert = LogisticRegression(tol=1e-12, max_iter=10_000)
    plain = MixtureOfExpertsClassifier(expert, **params).fit(X, y)
    pipe = make_pipeline(FunctionTransformer(), expert)
    with sklearn.config_context(enable_metadata_routing=routing_enabled):
        piped = MixtureOfExpertsClassifier(pipe, **params).fit(X, y)
    assert_allclose(piped.predict_proba(X), plain.predict_proba(X), atol=1e-6)


def test_pipeline_expert_is_not_mutated(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    before = clone(pipe).get_params()
    with sklearn.config_context(enable_metadata_routing=True):
        MixtureOfExpertsClassifier(pipe, n_experts=2, random_state=0).fit(X, y)
        routing = pipe.get_metadata_routing()
    assert not hasattr(pipe, "n_features_in_")
    assert pipe.get_params().keys() == before.keys()
    assert "sample_weight" not in str(routing.consumes("fit", ["sample_weight"]))


def test_spline_pipeline_experts_fit_a_piecewise_curve():
    """flexmix users put basis expansions in the experts: two spline experts fit the
    two smooth curves on either side of x = 0 that two lines cannot."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(600, 1))
    y = np.where(X[:, 0] < 0, np.sin(3 * X[:, 0]), 3 + X[:, 0] ** 2)
    y = y + 0.1 * rng.normal(size=600)
    spline = make_pipeline(SplineTransformer(n_knots=8), Ridge(alpha=1e-3))
    splines = MixtureOfExpertsRegressor(spline, n_experts=2, random_state=0).fit(X, y)
    lines = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=2, random_state=0
    ).fit(X, y)
    assert np.sort(splines.noise_scale_)[1] < 0.2 < np.sort(lines.noise_scale_)[1]


def test_pipeline_whose_final_step_takes_no_weights_is_refused(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), KNeighborsClassifier())
    with pytest.raises(ValueError, match="does not accept sample_weight"):
        MixtureOfExpertsClassifier(pipe, n_experts=2).fit(X, y)
