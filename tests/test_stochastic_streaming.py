"""Data larger than memory: ``partial_fit`` fed chunks read from disk (a NumPy
memmap, a Parquet file through pyarrow) gives the model the same chunks give in
memory, and memory does not grow with the number of chunks."""

import gc
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor

CHUNK_SIZE = 400


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        2_000, 6, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    return X, y


def _mixture(regression=False):
    estimator = MixtureOfExpertsRegressor if regression else MixtureOfExpertsClassifier
    return estimator(n_experts=3, solver="adam", batch_size=64, random_state=0)


def _stream(mixture, chunks, classes):
    for X, y in chunks:
        mixture.partial_fit(X, y, **classes)
    return mixture


def _in_memory(X, y):
    for start in range(0, X.shape[0], CHUNK_SIZE):
        yield X[start : start + CHUNK_SIZE], y[start : start + CHUNK_SIZE]


def _memmap_chunks(X_path, y_path):
    # the user guide's recipe: a fresh map per chunk, copied, then unmapped
    n_rows = np.load(y_path, mmap_mode="r").shape[0]
    for start in range(0, n_rows, CHUNK_SIZE):
        X = np.array(np.load(X_path, mmap_mode="r")[start : start + CHUNK_SIZE])
        y = np.array(np.load(y_path, mmap_mode="r")[start : start + CHUNK_SIZE])
        yield X, y


def _parquet_chunks(path, feature_names):
    # the user guide's recipe: one row group at a time (iter_batches' memory grew
    # with the batches read, benchmarks/README_streaming.md)
    pq = pytest.importorskip("pyarrow.parquet")
    parquet_file = pq.ParquetFile(path)
    for index in range(parquet_file.num_row_groups):
        table = parquet_file.read_row_group(index, columns=[*feature_names, "y"])
        X = np.column_stack([table[name].to_numpy() for name in feature_names])
        yield X, table["y"].to_numpy()


def _write_parquet(path, X, y):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    names = [f"x{j}" for j in range(X.shape[1])]
    table = pa.table({**{name: X[:, j] for j, name in enumerate(names)}, "y": y})
    pq.write_table(table, path, row_group_size=CHUNK_SIZE)
    return names


@pytest.mark.parametrize("regression", [False, True])
@pytest.mark.parametrize("source", ["memmap", "parquet"])
def test_chunks_from_disk_give_the_in_memory_model(data, tmp_path, source, regression):
    X, y = data
    if regression:
        y = X[:, 0] * 2.0 + np.where(X[:, 1] > 0, X[:, 2], -X[:, 3])
    classes = {} if regression else {"classes": np.unique(y)}
    if source == "memmap":
        # written through a memmap, chunk by chunk, as data too large for memory
        X_disk = np.lib.format.open_memmap(
            tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape
        )
        y_disk = np.lib.format.open_memmap(
            tmp_path / "y.npy", mode="w+", dtype=y.dtype, shape=y.shape
        )
        for start in range(0, X.shape[0], 700):
            X_disk[start : start + 700] = X[start : start + 700]
            y_disk[start : start + 700] = y[start : start + 700]
        X_disk.flush()
        y_disk.flush()
        del X_disk, y_disk

        def chunks():
            return _memmap_chunks(tmp_path / "X.npy", tmp_path / "y.npy")

    else:
        names = _write_parquet(tmp_path / "data.parquet", X, y)

        def chunks():
            return _parquet_chunks(tmp_path / "data.parquet", names)

    streamed, in_memory = _mixture(regression), _mixture(regression)
    for _ in range(2):  # two passes
        _stream(streamed, chunks(), classes)
        _stream(in_memory, _in_memory(X, y), classes)
    assert streamed.n_iter_ == in_memory.n_iter_ == 2 * X.shape[0] // CHUNK_SIZE
    method = "predict" if regression else "predict_proba"
    assert_allclose(
        getattr(streamed, method)(X), getattr(in_memory, method)(X), rtol=0, atol=0
    )
    # and the stream learned: far better than the first chunk's start
    first = _mixture(regression)
    _stream(first, [next(iter(_in_memory(X, y)))], classes)
    assert streamed.score(X, y) > first.score(X, y)


