"""Reductions as data (one row per kind) and the two reduction ops: Reduce and ArgReduce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .type import TensorType


@dataclass(frozen=True, eq=False)
class Reduction:
    name: str
    ref: Callable          # numpy reference: ref(x, axis=tuple)
    combine: dict          # compute kind letters -> C expression of ({acc}, {x})
    identity: str          # 'zero' | 'one' | 'lowest' | 'highest'
    nonempty: bool         # an empty reduction is an error (numpy: no identity)
    mean: bool = False     # divide by the number of reduced elements at the end


MAX = "({x} > {acc} || {x} != {x}) ? {x} : {acc}"
MIN = "({x} < {acc} || {x} != {x}) ? {x} : {acc}"

#                    name    numpy     C combine by kind                                      identity  nonempty
REDUCTIONS = {r.name: r for r in (
    Reduction("sum",  np.sum,  {"b": "{acc} | {x}", "iuf": "{acc} + {x}", "c": "{acc} + {x}"}, "zero",    False),
    Reduction("prod", np.prod, {"b": "{acc} & {x}", "iuf": "{acc} * {x}", "c": "gc_cmul({acc}, {x})"}, "one", False),
    Reduction("max",  np.max,  {"biu": "({x} > {acc}) ? {x} : {acc}", "f": MAX},         "lowest",  True),
    Reduction("min",  np.min,  {"biu": "({x} < {acc}) ? {x} : {acc}", "f": MIN},         "highest", True),
    Reduction("mean", np.mean, {"f": "{acc} + {x}", "c": "{acc} + {x}"},                  "zero",    False, mean=True),
)}


def normalize_axes(axis, ndim: int) -> tuple:
    """`axis` (None, int or sequence, negatives allowed) as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = []
    for a in axis:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for a tensor of {ndim} dimensions")
        axes.append(int(a) % ndim if ndim else 0)
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(axes))


def _result_dtype(row: Reduction, dtype: str) -> str:
    try:
        with np.errstate(all="ignore"):
            out = row.ref(np.ones(1, dtype=dtype))
    except TypeError as exc:
        raise TypeError(f"{row.name} is not defined for dtype {dtype}: {exc}") from None
    name = np.asarray(out).dtype.name
    return "float32" if name == "float16" else name


class Reduce(Op):
    """Reduce `x` over `axes` with a row of REDUCTIONS; the reduced axes disappear (keepdims is a DimShuffle)."""

    def __init__(self, kind: str, axes: tuple):
        self.row = REDUCTIONS[kind]
        self.axes = tuple(axes)

    def reduced_axes(self, ndim: int) -> tuple:
        return self.axes

    def signature(self) -> str:
        return f"Reduce{{{self.row.name},axes={list(self.axes)}}}"

    def __reduce__(self):
        return Reduce, (self.row.name, self.axes)

    def make_node(self, x) -> Apply:
        from .variable import as_tensor_variable

        x = as_tensor_variable(x)
        out_dtype = _result_dtype(self.row, x.dtype)
        kind = dtypes.kind(out_dtype)
        if not any(kind in kinds for kinds in self.row.combine):
            raise TypeError(f"{self.row.name} is not defined for dtype {x.dtype}")
        if any(a >= x.ndim for a in self.axes):
            raise ValueError(f"{self} does not fit a tensor of {x.ndim} dimensions")
        bcast = tuple(b for d, b in enumerate(x.broadcastable) if d not in self.axes)
        return Apply(self, [x], [TensorType(out_dtype, bcast)])

    def grad(self, inputs, output_grads, outputs):
        from . import math
        from .shape import ShapeI

        (x,), (g,), (z,) = inputs, output_grads, outputs
        if dtypes.kind(x.dtype) not in "fc":
            return [None]
        dims = iter(range(g.ndim))
        pattern = ["x" if d in self.axes else next(dims) for d in range(x.ndim)]
        g_full = math.dimshuffle(g, pattern)
        z_full = math.dimshuffle(z, pattern)
        name = self.row.name
        if name == "sum":
            gx = math.fill(x, g_full)
        elif name == "mean":
            gx = math.fill(x, g_full / math.cast(ShapeI(self.axes)(x), g.dtype)) if self.axes else math.fill(x, g_full)
        elif name == "prod":                    # zeros handled as Theano does: only a lone zero gets a gradient
            is_zero = math.eq(x, 0)
            zeros = math.dimshuffle(math.sum(is_zero, axis=self.axes), pattern)
            others = math.dimshuffle(math.prod(math.switch(is_zero, 1, x), axis=self.axes), pattern)
            gx = g_full * math.switch(math.eq(zeros, 0), z_full / math.switch(is_zero, 1, x),
                                      math.switch(is_zero & math.eq(zeros, 1), others, 0))
        else:                                   # max / min: to every element equal to the result
            gx = g_full * math.eq(x, z_full)
        return [math.cast(gx, x.dtype) if gx.dtype != x.dtype else gx]

    def perform(self, node, inputs):
        (x,) = inputs
        with np.errstate(all="ignore"):
            out = self.row.ref(x, axis=self.axes)
        return [np.asarray(out, dtype=node.outputs[0].dtype)]


class ArgReduce(Op):
    """Index of the maximum ('argmax') or minimum ('argmin') along one axis, or over all elements (None)."""

    def __init__(self, kind: str, axis):
        if kind not in ("argmax", "argmin"):
            raise ValueError(kind)
        self.kind, self.axis = kind, axis

    def reduced_axes(self, ndim: int) -> tuple:
        return tuple(range(ndim)) if self.axis is None else (self.axis,)

    def signature(self) -> str:
        return f"ArgReduce{{{self.kind},axis={self.axis}}}"

    def __reduce__(self):
        return ArgReduce, (self.kind, self.axis)

    def make_node(self, x) -> Apply:
        from .variable import as_tensor_variable

        x = as_tensor_variable(x)
        if dtypes.is_complex(x.dtype):
            raise TypeError(f"{self.kind} is not defined for complex dtype {x.dtype}")
        if self.axis is None:
            bcast = ()
        else:
            bcast = tuple(b for d, b in enumerate(x.broadcastable) if d != self.axis)
        return Apply(self, [x], [TensorType("int64", bcast)])

    def grad(self, inputs, output_grads, outputs):
        return [None]

    def perform(self, node, inputs):
        (x,) = inputs
        fn = np.argmax if self.kind == "argmax" else np.argmin
        return [np.asarray(fn(x, axis=self.axis), dtype=np.int64)]
