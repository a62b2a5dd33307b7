"""Indexing: basic slicing (Subtensor), integer-array indexing (AdvancedSubtensor), set/inc_subtensor.

An index is stored as a spec: one entry per indexed dimension, each ('int', i) or
('slice', a, b, c) or ('array', i), where i, a, b, c are None, a python int, or
('in', k): the k-th scalar/array input after x. The ops run on the host with numpy.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Apply, Constant, Op, Variable
from .type import TensorType


def _as(x):
    from .variable import as_tensor_variable

    return as_tensor_variable(x)


def _resolve(entry, values):
    return values[entry[1]].item() if isinstance(entry, tuple) else entry


def numpy_index(spec, values):
    """The python/numpy index of `spec` given the values of its symbolic inputs."""
    index = []
    for item in spec:
        if item[0] == "slice":
            index.append(slice(*(_resolve(e, values) for e in item[1:])))
        elif item[0] == "int":
            index.append(_resolve(item[1], values))
        else:
            index.append(values[item[1][1]])
    return tuple(index)


def _out_type(x, spec, index_vars):
    """Result type by indexing a small stand-in array of the same pattern with numpy."""
    dummy = np.zeros([1 if b else 2 for b in x.broadcastable])
    values = [np.zeros([1 if b else 2 for b in v.broadcastable], dtype=np.int64) for v in index_vars]
    probe = []
    for item in spec:
        if item[0] == "slice":
            full = all(e is None for e in item[1:])
            probe.append(slice(None) if full else slice(0, 2))
        elif item[0] == "int":
            probe.append(0)
        else:
            probe.append(values[item[1][1]])
    result = dummy[tuple(probe)]
    advanced = any(item[0] == "array" for item in spec)
    bcast = []
    kept = [d for d, item in enumerate(spec) if item[0] == "slice"] + list(range(len(spec), x.ndim))
    if not advanced:
        bcast = [x.broadcastable[d] and (d >= len(spec) or all(e is None for e in spec[d][1:])) for d in kept]
    else:
        bcast = [False] * result.ndim
    return TensorType(x.dtype, tuple(bcast))


class Subtensor(Op):
    """x[spec] with ints, slices and (for AdvancedSubtensor) integer arrays; a view when basic."""

    returns_view = True      # perform may return a view of its input

    def __init__(self, spec):
        self.spec = tuple(spec)

    def signature(self):
        return f"{type(self).__name__}{{{_spec_text(self.spec)}}}"

    def __reduce__(self):
        return type(self), (self.spec,)

    def make_node(self, x, *index_vars):
        x = _as(x)
        index_vars = [_as(v) for v in index_vars]
        for v in index_vars:
            if not dtypes.is_integer(v.dtype):
                raise TypeError(f"indices must be integers, got {v.type}")
        return Apply(self, [x, *index_vars], [_out_type(x, self.spec, index_vars)])

    def perform(self, node, inputs):
        x, *values = inputs
        try:
            out = x[numpy_index(self.spec, values)]
        except IndexError as exc:
            raise IndexError(f"{exc} (indexing an array of shape {x.shape})") from None
        return [np.asarray(out)]

    def lowering(self, node) -> str:
        return "subtensor"       # a view: its lengths, strides and offset computed in C

    def grad(self, inputs, output_grads, outputs):
        from .math import zeros_like

        x, *index_vars = inputs
        gx = IncSubtensor(self.spec, set_instead=False)(zeros_like(x), output_grads[0], *index_vars)
        return [gx] + [None] * len(index_vars)


class AdvancedSubtensor(Subtensor):
    returns_view = False     # numpy's integer-array indexing copies

    def family(self, node) -> str:
        """'gather' for x[i0, ..., ik-1] with integer vectors (then full slices), whatever x's rank."""
        return "gather" if leading_arrays(self.spec, node.inputs[0], node.inputs[1:], any_rest=True) else "host"

    def lowering(self, node) -> str:
        return "gather" if leading_arrays(self.spec, node.inputs[0], node.inputs[1:]) else "host"


