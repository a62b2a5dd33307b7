"""Calling a compiled module: numpy arrays in, C arguments packed, fresh output arrays out."""

from __future__ import annotations

import numpy as np

from .codegen.lower import ShapeError


def _shape_function(sources):
    """A function from the argument arrays to one output's shape (loop dim d from sources[d])."""
    # built from integers only: one attribute lookup per dimension, no loop at call time
    parts = [f"v[{s[0]}].shape[{s[1]}]" if s is not None else "1" for s in sources]
    return eval(f"lambda v: ({', '.join(parts)}{',' if len(parts) == 1 else ''})")  # noqa: S307


class CRunner:
    """Runs a C entry point: one call computes every output (and every update)."""

    def __init__(self, plan, ffi, fn, lib, errors):
        self.fn = fn
        self.lib = lib            # keeps the shared library loaded while this runner lives
        self.from_buffer = ffi.from_buffer
        self.cast = ffi.cast
        self.constants = list(plan.constants)
        self.args = plan.args
        self.errors = [e if isinstance(e, ShapeError) else ShapeError(e[0], e[1], tuple(e[2]) if e[2] else None, e[3])
                       for e in errors]
        sources = {}
        for kernel in plan.kernels:
            for out_index, _ in kernel.stores:
                sources[out_index] = kernel.sources
        self.outputs = [(np.dtype(plan.args[i].dtype), _shape_function(sources[i])) for i in plan.output_args]

    def __call__(self, values: list) -> list:
        full = values + self.constants if self.constants else values
        outs = [np.empty(shape(full), dtype) for dtype, shape in self.outputs]
        from_buffer = self.from_buffer
        cargs = []
        append = cargs.append
        for a in full:
            try:
                append(from_buffer(a))
            except (ValueError, TypeError, BufferError):      # not C-contiguous: pass its address
                append(self.cast("void *", a.ctypes.data))
            cargs += a.shape
            cargs += a.strides
        for o in outs:
            append(from_buffer(o))
            cargs += o.shape
        rc = self.fn(*cargs)
        if rc:
            raise ValueError(self.describe(rc, full))
        return outs

    def describe(self, code: int, full: list) -> str:
        return shape_error_message(self.errors[code - 1], self.args, [a.shape for a in full])


def shape_error_message(err: ShapeError, args, shapes) -> str:
    arg, shape = args[err.arg], shapes[err.arg]
    fix = ("A dimension stretches only where its type is broadcastable: declare length-1 dimensions "
           "with T.row / T.col / T.tensor(dtype, shape=(1, None)), add one with x.dimshuffle('x', 0), "
           "or give shared(..., broadcastable=(True, False)).")
    if err.source is None:
        return (f"{arg.label} has shape {shape}, but its type {_pattern(arg)} is broadcastable in "
                f"dimension {err.dim}, which must then have length 1.")
    src, src_shape = args[err.source[0]], shapes[err.source[0]]
    return (f"shape mismatch: {arg.label} has shape {shape} and {src.label} has shape {src_shape}; "
            f"dimension {err.dim} of {arg.label} (length {shape[err.dim]}) must equal dimension "
            f"{err.source[1]} of {src.label} (length {src_shape[err.source[1]]}). {fix}")


def _pattern(arg) -> str:
    return "(" + ", ".join("1" if b else "?" for b in arg.broadcastable) + (",)" if len(arg.broadcastable) == 1 else ")")
