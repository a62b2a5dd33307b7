"""Code generation: lower the optimized graph to a Plan, then render it through templates/."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

_NOT_CODEGEN = {"cli.py", "demo.py", "__main__.py"}     # cannot change what gets compiled


def templates_dir() -> Path:
    """templates/ of the checkout, or gencomp/templates of an installed copy."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "c" / "module.c.j2").is_file():
            return candidate
    raise FileNotFoundError(f"gencomp templates not found next to {here}")


TEMPLATES_CACHE = ".templates"     # a dot folder of the compile cache: Jinja2's compiled templates


@functools.lru_cache(maxsize=None)
def environment():
    """The one Jinja2 environment: strict about undefined names, no autoescaping (it is C).
    Compiling the templates costs a new process ~0.15 s: Jinja2 keeps the compiled code (keyed by
    each template's source and Jinja2's version) as Python keeps .pyc files (_bytecode_cache)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        bytecode_cache=_bytecode_cache(jinja2),
    )


def _bytecode_cache(jinja2):
    """Beside the templates (__pycache__, as Python keeps its own bytecode) where that folder is
    writable, else in the compile cache; None (compiled in memory) when neither is."""
    from ..config import config

    for folder in (templates_dir() / "__pycache__", Path(config.cache_dir) / TEMPLATES_CACHE):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return jinja2.FileSystemBytecodeCache(str(folder))
    return None


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


FINGERPRINTS = ".fingerprints"   # a dot folder of the compile cache: code_fingerprint() by file stamps


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """SHA-256 of gencomp's own sources and templates: any change to the compiler changes every key.

    Reading and hashing ~100 files costs a new process ~5 ms, half of a warm function(): the
    result is kept in the compile cache under a digest of the files' names, sizes and modification
    times, so a process reads only their stamps while none of them changed."""
    from .. import __version__

    package = Path(__file__).resolve().parent.parent
    found = sorted([*_files(str(package), ".py"), *_files(str(templates_dir()), ".j2")])
    found = [f for f in found if os.path.basename(f[0]) not in _NOT_CODEGEN]
    paths = [Path(f[0]) for f in found]
    stamps = hashlib.sha256(__version__.encode())
    stamps.update("".join(f"{name}|{size}|{mtime}\n" for name, size, mtime in found).encode())
    memo = _fingerprint_file(stamps.hexdigest()[:40])
    try:
        known = memo.read_text() if memo is not None else ""
    except OSError:
        known = ""
    if len(known) == 64:
        return known
    h = hashlib.sha256(__version__.encode())
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    digest = h.hexdigest()
    if memo is not None:
        try:
            from ..compile.cache import ensure_root
            from ..config import checkout_cache_dir

            # the cache folder made as build_c makes it (private, checked), not by mkdir's parents
            ensure_root(memo.parent.parent, owned_default=str(memo.parent.parent) == checkout_cache_dir())
            memo.parent.mkdir(mode=0o700, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
            tmp.write_text(digest)
            os.replace(tmp, memo)               # atomic: a reader sees all of it or nothing
        except OSError:                         # a read-only cache: computed again next time
            pass
    return digest


def _files(folder: str, suffix: str) -> list:
    """(path, size, modification time) of the files under `folder` whose names end with `suffix`."""
    found, stack = [], [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(suffix):
                    st = entry.stat()
                    found.append((entry.path, st.st_size, st.st_mtime_ns))
    return found


def _fingerprint_file(stamp: str):
    from ..config import config

    try:
        return Path(config.cache_dir) / FINGERPRINTS / stamp
    except (TypeError, OSError):
        return None


def key_parts(fgraph) -> list:
    """What a module's cache key covers besides its compiler: gencomp's code and the graph."""
    from ..graph.hashing import canonical_lines

    return ["gencomp", code_fingerprint(), *canonical_lines(fgraph, for_key=True)]
