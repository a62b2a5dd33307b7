"""Theano's theano.tensor.extra_ops and a few helpers of theano.tensor (roll, tile, diag, trace, diagonal,
nonzero, mgrid), built from the ops gencomp has (slices, concatenation, integer indexing) where they
can be, so their gradients come with them; the rest are small host ops (numpy `perform`, `grad`)."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .math import squeeze  # noqa: F401  (extra_ops.squeeze)
from .shape import cumsum  # noqa: F401  (extra_ops.cumsum)
from .type import TensorType
from .variable import as_tensor_variable


def _m():
    from . import math
    return math


def _axis(axis, ndim: int) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def _take(x, axis: int, index):
    """x[..., index, ...] with `index` (a slice) in dimension `axis`."""
    return x[(slice(None),) * axis + (index,)]


def diff(x, n=1, axis=-1):
    """numpy.diff: the n-th difference along `axis`."""
    x = as_tensor_variable(x)
    axis = _axis(axis, x.ndim)
    for _ in range(int(n)):
        x = _take(x, axis, slice(1, None)) - _take(x, axis, slice(None, -1))
    return x


def roll(x, shift, axis=None):
    """numpy.roll: elements shifted by `shift` (a Python or symbolic integer) along `axis`
    (None: the flattened tensor, reshaped back)."""
    x = as_tensor_variable(x)
    if axis is None:
        return roll(x.flatten(), shift, 0).reshape(x.shape, ndim=x.ndim) if x.ndim != 1 else roll(x, shift, 0)
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    cut = n - as_tensor_variable(shift) % n          # numpy's modulo: a negative shift rolls the other way
    return _m().concatenate([_take(x, axis, slice(cut, None)), _take(x, axis, slice(None, cut))], axis=axis)


def repeat(x, repeats, axis=None):
    """numpy.repeat with a Python int `repeats`: each element `repeats` times along `axis` (None: of
    the flattened tensor)."""
    x = as_tensor_variable(x)
    if not isinstance(repeats, (int, np.integer)) or repeats < 0:
        raise TypeError(f"repeat: repeats must be a non-negative Python int, got {repeats!r}")
    if axis is None:
        x, axis = x.flatten(), 0
    axis = _axis(axis, x.ndim)
    stacked = _m().stack([x] * int(repeats), axis=axis + 1) if repeats else None
    if stacked is None:
        return _take(x, axis, slice(0, 0))
    shape = [x.shape[d] * repeats if d == axis else x.shape[d] for d in range(x.ndim)]
    return stacked.reshape(_m().stack(shape) if x.ndim > 1 else shape, ndim=x.ndim)


def tile(x, reps):
    """numpy.tile with a tuple of Python ints `reps` (at most x.ndim of them, as Theano)."""
    x = as_tensor_variable(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if not all(isinstance(r, (int, np.integer)) and r >= 1 for r in reps) or len(reps) > x.ndim:
        raise ValueError(f"tile: reps must be at most {x.ndim} positive Python ints, got {reps!r}")
    reps = (1,) * (x.ndim - len(reps)) + reps
    for axis, r in enumerate(reps):
        if r > 1:
            x = _m().concatenate([x] * r, axis=axis)
    return x


def to_one_hot(y, nb_class, dtype=None):
    """Theano's extra_ops.to_one_hot: row i has a 1 in column y[i] (dtype: config.floatX by default)."""
    from ..config import config
    y = as_tensor_variable(y)
    hot = _m().eq(y.dimshuffle(0, "x"), _m().arange(nb_class).dimshuffle("x", 0))
    return _m().cast(hot, dtype or config.floatX)


def diag(v, k=0):
    """numpy.diag for k=0: a vector's diagonal matrix, or a matrix's diagonal."""
    v = as_tensor_variable(v)
    if k != 0:
        raise NotImplementedError("diag: only the main diagonal (k=0)")
    if v.ndim == 1:
        return _m().eye(v.shape[0], dtype=v.dtype) * v.dimshuffle("x", 0)
    if v.ndim == 2:
        n = _m().minimum(v.shape[0], v.shape[1])
        i = _m().arange(n)
        return v[i, i]
    raise ValueError(f"diag takes a vector or a matrix, got a {v.ndim}-d tensor")


