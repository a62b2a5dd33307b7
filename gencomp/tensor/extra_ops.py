"""Theano's theano.tensor.extra_ops and a few helpers of theano.tensor (roll, tile, diag, trace), built
from the ops gencomp has (slices, concatenation, integer indexing), so their gradients come with them."""

from __future__ import annotations

import numpy as np

from .shape import cumsum  # noqa: F401  (extra_ops.cumsum)
from .variable import as_tensor_variable


def _m():
    from . import math
    return math


def _axis(axis, ndim: int) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def _take(x, axis: int, index):
    """x[..., index, ...] with `index` (a slice) in dimension `axis`."""
    return x[(slice(None),) * axis + (index,)]


def diff(x, n=1, axis=-1):
    """numpy.diff: the n-th difference along `axis`."""
    x = as_tensor_variable(x)
    axis = _axis(axis, x.ndim)
    for _ in range(int(n)):
        x = _take(x, axis, slice(1, None)) - _take(x, axis, slice(None, -1))
    return x


def roll(x, shift, axis=None):
    """numpy.roll: elements shifted by `shift` (a Python or symbolic integer) along `axis`
    (None: the flattened tensor, reshaped back)."""
    x = as_tensor_variable(x)
    if axis is None:
        return roll(x.flatten(), shift, 0).reshape(x.shape, ndim=x.ndim) if x.ndim != 1 else roll(x, shift, 0)
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    cut = n - as_tensor_variable(shift) % n          # numpy's modulo: a negative shift rolls the other way
    return _m().concatenate([_take(x, axis, slice(cut, None)), _take(x, axis, slice(None, cut))], axis=axis)


def repeat(x, repeats, axis=None):
    """numpy.repeat with a Python int `repeats`: each element `repeats` times along `axis` (None: of
    the flattened tensor)."""
    x = as_tensor_variable(x)
    if not isinstance(repeats, (int, np.integer)) or repeats < 0:
        raise TypeError(f"repeat: repeats must be a non-negative Python int, got {repeats!r}")
    if axis is None:
        x, axis = x.flatten(), 0
    axis = _axis(axis, x.ndim)
    stacked = _m().stack([x] * int(repeats), axis=axis + 1) if repeats else None
    if stacked is None:
        return _take(x, axis, slice(0, 0))
    shape = [x.shape[d] * repeats if d == axis else x.shape[d] for d in range(x.ndim)]
    return stacked.reshape(_m().stack(shape) if x.ndim > 1 else shape, ndim=x.ndim)


def tile(x, reps):
    """numpy.tile with a tuple of Python ints `reps` (at most x.ndim of them, as Theano)."""
    x = as_tensor_variable(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if not all(isinstance(r, (int, np.integer)) and r >= 1 for r in reps) or len(reps) > x.ndim:
        raise ValueError(f"tile: reps must be at most {x.ndim} positive Python ints, got {reps!r}")
    reps = (1,) * (x.ndim - len(reps)) + reps
    for axis, r in enumerate(reps):
        if r > 1:
            x = _m().concatenate([x] * r, axis=axis)
    return x


def to_one_hot(y, nb_class, dtype=None):
    """Theano's extra_ops.to_one_hot: row i has a 1 in column y[i] (dtype: config.floatX by default)."""
    from ..config import config
    y = as_tensor_variable(y)
    hot = _m().eq(y.dimshuffle(0, "x"), _m().arange(nb_class).dimshuffle("x", 0))
    return _m().cast(hot, dtype or config.floatX)


def diag(v, k=0):
    """numpy.diag for k=0: a vector's diagonal matrix, or a matrix's diagonal."""
    v = as_tensor_variable(v)
    if k != 0:
        raise NotImplementedError("diag: only the main diagonal (k=0)")
    if v.ndim == 1:
        return _m().eye(v.shape[0], dtype=v.dtype) * v.dimshuffle("x", 0)
    if v.ndim == 2:
        n = _m().minimum(v.shape[0], v.shape[1])
        i = _m().arange(n)
        return v[i, i]
    raise ValueError(f"diag takes a vector or a matrix, got a {v.ndim}-d tensor")


def trace(x):
    """The sum of a matrix's diagonal."""
    return diag(x).sum()
