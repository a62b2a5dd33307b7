"""The dtype table: numpy name, Theano prefix letter, C type and kind of every supported dtype."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str          # numpy name, also TensorVariable.dtype
    letter: str        # Theano constructor prefix ('' when Theano had none)
    ctype: str         # C spelling
    kind: str          # 'b' bool, 'i' signed, 'u' unsigned, 'f' float, 'c' complex


#                name          letter  C type
DTYPES = {d.name: d for d in (
    DType("bool",       "",  "bool",            "b"),
    DType("int8",       "b", "int8_t",          "i"),
    DType("int16",      "w", "int16_t",         "i"),
    DType("int32",      "i", "int32_t",         "i"),
    DType("int64",      "l", "int64_t",         "i"),
    DType("uint8",      "",  "uint8_t",         "u"),
    DType("uint16",     "",  "uint16_t",        "u"),
    DType("uint32",     "",  "uint32_t",        "u"),
    DType("uint64",     "",  "uint64_t",        "u"),
    DType("float32",    "f", "float",           "f"),
    DType("float64",    "d", "double",          "f"),
    DType("complex64",  "c", "float _Complex",  "c"),
    DType("complex128", "z", "double _Complex", "c"),
)}

BY_LETTER = {d.letter: d.name for d in DTYPES.values() if d.letter}


def canonical(dtype) -> str:
    """The supported numpy name of `dtype` (a str, numpy dtype or python type); TypeError otherwise."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    if dtype == "floatX":
        raise TypeError("dtype 'floatX' must be resolved through gencomp.config.floatX")
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}") from None
    if name == "float16":
        raise TypeError("float16 is not supported by gencomp; use float32")
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {name!r}; expected one of {', '.join(DTYPES)}")
    return name


def ctype(dtype: str) -> str:
    return DTYPES[dtype].ctype


def kind(dtype: str) -> str:
    return DTYPES[dtype].kind


def is_float(dtype: str) -> bool:
    return DTYPES[dtype].kind == "f"


def is_complex(dtype: str) -> bool:
    return DTYPES[dtype].kind == "c"


def is_integer(dtype: str) -> bool:
    return DTYPES[dtype].kind in "iu"