def trace(x):
    """The sum of a matrix's diagonal."""
    return diag(x).sum()


# ---- host ops: numpy between the C segments ------------------------------------------------------

def _is_float(var) -> bool:
    return dtypes.is_float(var.dtype)


class CumProd(Op):
    """numpy.cumprod along `axis`. Its gradient is exact where x has zeros (no division by x, unlike
    Theano's cumsum(...) / x): d/dx_k = prod(x[:k]) * s_k with s_k = g_k + x_{k+1} s_{k+1}."""

    fresh_outputs = True

    def __init__(self, axis: int):
        self.axis = int(axis)

    def signature(self):
        return f"CumProd{{axis={self.axis}}}"

    def __reduce__(self):
        return CumProd, (self.axis,)

    def make_node(self, x):
        x = as_tensor_variable(x)
        dtype = np.cumprod(np.zeros(1, x.dtype)).dtype.name
        return Apply(self, [x], [TensorType(dtype, x.broadcastable)])

    def perform(self, node, inputs):
        return [np.cumprod(inputs[0], axis=self.axis).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        return [CumProdGrad(self.axis)(x, g) if _is_float(x) else None]


class CumProdGrad(Op):
    """The gradient of CumProd (see there), one pass backwards along the axis."""

    fresh_outputs = True

    def __init__(self, axis: int):
        self.axis = int(axis)

    def signature(self):
        return f"CumProdGrad{{axis={self.axis}}}"

    def __reduce__(self):
        return CumProdGrad, (self.axis,)

    def make_node(self, x, g):
        x, g = as_tensor_variable(x), as_tensor_variable(g)
        return Apply(self, [x, g], [x.type])

    def perform(self, node, inputs):
        x, g = inputs
        xs = np.moveaxis(x, self.axis, 0)
        gs = np.moveaxis(np.broadcast_to(g, x.shape), self.axis, 0)
        out = np.empty(xs.shape, dtype=node.outputs[0].dtype)
        if xs.shape[0]:
            before = np.ones_like(xs)            # prod(x[:k])
            np.cumprod(xs[:-1], axis=0, out=before[1:])
            s = gs[-1].astype(out.dtype)
            out[-1] = before[-1] * s
            for k in range(xs.shape[0] - 2, -1, -1):
                s = gs[k] + xs[k + 1] * s
                out[k] = before[k] * s
        return [np.ascontiguousarray(np.moveaxis(out, 0, self.axis))]

    def grad(self, inputs, output_grads, outputs):
        raise NotImplementedError("the second derivative of cumprod is not implemented")


def cumprod(x, axis=None):
    """numpy.cumprod (Theano's extra_ops.cumprod): along `axis`, None for the flattened tensor."""
    x = as_tensor_variable(x)
    if axis is None:
        return CumProd(0)(x.flatten())
    return CumProd(_axis(axis, x.ndim))(x)


class Nonzero(Op):
    """The indices of the nonzero elements of x, as an int64 matrix (one row per dimension)."""

    fresh_outputs = True

    def signature(self):
        return "Nonzero"

    def make_node(self, a):
        a = as_tensor_variable(a)
        if a.ndim == 0:
            raise ValueError("nonzero only supports non-scalar arrays (as numpy and Theano)")
        return Apply(self, [a], [TensorType("int64", (a.ndim == 1, False))])

    def perform(self, node, inputs):
        (a,) = inputs
        return [np.array(np.nonzero(a), dtype=np.int64).reshape(a.ndim, -1)]

    def grad(self, inputs, output_grads, outputs):
        return [None]


def nonzero(a, return_matrix=False):
    """numpy.nonzero (Theano's T.nonzero): a tuple of int64 index vectors, one per dimension of `a`;
    with `return_matrix`, the (a.ndim, n) matrix they are the rows of."""
    matrix = Nonzero()(a)
    if return_matrix:
        return matrix
    return tuple(matrix[k] for k in range(matrix.owner.inputs[0].ndim))


def flatnonzero(a):
    """numpy.flatnonzero: the indices of the nonzero elements of the flattened `a` (int64)."""
    a = as_tensor_variable(a)
    if a.ndim == 0:
        raise ValueError("flatnonzero only supports non-scalar arrays (as Theano)")
    return nonzero(a.flatten(), return_matrix=True)[0]


def nonzero_values(a):
    """The nonzero elements of the flattened `a`, in order (Theano's T.nonzero_values; it has a
    gradient, through the indexing)."""
    a = as_tensor_variable(a)
    return a.flatten()[flatnonzero(a)]


def _diagonal_axes(x, offset, axis1, axis2, name):
    if x.ndim < 2:
        raise ValueError(f"{name} needs at least two dimensions, got a {x.ndim}-d tensor")
    a1, a2 = _axis(axis1, x.ndim), _axis(axis2, x.ndim)
    if a1 == a2:
        raise ValueError(f"{name}: axis1 and axis2 cannot be the same ({axis1}, {axis2})")
    if not isinstance(offset, (int, np.integer)):
        raise TypeError(f"{name}: offset must be a Python int, got {offset!r}")
    return int(offset), a1, a2


def _diag_index(shape, offset, a1, a2):
    """(rows, cols) of diagonal `offset` of the (a1, a2) planes of an array of `shape`."""
    n = max(0, min(shape[a1] + min(offset, 0), shape[a2] - max(offset, 0)))
    i = np.arange(n)
    return i + max(-offset, 0), i + max(offset, 0)


class ExtractDiag(Op):
    """numpy.diagonal(x, offset, axis1, axis2) as a new array (the diagonal's axis last)."""

    fresh_outputs = True

    def __init__(self, offset=0, axis1=0, axis2=1):
        self.offset, self.axis1, self.axis2 = int(offset), int(axis1), int(axis2)

    def signature(self):
        return f"ExtractDiag{{offset={self.offset},axes={self.axis1},{self.axis2}}}"

    def __reduce__(self):
        return ExtractDiag, (self.offset, self.axis1, self.axis2)

    def make_node(self, x):
        x = as_tensor_variable(x)
        _diagonal_axes(x, self.offset, self.axis1, self.axis2, "diagonal")
        axes = (self.axis1 % x.ndim, self.axis2 % x.ndim)
        kept = tuple(b for d, b in enumerate(x.broadcastable) if d not in axes)
        return Apply(self, [x], [TensorType(x.dtype, kept + (False,))])

    def perform(self, node, inputs):
        return [np.diagonal(inputs[0], self.offset, self.axis1, self.axis2).copy()]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        return [SetDiagonal(self.offset, self.axis1, self.axis2)(_m().zeros_like(x), g)]


class SetDiagonal(Op):
    """A copy of x whose diagonal (as ExtractDiag reads it) is replaced by d."""

    fresh_outputs = True

    def __init__(self, offset=0, axis1=0, axis2=1):
        self.offset, self.axis1, self.axis2 = int(offset), int(axis1), int(axis2)

    def signature(self):
        return f"SetDiagonal{{offset={self.offset},axes={self.axis1},{self.axis2}}}"

    def __reduce__(self):
        return SetDiagonal, (self.offset, self.axis1, self.axis2)

    def make_node(self, x, d):
        x, d = as_tensor_variable(x), as_tensor_variable(d)
        if d.ndim != x.ndim - 1:
            raise TypeError(f"set diagonal: {d.type} does not fit the diagonal of {x.type}")
        return Apply(self, [x, _m().cast(d, x.dtype)], [TensorType(x.dtype, x.broadcastable)])

    def perform(self, node, inputs):
        x, d = inputs
        out = x.copy()
        rows, cols = _diag_index(x.shape, self.offset, self.axis1 % x.ndim, self.axis2 % x.ndim)
        np.moveaxis(out, (self.axis1, self.axis2), (-2, -1))[..., rows, cols] = d
        return [out]

    def grad(self, inputs, output_grads, outputs):
        (_, d), (g,) = inputs, output_grads
        same = (self.offset, self.axis1, self.axis2)
        return [SetDiagonal(*same)(g, _m().zeros_like(d)), ExtractDiag(*same)(g)]


def diagonal(a, offset=0, axis1=0, axis2=1):
    """numpy.diagonal (Theano's T.diagonal): the diagonal `offset` of the (axis1, axis2) planes of a,
    as a new array with the diagonal's axis last."""
    a = as_tensor_variable(a)
    offset, a1, a2 = _diagonal_axes(a, offset, axis1, axis2, "diagonal")
    return ExtractDiag(offset, a1, a2)(a)


class FillDiagonal(Op):
    """A copy of `a` with its diagonal set to the scalar `val` (numpy.fill_diagonal, no wrap; with
    `offset`, the diagonal above (> 0) or below (< 0) the main one, of a matrix)."""

    fresh_outputs = True

    def __init__(self, offset=0):
        self.offset = int(offset)

    def signature(self):
        return f"FillDiagonal{{offset={self.offset}}}"

    def __reduce__(self):
        return FillDiagonal, (self.offset,)

    def make_node(self, a, val):
        a, val = as_tensor_variable(a), as_tensor_variable(val)
        return Apply(self, [a, val], [a.type])

    def perform(self, node, inputs):
        a, val = inputs
        out = a.copy()
        if self.offset == 0:
            np.fill_diagonal(out, val)      # a ValueError for an n-d array of unequal dimensions
        else:
            rows, cols = _diag_index(a.shape, self.offset, 0, 1)
            out[rows, cols] = val
        return [out]

    def grad(self, inputs, output_grads, outputs):
        (a, val), (g,) = inputs, output_grads
        if not _is_float(a):
            return [None, None]
        outside = FillDiagonal(self.offset)(g, _m().zeros_like(val))
        on_diagonal = ExtractDiag(self.offset)(g).sum() if a.ndim == 2 else g.sum() - outside.sum()
        return [outside, _m().cast(on_diagonal, val.dtype)]


def _fill_value(a, val, name):
    from .variable import is_weak

    a, val = as_tensor_variable(a), as_tensor_variable(val)
    if a.ndim < 2:
        raise TypeError(f"{name}: the first argument must have at least two dimensions, got {a.type}")
    if val.ndim != 0:
        raise TypeError(f"{name}: the value must be a scalar, got {val.type}")
    if is_weak(val) or np.result_type(a.dtype, val.dtype).name == a.dtype:
        return a, _m().cast(val, a.dtype)
    raise TypeError(f"{name}: a {val.dtype} value does not fit a {a.dtype} tensor without losing "
                    f"precision; cast it first (as Theano requires)")


def fill_diagonal(a, val):
    """A copy of `a` (a matrix, or an n-d array of equal dimensions) with its diagonal set to the
    scalar `val` (Theano's extra_ops.fill_diagonal; gradient to both)."""
    a, val = _fill_value(a, val, "fill_diagonal")
    return FillDiagonal(0)(a, val)


def fill_diagonal_offset(a, val, offset):
    """A copy of matrix `a` with diagonal `offset` (> 0 above the main one) set to the scalar `val`."""
    a, val = _fill_value(a, val, "fill_diagonal_offset")
    if a.ndim != 2:
        raise TypeError(f"fill_diagonal_offset takes a matrix, got {a.type}")
    return FillDiagonal(int(offset))(a, val)


class BinCount(Op):
    """numpy.bincount of a non-negative integer vector, optionally weighted; the result has x's dtype
    (weights': with them), as Theano's."""

    fresh_outputs = True

    def __init__(self, minlength=None):
        self.minlength = None if minlength is None else int(minlength)

    def signature(self):
        return f"BinCount{{minlength={self.minlength}}}"

    def __reduce__(self):
        return BinCount, (self.minlength,)

    def make_node(self, x, weights=None):
        x = as_tensor_variable(x)
        inputs = [x] if weights is None else [x, as_tensor_variable(weights)]
        dtype = inputs[-1].dtype
        return Apply(self, inputs, [TensorType(dtype, (False,))])

    def perform(self, node, inputs):
        x, weights = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        if x.size and x.min() < 0:
            raise ValueError(f"bincount: the input has negative values (the smallest is {x.min()})")
        if x.size and int(x.max()) >= 2**62:
            raise ValueError(f"bincount: value {x.max()} is too large to count")
        if weights is not None and weights.shape != x.shape:
            raise ValueError(f"bincount: weights of shape {weights.shape} for an input of shape {x.shape}")
        out = np.bincount(x.astype(np.int64), weights, minlength=self.minlength or 0)
        return [out.astype(node.outputs[0].dtype)]

    def grad(self, inputs, output_grads, outputs):
        if len(inputs) == 1:
            return [None]
        return [None, output_grads[0][inputs[0]]]


def bincount(x, weights=None, minlength=None, assert_nonneg=False):
    """numpy.bincount (Theano's extra_ops.bincount): how often each value of the integer vector x
    occurs (its weights summed, with `weights`), at least `minlength` entries. Negative values are a
    ValueError whatever `assert_nonneg` says. Gradient: to the weights."""
    x = as_tensor_variable(x)
    if x.ndim != 1 or not dtypes.is_integer(x.dtype):
        raise TypeError(f"bincount takes a vector of integers, got {x.type}")
    if minlength is not None and (not isinstance(minlength, (int, np.integer)) or minlength < 0):
        raise ValueError(f"bincount: minlength must be a non-negative Python int, got {minlength!r}")
    if weights is not None:
        weights = as_tensor_variable(weights)
        if weights.ndim != 1:
            raise TypeError(f"bincount: weights must be a vector, got {weights.type}")
    return BinCount(minlength)(x, weights)


class Unique(Op):
    """numpy.unique: the sorted unique values, and as asked the first indices, the inverse (a vector
    indexing the flattened input, as in Theano) and the counts, each int64. No gradient."""

    fresh_outputs = True

    def __init__(self, return_index=False, return_inverse=False, return_counts=False, axis=None):
        self.return_index, self.return_inverse = bool(return_index), bool(return_inverse)
        self.return_counts = bool(return_counts)
        self.axis = None if axis is None else int(axis)

    def signature(self):
        flags = "".join(str(int(f)) for f in (self.return_index, self.return_inverse, self.return_counts))
        return f"Unique{{{flags},axis={self.axis}}}"

    def __reduce__(self):
        return Unique, (self.return_index, self.return_inverse, self.return_counts, self.axis)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if self.axis is not None and not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"unique: axis {self.axis} is out of range for a {x.ndim}-d tensor")
        values = TensorType(x.dtype, (False,) if self.axis is None else (False,) * x.ndim)
        extra = sum((self.return_index, self.return_inverse, self.return_counts))
        return Apply(self, [x], [values] + [TensorType("int64", (False,))] * extra)

    def perform(self, node, inputs):
        out = np.unique(inputs[0], return_index=self.return_index, return_inverse=self.return_inverse,
                        return_counts=self.return_counts, axis=self.axis)
        out = out if isinstance(out, tuple) else (out,)
        return [np.ascontiguousarray(out[0])] + [np.asarray(o, dtype=np.int64).reshape(-1) for o in out[1:]]


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None):
    """numpy.unique through Unique: one variable, or a list of them when more than the values are asked."""
    return Unique(return_index, return_inverse, return_counts, axis)(ar)


