"""Shape ops: shape, reshape, concatenate, arange, alloc. They run on the host (numpy), as views where possible."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..graph import Apply, Constant, Op
from .type import TensorType


def _as(x):
    from .variable import as_tensor_variable

    return as_tensor_variable(x)


class ShapeOp(Op):
    """The shape of `x` as an int64 vector."""

    def signature(self):
        return "Shape"

    def lowering(self, node) -> str:
        return "shape"

    def make_node(self, x):
        x = _as(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim == 1,))])

    def perform(self, node, inputs):
        return [np.asarray(inputs[0].shape, dtype=np.int64)]

    def grad(self, inputs, output_grads, outputs):
        return [None]


class ShapeI(Op):
    """Length of dimension `i` of `x` (an int64 scalar); `i` may be a tuple: the product of those lengths."""

    def __init__(self, axes):
        self.axes = tuple(axes) if isinstance(axes, (tuple, list)) else (int(axes),)

    def lowering(self, node) -> str:
        return "shape_i"

    def signature(self):
        return f"ShapeI{{{','.join(map(str, self.axes))}}}"

    def __reduce__(self):
        return ShapeI, (self.axes,)

    def make_node(self, x):
        x = _as(x)
        if any(not 0 <= a < x.ndim for a in self.axes):
            raise ValueError(f"{self}: axes out of range for a {x.ndim}-d tensor")
        return Apply(self, [x], [TensorType("int64", ())])

    def perform(self, node, inputs):
        shape = inputs[0].shape
        return [np.asarray(math.prod([shape[a] for a in self.axes]), dtype=np.int64)]

    def grad(self, inputs, output_grads, outputs):
        return [None]


class CheckedLength(Op):
    """A length read from input shapes, with the checks of the ops it was read through (what shape
    inference leaves of `(x + y).shape` once x + y itself need not run).

    `groups` holds, per group, ((input index, dim), ...) pairs whose lengths must agree and whether
    they must also equal 1; the first group's common length is the result. A broadcast mismatch, or
    the inner lengths of a dot, still raise the ValueError the removed op would have raised.
    """

    def __init__(self, groups):
        self.groups = tuple((tuple((int(i), int(d)) for i, d in pairs), bool(one)) for pairs, one in groups)

    def signature(self):
        shown = ";".join(",".join(f"{i}.{d}" for i, d in pairs) + ("=1" if one else "")
                         for pairs, one in self.groups)
        return f"CheckedLength{{{shown}}}"

    def __reduce__(self):
        return CheckedLength, (self.groups,)

    def lowering(self, node) -> str:
        return "checked_length"

    def make_node(self, *tensors):
        tensors = [_as(t) for t in tensors]
        for pairs, _ in self.groups:
            if any(not 0 <= i < len(tensors) or not 0 <= d < tensors[i].ndim for i, d in pairs):
                raise ValueError(f"{self}: a (input, dimension) pair is out of range")
        return Apply(self, tensors, [TensorType("int64", ())])

    def perform(self, node, inputs):
        lengths = []
        for pairs, one in self.groups:
            seen = {(i, d): inputs[i].shape[d] for i, d in pairs}
            values = set(seen.values()) | ({1} if one else set())
            if len(values) > 1:
                shown = ", ".join(f"{node.inputs[i]!r} has length {n} in dimension {d}"
                                  for (i, d), n in seen.items())
                raise ValueError(f"shape mismatch: {shown}; these lengths must agree (an elementwise op "
                                 f"stretches only dimensions marked broadcastable: T.row / T.col, "
                                 f"dimshuffle('x', ...), shared(..., broadcastable=); a dot needs equal "
                                 f"inner lengths)")
            lengths.append(values.pop() if values else 1)
        return [np.asarray(lengths[0], dtype=np.int64)]

    def grad(self, inputs, output_grads, outputs):
        return [None] * len(inputs)


class Reshape(Op):
    """Reshape `x` to the int vector `shape` (one entry may be -1); the result has `ndim` dimensions."""

    returns_view = True      # perform may return a view of its input

    def __init__(self, ndim: int):
        self.ndim = int(ndim)

    def signature(self):
        return f"Reshape{{{self.ndim}}}"

    def __reduce__(self):
        return Reshape, (self.ndim,)

    def lowering(self, node) -> str:
        return "reshape"       # a view of a C-contiguous input, else a copy

    def make_node(self, x, shape):
        x, shape = _as(x), _as(shape)
        if shape.ndim != 1 or not dtypes.is_integer(shape.dtype):
            raise TypeError(f"reshape needs an integer vector shape, got {shape.type}")
        bcast = [False] * self.ndim
        if isinstance(shape, Constant):
            dims = tuple(int(s) for s in np.asarray(shape.data).reshape(-1))
            if len(dims) != self.ndim:
                raise ValueError(f"reshape: the shape {dims} has {len(dims)} entries, expected {self.ndim}")
            check_new_shape(dims)
            bcast = [d == 1 for d in dims]
        return Apply(self, [x, shape], [TensorType(x.dtype, tuple(bcast))])

    def perform(self, node, inputs):
        x, shape = inputs
        dims = tuple(int(s) for s in shape)
        if len(dims) != self.ndim:
            raise ValueError(f"reshape: the shape {dims} has {len(dims)} entries, expected {self.ndim}")
        check_new_shape(dims, x.shape)
        try:
            return [x.reshape(dims)]
        except ValueError as exc:
            raise ValueError(f"cannot reshape an array of shape {x.shape} into {dims}: {exc}") from None

    def grad(self, inputs, output_grads, outputs):
        x, _ = inputs
        return [reshape(output_grads[0], shape(x), ndim=x.ndim), None]


class Join(Op):
    """Concatenate tensors along `axis` (numpy.concatenate)."""

    def __init__(self, axis: int):
        self.axis = int(axis)

    def signature(self):
        return f"Join{{{self.axis}}}"

    def __reduce__(self):
        return Join, (self.axis,)

    def lowering(self, node) -> str:
        return "join"

    fresh_outputs = True      # perform returns a new array: its buffer may be reused

    def make_node(self, *tensors):
        from .math import cast

        tensors = [_as(t) for t in tensors]
        if not tensors:
            raise ValueError("concatenate needs at least one tensor")
        nd = tensors[0].ndim
        if any(t.ndim != nd for t in tensors) or not 0 <= self.axis < max(nd, 1):
            raise ValueError(f"concatenate: all tensors need {nd} dimensions and axis {self.axis} inside them")
        dtype = np.result_type(*[t.dtype for t in tensors]).name
        tensors = [cast(t, dtype) for t in tensors]
        bcast = tuple(all(t.broadcastable[d] for t in tensors) if d != self.axis else False for d in range(nd))
        return Apply(self, tensors, [TensorType(dtype, bcast)])

    def perform(self, node, inputs):
        try:
            return [np.concatenate(inputs, axis=self.axis)]
        except ValueError as exc:
            raise ValueError(f"concatenate: {exc} (shapes {[i.shape for i in inputs]})") from None

    def grad(self, inputs, output_grads, outputs):
        from .subtensor import getitem

        (g,) = output_grads
        grads, start = [], 0
        for t in inputs:
            stop = start + ShapeI(self.axis)(t)
            index = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(getitem(g, index))
            start = stop
        return grads


class ARange(Op):
    """numpy.arange(start, stop, step) with scalar inputs."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def signature(self):
        return f"ARange{{{self.dtype}}}"

    def lowering(self, node) -> str:
        integers = all(dtypes.is_integer(v.dtype) for v in node.inputs) and dtypes.is_integer(self.dtype)
        return "arange" if integers else "host"

    def __reduce__(self):
        return ARange, (self.dtype,)

    def make_node(self, start, stop, step):
        ins = [_as(v) for v in (start, stop, step)]
        if any(v.ndim != 0 for v in ins):
            raise TypeError("arange takes scalar start, stop and step")
        return Apply(self, ins, [TensorType(self.dtype, (False,))])

    def perform(self, node, inputs):
        start, stop, step = (v.item() for v in inputs)
        if step == 0:
            raise ValueError("arange: step must not be zero")
        return [np.arange(start, stop, step, dtype=self.dtype)]

    def grad(self, inputs, output_grads, outputs):
        return [None, None, None]


