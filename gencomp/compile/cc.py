"""The C compiler driver: compile a generated source to a shared library and load it with cffi.

The compiler is run directly (no setuptools: that costs over a second per build).
cffi is used in its out-of-line ABI mode: the declarations of the kernels are parsed once,
when the entry is built, into a small Python module stored beside the library, so
loading an entry never runs the C parser.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import time
from pathlib import Path


class CompilerNotFoundError(RuntimeError):
    """The configured C compiler is not installed."""


class CompileError(RuntimeError):
    """The C compiler rejected a generated source (a gencomp bug: please report it)."""


@functools.lru_cache(maxsize=None)
def compiler_path(cc: str) -> str:
    found = shutil.which(cc)
    if found is None:
        raise CompilerNotFoundError(
            f"C compiler {cc!r} not found on PATH; install gcc or clang, or set gencomp.config.cc "
            f"(GENCOMP_FLAGS=cc=/path/to/compiler)")
    return os.path.realpath(found)


@functools.lru_cache(maxsize=None)
def compiler_identity(cc: str) -> str:
    """Path, size and mtime of the compiler binary: changes when the compiler is upgraded."""
    path = compiler_path(cc)
    st = os.stat(path)
    return f"{path} size={st.st_size} mtime={st.st_mtime_ns}"


@functools.lru_cache(maxsize=None)
def cpu_identity() -> str:
    """The processor model and features: code built with -march=native runs only where they match."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [line for line in f.read(65536).splitlines()
                     if line.startswith(("model name", "flags", "Features", "CPU part"))]
        text = "\n".join(dict.fromkeys(lines))
    except OSError:
        text = platform.processor() or platform.machine()
    return "cpu=" + hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def supports_openmp(cc: str) -> bool:
    probe = subprocess.run([compiler_path(cc), "-fopenmp", "-x", "c", "-E", "-"], input=b"",
                           capture_output=True)
    return probe.returncode == 0


def compiler_flags(cc: str, cflags: str, openmp: bool) -> list[str]:
    """The compiler and its flags, without files."""
    return [compiler_path(cc), *shlex.split(cflags), *(["-fopenmp"] if openmp and supports_openmp(cc) else [])]


def command(cc: str, cflags: str, openmp: bool, *sources: str, output: str) -> list[str]:
    """The command line building `output` from `sources`; file names are relative to the entry
    folder it runs in."""
    return compiler_flags(cc, cflags, openmp) + ["-o", output, *sources, "-lm"]


def compile_parallel(cc: str, cflags: str, openmp: bool, sources: list, output: str, folder: Path) -> tuple:
    """Compile `sources` to objects in parallel processes, then link them into `output`: (the one
    command line that builds the same, for meta.json; seconds in all)."""
    start = time.perf_counter()
    base = compiler_flags(cc, cflags, openmp)
    objects = [Path(s).with_suffix(".o").name for s in sources]
    procs = [subprocess.Popen(base + ["-c", "-o", o, s], cwd=folder, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s, o in zip(sources, objects)]
    errors = [err for p in procs for _, err in [p.communicate()] if p.returncode != 0]
    if errors:
        raise CompileError(f"compiling {folder} failed ({shlex.join(base)} -c ...):\n" + "\n".join(e.strip() for e in errors))
    compile_library(base + ["-o", output, *objects, "-lm"], folder)
    for o in objects:
        (folder / o).unlink()
    return command(cc, cflags, openmp, *sources, output=output), time.perf_counter() - start


def compile_library(cmd: list[str], folder: Path) -> float:
    """Run the compiler in `folder`; seconds taken. CompileError with the compiler's message on failure."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    if proc.returncode != 0:
        raise CompileError(f"compiling {folder} failed ({shlex.join(cmd)}):\n{proc.stderr.strip()}")
    return time.perf_counter() - start


def write_ffi_module(cdef: str, path: Path) -> None:
    """Parse the entry point's declaration once and store cffi's pre-parsed form as Python."""
    import cffi

    builder = cffi.FFI()
    builder.cdef(cdef)
    builder.set_source("_gencomp_ffi", None)
    from cffi.recompiler import make_py_source

    make_py_source(builder, "_gencomp_ffi", str(path))  # quiet form of emit_python_code


# OpenMP's threads spin for a while after each loop, waiting for the next one (libgomp: up to
# ~300000 turns); they then take the cores from numpy's BLAS threads, which run between
# gencomp's loops, and a step of a small MLP takes 10x longer (issue 9). gencomp's loops
# decide by measurement whether threads pay (templates/c/threads.h.j2), so threads that
# sleep at once (`passive`) cost a wake-up that is counted in that measurement.
WAIT_POLICY = "passive"
_OPENMP_STATE: list = []          # [what was done] once libgomp is loaded


def load_openmp_runtime() -> str:
    """Load the OpenMP runtime before the first module that uses it, with OMP_WAIT_POLICY=passive
    unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (or libgomp is loaded already: then
    it keeps what it read). The variable is removed again once libgomp has read it, so neither
    child processes nor other libraries see it. Returns a line that says which policy applies."""
    if _OPENMP_STATE:
        return _OPENMP_STATE[0]
    import ctypes

    if any(key in os.environ for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        state = "the user's OMP_WAIT_POLICY / GOMP_SPINCOUNT"
    elif _library_mapped("libgomp"):
        state = "libgomp's own default (another library loaded it first)"
    else:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
        try:
            ctypes.CDLL("libgomp.so.1")
            state = f"OMP_WAIT_POLICY={WAIT_POLICY} (set by gencomp)"
        except OSError:               # not the GNU runtime: the module brings its own
            state = "the OpenMP runtime's default"
        finally:
            del os.environ["OMP_WAIT_POLICY"]
    _OPENMP_STATE.append(state)
    return state


def _library_mapped(name: str) -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(name in line for line in maps)
    except OSError:
        return False


def load_library(ffi_module: Path, library: Path):
    """(ffi, lib) from an entry's declaration module and shared library.

    `lib` must stay referenced while its functions are used: cffi closes the
    library when it is collected.
    """
    namespace: dict = {}
    code = compile(ffi_module.read_text(encoding="utf-8"), str(ffi_module), "exec")
    exec(code, namespace)
    ffi = namespace["ffi"]
    return ffi, ffi.dlopen(str(library))
