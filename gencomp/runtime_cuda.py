"""Calling a CUDA module: run a Plan's steps with PyCUDA (kernels on the GPU, host steps in numpy).

PyCUDA (the optional `cuda` extra) is imported on the first call, not when the function is
built, so a machine without it or without a GPU still renders and compiles (`.source`,
`.source_path`, `.cache_key` work); calling the function there raises CudaUnavailableError.

Each host step of the plan runs as its family says (codegen/cuda.step_family): products, integer
indexing, joins, inc_subtensor, conv2d and pool_2d as the module's kernels; views (dimshuffle, basic indexing,
reshape) of GPU memory; shape reads and shape checks on the host without moving data; a scan as
a host loop calling its step, compiled for the GPU, once per step. Anything else is the op's
numpy `perform` on host copies of its inputs.

Arrays move only when needed: a numpy input is copied to the GPU when a kernel first reads
it, a numpy host step copies its inputs back, and outputs come back as numpy arrays.
Shape checks (the same ShapeError list the C kernels return codes for) run on the host
before each launch. Shared variables move to the GPU at the first call that reads them and
stay there: their updates are left on the device (get_value copies back, set_value copies
in), as are outputs marked Out(on_device=True), which later calls accept as inputs.
"""

from __future__ import annotations

import atexit
import math

import numpy as np

from .codegen.c import _accumulator
from .codegen.cuda import (BLOCK, CONV_GEOMETRY, GEMM, IMAGE_PARAMS, POOL_GEOMETRY, UNROLL, CudaUnsupportedError,
                           copy_name, gemm_name, gpu_image, gpu_inc, gpu_indexing, gpu_join, gpu_product, gpu_scan,
                           image_name, indexing_name, step_family)
from .codegen.lower import HostStep, ShapeError
from .runtime import _KernelCall, _shape_function, check_error
from .tensor.blas import check_accumulator
from .tensor.conv import partial_windows
from .tensor.reduce import Reduce
from .tensor.subtensor import numpy_index


class CudaUnavailableError(RuntimeError):
    """PyCUDA is not installed, or no CUDA device is present: a device='cuda' function cannot run here."""


_STATE: dict = {}          # drv, pool, sm_count, modules: filled by the first successful _init()


def _init() -> dict:
    """The PyCUDA driver with the primary context of device 0 made current (once per process)."""
    if _STATE:
        return _STATE
    where = "The function was generated and compiled with nvcc: its source is at Function.source_path."
    try:
        import pycuda.driver as drv
    except ImportError as exc:
        if "libcuda" in str(exc):           # PyCUDA is there, the NVIDIA driver is not
            raise CudaUnavailableError(f"no CUDA device is present: the NVIDIA driver library cannot be "
                                       f"loaded ({exc}). " + where) from None
        raise CudaUnavailableError("device='cuda' needs PyCUDA to run kernels, and it is not installed "
                                   f"(pip install 'gencomp[cuda]'; {exc}). " + where) from None
    try:
        drv.init()
        if drv.Device.count() == 0:
            raise RuntimeError("the driver reports 0 devices")
        context = drv.Device(0).retain_primary_context()
        context.push()
        from pycuda.tools import DeviceMemoryPool
    except Exception as exc:          # pycuda raises its own error types for a missing driver or device
        first = str(exc).strip().partition("\n")[0]
        raise CudaUnavailableError(f"no CUDA device is present ({type(exc).__name__}: {first}); "
                                   f"device='cuda' functions cannot run on this machine. " + where) from None
    atexit.register(_release, context)
    _STATE.update(drv=drv, pool=DeviceMemoryPool(), modules={},
                  sm_count=drv.Context.get_device().get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT))
    return _STATE


def _release(context) -> None:
    pool = _STATE.pop("pool", None)
    if pool is not None:
        pool.stop_holding()
    try:
        context.pop()
        from pycuda.tools import clear_context_caches

        clear_context_caches()
    except Exception:         # the context may already be gone at interpreter exit
        pass


