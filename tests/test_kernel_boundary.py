"""Each kernel is compiled for one argument type, whatever the caller's arrays are.

Every input variant that scikit-learn's estimator checks feed (float32, Fortran order,
strided slices, read-only memory maps, int32 labels, bool or int flags, NumPy scalars)
goes through the same compiled signature: a fresh clone (an empty numba cache) then
compiles each kernel once (twice where float32 input is kept) instead of up to 12 times.
"""

import numpy as np
import pytest
from numba import njit
from numba.core.config import DISABLE_JIT

from skmoe._kernels import calibration, gating, joint, stochastic
from skmoe._kernels._boundary import as_flag_input, as_input, boundary
from skmoe._kernels._config import JIT_OPTIONS

pytestmark = pytest.mark.skipif(DISABLE_JIT, reason="no signatures without the JIT")


def _variants(array):
    """The same values as float64 C, float32, Fortran order, a strided slice and a
    read-only array (float64)."""
    doubled = np.repeat(array, 2, axis=-1)
    readonly = array.copy()
    readonly.flags.writeable = False
    return [
        array,
        array.astype(np.float32),
        np.asfortranarray(array),
        doubled[..., ::2],
        readonly,
    ]


def _signatures(wrapper):
    return set(wrapper.kernel.signatures)


def test_as_input_views_canonical_arrays_and_leaves_the_callers_writable():
    array = np.arange(6.0).reshape(2, 3)
    converted = as_input(array)
    assert np.shares_memory(converted, array)
    assert not converted.flags.writeable
    assert array.flags.writeable
    fortran = as_input(np.asfortranarray(array))
    assert fortran.flags.c_contiguous
    np.testing.assert_array_equal(fortran, array)
    assert as_input(array.astype(np.float32)).dtype == np.float64


def test_as_flag_input_gives_zero_one_bytes():
    for flags in ([True, False, True], [2, 0, -1], [0.5, 0.0, 1.0]):
        np.testing.assert_array_equal(as_flag_input(np.array(flags)), [1, 0, 1])


def test_boundary_needs_one_conversion_per_parameter():
    with pytest.raises(ValueError, match="one conversion per parameter"):
        boundary(calibration._check_proba, proba=as_input)
    proba = np.full((3, 2), 0.5)
    assert calibration.check_proba(proba, check_sums=True) == (-1, 0.0)
    with pytest.raises(TypeError, match="check_sums"):
        calibration.check_proba(proba)


def _float_dtypes(wrapper):
    return {signature[0].dtype.name for signature in _signatures(wrapper)}


def test_calibration_kernels_compile_one_signature_per_float_dtype():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=40)
    labels = rng.integers(0, 3, 40)
    edges = np.linspace(0, 1, 6)
    for variant in _variants(proba):
        for label_dtype in (np.int64, np.int32):
            stats = [np.zeros(5, dtype=np.int64)] + [np.zeros(5) for _ in "abc"]
            calibration.top_label_bin_stats(
                variant, labels.astype(label_dtype), np.empty(0),
                edges.astype(variant.dtype), np.True_, *stats,
            )  # fmt: skip
            calibration.top_label_confidence(
                variant, labels.astype(label_dtype), np.empty(40),
                np.empty(40, dtype=np.uint8),
            )  # fmt: skip
        calibration.check_proba(variant, 1)
        column = variant[:, 1]
        for hits in (labels == 1, (labels == 1).astype(np.int64), labels == 1.0):
            stats = [np.zeros(5, dtype=np.int64)] + [np.zeros(5) for _ in "abc"]
            calibration.bin_stats(
                column, hits, np.ones(40), edges.astype(variant.dtype), False, *stats
            )
    for wrapper in (
        calibration.top_label_bin_stats,
        calibration.top_label_confidence,
        calibration.check_proba,
        calibration.bin_stats,
    ):
        # the probabilities keep float32: the metrics read them in place
        assert len(_signatures(wrapper)) == 2, wrapper.__name__
        assert _float_dtypes(wrapper) == {"float32", "float64"}


