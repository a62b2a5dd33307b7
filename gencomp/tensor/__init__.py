"""gencomp.tensor (import as T): tensor types, constructors and the functions that build graphs."""

from __future__ import annotations

from .. import dtypes as _dtypes
from ..config import config as _config
from . import math as _math
from .elemwise import DimShuffle, Elemwise
from .math import *  # noqa: F401,F403  (the elementwise table as functions)
from .math import (abs_, argmax, argmin, cast, clip, dimshuffle, max, mean, min, prod,  # noqa: F401,A004
                   relu, std, sum, switch, transpose, var, where)
from .nnet import log_softmax, softmax  # noqa: F401
from .type import TensorType
from .variable import TensorConstant, TensorVariable, as_tensor_variable, constant

# name -> broadcastable pattern of the plain constructors
_PATTERNS = {
    "scalar": (), "vector": (False,), "row": (True, False), "col": (False, True),
    "matrix": (False, False), "tensor3": (False,) * 3, "tensor4": (False,) * 4,
    "tensor5": (False,) * 5,
}


def _constructor(kind: str, fixed_dtype: str | None):
    pattern = _PATTERNS[kind]

    def make(name=None, dtype=None, shape=None):
        if fixed_dtype is not None and dtype is not None and _dtypes.canonical(dtype) != fixed_dtype:
            raise TypeError(f"{make.__name__} makes {fixed_dtype} variables; got dtype={dtype!r}")
        dtype = fixed_dtype or dtype or _config.floatX
        if shape is not None:
            if len(shape) != len(pattern):
                raise TypeError(f"{make.__name__}: shape {shape} has {len(shape)} entries, expected {len(pattern)}")
            return TensorType(dtype, shape=shape)(name)
        return TensorType(dtype, pattern)(name)

    make.__name__ = (_dtypes.DTYPES[fixed_dtype].letter if fixed_dtype else "") + kind
    make.__doc__ = f"A symbolic {kind} ({'dtype ' + fixed_dtype if fixed_dtype else 'dtype config.floatX'})."
    return make


def _plural(single):
    def make(*names, dtype=None):
        if len(names) == 1 and isinstance(names[0], int):
            names = (None,) * names[0]
        kwargs = {} if dtype is None else {"dtype": dtype}
        return [single(n, **kwargs) for n in names]

    name = single.__name__
    make.__name__ = name[:-1] + "ces" if name.endswith("matrix") else name + "s"
    make.__doc__ = f"Several {single.__name__} variables, one per name."
    return make


for _kind in _PATTERNS:
    for _dt in (None, *_dtypes.BY_LETTER.values()):
        _single = _constructor(_kind, _dt)
        globals()[_single.__name__] = _single
        _many = _plural(_single)
        globals()[_many.__name__] = _many
del _kind, _dt, _single, _many


def tensor(dtype=None, broadcastable=None, name=None, shape=None):
    """A symbolic tensor: `T.tensor('float32', shape=(None, 1))`, `T.tensor(dtype, broadcastable)`.

    A first argument that is not a dtype name is taken as the name (PyTensor's order).
    """
    if isinstance(dtype, str) and dtype not in _dtypes.DTYPES and dtype != "floatX":
        try:
            _dtypes.canonical(dtype)
        except TypeError:
            dtype, name = None, dtype
    if dtype is None or dtype == "floatX":
        dtype = _config.floatX
    if broadcastable is None and shape is None:
        raise TypeError("tensor() needs broadcastable= or shape= to know its number of dimensions")
    return TensorType(dtype, broadcastable, shape)(name)


from . import nnet, shared_randomstreams  # noqa: E402  (T.nnet.sigmoid, as in Theano)
from .shared_randomstreams import RandomStreams  # noqa: E402,F401
from .subtensor import inc_subtensor, set_subtensor  # noqa: E402,F401


def jacobian(expression, wrt, **kwargs):
    """T.jacobian (see gencomp.gradient.jacobian)."""
    from ..gradient import jacobian as _jacobian

    return _jacobian(expression, wrt, **kwargs)


def hessian(cost, wrt, **kwargs):
    """T.hessian (see gencomp.gradient.hessian)."""
    from ..gradient import hessian as _hessian

    return _hessian(cost, wrt, **kwargs)


def grad(cost, wrt, **kwargs):
    """T.grad: the gradient of a scalar `cost` with respect to `wrt` (see gencomp.gradient.grad)."""
    from ..gradient import grad as _grad

    return _grad(cost, wrt, **kwargs)
