"""Speed and memory of the top-label ECE on a 1,000,000 x 10 probability matrix.

The reference point is one ``P.max(axis=1)`` pass over the same matrix, timed in the
same run: every top-label ECE must read the whole matrix at least once, so that pass
is a memory-bound lower limit. Also timed: a plain NumPy implementation (max, argmax,
histogram bin indices, bincount), the numba kernel alone, float32 input, and the
peak of the memory traced by ``tracemalloc`` during the public call (the target is no
temporary as large as the input). Run from the repository root::

    python benchmarks/bench_metrics.py [--n-samples 1000000] [--repeat 15]
"""

import argparse
import os
import platform
import time
import tracemalloc

import numba
import numpy as np

from skmoe._kernels.calibration import top_label_bin_stats
from skmoe.metrics import expected_calibration_error

N_BINS = 15


def machine_description():
    """Platform, CPU model, core count and library versions, as text lines."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor() or "unknown"
    return [
        f"platform: {platform.platform()}",
        f"cpu: {cpu} ({os.cpu_count()} logical cores visible)",
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}",
    ]


def numpy_ece(y, proba, n_bins=N_BINS):
    """A plain NumPy top-label ECE: max, argmax, histogram bin index, bincount."""
    confidence = proba.max(axis=1)
    hits = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, n_bins + 1, dtype=proba.dtype)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0,
                    n_bins - 1)
    weights = np.bincount(index, minlength=n_bins)
    confidence_sums = np.bincount(index, confidence, minlength=n_bins)
    hit_sums = np.bincount(index, hits, minlength=n_bins)
    del weights
    return float(np.abs(confidence_sums - hit_sums).sum() / y.shape[0])


def kernel_only(y, proba, n_bins=N_BINS):
    edges = np.linspace(0, 1, n_bins + 1, dtype=proba.dtype)
    counts = np.zeros(n_bins, dtype=np.int64)
    sums = [np.zeros(n_bins) for _ in range(3)]
    top_label_bin_stats(proba, y, np.empty(0), edges, True, counts, *sums)
    return float(np.abs(sums[1] - sums[2]).sum() / y.shape[0])


def best_time(function, repeat):
    """Smallest and median wall time of ``repeat`` calls (after one warm call)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def traced_peak(function):
    tracemalloc.start()
    tracemalloc.reset_peak()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    for line in machine_description():
        print(line)
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} "
              "(irrelevant: no BLAS call here)")
    rng = np.random.default_rng(0)
    proba64 = rng.dirichlet(np.ones(args.n_classes), size=args.n_samples)
    y = rng.integers(0, args.n_classes, size=args.n_samples)
    proba32 = proba64.astype(np.float32)
    print(f"input: {args.n_samples} x {args.n_classes}, {N_BINS} bins, "
          f"best (median) of {args.repeat} runs\n")

    rows = []
    for proba in (proba64, proba32):
        dtype = proba.dtype.name
        assert abs(expected_calibration_error(y, proba) - numpy_ece(y, proba)) < 1e-9
        baseline = best_time(lambda p=proba: p.max(axis=1), args.repeat)
        timings = {
            "P.max(axis=1) (lower limit)": baseline,
            "skmoe expected_calibration_error": best_time(
                lambda p=proba: expected_calibration_error(y, p), args.repeat),
            "numba kernel alone": best_time(lambda p=proba: kernel_only(y, p),
                                            args.repeat),
            "NumPy max/argmax/bincount": best_time(lambda p=proba: numpy_ece(y, p),
                                                   args.repeat),
        }
        for name, (best, median) in timings.items():
            rows.append((dtype, name, best, median, best / baseline[0]))
    print("| dtype | implementation | best (s) | median (s) | ratio to P.max |")
    print("|---|---|---|---|---|")
    for dtype, name, best, median, ratio in rows:
        print(f"| {dtype} | {name} | {best:.4f} | {median:.4f} | {ratio:.2f}x |")

    print("\n| dtype | call | input (MB) | tracemalloc peak (MB) | peak / input |")
    print("|---|---|---|---|---|")
    for proba in (proba64, proba32):
        for name, call in (
            ("skmoe expected_calibration_error",
             lambda p=proba: expected_calibration_error(y, p)),
            ("NumPy max/argmax/bincount", lambda p=proba: numpy_ece(y, p)),
        ):
            peak = traced_peak(call)
            print(f"| {proba.dtype.name} | {name} | {proba.nbytes / 1e6:.1f} | "
                  f"{peak / 1e6:.3f} | {peak / proba.nbytes:.4f} |")


if __name__ == "__main__":
    main()
