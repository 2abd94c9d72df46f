"""MixtureOfExpertsClassifier: routing, EM, sklearn integration, recovery, bad input."""

import pickle
import re
import warnings

import numpy as np
import pytest
from _mixtures import sample_linear_mixture
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import linear_sum_assignment
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, log_loss
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from skmoe import MixtureOfExpertsClassifier
from skmoe.gating import SoftmaxGate
from skmoe.solvers._em import _reseed_empty


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


class CountingClassifier(ClassifierMixin, BaseEstimator):
    """A LogisticRegression that counts the rows it is asked to predict."""

    predicted_rows = []

    def fit(self, X, y, sample_weight=None):
        self.model_ = LogisticRegression().fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        CountingClassifier.predicted_rows.append(X.shape[0])
        return self.model_.predict_proba(X)


# ----------------------------------------------------------------------- routing
@pytest.mark.parametrize("routing", ["soft", "hard", "topk"])
def test_predict_proba_is_the_routed_mixture(iris, routing):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        n_experts=3, routing=routing, top_k=2, random_state=0
    ).fit(X, y)
    routing_weights = moe.predict_gate_proba(X)
    expert_proba = moe.predict_expert_proba(X)
    assert expert_proba.shape == (X.shape[0], 3, 3)
    assert_allclose(routing_weights.sum(axis=1), 1.0)
    nonzero = np.count_nonzero(routing_weights, axis=1)
    expected_nonzero = {"soft": 3, "hard": 1, "topk": 2}[routing]
    assert np.all(nonzero == expected_nonzero)
    expected = np.einsum("nk,nkc->nc", routing_weights, expert_proba)
    proba = moe.predict_proba(X)
    assert_allclose(proba, expected, atol=1e-12)
    assert_allclose(proba.sum(axis=1), 1.0)
    with np.errstate(divide="ignore"):
        assert_allclose(moe.predict_log_proba(X), np.log(proba))
    assert_array_equal(moe.predict(X), moe.classes_[proba.argmax(axis=1)])


def test_soft_routing_weights_are_the_gate_probabilities(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(X, y)
    assert_allclose(moe.predict_gate_proba(X), moe.gate_.predict_proba(X))
    hard = clone(moe).set_params(routing="hard").fit(X, y)
    selected = hard.gate_.predict_proba(X).argmax(axis=1)
    assert_array_equal(hard.predict_gate_proba(X).argmax(axis=1), selected)


@pytest.mark.parametrize("routing, per_row", [("hard", 1), ("topk", 2), ("soft", 3)])
def test_only_routed_experts_are_evaluated(linear_mixture, routing, per_row):
    X, y, _, _ = linear_mixture
    moe = MixtureOfExpertsClassifier(
        CountingClassifier(), n_experts=3, routing=routing, top_k=2, random_state=0
    ).fit(X, y)
    assert all(isinstance(e, CountingClassifier) for e in moe.experts_)
    CountingClassifier.predicted_rows.clear()
    moe.predict_proba(X)
    assert sum(CountingClassifier.predicted_rows) == per_row * X.shape[0]


# ------------------------------------------------------------------------- EM
def test_soft_em_likelihood_increases_with_exact_m_steps(linear_mixture):
    # With (nearly) unpenalised logistic experts and gate fitted to tight tolerance,
    # each M-step maximises the expected complete conditional log-likelihood, so EM
    # never lowers the likelihood. (GaussianNB would not do: it maximises the joint
    # likelihood of x and y, not the conditional one EM needs.)
    X, y, _, _ = linear_mixture
    moe = MixtureOfExpertsClassifier(
        LogisticRegression(C=1e4, tol=1e-10, max_iter=10_000),
        gate=SoftmaxGate(C=1e4, tol=1e-10, max_iter=10_000),
        n_experts=3,
        max_iter=15,
        tol=0,
        init="pca",
    )
    with pytest.warns(ConvergenceWarning):
        moe.fit(X, y)
    assert np.all(np.diff(moe.lower_bounds_) >= -1e-7)
    assert moe.lower_bound_ == moe.lower_bounds_[-1]
    assert moe.n_iter_ == 15 and not moe.converged_


def test_em_reports_the_objective_it_increases_and_converges_on_it():
    """On breast cancer the lower bound (the plain likelihood) fell three
    iterations in a row and EM said it had converged: with L2-penalised experts
    and gate, EM increases the penalised likelihood, not the plain one. The
    penalised objective is what lower_bounds_ now holds; it never falls."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for routing in ("soft", "hard", "topk"):
        moe = MixtureOfExpertsClassifier(
            n_experts=3, routing=routing, random_state=0
        ).fit(X, y)
        assert moe.converged_
        assert np.all(np.diff(moe.lower_bounds_) >= -1e-7)


def test_topk_em_never_lowers_its_objective():
    """Top-k EM's gate step fitted the full softmax, not the truncated gate the
    objective uses: on the audit's data (two regimes split at x0 = 0, y > 1 as the
    label) it lowered the objective at 2 of its iterations and EM warned. The gate
    step is now kept only where it does not lower the objective, so the penalised
    objective never falls and the returned model is the best iterate."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X = rng.uniform(-2, 2, size=(1000, 2))
        right = X[:, 0] > 0
        y = np.where(right, 3 + 2 * X[:, 1], -1 - X[:, 1])
        y = y + np.where(right, 0.3, 1.0) * rng.normal(size=1000) > 1
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            moe = MixtureOfExpertsClassifier(
                n_experts=3, routing="topk", top_k=2, random_state=seed
            ).fit(X, y.astype(int))
        assert np.all(np.diff(moe.lower_bounds_) >= -1e-7)
        assert moe.lower_bound_ == moe.lower_bounds_.max()


