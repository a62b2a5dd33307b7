"""The `gencomp` command: inspect and clean the compile cache, report the toolchain, run the demo.

    gencomp cache dir | list | show KEY | clear [--yes] | prune [--max-size SIZE] [--older-than AGE]
    gencomp info | demo

Sizes read like 500M, 2G, 1024 (bytes; 1K = 1024), ages like 30d, 12h, 15m, 45s, 2w. Exit status:
0 done, 1 failed or declined (unknown key, unsafe cache folder, 'no' to clear), 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time

from . import __version__
from .compile import cache, cc
from .config import checkout_cache_dir, config

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_AGE_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


class CliError(Exception):
    """A failure reported as one line on stderr, with exit status `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# ---- reading and writing quantities ------------------------------------------------------

def _quantity(text: str, pattern, units: dict, example: str) -> float:
    match = pattern.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}; expected e.g. {example}")
    return float(match[1]) * units[match[2].lower()]


def parse_size(text: str) -> int:
    """'500M' -> 524288000 bytes (binary multiples; a bare number is bytes)."""
    return int(_quantity(text, _SIZE, _SIZE_UNITS, "500M, 2G, 100K or 1024 (bytes)"))


def parse_age(text: str) -> float:
    """'12h' -> 43200.0 seconds (units s, m, h, d, w)."""
    return _quantity(text, _AGE, _AGE_UNITS, "30d, 12h, 15m, 45s or 2w")


def human_size(n: float) -> str:
    """12K, 3.4M: one decimal below 10, none above; bytes as 512B."""
    for unit in "BKMGT":
        text = f"{n:.1f}" if unit != "B" and n < 9.95 else f"{n:.0f}"
        if float(text) < 1024 or unit == "T":
            return text + unit
        n /= 1024


def human_age(seconds: float) -> str:
    """5s, 3m, 2h, 4d: whole units, the largest that fits."""
    for unit in "dhm":
        if seconds >= _AGE_UNITS[unit]:
            return f"{int(seconds // _AGE_UNITS[unit])}{unit}"
    return f"{max(int(seconds), 0)}s"


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _summary(entries) -> str:
    return f"{_entries(len(entries))}, {human_size(sum(e.size for e in entries))}"


def _print_fields(fields) -> None:
    for label, value in fields:
        print(f"{label + ':':<13}{value}")


# ---- gencomp cache ... -------------------------------------------------------------------

def _root():
    return cache.ensure_root(config.cache_dir, owned_default=config.cache_dir == checkout_cache_dir())


def cmd_list(args) -> int:
    root, now = _root(), time.time()
    entries = cache.list_entries(root)
    if not entries:
        print(f"cache is empty ({root})")
        return 0
    width = max(4, *(len(e.name) for e in entries))
    print(f"{'KEY':<12}  {'NAME':<{width}}  BACKEND  {'SIZE':>6}  {'AGE':>4}")
    for e in entries:
        name = e.name if e.valid else "(no metadata)"
        print(f"{e.key[:12]:<12}  {name:<{width}}  {e.backend:<7}  {human_size(e.size):>6}  "
              f"{human_age(now - e.mtime):>4}")
    print(f"{_summary(entries)} in {root}")
    return 0


def _find_one(root, prefix: str) -> cache.EntryInfo:
    matches = cache.find(root, prefix) if prefix else []
    if not matches:
        raise CliError(f"no cache entry matches {prefix!r} in {root} (see `gencomp cache list`)")
    if len(matches) > 1:
        listing = "".join(f"\n  {e.key[:16]}  {e.name}" for e in matches)
        raise CliError(f"{prefix!r} is ambiguous; it matches {_entries(len(matches))}:{listing}")
    return matches[0]


def cmd_show(args) -> int:
    entry = _find_one(_root(), args.key.strip().lower())
    try:
        meta = json.loads((entry.path / cache.META).read_text(encoding="utf-8"))
        source_name = meta["files"]["source"]
        source = (entry.path / source_name).read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"cache entry {entry.key[:12]} is incomplete ({exc}); "
                       f"the next compile of its function rebuilds it") from None
    if not args.source_only:
        _print_fields([("key", entry.key),
                       *((f, meta.get(f, "?")) for f in ("name", "backend", "created")),
                       ("compile", f"{meta.get('compile_seconds', '?')} s"),
                       *((f, meta.get(f, "?")) for f in ("command", "signature")),
                       ("folder", entry.path), ("size", human_size(entry.size))])
        print("graph:")
        for line in meta.get("graph", ["?"]):
            print("  " + line)
        print(f"----- {source_name} -----")
    sys.stdout.write(source if source.endswith("\n") or not source else source + "\n")
    return 0


def _confirm(question: str) -> bool:
    """Ask on stdin; only 'y' or 'yes' is yes (end of input, or no stdin, is no)."""
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):
        answer = ""
    if not answer.endswith("\n"):
        print()
    return answer.strip().lower() in ("y", "yes")


def cmd_clear(args) -> int:
    root = _root()
    count = len(cache.list_entries(root))
    if count == 0:
        print(f"cache is empty ({root})")
        return 0
    if not args.yes and not _confirm(f"Delete {_entries(count)} in {root}?"):
        print("nothing deleted (pass --yes to skip the question)")
        return 1
    print(f"removed {_entries(cache.remove_all(root))} from {root}")
    return 0


def cmd_prune(args) -> int:
    if args.max_size is None and args.older_than is None:
        raise CliError("cache prune needs --max-size SIZE and/or --older-than AGE", code=2)
    root = _root()
    before = {e.key: e for e in cache.list_entries(root)}
    removed = cache.prune(root, max_size=args.max_size, older_than=args.older_than)
    for e in (before[key] for key in removed):
        age = human_age(time.time() - e.mtime)
        print(f"removed {e.key[:12]}  {e.name}  {human_size(e.size)}  (unused for {age})")
    freed = sum(before[k].size for k in removed)
    kept = sum(e.size for k, e in before.items() if k not in removed)
    print(f"removed {_entries(len(removed))} ({human_size(freed)}); "
          f"kept {_entries(len(before) - len(removed))} ({human_size(kept)}) in {root}")
    return 0


# ---- gencomp info / demo -----------------------------------------------------------------

def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(path: str, line: int) -> str:
    """One line (0 first, -1 last) of `path --version`, or why it could not be read."""
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[line].strip() if lines else "unknown"


def _cache_status() -> str:
    try:
        return f"{config.cache_dir} ({_summary(cache.list_entries(_root()))})"
    except cache.CacheDirError as exc:
        return f"{config.cache_dir} (refused: {exc})"


def _compiler_rows() -> list[tuple[str, str]]:
    try:
        path = cc.compiler_path(config.cc)
    except cc.CompilerNotFoundError as exc:
        return [("C compiler", f"not found: {exc}")]
    return [("C compiler", f"{path}  ({_tool_version(path, 0)})"),
            ("OpenMP", "yes" if cc.supports_openmp(config.cc) else "no")]


def _cuda_device() -> str:
    try:
        import pycuda.driver as drv
    except ImportError:
        return "none (pycuda not installed)"
    try:
        drv.init()
        dev = drv.Device(0)
        major, minor = dev.compute_capability()
        return f"{dev.name()} (compute {major}.{minor}, {human_size(dev.total_memory())})"
    except Exception as exc:  # pycuda has its own error types for a missing driver or device
        first_line = str(exc).strip().partition("\n")[0]
        return f"none ({type(exc).__name__}: {first_line})"


def cmd_info(args) -> int:
    nvcc = shutil.which("nvcc")
    python = f"{sys.version.split()[0]} ({sys.executable})"
    _print_fields([("gencomp", __version__), ("Python", python),
                   *((name, _package_version(name)) for name in ("numpy", "cffi", "jinja2")),
                   ("cache", _cache_status()), *_compiler_rows(),
                   ("nvcc", f"{nvcc}  ({_tool_version(nvcc, -1)})" if nvcc else "not found"),
                   ("CUDA device", _cuda_device())])
    return 0


def cmd_demo(args) -> int:
    from . import demo

    return int(demo.main() or 0)


# ---- argument parsing --------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit status 2), not the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gencomp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gencomp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{cache,info,demo}")
    cache_parser = commands.add_parser("cache", help="inspect or clean the compile cache")
    actions = cache_parser.add_subparsers(dest="action", required=True,
                                          metavar="{dir,list,show,clear,prune}")
    actions.add_parser("dir", help="print the cache folder").set_defaults(
        run=lambda args: print(config.cache_dir))
    actions.add_parser("list", help="one line per entry, newest first").set_defaults(run=cmd_list)
    show = actions.add_parser("show", help="an entry's metadata and generated source")
    show.add_argument("key", help="a key or a unique prefix of one")
    show.add_argument("--source-only", action="store_true", help="print only the generated source")
    show.set_defaults(run=cmd_show)
    clear = actions.add_parser("clear", help="delete every entry (asks first)")
    clear.add_argument("--yes", "-y", action="store_true", help="do not ask")
    clear.set_defaults(run=cmd_clear)
    prune = actions.add_parser("prune", help="delete old entries, or the least recently used")
    prune.add_argument("--max-size", type=parse_size, metavar="SIZE",
                       help="remove the least recently used until the cache fits, e.g. 500M")
    prune.add_argument("--older-than", type=parse_age, metavar="AGE",
                       help="remove entries not used for AGE, e.g. 30d, 12h")
    prune.set_defaults(run=cmd_prune)
    commands.add_parser("info", help="versions, compilers, CUDA device").set_defaults(run=cmd_info)
    commands.add_parser("demo", help="compile and run an example").set_defaults(run=cmd_demo)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:                  # --help, --version and usage errors, already printed
        return exc.code or 0
    try:
        return args.run(args) or 0
    except (CliError, cache.CacheDirError) as exc:
        print(f"gencomp: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, CliError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:                    # e.g. `gencomp cache show KEY | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
