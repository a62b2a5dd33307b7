"""TensorType: a dtype plus a broadcastable pattern, and the conversion of call arguments to it."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import dtypes


def _pattern(broadcastable, shape) -> tuple:
    if broadcastable is not None and shape is not None:
        raise TypeError("give either broadcastable= or shape=, not both")
    if shape is not None:
        if isinstance(shape, int):
            shape = (shape,)
        for s in shape:
            if s is not None and (not isinstance(s, (int, np.integer)) or s < 0):
                raise TypeError(f"shape entries are None or non-negative ints, got {shape!r}")
        return tuple(s == 1 for s in shape)
    if broadcastable is None:
        return ()
    if isinstance(broadcastable, (bool, np.bool_)):
        raise TypeError(f"broadcastable must be a tuple of bools, got {broadcastable!r}")
    return tuple(bool(b) for b in broadcastable)


_NAMED_PATTERNS = {(): "scalar", (False,): "vector", (False, True): "col", (True, False): "row",
                   (False, False): "matrix"}


class TensorType:
    """The type of a tensor variable: `dtype` and one broadcastable flag per dimension.

    A broadcastable dimension must have length 1 at call time and stretches in
    elementwise operations; any other dimension keeps the length it is given.
    """

    def __init__(self, dtype, broadcastable=None, shape=None):
        self.dtype = dtypes.canonical(dtype)
        self.broadcastable = _pattern(broadcastable, shape)
        self.numpy_dtype = np.dtype(self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)

    @property
    def shape(self) -> tuple:
        return tuple(1 if b else None for b in self.broadcastable)

    @property
    def variable_class(self):
        from .variable import TensorVariable

        return TensorVariable

    def __call__(self, name=None):
        return self.variable_class(self, None, None, name)

    def clone(self, dtype=None, broadcastable=None):
        return TensorType(dtype or self.dtype,
                          self.broadcastable if broadcastable is None else broadcastable)

    def __eq__(self, other):
        return (type(other) is TensorType and other.dtype == self.dtype
                and other.broadcastable == self.broadcastable)

    def __hash__(self):
        return hash((self.dtype, self.broadcastable))

    def __reduce__(self):
        return TensorType, (self.dtype, self.broadcastable)

    def __repr__(self):
        # Theano's spelling, which its tutorials print: TensorType(float64, scalar), (..., row),
        # (..., 3D) when nothing broadcasts, else the pattern itself: (..., (False, True, False))
        b = self.broadcastable
        pattern = _NAMED_PATTERNS.get(b) or (str(b) if any(b) else f"{len(b)}D")
        return f"TensorType({self.dtype}, {pattern})"

    def signature(self) -> str:
        return self.dtype + "[" + "".join("1" if b else "?" for b in self.broadcastable) + "]"

    def filter(self, value, name: str, allow_downcast=None, floatX=None) -> np.ndarray:
        """`value` as an ndarray of this type's dtype and ndim, or TypeError saying what was wrong.

        An ndarray (or numpy scalar) must cast under numpy's 'safe' rule ('same_kind' when
        `allow_downcast` is true). A list or Python number is converted when every value fits
        the dtype exactly (16777217 does not fit float32, 1.5 not int32, 300 not int8), as
        Theano's TensorType.filter; when `allow_downcast` is true it is converted as
        numpy.asarray(value, dtype) does. `allow_downcast` None (the default): as False, except
        that a Python float given for a `floatX` input is rounded to it (Theano's "float given
        for floatX: ok", for float32 scalars written as Python literals). The values compared are
        those of numpy.asarray(value): a list mixing floats with ints beyond 2**53 is a float64
        array there first, as in numpy.
        """
        if type(value) is np.ndarray:
            arr = value
        elif isinstance(value, (np.ndarray, np.generic)):
            arr = np.asarray(value)
        else:
            return self._filter_python(value, name, allow_downcast, floatX)
        if arr.dtype != self.numpy_dtype:
            rule = "same_kind" if allow_downcast else "safe"
            if not np.can_cast(arr.dtype, self.numpy_dtype, rule):
                hint = "" if allow_downcast else ", or pass allow_input_downcast=True to function()"
                raise TypeError(
                    f"input {name!r} expects dtype {self.dtype} but got an array of dtype {arr.dtype}, "
                    f"which does not cast to it under numpy's {rule!r} rule; convert it with "
                    f".astype({self.dtype!r}){hint}")
            arr = arr.astype(self.numpy_dtype)
        return self._check_ndim(arr, name)

    def _filter_python(self, value, name, allow_downcast, floatX):
        target = self.numpy_dtype
        if allow_downcast is None and type(value) is float and self.dtype == floatX:
            with np.errstate(over="ignore"):
                arr = np.asarray(value, dtype=target)      # rounded to floatX, as in Theano
            if np.isinf(arr) and math.isfinite(value):
                raise TypeError(f"input {name!r} of dtype {self.dtype} cannot hold {value!r}: it overflows "
                                f"to {arr.item()!r}")
            return self._check_ndim(arr, name)
        try:
            natural = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"input {name!r}: cannot convert {_short(value)} to an array ({exc})") from None
        kind = natural.dtype.kind
        if natural.dtype == target:
            return self._check_ndim(natural, name)
        if kind == "O":           # Python ints beyond 64 bits, Fractions, Decimals, ...
            if not all(isinstance(v, numbers.Number) for v in natural.flat):
                raise TypeError(f"input {name!r} expects numbers of dtype {self.dtype}, got {_short(value)}")
            arr = _exact_object(natural, target)
        elif kind not in "biufc":
            raise TypeError(f"input {name!r} expects numbers of dtype {self.dtype}, got {_short(value)}")
        else:
            arr = _exact(natural, target)
        if arr is None and allow_downcast:
            try:
                with np.errstate(all="ignore"):
                    arr = np.asarray(value, dtype=target)          # numpy's conversion
            except (ValueError, TypeError, OverflowError) as exc:
                raise TypeError(f"input {name!r} of dtype {self.dtype} cannot hold {_short(value)}, even "
                                f"with allow_input_downcast: {exc}") from None
        if arr is None:
            raise TypeError(
                f"input {name!r} of dtype {self.dtype} cannot hold {_short(value)} exactly"
                f"{_would_be(natural, target)}; pass a numpy array of dtype {self.dtype}, or allow the "
                f"conversion with function(..., allow_input_downcast=True) or In(variable, allow_downcast=True)")
        return self._check_ndim(arr, name)

    def _check_ndim(self, arr: np.ndarray, name: str) -> np.ndarray:
        if arr.ndim != len(self.broadcastable):
            raise TypeError(
                f"input {name!r} expects a {len(self.broadcastable)}-d array of type {self}, "
                f"got {arr.ndim}-d with shape {arr.shape}")
        self.check_broadcast(arr.shape, name)
        if not arr.flags.aligned:
            arr = np.ascontiguousarray(arr)       # generated code assumes aligned elements
        return arr


    def check_broadcast(self, shape: tuple, name: str) -> None:
        """TypeError unless every broadcastable dimension has length 1 (as Theano's filter): checked
        for each argument, so a result that reads only an input's shape cannot take a wrong length."""
        for d, bcast in enumerate(self.broadcastable):
            if bcast and shape[d] != 1:
                raise TypeError(
                    f"input {name!r} of type {self} has shape {shape}, but its dimension {d} is broadcastable "
                    f"and must have length 1; declare it non-broadcastable (e.g. T.matrix instead of "
                    f"T.row) or pass an array of length 1 there")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _exact(natural: np.ndarray, target: np.dtype):
    """natural.astype(target) when that keeps every value exactly (a NaN stays a NaN), else None.

    `natural` is numpy's array of a list or Python number (bool, int64, uint64, float64 or
    complex128, or numpy scalars' dtypes); the checks compare exactly, never through a rounding
    common dtype (int64 and float64 compare equal at 2**53 + 1 and 2**53)."""
    nk, tk = natural.dtype.kind, target.kind
    with np.errstate(all="ignore"):
        if nk == "c" and tk != "c":
            if np.any(natural.imag != 0):
                return None
            natural, nk = natural.real, "f"
        if nk == "b":
            return natural.astype(target)
        if tk == "b":
            return natural.astype(target) if np.all((natural == 0) | (natural == 1)) else None
        converted = natural.astype(target)
        if tk in "iu":
            info = np.iinfo(target)
            if natural.size == 0:
                return converted
            if nk == "f":        # integral and inside [min, max + 1): the bounds are powers of two
                ok = np.all((natural >= float(info.min)) & (natural < float(info.max + 1))
                            & (np.trunc(natural) == natural))
            else:
                ok = int(natural.min()) >= info.min and int(natural.max()) <= info.max
            return converted if ok else None
        real = converted.real if tk == "c" and nk != "c" else converted
        if nk in "fc":           # a float/complex of this precision or less widens back exactly
            back = real.astype(natural.dtype)
            ok = np.all((back == natural) | (np.isnan(back) & np.isnan(natural)))
            return converted if ok else None
        info = np.iinfo(natural.dtype)     # integers to floats: finite, in range, and back exactly
        if natural.size == 0:
            return converted
        inside = np.all(np.isfinite(real) & (real >= float(info.min)) & (real < float(info.max + 1)))
        return converted if inside and np.array_equal(real.astype(natural.dtype), natural) else None


def _exact_object(natural: np.ndarray, target: np.dtype):
    """_exact for an object array of Python numbers (ints beyond 64 bits...): compared by Python."""
    try:
        with np.errstate(all="ignore"):
            converted = natural.astype(target)
    except (ValueError, TypeError, OverflowError):
        return None
    for a, b in zip(natural.flat, converted.astype(object).flat):
        if not (a == b or (a != a and b != b)):
            return None
    return converted


def _would_be(natural: np.ndarray, target: np.dtype) -> str:
    """' (it would become ...)': what a plain conversion gives, when numpy computes one."""
    if natural.dtype.kind == "c" and target.kind != "c":
        if np.any(natural.imag != 0):
            return " (it has a nonzero imaginary part)"
        natural = natural.real
    try:
        with np.errstate(all="ignore"):
            shown = natural.astype(target)
    except (ValueError, TypeError, OverflowError):
        return ""
    return f" (it would become {_short(shown.tolist())})"