def leading_arrays(spec, x, index_vars, any_rest: bool = False) -> int:
    """k when `spec` is x[i0, ..., ik-1] with k signed-integer vectors (then full slices), leaving at
    most one dimension of x: the form compiled entry points index in C; else 0. `any_rest`: the
    form itself (what the GPU kernels take): any integer vectors, any number of dimensions left."""
    k = 0
    while k < len(spec) and spec[k][0] == "array":
        k += 1
    rest_full = all(item[0] == "slice" and item[1:] == (None, None, None) for item in spec[k:])
    kinds = ("int", "uint") if any_rest else ("int",)
    vectors = all(v.ndim == 1 and v.dtype.startswith(kinds) for v in index_vars)
    positions = [item[1] for item in spec[:k]] == [("in", j) for j in range(k)] == [("in", j) for j in range(len(index_vars))]
    return k if k and rest_full and vectors and positions and (any_rest or x.ndim - k <= 1) else 0


class IncSubtensor(Op):
    """A copy of x whose x[spec] is set to (or incremented by) y; repeated indices accumulate on inc."""

    fresh_outputs = True      # perform returns a new array: its buffer may be reused
    inplace_input = 0         # compiled, it may write into x's own buffer when x is read last here

    def __init__(self, spec, set_instead: bool):
        self.spec, self.set_instead = tuple(spec), bool(set_instead)

    def signature(self):
        return f"{'Set' if self.set_instead else 'Inc'}Subtensor{{{_spec_text(self.spec)}}}"

    def family(self, node, any_rest: bool = True) -> str:
        """'inc_subtensor' (ints and slices), 'scatter' (leading integer vectors: see leading_arrays'
        `any_rest`) or 'host'; y must not have more dimensions than x[spec]."""
        x, y, *index_vars = node.inputs
        if not any(item[0] == "array" for item in self.spec):
            part = x.ndim - sum(item[0] == "int" for item in self.spec)     # dimensions of x[spec]
            return "inc_subtensor" if y.ndim <= part else "host"
        return "scatter" if leading_arrays(self.spec, x, index_vars, any_rest) \
            and y.ndim <= x.ndim - len(index_vars) + 1 else "host"

    def lowering(self, node) -> str:
        return self.family(node, any_rest=False)

    def __reduce__(self):
        return IncSubtensor, (self.spec, self.set_instead)

    def make_node(self, x, y, *index_vars):
        from .math import cast

        x, y = _as(x), _as(y)
        if y.dtype != x.dtype:
            y = cast(y, x.dtype)
        return Apply(self, [x, y, *[_as(v) for v in index_vars]], [x.type])

    def perform(self, node, inputs):
        x, y, *values = inputs
        out = x.copy()
        index = numpy_index(self.spec, values)
        try:
            if self.set_instead:
                out[index] = y
            elif any(item[0] == "array" for item in self.spec):
                np.add.at(out, index, y)
            else:
                out[index] += y
        except (IndexError, ValueError) as exc:
            raise type(exc)(f"{exc} (x shape {x.shape}, y shape {np.shape(y)})") from None
        return [out]

    def grad(self, inputs, output_grads, outputs):
        from .math import sum as sum_
        from .shape import reshape_like

        x, y, *index_vars = inputs
        (g,) = output_grads
        gx = g
        if self.set_instead:
            gx = IncSubtensor(self.spec, set_instead=True)(g, 0, *index_vars)
        op = AdvancedSubtensor if any(item[0] == "array" for item in self.spec) else Subtensor
        gy = op(self.spec)(g, *index_vars)
        extra = gy.ndim - y.ndim
        axes = tuple(range(extra)) + tuple(extra + d for d, b in enumerate(y.broadcastable)
                                           if b and not gy.broadcastable[extra + d])
        if axes:
            gy = sum_(gy, axis=axes)
            if y.ndim and any(y.broadcastable):
                gy = reshape_like(gy, y)
        return [gx, gy] + [None] * len(index_vars)


