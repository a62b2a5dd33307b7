"""Tensor variables and constants: Python operators, methods, and conversion of plain values."""

from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes
from ..graph import Constant, Variable
from .type import TensorType


class _TensorOps:
    """Operators and methods shared by every tensor-valued variable (Theano's _tensor_py_operators)."""

    # numpy must defer to us so that `ndarray + var` builds a graph
    __array_priority__ = 1000
    __array_ufunc__ = None

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def broadcastable(self) -> tuple:
        return self.type.broadcastable

    def __add__(self, o): return _m().add(self, o)
    def __radd__(self, o): return _m().add(o, self)
    def __sub__(self, o): return _m().sub(self, o)
    def __rsub__(self, o): return _m().sub(o, self)
    def __mul__(self, o): return _m().mul(self, o)
    def __rmul__(self, o): return _m().mul(o, self)
    def __truediv__(self, o): return _m().true_div(self, o)
    def __rtruediv__(self, o): return _m().true_div(o, self)
    def __floordiv__(self, o): return _m().floor_div(self, o)
    def __rfloordiv__(self, o): return _m().floor_div(o, self)
    def __mod__(self, o): return _m().mod(self, o)
    def __rmod__(self, o): return _m().mod(o, self)
    def __pow__(self, o): return _m().pow(self, o)
    def __rpow__(self, o): return _m().pow(o, self)
    def __neg__(self): return _m().neg(self)
    def __pos__(self): return self
    def __abs__(self): return _m().abs(self)
    def __lt__(self, o): return _m().lt(self, o)
    def __le__(self, o): return _m().le(self, o)
    def __gt__(self, o): return _m().gt(self, o)
    def __ge__(self, o): return _m().ge(self, o)
    def __and__(self, o): return _m().and_(self, o)
    def __rand__(self, o): return _m().and_(o, self)
    def __or__(self, o): return _m().or_(self, o)
    def __ror__(self, o): return _m().or_(o, self)
    def __xor__(self, o): return _m().xor(self, o)
    def __rxor__(self, o): return _m().xor(o, self)
    def __invert__(self): return _m().invert(self)

    # == stays identity (variables are dict keys), as in Theano: use T.eq for the elementwise test
    __hash__ = object.__hash__

    def __bool__(self):
        # Theano's rule: `if not W:` (a default-argument idiom) needs every variable to be truthy, while
        # `a < b < c` (Python's `(a < b) and (b < c)`) must fail loudly: so only comparisons refuse.
        node = getattr(self, "owner", None)
        if node is not None and getattr(getattr(node.op, "scalar", None), "name", None) in _COMPARISONS:
            raise TypeError("Variables do not support boolean operations: the result of a comparison has "
                            "no truth value; use T.switch / T.and_ / T.or_ to combine conditions")
        return True

    def __iter__(self):
        # Theano's: a vector whose length the graph decides (x.shape) iterates over its entries, so
        # `rows, cols = x.shape` and `T.alloc(0, *x.shape)` work; anything else refuses
        from .shape import get_vector_length

        try:
            length = get_vector_length(self)
        except (TypeError, ValueError):
            raise TypeError("a symbolic tensor cannot be iterated (only a vector whose length the graph "
                            "decides, such as x.shape, can); index it instead") from None
        return (self[i] for i in range(length))

    def __len__(self):
        raise TypeError("a symbolic tensor has no len(); use T.shape(x)[0]")

    @property
    def T(self): return _m().transpose(self)

    def transpose(self, *axes):
        return _m().transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def dimshuffle(self, *pattern):
        if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
            pattern = tuple(pattern[0])
        return _m().dimshuffle(self, pattern)

    def astype(self, dtype): return _m().cast(self, dtype)
    def __matmul__(self, o): return _m().matmul(self, o)
    def __rmatmul__(self, o): return _m().matmul(o, self)
    def __getitem__(self, index): return _m().getitem(self, index)
    def dot(self, o): return _m().dot(self, o)
    def sum(self, axis=None, dtype=None, keepdims=False, acc_dtype=None):      # Theano's order
        return _m().sum(self, axis, dtype, keepdims, acc_dtype)

    def prod(self, axis=None, dtype=None, keepdims=False, acc_dtype=None, no_zeros_in_input=False):
        return _m().prod(self, axis, dtype, keepdims, acc_dtype)

    def mean(self, axis=None, dtype=None, keepdims=False, acc_dtype=None):
        return _m().mean(self, axis, dtype, False, keepdims, acc_dtype)

    def var(self, axis=None, ddof=0, keepdims=False): return _m().var(self, axis, ddof, keepdims)
    def std(self, axis=None, ddof=0, keepdims=False): return _m().std(self, axis, ddof, keepdims)
    def max(self, axis=None, keepdims=False): return _m().max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return _m().min(self, axis, keepdims)
    def argmax(self, axis=None, keepdims=False): return _m().argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return _m().argmin(self, axis, keepdims)
    def flatten(self, ndim=1): return _m().flatten(self, ndim)
    def clip(self, lo, hi): return _m().clip(self, lo, hi)
    def round(self, mode=None): return _m().round(self, mode)
    def any(self, axis=None, keepdims=False): return _m().any(self, axis, keepdims)
    def all(self, axis=None, keepdims=False): return _m().all(self, axis, keepdims)
    def squeeze(self, axis=None): return _m().squeeze(self, axis)
    def sort(self, axis=-1, kind="quicksort", order=None): return _x("sort").sort(self, axis, kind, order)
    def argsort(self, axis=-1, kind="quicksort", order=None):
        return _x("sort").argsort(self, axis, kind, order)
    def nonzero(self, return_matrix=False): return _x().nonzero(self, return_matrix)
    def nonzero_values(self): return _x().nonzero_values(self)
    def diagonal(self, offset=0, axis1=0, axis2=1): return _x().diagonal(self, offset, axis1, axis2)
    def trace(self): return _x("nlinalg").trace(self)
    def cumsum(self, axis=None): return _x().cumsum(self, axis)
    def cumprod(self, axis=None): return _x().cumprod(self, axis)

    def compress(self, a, axis=None):
        """Theano's var.compress(a): extra_ops.compress with this variable as the condition."""
        return _x().compress(self, a, axis=axis)

    def norm(self, L, axis=None):
        """The L-norm (Theano's x.norm(L, axis)): (sum |x|**L) ** (1/L); L=2 is the Euclidean norm."""
        if L == 2:
            return _m().sqrt(_m().sum(self * self, axis=axis))
        if L == 1:
            return _m().sum(abs(self), axis=axis)
        return _m().sum(abs(self) ** L, axis=axis) ** (1.0 / L)

    def reshape(self, *shape, ndim=None):
        return _m().reshape(self, shape[0] if len(shape) == 1 else shape, ndim=ndim)

    @property
    def shape(self): return _m().shape(self)

    @property
    def size(self): return _m().prod(_m().shape(self))

    def eval(self, inputs_to_values=None):
        """The value of this expression (Theano's var.eval({x: value, ...})): compiled once per set
        of inputs and kept on the variable; shared variables are read as they are now."""
        from ..function import function

        pairs = dict(inputs_to_values or {})
        keys = tuple(id(k) for k in pairs)
        cache = self.__dict__.setdefault("_eval_functions", {})
        if keys not in cache:
            cache[keys] = function(list(pairs), self, on_unused_input="ignore")
        return cache[keys](*pairs.values())


_COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "neq"})


def _m():
    from . import math

    return math


def _x(module="extra_ops"):
    """gencomp.tensor.extra_ops (or another module of gencomp.tensor), imported when first used."""
    import importlib

    return importlib.import_module(f"gencomp.tensor.{module}")


class TensorVariable(_TensorOps, Variable):
    """A symbolic tensor: an input of a function, or the result of an operation."""

    def __reduce__(self):
        if self.owner is None:
            return TensorVariable, (self.type, None, None, self.name)
        return _rebuild_output, (self.owner.op, self.owner.inputs, self.index, self.name)


def _rebuild_output(op, inputs, index, name):
    out = op.make_node(*inputs).outputs[index]
    out.name = name
    return out


class TensorConstant(_TensorOps, Constant):
    """A constant tensor; `weak` marks a python scalar whose dtype the operation decides (numpy 2)."""

    def __init__(self, type, data, name=None, weak=False):
        super().__init__(type, data, name)
        self.weak = weak

    def __reduce__(self):
        return TensorConstant, (self.type, self.data, self.name, self.weak)

    def signature(self) -> str:
        return f"{self.type.signature()}{'~' if self.weak else ''}"


def is_weak(var) -> bool:
    return getattr(var, "weak", False)


def constant(value, name=None, dtype=None) -> TensorConstant:
    """A TensorConstant holding a read-only copy of `value`; length-1 dimensions are broadcastable."""
    arr = np.array(value, dtype=dtype)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"cannot make a tensor constant from {value!r} (dtype {arr.dtype})")
    arr = arr.astype(dtypes.canonical(arr.dtype), copy=False)
    arr.setflags(write=False)
    return TensorConstant(TensorType(arr.dtype.name, tuple(s == 1 for s in arr.shape)), arr, name)


def as_tensor_variable(x, name=None, ndim=None) -> Variable:
    """`x` itself if symbolic; python numbers become weak constants, arrays and lists strong ones."""
    if isinstance(x, Variable):
        if not isinstance(x.type, TensorType):
            raise TypeError(f"{x!r} is not a tensor variable")
        var = x
    elif isinstance(x, (bool, np.bool_)):
        var = constant(bool(x), name=name)
    elif isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        kind = complex if isinstance(x, complex) else float if isinstance(x, float) else int
        dtype = {int: "int64", float: "float64", complex: "complex128"}[kind]
        if kind is int and not -2**63 <= x < 2**63:
            raise OverflowError(f"Python integer {x} does not fit in int64")
        var = constant(np.asarray(x, dtype=dtype), name=name)
        var.weak = True
    elif isinstance(x, (np.ndarray, np.generic, list, tuple)):
        var = constant(x, name=name)
    else:
        raise TypeError(f"cannot convert {type(x).__name__} {x!r} to a tensor variable")
    if ndim is not None and var.ndim != ndim:
        raise TypeError(f"expected a {ndim}-d tensor, got {var!r} with {var.ndim} dimensions")
    return var
