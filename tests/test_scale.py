"""A cluster through joblib: the parallel parts of a fit run on Dask workers.

Everything skmoe runs in parallel goes through joblib, so that
``joblib.parallel_backend("dask")`` with a ``dask.distributed`` client sends it to the
cluster's workers: the experts of every M-step, the ``n_init`` starts, the
cross-fitting behind ``expert_calibration``, and (through scikit-learn)
cross-validation and grid search. These tests start a ``LocalCluster`` of two worker
processes on 127.0.0.1, check with Dask's task stream that the work ran there, and
that the model equals the ``n_jobs=1`` fit on one process; the ``n_init`` starts are
also checked in two loky processes and on Ray's joblib backend (a local
``ray.init(num_cpus=2)``; skipped without ray).
"""

import functools
import warnings

import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream
from joblib import parallel_backend
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _functions_run(stream):
    """The names of the functions the workers ran: joblib sends batches named
    ``batch_of_<function>_<n>_calls-<id>``."""
    return {
        task["key"].removeprefix("batch_of_").split("_calls-")[0].rsplit("_", 1)[0]
        for task in stream.data
        if task["key"].startswith("batch_of_")
    }


pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.mark.parametrize("expert_calibration", [None, "temperature"])
def test_fit_on_dask_workers_equals_single_process_fit(
    client, iris, expert_calibration
):
    X, y = iris
    params = dict(
        expert=LogisticRegression(max_iter=1000),
        n_experts=3,
        max_iter=5,
        expert_calibration=expert_calibration,
        random_state=0,
    )
    reference = MixtureOfExpertsClassifier(n_jobs=1, **params).fit(X, y)
    with get_task_stream(client) as stream, parallel_backend("dask"):
        distributed = MixtureOfExpertsClassifier(**params).fit(X, y)
    expected = {"_fit_one"} | ({"_out_of_fold_proba"} if expert_calibration else set())
    assert _functions_run(stream) == expected
    workers = {task["worker"] for task in stream.data}
    assert workers == set(client.scheduler_info()["workers"])  # both did work
    assert_allclose(distributed.predict_proba(X), reference.predict_proba(X), atol=0)
    assert distributed.n_iter_ == reference.n_iter_


def test_grid_search_on_dask_workers(client, iris):
    X, y = iris
    grid = {"routing": ["soft", "hard"], "n_experts": [2, 3]}
    estimator = MixtureOfExpertsClassifier(max_iter=5, random_state=0)
    reference = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
    with get_task_stream(client) as stream, parallel_backend("dask"):
        distributed = GridSearchCV(estimator, grid, cv=3).fit(X, y)
    assert "_fit_and_score" in _functions_run(stream)
    assert_allclose(
        distributed.cv_results_["mean_test_score"],
        reference.cv_results_["mean_test_score"],
        atol=0,
    )
    assert distributed.best_params_ == reference.best_params_


