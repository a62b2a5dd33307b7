"""Calling a compiled module: run a Plan's steps on numpy arrays (C kernels through cffi, host ops in numpy)."""

from __future__ import annotations

import numpy as np

from .codegen.lower import HostStep, ShapeError
from .tensor.blas import Gemm, check_accumulator


def _shape_function(sources):
    """A function from the call's arrays to a result shape (dim d of array sources[d][0], or 1)."""
    # built from integers only: one attribute lookup per dimension, no loop at call time
    parts = [f"v[{s[0]}].shape[{s[1]}]" if s is not None else "1" for s in sources]
    return eval(f"lambda v: ({', '.join(parts)}{',' if len(parts) == 1 else ''})")  # noqa: S307


class _KernelCall:
    """One kernel's arguments (for backends that pack them generically, e.g. CUDA)."""

    def __init__(self, kernel, args):
        self.reads = list(dict.fromkeys(leaf.arg for leaf in kernel.leaves))
        self.strides = {leaf_arg: sorted({l.axes[d] for l in kernel.leaves if l.arg == leaf_arg
                                          for d in range(kernel.ndim) if l.axes[d] is not None})
                        for leaf_arg in self.reads}
        self.writes = [a for a, _ in kernel.stores]
        self.dtypes = [np.dtype(args[a].dtype) for a in self.writes]
        self.shape = _shape_function([kernel.sources[d] for d in kernel.out_dims()])


_POINTER_ERRORS = (ValueError, TypeError, BufferError)


def _kernel_step(kernel, args, fn, env, reusable):
    """A Python function running one C kernel on `vals`, the arrays of the call.

    Its source is written here from integers only and compiled once: each call then does just
    the work of this kernel (one pointer per array, its lengths and strides, one C call).
    """
    reads = list(dict.fromkeys(leaf.arg for leaf in kernel.leaves))
    lines, cargs = ["def step(vals):"], []
    for i in reads:
        mapped = sorted({leaf.axes[d] for leaf in kernel.leaves if leaf.arg == i
                         for d in range(kernel.ndim) if leaf.axes[d] is not None})
        lines += [f"    a{i} = vals[{i}]",
                  f"    try:\n        p{i} = from_buffer(a{i})",
                  f"    except POINTER_ERRORS:      # not C-contiguous: pass its address\n"
                  f"        p{i} = cast('void *', a{i}.ctypes.data)"]
        cargs += [f"p{i}"] + ([f"*a{i}.shape"] if len(args[i].broadcastable) else [])
        cargs += [f"a{i}.strides[{k}]" for k in mapped]
    dims = [kernel.sources[d] for d in kernel.out_dims()]
    shape = [f"vals[{s[0]}].shape[{s[1]}]" if s is not None else "1" for s in dims]
    lines.append(f"    shape = ({', '.join(shape)}{',' if len(shape) == 1 else ''})")
    if kernel.reduce is None and shape:
        cargs.append("*shape")            # elementwise kernels take the loop lengths
    for j, (i, _) in enumerate(kernel.stores):
        env[f"dtype{i}"] = np.dtype(args[i].dtype)
        if i in kernel.inplace:        # the buffer of an input read for the last time, when it fits
            src = kernel.inplace[i]
            lines += [f"    o{i} = vals[{src}]",
                      f"    if o{i}.shape != shape or not o{i}.flags.c_contiguous or not o{i}.flags.writeable:",
                      f"        o{i} = empty(shape, dtype{i})"]
        elif i in reusable:
            lines += [f"    o{i} = buffers.get({i})",
                      f"    if o{i} is None or o{i}.shape != shape:",
                      f"        o{i} = buffers[{i}] = empty(shape, dtype{i})"]
        else:
            lines.append(f"    o{i} = empty(shape, dtype{i})")
        lines.append(f"    vals[{i}] = o{i}")
        cargs.append(f"from_buffer(o{i})")
    lines += [f"    rc = fn({', '.join(cargs)})", "    if rc:", "        raise error(rc, vals)"]
    namespace = dict(env, fn=fn)
    exec(compile("\n".join(lines), f"<gencomp step {kernel.name}>", "exec"), namespace)  # noqa: S102
    return namespace["step"]


def _host_step(step):
    """A Python function running a host step (an op's numpy implementation) on `vals`."""
    node, inputs, outputs = step.node, step.inputs, step.outputs
    perform = node.op.perform

    def run(vals):
        for index, result in zip(outputs, perform(node, [vals[i] for i in inputs])):
            vals[index] = result

    return run


def _gemm_step(step, args, env, reusable):
    """A Python function running a Gemm host step as one BLAS call (numpy's perform without CBLAS)."""
    from .cblas import gemm_for

    node = step.node
    (out_i,) = step.outputs
    dtype = np.dtype(args[out_i].dtype)
    blas = gemm_for(dtype.name)
    if blas is None:
        return _host_step(step)
    c_i, a_i, b_i = step.inputs
    alpha, beta, buffers, inplace = node.op.alpha, node.op.beta, env["buffers"], out_i in step.inplace

    def run(vals):
        c, a, b = vals[c_i], vals[a_i], vals[b_i]
        shape = (a.shape[0], b.shape[1])
        if a.shape[1] != b.shape[0] or c.shape != shape:
            if a.shape[1] != b.shape[0]:
                node.op.perform(node, [c, a, b])        # raises, naming the shapes
            check_accumulator(node, c.shape, shape)
        if inplace and c.shape == shape and c.flags.c_contiguous and c.flags.writeable:
            out = c                       # the shared variable's old value, which nothing reads later
        else:
            out = buffers.get(out_i) if out_i in reusable else None
            if out is None or out.shape != shape:
                out = np.empty(shape, dtype)
                if out_i in reusable:
                    buffers[out_i] = out
            np.copyto(out, c)
        blas(out, alpha, a, b, beta)
        vals[out_i] = out

    return run


class CRunner:
    """Runs a Plan: each call allocates the results, fills temporaries and outputs step by step."""

    def __init__(self, plan, ffi, lib, errors, kernel_names, borrowed=()):
        self.lib = lib                # keeps the shared library loaded while this runner lives
        self.from_buffer, self.cast = ffi.from_buffer, ffi.cast
        self.args = plan.args
        const_args = [i for i, a in enumerate(plan.args) if a.role == "const"]
        n_inputs = sum(1 for a in plan.args if a.role == "input")
        self.rest = [None] * (len(plan.args) - n_inputs)     # values of the args after the inputs
        for index, value in zip(const_args, plan.constants):
            self.rest[index - n_inputs] = value
        self.errors = [e if isinstance(e, ShapeError) else ShapeError(e[0], e[1], tuple(e[2]) if e[2] else None, e[3])
                       for e in errors]
        self.output_args = plan.output_args
        # temporaries (and outputs the caller borrows) keep their buffer from call to call
        reusable = {i for i, a in enumerate(plan.args) if a.role == "temp"}
        reusable |= {plan.output_args[j] for j in borrowed}
        env = dict(from_buffer=ffi.from_buffer, cast=ffi.cast, empty=np.empty, buffers={},
                   error=self.error, POINTER_ERRORS=_POINTER_ERRORS)
        self.steps = [(_gemm_step(s, plan.args, env, reusable) if isinstance(s.node.op, Gemm) else _host_step(s))
                      if isinstance(s, HostStep) else
                      _kernel_step(s, plan.args, getattr(lib, s.name), env, reusable) for s in plan.steps]

    def __call__(self, values: list) -> list:
        vals = values + self.rest
        for step in self.steps:
            step(vals)
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
