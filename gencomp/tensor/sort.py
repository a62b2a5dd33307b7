"""Theano's theano.tensor.sort: sort and argsort (host ops: numpy's sort between the C segments), and
the gather / scatter along an axis that sort's gradient is made of."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .type import TensorType
from .variable import as_tensor_variable

_KINDS = ("quicksort", "mergesort", "heapsort", "stable")


def _axis(axis, ndim: int, name: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: axis must be a Python int or None, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for a {ndim}-d tensor")
    return int(axis) % ndim


def _check(a, name: str, kind: str, order):
    a = as_tensor_variable(a)
    if a.ndim == 0:
        raise ValueError(f"{name} needs a tensor of at least one dimension, got a scalar")
    if dtypes.is_complex(a.dtype):
        raise TypeError(f"{name} has no form for dtype {a.dtype}")
    if kind not in _KINDS:
        raise ValueError(f"{name}: kind must be one of {_KINDS}, got {kind!r}")
    if order is not None:
        raise ValueError(f"{name}: order applies to structured arrays, which tensors are not; leave it None")
    return a


class SortOp(Op):
    """numpy.sort (or numpy.argsort, `arg`) along `axis`; the gradient scatters back through the
    permutation that sorts."""

    fresh_outputs = True

    def __init__(self, axis: int, kind: str = "quicksort", arg: bool = False):
        self.axis, self.kind, self.arg = int(axis), kind, bool(arg)

    def signature(self):
        return f"{'ArgSort' if self.arg else 'Sort'}{{axis={self.axis},{self.kind}}}"

    def __reduce__(self):
        return SortOp, (self.axis, self.kind, self.arg)

    def make_node(self, a):
        a = as_tensor_variable(a)
        out = TensorType("int64", a.broadcastable) if self.arg else a.type
        return Apply(self, [a], [out])

    def perform(self, node, inputs):
        (a,) = inputs
        if self.arg:
            return [np.argsort(a, axis=self.axis, kind=self.kind).astype(np.int64, copy=False)]
        return [np.sort(a, axis=self.axis, kind=self.kind)]

    def grad(self, inputs, output_grads, outputs):
        if self.arg:
            return [None]
        (a,), (g,) = inputs, output_grads
        perm = SortOp(self.axis, self.kind, arg=True)(a)
        return [ScatterAlongAxis(self.axis)(a, perm, g)]


class TakeAlongAxis(Op):
    """numpy.take_along_axis(x, idx, axis): idx (integers, the shape of the result) picks along
    `axis`; its gradient adds the output gradient back at the picked places."""

    fresh_outputs = True

    def __init__(self, axis: int):
        self.axis = int(axis)

    def signature(self):
        return f"TakeAlongAxis{{{self.axis}}}"

    def __reduce__(self):
        return TakeAlongAxis, (self.axis,)

    def make_node(self, x, idx):
        x, idx = as_tensor_variable(x), as_tensor_variable(idx)
        if not dtypes.is_integer(idx.dtype) or idx.ndim != x.ndim:
            raise TypeError(f"take_along_axis: indices must be integers with {x.ndim} dimensions, "
                            f"got {idx.type}")
        return Apply(self, [x, idx], [TensorType(x.dtype, idx.broadcastable)])

    def perform(self, node, inputs):
        x, idx = inputs
        return [np.take_along_axis(x, idx, axis=self.axis).astype(x.dtype, copy=False)]

    def grad(self, inputs, output_grads, outputs):
        x, idx = inputs
        return [ScatterAlongAxis(self.axis)(x, idx, output_grads[0]), None]


class ScatterAlongAxis(Op):
    """Zeros shaped like `like`, with g added at the places idx points to along `axis` (repeated
    places add up): the adjoint of TakeAlongAxis."""

    fresh_outputs = True

    def __init__(self, axis: int):
        self.axis = int(axis)

    def signature(self):
        return f"ScatterAlongAxis{{{self.axis}}}"

    def __reduce__(self):
        return ScatterAlongAxis, (self.axis,)

    def make_node(self, like, idx, g):
        like, idx, g = as_tensor_variable(like), as_tensor_variable(idx), as_tensor_variable(g)
        if not dtypes.is_integer(idx.dtype) or not like.ndim == idx.ndim == g.ndim:
            raise TypeError(f"scatter along an axis: indices must be integers and all three tensors have "
                            f"{like.ndim} dimensions, got {idx.type} and {g.type}")
        return Apply(self, [like, idx, g], [TensorType(g.dtype, like.broadcastable)])

    def perform(self, node, inputs):
        like, idx, g = inputs
        out = np.zeros(like.shape, dtype=node.outputs[0].dtype)
        shape = idx.shape
        grids = list(np.indices(shape, sparse=True))
        grids[self.axis] = idx
        np.add.at(out, tuple(grids), np.broadcast_to(g, shape))
        return [out]

    def grad(self, inputs, output_grads, outputs):
        like, idx, g = inputs
        return [None, None, TakeAlongAxis(self.axis)(output_grads[0], idx)]


def sort(a, axis=-1, kind="quicksort", order=None):
    """numpy.sort: `a` sorted along `axis` (None: the flattened tensor), Theano's T.sort.
    NaNs sort to the end, as numpy."""
    a = _check(a, "sort", kind, order)
    if axis is None:
        return SortOp(0, kind)(a.flatten())
    return SortOp(_axis(axis, a.ndim, "sort"), kind)(a)


def argsort(a, axis=-1, kind="quicksort", order=None):
    """numpy.argsort: the int64 indices that sort `a` along `axis` (None: the flattened tensor)."""
    a = _check(a, "argsort", kind, order)
    if axis is None:
        return SortOp(0, kind, arg=True)(a.flatten())
    return SortOp(_axis(axis, a.ndim, "argsort"), kind, arg=True)(a)


def take_along_axis(x, indices, axis):
    """numpy.take_along_axis with a Python int axis (gradient: scatter-add back)."""
    x = as_tensor_variable(x)
    return TakeAlongAxis(_axis(axis, x.ndim, "take_along_axis"))(x, indices)