class Alloc(Op):
    """An array of the given shape filled with the scalar (or broadcastable) `value`."""

    def signature(self):
        return "Alloc"

    def lowering(self, node) -> str:
        return "alloc"

    fresh_outputs = True

    def make_node(self, value, *shape):
        value = _as(value)
        shape = [_as(s) for s in shape]
        if any(s.ndim != 0 or not dtypes.is_integer(s.dtype) for s in shape) or value.ndim > len(shape):
            raise TypeError("alloc(value, *shape): shape entries are integer scalars")
        bcast = tuple(isinstance(s, Constant) and int(s.data) == 1 for s in shape)
        return Apply(self, [value, *shape], [TensorType(value.dtype, bcast)])

    def perform(self, node, inputs):
        value, *shape = inputs
        out = np.empty(tuple(int(s) for s in shape), dtype=node.outputs[0].dtype)
        out[...] = value
        return [out]

    def grad(self, inputs, output_grads, outputs):
        from .math import sum as sum_

        value = inputs[0]
        g = output_grads[0]
        lead = g.ndim - value.ndim
        axes = tuple(range(lead)) + tuple(lead + d for d, b in enumerate(value.broadcastable) if b)
        gv = sum_(g, axis=axes) if axes else g
        if any(value.broadcastable):
            gv = reshape_like(gv, value)
        return [gv] + [None] * (len(inputs) - 1)