def _spec_text(spec) -> str:
    def one(e):
        return "?" if isinstance(e, tuple) else ("" if e is None else str(e))

    parts = []
    for item in spec:
        if item[0] == "slice":
            parts.append(":".join(one(e) for e in item[1:]))
        elif item[0] == "int":
            parts.append(one(item[1]))
        else:
            parts.append("[?]")
    return ", ".join(parts)


def _parse(x, index):
    """(spec, symbolic inputs, new-axis positions) of a python index on `x`."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(i is Ellipsis for i in index):
        at = index.index(Ellipsis)
        explicit = sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:at] + (slice(None),) * (x.ndim - explicit) + index[at + 1:]
    spec, inputs, newaxes = [], [], []

    def scalar(v):
        if v is None or isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return None if v is None else int(v)
        var = _as(v)
        if var.ndim != 0 or not dtypes.is_integer(var.dtype):
            raise TypeError(f"slice bounds must be integer scalars, got {var.type}")
        if isinstance(var, Constant):
            return int(var.data)
        inputs.append(var)
        return ("in", len(inputs) - 1)

    for item in index:
        if item is None:
            newaxes.append(len(spec) + len(newaxes))
            continue
        if isinstance(item, slice):
            spec.append(("slice", scalar(item.start), scalar(item.stop), scalar(item.step)))
        elif isinstance(item, (list, np.ndarray)) or (isinstance(item, Variable) and item.ndim > 0):
            arr = _as(item if isinstance(item, Variable) else np.asarray(item))
            if arr.dtype == "bool" or not dtypes.is_integer(arr.dtype):
                raise TypeError(f"only integer arrays can index a tensor (boolean masks are not supported), "
                                f"got {arr.type}")
            inputs.append(arr)
            spec.append(("array", ("in", len(inputs) - 1)))
        else:
            spec.append(("int", scalar(item)))
    if len(spec) > x.ndim:
        raise IndexError(f"too many indices ({len(spec)}) for a tensor of {x.ndim} dimensions")
    return tuple(spec), inputs, newaxes


def getitem(x, index):
    """x[index] with numpy's meaning for ints, slices, None, Ellipsis and integer arrays."""
    from .math import dimshuffle

    x = _as(x)
    spec, inputs, newaxes = _parse(x, index)
    op = AdvancedSubtensor if any(item[0] == "array" for item in spec) else Subtensor
    out = op(spec)(x, *inputs) if spec else x
    if newaxes:
        if op is AdvancedSubtensor:
            raise TypeError("None (newaxis) together with integer-array indexing is not supported")
        pattern, dims, k = [], iter(range(out.ndim)), 0
        for position in range(len(spec) + len(newaxes)):
            if position in newaxes:
                pattern.append("x")
            else:
                if spec[k][0] == "slice":
                    pattern.append(next(dims))
                k += 1
        pattern += list(dims)
        out = dimshuffle(out, pattern)
    return out


def _set_or_inc(x, y, set_instead):
    node = x.owner
    if node is None or not isinstance(node.op, Subtensor):
        raise TypeError("set_subtensor / inc_subtensor take an indexed tensor, e.g. set_subtensor(x[1:3], y)")
    base, *index_vars = node.inputs
    return IncSubtensor(node.op.spec, set_instead)(base, y, *index_vars)


def set_subtensor(x, y):
    """A copy of the tensor indexed by `x` (e.g. `a[2:]`) with that part replaced by `y`."""
    return _set_or_inc(x, y, True)


def inc_subtensor(x, y):
    """A copy of the tensor indexed by `x` with `y` added to that part (repeated indices add up)."""
    return _set_or_inc(x, y, False)
