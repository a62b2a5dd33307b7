"""Build or load the compiled module of a lowered function graph, through the disk cache."""

from __future__ import annotations

import datetime
import functools
import hashlib
import shlex
from pathlib import Path

from ..config import checkout_cache_dir
from ..graph.hashing import canonical_lines, sha256_key
from . import cache, cc

_LOADED: dict = {}        # (cache root, key) -> (entry, ffi, fn): one dlopen per process


_NOT_CODEGEN = {"cli.py", "demo.py", "__main__.py"}     # cannot change what gets compiled


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """SHA-256 of gencomp's own sources and templates: any change to the compiler changes every key."""
    from .. import __version__
    from ..codegen import templates_dir

    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    sources = [p for p in package.rglob("*.py") if p.name not in _NOT_CODEGEN]
    for path in sorted([*sources, *templates_dir().rglob("*.j2")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(fgraph, snapshot, backend: str) -> str:
    compiler = cc.compiler_identity(snapshot.cc)
    return sha256_key(["gencomp", code_fingerprint(), f"backend={backend}", compiler, cc.cpu_identity(),
                       f"cflags={snapshot.cflags}", f"openmp={snapshot.openmp}",
                       *canonical_lines(fgraph)])


def build_c(fgraph, plan, snapshot, name: str, graph_text: list):
    """(entry, ffi, library, cache_hit) for `plan`, compiling it only when the cache lacks it."""
    key = cache_key(fgraph, snapshot, "c")
    root = cache.ensure_root(snapshot.cache_dir, owned_default=snapshot.cache_dir == checkout_cache_dir())
    loaded = _LOADED.get((str(root), key))
    if loaded is not None and (loaded[0].path / cache.META).is_file():
        return (*loaded, True)
    entry = cache.read_entry(root, key)
    hit = entry is not None
    if entry is None:
        entry = cache.publish(root, key, functools.partial(
            _build_entry, plan=plan, snapshot=snapshot, key=key, name=name, graph_text=graph_text))
    else:
        cache.touch(entry)
    if snapshot.openmp and cc.supports_openmp(snapshot.cc):
        cc.load_openmp_runtime()
    ffi, lib = cc.load_library(entry.file("ffi"), entry.file("module"))
    _LOADED[(str(root), key)] = (entry, ffi, lib)
    return entry, ffi, lib, hit


def _build_entry(folder: Path, plan, snapshot, key, name, graph_text) -> dict:
    from ..codegen.c import render_module

    parallel = snapshot.openmp and cc.supports_openmp(snapshot.cc)
    source, cdef, errors, entry_points = render_module(plan, key, name, graph_text, parallel=parallel)
    (folder / "module.c").write_text(source, encoding="utf-8")
    cmd = cc.command(snapshot.cc, snapshot.cflags, snapshot.openmp, "module.c", "module.so")
    seconds = cc.compile_library(cmd, folder)
    cc.write_ffi_module(cdef, folder / "ffi.py")
    return {
        "name": name,
        "backend": "c",
        "graph": graph_text,
        "signature": cdef,
        "command": shlex.join(cmd),
        "compile_seconds": round(seconds, 4),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "errors": [["step", e.step] if not hasattr(e, "arg") else
                   [e.arg, e.dim, list(e.source) if e.source else None, e.output] for e in errors],
        "entry_points": entry_points,
        "files": {"source": "module.c", "module": "module.so", "ffi": "ffi.py"},
    }