def reshape_like(g, like):
    return reshape(g, shape(like), ndim=like.ndim)


def shape(x):
    """The shape of `x` as a symbolic int64 vector."""
    return ShapeOp()(x)


def shape_i(x, axes):
    return ShapeI(axes)(x)


def check_new_shape(dims, old_shape=None, shown=None):
    """ValueError unless every length in `dims` is >= 0 but for at most one -1 (the length numpy
    infers). numpy itself takes any negative length as that one (undocumented: numpy/numpy#27024);
    gencomp does not, so that a shape computed wrongly (a -2) is an error, not a silent -1."""
    unknown, shown = 0, tuple(dims) if shown is None else shown
    for d in dims:
        if d == -1:
            unknown += 1
        elif d < 0:
            raise ValueError(f"reshape{_of(old_shape)}: negative length {d} in the new shape {shown}; "
                             f"lengths are >= 0, and one of them may be -1 (inferred)")
    if unknown > 1:
        raise ValueError(f"reshape{_of(old_shape)}: the new shape {shown} has {unknown} entries -1; "
                         f"can only specify one unknown dimension")


def _of(shape) -> str:
    return "" if shape is None else f" of an array of shape {tuple(shape)}"


def get_vector_length(v) -> int:
    """The length of the symbolic vector `v` when its graph decides it (Theano's get_vector_length):
    a constant, `x.shape`, a slice of one with constant bounds, a stack or concatenation of those,
    an elementwise op of them (`T.cast(x.shape, 'int32')`), a broadcastable vector. TypeError
    when `v` is not a vector, ValueError when its length is known only at run time."""
    from .elemwise import Elemwise
    from .subtensor import Subtensor

    v = _as(v)
    if v.ndim != 1:
        raise TypeError(f"get_vector_length: {v!r} is not a vector ({v.type})")
    if v.broadcastable[0]:
        return 1
    if isinstance(v, Constant):
        return len(v.data)
    node, op = v.owner, getattr(v.owner, "op", None)
    if isinstance(op, ShapeOp):
        return node.inputs[0].ndim
    if isinstance(op, Join) and op.axis == 0:
        return sum(get_vector_length(i) for i in node.inputs)
    if type(op) is Subtensor and len(op.spec) == 1 and op.spec[0][0] == "slice" \
            and not any(isinstance(e, tuple) for e in op.spec[0][1:]):
        return len(range(get_vector_length(node.inputs[0]))[slice(*op.spec[0][1:])])
    if isinstance(op, Elemwise):
        for i in node.inputs:
            if i.ndim == 1 and not i.broadcastable[0]:
                try:
                    return get_vector_length(i)
                except ValueError:
                    pass
    raise ValueError(f"the length of the vector {v!r} is not known before run time; say it "
                     f"(e.g. reshape(x, shape, ndim=n)) or build the shape as a tuple")


def reshape(x, newshape, ndim=None):
    """`x` with a new shape (a tuple of ints / scalars, or an int vector; one entry may be -1)."""
    from .math import stack

    x = _as(x)
    if isinstance(newshape, (int, np.integer)):
        newshape = (newshape,)
    if isinstance(newshape, (list, tuple)):
        check_new_shape([int(s) for s in newshape if isinstance(s, (int, np.integer))],
                        shown="(" + ", ".join(str(s) if isinstance(s, (int, np.integer)) else "?"
                                              for s in newshape) + ("," if len(newshape) == 1 else "") + ")")
        if all(isinstance(s, (int, np.integer)) for s in newshape):
            vec = _as(np.asarray(newshape, dtype=np.int64))
        else:
            vec = stack([_as(s) for s in newshape])
        ndim = len(newshape)
    else:
        vec = _as(newshape)
        if ndim is None:
            try:        # Theano's x.reshape(y.shape): the new rank is the length of the shape vector
                ndim = get_vector_length(vec)
            except (TypeError, ValueError):
                raise ValueError(f"reshape: the length of the shape vector {vec!r} is not known before "
                                 f"run time; give the new rank as reshape(x, shape, ndim=n)") from None
    return Reshape(ndim)(x, vec)