def compress(condition, x, axis=None):
    """numpy.compress (Theano's extra_ops.compress): the slices of x along `axis` (None: the
    elements of the flattened x) where `condition` is nonzero."""
    x = as_tensor_variable(x)
    indices = flatnonzero(condition)
    if axis is None:
        return x.flatten()[indices]
    return _take(x, _axis(axis, x.ndim), indices)


class _NdGrid:
    """T.mgrid / T.ogrid: T.mgrid[0:5, 0:3] is a list of tensors, one per slice (numpy's mgrid
    values, as Theano's list); ogrid's are the aranges with broadcastable dimensions elsewhere."""

    def __init__(self, sparse: bool):
        self.sparse = sparse

    def __getitem__(self, slices):
        slices = slices if isinstance(slices, tuple) else (slices,)
        for s in slices:
            if not isinstance(s, slice) or s.stop is None or isinstance(s.step, complex):
                raise NotImplementedError(f"{'ogrid' if self.sparse else 'mgrid'} takes slices with a "
                                          f"stop and a real step, got {s!r}")
        n = len(slices)
        ranges = [_m().arange(s.start or 0, s.stop, s.step or 1) for s in slices]
        ranges = [r.dimshuffle(["x"] * j + [0] + ["x"] * (n - 1 - j)) for j, r in enumerate(ranges)]
        if self.sparse:
            return ranges
        grids = []
        for i, r in enumerate(ranges):
            grid = r
            for j, other in enumerate(ranges):
                if j != i:
                    grid = grid * _m().ones_like(other)
            grids.append(grid)
        return grids


mgrid = _NdGrid(sparse=False)
ogrid = _NdGrid(sparse=True)
