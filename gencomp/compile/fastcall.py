"""The C call path of compiled functions (fastcall.c): built once per cache folder, loaded on demand.

A call through cffi's ABI mode costs a few microseconds of Python (argument conversion, pointers,
output allocation); fastcall.c does the same work in C for the common case, so `f(1.0, 2.0)` costs
little more than numpy's own `np.add`. It is a small CPython extension compiled with the same C
compiler as the modules, against this Python's and numpy's headers, and cached beside them under a
key of its source and of those versions. Without headers or a compiler, `load()` gives None and
calls take the Python path. The first function of a cache folder builds it on a background
thread, so `function()` never waits for it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import shlex
import sys
import sysconfig
import threading
from pathlib import Path

from . import cache, cc

SOURCE = Path(__file__).with_name("fastcall.c")
RUNTIME_PREFIX = ".fastcall-"   # a dot folder: not a function's entry (`gencomp cache list` skips it)


def _key(compiler: str) -> str:
    import numpy as np

    h = hashlib.sha256(SOURCE.read_bytes())
    for part in (sys.version, sysconfig.get_config_var("EXT_SUFFIX") or "", np.__version__,
                 cc.compiler_identity(compiler)):
        h.update(part.encode())
    return RUNTIME_PREFIX + h.hexdigest()[:40]


_LOADED: dict = {}        # cache root -> the extension module, or None when it cannot be built
_BUILDS: dict = {}        # cache root -> the thread building it there


def load(root: Path, compiler: str, wait: bool = True):
    """The fastcall extension of cache folder `root`, or None. When it is not built yet, `wait=False`
    builds it on a background thread (a function works through the Python path meanwhile) and
    gives None; `loaded(root)` then tells when it is there."""
    if str(root) in _LOADED:
        return _LOADED[str(root)]
    entry = cache.read_entry(root, _key(compiler))
    if entry is not None:
        return _import(root, entry)
    thread = _BUILDS.get(str(root))
    if thread is None:
        # not a daemon: a process that ends meanwhile finishes the build (well under a second)
        # rather than leaving a half-built folder behind
        thread = _BUILDS[str(root)] = threading.Thread(target=_build_and_import, args=(root, compiler),
                                                       name="gencomp fastcall build")
        thread.start()
    if wait:
        thread.join()
        return _LOADED.get(str(root))
    return None


def loaded(root: Path):
    """The extension of `root` if it is loaded (or known not to build: None), else False."""
    return _LOADED.get(str(root), False)


def _build_and_import(root: Path, compiler: str) -> None:
    try:
        entry = cache.publish(root, _key(compiler), lambda folder: _build(folder, compiler))
    except (OSError, ImportError, cc.CompileError):
        _LOADED[str(root)] = None      # no headers or no compiler: the Python path does the same work
        return
    _import(root, entry)


def _import(root: Path, entry):
    try:
        path = str(entry.file("module"))
        spec = importlib.util.spec_from_file_location(
            "gencomp_fastcall", path, loader=importlib.machinery.ExtensionFileLoader("gencomp_fastcall", path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (OSError, ImportError):
        module = None
    _LOADED[str(root)] = module
    return module


def _build(folder: Path, compiler: str) -> dict:
    import numpy as np

    (folder / "fastcall.c").write_bytes(SOURCE.read_bytes())
    includes = [sysconfig.get_paths()["include"], np.get_include()]
    if not Path(includes[0], "Python.h").is_file():
        raise ImportError(f"Python.h not found in {includes[0]} (install the Python development headers)")
    cmd = [cc.compiler_path(compiler), "-O2", "-shared", "-fPIC", "-std=gnu11", "-Wall",
           *(f"-I{path}" for path in includes), "-o", "module.so", "fastcall.c"]
    seconds = cc.compile_library(cmd, folder)
    return {"name": "gencomp fastcall", "backend": "c", "command": shlex.join(cmd),
            "compile_seconds": round(seconds, 4), "files": {"source": "fastcall.c", "module": "module.so"}}
