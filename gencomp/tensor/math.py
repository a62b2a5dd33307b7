"""User-facing tensor functions: the elementwise table as functions, casts, conditions, dimshuffles."""

from __future__ import annotations

import builtins

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
    if _row.name not in ("cast", "switch"):
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
