"""Calling a compiled module: its entry points through cffi, one call per C segment, host ops in numpy."""

from __future__ import annotations

import threading

import numpy as np

from .codegen.entry import NodeCheck, plan_entry
from .codegen.lower import ShapeError


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


def _shape_text(dims) -> str:
    parts = [f"vals[{d[1]}].shape[{d[2]}]" if isinstance(d, tuple) else str(d) for d in dims]
    return f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"


def _segment_step(seg, plan, entry, fn, env, borrowed, inplace):
    """A Python function calling one C entry point: the arrays Python holds, the outputs it allocates.

    Its source is written here from integers only and compiled once: each call then does just
    this (one pointer, the lengths and strides per array, one C call).
    """
    lines, cargs = ["def step(vals, frame):"], ["frame[0]"]
    for i in seg.passed:
        lines += [f"    a{i} = vals[{i}]",
                  f"    try:\n        p{i} = from_buffer(a{i})",
                  f"    except POINTER_ERRORS:      # not C-contiguous: pass its address\n"
                  f"        p{i} = cast('void *', a{i}.ctypes.data)"]
        cargs += [f"p{i}"] + ([f"*a{i}.shape", f"*a{i}.strides"] if plan.args[i].broadcastable else [])
    for i in seg.allocated:
        env[f"dtype{i}"] = np.dtype(plan.args[i].dtype)
        lines.append(f"    shape{i} = {_shape_text(entry.shapes[i])}")
        if i in inplace:               # the buffer of an input read for the last time, when it fits
            lines += [f"    o{i} = vals[{inplace[i]}]",
                      f"    if o{i}.shape != shape{i} or not o{i}.flags.c_contiguous or not o{i}.flags.writeable:",
                      f"        o{i} = empty(shape{i}, dtype{i})"]
        elif i in borrowed:            # Out(borrow=True): the frame's buffer, from call to call
            lines += [f"    o{i} = frame[2].get({i})",
                      f"    if o{i} is None or o{i}.shape != shape{i}:",
                      f"        o{i} = frame[2][{i}] = empty(shape{i}, dtype{i})"]
        else:
            lines.append(f"    o{i} = empty(shape{i}, dtype{i})")
        lines.append(f"    vals[{i}] = o{i}")
        cargs.append(f"from_buffer(o{i})")
    lines += [f"    rc = fn({', '.join(cargs)})", "    if rc:", "        raise error(rc, vals, frame)"]
    lines += [f"    vals[{i}] = view(frame, {i}).copy()   # its lengths came from C" for i in seg.copied]
    namespace = dict(env, fn=fn)
    exec(compile("\n".join(lines), f"<gencomp {seg.name}>", "exec"), namespace)  # noqa: S102
    return namespace["step"]


def _host_step(step, wrapped, held, view):
    """A Python function running a host step (an op's numpy implementation) on `vals`; the arrays
    it reads that C computed in buffers of its own are viewed in the frame (an output C wrote into
    an array Python allocated is that array: a view of it would not keep it alive)."""
    node, inputs, outputs = step.node, step.inputs, step.outputs
    perform = node.op.perform
    from_frame = [i for i in dict.fromkeys(inputs) if i in wrapped and i not in held]

    def run(vals, frame):
        for i in from_frame:
            vals[i] = view(frame, i)
        for index, result in zip(outputs, perform(node, [vals[i] for i in inputs])):
            vals[index] = result

    return run