class _UnweightedLogistic(LogisticRegression):
    """A logistic regression that drops its sample weights: not a weighted M-step."""

    def fit(self, X, y, sample_weight=None):
        return super().fit(X, y)


def test_a_decreasing_objective_warns_and_is_not_convergence(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="decreased the objective"):
        moe = MixtureOfExpertsClassifier(
            _UnweightedLogistic(), n_experts=3, random_state=0
        ).fit(X, y)
    steps = np.diff(moe.lower_bounds_)
    assert steps.min() < -1e-3  # the M-steps do lower it
    if moe.converged_:
        assert steps[-1] >= -1e-7  # never "converged" on a decrease


def test_convergence_attributes_and_warning(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        moe = MixtureOfExpertsClassifier(max_iter=1, random_state=0).fit(X, y)
    assert moe.n_iter_ == 1 and not moe.converged_
    moe = MixtureOfExpertsClassifier(max_iter=200, tol=1e-3, random_state=0).fit(X, y)
    assert moe.converged_ and moe.n_iter_ < 200
    assert len(moe.lower_bounds_) == moe.n_iter_


def test_n_init_keeps_the_best_initialisation(linear_mixture):
    X, y, _, _ = linear_mixture
    kwargs = {"n_experts": 3, "init": "random", "random_state": 1, "max_iter": 30}
    with pytest.warns(ConvergenceWarning) if False else _no_warning_check():
        single = MixtureOfExpertsClassifier(**kwargs).fit(X, y)
        several = MixtureOfExpertsClassifier(n_init=4, **kwargs).fit(X, y)
    assert several.lower_bound_ >= single.lower_bound_


class _no_warning_check:
    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("ignore", ConvergenceWarning)

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


def test_warm_start_continues_em(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        n_experts=3, warm_start=True, max_iter=3, tol=0, random_state=0
    )
    with _no_warning_check():
        moe.fit(X, y)
        first = moe.lower_bound_
        experts = moe.experts_
        moe.fit(X, y)
    assert moe.lower_bound_ >= first - 1e-6
    assert moe.experts_[0] is experts[0]  # refitted in place, not re-initialised
    cold = clone(moe).set_params(warm_start=False, max_iter=6)
    with _no_warning_check():
        cold.fit(X, y)
    assert_allclose(moe.lower_bound_, cold.lower_bound_, rtol=1e-3)


def test_verbose_reports_iterations(iris, capsys):
    X, y = iris
    MixtureOfExpertsClassifier(verbose=1, max_iter=5, tol=1e-2, random_state=0).fit(
        X, y
    )
    out = capsys.readouterr().out
    assert re.search(r"init 0 iteration 1: lower bound -\d", out)
    assert "converged" in out


def test_n_jobs_gives_the_same_fit(iris):
    X, y = iris
    one = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(X, y)
    two = MixtureOfExpertsClassifier(n_experts=3, random_state=0, n_jobs=2).fit(X, y)
    assert_allclose(one.predict_proba(X), two.predict_proba(X), atol=1e-10)


def test_hard_em_reseeds_an_empty_expert():
    responsibilities = np.zeros((10, 3))
    responsibilities[:6, 0] = 1.0
    responsibilities[6:, 1] = 1.0
    fit_quality = -np.arange(10.0)  # sample 9 explained worst
    weights = np.ones(10)
    reseeded = _reseed_empty(responsibilities, weights, fit_quality)
    assert reseeded[:, 2].sum() >= 1
    moved = np.flatnonzero(reseeded[:, 2])
    assert 9 in moved  # the worst-explained sample goes first
    assert_allclose(reseeded.sum(axis=1), 1.0)
    assert np.all((weights @ reseeded) > 0)
    # nothing to do when every expert has weight
    assert _reseed_empty(reseeded, weights, fit_quality) is reseeded


@pytest.mark.parametrize("routing", ["hard", "topk"])
def test_no_expert_is_left_empty(routing):
    X, y, _, _ = sample_linear_mixture(300, random_state=3)
    moe = MixtureOfExpertsClassifier(
        n_experts=8,
        routing=routing,
        top_k=1 if routing == "topk" else 2,
        random_state=0,
        max_iter=20,
    )
    with _no_warning_check():
        moe.fit(X, y)
    assert len(moe.experts_) == 8
    for expert in moe.experts_:
        assert hasattr(expert, "classes_")


def test_expert_with_one_class_in_its_view_predicts_that_class():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-5, 0.3, (40, 2)), rng.normal(5, 0.3, (40, 2))])
    y = np.r_[np.zeros(40, int), rng.integers(0, 2, 40)]
    moe = MixtureOfExpertsClassifier(routing="hard", random_state=0).fit(X, y)
    pure = [k for k, e in enumerate(moe.experts_) if len(e.classes_) == 1]
    assert len(pure) == 1
    # its 40 samples of class 0 plus a one-sample prior at the class frequencies:
    # class 1 keeps the posterior predictive mass pi_1 / (40 + 1), not zero
    n_routed = int(np.sum(moe.predict_gate_proba(X).argmax(axis=1) == pure[0]))
    assert n_routed == 40
    pi_1 = np.mean(y == 1)
    assert_allclose(moe.unseen_class_proba_[pure[0]], [0.0, pi_1 / 41])
    assert_allclose(moe.predict_proba(X[:40]), [[1 - pi_1 / 41, pi_1 / 41]] * 40)


