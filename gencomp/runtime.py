"""Calling a compiled module: run a Plan's steps on numpy arrays (C kernels through cffi, host ops in numpy)."""

from __future__ import annotations

import numpy as np

from .codegen.lower import HostStep, ShapeError


def _shape_function(sources):
    """A function from the call's arrays to a result shape (dim d of array sources[d][0], or 1)."""
    # built from integers only: one attribute lookup per dimension, no loop at call time
    parts = [f"v[{s[0]}].shape[{s[1]}]" if s is not None else "1" for s in sources]
    return eval(f"lambda v: ({', '.join(parts)}{',' if len(parts) == 1 else ''})")  # noqa: S307


class _KernelCall:
    """One C kernel: which arrays it reads (data, shape, strides) and which it writes."""

    def __init__(self, kernel, args, fn):
        self.fn = fn
        self.reads = list(dict.fromkeys(leaf.arg for leaf in kernel.leaves))
        self.strides = {leaf_arg: sorted({l.axes[d] for l in kernel.leaves if l.arg == leaf_arg
                                          for d in range(kernel.ndim) if l.axes[d] is not None})
                        for leaf_arg in self.reads}
        self.writes = [a for a, _ in kernel.stores]
        self.dtypes = [np.dtype(args[a].dtype) for a in self.writes]
        sources = [kernel.sources[d] for d in kernel.out_dims()]
        if kernel.reduce is not None:
            self.shape = _shape_function(sources)
            self.loop_dims = None
        else:
            self.shape = _shape_function(sources)
            self.loop_dims = kernel.ndim
        # elementwise kernels take the loop lengths after the inputs; reductions read them from leaves
        self.pass_shape = kernel.reduce is None


class CRunner:
    """Runs a Plan: each call allocates the results, fills temporaries and outputs step by step."""

    def __init__(self, plan, ffi, lib, errors, kernel_names, borrowed=()):
        self.lib = lib                # keeps the shared library loaded while this runner lives
        self.from_buffer, self.cast = ffi.from_buffer, ffi.cast
        self.args = plan.args
        const_args = [i for i, a in enumerate(plan.args) if a.role == "const"]
        self.n_inputs = sum(1 for a in plan.args if a.role == "input")
        self.rest = [None] * (len(plan.args) - self.n_inputs)     # values of args after the inputs
        for index, value in zip(const_args, plan.constants):
            self.rest[index - self.n_inputs] = value
        self.errors = [e if isinstance(e, ShapeError) else ShapeError(e[0], e[1], tuple(e[2]) if e[2] else None, e[3])
                       for e in errors]
        self.output_args = plan.output_args
        functions = dict(zip(kernel_names, (getattr(lib, n) for n in kernel_names)))
        self.steps = [s if isinstance(s, HostStep) else _KernelCall(s, plan.args, functions[s.name])
                      for s in plan.steps]
        # temporaries (and outputs the caller borrows) keep their buffer from call to call
        reusable = {i for i, a in enumerate(plan.args) if a.role == "temp"}
        reusable |= {plan.output_args[j] for j in borrowed}
        self.buffers = {}
        for step in self.steps:
            if type(step) is not HostStep:
                step.reuse = [index in reusable for index in step.writes]

    def _pointer(self, a):
        try:
            return self.from_buffer(a)
        except (ValueError, TypeError, BufferError):        # not C-contiguous: pass its address
            return self.cast("void *", a.ctypes.data)

    def __call__(self, values: list) -> list:
        vals = values + self.rest
        for step in self.steps:
            if type(step) is HostStep:
                results = step.node.op.perform(step.node, [vals[i] for i in step.inputs])
                for index, result in zip(step.outputs, results):
                    vals[index] = result
                continue
            shape = step.shape(vals)
            cargs = []
            for index in step.reads:
                a = vals[index]
                cargs.append(self._pointer(a))
                cargs += a.shape
                strides = a.strides
                cargs += [strides[k] for k in step.strides[index]]
            if step.pass_shape:
                cargs += shape
            for index, dtype, reuse in zip(step.writes, step.dtypes, step.reuse):
                out = self.buffers.get(index) if reuse else None
                if out is None or out.shape != shape:
                    out = np.empty(shape, dtype)
                    if reuse:
                        self.buffers[index] = out
                vals[index] = out
                cargs.append(self.from_buffer(out))
            rc = step.fn(*cargs)
            if rc:
                raise self.error(rc, vals)
        return [vals[i] for i in self.output_args]

    def error(self, code: int, vals: list) -> Exception:
        if code < 0:
            return MemoryError("out of memory in a gencomp kernel")
        err = self.errors[code - 1]
        if err.dim == -2:
            return ValueError("Integers to negative integer powers are not allowed.")
        if err.dim < 0:
            return ValueError(f"zero-size array to a reduction with no identity ({self.args[err.arg].label})")
        return ValueError(shape_error_message(err, self.args, [getattr(v, "shape", None) for v in vals]))


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
