"""The C call path of compiled functions (fastcall.c): built once per cache folder, loaded on demand.

A call through cffi's ABI mode costs a few microseconds of Python (argument conversion, pointers,
output allocation); fastcall.c does the same work in C for the common case, so `f(1.0, 2.0)` costs
little more than numpy's own `np.add`. It is a small CPython extension compiled with the same C
compiler as the modules, against this Python's and numpy's headers, and cached beside them under a
key of its source and of those versions. Without headers or a compiler, `load()` gives None and
calls take the Python path.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import shlex
import sys
import sysconfig
from pathlib import Path

from . import cache, cc

SOURCE = Path(__file__).with_name("fastcall.c")
RUNTIME_PREFIX = ".fastcall-"   # a dot folder: not a function's entry (`gencomp cache list` skips it)
_LOADED: dict = {}        # cache root -> the extension module, or None when it cannot be built


def _key(compiler: str) -> str:
    import numpy as np

    h = hashlib.sha256(SOURCE.read_bytes())
    for part in (sys.version, sysconfig.get_config_var("EXT_SUFFIX") or "", np.__version__,
                 cc.compiler_identity(compiler)):
        h.update(part.encode())
    return RUNTIME_PREFIX + h.hexdigest()[:40]


def load(root: Path, compiler: str):
    """The fastcall extension for cache folder `root` (built there the first time), or None."""
    if str(root) in _LOADED:
        return _LOADED[str(root)]
    module = None
    try:
        entry = cache.read_entry(root, _key(compiler))
        if entry is None:
            entry = cache.publish(root, _key(compiler), lambda folder: _build(folder, compiler))
        spec = importlib.util.spec_from_file_location(
            "gencomp_fastcall", entry.file("module"),
            loader=importlib.machinery.ExtensionFileLoader("gencomp_fastcall", str(entry.file("module"))))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (OSError, ImportError, cc.CompileError):
        module = None          # no headers or no compiler: the Python path does the same work
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