class CRunner:
    """Runs a Plan: its C entry points in order (with host steps between), on a frame of its own."""

    def __init__(self, plan, ffi, lib, errors, segment_names=(), borrowed=()):
        self.lib, self.ffi, self.plan = lib, ffi, plan   # lib keeps the shared library loaded
        self.args = plan.args
        const_args = [i for i, a in enumerate(plan.args) if a.role == "const"]
        n_inputs = sum(1 for a in plan.args if a.role == "input")
        self.rest = [None] * (len(plan.args) - n_inputs)     # values of the args after the inputs
        for index, value in zip(const_args, plan.constants):
            self.rest[index - n_inputs] = value
        self.errors = [_error_entry(e) for e in errors]
        self.output_args = plan.output_args
        self.entry = entry = plan_entry(plan)
        self.held = {i for i, a in enumerate(plan.args) if a.role in ("input", "const")}
        self.held |= {i for kind, seg in entry.order if kind == "segment" for i in seg.allocated}
        self.held |= {o for kind, k in entry.order if kind == "host" for o in plan.steps[k].outputs}
        self.maxnd = entry.maxnd
        self.local = threading.local()     # each thread's idle frame (its temporaries, borrowed outputs)
        borrowed_args = {plan.output_args[j] for j in borrowed}
        inplace = {out: src for step in plan.steps for out, src in step.inplace.items()
                   if plan.args[out].role == "output" and src in self.held}
        env = dict(from_buffer=ffi.from_buffer, cast=ffi.cast, empty=np.empty,
                   error=self.error, view=self.view, POINTER_ERRORS=_POINTER_ERRORS)
        self.steps = [_segment_step(seg, plan, entry, getattr(lib, seg.name), env, borrowed_args, inplace)
                      if kind == "segment" else _host_step(plan.steps[seg], entry.wrapped, self.held, self.view)
                      for kind, seg in entry.order]
        set_blas = getattr(lib, "gc_set_blas", None)
        if set_blas is not None:
            from .cblas import routine_addresses

            found = routine_addresses()
            if found is not None:
                set_blas(*[ffi.cast("void *", address) for address in found[0]], found[1])

    def fast_caller(self, module, n_inputs: int, single: bool, shared=()):
        """The C call path of this plan through `module` (gencomp/compile/fastcall.c), when it is
        one entry point whose outputs' lengths Python can tell from the inputs before the call;
        else None. `n_inputs`: the function's explicit inputs (args 0 ... n_inputs-1), followed by
        the shared variables `shared` it reads (and does not update)."""
        plan, entry = self.plan, self.entry
        if len(entry.order) != 1 or entry.order[0][0] != "segment" or len(plan.args) > 64:
            return None
        seg = entry.order[0][1]
        if seg.copied or sorted(seg.allocated) != sorted(plan.output_args) or \
                sum(a.role == "input" for a in plan.args[n_inputs:]) != len(shared):
            return None                     # lengths C finds, repeated outputs
        inputs = [(k, np.dtype(a.dtype).num, len(a.broadcastable), sum(1 << d for d, b in enumerate(a.broadcastable) if b))
                  for k, a in enumerate(plan.args[:n_inputs])]
        consts = list(zip([k for k, a in enumerate(plan.args) if a.role == "const"], map(np.asarray, plan.constants)))
        outputs = [(k, np.dtype(plan.args[k].dtype).num,
                    [(-1, 0) if d == 1 else (d[1], d[2]) for d in entry.shapes[k]]) for k in plan.output_args]
        address = [int(self.ffi.cast("intptr_t", fn)) for fn in (
            getattr(self.lib, seg.body), self.lib.gc_frame_new,
            self.lib.gc_frame_free, self.lib.gc_frame_table)]
        reads = [(n_inputs + k, np.dtype(plan.args[n_inputs + k].dtype).num,
                  len(plan.args[n_inputs + k].broadcastable), var) for k, var in enumerate(shared)]
        return module.make_caller(address, self.maxnd, inputs, consts, outputs, single, self.lib, reads)

    def _frame(self):
        """(the C frame, its rows as an int64 array [data, lengths, strides], the Out(borrow=True)
        buffers of the calls that use this frame: each thread then gets its own)."""
        ffi, lib = self.ffi, self.lib
        raw = lib.gc_frame_new()
        if raw == ffi.NULL:
            raise MemoryError("out of memory for a gencomp frame")
        rows = max(1, len(self.args))
        table = np.frombuffer(ffi.buffer(lib.gc_frame_table(raw), rows * (1 + 2 * self.maxnd) * 8), np.int64)
        return ffi.gc(raw, lib.gc_frame_free), table.reshape(rows, 1 + 2 * self.maxnd), {}

    def __call__(self, values: list) -> list:
        vals = values + self.rest
        local = self.local
        frame = getattr(local, "frame", None)
        if frame is None:              # this thread's first call, or a call inside its own call
            frame = self._frame()
        local.frame = None
        try:
            for step in self.steps:
                step(vals, frame)
        finally:
            local.frame = frame
        return [vals[i] for i in self.output_args]

    def view(self, frame, i):
        """A numpy view of array `i` of the frame (valid while the call runs)."""
        row, arg, nd = frame[1][i], self.args[i], len(self.args[i].broadcastable)
        dtype = np.dtype(arg.dtype)
        shape = tuple(int(v) for v in row[1:1 + nd])
        strides = tuple(int(v) for v in row[1 + self.maxnd:1 + self.maxnd + nd])
        if 0 in shape:
            return np.empty(shape, dtype)
        low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
        high = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0) + dtype.itemsize
        buffer = self.ffi.buffer(self.ffi.cast("char *", int(row[0]) + low), high - low)
        return np.ndarray(shape, dtype, buffer=buffer, offset=-low, strides=strides)

    def error(self, code: int, vals: list, frame) -> Exception:
        if code == -3:
            return RuntimeError("this gencomp module needs the CBLAS of numpy's BLAS library, which "
                                "gencomp.cblas could not find")
        err = self.errors[code - 1] if code > 0 else None
        if isinstance(err, NodeCheck):         # the op's own message, from its numpy perform
            step = self.plan.steps[err.step]
            arrays = [vals[i] if i in self.held else self.view(frame, i) for i in step.inputs]
            try:
                step.node.op.perform(step.node, arrays)
            except (ValueError, TypeError, IndexError) as exc:
                return exc
            return RuntimeError(f"gencomp: a check of {step.node.op} failed in C, but numpy computes it")
        table = frame[1]
        shapes = [tuple(int(v) for v in table[i, 1:1 + len(a.broadcastable)]) for i, a in enumerate(self.args)]
        return check_error(self.errors, self.args, code, shapes)


def _error_entry(e):
    if isinstance(e, (ShapeError, NodeCheck)):
        return e
    if e[0] == "step":
        return NodeCheck(e[1])
    return ShapeError(e[0], e[1], tuple(e[2]) if e[2] else None, e[3])


def check_error(errors, args, code: int, shapes) -> Exception:
    """The exception of failed check `code` (1-based; negative: out of memory) of a kernel."""
    if code < 0:
        return MemoryError("out of memory in a gencomp kernel")
    err = errors[code - 1]
    if err.dim == -2:
        return ValueError("Integers to negative integer powers are not allowed.")
    if err.dim < 0:
        return ValueError(f"zero-size array to a reduction with no identity ({args[err.arg].label})")
    return ValueError(shape_error_message(err, args, shapes))


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
