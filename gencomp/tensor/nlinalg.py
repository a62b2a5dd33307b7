"""theano.tensor.nlinalg: linear algebra through numpy.linalg, as host ops (numpy between the C
segments of a compiled function), with Theano 1.0's names, signatures and gradients.

Integer matrices are taken as float64 (as numpy.linalg does); complex ones raise TypeError (no
gradients are written for them). A singular matrix raises numpy's LinAlgError, a ValueError.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .extra_ops import ExtractDiag  # noqa: F401  (nlinalg.ExtractDiag, as in Theano)
from .type import TensorType
from .variable import as_tensor_variable


def _m():
    from . import math

    return math


def as_float_matrix(x, name: str, square: bool = False):
    """`x` as a float matrix (integers and bools in float64), or TypeError naming `name`."""
    x = as_tensor_variable(x)
    if x.ndim != 2:
        raise TypeError(f"{name} takes a matrix, got a {x.ndim}-d tensor {x.type}")
    if dtypes.is_complex(x.dtype):
        raise TypeError(f"{name} has no form for dtype {x.dtype}")
    if not dtypes.is_float(x.dtype):
        x = _m().cast(x, "float64")
    return x


def _matrix(dtype):
    return TensorType(dtype, (False, False))


def _vector(dtype):
    return TensorType(dtype, (False,))


def _square(a, name):
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} needs a square matrix, got shape {a.shape}")


class _MatrixOp(Op):
    """A host op of one float matrix whose outputs are new arrays; subclasses give `fn` (numpy),
    `outputs(x)` (their types) and their gradient."""

    fresh_outputs = True
    square = False

    def signature(self):
        return type(self).__name__

    def __reduce__(self):
        return type(self), ()

    def outputs(self, x):
        return [x.type]

    def make_node(self, x):
        x = as_float_matrix(x, self.signature(), self.square)
        return Apply(self, [x], self.outputs(x))

    def perform(self, node, inputs):
        (x,) = inputs
        if self.square:
            _square(x, self.signature())
        results = self.fn(x)
        results = results if isinstance(results, tuple) else (results,)
        return [np.array(r, dtype=o.dtype) for r, o in zip(results, node.outputs)]


class MatrixInverse(_MatrixOp):
    """numpy.linalg.inv; gradient -X^-T G X^-T (Theano's)."""

    square = True
    fn = staticmethod(np.linalg.inv)

    def grad(self, inputs, output_grads, outputs):
        (xi,), (g,) = outputs, output_grads
        return [-matrix_dot(xi, g.T, xi).T]


class MatrixPinv(_MatrixOp):
    """numpy.linalg.pinv (Moore-Penrose pseudo-inverse, any shape). No gradient (as Theano)."""

    fn = staticmethod(np.linalg.pinv)

    def outputs(self, x):
        return [_matrix(x.dtype)]


class Det(_MatrixOp):
    """numpy.linalg.det, a scalar; gradient g * det(X) * X^-T (Theano's)."""

    square = True
    fn = staticmethod(np.linalg.det)

    def outputs(self, x):
        return [TensorType(x.dtype, ())]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,), (d,) = inputs, output_grads, outputs
        return [g * d * matrix_inverse(x).T]


class Eig(_MatrixOp):
    """numpy.linalg.eig: (w, v). Results keep the input's dtype, as Theano's: a real matrix with
    complex eigenvalues is a ValueError (Theano dropped their imaginary parts silently). No gradient."""

    square = True

    def outputs(self, x):
        return [_vector(x.dtype), _matrix(x.dtype)]

    @staticmethod
    def fn(x):
        w, v = np.linalg.eig(x)
        if np.iscomplexobj(w):
            if np.any(w.imag != 0):
                raise ValueError("eig: the matrix has complex eigenvalues, which a real result cannot hold "
                                 "(use eigh for a symmetric matrix)")
            w, v = w.real, v.real
        return w, v


class Eigh(_MatrixOp):
    """numpy.linalg.eigh(x, UPLO): eigenvalues (ascending) and eigenvectors of a symmetric matrix,
    reading its lower ('L') or upper ('U') triangle; gradient as Theano's EighGrad."""

    square = True

    def __init__(self, UPLO="L"):
        if UPLO not in ("L", "U"):
            raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
        self.UPLO = UPLO

    def signature(self):
        return f"Eigh{{{self.UPLO}}}"

    def __reduce__(self):
        return Eigh, (self.UPLO,)

    def outputs(self, x):
        return [_vector(x.dtype), _matrix(x.dtype)]

    def fn(self, x):
        return np.linalg.eigh(x, self.UPLO)

    def grad(self, inputs, output_grads, outputs):
        (x,), (w, v) = inputs, outputs
        gw, gv = output_grads
        return [EighGrad(self.UPLO)(x, w, v, gw, gv)]


