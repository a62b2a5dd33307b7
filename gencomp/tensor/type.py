"""TensorType: a dtype plus a broadcastable pattern, and the conversion of call arguments to it."""

from __future__ import annotations

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
        shape = ", ".join("1" if b else "?" for b in self.broadcastable)
        if self.ndim == 1:
            shape += ","
        return f"TensorType({self.dtype}, shape=({shape}))"

    def signature(self) -> str:
        return self.dtype + "[" + "".join("1" if b else "?" for b in self.broadcastable) + "]"

    def filter(self, value, name: str, allow_downcast: bool = False) -> np.ndarray:
        """`value` as an ndarray of this type's dtype and ndim, or TypeError saying what was wrong."""
        if type(value) is np.ndarray:
            arr = value
        elif isinstance(value, (np.ndarray, np.generic)):
            arr = np.asarray(value)
        else:
            return self._filter_python(value, name, allow_downcast)
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

    def _filter_python(self, value, name, allow_downcast):
        try:
            natural = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"input {name!r}: cannot convert {value!r} to an array ({exc})") from None
        if natural.dtype.kind not in "biufc":
            raise TypeError(f"input {name!r} expects numbers of dtype {self.dtype}, got {value!r}")
        if natural.dtype == self.numpy_dtype:
            return self._check_ndim(natural, name)
        if not allow_downcast and not self._fits(natural):
            raise TypeError(
                f"input {name!r} of dtype {self.dtype} cannot hold {_short(value)} exactly; "
                f"pass a numpy array of dtype {self.dtype}, or allow_input_downcast=True to function()")
        with np.errstate(all="ignore"):
            arr = natural.astype(self.numpy_dtype)
        return self._check_ndim(arr, name)

    def _fits(self, natural: np.ndarray) -> bool:
        """Python numbers fit when no value changes kind or range (floats may round, as in Theano)."""
        if np.can_cast(natural.dtype, self.numpy_dtype, "safe"):
            return True
        target = self.numpy_dtype
        with np.errstate(all="ignore"):
            converted = natural.astype(target)
        if target.kind == "f" and natural.dtype.kind in "biuf":
            return bool(np.all(np.isfinite(converted) | ~np.isfinite(natural)))
        if target.kind == "c":
            return True
        if natural.dtype.kind == "c":
            return False
        return bool(np.all(converted == natural))

    def _check_ndim(self, arr: np.ndarray, name: str) -> np.ndarray:
        if arr.ndim != len(self.broadcastable):
            raise TypeError(
                f"input {name!r} expects a {len(self.broadcastable)}-d array of type {self}, "
                f"got {arr.ndim}-d with shape {arr.shape}")
        if not arr.flags.aligned:
            arr = np.ascontiguousarray(arr)       # generated code assumes aligned elements
        return arr


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
