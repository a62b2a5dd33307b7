"""A stand-in for PyCUDA that runs each CUDA kernel's C twin on the host (tests only).

A CUDA kernel and the C kernel of the same plan step take the same parameters (a
reduction's block kernel adds one pointer, its partial results), so a launch can be
replayed by the C library of the same function: device memory is host memory here, and
pointers are plain addresses. This checks, without a GPU, what the CUDA runtime does on
the host: argument layout and formats, host-side shape checks (a C kernel returning an
error code means a check the runtime missed), transfers, host steps and launch geometry.
It checks nothing that runs on the device.

The image kernels (conv2d, pool_2d and their gradients, templates/cuda/conv.cu.j2) and the
strided copies (templates/cuda/copy.cu.j2: concatenation, inc_subtensor) have no C twin with
their parameters, but their threads never talk to each other (no shared memory, no atomics, no
synchronization): the module's own CUDA source is compiled for the host by g++ with CUDA's
built-in names defined (HOST_SHIM), and a launch runs every thread of the grid, one after the
other. That does execute those kernels' code (indexing, windows, geometry), though not on a GPU
(no concurrency, no device compiler).

A scan whose step runs on the GPU compiles that step as a function of its own (Scan.step_function):
`install` registers each one with its C twin, the same step compiled for the CPU, as it is made.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from gencomp.runtime_cuda import _compact_strides


class FakeAlloc:
    def __init__(self, nbytes):
        self.buf = np.zeros(nbytes, np.uint8)

    def __int__(self):
        return self.buf.ctypes.data


class FakePool:
    def allocate(self, nbytes):
        return FakeAlloc(nbytes)

    def free_held(self):
        pass

    def stop_holding(self):
        pass


class FakeFunction:
    def __init__(self, name, fake, runner):
        self.name, self.fake, self.runner, self.fmt = name, fake, runner, None

    def prepare(self, fmt):
        self.fmt = fmt
        return self

    def prepared_call(self, grid, block, *args):
        struct.pack(self.fmt, *args)          # the values fit the declared formats (count and types)
        assert len(grid) == 2 and all(g >= 1 for g in grid) and block == (256, 1, 1)
        self.fake.launches.append((self.name, tuple(grid)))
        if self.name.startswith("gc_gemm_"):
            return _gemm(self.name.removeprefix("gc_gemm_"), *args)
        if self.name.startswith(("gc_take_", "gc_add_")):
            return _indexing(*self.name.split("_")[1:3], args)
        if self.name.startswith(HOST_KERNELS):
            return self.fake.host_kernels(self.runner).launch(self.name, self.fmt, grid, block, args)
        base = self.name.removesuffix("_finish").removesuffix("_serial")
        if self.name.endswith("_finish"):
            return                           # the block kernel replay below already wrote the result
        runner = self.runner
        fn = getattr(runner.lib, base)
        n = len(runner.cast.__self__.typeof(fn).args)       # the C twin's parameters come first
        cargs = [runner.cast("void *", a) if c == "P" else a for c, a in zip(self.fmt[:n], args[:n])]
        extra = args[n:]                     # partial-result pointers, then the error word if any
        rc = fn(*cargs)
        if rc:
            err = runner.errors[rc - 1]
            assert err.dim == -2, f"{base} returned check code {rc}: a check the CUDA runtime should have made"
            ctypes.c_int32.from_address(extra[-1]).value = rc        # as the kernel's *gc_error = code


# kernels whose threads are independent (each writes its own elements): run on the host
HOST_KERNELS = ("gc_conv2d_", "gc_pool2d_", "gc_copy_", "gc_accumulate_")

# CUDA's built-in names for a host build of a module (only the HOST_KERNELS are ever called)
HOST_SHIM = """#include <stdint.h>
#include <math.h>
struct gc_dim3 { unsigned x, y, z; };
static gc_dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
static inline void __syncthreads() {}
template <typename T> T __shfl_down_sync(unsigned, T v, int) { return v; }
template <typename T> T atomicAdd(T *p, T v) { T old = *p; *p += v; return old; }
"""

# each kernel K gets K_launch(grid x, grid y, block x, K's parameters): every thread in turn
LAUNCHER = """
extern "C" void {name}_launch(unsigned gx, unsigned gy, unsigned bx, {params})
{{
    gridDim = {{gx, gy, 1}};
    blockDim = {{bx, 1, 1}};
    for (unsigned y = 0; y < gy; ++y)
        for (unsigned x = 0; x < gx; ++x)
            for (unsigned t = 0; t < bx; ++t) {{
                blockIdx = {{x, y, 0}};
                threadIdx = {{t, 0, 0}};
                {name}({args});
            }}
}}
"""
_CTYPES = {"P": ctypes.c_void_p, "q": ctypes.c_int64, "f": ctypes.c_float, "d": ctypes.c_double}
_HOST_BUILDS: dict = {}        # sha256 of the .cu source -> HostKernels (one g++ run per module and process)


class HostKernels:
    """A module's HOST_KERNELS compiled for the host from its .cu source."""

    def __init__(self, cu_path):
        source = Path(cu_path).read_text(encoding="utf-8")
        kernels = re.findall(r'^extern "C" __global__ void __launch_bounds__\(\d+\) ((?:%s)\w*)\((.*)\)$'
                             % "|".join(HOST_KERNELS), source, re.M)
        launchers = [LAUNCHER.format(name=name, params=params,
                                     args=", ".join(re.findall(r"(\w+)\s*(?:,|$)", params)))
                     for name, params in kernels]
        folder = Path(tempfile.mkdtemp(prefix="gencomp-fake-host-"))
        try:
            (folder / "module.cpp").write_text(HOST_SHIM + source + "".join(launchers), encoding="utf-8")
            cxx = shutil.which("g++") or shutil.which("c++")
            proc = subprocess.run([cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC", "-shared", "-w",
                                   "-o", str(folder / "module.so"), str(folder / "module.cpp")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, f"host build of {cu_path} failed:\n{proc.stderr}"
            self.lib = ctypes.CDLL(str(folder / "module.so"))          # stays mapped once the file is gone
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def launch(self, name, fmt, grid, block, args):
        fn = getattr(self.lib, name + "_launch")
        fn.argtypes = [ctypes.c_uint] * 3 + [_CTYPES[c] for c in fmt]
        fn.restype = None
        fn(grid[0], grid[1], block[0], *args)


def _kernels_of(cpu_function):
    """The C kernels of a CPU function's module, callable one by one (its entry points call them;
    the module's own declarations name only the entry points)."""
    import re

    import cffi

    folder = Path(cpu_function.source_path).parent
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.c")))   # module.c, kernels.c
    prototypes = re.findall(r"^int (gc_(?:elemwise|reduce|argreduce)_\d+\([^)]*\))$", source, re.M)
    ffi = cffi.FFI()
    ffi.cdef("\n".join(f"int {p};" for p in prototypes))
    lib = ffi.dlopen(str(Path(cpu_function.source_path).with_name("module.so")))
    return types.SimpleNamespace(lib=lib, cast=ffi.cast, errors=cpu_function._runner.errors)


def _strided(address, shape, strides, dtype):
    """A numpy view of host memory at `address` (what the fake's device memory is); strides may be
    negative or zero."""
    dtype = np.dtype(dtype)
    if not all(shape):
        return np.empty(shape, dtype)
    low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    span = sum((n - 1) * abs(s) for n, s in zip(shape, strides)) + dtype.itemsize
    buf = (ctypes.c_char * span).from_address(address + low)
    return np.ndarray(shape, dtype, buffer=buf, offset=-low, strides=strides)


def _gemm(dtype, m, n, k, alpha, a, a_s0, a_s1, b, b_s0, b_s1, beta, c, c_s0, c_s1):
    """What gc_gemm_<dtype> computes, in numpy: C = alpha * A @ B + beta * C (C not read if beta == 0)."""
    A = _strided(a, (m, k), (a_s0, a_s1), dtype).astype(np.float64)
    B = _strided(b, (k, n), (b_s0, b_s1), dtype).astype(np.float64)
    C = _strided(c, (m, n), (c_s0, c_s1), dtype)
    result = alpha * (A @ B) + (beta * C.astype(np.float64) if beta != 0 else 0)
    C[...] = result.astype(dtype)


def _indexing(kind, dtype, args):
    """What gc_take_* / gc_add_* compute, in numpy, row by row (repeated rows accumulate)."""
    q = (len(args) - 4) // 2 if kind == "take" else (len(args) - 5) // 3
    x, dims, (offsets, rows) = args[0], args[1:1 + 2 * q], args[1 + 2 * q:3 + 2 * q]
    shape, strides = dims[0::2], dims[1::2]
    offs = _strided(offsets, (rows,), (8,), np.int64).copy()
    if kind == "take":
        out = _strided(args[3 + 2 * q], (rows, *shape), _compact_strides((rows, *shape), np.dtype(dtype).itemsize),
                       dtype)
        for j in range(rows):
            out[j] = _strided(x + int(offs[j]), shape, strides, dtype)
        return
    y = _strided(args[3 + 2 * q], (rows, *shape), args[4 + 2 * q:], dtype)
    for j in range(rows):
        target = _strided(x + int(offs[j]), shape, strides, dtype)
        target += y[j]


class FakeModule:
    def __init__(self, fake, fatbin):
        self.fake, self.runner = fake, fake.twins[fatbin]

    def get_function(self, name):
        return FakeFunction(name, self.fake, self.runner)


class FakeEvent:
    def record(self, stream=None):
        pass

    def synchronize(self):
        pass

    def time_till(self, other):
        return 1.0


class Fake:
    """Install with `install(monkeypatch)`; `register` each device='cuda' function with its C twin."""

    def __init__(self, sm_count=4, devices=1):
        self.sm_count, self.devices = sm_count, devices
        self.launches, self.twins = [], {}

    def register(self, cuda_function, cpu_function) -> None:
        """Launches of `cuda_function`'s kernels replay through `cpu_function`'s C library."""
        fatbin = Path(cuda_function.source_path).with_name("module.fatbin").read_bytes()
        self.twins[fatbin] = _kernels_of(cpu_function)
        self.twins[fatbin].cu_path = cuda_function.source_path

    def host_kernels(self, runner) -> HostKernels:
        """The HOST_KERNELS of the module whose C twin is `runner`, built on first use."""
        key = hashlib.sha256(Path(runner.cu_path).read_bytes()).hexdigest()
        if key not in _HOST_BUILDS:
            _HOST_BUILDS[key] = HostKernels(runner.cu_path)
        return _HOST_BUILDS[key]

    def modules(self) -> dict:
        fake = self
        drv = types.ModuleType("pycuda.driver")

        class Error(Exception):
            pass

        class MemoryError_(Error):
            pass

        class Device:
            def __init__(self, ordinal):
                pass

            @staticmethod
            def count():
                return fake.devices

            def retain_primary_context(self):
                return types.SimpleNamespace(push=lambda: None, pop=lambda: None)

            def get_attribute(self, attribute):
                return fake.sm_count

            def name(self):
                return "fake GPU (C twins on the host)"

            def compute_capability(self):
                return (9, 0)

        def init():
            if fake.devices == 0:
                raise Error("cuInit failed: no CUDA-capable device is detected")

        def address(device):                   # PyCUDA takes allocations or plain addresses
            return device if isinstance(device, int) else int(device)

        def memcpy_htod(alloc, array):
            array = np.ascontiguousarray(array)
            ctypes.memmove(address(alloc), array.ctypes.data, array.nbytes)

        def memcpy_dtoh(out, alloc):
            assert out.flags.c_contiguous
            ctypes.memmove(out.ctypes.data, address(alloc), out.nbytes)

        drv.Error, drv.MemoryError, drv.Device, drv.init = Error, MemoryError_, Device, init
        drv.Context = types.SimpleNamespace(get_device=lambda: Device(0))
        drv.device_attribute = types.SimpleNamespace(MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT")
        def memcpy_dtod(dst, src, nbytes):
            ctypes.memmove(address(dst), address(src), nbytes)

        def memset_d32(ptr, value, count):
            for k in range(count):
                ctypes.c_int32.from_address(ptr + 4 * k).value = value

        drv.memcpy_htod, drv.memcpy_dtoh, drv.memcpy_dtod = memcpy_htod, memcpy_dtoh, memcpy_dtod
        drv.memset_d32 = memset_d32
        drv.Event = FakeEvent
        drv.module_from_buffer = lambda data: FakeModule(fake, bytes(data))
        tools = types.ModuleType("pycuda.tools")
        tools.DeviceMemoryPool = FakePool
        tools.clear_context_caches = lambda: None
        package = types.ModuleType("pycuda")
        package.__path__ = []
        package.driver, package.tools = drv, tools
        return {"pycuda": package, "pycuda.driver": drv, "pycuda.tools": tools}

    def install(self, monkeypatch) -> "Fake":
        from gencomp import runtime_cuda
        from gencomp.scan_op import Scan

        for name, module in self.modules().items():
            monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(runtime_cuda, "_STATE", {})
        monkeypatch.setattr(runtime_cuda, "_release", lambda context: None)
        compiled = Scan.step_function
        fake = self

        def step_function(op, device):
            """A scan's step compiled for the GPU is registered with its C twin, the same step compiled
            for the CPU (a function of the same graph: its top-level kernels have the same names)."""
            f = compiled(op, device)
            if device == "cuda":
                fake.register(f, compiled(op, "cpu"))
            return f

        monkeypatch.setattr(Scan, "step_function", step_function)
        return self
