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


def _constructor(kind: str):
    """The plain constructor (`T.matrix`): a function, since its dtype is config.floatX when called."""
    pattern = _PATTERNS[kind]

    def make(name=None, dtype=None, shape=None):
        dtype = dtype or _config.floatX
        if shape is not None:
            if len(shape) != len(pattern):
                raise TypeError(f"{kind}: shape {shape} has {len(shape)} entries, expected {len(pattern)}")
            return TensorType(dtype, shape=shape)(name)
        return TensorType(dtype, pattern)(name)

    make.__name__ = make.__qualname__ = kind
    make.__doc__ = f"A symbolic {kind} (dtype config.floatX unless given)."
    return make


def _plural(single, name: str):
    def make(*names, dtype=None):
        if len(names) == 1 and isinstance(names[0], int):
            names = (None,) * names[0]
        kwargs = {} if dtype is None else {"dtype": dtype}
        return [single(n, **kwargs) for n in names]

    make.__name__ = make.__qualname__ = name[:-1] + "ces" if name.endswith("matrix") else name + "s"
    make.__doc__ = f"Several {name} variables, one per name."
    return make


# Theano's dtype-prefixed forms are TensorType instances (`x.type == T.dmatrix`, `T.dmatrix('x')`);
# the plain forms stay functions because their dtype is config.floatX at call time, not import time.
for _kind in _PATTERNS:
    globals()[_kind] = _constructor(_kind)
    _many = _plural(globals()[_kind], _kind)
    globals()[_many.__name__] = _many
    for _letter, _dt in _dtypes.BY_LETTER.items():
        globals()[_letter + _kind] = TensorType(_dt, _PATTERNS[_kind])
        _many = _plural(globals()[_letter + _kind], _letter + _kind)
        globals()[_many.__name__] = _many
del _kind, _dt, _letter, _many


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
from .shared_randomstreams import RandomStreams, permute_row_elements  # noqa: E402,F401
from .subtensor import inc_subtensor, set_subtensor  # noqa: E402,F401
from .shape import get_vector_length, join, specify_shape, split  # noqa: E402,F401
from . import extra_ops  # noqa: E402  (T.extra_ops.to_one_hot, ...)
from .extra_ops import diag, diff, repeat, roll, tile, trace  # noqa: E402,F401
from .extra_ops import (bincount, cumprod, diagonal, fill_diagonal, fill_diagonal_offset,  # noqa: E402,F401
                        flatnonzero, mgrid, nonzero, nonzero_values, ogrid)
from .sort import argsort, sort  # noqa: E402,F401  (theano.tensor.sort)
from . import nlinalg, slinalg  # noqa: E402,F401  (T.nlinalg.det, T.slinalg.solve; T.sort is the function)


def jacobian(expression, wrt, **kwargs):
    """T.jacobian (see gencomp.gradient.jacobian)."""
    from ..gradient import jacobian as _jacobian

    return _jacobian(expression, wrt, **kwargs)


def hessian(cost, wrt, **kwargs):
    """T.hessian (see gencomp.gradient.hessian)."""
    from ..gradient import hessian as _hessian

    return _hessian(cost, wrt, **kwargs)


def Rop(f, wrt, eval_points, **kwargs):
    """T.Rop: the Jacobian-vector product (see gencomp.gradient.Rop)."""
    from ..gradient import Rop as _Rop

    return _Rop(f, wrt, eval_points, **kwargs)


def Lop(f, wrt, eval_points, **kwargs):
    """T.Lop: the vector-Jacobian product (see gencomp.gradient.Lop)."""
    from ..gradient import Lop as _Lop

    return _Lop(f, wrt, eval_points, **kwargs)


def grad(cost, wrt, **kwargs):
    """T.grad: the gradient of a scalar `cost` with respect to `wrt` (see gencomp.gradient.grad)."""
    from ..gradient import grad as _grad

    return _grad(cost, wrt, **kwargs)
from . import basic, sharedvar, var  # noqa: E402,F401  (theano.tensor.basic / .sharedvar / .var import paths)
