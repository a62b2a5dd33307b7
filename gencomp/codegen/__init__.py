"""Code generation: lower the optimized graph to a Plan, then render it through templates/."""

from __future__ import annotations

import functools
import hashlib
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
    Compiling the templates costs a new process ~0.15 s: Jinja2 keeps the compiled code in the
    compile cache's .templates folder (keyed by each template's source and Jinja2's version)."""
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
    from ..config import config

    folder = Path(config.cache_dir) / TEMPLATES_CACHE
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:                   # a read-only cache: templates compile in memory
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """SHA-256 of gencomp's own sources and templates: any change to the compiler changes every key."""
    from .. import __version__

    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    sources = [p for p in package.rglob("*.py") if p.name not in _NOT_CODEGEN]
    for path in sorted([*sources, *templates_dir().rglob("*.j2")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def key_parts(fgraph) -> list:
    """What a module's cache key covers besides its compiler: gencomp's code and the graph."""
    from ..graph.hashing import canonical_lines

    return ["gencomp", code_fingerprint(), *canonical_lines(fgraph)]
