"""User-facing tensor functions: the elementwise table as functions, casts, conditions, dimshuffles."""

from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes
from .elemwise import DimShuffle, elemwise
from .table import ROWS
from .variable import as_tensor_variable


def _make(name: str, arity: int):
    def fn(*inputs):
        if len(inputs) != arity:
            raise TypeError(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(inputs)}")
        return elemwise(name, *inputs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} of {arity} tensor{'s' if arity > 1 else ''}, broadcasting as their types allow."
    return fn


# One public function per table row (cast and switch take extra care below).
for _row in ROWS:
    if _row.name not in ("cast", "switch", "second", "stop_gradient"):
        globals()[_row.name] = _make(_row.name, _row.arity)
del _row

abs_ = globals()["abs"]
div = true_div = globals()["true_div"]
floor_div = int_div = globals()["floor_div"]
power = globals()["pow"]
sgn = globals()["sgn"]
sign = sgn
bitwise_and, bitwise_or, bitwise_xor, bitwise_not = and_, or_, xor, invert   # noqa: F821
not_ = invert                                                                # noqa: F821
round_half_to_even = globals()["round"]         # numpy's rint: halves to the even neighbour

_ROUND_MODES = {"half_to_even": round_half_to_even,
                "half_away_from_zero": round_half_away_from_zero}            # noqa: F821


def round(a, mode=None):  # noqa: A001  (Theano's name)
    """Elementwise rounding, Theano's T.round: `mode` 'half_to_even' (the default, numpy's rint) or
    'half_away_from_zero' (C's round). Integers are returned as they are."""
    if mode is None:
        mode = "half_to_even"
    if mode not in _ROUND_MODES:
        raise ValueError(f"round: mode must be one of {sorted(_ROUND_MODES)}, got {mode!r}")
    return _ROUND_MODES[mode](a)


def iround(a, mode=None):
    """round(a, mode) as int64 (Theano's T.iround)."""
    return cast(round(a, mode), "int64")