def flatten(x, ndim=1):
    """Collapse the trailing dimensions of `x` so that it has `ndim` dimensions."""
    x = _as(x)
    if not 1 <= ndim <= max(x.ndim, 1):
        raise ValueError(f"flatten: ndim must be between 1 and {x.ndim}, got {ndim}")
    if ndim == 1:
        return reshape(x, (-1,))
    lead = [ShapeI(d)(x) for d in range(ndim - 1)]
    return reshape(x, (*lead, -1))


def concatenate(tensors, axis=0):
    tensors = [_as(t) for t in tensors]
    nd = tensors[0].ndim if tensors else 0
    return Join(axis + nd if axis < 0 else axis)(*tensors)


def split(x, splits_size, n_splits, axis=0):
    """Theano's split: `x` cut along `axis` into `n_splits` parts of the lengths `splits_size` (a
    vector, symbolic or not, of n_splits entries); the lengths must add up to x's length there
    (checked at run time)."""
    from .math import as_tensor_variable, cumsum

    x = as_tensor_variable(x)
    sizes = as_tensor_variable(splits_size)
    n_splits = int(n_splits)
    if sizes.ndim != 1:
        raise TypeError(f"split: splits_size must be a vector of lengths, got a {sizes.ndim}-d tensor")
    if n_splits < 1:
        raise ValueError(f"split: n_splits must be >= 1, got {n_splits}")
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis < x.ndim:
        raise ValueError(f"split: axis {axis} is out of range for a {x.ndim}-d tensor")
    try:
        given = get_vector_length(sizes)
    except (TypeError, ValueError):
        given = None
    if given is not None and given != n_splits:
        raise ValueError(f"split: splits_size has {given} entries but n_splits is {n_splits}")
    ends = cumsum(sizes)
    # a check that the lengths cover x exactly: x's length on `axis` must equal their sum
    x = specify_shape(x, [ends[-1] if d == axis else None for d in range(x.ndim)])
    parts, start = [], 0
    for k in range(n_splits):
        stop = ends[k]
        index = (slice(None),) * axis + (slice(start, stop),)
        parts.append(x[index])
        start = stop
    return parts


def join(axis, *tensors):
    """Theano's T.join(axis, *tensors): concatenate with the axis first."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"join: the axis must be an int (gencomp joins along a static axis), got {axis!r}")
    return concatenate(tensors, axis=int(axis))


class SpecifyShape(Op):
    """`x` itself, after checking at run time that its shape is the one promised (Theano's
    specify_shape); `given[d]` says whether dimension d has an entry (None entries are unchecked)."""

    returns_view = True      # perform returns its input

    def __init__(self, given):
        self.given = tuple(bool(g) for g in given)

    def signature(self):
        return "SpecifyShape{" + "".join("n" if g else "?" for g in self.given) + "}"

    def __reduce__(self):
        return SpecifyShape, (self.given,)

    def lowering(self, node) -> str:
        return "specify_shape"   # x's row itself, after the checks

    def make_node(self, x, *entries):
        x = _as(x)
        entries = [_as(e) for e in entries]
        if len(self.given) != x.ndim or len(entries) != sum(self.given):
            raise ValueError(f"specify_shape: {len(self.given)} entries for a {x.ndim}-d tensor {x!r}")
        if any(e.ndim != 0 or not dtypes.is_integer(e.dtype) for e in entries):
            raise TypeError("specify_shape: shape entries must be ints, integer scalars or None")
        return Apply(self, [x, *entries], [x.type])

    def perform(self, node, inputs):
        x, entries = inputs[0], iter(inputs[1:])
        want = tuple(int(next(entries)) if g else None for g in self.given)
        if any(w is not None and w != n for w, n in zip(want, x.shape)):
            entries = ", ".join("?" if w is None else str(w) for w in want)
            shown = f"({entries}{',' if len(want) == 1 else ''})"
            raise ValueError(f"specify_shape: {node.inputs[0]!r} has shape {x.shape}, but its shape was "
                             f"specified as {shown}")
        return [x]

    def grad(self, inputs, output_grads, outputs):
        return [output_grads[0]] + [None] * (len(inputs) - 1)


def specify_shape(x, shape):
    """`x`, checked at run time to have `shape` (ints, integer scalars, None for any length, or a
    symbolic shape vector of known length such as y.shape): a ValueError otherwise."""
    from .math import _shape_entries

    x = _as(x)
    entries = _shape_entries(shape)
    if len(entries) != x.ndim:
        raise ValueError(f"specify_shape: shape {shape!r} has {len(entries)} entries, {x!r} has "
                         f"{x.ndim} dimensions")
    given = [e is not None for e in entries]
    return SpecifyShape(given)(x, *[e for e in entries if e is not None])


def arange(start, stop=None, step=1, dtype=None):
    """Symbolic numpy.arange."""
    if stop is None:
        start, stop = 0, start
    ins = [_as(v) for v in (start, stop, step)]
    if dtype is None:
        dtype = np.result_type(*[np.zeros((), v.dtype) if not getattr(v, "weak", False) else v.data.item()
                                 for v in ins]).name
    return ARange(dtypes.canonical(dtype))(*ins)


def alloc(value, *shape):
    return Alloc()(value, *shape)


class Rebroadcast(Op):
    """`x` with another broadcastable pattern; a dimension made broadcastable must have length 1
    at call time (checked). Theano's addbroadcast / unbroadcast / patternbroadcast."""

    returns_view = True      # perform returns its input

    def __init__(self, pattern):
        self.pattern = tuple(bool(b) for b in pattern)

    def lowering(self, node) -> str:
        return "rebroadcast"      # a view, after checking the lengths its pattern promises

    def signature(self):
        return "Rebroadcast{" + "".join("1" if b else "?" for b in self.pattern) + "}"

    def __reduce__(self):
        return Rebroadcast, (self.pattern,)

    def make_node(self, x):
        x = _as(x)
        if len(self.pattern) != x.ndim:
            raise ValueError(f"{self}: the pattern has {len(self.pattern)} entries for a {x.ndim}-d tensor")
        return Apply(self, [x], [TensorType(x.dtype, self.pattern)])

    def perform(self, node, inputs):
        (x,) = inputs
        for d, b in enumerate(self.pattern):
            if b and x.shape[d] != 1:
                raise ValueError(f"addbroadcast / patternbroadcast: dimension {d} was declared broadcastable "
                                 f"but has length {x.shape[d]} (shape {x.shape})")
        return [x]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        return [rebroadcast(g, x.broadcastable)]