def test_gate_and_joint_kernels_compile_one_signature():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 4))
    targets = rng.dirichlet(np.ones(3), size=30)
    coef, intercept = rng.normal(size=(3, 4)), rng.normal(size=3)
    y = rng.integers(0, 2, 30)
    gate, experts = rng.normal(size=(3, 5)), rng.normal(size=(3, 2, 5))
    for variant in _variants(X):
        gating.softmax_loss_grad(
            variant, targets, np.ones(30), coef, intercept, np.empty((3, 4)),
            np.empty(3),
        )  # fmt: skip
        gating.softmax_hessp(
            variant, targets, np.ones(30), coef, intercept, coef, intercept,
            np.empty((3, 4)), np.empty(3),
        )  # fmt: skip
        gating.softmax_log_proba(variant, coef, intercept, np.empty((30, 3)))
        joint.joint_losses(variant, y.astype(np.int32), gate, experts, np.empty(30))
        joint.joint_loss_grad(
            variant, y, gate, experts, np.full(30, 1 / 30), np.empty(30),
            np.empty((3, 5)), np.empty((3, 2, 5)),
        )  # fmt: skip
    for wrapper in (
        gating.softmax_loss_grad,
        gating.softmax_hessp,
        gating.softmax_log_proba,
        joint.joint_losses,
        joint.joint_loss_grad,
    ):
        assert len(_signatures(wrapper)) == 1, wrapper.__name__


def test_stochastic_kernels_compile_one_signature_per_float_dtype():
    rng = np.random.default_rng(2)
    dims = np.array([4, 0, 2, 3, 0, 0], dtype=np.intp)
    size = stochastic.parameter_layout(dims)[4]
    X = rng.normal(size=(32, 4))
    y = rng.integers(0, 3, 32)
    groups = np.zeros(32, dtype=np.int32)
    for variant in _variants(X):
        theta = rng.normal(scale=0.1, size=size)
        stochastic.adam_epoch(
            variant, y, np.zeros(1), np.ones(32), groups, np.arange(32), np.int64(8),
            theta, np.zeros(size), np.zeros(size), np.zeros(size), np.zeros(size),
            np.ones(size, dtype=np.int8), dims, np.float64(0.01), 0, 1, 0.9, 0.999,
            1e-8, 1, stochastic.DANSKIN, 1, -1, np.False_, 1, 1e-6, 0.01, 0,
            np.empty(32),
        )  # fmt: skip
        stochastic.mixture_losses(variant, y, np.zeros(1), theta, dims, np.empty(32))
        if variant.dtype == np.float32:
            continue  # batch_objective serves the tests only: float64 is enough
        stochastic.batch_objective(
            variant, y, np.zeros(1), np.ones(32), groups, np.arange(8), theta, dims,
            1, stochastic.DANSKIN, 1, -1, 0, 1, 1e-6, 0.01, np.empty(size),
            np.empty(8),
        )  # fmt: skip
    for wrapper in (stochastic.adam_epoch, stochastic.mixture_losses):
        # X keeps float32: the solver reads data in place, a memory map too
        assert len(_signatures(wrapper)) == 2, wrapper.__name__
        assert _float_dtypes(wrapper) == {"float32", "float64"}
    assert len(_signatures(stochastic.batch_objective)) == 1


def _native(wrapper):
    """The kernel compiled afresh for the caller's own argument types (what was called
    before the boundary existed), apart from the cached dispatcher."""
    return njit(**{**JIT_OPTIONS, "cache": False})(wrapper.kernel.py_func)


def test_float32_input_gives_the_results_of_a_float32_compilation():
    """Converting float32 to float64 at the boundary changes no bit: each kernel
    promotes its input to float64 before any arithmetic, and the bin edges are
    converted from the input's dtype, so bin comparisons are unchanged."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 5)).astype(np.float32)
    coef, intercept = rng.normal(size=(4, 5)), rng.normal(size=4)
    wrapper = gating.softmax_log_proba
    np.testing.assert_array_equal(
        wrapper(X, coef, intercept, np.empty((50, 4))),
        _native(wrapper)(X, coef, intercept, np.empty((50, 4))),
    )
    # values on and next to the float32 bin edges, where float64 edges would differ
    edges = np.linspace(0, 1, 16, dtype=np.float32)
    top = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 1)])
    top = np.clip(top, 0.5, 1.0)
    proba = np.column_stack([top, 1 - top]).astype(np.float32)
    labels = rng.integers(0, 2, proba.shape[0])
    results = []
    native = _native(calibration.top_label_bin_stats)
    for kernel in (calibration.top_label_bin_stats, native):
        for uniform in (True, False):
            stats = [np.zeros(15, dtype=np.int64)] + [np.zeros(15) for _ in "abc"]
            status = kernel(proba, labels, np.empty(0), edges, uniform, *stats)
            results.append((status, stats))
    for got, want in zip(results[:2], results[2:], strict=True):
        assert got[0] == want[0]
        for got_stat, want_stat in zip(got[1], want[1], strict=True):
            np.testing.assert_array_equal(got_stat, want_stat)
