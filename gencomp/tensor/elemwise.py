"""The two structural tensor ops of elementwise code: Elemwise (a table row over arrays) and DimShuffle."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .. import dtypes
from ..graph import Apply, Constant, Op
from .table import SCALARS, Scalar
from .type import TensorType


@functools.lru_cache(maxsize=4096)
def resolve_dtypes(scalar: Scalar, in_dtypes: tuple, out_dtype=None) -> tuple:
    """(compute dtype of each input, output dtype) under numpy 2 rules; python types are weak.

    float16, which numpy picks for some small-integer loops, is widened to float32.
    """
    typing = scalar.typing
    if typing == "cast":
        return (_strong(in_dtypes[0]),), out_dtype
    if typing == "same":
        d = _strong(in_dtypes[0])
        return (d,), d
    if typing == "second":        # the value's dtype; a python scalar takes the shape-giver's
        value = in_dtypes[1] if isinstance(in_dtypes[1], str) else _strong(in_dtypes[0])
        return (_strong(in_dtypes[0]), value), value
    if typing == "where":
        samples = [np.zeros((), d) if isinstance(d, str) else d(0) for d in in_dtypes[1:]]
        value = np.result_type(*samples).name
        return ("bool", value, value), value
    return _ufunc_resolve(typing, scalar, in_dtypes)


def _strong(d):
    return d if isinstance(d, str) else {int: "int64", float: "float64", complex: "complex128"}[d]


def _ufunc_resolve(ufunc, scalar, in_dtypes):
    args = tuple(np.dtype(d) if isinstance(d, str) else d for d in in_dtypes)
    try:
        resolved = ufunc.resolve_dtypes(args + (None,) * ufunc.nout)
    except (TypeError, np.exceptions.DTypePromotionError) as exc:
        shown = ", ".join(d if isinstance(d, str) else f"python {d.__name__}" for d in in_dtypes)
        raise TypeError(f"{scalar.name} is not defined for inputs of dtype ({shown}): {exc}") from None
    names = ["float32" if d.name == "float16" else d.name for d in resolved]
    return tuple(names[:-1]), names[-1]


class Elemwise(Op):
    """Apply a scalar op (a row of the table) to every element, broadcasting as the types say."""

    def __init__(self, scalar: Scalar, out_dtype: str | None = None):
        self.scalar = scalar
        self.out_dtype = out_dtype          # fixed output dtype (cast only)

    def __reduce__(self):
        return _elemwise_op, (self.scalar.name, self.out_dtype)

    def signature(self) -> str:
        if self.out_dtype is not None:
            return f"Elemwise{{{self.scalar.name},{self.out_dtype}}}"
        return f"Elemwise{{{self.scalar.name}}}"

    def make_node(self, *inputs) -> Apply:
        from .variable import as_tensor_variable, is_weak

        if len(inputs) != self.scalar.arity:
            raise TypeError(f"{self.scalar.name} takes {self.scalar.arity} inputs, got {len(inputs)}")
        inputs = [as_tensor_variable(i) for i in inputs]
        in_dtypes = tuple(_weak_type(i) if is_weak(i) else i.dtype for i in inputs)
        if all(isinstance(d, type) for d in in_dtypes):       # only python scalars: numpy makes them arrays
            in_dtypes = tuple(_strong(d) for d in in_dtypes)
        compute, out_dtype = resolve_dtypes(self.scalar, in_dtypes, self.out_dtype)
        kinds = {dtypes.kind(d) for d in compute}
        for k in kinds:
            if self.scalar.c_expr(k) is None:
                raise TypeError(f"{self.scalar.name} has no form for dtype {compute[0]} "
                                f"(inputs: {', '.join(i.type.dtype for i in inputs)})")
        inputs = [_settle_weak(i, d) if is_weak(i) else i for i, d in zip(inputs, compute)]
        ndim = max(i.ndim for i in inputs)
        inputs = [_left_pad(i, ndim) for i in inputs]
        bcast = tuple(all(i.broadcastable[d] for i in inputs) for d in range(ndim))
        return Apply(self, inputs, [TensorType(out_dtype, bcast)])

    def perform(self, node, inputs):
        compute, _ = resolve_dtypes(self.scalar, tuple(i.dtype for i in node.inputs), self.out_dtype)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)   # C casts keep the real part too
            if self.scalar.typing != "cast":        # e.g. int8 math in float32 (numpy would pick float16)
                inputs = [x.astype(d, copy=False) if x.dtype != d else x for x, d in zip(inputs, compute)]
            out = self.scalar.ref(*inputs)
            return [np.asarray(out).astype(node.outputs[0].dtype, copy=False)]


    def grad(self, inputs, output_grads, outputs):
        from . import math

        (g,), (z,) = output_grads, outputs
        result = []
        for x, gx in zip(inputs, self.scalar.grad(g, z, *inputs)):
            if gx is None or dtypes.kind(x.dtype) not in "fc":
                result.append(None)
                continue
            axes = tuple(d for d in range(x.ndim) if x.broadcastable[d] and not gx.broadcastable[d])
            if axes:            # x was stretched along these dims: its gradient sums over them
                gx = math.sum(gx, axis=axes, keepdims=True)
            if gx.dtype != x.dtype:
                gx = math.cast(gx, x.dtype)
            if any(gb and not xb for gb, xb in zip(gx.broadcastable, x.broadcastable)) or gx.ndim < x.ndim:
                gx = math.fill(x, gx)
            result.append(gx)
        return result


def _weak_type(var):
    return {"f": float, "c": complex}.get(dtypes.kind(var.dtype), int)


def _settle_weak(var, dtype):
    """A python-scalar constant takes the dtype numpy gives it in this operation."""
    from .variable import constant

    value = var.data.item()
    target = np.dtype(dtype)
    if target.kind in "iu" and not (np.iinfo(target).min <= value <= np.iinfo(target).max):
        raise OverflowError(f"Python integer {value} out of bounds for {dtype}")
    if target.kind in "iub" and isinstance(value, float):
        target = np.dtype("float64")
    return constant(np.asarray(value, dtype=target), name=var.name)


def _left_pad(var, ndim):
    if var.ndim == ndim:
        return var
    if isinstance(var, Constant):
        from .variable import constant

        return constant(var.data.reshape((1,) * (ndim - var.ndim) + var.data.shape), name=var.name)
    return DimShuffle(var.broadcastable, ("x",) * (ndim - var.ndim) + tuple(range(var.ndim)))(var)


class DimShuffle(Op):
    """Reorder dimensions, insert broadcastable ones ('x') or drop broadcastable ones; a view."""

    returns_view = True      # perform may return a view of its input

    def __init__(self, input_broadcastable, new_order):
        self.input_broadcastable = tuple(input_broadcastable)
        self.new_order = tuple("x" if d == "x" else int(d) for d in new_order)
        kept = [d for d in self.new_order if d != "x"]
        nd = len(self.input_broadcastable)
        if len(set(kept)) != len(kept) or any(not 0 <= d < nd for d in kept):
            raise ValueError(f"dimshuffle{self.new_order}: each input dimension 0..{nd - 1} may appear once")
        for d in range(nd):
            if d not in kept and not self.input_broadcastable[d]:
                raise ValueError(f"dimshuffle{self.new_order} drops dimension {d}, which is not broadcastable")
        self._permutation = self.new_order if len(kept) == nd == len(self.new_order) else None

    def lowering(self, node) -> str:
        return "dimshuffle"       # a view: the entry point rewrites the array's lengths and strides

    def signature(self) -> str:
        return "DimShuffle{" + ",".join(map(str, self.new_order)) + "}"

    def __reduce__(self):
        return DimShuffle, (self.input_broadcastable, self.new_order)

    def make_node(self, x) -> Apply:
        from .variable import as_tensor_variable

        x = as_tensor_variable(x)
        if x.broadcastable != self.input_broadcastable:
            raise TypeError(f"{self} expects an input of pattern {self.input_broadcastable}, got {x.type}")
        bcast = tuple(True if d == "x" else x.broadcastable[d] for d in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def perform(self, node, inputs):
        (x,) = inputs
        if self._permutation is not None:          # the common case: a transpose
            return [x.transpose(self._permutation)]
        kept = [d for d in self.new_order if d != "x"]
        dropped = [d for d in range(x.ndim) if d not in kept]
        view = x.reshape([s for d, s in enumerate(x.shape) if d not in dropped]) if dropped else x
        rank = {d: r for r, d in enumerate(sorted(kept))}
        view = view.transpose([rank[d] for d in kept])
        return [view.reshape([1 if d == "x" else x.shape[d] for d in self.new_order])]


    def grad(self, inputs, output_grads, outputs):
        from .math import sum as sum_

        (x,), (g,) = inputs, output_grads
        kept = [d for d in self.new_order if d != "x"]
        inserted = tuple(i for i, d in enumerate(self.new_order) if d == "x")
        if inserted:
            g = sum_(g, axis=inserted)           # 'x' dims of the output are summed away
        # g's dim r is x's dim kept[r]; x's dropped (broadcastable) dims come back as 'x'
        pattern = [kept.index(d) if d in kept else "x" for d in range(x.ndim)]
        if pattern != list(range(g.ndim)):
            g = DimShuffle(g.broadcastable, pattern)(g)
        return [g]


def elemwise(name: str, *inputs, out_dtype=None):
    """Build Elemwise{name}(*inputs): the one way tensor functions make elementwise nodes."""
    return _elemwise_op(name, out_dtype)(*inputs)


def _elemwise_op(name, out_dtype=None):
    return Elemwise(SCALARS[name], out_dtype)