def rebroadcast(x, pattern):
    x = _as(x)
    pattern = tuple(bool(b) for b in pattern)
    return x if pattern == x.broadcastable else Rebroadcast(pattern)(x)


def addbroadcast(x, *axes):
    """`x` with dimensions `axes` made broadcastable (they must have length 1)."""
    x = _as(x)
    return rebroadcast(x, [b or d in {a % x.ndim for a in axes} for d, b in enumerate(x.broadcastable)])


def unbroadcast(x, *axes):
    """`x` with dimensions `axes` no longer broadcastable."""
    x = _as(x)
    return rebroadcast(x, [b and d not in {a % x.ndim for a in axes} for d, b in enumerate(x.broadcastable)])


def patternbroadcast(x, broadcastable):
    """`x` with the broadcastable pattern `broadcastable`."""
    return rebroadcast(x, broadcastable)


class CumSum(Op):
    """numpy.cumsum along `axis` (None: of the flattened array)."""

    def __init__(self, axis):
        self.axis = None if axis is None else int(axis)

    def signature(self):
        return f"CumSum{{axis={self.axis}}}"

    def __reduce__(self):
        return CumSum, (self.axis,)

    def make_node(self, x):
        x = _as(x)
        if self.axis is not None and not 0 <= self.axis < max(x.ndim, 1):
            raise ValueError(f"cumsum: axis {self.axis} out of range for a {x.ndim}-d tensor")
        dtype = np.cumsum(np.zeros(1, x.dtype)).dtype.name
        bcast = (False,) if self.axis is None else tuple(x.broadcastable)
        return Apply(self, [x], [TensorType(dtype, bcast)])

    def perform(self, node, inputs):
        return [np.cumsum(inputs[0], axis=self.axis).astype(node.outputs[0].dtype, copy=False)]

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        if self.axis is None:        # the flattened cumsum: reverse it, then reshape to x
            flipped = g[::-1]
            return [reshape_like(CumSum(0)(flipped)[::-1], x)]
        index = tuple(slice(None, None, -1) if d == self.axis else slice(None) for d in range(x.ndim))
        return [CumSum(self.axis)(g[index])[index]]


def cumsum(x, axis=None):
    """Cumulative sum (Theano's extra_ops.cumsum); negative axes count from the end."""
    x = _as(x)
    return CumSum(None if axis is None else int(axis) % max(x.ndim, 1))(x)