class DeviceArray:
    """A C-contiguous array in GPU memory; `host` is the numpy array it was copied from, if any.

    What an Out(on_device=True) output is and where a shared variable's value lives after a
    device='cuda' call; `get()` or numpy.asarray() copies it to the host.
    """

    __slots__ = ("shape", "dtype", "strides", "alloc", "ptr", "host")

    def __init__(self, shape, dtype, host=None):
        self.shape, self.dtype, self.host = tuple(shape), np.dtype(dtype), host
        self.strides = _compact_strides(self.shape, self.dtype.itemsize)
        nbytes = math.prod(self.shape) * self.dtype.itemsize
        self.alloc = _allocate(nbytes) if nbytes else None
        self.ptr = int(self.alloc) if nbytes else 0

    def view(self, shape, strides, offset: int = 0) -> "DeviceArray":
        """The same memory seen with another shape and byte strides, from `offset` bytes on: no copy."""
        d = object.__new__(DeviceArray)
        d.shape, d.dtype, d.strides, d.host = tuple(shape), self.dtype, tuple(strides), None
        d.alloc, d.ptr = self.alloc, self.ptr + offset      # keeps the allocation alive
        return d

    @property
    def contiguous(self) -> bool:
        return all(n == 1 or s == c for n, s, c in
                   zip(self.shape, self.strides, _compact_strides(self.shape, self.dtype.itemsize)))

    @classmethod
    def from_host(cls, array) -> "DeviceArray":
        a = array if array.flags.c_contiguous else array.copy(order="C")    # ascontiguousarray makes 0-d 1-d
        d = cls(a.shape, a.dtype, host=array)
        if d.alloc is not None:
            _STATE["drv"].memcpy_htod(d.alloc, a)
        return d

    def get(self) -> np.ndarray:
        """A new numpy array holding the data."""
        out = np.empty(self.shape, self.dtype)
        if out.size == 0:
            return out
        if self.contiguous:
            _STATE["drv"].memcpy_dtoh(out, self.ptr)
            return out
        # a strided view (steps may be negative): copy the bytes it spans, then gather on the host
        low = sum((n - 1) * s for n, s in zip(self.shape, self.strides) if s < 0)
        high = sum((n - 1) * s for n, s in zip(self.shape, self.strides) if s > 0) + self.dtype.itemsize
        raw = np.empty((high - low) // self.dtype.itemsize, self.dtype)
        _STATE["drv"].memcpy_dtoh(raw, self.ptr + low)
        out[...] = np.lib.stride_tricks.as_strided(raw[-low // self.dtype.itemsize:], self.shape, self.strides)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.get()
        return out if dtype is None else out.astype(dtype, copy=False)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return f"<gencomp DeviceArray {self.dtype.name}{list(self.shape)} on the GPU>"


def _compact_strides(shape, itemsize) -> tuple:
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _allocate(nbytes: int):
    drv, pool = _STATE["drv"], _STATE["pool"]
    try:
        return pool.allocate(nbytes)
    except drv.MemoryError:
        pool.free_held()
        try:
            return pool.allocate(nbytes)
        except drv.MemoryError:
            raise MemoryError(f"out of GPU memory allocating {nbytes} bytes for a gencomp function") from None


def _device(value) -> DeviceArray:
    return value if type(value) is DeviceArray else DeviceArray.from_host(value)


def _host(value):
    if type(value) is not DeviceArray:
        return value
    return value.host if value.host is not None else value.get()


def elementwise_grid(n: int, sm_count: int) -> int:
    """Blocks for a grid-stride loop over n elements: enough to cover them once, at most 32 per SM."""
    return max(1, min(-(-n // (BLOCK * UNROLL)), sm_count * 32))


def image_grid(n: int, sm_count: int) -> int:
    """Blocks for the image kernels (a window's loop per element): a thread per element, at most 32
    blocks per SM (threads then loop over the grid)."""
    return max(1, min(-(-n // BLOCK), sm_count * 32))


def reduce_geometry(m: int, r: int, sm_count: int) -> tuple:
    """('serial', blocks, 1) for many short reductions, else ('blocks', blocks, splits): blocks per result."""
    if r <= 32 or m >= sm_count * 2048:
        return "serial", max(1, min(-(-m // BLOCK), sm_count * 32)), 1
    wanted = sm_count * 8                       # blocks that keep every SM busy
    splits = 1 if m >= wanted else max(1, min(-(-wanted // m), -(-r // (BLOCK * UNROLL)), 65535))
    return "blocks", min(m, 2**31 - 1), splits


class _Launch:
    """One kernel of the plan: its host-side checks, argument layout and launch geometry.

    `codes`: the 1-based codes (indices into the runner's error list) of this kernel's checks.
    """

    def __init__(self, kernel, args, module, errors, codes, error_word):
        self.kernel, self.args, self.errors, self.codes = kernel, args, errors, codes
        self.call = _KernelCall(kernel, args)          # reads, strides, writes, dtypes, shape
        self.loop_shape = _shape_function(kernel.sources)
        self.axes = kernel.reduce.reduced_axes(kernel.ndim) if kernel.reduce is not None else ()
        # a kernel whose helpers can fail (ShapeError dim -2) takes the error word's address last
        self.flag = [error_word] if any(errors[c - 1].dim == -2 for c in codes) else []
        flag = "P" * len(self.flag)
        fmt = "".join("P" + "q" * len(args[a].broadcastable) + "q" * len(self.call.strides[a])
                      for a in self.call.reads)
        name = kernel.name
        self.parts = []
        if kernel.reduce is None:
            fmt += "q" * kernel.ndim + "P" * len(self.call.writes)
            self.main = module.get_function(name).prepare(fmt + flag)
            return
        if isinstance(kernel.reduce, Reduce):          # partial results: the accumulator type
            out = args[self.call.writes[0]].dtype
            self.parts = [np.dtype(_accumulator(kernel.reduce.row, out))]
            self.finish = module.get_function(name + "_finish").prepare("PPqqq")
        else:                                          # argmax / argmin: partial (value, position)
            self.parts = [np.dtype(kernel.stores[0][1][2]), np.dtype(np.int64)]
            self.finish = module.get_function(name + "_finish").prepare("PPPqq")
        self.main = module.get_function(name).prepare(fmt + "P" + "P" * len(self.parts) + flag)
        self.serial = module.get_function(name + "_serial").prepare(fmt + "P" + flag)

    def check(self, vals, loop) -> int:
        """0, or the code of the first check that fails (the C kernel would return it)."""
        for code in self.codes:
            err = self.errors[code - 1]
            if err.dim == -2:                # reported by the kernel itself
                continue
            if err.dim < 0:                  # max, min, argmax, argmin of nothing: as numpy
                if math.prod(loop[d] for d in self.axes) == 0:
                    return code
                continue
            n = vals[err.arg].shape[err.dim]
            if n != (1 if err.source is None else vals[err.source[0]].shape[err.source[1]]):
                return code
        return 0

    def run(self, vals, sm_count) -> int:
        """Launch (asynchronously); the code of a failed host check, or 0."""
        loop = self.loop_shape(vals)
        code = self.check(vals, loop)
        if code:
            return code
        cargs = []
        for index in self.call.reads:
            a = vals[index] = _device(vals[index])
            cargs.append(a.ptr)
            cargs += a.shape
            cargs += [a.strides[k] for k in self.call.strides[index]]
        shape = self.call.shape(vals)
        outs = [DeviceArray(shape, dtype) for dtype in self.call.dtypes]
        for index, out in zip(self.call.writes, outs):
            vals[index] = out
        flag, block = [f.ptr for f in self.flag], (BLOCK, 1, 1)
        if self.kernel.reduce is None:
            n = math.prod(shape)
            if n:
                self.main.prepared_call((elementwise_grid(n, sm_count), 1), block, *cargs, *shape,
                                        *(o.ptr for o in outs), *flag)
            return 0
        m, r = math.prod(shape), math.prod(loop[d] for d in self.axes)
        if m == 0:
            return 0
        mode, blocks, splits = reduce_geometry(m, r, sm_count)
        out = outs[0].ptr
        if mode == "serial":
            self.serial.prepared_call((blocks, 1), block, *cargs, out, *flag)
        elif splits == 1:
            self.main.prepared_call((blocks, 1), block, *cargs, out, *(0 for _ in self.parts), *flag)
        else:
            parts = [DeviceArray((m * splits,), dtype) for dtype in self.parts]
            ptrs = [p.ptr for p in parts]
            self.main.prepared_call((blocks, splits), block, *cargs, out, *ptrs, *flag)
            tail = (m, splits, r) if isinstance(self.kernel.reduce, Reduce) else (m, splits)
            self.finish.prepared_call((blocks, 1), block, *ptrs, out, *tail)
        return 0


def _on_host(step, vals) -> int:
    """Run a host step's numpy implementation on host copies of its inputs (the GPU steps' fallback)."""
    results = step.node.op.perform(step.node, [_host(vals[i]) for i in step.inputs])
    for index, result in zip(step.outputs, results):
        vals[index] = result
    return 0


def _as_matrix(a: DeviceArray, vector_as: str) -> tuple:
    """(rows, columns, row stride, column stride) of a matrix, or of a vector seen as one row or column."""
    if len(a.shape) == 2:
        return (*a.shape, *a.strides)
    return (1, a.shape[0], 0, a.strides[0]) if vector_as == "row" else (a.shape[0], 1, a.strides[0], 0)


class _Product:
    """A product (family 'blas': dot, or gemm with its accumulator C first) run by the module's tiled
    gemm kernel (see codegen/cuda.gpu_product)."""

    def __init__(self, step, position, args, module, dtype):
        self.step, self.node = step, step.node
        self.accumulate = len(step.inputs) == 3          # beta * C + alpha * dot(A, B)
        self.dtype = np.dtype(dtype)
        real = "f" if dtype == "float32" else "d"
        self.fn = module.get_function(gemm_name(dtype)).prepare(f"qqq{real}PqqPqq{real}Pqq")
        self.tile_m, self.tile_n = GEMM["tile_m"], GEMM["tile_n"]

    def run(self, vals, sm_count) -> int:
        ins = [_device(vals[i]) for i in self.step.inputs]
        c, a, b = ins if self.accumulate else (None, *ins)
        if (a.shape[-1] if len(a.shape) else 0) != b.shape[0]:
            self.node.op.perform(self.node, [_stand_in(v) for v in ins])      # raises the op's error
        m, k, a_s0, a_s1 = _as_matrix(a, "row")
        k, n, b_s0, b_s1 = _as_matrix(b, "column")
        shape = tuple(a.shape[:-1]) + tuple(b.shape[1:])
        blocks = (-(-n // self.tile_n), -(-m // self.tile_m))
        if blocks[1] > 65535:
            raise ValueError(f"dot on the GPU: {m} rows exceed the launch grid's limit; use device='cpu'")
        out = DeviceArray(shape, self.dtype)
        size = self.dtype.itemsize
        c_s0, c_s1 = (n * size if len(a.shape) == 2 else 0), (size if len(b.shape) == 2 else 0)
        alpha, beta = (self.node.op.alpha, self.node.op.beta) if self.accumulate else (1.0, 0.0)
        if self.accumulate:
            check_accumulator(self.node, c.shape, shape)
            if c.shape != shape or not c.contiguous:       # a broadcast or strided C: via the host
                c = DeviceArray.from_host(np.ascontiguousarray(np.broadcast_to(_host(c), shape)))
            if out.alloc is not None:
                _STATE["drv"].memcpy_dtod(out.ptr, c.ptr, math.prod(shape) * size)
        if m and n:
            self.fn.prepared_call(blocks, (BLOCK, 1, 1), m, n, k, alpha, a.ptr, a_s0, a_s1, b.ptr, b_s0, b_s1,
                                  beta, out.ptr, c_s0, c_s1)
        for index in self.step.outputs:
            vals[index] = out
        return 0


class _Indexing:
    """Integer-array indexing x[i, j] (gather) or inc_subtensor of it (scatter-add) on the GPU.

    The index arrays are small: the host checks them as numpy does (IndexError), wraps negative
    ones and sends one byte offset per row; anything unusual (lengths that do not match) is left
    to numpy on the host, which explains the error.
    """

    def __init__(self, step, position, args, module, found):
        kind, dtype, trailing = found
        self.step, self.node, self.kind, self.trailing = step, step.node, kind, trailing
        self.dtype = np.dtype(dtype)
        fmt = "P" + "qq" * trailing + "Pq" + ("P" if kind == "take" else "Pq" + "q" * trailing)
        self.fn = module.get_function(indexing_name(kind, dtype, position)).prepare(fmt)

    def run(self, vals, sm_count) -> int:
        first = 1 if self.kind == "take" else 2
        x = vals[self.step.inputs[0]]
        index = [np.asarray(_host(vals[i])) for i in self.step.inputs[first:]]
        rows = max(len(i) for i in index)
        if any(len(i) not in (1, rows) for i in index):
            return _on_host(self.step, vals)
        x = _device(x) if self.kind == "take" or type(x) is not np.ndarray else x
        shape = x.shape
        for d, ix in enumerate(index):
            bad = ix[(ix < -shape[d]) | (ix >= shape[d])]
            if bad.size:
                raise IndexError(f"index {bad[0]} is out of bounds for axis {d} with size {shape[d]} "
                                 f"(indexing an array of shape {shape})")
        trailing = shape[len(index):]
        if self.kind == "take":
            src = x
            out = DeviceArray((rows, *trailing), self.dtype)
        else:                                    # accumulate into a contiguous copy of x
            if type(x) is DeviceArray and x.contiguous:
                out = DeviceArray(shape, self.dtype)
                if out.alloc is not None:
                    _STATE["drv"].memcpy_dtod(out.ptr, x.ptr, math.prod(shape) * self.dtype.itemsize)
            else:
                out = DeviceArray.from_host(np.ascontiguousarray(_host(x)))
                out.host = None              # the kernel changes it: the host copy goes stale
            src = out
            y = vals[self.step.inputs[1]]
            target = (rows, *trailing)
            if len(y.shape) > len(target) or any(n not in (1, t) for n, t in
                                                 zip(y.shape[::-1], target[::-1])):
                return _on_host(self.step, vals)
            y = _device(y)
            pad = len(target) - len(y.shape)
            y_strides = [0] * pad + [0 if n == 1 else st for n, st in zip(y.shape, y.strides)]
        offsets = np.zeros(rows, np.int64)
        for d, ix in enumerate(index):
            offsets += (ix.astype(np.int64) % max(shape[d], 1)) * src.strides[d]
        total = rows * math.prod(trailing)
        if total:
            device_offsets = DeviceArray.from_host(offsets)
            dims = [v for n, st in zip(trailing, src.strides[len(index):]) for v in (n, st)]
            grid = (elementwise_grid(total, sm_count), 1)
            if self.kind == "take":
                self.fn.prepared_call(grid, (BLOCK, 1, 1), src.ptr, *dims, device_offsets.ptr, rows, out.ptr)
            else:
                self.fn.prepared_call(grid, (BLOCK, 1, 1), src.ptr, *dims, device_offsets.ptr, rows,
                                      y.ptr, *y_strides)
        vals[self.step.outputs[0]] = out
        return 0


class _Join:
    """concatenate on the GPU: each input copied (strided) into its slice of the result."""

    def __init__(self, step, position, args, module, found):
        dtype, ndim = found
        self.step, self.node, self.dtype = step, step.node, np.dtype(dtype)
        self.fn = module.get_function(copy_name(dtype, ndim)).prepare("PP" + "qqq" * ndim)

    def run(self, vals, sm_count) -> int:
        parts = [vals[i] for i in self.step.inputs]
        axis = self.node.op.axis
        shapes = [p.shape for p in parts]
        if any(len(s) != len(shapes[0]) or any(a != b for d, (a, b) in enumerate(zip(s, shapes[0])) if d != axis)
               for s in shapes):
            return _on_host(self.step, vals)     # numpy explains the mismatch
        total = list(shapes[0])
        total[axis] = sum(s[axis] for s in shapes)
        out = DeviceArray(total, self.dtype)
        start = 0
        for part in parts:
            part = _device(np.asarray(part, dtype=self.dtype) if type(part) is not DeviceArray else part)
            n = part.shape[axis]
            target = _sliced(out, (slice(None),) * axis + (slice(start, start + n),))
            start += n
            _copy(self.fn, part, part.strides, target, sm_count)
        vals[self.step.outputs[0]] = out
        return 0


def _copy(fn, src: DeviceArray, src_strides, dst: DeviceArray, sm_count: int) -> None:
    """Launch a strided copy kernel of copy.cu.j2 (`fn`): dst = src, or dst += src, over dst's shape,
    src read with `src_strides` (zeros where it is broadcast)."""
    size = math.prod(dst.shape)
    if size:
        dims = [v for d in range(len(dst.shape)) for v in (dst.shape[d], src_strides[d], dst.strides[d])]
        fn.prepared_call((elementwise_grid(size, sm_count), 1), (BLOCK, 1, 1), src.ptr, dst.ptr, *dims)


class _IncSlice:
    """inc_subtensor / set_subtensor of ints and slices (family 'inc_subtensor') on the GPU: x copied
    (one device-to-device copy, or a strided copy), then y, broadcast, added or written into the
    view x[index] of the copy. An index or a y that numpy would refuse runs as numpy on the host,
    which raises the op's error."""

    def __init__(self, step, position, args, module, found):
        dtype, x_nd, v_nd = found
        self.step, self.node = step, step.node
        self.copy = module.get_function(copy_name(dtype, x_nd)).prepare("PP" + "qqq" * x_nd)
        add = not self.node.op.set_instead
        self.write = module.get_function(copy_name(dtype, v_nd, add)).prepare("PP" + "qqq" * v_nd)

    def run(self, vals, sm_count) -> int:
        ins = [vals[i] for i in self.step.inputs]
        index = numpy_index(self.node.op.spec, [_host(v) for v in ins[2:]])
        try:                                         # numpy's checks, on stand-ins
            np.broadcast_to(_stand_in(ins[1]), _stand_in(ins[0])[index].shape)
        except (IndexError, ValueError):
            return _on_host(self.step, vals)
        x = vals[self.step.inputs[0]] = _device(ins[0])
        y = vals[self.step.inputs[1]] = _device(ins[1])
        out = DeviceArray(x.shape, x.dtype)
        if x.contiguous and out.alloc is not None:
            _STATE["drv"].memcpy_dtod(out.ptr, x.ptr, math.prod(x.shape) * x.dtype.itemsize)
        else:
            _copy(self.copy, x, x.strides, out, sm_count)
        view = _sliced(out, index)
        if not view.shape:                           # one element: the 1-d kernel, over one
            view = view.view((1,), (0,))
        pad = len(view.shape) - len(y.shape)
        _copy(self.write, y, [0] * pad + [0 if n == 1 else s for n, s in zip(y.shape, y.strides)], view, sm_count)
        vals[self.step.outputs[0]] = out
        return 0


def conv_geometry(conv, x_shape, w_shape) -> dict | None:
    """The geometry conv.cu.j2's kernels take (CONV_GEOMETRY) for x (*) w, as templates/c/conv.h.j2
    computes it; None where the op's perform raises (channels differ, filters larger than the padded
    image) or where the kernels have nothing to loop over (filters with no rows or columns)."""
    (n, c, h, w), (k, c_w, fh, fw) = x_shape, w_shape
    p = conv.c_params()
    (sh, sw), (dh, dw) = p["stride"], p["dilation"]
    eh, ew = dh * (fh - 1) + 1, dw * (fw - 1) + 1                 # the dilated filters
    ph, pw = {0: (0, 0), 1: (eh - 1, ew - 1), 2: (eh // 2, ew // 2)}.get(p["border"], p["pad"])
    if c_w != c or fh == 0 or fw == 0 or h + 2 * ph < eh or w + 2 * pw < ew:
        return None
    oh, ow = (h + 2 * ph - eh) // sh + 1, (w + 2 * pw - ew) // sw + 1
    return dict(n=n, c=c, h=h, w=w, k=k, fh=fh, fw=fw, oh=oh, ow=ow, ph=ph, pw=pw, sh=sh, sw=sw, dh=dh, dw=dw,
                flip=p["flip"])


def pool_geometry(pool, images: tuple) -> dict:
    """The geometry (POOL_GEOMETRY) of pool_2d over `images` (n, c, h, w: x as _as_images sees it):
    the output's rows and columns as Theano counts them (ignore_border: whole windows only)."""
    p = pool.c_params()
    (wh, ww), (sh, sw), (ph, pw) = p["ws"], p["stride"], p["pad"]
    n, c, h, w = images

    def count(size, window, stride):
        if p["ignore_border"]:
            return (size - window) // stride + 1 if size >= window else 0
        return partial_windows(size, window, stride)

    return dict(n=n, c=c, h=h, w=w, oh=count(h + 2 * ph, wh, sh), ow=count(w + 2 * pw, ww, sw),
                wh=wh, ww=ww, sh=sh, sw=sw, ph=ph, pw=pw, mode=p["mode"])


def filter_splits(size: int, rows: int, sm_count: int) -> tuple:
    """(splits, chunk): the n*oh output rows summed into each of `size` filter elements, in `splits`
    parts of `chunk` rows, so that the threads fill the GPU even for few filter elements."""
    wanted = -(-sm_count * BLOCK * 8 // max(size, 1))
    chunk = max(1, -(-rows // max(1, min(rows, wanted))))
    return max(1, -(-rows // chunk)), chunk


def _params_format(params) -> str:
    return "".join("P" if "*" in p else "q" for p in params)


def _as_images(a) -> tuple | None:
    """(shape, byte strides) of `a` (ndim >= 2) seen as 4-d images (batch, channels, rows, columns):
    missing leading dims have length 1, extra ones merge into the batch dim (a view, no copy);
    None when their strides do not allow that."""
    shape, strides = [1, 1, *a.shape][-max(4, len(a.shape)):], [0, 0, *a.strides][-max(4, len(a.shape)):]
    while len(shape) > 4:
        (n0, n1), (s0, s1) = shape[:2], strides[:2]
        if n0 != 1 and n1 != 1 and s0 != s1 * n1:
            return None
        shape[:2], strides[:2] = [n0 * n1], [s1 if n1 != 1 else s0]
    return tuple(shape), tuple(strides)


class _Image:
    """conv2d / pool_2d or one of their gradients run by the image kernels of templates/cuda/conv.cu.j2
    (see codegen/cuda.gpu_image). Shapes are checked on the host first: where the op's perform would
    raise (or the shapes are not the ones the kernels expect), the step runs as numpy on the host
    instead, so the error is the op's own."""

    def __init__(self, step, position, args, module, found):
        family, dtype = found
        self.step, self.node, self.family, self.dtype = step, step.node, family, np.dtype(dtype)
        name = image_name(family, dtype)
        self.fn = module.get_function(name).prepare(_params_format(IMAGE_PARAMS[family]))
        if family == "conv2d_grad_filters":
            finish = IMAGE_PARAMS[family + "_finish"]
            self.finish = module.get_function(name + "_finish").prepare(_params_format(finish))

    def run(self, vals, sm_count) -> int:
        ins = [vals[i] for i in self.step.inputs]
        found = self._conv(ins) if self.family.startswith("conv") else self._pool(ins)
        if found is None:
            return _on_host(self.step, vals)
        shape, reads, sizes = found
        cargs = []
        for k in reads:                # the arrays the kernel reads go to the GPU (once: vals keeps them)
            a = vals[self.step.inputs[k]] = _device(ins[k])
            view = _as_images(a) if self.family.startswith("pool") else (a.shape, a.strides)
            if view is None:
                return _on_host(self.step, vals)           # leading dims that do not merge (rare)
            cargs += [a.ptr, *view[1]]
        out = DeviceArray(shape, self.dtype)
        if out.alloc is not None:
            self._launch(cargs, out, sizes, math.prod(shape), sm_count)
        vals[self.step.outputs[0]] = out
        return 0

    def _conv(self, ins) -> tuple | None:
        """(result shape, positions of the inputs the kernel reads, geometry), or None: run perform."""
        op = self.node.op if self.family == "conv2d" else self.node.op.conv
        geo = conv_geometry(op, ins[0].shape, ins[1].shape)
        if geo is None:
            return None                                    # perform raises the op's error
        out = (geo["n"], geo["k"], geo["oh"], geo["ow"])
        if self.family != "conv2d" and tuple(ins[2].shape) != out:
            return None                                    # g is not the convolution's shape
        shape, reads = {"conv2d": (out, (0, 1)), "conv2d_grad_input": (ins[0].shape, (1, 2)),
                        "conv2d_grad_filters": (ins[1].shape, (0, 2))}[self.family]
        return tuple(shape), reads, [geo[v] for v in CONV_GEOMETRY]

    def _pool(self, ins) -> tuple | None:
        """As _conv, for a pool (the leading dims of x seen as images and channels) or its gradient."""
        op = self.node.op if self.family == "pool2d" else self.node.op.pool
        lead = tuple(ins[0].shape[:-2])
        geo = pool_geometry(op, (math.prod(lead[:-1]), math.prod(lead[-1:]), *ins[0].shape[-2:]))
        pooled = (*lead, geo["oh"], geo["ow"])
        if any(tuple(a.shape) != pooled for a in ins[1:]):
            return None                                    # not the pool's output: numpy decides
        shape = pooled if self.family == "pool2d" else tuple(ins[0].shape)
        return shape, range(len(ins)), [geo[v] for v in POOL_GEOMETRY]

    def _launch(self, cargs, out, sizes, total, sm_count) -> None:
        block = (BLOCK, 1, 1)
        if self.family != "conv2d_grad_filters":
            self.fn.prepared_call((image_grid(total, sm_count), 1), block, *cargs, out.ptr, *sizes)
            return
        geo = dict(zip(CONV_GEOMETRY, sizes))
        splits, chunk = filter_splits(total, geo["n"] * geo["oh"], sm_count)
        part = out if splits == 1 else DeviceArray((splits * total,), self.dtype)
        grid = (image_grid(splits * total, sm_count), 1)
        self.fn.prepared_call(grid, block, *cargs, part.ptr, *sizes, splits, chunk)
        if splits > 1:
            self.finish.prepared_call((image_grid(total, sm_count), 1), block, part.ptr, out.ptr, total, splits)


class _View:
    """A DimShuffle, basic indexing (ints, slices) or a reshape of a contiguous array (families
    'dimshuffle', 'subtensor', 'reshape') applied to a GPU array as a view: no copy, no trip to the
    host. Anything else (a host array, a reshape that must copy) is numpy's on the host."""

    def __init__(self, step, family):
        self.step, self.node, self.family = step, step.node, family

    def run(self, vals, sm_count) -> int:
        x = vals[self.step.inputs[0]]
        if type(x) is not DeviceArray:
            return _on_host(self.step, vals)
        if self.family == "subtensor":
            result = _sliced(x, numpy_index(self.node.op.spec, [_host(vals[i]) for i in self.step.inputs[1:]]))
        elif self.family == "dimshuffle":
            order = self.node.op.new_order
            result = x.view([1 if d == "x" else x.shape[d] for d in order],
                            [0 if d == "x" else x.strides[d] for d in order])
        else:                                    # reshape: only a contiguous array keeps its memory
            target = [int(v) for v in np.atleast_1d(_host(vals[self.step.inputs[1]]))]
            known = math.prod(t for t in target if t != -1)
            if target.count(-1) == 1 and known > 0 and math.prod(x.shape) % known == 0:
                target[target.index(-1)] = math.prod(x.shape) // known
            if not x.contiguous or math.prod(target) != math.prod(x.shape) or min(target, default=0) < 0 \
                    or len(target) != self.node.outputs[0].ndim:        # numpy decides (and explains)
                return _on_host(self.step, vals)
            result = x.view(target, _compact_strides(target, x.dtype.itemsize))
        vals[self.step.outputs[0]] = result
        return 0


def _stand_in(value):
    """A GPU array's stand-in for an op's `perform` that reads only its shape: a numpy array of
    that shape and dtype holding no data (one zero, broadcast). Host values stand for themselves."""
    return np.broadcast_to(np.zeros((), value.dtype), value.shape) if type(value) is DeviceArray else value


class _ShapeRead:
    """Ops that read only shapes, run as their `perform` on stand-ins of GPU arrays (nothing is
    copied back): lengths ('shape', 'shape_i', 'checked_length', every input), or checks of x's
    shape that then pass x itself on ('specify_shape', 'rebroadcast', 'leading_length': the other
    inputs, the lengths x must have, are read as values)."""

    def __init__(self, step, family):
        self.step, self.node = step, step.node
        self.passes_x = family in _CHECKED_VIEWS

    def run(self, vals, sm_count) -> int:
        ins = [vals[i] for i in self.step.inputs]
        shapes_only = 1 if self.passes_x else len(ins)
        results = self.node.op.perform(self.node, [_stand_in(v) for v in ins[:shapes_only]]
                                       + [_host(v) for v in ins[shapes_only:]])       # raises the op's errors
        for index, result in zip(self.step.outputs, [ins[0]] if self.passes_x else results):
            vals[index] = result
        return 0


_VIEWS = ("dimshuffle", "subtensor", "reshape")
_CHECKED_VIEWS = ("specify_shape", "rebroadcast", "leading_length")
_SHAPE_READS = ("shape", "shape_i", "checked_length", *_CHECKED_VIEWS)


class _Scan:
    """A scan (family 'scan') whose step runs on the GPU. A host loop calls the step function
    compiled for device='cuda' (Scan.step_function: results left on the device) once per step, on
    views of GPU memory: the sequences' slices, the previous states (entries of the stacked
    results), the non-sequences. Each step's results are copied device to device into stacks
    allocated at the first step; only the stop condition (until) is read back each step. The
    checks and their messages are Scan.perform's. A step the CUDA backend cannot compile (complex
    numbers) runs as numpy `perform`, as a step with side effects does (codegen/cuda.gpu_scan)."""

    def __init__(self, step, position, args, module, found):
        self.step, self.op = step, step.node.op
        self.dtypes = [np.dtype(args[i].dtype) for i in step.outputs]
        try:
            self.fn = self.op.step_function("cuda")
        except CudaUnsupportedError:
            self.fn = None

    def run(self, vals, sm_count) -> int:
        if self.fn is None:
            return _on_host(self.step, vals)
        op, x = self.op, self.step.inputs
        n = int(np.asarray(_host(vals[x[0]])))
        for i in x[1:]:                         # sequences, initial states, non-sequences: on the GPU once
            vals[i] = _device(vals[i])
        ns, nst = op.n_seqs, op.n_states
        seqs, inits = [vals[i] for i in x[1:1 + ns]], [vals[i] for i in x[1 + ns:1 + ns + nst]]
        rest = [vals[i] for i in x[1 + ns + nst:]]
        op.check_steps(n, [s.shape[0] for s in seqs])
        stacks, states, done = [None] * len(self.dtypes), inits, n
        for t in range(n):
            rows = [_sliced(s, (s.shape[0] - 1 - t if op.go_backwards else t,)) for s in seqs]
            results = self.fn(*rows, *states, *rest)
            for k in range(nst):
                op.check_state(k, results[k].shape, inits[k].shape, t)
            for k, dtype in enumerate(self.dtypes):
                if stacks[k] is None:         # a last_only result: a ring of op.ring_rows(k) rows
                    stacks[k] = DeviceArray((min(n, op.ring_rows(k) or n), *results[k].shape), dtype)
                _put(results[k], stacks[k], t % stacks[k].shape[0])
            states = [_sliced(stacks[k], (t % stacks[k].shape[0],)) for k in range(nst)]
            if op.until and bool(results[-1]):
                done = t + 1
                break
        for k, (index, dtype) in enumerate(zip(self.step.outputs, self.dtypes)):
            if n == 0:                          # no step: an empty stack of the state's (or a length-0) shape
                like = inits[k].shape if k < nst else (0,) * (len(self.step.node.outputs[k].broadcastable) - 1)
                stacks[k] = DeviceArray((0, *like), dtype)
            elif op.ring_rows(k):               # the row of the last step
                last = (done - 1) % stacks[k].shape[0]
                stacks[k] = _sliced(stacks[k], (slice(last, last + 1),))
            elif done < n:
                stacks[k] = stacks[k].view((done, *stacks[k].shape[1:]), stacks[k].strides)
            vals[index] = stacks[k]
        return 0


def _put(result: DeviceArray, stack: DeviceArray, t: int) -> None:
    """stack[t] = result: one device-to-device copy."""
    if result.shape != stack.shape[1:]:
        raise ValueError("all input arrays must have the same shape")       # numpy.stack's, as in perform
    nbytes = math.prod(result.shape) * result.dtype.itemsize
    if nbytes:
        if not result.contiguous:        # never seen: a function's results are new C-contiguous arrays
            result = DeviceArray.from_host(result.get())
        _STATE["drv"].memcpy_dtod(_sliced(stack, (t,)).ptr, result.ptr, nbytes)


def _sliced(x: DeviceArray, index: tuple) -> DeviceArray:
    """x[index] for ints and slices (basic indexing): a view, as numpy's."""
    shape, strides, offset = [], [], 0
    for d, item in enumerate(index):
        n, stride = x.shape[d], x.strides[d]
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            shape.append(len(range(start, stop, step)))
            strides.append(stride * step)
            offset += start * stride if shape[-1] else 0
        else:
            i = int(item)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {n} "
                                 f"(indexing an array of shape {x.shape})")
            offset += (i % n) * stride
    rest = len(index)
    return x.view(shape + list(x.shape[rest:]), strides + list(x.strides[rest:]), offset)


# family -> (what its GPU form needs, from codegen/cuda.py: None where the GPU leaves it to numpy,
#            the runtime step that runs it)
_GPU_FORMS = {"blas": (gpu_product, _Product), "gather": (gpu_indexing, _Indexing),
              "scatter": (gpu_indexing, _Indexing), "join": (gpu_join, _Join),
              "inc_subtensor": (gpu_inc, _IncSlice), "conv2d": (gpu_image, _Image), "conv2d_grad": (gpu_image, _Image),
              "pool2d": (gpu_image, _Image), "pool2d_grad": (gpu_image, _Image), "scan": (gpu_scan, _Scan)}


def _host_step(step, position, args, module):
    """How a host step of the plan runs, chosen by its family: a GPU form, a view or a shape read
    of GPU memory, else the step itself (numpy `perform` on host copies of its inputs)."""
    family = step_family(step)
    if family in _VIEWS:
        return _View(step, family)
    if family in _SHAPE_READS:
        return _ShapeRead(step, family)
    need, runs = _GPU_FORMS.get(family, (None, None))
    found = need(step, args) if need is not None else None
    return step if found is None else runs(step, position, args, module, found)


class CudaRunner:
    """Runs a Plan on the GPU: like runtime.CRunner, with arrays copied in and out as needed."""

    def __init__(self, plan, entry, keep=()):
        self.plan, self.entry = plan, entry
        self.keep = frozenset(keep)    # output positions returned as DeviceArray (left on the GPU)
        self.args = plan.args
        self.n_inputs = sum(1 for a in plan.args if a.role == "input")
        self.output_args = plan.output_args
        self.errors = [ShapeError(e[0], e[1], tuple(e[2]) if e[2] else None, e[3])
                       for e in entry.meta["errors"]]
        self.steps = None              # built on the first call, when PyCUDA is known to work
        self.rest = self.error_word = None

    def _prepare(self) -> None:
        state = _init()
        module = state["modules"].get(self.entry.key)
        if module is None:
            data = self.entry.file("module").read_bytes()
            module = state["modules"][self.entry.key] = state["drv"].module_from_buffer(data)
        checks = dict(zip(self.entry.meta["kernels"], self.entry.meta["checks"]))
        error_word = DeviceArray((1,), np.int32) if any(e.dim == -2 for e in self.errors) else None
        steps = []
        for position, step in enumerate(self.plan.steps):
            if isinstance(step, HostStep):
                steps.append(_host_step(step, position, self.args, module))
                continue
            lo, hi = checks[step.name]
            steps.append(_Launch(step, self.args, module, self.errors, range(lo + 1, hi + 1), error_word))
        rest = [None] * (len(self.args) - self.n_inputs)
        const_args = [i for i, a in enumerate(self.args) if a.role == "const"]
        for index, value in zip(const_args, self.plan.constants):
            rest[index - self.n_inputs] = DeviceArray.from_host(value)
        self.steps, self.rest, self.error_word = steps, rest, error_word

    def __call__(self, values: list) -> list:
        if self.steps is None:
            self._prepare()
        drv = _STATE["drv"]
        vals = values + self.rest
        try:
            if self.error_word is not None:
                drv.memset_d32(self.error_word.ptr, 0, 1)
            for step in self.steps:
                if type(step) is HostStep:
                    _on_host(step, vals)
                else:
                    code = step.run(vals, _STATE["sm_count"])
                    if code:
                        raise self.error(code, vals)
            results = [_device(vals[i]) if k in self.keep else _host(vals[i])
                       for k, i in enumerate(self.output_args)]
            code = int(self.error_word.get()[0]) if self.error_word is not None else 0
        except drv.MemoryError as exc:
            raise MemoryError(f"out of GPU memory in {self.entry.meta.get('name', 'a gencomp function')}: "
                              f"{exc}") from None
        except drv.Error as exc:
            raise RuntimeError(f"CUDA error in {self.entry.meta.get('name', 'a gencomp function')} "
                               f"(cache entry {self.entry.key[:12]}): {exc}") from None
        if code:
            raise self.error(code, vals)
        return results

    def error(self, code: int, vals: list) -> Exception:
        """The exception the C backend raises for the same failed check (same message)."""
        return check_error(self.errors, self.args, code, [getattr(v, 'shape', None) for v in vals])