def symmetric_part(g, UPLO):
    """The gradient of a function of the UPLO triangle of a symmetric matrix, from `g`, its gradient as
    a function of the whole matrix: the other triangle's entries added onto their mirror images."""
    if UPLO == "L":
        return np.tril(g) + np.triu(g, 1).T
    return np.triu(g) + np.tril(g, -1).T


class EighGrad(Op):
    """The gradient of Eigh: V (diag(gw) + (F * (V^T gV))^T) V^T, F[m, n] = 1 / (w_n - w_m) off the
    diagonal, folded onto the triangle eigh reads."""

    fresh_outputs = True

    def __init__(self, UPLO="L"):
        self.UPLO = UPLO

    def signature(self):
        return f"EighGrad{{{self.UPLO}}}"

    def __reduce__(self):
        return EighGrad, (self.UPLO,)

    def make_node(self, x, w, v, gw, gv):
        return Apply(self, [x, w, v, gw, gv], [_matrix(x.dtype)])

    def perform(self, node, inputs):
        x, w, v, gw, gv = inputs
        with np.errstate(divide="ignore"):
            f = 1.0 / (w[None, :] - w[:, None])
        np.fill_diagonal(f, 0.0)
        g = v @ (np.diag(gw) + (f * (v.T @ gv)).T) @ v.T
        return [np.asarray(symmetric_part(g, self.UPLO), dtype=node.outputs[0].dtype)]


