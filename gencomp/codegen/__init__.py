"""Code generation: lower the optimized graph to a Plan, then render it through templates/."""

from __future__ import annotations

import functools
from pathlib import Path


def templates_dir() -> Path:
    """templates/ of the checkout, or gencomp/templates of an installed copy."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "c" / "module.c.j2").is_file():
            return candidate
    raise FileNotFoundError(f"gencomp templates not found next to {here}")


@functools.lru_cache(maxsize=None)
def environment():
    """The one Jinja2 environment: strict about undefined names, no autoescaping (it is C)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
