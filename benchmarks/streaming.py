"""Data larger than memory: ``partial_fit`` over chunks read from disk.

Ten million rows (``d=20``, 3 classes) are drawn from a known mixture of 8 logistic
experts behind a softmax gate and written to disk chunk by chunk, as a NumPy ``.npy``
file (read through a memmap) and as a Parquet file (read through pyarrow), in a
temporary directory under ``/tmp`` that is deleted at the end. Then, each in a fresh
process so that its peak resident set size is its own:

1. **memmap**: ``MixtureOfExpertsClassifier(n_experts=8, solver="adam")`` fed one
   pass over the ``.npy`` file by ``partial_fit`` in chunks of ``--chunk-size`` rows
   (the user guide's recipe: a fresh map per chunk, copied, then unmapped);
2. **parquet**: the same over the Parquet file's record batches;
3. **memmap held open (read only)**: the chunks of one map kept open for the whole
   pass, read without fitting, to show what the recipe avoids (the file's pages stay
   mapped into the process and count in its RSS);
4. **in memory**: ``fit`` (``max_iter=10`` epochs, cosine schedule) on the first
   ``--subsample`` rows loaded into memory, a subsample that fits.

Each process reports its peak RSS (``resource.getrusage``) after the warm-up (numba
kernels loaded) and after 1M, 3M and 10M rows, and the held-out log loss and accuracy
on 200,000 fresh rows, with the Bayes log loss of the true mixture for reference.
The report goes to ``benchmarks/README_streaming.md``.

Run from the repository root with one BLAS and one OpenMP thread::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/streaming.py
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/streaming.py --quick
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_core import machine_description  # noqa: E402

N_FEATURES, N_EXPERTS, N_CLASSES = 20, 8, 3
MIXTURE_SEED = 20261130
HELD_OUT_ROWS = 200_000
FEATURE_NAMES = [f"x{j}" for j in range(N_FEATURES)]


def true_mixture():
    """Parameters of the known mixture: a softmax gate over 8 logistic experts."""
    rng = np.random.default_rng(MIXTURE_SEED)
    gate_coef = rng.normal(scale=2.0, size=(N_EXPERTS, N_FEATURES))
    gate_intercept = rng.normal(scale=0.5, size=N_EXPERTS)
    expert_coef = rng.normal(scale=1.5, size=(N_EXPERTS, N_CLASSES, N_FEATURES))
    expert_intercept = rng.normal(scale=0.5, size=(N_EXPERTS, N_CLASSES))
    return gate_coef, gate_intercept, expert_coef, expert_intercept


def _softmax(scores):
    scores = scores - scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


def class_probabilities(X):
    """P(y | x) under the known mixture, shape (n, 3)."""
    gate_coef, gate_intercept, expert_coef, expert_intercept = true_mixture()
    gate = _softmax(X @ gate_coef.T + gate_intercept)
    experts = _softmax(np.einsum("nd,kcd->nkc", X, expert_coef) + expert_intercept)
    return np.einsum("nk,nkc->nc", gate, experts)


def draw(n_rows, seed):
    """``n_rows`` rows of the known mixture; each ``seed`` its own stream."""
    rng = np.random.default_rng([MIXTURE_SEED, seed])
    X = rng.normal(size=(n_rows, N_FEATURES))
    proba = class_probabilities(X)
    u = rng.random(n_rows)[:, None]
    y = (u > np.cumsum(proba, axis=1)).sum(axis=1).astype(np.int8)
    return X, np.minimum(y, N_CLASSES - 1)


def write_files(directory, n_rows, chunk_size):
    """Write ``X.npy``, ``y.npy`` and ``data.parquet`` chunk by chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X_path, y_path, parquet_path = (
        os.path.join(directory, name) for name in ("X.npy", "y.npy", "data.parquet")
    )
    X_disk = np.lib.format.open_memmap(
        X_path, mode="w+", dtype=np.float64, shape=(n_rows, N_FEATURES)
    )
    y_disk = np.lib.format.open_memmap(
        y_path, mode="w+", dtype=np.int8, shape=(n_rows,)
    )
    schema = pa.schema(
        [(name, pa.float64()) for name in FEATURE_NAMES] + [("y", pa.int8())]
    )
    with pq.ParquetWriter(parquet_path, schema) as writer:
        for index, start in enumerate(range(0, n_rows, chunk_size)):
            stop = min(start + chunk_size, n_rows)
            X, y = draw(stop - start, seed=index)
            X_disk[start:stop] = X
            y_disk[start:stop] = y
            columns = [pa.array(X[:, j]) for j in range(N_FEATURES)]
            writer.write_table(
                pa.Table.from_arrays([*columns, pa.array(y)], schema=schema)
            )
            X_disk.flush()
    del X_disk, y_disk
    return X_path, y_path, parquet_path