def test_a_memmap_slice_is_read_in_place(data, tmp_path):
    """partial_fit takes a memmap's slice itself, without a copy by the user."""
    X, y = data
    np.save(tmp_path / "X.npy", X)
    X_disk = np.load(tmp_path / "X.npy", mmap_mode="r")
    streamed, in_memory = _mixture(), _mixture()
    classes = {"classes": np.unique(y)}
    starts = (0, 500, 1000)
    _stream(streamed, ((X_disk[s : s + 500], y[s : s + 500]) for s in starts), classes)
    _stream(in_memory, ((X[s : s + 500], y[s : s + 500]) for s in starts), classes)
    assert_allclose(streamed.predict_proba(X), in_memory.predict_proba(X), atol=0)


def test_memory_does_not_grow_with_the_number_of_chunks(data, tmp_path, monkeypatch):
    X, y = data
    chunk_size = X.shape[0]  # 2,000 rows: allocator noise is small against a chunk
    monkeypatch.setattr(__import__(__name__), "CHUNK_SIZE", chunk_size)
    np.save(tmp_path / "X.npy", np.tile(X, (16, 1)))
    np.save(tmp_path / "y.npy", np.tile(y, 16))
    mixture = _mixture()
    classes = {"classes": np.unique(y)}
    chunks = _memmap_chunks(tmp_path / "X.npy", tmp_path / "y.npy")
    _stream(mixture, [next(chunks)], classes)  # the start: outside the measure
    retained, peaks = [], []
    tracemalloc.start()
    try:
        for index, (X_chunk, y_chunk) in enumerate(chunks, start=1):
            mixture.partial_fit(X_chunk, y_chunk)
            del X_chunk, y_chunk
            gc.collect()  # the replaced experts' reference cycles are not a leak
            if index in (3, 15):
                current, peak = tracemalloc.get_traced_memory()
                retained.append(current)
                peaks.append(peak)
    finally:
        tracemalloc.stop()
    assert len(peaks) == 2
    chunk_bytes = chunk_size * X.shape[1] * X.itemsize
    # 12 more chunks: nothing of a chunk is kept (what stays allocated grows by
    # less than a tenth of a chunk in all), and the peak by less than that too
    assert retained[1] - retained[0] < chunk_bytes / 10, (retained, chunk_bytes)
    assert peaks[1] - peaks[0] < chunk_bytes / 10, (peaks, chunk_bytes)


def test_a_constant_first_chunk_does_not_freeze_the_regressor():
    """The first chunk fixes the targets' standardisation: a constant one gave a
    spread of 1e-12, every later target became ~1e12 and the model never moved
    (R^2 -0.755 after any number of passes)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    y = 5 + 2 * X[:, 0] + np.where(X[:, 1] > 0, X[:, 2], -X[:, 2])
    y += 0.1 * rng.normal(size=3000)
    model = MixtureOfExpertsRegressor(n_experts=2, solver="adam", random_state=0)
    model.partial_fit(X[:500], np.full(500, 3.0))
    scores = []
    for _ in range(10):
        for start in range(500, 3000, 500):
            model.partial_fit(X[start : start + 500], y[start : start + 500])
        scores.append(model.score(X, y))
    assert np.all(np.isfinite(model.predict(X)))
    assert scores[-1] > 0.5 and scores[-1] > scores[0] + 0.5, scores


@pytest.mark.parametrize("regression", [False, True])
def test_a_first_chunk_smaller_than_n_experts_is_a_clear_error(regression):
    X = np.arange(4.0).reshape(2, 2)
    model = (MixtureOfExpertsRegressor if regression else MixtureOfExpertsClassifier)(
        n_experts=3, solver="adam", random_state=0
    )
    extra = {} if regression else {"classes": [0, 1]}
    with pytest.raises(ValueError, match="needs at least n_experts=3 .* got 2 of 2"):
        model.partial_fit(X, np.array([0, 1]), **extra)