def test_unseen_class_mass_is_the_dirichlet_posterior_predictive():
    # three far-apart clusters, one per expert; the left one holds classes 0 and 1
    rng = np.random.default_rng(1)
    cluster = np.repeat([0, 1, 2], 60)
    X = np.column_stack([6.0 * (cluster - 1) + rng.normal(0, 0.3, 180),
                         rng.normal(0, 1, 180)])
    y = np.r_[rng.integers(0, 2, 60), rng.integers(0, 3, 120)]
    weights = rng.uniform(0.5, 2.0, 180)
    moe = MixtureOfExpertsClassifier(n_experts=3, routing="hard", random_state=0)
    moe.fit(X, y, sample_weight=weights)
    assert moe.converged_
    routed = moe.predict_gate_proba(X).argmax(axis=1)
    prior = np.bincount(y, weights) / weights.sum()
    n_with_unseen = 0
    for k, expert in enumerate(moe.experts_):
        unseen = np.setdiff1d(np.arange(3), expert.classes_)
        rows = routed == k
        assert len(np.unique(cluster[rows])) == 1
        if unseen.size == 0:
            assert_array_equal(moe.unseen_class_proba_[k], 0.0)
            continue
        n_with_unseen += 1
        # the expert's training weights: a weight counts as that many samples
        counts = np.bincount(y[rows], weights[rows], minlength=3)
        expected = (counts + prior) / (counts.sum() + 1)
        assert_allclose(moe.unseen_class_proba_[k, unseen], expected[unseen])
        assert_array_equal(np.delete(moe.unseen_class_proba_[k], unseen), 0.0)
        proba = moe.predict_proba(X[rows])
        assert_allclose(proba[:, unseen], np.tile(expected[unseen], (rows.sum(), 1)))
    assert n_with_unseen == 1
    proba = moe.predict_proba(X)
    assert np.all(proba > 0)
    assert_allclose(proba.sum(axis=1), 1.0)


