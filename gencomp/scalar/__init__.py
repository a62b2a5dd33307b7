"""gencomp.scalar: the dtype helpers of Theano's theano.scalar that ported programs call (upcast)."""

from __future__ import annotations

import numpy as np

discrete_dtypes = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
continuous_dtypes = ("float32", "float64", "complex64", "complex128")
float_dtypes = ("float32", "float64")
complex_dtypes = ("complex64", "complex128")
all_dtypes = discrete_dtypes + continuous_dtypes


def upcast(dtype, *dtypes) -> str:
    """The dtype numpy gives when combining values of these dtypes (theano.scalar.upcast).

    Types, not values, decide (numpy 2's rule, which DESIGN.md adopts): upcast('int32', 'float32')
    is 'float64', upcast('int8', 'uint8') 'int16'. 'floatX' stands for config.floatX.
    """
    from ..config import config

    names = [config.floatX if d == "floatX" else d for d in (dtype, *dtypes)]
    return np.result_type(*[np.dtype(d) for d in names]).name


__all__ = ["upcast", "discrete_dtypes", "continuous_dtypes", "float_dtypes", "complex_dtypes", "all_dtypes"]
