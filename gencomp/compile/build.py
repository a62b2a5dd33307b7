"""Build or load a compiled C module through the disk cache: source text in, loaded library out."""

from __future__ import annotations

import datetime
import functools
import shlex
from pathlib import Path

from ..config import checkout_cache_dir
from ..graph.hashing import sha256_key
from . import cache, cc

_LOADED: dict = {}        # (cache root, key) -> (entry, ffi, fn): one dlopen per process


def cache_key(parts: list, snapshot, backend: str = "c") -> str:
    """The key of a module: `parts` (what the caller compiles: gencomp's code fingerprint and the
    canonical graph) with the backend, compiler, CPU and flags that build it."""
    compiler = cc.compiler_identity(snapshot.cc)
    return sha256_key([f"backend={backend}", compiler, cc.cpu_identity(), f"cflags={snapshot.cflags}",
                       f"openmp={snapshot.openmp}", *parts])


def build_c(key_parts: list, snapshot, render):
    """(entry, ffi, library, cache_hit) of a module, compiling it only when the cache lacks it.

    `render(key, parallel)` gives the module as (files {name: text} with "module.c", cdef
    declarations of its entry points, meta {...} to store); it is called on a cache miss only.
    """
    key = cache_key(key_parts, snapshot, "c")
    root = cache.ensure_root(snapshot.cache_dir, owned_default=snapshot.cache_dir == checkout_cache_dir())
    loaded = _LOADED.get((str(root), key))
    if loaded is not None and (loaded[0].path / cache.META).is_file():
        return (*loaded, True)
    entry = cache.read_entry(root, key)
    hit = entry is not None
    if entry is None:
        entry = cache.publish(root, key, functools.partial(_build_entry, snapshot=snapshot, key=key, render=render))
    else:
        cache.touch(entry)
    if "-fopenmp" in shlex.split(entry.meta.get("command", "")):      # built with OpenMP
        cc.load_openmp_runtime()
    ffi, lib = cc.load_library(entry.file("ffi"), entry.file("module"))
    _LOADED[(str(root), key)] = (entry, ffi, lib)
    return entry, ffi, lib, hit


def _build_entry(folder: Path, snapshot, key, render) -> dict:
    parallel = snapshot.openmp and cc.supports_openmp(snapshot.cc)
    files, cdef, meta = render(key, parallel)
    for file_name, text in files.items():
        (folder / file_name).write_text(text, encoding="utf-8")
    sources = ["module.c"] + sorted(n for n in files if n.endswith(".c") and n != "module.c")
    if len(sources) == 1:
        cmd = cc.command(snapshot.cc, snapshot.cflags, snapshot.openmp, "module.c", output="module.so")
        seconds = cc.compile_library(cmd, folder)
    else:                           # translation units compiled at once, then linked
        cmd, seconds = cc.compile_parallel(snapshot.cc, snapshot.cflags, snapshot.openmp, sources, "module.so", folder)
    cc.write_ffi_module(cdef, folder / "ffi.py")
    return {
        **meta,
        "backend": "c",
        "signature": cdef,
        "command": shlex.join(cmd),
        "compile_seconds": round(seconds, 4),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": {"source": "module.c", "module": "module.so", "ffi": "ffi.py",
                  **{n: n for n in files if n != "module.c"}},
    }