def test_scattered_arrays_give_the_same_model(client):
    """``parallel_backend("dask", scatter=[X, y])`` sends the arrays to the workers
    once, up front; the tasks of every M-step then refer to them (the recipe of the
    "Scaling up" guide for large data)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 10))
    y = (X[:, 0] + 0.5 * rng.normal(size=X.shape[0]) > 0).astype(int)
    model = MixtureOfExpertsClassifier(n_experts=2, max_iter=3, random_state=0)
    with parallel_backend("dask", scatter=[X, y]):
        fitted = model.fit(X, y)
    reference = MixtureOfExpertsClassifier(
        n_experts=2, max_iter=3, random_state=0
    ).fit(X, y)
    assert_allclose(fitted.predict_proba(X[:100]), reference.predict_proba(X[:100]))


@pytest.mark.parametrize(
    "params",
    [
        {"expert": LogisticRegression(max_iter=1000), "init": "random"},
        {"solver": "adam", "init": "random", "max_iter": 3, "batch_size": 32},
    ],
    ids=["em", "adam"],
)
def test_n_init_starts_on_dask_workers_equal_single_process_fit(client, iris, params):
    X, y = iris
    params = {"n_experts": 3, "n_init": 4, "max_iter": 5, "random_state": 0, **params}
    reference = MixtureOfExpertsClassifier(n_jobs=1, **params).fit(X, y)
    with get_task_stream(client) as stream, parallel_backend("dask"):
        distributed = MixtureOfExpertsClassifier(**params).fit(X, y)
    assert "_run_start" in _functions_run(stream)
    workers = {task["worker"] for task in stream.data}
    assert workers == set(client.scheduler_info()["workers"])  # both did work
    assert_allclose(distributed.predict_proba(X), reference.predict_proba(X), atol=0)
    assert distributed.lower_bound_ == reference.lower_bound_
    assert distributed.n_iter_ == reference.n_iter_


def test_n_init_starts_in_loky_processes_equal_single_process_fit(iris):
    """n_jobs=2 runs the starts in two loky processes: the same model."""
    X, y = iris
    params = {"n_experts": 3, "n_init": 3, "init": "random", "max_iter": 5}
    reference = MixtureOfExpertsClassifier(n_jobs=1, random_state=0, **params)
    parallel = MixtureOfExpertsClassifier(n_jobs=2, random_state=0, **params)
    reference.fit(X, y)
    parallel.fit(X, y)
    assert_allclose(parallel.predict_proba(X), reference.predict_proba(X), atol=0)
    assert parallel.lower_bound_ == reference.lower_bound_


@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    with warnings.catch_warnings():
        # Ray's notice about a future default for GPU visibility (no GPU here)
        warnings.filterwarnings(
            "ignore", "Tip: In future versions of Ray", FutureWarning
        )
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    register_ray()
    yield ray
    ray.shutdown()


def test_n_init_starts_on_ray_equal_single_process_fit(ray_backend, iris):
    X, y = iris
    params = {
        "expert": LogisticRegression(max_iter=1000),
        "n_experts": 3,
        "n_init": 3,
        "init": "random",
        "max_iter": 5,
        "random_state": 0,
    }
    reference = MixtureOfExpertsClassifier(n_jobs=1, **params).fit(X, y)
    with parallel_backend("ray"):
        distributed = MixtureOfExpertsClassifier(**params).fit(X, y)
    assert_allclose(distributed.predict_proba(X), reference.predict_proba(X), atol=0)
    assert distributed.lower_bound_ == reference.lower_bound_


def _openmp_threads():
    from threadpoolctl import threadpool_info

    return [
        info["num_threads"]
        for info in threadpool_info()
        if info["user_api"] == "openmp"
    ]


def test_linear_experts_and_the_kmeans_start_run_one_openmp_thread(monkeypatch, iris):
    """scikit-learn's linear models and k-means gain nothing from OpenMP threads on an
    expert's data and lose much when a core is busy: they get one; an expert whose
    threads do real work (gradient boosting) keeps the user's setting."""
    from sklearn.cluster import KMeans
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    seen = {}

    def spy(cls, name):
        original = cls.fit

        @functools.wraps(original)  # keeps the signature: sample_weight is seen
        def fit(self, *args, **kwargs):
            seen.setdefault(name, set()).update(_openmp_threads())
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", fit)

    spy(LogisticRegression, "linear")
    spy(KMeans, "kmeans")
    spy(HistGradientBoostingClassifier, "boosting")
    X, y = iris
    if not _openmp_threads():
        pytest.skip("no OpenMP runtime loaded")
    with threadpool_limits(limits=2, user_api="openmp"):
        MixtureOfExpertsClassifier(
            n_experts=2, init="kmeans", max_iter=2, random_state=0
        ).fit(X, y)
        MixtureOfExpertsClassifier(
            HistGradientBoostingClassifier(max_iter=5), n_experts=2, init="random",
            max_iter=1, random_state=0,
        ).fit(X, y)
        assert set(_openmp_threads()) == {2}  # the user's setting is restored
    assert seen["linear"] == {1}
    assert seen["kmeans"] == {1}
    assert seen["boosting"] == {2}