# --- the user guide's recipe (docs/user_guide/scaling.rst) -----------------------


def memmap_chunks(X_path, y_path, chunk_size):
    """Chunks of a ``.npy`` pair: a fresh map per chunk, copied, then unmapped, so
    that the pages read do not stay in the process's resident set."""
    n_rows = np.load(y_path, mmap_mode="r").shape[0]
    for start in range(0, n_rows, chunk_size):
        X = np.array(np.load(X_path, mmap_mode="r")[start : start + chunk_size])
        y = np.array(np.load(y_path, mmap_mode="r")[start : start + chunk_size])
        yield X, y


def parquet_chunks(path, feature_names, target):
    """Chunks of a Parquet file, one row group at a time (the file is written with
    row groups of the chunk size)."""
    import pyarrow.parquet as pq

    parquet_file = pq.ParquetFile(path)
    for index in range(parquet_file.num_row_groups):
        table = parquet_file.read_row_group(index, columns=[*feature_names, target])
        X = np.column_stack([table[name].to_numpy() for name in feature_names])
        yield X, table[target].to_numpy()


def cosine_rate(mixture, index, n_chunks, peak=1e-2):
    """Set the learning rate of the chunk ``index`` of ``n_chunks``: a cosine from
    ``peak`` down to zero over the pass, as ``fit``'s schedule over its epochs
    (``partial_fit`` itself runs at the constant ``learning_rate_init``)."""
    mixture.set_params(
        learning_rate_init=peak * 0.5 * (1 + np.cos(np.pi * index / n_chunks))
    )


# ---------------------------------------------------------------------------------


def held_open_chunks(memmap_path, chunk_size):
    """The chunks of one map kept open: what the recipe avoids."""
    X_disk = np.load(memmap_path, mmap_mode="r")
    for start in range(0, X_disk.shape[0], chunk_size):
        yield np.array(X_disk[start : start + chunk_size]), None