def test_topk_routing_gives_no_zero_probability(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        n_experts=4, routing="topk", top_k=2, random_state=0
    ).fit(X, y)
    assert np.all(moe.predict_proba(X) > 0)


def test_hard_routing_gives_no_zero_probability_and_a_usable_log_loss():
    # issue 14: 234 of the 450 out-of-fold probabilities were exactly zero, three
    # samples had P(true class) = 0 and the 5-fold log loss was 0.85 (0.16 soft)
    X, y = load_iris(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(
        StandardScaler(),
        MixtureOfExpertsClassifier(n_experts=4, routing="hard", random_state=0),
    )
    proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
    assert np.all(proba > 0)
    assert log_loss(y, proba) < 0.3
    # the mass comes out of the other classes in proportion: argmax unchanged
    soft = model.set_params(mixtureofexpertsclassifier__routing="soft")
    soft_proba = cross_val_predict(soft, X, y, cv=cv, method="predict_proba")
    assert log_loss(y, soft_proba) < log_loss(y, proba)


def test_soft_routing_keeps_the_experts_probabilities(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(n_experts=4, random_state=0).fit(X, y)
    assert_array_equal(moe.unseen_class_proba_, 0.0)


# ------------------------------------------------------------ heterogeneity
def test_heterogeneous_experts_and_custom_gate(iris):
    X, y = iris
    experts = [LogisticRegression(), GaussianNB(), DecisionTreeClassifier(max_depth=2)]
    moe = MixtureOfExpertsClassifier(
        experts, gate=DecisionTreeClassifier(max_depth=3), random_state=0
    ).fit(X, y)
    # an expert whose routed view holds one class becomes a DummyClassifier
    for fitted, given in zip(moe.experts_, experts, strict=True):
        assert type(fitted) in (type(given), DummyClassifier)
    assert isinstance(moe.gate_, DecisionTreeClassifier)
    assert moe.score(X, y) > 0.9
    assert_allclose(moe.predict_gate_proba(X).sum(axis=1), 1.0)


def test_hard_routing_accepts_experts_without_sample_weight(iris):
    X, y = iris
    moe = MixtureOfExpertsClassifier(
        KNeighborsClassifier(5), routing="hard", random_state=0
    ).fit(X, y)
    assert moe.score(X, y) > 0.9


def test_fit_does_not_mutate_inputs_or_user_estimators(iris):
    X, y = iris
    X_copy, y_copy = X.copy(), y.copy()
    expert = LogisticRegression()
    gate = LogisticRegression()
    params = (expert.get_params(), gate.get_params())
    weights = np.ones(len(y))
    moe = MixtureOfExpertsClassifier(expert, gate=gate, random_state=0)
    moe.fit(X, y, sample_weight=weights)
    assert_array_equal(X, X_copy)
    assert_array_equal(y, y_copy)
    assert_array_equal(weights, 1.0)
    assert (expert.get_params(), gate.get_params()) == params
    assert not hasattr(expert, "coef_") and not hasattr(gate, "coef_")
    assert all(e is not expert for e in moe.experts_) and moe.gate_ is not gate


# --------------------------------------------------------------- sklearn tools
def test_pipeline_clone_pickle(iris):
    X, y = iris
    pipe = make_pipeline(
        StandardScaler(), MixtureOfExpertsClassifier(n_experts=2, random_state=0)
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(pipe))
    assert_allclose(restored.predict_proba(X), pipe.predict_proba(X))
    cloned = clone(pipe)
    assert not hasattr(cloned[-1], "experts_")
    assert_allclose(cloned.fit(X, y).predict_proba(X), pipe.predict_proba(X))


def test_grid_search_over_routing_and_n_experts(iris):
    X, y = iris
    search = GridSearchCV(
        MixtureOfExpertsClassifier(random_state=0, max_iter=20),
        {"routing": ["soft", "hard"], "n_experts": [1, 2]},
        cv=3,
        scoring="neg_log_loss",
    )
    with _no_warning_check():
        search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.routing in {"soft", "hard"}
    scores = cross_val_score(search.best_estimator_, X, y, cv=3)
    assert scores.mean() > 0.85


def test_pandas_input_keeps_feature_names(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    labels = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y])
    moe = MixtureOfExpertsClassifier(random_state=0).fit(frame, labels)
    assert_array_equal(moe.feature_names_in_, ["sl", "sw", "pl", "pw"])
    assert set(moe.predict(frame)) <= {"setosa", "versicolor", "virginica"}
    with pytest.warns(UserWarning, match="feature names"):
        moe.predict(X)


def test_sample_weight_zero_equals_removal(iris):
    X, y = iris
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 3, size=len(y)).astype(float)
    kwargs = {"n_experts": 2, "init": "pca"}
    weighted = MixtureOfExpertsClassifier(**kwargs).fit(X, y, sample_weight=weights)
    repeated = MixtureOfExpertsClassifier(**kwargs).fit(
        np.repeat(X, weights.astype(int), axis=0), np.repeat(y, weights.astype(int))
    )
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-6)


