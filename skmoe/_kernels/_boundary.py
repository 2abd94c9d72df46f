"""The one argument type each kernel is compiled for, and wrappers that convert to it.

numba compiles a kernel once for every distinct tuple of argument types it is called
with, and an array's type holds its dtype, its layout (C, F or "A" for any other
strides) and whether it is read-only. scikit-learn's estimator checks call the
estimators with float32, Fortran-ordered, sliced and read-only memory-mapped input,
so a kernel called as is was compiled up to 12 times (138 signatures in the test
suite, 213 s of compilation on a fresh clone, where the on-disk cache is empty).

The kernels' public names are therefore thin Python wrappers built by
:func:`boundary`: every array a kernel only reads is passed as a C-contiguous,
read-only array of one dtype (:func:`as_input`: a read-only *view* when the array
already has that layout and dtype, so nothing is copied in the common case; a copy
otherwise), every scalar is cast to the Python type numba types as int64, float64 or
bool, and the arrays a kernel writes are passed untouched (they are allocated by the
callers, C-contiguous float64). Read-only is the canonical flag because making a
writable array read-only costs nothing, while the converse needs a copy. float32
input is converted to float64, which gives the same results: every kernel multiplies
or compares its input with float64 values, so a float32 value enters each operation
promoted to float64 exactly as before (the bin edges of the calibration kernels are
converted too, from the input's dtype, so that comparisons are unchanged). Two kinds
of input keep float32 (:func:`as_float_input`), and so compile twice: the stochastic
solver's ``X``, read in place (a memory map too), since a float64 copy of data larger
than memory is what ``solver="adam"`` exists to avoid, and the probabilities of the
calibration kernels, which the metrics read without a temporary as large as the input.
"""

import functools
import inspect

import numpy as np


def as_input(array, dtype=np.float64):
    """``array`` as a C-contiguous, read-only ``dtype`` array.

    A read-only view of ``array`` itself when it already is C-contiguous with that
    dtype; a (read-only) copy otherwise. Never marks the caller's array read-only.
    """
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


def as_float_input(array):
    """:func:`as_input` keeping float32 (any other dtype becomes float64)."""
    dtype = np.float32 if np.asarray(array).dtype == np.float32 else np.float64
    return as_input(array, dtype)


def as_index_input(array):
    """:func:`as_input` with the platform index dtype (int64 on 64-bit systems)."""
    return as_input(array, np.intp)


def as_flag_input(array):
    """Nonzero entries of ``array`` as a read-only uint8 array of 0 and 1.

    A boolean array is viewed, not copied; any other dtype is compared with zero.
    """
    array = np.asarray(array)
    if array.dtype != np.bool_:
        array = array != 0
    return as_input(array.view(np.uint8), np.uint8)


def as_array(array, dtype=np.float64):
    """``array`` as a C-contiguous, *writable* ``dtype`` array: itself when it already
    is one, a copy otherwise (a read-only one too).

    For the arrays a kernel only reads but shares with the kernels that write them
    (the stochastic solver's parameters and row indices), so that the helpers they
    call compile once.
    """
    array = np.ascontiguousarray(array, dtype=dtype)
    return array if array.flags.writeable else array.copy()


def as_output(array):
    """An array the kernel writes into: passed as it is."""
    return array


def boundary(kernel, **conversions):
    """A Python function that calls ``kernel`` with its arguments converted.

    Parameters
    ----------
    kernel : numba dispatcher
        The ``@njit`` function.
    **conversions : callable
        One per parameter of ``kernel``, by name: :func:`as_input` and its variants
        for arrays the kernel reads, :func:`as_output` for the arrays it writes,
        ``int``, ``float`` or ``bool`` for scalars.

    Returns
    -------
    call : callable
        Takes the kernel's arguments (positional or by name); its ``kernel``
        attribute is the dispatcher, whose ``signatures`` list what was compiled.
    """
    # a plain function under NUMBA_DISABLE_JIT=1 (the coverage run)
    function = getattr(kernel, "py_func", kernel)
    signature = inspect.signature(function)
    names = list(signature.parameters)
    if sorted(names) != sorted(conversions):
        raise ValueError(
            f"boundary() needs one conversion per parameter of {kernel.__name__}: "
            f"got {sorted(conversions)}, expected {sorted(names)}."
        )
    ordered = [conversions[name] for name in names]

    @functools.wraps(function)
    def call(*args, **kwargs):
        # binding costs more than the conversions: only for keywords, or to raise
        # the TypeError of a missing or extra argument
        if kwargs or len(args) != len(ordered):
            args = signature.bind(*args, **kwargs).args
        return kernel(
            *[convert(value) for convert, value in zip(ordered, args, strict=True)]
        )

    call.kernel = kernel
    return call