def isclose(a, b, rtol=1.0e-5, atol=1.0e-8, equal_nan=False):
    """Elementwise |a - b| <= atol + rtol * |b| (numpy.isclose, Theano's T.isclose): infinities are
    close only to the same infinity; NaNs to each other only with `equal_nan`. `b` is taken as a
    float (integers in float64), as numpy does."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if not (dtypes.is_float(b.dtype) or dtypes.is_complex(b.dtype)):
        b = cast(b, "float64")
    finite_b = invert(or_(isnan(b), isinf(b)))                                # noqa: F821
    close = or_(and_(le(abs_(a - b), atol + rtol * abs_(b)), finite_b), eq(a, b))  # noqa: F821
    if equal_nan:
        close = or_(close, and_(isnan(a), isnan(b)))                            # noqa: F821
    return close


def allclose(a, b, rtol=1.0e-5, atol=1.0e-8, equal_nan=False):
    """Whether every element of a is close to b (numpy.allclose, Theano's T.allclose): a boolean scalar."""
    return all(isclose(a, b, rtol, atol, equal_nan))


def largest(*args):
    """The elementwise largest of its arguments (Theano's T.largest, like Python's max): for two,
    switch(a > b, a, b), so a NaN in `a` gives `b`; for more, max(stack(args), axis=0)."""
    if not args:
        raise TypeError("largest() needs at least one argument")
    if len(args) == 2:
        a, b = args
        return switch(gt(a, b), a, b)                                           # noqa: F821
    return max(stack(args), axis=0)


def smallest(*args):
    """The elementwise smallest of its arguments (Theano's T.smallest): switch(a < b, a, b) for two,
    min(stack(args), axis=0) for more."""
    if not args:
        raise TypeError("smallest() needs at least one argument")
    if len(args) == 2:
        a, b = args
        return switch(lt(a, b), a, b)                                           # noqa: F821
    return min(stack(args), axis=0)


def switch(cond, ift, iff):
    """Elementwise `ift` where `cond` is true, else `iff` (numpy.where)."""
    return elemwise("switch", cond, ift, iff)


def where(cond, ift=None, iff=None):
    if ift is None or iff is None:
        raise TypeError("where(cond) with one argument is not supported; give where(cond, a, b)")
    return switch(cond, ift, iff)


def cast(x, dtype):
    """`x` converted to `dtype` ('floatX' means config.floatX), as numpy's astype."""
    if dtype == "floatX":
        from ..config import config

        dtype = config.floatX
    dtype = dtypes.canonical(dtype)
    x = as_tensor_variable(x)
    if x.dtype == dtype:
        return x
    return elemwise("cast", x, out_dtype=dtype)


def clip(x, lo, hi):
    """Elementwise min(max(x, lo), hi), as numpy.clip."""
    return minimum(maximum(x, lo), hi)   # noqa: F821


def relu(x, alpha=0):
    """max(x, 0); with `alpha`, the leaky form x if x > 0 else alpha * x."""
    x = as_tensor_variable(x)
    if alpha == 0:
        return maximum(x, 0)                                             # noqa: F821
    return switch(gt(x, 0), x, mul(alpha, x))                           # noqa: F821


def dimshuffle(x, pattern):
    """Reorder, insert ('x') or drop (broadcastable only) dimensions of `x`, as Theano's."""
    x = as_tensor_variable(x)
    return DimShuffle(x.broadcastable, tuple(pattern))(x)


def transpose(x, axes=None):
    """Permute the dimensions of `x`; reversed when `axes` is None."""
    x = as_tensor_variable(x)
    if axes is None:
        axes = tuple(range(x.ndim))[::-1]
    axes = tuple(a + x.ndim if a < 0 else a for a in axes)
    if sorted(axes) != list(builtins.range(x.ndim)):
        raise ValueError(f"transpose axes {axes} are not a permutation of {x.ndim} dimensions")
    if axes == tuple(builtins.range(x.ndim)):
        return x
    return dimshuffle(x, axes)


# ---- reductions -------------------------------------------------------------------------------

def _keep_dims(out, ndim, axes):
    dims = iter(range(out.ndim))
    return dimshuffle(out, ["x" if d in axes else next(dims) for d in range(ndim)])


def _reduce(kind, x, axis, keepdims):
    from .reduce import Reduce, normalize_axes

    x = as_tensor_variable(x)
    axes = normalize_axes(axis, x.ndim)
    out = Reduce(kind, axes)(x)
    return _keep_dims(out, x.ndim, axes) if keepdims else out


def _acc_dtype(x, acc_dtype):
    """`acc_dtype` checked as Theano's CAReduceDtype does: it must not lose precision on `x`'s dtype,
    except that a float accumulator for an integer input is allowed."""
    acc = dtypes.canonical(acc_dtype)
    if dtypes.is_integer(x.dtype) or x.dtype == "bool":
        if dtypes.is_float(acc) or dtypes.is_complex(acc):
            return acc
    if np.result_type(x.dtype, acc).name != acc:
        raise TypeError(
            f"cannot reduce a {x.dtype} tensor with acc_dtype={acc}: precision would be lost; leave "
            f"acc_dtype out, give one at least as precise as {x.dtype}, or give dtype={acc!r} instead "
            f"(an exact reduction cast to {acc} at the end)")
    return acc


def _reduce_dtype(kind, x, axis, keepdims, dtype, acc_dtype):
    """Theano's sum / prod with `dtype` (of the result; ints default to int64 / uint64 as numpy) and
    `acc_dtype` (the accumulator: x is cast to it before reducing, so the kernel adds in it)."""
    from .reduce import REDUCTIONS, _result_dtype

    x = as_tensor_variable(x)
    if acc_dtype is not None:
        dtype = dtype or _result_dtype(REDUCTIONS[kind], x.dtype)     # the accumulator never shows
        x = cast(x, _acc_dtype(x, acc_dtype))
    out = _reduce(kind, x, axis, keepdims)
    return cast(out, dtype) if dtype is not None else out


def sum(x, axis=None, dtype=None, keepdims=False, acc_dtype=None):  # noqa: A001  (numpy's name)
    """Sum over `axis` (None: all, int or tuple, negatives allowed); ints sum in int64 as numpy.

    `dtype` is the result's dtype, `acc_dtype` the accumulator's (Theano's meaning and argument
    order)."""
    return _reduce_dtype("sum", x, axis, keepdims, dtype, acc_dtype)


def prod(x, axis=None, dtype=None, keepdims=False, acc_dtype=None, no_zeros_in_input=False):
    """Product over `axis`; `dtype` and `acc_dtype` as for sum (`no_zeros_in_input`: Theano's
    gradient hint, accepted; the gradient here is right with or without zeros)."""
    return _reduce_dtype("prod", x, axis, keepdims, dtype, acc_dtype)


def mean(x, axis=None, dtype=None, op=False, keepdims=False, acc_dtype=None):
    """Arithmetic mean over `axis` (float64 for integer input, as numpy).

    With `dtype` or `acc_dtype`, as Theano's: the sum is taken with them, then divided by the count
    in float32 (for a float32 / complex64 sum) or float64; an integer sum gives a float64 mean."""
    if dtype is None and acc_dtype is None:
        return _reduce("mean", x, axis, keepdims)
    from .reduce import normalize_axes
    from .shape import ShapeI

    x = as_tensor_variable(x)
    axes = normalize_axes(axis, x.ndim)
    total = sum(x, axis, dtype, keepdims, acc_dtype)
    count_dtype = "float32" if total.dtype in ("float32", "complex64") else "float64"
    count = cast(ShapeI(axes)(x), count_dtype) if axes else np.ones((), count_dtype)
    return true_div(total, count)                                        # noqa: F821


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("min", x, axis, keepdims)


def var(x, axis=None, ddof=0, keepdims=False, corrected=False):
    """Variance over `axis`; `ddof` (or corrected=True, ddof 1) divides by n - ddof."""
    from .reduce import normalize_axes
    from .shape import ShapeI

    x = as_tensor_variable(x)
    ddof = 1 if corrected and not ddof else ddof
    centered = x - mean(x, axis, keepdims=True)
    square = abs(centered) ** 2 if dtypes.is_complex(x.dtype) else centered * centered
    v = mean(square, axis, keepdims=keepdims)
    if ddof:
        axes = normalize_axes(axis, x.ndim)
        n = cast(ShapeI(axes)(x), v.dtype)
        v = v * n / (n - ddof)
    return v


def std(x, axis=None, ddof=0, keepdims=False, corrected=False):
    return sqrt(var(x, axis, ddof=ddof, keepdims=keepdims, corrected=corrected))  # noqa: F821


def _arg(kind, x, axis, keepdims):
    from .reduce import ArgReduce, normalize_axes

    x = as_tensor_variable(x)
    if axis is not None and not isinstance(axis, (int, np.integer)):
        axes = normalize_axes(axis, x.ndim)
        if len(axes) != 1:
            raise TypeError(f"{kind} takes one axis or None, got {axis!r}")
        axis = axes[0]
    if axis is not None:
        axis = normalize_axes(axis, x.ndim)[0]
    out = ArgReduce(kind, axis)(x)
    if keepdims:
        out = _keep_dims(out, x.ndim, tuple(range(x.ndim)) if axis is None else (axis,))
    return out


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along `axis` (None: of the flattened tensor), as numpy."""
    return _arg("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _arg("argmin", x, axis, keepdims)


# ---- filling, stacking, products -------------------------------------------------------------------

def zeros_like(x, dtype=None):
    x = as_tensor_variable(x)
    return elemwise("second", x, np.zeros((), dtype or x.dtype))


def ones_like(x, dtype=None):
    x = as_tensor_variable(x)
    return elemwise("second", x, np.ones((), dtype or x.dtype))


def fill(model, value):
    """`value` broadcast to the shape of `model` (Theano's fill / second)."""
    return elemwise("second", model, value)


def stack(tensors, axis=0):
    """Join tensors of the same shape along a new axis."""
    from .shape import concatenate

    tensors = [as_tensor_variable(t) for t in tensors]
    nd = tensors[0].ndim
    axis = axis + nd + 1 if axis < 0 else axis
    expanded = [dimshuffle(t, list(range(axis)) + ["x"] + list(range(axis, nd))) for t in tensors]
    return concatenate(expanded, axis=axis)


def outer(x, y):
    """Outer product of two vectors."""
    x, y = as_tensor_variable(x), as_tensor_variable(y)
    return dimshuffle(x, (0, "x")) * dimshuffle(y, ("x", 0))


def sqr(x):
    return mul(x, x)  # noqa: F821


square = sqr


def inv(x):
    """1 / x (Theano's T.inv)."""
    x = as_tensor_variable(x)
    return true_div(np.ones((), dtype=x.dtype if dtypes.is_float(x.dtype) else "float64"), x)


reciprocal = inv


def all(x, axis=None, keepdims=False):  # noqa: A001  (numpy's name)
    """Whether every element (along `axis`) is nonzero; True for none, as numpy."""
    return eq(sum(eq(x, 0), axis=axis, keepdims=keepdims), 0)  # noqa: F821


def any(x, axis=None, keepdims=False):  # noqa: A001
    """Whether some element (along `axis`) is nonzero; False for none, as numpy."""
    return neq(sum(neq(x, 0), axis=axis, keepdims=keepdims), 0)  # noqa: F821


# ---- shapes made from others -------------------------------------------------------------------------

def _shape_entries(shape) -> list:  # noqa: F811
    """A shape given as ints / integer scalars, or as a symbolic shape vector of known length."""
    from ..graph import Variable
    from .shape import get_vector_length

    if isinstance(shape, Variable):
        if shape.ndim == 0:
            return [shape]
        if shape.ndim == 1:
            try:            # x.shape, x.shape[1:], T.stack([...]): vectors whose length the graph decides
                return [shape[i] for i in range(get_vector_length(shape))]
            except ValueError:
                pass
        raise TypeError("a shape is a tuple of ints or integer scalars (or x.shape); got " + repr(shape))
    if isinstance(shape, (int, np.integer)):
        return [int(shape)]
    return list(shape)


def zeros(shape, dtype=None):  # noqa: F811  (the argument shadows the function shape)
    """A tensor of zeros (dtype config.floatX unless given)."""
    from ..config import config

    return alloc(np.zeros((), dtypes.canonical(dtype or config.floatX)), *_shape_entries(shape))


def ones(shape, dtype=None):  # noqa: F811
    """A tensor of ones (dtype config.floatX unless given)."""
    from ..config import config

    return alloc(np.ones((), dtypes.canonical(dtype or config.floatX)), *_shape_entries(shape))


def eye(n, m=None, k=0, dtype=None):
    """The n x m matrix with ones on diagonal k (numpy.eye)."""
    from ..config import config

    rows = arange(n)
    cols = arange(n if m is None else m)
    hit = eq(dimshuffle(rows, (0, "x")) + k, dimshuffle(cols, ("x", 0)))  # noqa: F821
    return cast(hit, dtype or config.floatX)


def identity_like(x, dtype=None):
    """An identity matrix with the shape of matrix `x`."""
    x = as_tensor_variable(x)
    return eye(x.shape[0], x.shape[1], dtype=dtype or x.dtype)


def shape_padleft(x, n_ones=1):
    """`x` with `n_ones` broadcastable dimensions added in front."""
    x = as_tensor_variable(x)
    return dimshuffle(x, ["x"] * n_ones + list(range(x.ndim)))


def shape_padright(x, n_ones=1):
    """`x` with `n_ones` broadcastable dimensions added at the end."""
    x = as_tensor_variable(x)
    return dimshuffle(x, list(range(x.ndim)) + ["x"] * n_ones)


def shape_padaxis(x, axis):
    """`x` with one broadcastable dimension inserted at `axis` (numpy.expand_dims)."""
    x = as_tensor_variable(x)
    axis = axis + x.ndim + 1 if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        raise ValueError(f"shape_padaxis: axis {axis} out of range for a {x.ndim}-d tensor")
    return dimshuffle(x, list(range(axis)) + ["x"] + list(range(axis, x.ndim)))


def squeeze(x, axis=None):
    """`x` without its broadcastable dimensions (those of `axis`, which must be broadcastable)."""
    x = as_tensor_variable(x)
    axes = [d for d in range(x.ndim) if x.broadcastable[d]] if axis is None else \
        [a % x.ndim for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis)]
    for a in axes:
        if not x.broadcastable[a]:
            raise ValueError(f"squeeze: dimension {a} of {x.type} is not broadcastable (length 1 is not "
                             f"known); use addbroadcast first, or reshape")
    return dimshuffle(x, [d for d in range(x.ndim) if d not in axes])


def disconnected_grad(x):
    """`x`, through which no gradient flows (Theano's gradient.disconnected_grad)."""
    return elemwise("stop_gradient", x)


from .blas import batched_dot, dot, matmul, tensordot  # noqa: E402,F401
from .shape import (addbroadcast, alloc, arange, concatenate, cumsum, flatten,  # noqa: E402,F401
                    patternbroadcast, reshape, shape, unbroadcast)
from .subtensor import getitem, inc_subtensor, set_subtensor  # noqa: E402,F401

second = fill
stop_gradient = disconnected_grad