def test_sample_weight_changes_the_fit(iris):
    X, y = iris
    weights = np.where(y == 2, 10.0, 1.0)
    plain = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    weighted = MixtureOfExpertsClassifier(random_state=0).fit(
        X, y, sample_weight=weights
    )
    assert (
        weighted.predict_proba(X)[y == 2, 2].mean()
        > plain.predict_proba(X)[y == 2, 2].mean()
    )


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """LogisticRegression that records the extra metadata routed to its fit."""

    received = []

    def fit(self, X, y, sample_weight=None, tag=None):
        RecordingClassifier.received.append(tag)
        self.model_ = LogisticRegression().fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def test_metadata_routing_on_and_off(iris):
    X, y = iris
    weights = np.where(y == 0, 2.0, 1.0)
    off = cross_validate(
        MixtureOfExpertsClassifier(random_state=0, max_iter=20),
        X,
        y,
        cv=3,
        params={"sample_weight": weights},
    )
    with config_context(enable_metadata_routing=True):
        moe = MixtureOfExpertsClassifier(random_state=0, max_iter=20)
        moe.set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        on = cross_validate(moe, X, y, cv=3, params={"sample_weight": weights})
        assert_allclose(on["test_score"], off["test_score"])
        # further metadata reaches the experts' fit
        RecordingClassifier.received.clear()
        expert = RecordingClassifier().set_fit_request(tag=True)
        MixtureOfExpertsClassifier(expert, max_iter=2, random_state=0).fit(
            X, y, tag="hello"
        )
        assert RecordingClassifier.received and set(RecordingClassifier.received) == {
            "hello"
        }
    with pytest.raises(ValueError, match="tag"):
        MixtureOfExpertsClassifier(RecordingClassifier()).fit(X, y, tag="hello")


# -------------------------------------------------------------------- recovery
def test_soft_em_recovers_a_known_mixture(linear_mixture):
    X, y, _, _ = linear_mixture
    X_test, y_test, region_test, posterior = sample_linear_mixture(20_000, 1)
    bayes_accuracy = np.maximum(posterior, 1 - posterior).mean()
    single = LogisticRegression().fit(X, y).score(X_test, y_test)
    moe = MixtureOfExpertsClassifier(
        LogisticRegression(C=10), n_experts=3, init="pca", random_state=0
    ).fit(X, y)
    accuracy = moe.score(X_test, y_test)
    assert accuracy > bayes_accuracy - 0.015
    assert accuracy > single + 0.08
    # the gate's regions match the true ones, up to a relabelling of the experts
    table = confusion_matrix(region_test, moe.predict_gate_proba(X_test).argmax(1))
    rows, columns = linear_sum_assignment(-table)
    assert table[rows, columns].sum() / len(region_test) > 0.9


@pytest.mark.parametrize("loader", [load_digits, load_iris])
def test_beats_a_single_logistic_regression_on_real_data(loader):
    # The same expert, the same configuration on both data sets; held-out log loss
    # over a 5-fold cross-validation (benchmarks/README.md has the wider table).
    X, y = loader(return_X_y=True)
    expert = LogisticRegression(max_iter=2000)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    single = cross_val_score(
        make_pipeline(StandardScaler(), expert), X, y, cv=cv, scoring="neg_log_loss"
    )
    moe = make_pipeline(
        StandardScaler(),
        MixtureOfExpertsClassifier(expert, n_experts=2, random_state=0),
    )
    with _no_warning_check():
        mixture = cross_val_score(moe, X, y, cv=cv, scoring="neg_log_loss")
    assert -mixture.mean() < -single.mean()


