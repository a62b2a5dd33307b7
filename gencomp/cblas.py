"""The CBLAS of the BLAS library numpy already loaded, found through ctypes: compiled entry points
call its gemm, gemv and dot (routine_addresses), e.g. a gemm that accumulates into its output
(C = alpha * A @ B + beta * C), so `W - lr * dot(A, B)` is one call.

ctypes rather than cffi: declaring a function to cffi at run time loads its C parser (~20 ms
added to every process that builds a function). Each routine is checked on a small product first.

numpy's wheels ship OpenBLAS with renamed 64-bit-integer symbols (scipy_cblas_dgemm64_); other
builds export plain CBLAS. When none of the known names is found, `routine_addresses` gives None
and products run in numpy instead.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112          # the CBLAS enum values
# (symbol template, C integer type): ILP64 names first, as numpy's own wheels export them
_SYMBOLS = (("scipy_cblas_{t}gemm64_", ctypes.c_int64), ("cblas_{t}gemm64_", ctypes.c_int64),
            ("cblas_{t}gemm", ctypes.c_int))
_LETTER = {"float32": "s", "float64": "d"}


def _library_files() -> list:
    """Candidate BLAS libraries: the one bundled with numpy's wheel, then its build's lib directory."""
    root = os.path.dirname(np.__file__)
    files = sorted(glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*blas*")))   # Linux wheels
    files += sorted(glob.glob(os.path.join(root, ".dylibs", "*blas*")))                # macOS wheels
    try:
        libdir = np.__config__.CONFIG["Build Dependencies"]["blas"].get("lib directory")
    except (AttributeError, KeyError, TypeError):
        libdir = None
    if libdir and os.path.isdir(libdir):
        files += sorted(glob.glob(os.path.join(libdir, "lib*blas*.so*")))
    return files


class Gemm:
    """One gemm of one dtype: `gemm(out, alpha, A, B, beta)` sets out = alpha * A @ B + beta * out
    (`out` C-contiguous, not overlapping A or B)."""

    def __init__(self, fn, dtype: str):
        self.fn, self.dtype = fn, np.dtype(dtype)

    def _operand(self, a):
        """(array, transpose flag, leading dimension) of a matrix for a row-major call."""
        if a.dtype != self.dtype:
            a = a.astype(self.dtype)
        if a.flags.f_contiguous and not a.flags.c_contiguous:     # a transposed view: BLAS transposes
            return a, TRANS, max(1, a.shape[0])
        a = np.ascontiguousarray(a)
        return a, NO_TRANS, max(1, a.shape[1])

    def __call__(self, out, alpha: float, a, b, beta: float):
        (m, k), n = a.shape, b.shape[1]
        if m == 0 or n == 0:
            return
        if k == 0:                       # nothing to multiply: BLAS implementations differ here
            out *= beta
            return
        if not (out.flags.c_contiguous and out.flags.writeable and out.dtype == self.dtype):
            raise ValueError("gemm writes a C-contiguous, writeable array of its own dtype")
        a, ta, lda = self._operand(a)
        b, tb, ldb = self._operand(b)
        self.fn(ROW_MAJOR, ta, tb, m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb, beta,
                out.ctypes.data, max(1, n))


@functools.lru_cache(maxsize=None)
def gemm_for(dtype: str) -> Gemm | None:
    """The accumulating gemm for float32 or float64, or None where no CBLAS can be found."""
    if dtype not in _LETTER:
        return None
    real = ctypes.c_float if dtype == "float32" else ctypes.c_double
    for path in _library_files():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for template, integer in _SYMBOLS:
            fn = getattr(lib, template.format(t=_LETTER[dtype]), None)
            if fn is None:
                continue
            fn.argtypes = [ctypes.c_int] * 3 + [integer] * 3 + [real, ctypes.c_void_p, integer,
                                                                ctypes.c_void_p, integer, real,
                                                                ctypes.c_void_p, integer]
            fn.restype = None
            gemm = Gemm(fn, dtype)
            gemm.lib = lib                  # keeps the library open
            gemm.template, gemm.ilp64 = template, integer is ctypes.c_int64
            if _works(gemm):
                return gemm
    return None


def _works(gemm: Gemm) -> bool:
    """A small product checked against numpy: guards against a library with another convention."""
    a = np.arange(6, dtype=gemm.dtype).reshape(2, 3)
    b = np.arange(12, dtype=gemm.dtype).reshape(3, 4) - 5
    out = np.ones((2, 4), dtype=gemm.dtype)
    gemm(out, 2.0, a, b.T.copy().T, 3.0)
    return bool(np.array_equal(out, 2 * (a @ b) + 3))


ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv", "sdot", "ddot")


@functools.lru_cache(maxsize=None)
def routine_addresses() -> tuple | None:
    """(addresses of the CBLAS routines named in ROUTINES, 1 if their integers are 64-bit else 0)
    from the library whose gemm works, for compiled entry points to call; None without a CBLAS."""
    gemms = [gemm_for("float32"), gemm_for("float64")]
    if None in gemms or gemms[0].lib._name != gemms[1].lib._name or gemms[0].template != gemms[1].template:
        return None
    lib, template = gemms[0].lib, gemms[0].template
    addresses = []
    for name in ROUTINES:
        fn = getattr(lib, template.replace("{t}gemm", name), None)
        if fn is None:
            return None
        addresses.append(ctypes.cast(fn, ctypes.c_void_p).value)
    return tuple(addresses), int(gemms[0].ilp64)