def iter_batches_chunks(path, chunk_size):
    """The record batches of ``ParquetFile.iter_batches``: what the recipe avoids
    (its memory grew with the batches read here, as apache/arrow#39808 reports for
    the dataset scanner)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
        columns = [batch.column(j).to_numpy() for j in range(N_FEATURES)]
        yield np.column_stack(columns), None


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _mixture(max_iter):
    from skmoe import MixtureOfExpertsClassifier

    return MixtureOfExpertsClassifier(
        n_experts=N_EXPERTS, solver="adam", max_iter=max_iter, random_state=0
    )


def _evaluate(mixture):
    from sklearn.metrics import accuracy_score, log_loss

    X, y = draw(HELD_OUT_ROWS, seed=-1 % 2**31)
    proba = mixture.predict_proba(X)
    return {
        "log_loss": log_loss(y, proba, labels=np.arange(N_CLASSES)),
        "accuracy": accuracy_score(y, mixture.classes_[np.argmax(proba, axis=1)]),
    }


def worker(mode, paths, chunk_size, checkpoints, subsample):
    """One measurement in this (fresh) process; prints a JSON line."""
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    X_path, y_path, parquet_path = paths
    # warm-up: load the numba kernels (cache) on a tiny problem
    X_small, y_small = draw(2_000, seed=-2 % 2**31)
    _mixture(1).fit(X_small, y_small)
    result = {"mode": mode, "baseline_rss_mb": peak_rss_mb(), "checkpoints": {}}
    start = time.perf_counter()
    if mode == "in_memory":
        X = np.array(np.load(X_path, mmap_mode="r")[:subsample])
        y = np.array(np.load(y_path, mmap_mode="r")[:subsample])
        mixture = _mixture(10).fit(X, y)
        result["seconds"] = time.perf_counter() - start
        result["rows"] = subsample
        result["checkpoints"][subsample] = peak_rss_mb()
        result.update(_evaluate(mixture))
        print(json.dumps(result))
        return
    n_chunks = -(-np.load(y_path, mmap_mode="r").shape[0] // chunk_size)
    if mode in ("memmap", "memmap_cosine"):
        chunks = memmap_chunks(X_path, y_path, chunk_size)
    elif mode == "parquet":
        chunks = parquet_chunks(parquet_path, FEATURE_NAMES, "y")
    elif mode == "memmap_held_open":
        chunks = held_open_chunks(X_path, chunk_size)
    else:
        chunks = iter_batches_chunks(parquet_path, chunk_size)
    mixture = _mixture(10)
    seen = 0
    for index, (X, y) in enumerate(chunks):
        if mode in ("memmap_cosine", "parquet"):
            cosine_rate(mixture, index, n_chunks)
        if y is not None:
            mixture.partial_fit(X, y, classes=np.arange(N_CLASSES))
        seen += X.shape[0]
        if seen in checkpoints:
            result["checkpoints"][seen] = peak_rss_mb()
    result["seconds"] = time.perf_counter() - start
    result["rows"] = seen
    if mode in ("memmap", "memmap_cosine", "parquet"):
        result.update(_evaluate(mixture))
    print(json.dumps(result))


def bayes_log_loss():
    X, y = draw(HELD_OUT_ROWS, seed=-1 % 2**31)
    proba = class_probabilities(X)
    return float(-np.mean(np.log(proba[np.arange(y.shape[0]), y])))


def run_worker(mode, paths, args, checkpoints):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        mode,
        "--paths",
        *paths,
        "--chunk-size",
        str(args.chunk_size),
        "--n-rows",
        str(args.n_rows),
        "--subsample",
        str(args.subsample),
        "--checkpoints",
        *map(str, checkpoints),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def report(args, results, checkpoints, bayes, seconds_generate):
    lines = [
        "## Data larger than memory: `partial_fit` over chunks read from disk",
        "",
        "Reproduce from the repository root (from a worktree whose `skmoe` is not the",
        "installed one, prefix `PYTHONPATH=.`):",
        "",
        "```",
        "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/streaming.py"
        + (" --quick" if args.quick else ""),
        "```",
        "",
        f"Data: {args.n_rows:,} rows, d={N_FEATURES}, {N_CLASSES} classes, drawn from "
        "a "
        f"known mixture of {N_EXPERTS} logistic experts behind a softmax gate "
        "(`true_mixture()` in the script), written chunk by chunk to `/tmp` as a "
        f"`.npy` file ({args.n_rows * N_FEATURES * 8 / 2**30:.2f} GiB of float64 X, "
        "read through `np.load(mmap_mode='r')`) and as a Parquet file (read with "
        f"`pyarrow`), in {seconds_generate:.0f} s; both deleted after the run. "
        f"Held-out: {HELD_OUT_ROWS:,} fresh rows; Bayes log loss of the true mixture "
        f"**{bayes:.4f}**. Model: `MixtureOfExpertsClassifier(n_experts={N_EXPERTS}, "
        "solver='adam', random_state=0)` (defaults: `batch_size=128`, "
        "`learning_rate_init=1e-2`, `init='kmeans'` on the first chunk). Streaming: "
        f"one pass, `partial_fit` on chunks of {args.chunk_size:,} rows (one epoch "
        "per chunk at the constant rate). In memory: `fit` with `max_iter=10` "
        f"(cosine schedule) on the first {args.subsample:,} rows, the same number of "
        "minibatch steps as the one streaming pass over 10x as many rows. "
        "`partial_fit` runs each chunk at the constant `learning_rate_init`; the "
        "recipe sets it before each chunk to a cosine over the pass, from 1e-2 down "
        "to 0 (`cosine_rate()` in the script), as `fit` decays it over its epochs.",
        "",
        "Each row of the table is a fresh process; peak RSS is "
        "`resource.getrusage(RUSAGE_SELF).ru_maxrss` (Python, NumPy, scikit-learn, "
        "numba and its loaded kernels "
        "included), read after the warm-up and when the number of rows seen reaches "
        "each checkpoint.",
        "",
        "",
    ]
    lines += [f"- {line}" for line in machine_description()]
    lines.append("")
    header = "| process | peak RSS after warm-up (MB) | " + " | ".join(
        f"peak RSS at {c:,} rows (MB)" for c in checkpoints
    )
    header += " | time (s) | held-out log loss | accuracy |"
    lines.append(header)
    lines.append("|---" * (len(checkpoints) + 5) + "|")
    names = {
        "memmap": "`partial_fit`, `.npy` memmap, constant rate",
        "memmap_cosine": "`partial_fit`, `.npy` memmap, cosine rate (recipe)",
        "parquet": "`partial_fit`, Parquet, cosine rate (recipe)",
        "memmap_held_open": "read only, one memmap held open (not the recipe)",
        "iter_batches": "read only, Parquet `iter_batches` (not the recipe)",
        "in_memory": f"`fit` in memory on {args.subsample:,} rows",
    }
    for result in results:
        marks = result["checkpoints"]
        cells = [
            f"{marks[str(c)]:.0f}" if str(c) in marks else "-" for c in checkpoints
        ]
        quality = (
            [f"{result['log_loss']:.4f}", f"{result['accuracy']:.4f}"]
            if "log_loss" in result
            else ["-", "-"]
        )
        lines.append(
            f"| {names[result['mode']]} | {result['baseline_rss_mb']:.0f} | "
            + " | ".join(cells)
            + f" | {result['seconds']:.1f} | "
            + " | ".join(quality)
            + " |"
        )
    lines.append("")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--subsample", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", nargs="*", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.worker == "write":
        start = time.perf_counter()
        write_files(os.path.dirname(args.paths[0]), args.n_rows, args.chunk_size)
        print(json.dumps({"seconds": time.perf_counter() - start}))
        return
    if args.worker:
        worker(
            args.worker,
            args.paths,
            args.chunk_size,
            set(args.checkpoints),
            args.subsample,
        )
        return
    if args.quick:
        args.n_rows, args.chunk_size, args.subsample = 300_000, 10_000, 30_000
    checkpoints = [args.n_rows // 10, 3 * args.n_rows // 10, args.n_rows]
    directory = tempfile.mkdtemp(prefix="skmoe-streaming-", dir="/tmp")
    paths = [
        os.path.join(directory, name) for name in ("X.npy", "y.npy", "data.parquet")
    ]
    try:
        # every step in a fresh process: Linux carries a process's peak RSS over
        # to the programs it starts (execve keeps ru_maxrss), so this one must
        # stay small, and writing 10M rows through a memmap is not small
        seconds_generate = run_worker("write", paths, args, checkpoints)["seconds"]
        print(f"wrote {args.n_rows:,} rows in {seconds_generate:.0f} s", flush=True)
        print(f"this process: peak RSS {peak_rss_mb():.0f} MB", flush=True)
        results = []
        modes = (
            "memmap",
            "memmap_cosine",
            "parquet",
            "memmap_held_open",
            "iter_batches",
            "in_memory",
        )
        for mode in modes:
            results.append(run_worker(mode, paths, args, checkpoints))
            print(json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    lines = report(args, results, checkpoints, bayes_log_loss(), seconds_generate)
    text = "\n".join(lines)
    print(text)
    output = args.output
    if output is None and not args.quick:  # a quick run only prints
        output = os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "README_streaming.md"
        )
    if output is not None:
        with open(output, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
