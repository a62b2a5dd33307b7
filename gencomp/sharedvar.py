"""Shared variables: tensors whose value lives between calls and that updates can change."""

from __future__ import annotations

import copy
import itertools
import threading

import numpy as np

from . import dtypes
from .tensor.type import TensorType
from .tensor.variable import TensorVariable

_ORDER = itertools.count()       # the order in which calls take the locks of several variables


class SharedVariable(TensorVariable):
    """A variable with a value; functions read it implicitly and `updates` may replace it."""

    def __init__(self, type, value, name=None):
        super().__init__(type, None, None, name)
        self._value = value
        # Threads: a call of a function that updates this variable holds `_lock` from reading the
        # value to storing the new one (functions take the locks of several variables in `_order`,
        # so they never deadlock); `_version` is odd while such a call may write the value in
        # place, and has moved on after it, so that a call that only reads can tell it raced one
        # (see Function.__call__). get_value / set_value take the lock too.
        self._lock, self._order, self._version = threading.RLock(), next(_ORDER), 0

    def get_value(self, borrow=False, return_internal_type=False):
        """The value as a numpy array (`borrow=True`: possibly the stored array itself, which an
        update may later overwrite in place). A value living on the GPU is copied back.

        `return_internal_type=True` (Theano's): the value as gencomp stores it, a numpy array or a
        GPU array, with `borrow=True` the stored object itself (always, as Theano guarantees),
        else a copy of it."""
        value = self._value
        if borrow and (return_internal_type or type(value) is np.ndarray):
            return value
        if return_internal_type and type(value) is not np.ndarray:
            with self._lock:
                return type(value).from_host(value.get())
        with self._lock:                            # not while an update writes it in place
            value = self._value
            if type(value) is not np.ndarray:       # a runtime_cuda.DeviceArray
                return value.get()
            return value.copy()

    def set_value(self, value, borrow=False):
        """Replace the value; one that lives on the GPU stays there (the new value is copied in)."""
        with self._lock:                            # not in the middle of an update's call
            current = self._value
            if type(current) is np.ndarray or current is None:
                self._value = self._convert(value, borrow)
            elif type(value) is type(current) and value.dtype == current.dtype and value.shape == current.shape:
                self._value = value                 # already a device array of the right type
            else:
                self._value = type(current).from_host(self._convert(value, borrow))

    def host_value(self) -> np.ndarray:
        """The value for code running on the host: the array itself, or a copy of a GPU value."""
        value = self._value
        return value if type(value) is np.ndarray else value.get()

    def _convert(self, value, borrow):
        arr = np.asarray(value)
        if arr.dtype != self.type.numpy_dtype:
            if not np.can_cast(arr.dtype, self.type.numpy_dtype, "same_kind") and arr.dtype.kind != "b":
                raise TypeError(f"shared variable {self.name or ''!r} has dtype {self.dtype}; "
                                f"cannot store a value of dtype {arr.dtype}")
            arr = arr.astype(self.type.numpy_dtype)
        elif not borrow or arr is not value:
            arr = arr.copy()
        if arr.ndim != self.ndim:
            raise TypeError(f"shared variable {self.name or ''!r} is {self.ndim}-d; got a value of shape {arr.shape}")
        for d, b in enumerate(self.broadcastable):
            if b and arr.shape[d] != 1:
                raise ValueError(f"shared variable {self.name or ''!r} is broadcastable in dim {d} "
                                 f"and needs length 1 there; got shape {arr.shape}")
        if not arr.flags.aligned:
            arr = np.ascontiguousarray(arr)
        return arr

    def clone(self):
        return self       # the value container is the identity of a shared variable

    def __reduce__(self):
        return _rebuild_shared, (self.type, self.host_value(), self.name)

    def __repr__(self):
        return self.name if self.name is not None else f"<shared {self.type}>"


def _rebuild_shared(type, value, name):
    return SharedVariable(type, value, name)


def shared(value, name=None, borrow=False, broadcastable=None, strict=False, allow_downcast=None):
    """A SharedVariable holding `value` (python scalars become 0-d arrays: int64, float64...); a
    scipy.sparse matrix gives a sparse shared variable, a numpy RandomState a random state one."""
    if type(value).__module__.startswith("scipy.sparse"):
        from .sparse import shared as sparse_shared
        return sparse_shared(value, name=name, borrow=borrow)
    if isinstance(value, np.random.RandomState):
        from .tensor.shared_randomstreams import RandomStateSharedVariable
        return RandomStateSharedVariable(value if borrow else copy.deepcopy(value), name=name)
    arr = np.array(value, copy=not borrow) if not isinstance(value, np.ndarray) or not borrow else value
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"shared() needs numeric data, got {value!r}")
    dtype = dtypes.canonical(arr.dtype)
    if broadcastable is None:
        broadcastable = (False,) * arr.ndim
    if len(broadcastable) != arr.ndim:
        raise TypeError(f"broadcastable={broadcastable} has {len(broadcastable)} entries for a {arr.ndim}-d value")
    var = SharedVariable(TensorType(dtype, broadcastable), None, name)
    var._value = var._convert(arr, borrow=True)
    return var