# ------------------------------------------------------------------- bad input
def test_bad_input_gives_clear_errors(iris):
    X, y = iris
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MixtureOfExpertsClassifier().fit(X_nan, y)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        MixtureOfExpertsClassifier().fit(X_inf, y)
    with pytest.raises(ValueError, match="one class"):
        MixtureOfExpertsClassifier().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="n_experts=5 and n_samples=3"):
        MixtureOfExpertsClassifier(n_experts=5).fit(X[:3], [0, 1, 0])
    with pytest.raises(ValueError, match="KNeighborsClassifier.*sample_weight"):
        MixtureOfExpertsClassifier(KNeighborsClassifier()).fit(X, y)
    with pytest.raises(ValueError, match="KNeighborsClassifier.*sample_weight"):
        MixtureOfExpertsClassifier(KNeighborsClassifier(), routing="hard").fit(
            X, y, sample_weight=np.ones(len(y))
        )
    with pytest.raises(TypeError, match="LinearSVC.*predict_proba"):
        MixtureOfExpertsClassifier(LinearSVC()).fit(X, y)
    with pytest.raises(ValueError, match="top_k=3 must be at most n_experts=2"):
        MixtureOfExpertsClassifier(routing="topk", top_k=3).fit(X, y)
    with pytest.raises(ValueError, match="n_experts=3 does not match the 2"):
        MixtureOfExpertsClassifier([GaussianNB(), GaussianNB()], n_experts=3).fit(X, y)
    with pytest.raises(ValueError, match="'routing' parameter"):
        MixtureOfExpertsClassifier(routing="sparse").fit(X, y)
    with pytest.raises(ValueError, match="'n_experts' parameter"):
        MixtureOfExpertsClassifier(n_experts=0).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        MixtureOfExpertsClassifier().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(NotFittedError):
        MixtureOfExpertsClassifier().predict(X)
    moe = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="4 features"):
        moe.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        moe.predict_proba(X_nan)


def test_held_out_log_loss_is_finite_for_hard_routing(iris):
    X, y = iris
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    moe = MixtureOfExpertsClassifier(routing="hard", random_state=0).fit(
        X_train, y_train
    )
    assert np.isfinite(log_loss(y_test, moe.predict_proba(X_test), labels=[0, 1, 2]))


def test_n_init_rescues_hard_em_from_a_poor_local_optimum():
    # the two-region data of docs/getting_started.rst; docs/user_guide/routing.rst
    # quotes these figures
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(1000, 2))
    y = np.where(X[:, 0] < 0, X[:, 1] > 1, X[:, 1] < -1).astype(int)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    kwargs = {"n_experts": 2, "routing": "hard", "random_state": 0}
    single = MixtureOfExpertsClassifier(**kwargs).fit(X_train, y_train)
    # k-means on a uniform square finds much the same halves from every seed; random
    # starts are more diverse
    several = MixtureOfExpertsClassifier(n_init=4, init="random", **kwargs)
    several.fit(X_train, y_train)
    assert single.score(X_test, y_test) < 0.9
    assert several.score(X_test, y_test) > 0.95
    assert several.lower_bound_ > single.lower_bound_ + 0.1


def test_errors_for_nan_and_strings_say_what_to_do():
    # issue 14: sklearn's NaN message suggested HistGradientBoosting, which the
    # experts already were; a string column gave no hint to encode it
    from sklearn.ensemble import HistGradientBoostingClassifier

    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    nan_tolerant = MixtureOfExpertsClassifier(
        HistGradientBoostingClassifier(max_iter=5), random_state=0
    )
    with pytest.raises(ValueError, match=r"NaN\. The experts would accept missing "
                       r"values, but the gate .*SimpleImputer\(add_indicator=True\)"):
        nan_tolerant.fit(X_nan, y)
    with pytest.raises(ValueError, match=r"NaN\. The gate .* needs finite X"):
        MixtureOfExpertsClassifier().fit(X_nan, y)
    fitted = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="needs finite X"):
        fitted.predict_proba(X_nan)
    frame = pd.DataFrame({"x": X[:, 0], "color": rng.choice(["red", "blue"], 80)})
    with pytest.raises(ValueError, match=r"could not convert string to float: "
                       r"'(red|blue)'\. .*OneHotEncoder"):
        MixtureOfExpertsClassifier().fit(frame, y)
    # the advice works
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    encoded = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["color"]),
            remainder="passthrough",
        ),
        MixtureOfExpertsClassifier(random_state=0),
    )
    assert encoded.fit(frame, y).score(frame, y) > 0.9
