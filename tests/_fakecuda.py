"""A stand-in for PyCUDA that runs each CUDA kernel's C twin on the host (tests only).

A CUDA kernel and the C kernel of the same plan step take the same parameters (a
reduction's block kernel adds one pointer, its partial results), so a launch can be
replayed by the C library of the same function: device memory is host memory here, and
pointers are plain addresses. This checks, without a GPU, what the CUDA runtime does on
the host: argument layout and formats, host-side shape checks (a C kernel returning an
error code means a check the runtime missed), transfers, host steps and launch geometry.
It checks nothing that runs on the device.
"""

from __future__ import annotations

import struct
import sys
import types

import numpy as np


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
    def __init__(self, name, fake):
        self.name, self.fake, self.fmt = name, fake, None

    def prepare(self, fmt):
        self.fmt = fmt
        return self

    def prepared_call(self, grid, block, *args):
        struct.pack(self.fmt, *args)          # the values fit the declared formats (count and types)
        assert len(grid) == 2 and all(g >= 1 for g in grid) and block == (256, 1, 1)
        self.fake.launches.append((self.name, tuple(grid)))
        base = self.name.removesuffix("_finish").removesuffix("_serial")
        if self.name.endswith("_finish"):
            return                           # the block kernel replay below already wrote the result
        if "_reduce_" in self.name and base == self.name:
            args = args[:-1]                 # the partial-results pointer: the C kernel has none
        runner = self.fake.c_runner
        cargs = [runner.cast("void *", a) if c == "P" else a for c, a in zip(self.fmt, args)]
        rc = getattr(runner.lib, base)(*cargs)
        assert rc == 0, f"{base} returned check code {rc}: a shape check the CUDA runtime should have made"


class FakeModule:
    def __init__(self, fake):
        self.fake = fake

    def get_function(self, name):
        return FakeFunction(name, self.fake)


class Fake:
    """Install with `install(monkeypatch)`; set `c_runner` to the CPU runner of the function called."""

    def __init__(self, sm_count=4, devices=1):
        self.sm_count, self.devices = sm_count, devices
        self.launches, self.c_runner = [], None

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

        def init():
            if fake.devices == 0:
                raise Error("cuInit failed: no CUDA-capable device is detected")

        def memcpy_htod(alloc, array):
            alloc.buf[:array.nbytes] = np.ascontiguousarray(array).reshape(-1).view(np.uint8)

        def memcpy_dtoh(out, alloc):
            out.reshape(-1).view(np.uint8)[:] = alloc.buf[:out.nbytes]

        drv.Error, drv.MemoryError, drv.Device, drv.init = Error, MemoryError_, Device, init
        drv.Context = types.SimpleNamespace(get_device=lambda: Device(0))
        drv.device_attribute = types.SimpleNamespace(MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT")
        drv.memcpy_htod, drv.memcpy_dtoh = memcpy_htod, memcpy_dtoh
        drv.module_from_buffer = lambda data: FakeModule(fake)
        tools = types.ModuleType("pycuda.tools")
        tools.DeviceMemoryPool = FakePool
        tools.clear_context_caches = lambda: None
        package = types.ModuleType("pycuda")
        package.__path__ = []
        package.driver, package.tools = drv, tools
        return {"pycuda": package, "pycuda.driver": drv, "pycuda.tools": tools}

    def install(self, monkeypatch) -> "Fake":
        from gencomp import runtime_cuda

        for name, module in self.modules().items():
            monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(runtime_cuda, "_STATE", {})
        monkeypatch.setattr(runtime_cuda, "_release", lambda context: None)
        return self