class QR(_MatrixOp):
    """numpy.linalg.qr(x, mode): (q, r) for 'reduced' / 'complete', r for 'r', (h, tau) for 'raw'."""

    MODES = ("reduced", "complete", "r", "raw")

    def __init__(self, mode="reduced"):
        if mode not in self.MODES:
            raise ValueError(f"qr: mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def signature(self):
        return f"QR{{{self.mode}}}"

    def __reduce__(self):
        return QR, (self.mode,)

    def outputs(self, x):
        if self.mode == "r":
            return [_matrix(x.dtype)]
        return [_matrix(x.dtype), _vector(x.dtype) if self.mode == "raw" else _matrix(x.dtype)]

    def fn(self, x):
        return np.linalg.qr(x, self.mode)


class SVD(_MatrixOp):
    """numpy.linalg.svd: (u, s, v) (v is numpy's vh), or s alone without `compute_uv`."""

    def __init__(self, full_matrices=True, compute_uv=True):
        self.full_matrices, self.compute_uv = bool(full_matrices), bool(compute_uv)

    def signature(self):
        return f"SVD{{full={int(self.full_matrices)},uv={int(self.compute_uv)}}}"

    def __reduce__(self):
        return SVD, (self.full_matrices, self.compute_uv)

    def outputs(self, x):
        if not self.compute_uv:
            return [_vector(x.dtype)]
        return [_matrix(x.dtype), _vector(x.dtype), _matrix(x.dtype)]

    def fn(self, x):
        return tuple(np.linalg.svd(x, self.full_matrices, self.compute_uv)) if self.compute_uv else \
            np.linalg.svd(x, self.full_matrices, self.compute_uv)


class AllocDiag(Op):
    """numpy.diag(v, offset) of a vector: the square matrix with v on diagonal `offset`."""

    fresh_outputs = True

    def __init__(self, offset=0):
        self.offset = int(offset)

    def signature(self):
        return f"AllocDiag{{{self.offset}}}"

    def __reduce__(self):
        return AllocDiag, (self.offset,)

    def make_node(self, v):
        v = as_tensor_variable(v)
        if v.ndim != 1:
            raise TypeError(f"alloc_diag takes a vector, got {v.type}")
        return Apply(self, [v], [_matrix(v.dtype)])

    def perform(self, node, inputs):
        return [np.diag(inputs[0], self.offset)]

    def grad(self, inputs, output_grads, outputs):
        return [ExtractDiag(self.offset)(output_grads[0])]


class lstsq(Op):  # noqa: N801  (Theano's name: the op class, called as lstsq()(a, b, rcond))
    """numpy.linalg.lstsq(a, b, rcond): (x, residuals, rank, singular values). An rcond of None or
    NaN is numpy's default (machine precision times the larger dimension)."""

    fresh_outputs = True

    def signature(self):
        return "lstsq"

    def __reduce__(self):
        return lstsq, ()

    def make_node(self, a, b, rcond=None):
        a = as_float_matrix(a, "lstsq")
        b = as_tensor_variable(b)
        rcond = as_tensor_variable(np.nan if rcond is None else rcond)
        if b.ndim not in (1, 2) or rcond.ndim != 0:
            raise TypeError(f"lstsq takes a matrix, a vector or matrix and a scalar rcond, got {b.type}, "
                            f"{rcond.type}")
        dtype = np.result_type(a.dtype, b.dtype, np.float32).name
        return Apply(self, [a, b, rcond], [TensorType(dtype, (False,) * b.ndim), _vector(dtype),
                                          TensorType("int64", ()), _vector(dtype)])

    def perform(self, node, inputs):
        a, b, rcond = inputs
        rcond = None if np.isnan(rcond) else float(rcond)
        x, res, rank, s = np.linalg.lstsq(a, b, rcond=rcond)
        return [np.asarray(r, dtype=o.dtype) for r, o in zip((x, res, rank, s), node.outputs)]


matrix_inverse = MatrixInverse()
pinv = MatrixPinv()
det = Det()
eig = Eig()
alloc_diag = AllocDiag()
extract_diag = ExtractDiag()


def eigh(a, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors of the symmetric matrix `a`: (w, v)."""
    return Eigh(UPLO)(a)


def qr(a, mode="reduced"):
    """numpy.linalg.qr: q, r (mode 'reduced' or 'complete'), r ('r'), or h, tau ('raw')."""
    return QR(mode)(a)


def svd(a, full_matrices=1, compute_uv=1):
    """numpy.linalg.svd: u, s, v (numpy's vh), or s alone when not compute_uv."""
    return SVD(full_matrices, compute_uv)(a)


def matrix_dot(*args):
    """The matrix product of its arguments, in order: dot(dot(a0, a1), a2)..."""
    if not args:
        raise TypeError("matrix_dot needs at least one argument")
    result = args[0]
    for a in args[1:]:
        result = _m().dot(result, a)
    return result


def matrix_power(M, n):
    """M to the Python int power n >= 0, by repeated products (Theano's)."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"matrix_power: n must be a non-negative Python int, got {n!r}")
    M = as_tensor_variable(M)
    result = _m().identity_like(M) if n == 0 else M
    for _ in range(max(n - 1, 0)):
        result = _m().dot(result, M)
    return result


def diag(x):
    """A vector's diagonal matrix (alloc_diag) or a matrix's diagonal (extract_diag)."""
    x = as_tensor_variable(x)
    if x.ndim == 1:
        return alloc_diag(x)
    if x.ndim == 2:
        return extract_diag(x)
    raise TypeError(f"diag requires a vector or matrix argument, got {x.type}")


def trace(X):
    """The sum of the diagonal of matrix X."""
    X = as_tensor_variable(X)
    if X.ndim != 2:
        raise TypeError(f"trace takes a matrix, got {X.type}")
    return extract_diag(X).sum()


def norm(x, ord):
    """Theano's nlinalg.norm: of a vector, ord None (2-norm), 'inf', '-inf', 0 (the number of
    nonzeros) or p (sum |x|**p) ** (1/p); of a matrix, None / 'fro', 'inf', '-inf', 1, -1."""
    m = _m()
    x = as_tensor_variable(x)
    ord = {np.inf: "inf", -np.inf: "-inf"}.get(ord, ord)
    if x.ndim == 1:
        if ord is None:
            return m.sqrt(m.sum(x * x))
        if ord == "inf":
            return m.max(abs(x))
        if ord == "-inf":
            return m.min(abs(x))
        if ord == 0:
            return m.sum(m.neq(x, 0), dtype="int64")
        if isinstance(ord, (int, float)) and not isinstance(ord, bool):
            return m.sum(abs(x) ** ord) ** (1.0 / ord)
        raise ValueError(f"norm: invalid order {ord!r} for vectors")
    if x.ndim == 2:
        if ord is None or ord == "fro":
            return m.sqrt(m.sum(abs(x) ** 2))
        if ord in ("inf", "-inf"):
            rows = m.sum(abs(x), axis=1)
            return m.max(rows) if ord == "inf" else m.min(rows)
        if ord in (1, -1):
            cols = m.sum(abs(x), axis=0)
            return m.max(cols) if ord == 1 else m.min(cols)
        raise ValueError(f"norm: invalid order {ord!r} for matrices")
    raise NotImplementedError(f"norm of a {x.ndim}-d tensor (vectors and matrices only, as Theano)")
