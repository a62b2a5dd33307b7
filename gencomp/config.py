"""User-facing configuration (Theano-style, mutable) and the immutable snapshot the compiler uses.

Only this module reads the environment (GENCOMP_FLAGS, GENCOMP_CACHE_DIR), once, at import.
`function()` takes `config.snapshot()` and passes it explicitly through the compiler.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

_CHOICES = {
    "floatX": ("float64", "float32"),
    "device": ("cpu", "cuda", "py"),
    "optimizer": ("fast_run", "fast_compile", "None"),
    "compute_test_value": ("off", "ignore", "warn", "raise"),
}
# -fwrapv: integer overflow wraps, as in numpy; -fopenmp-simd: `omp simd` loops vectorize even
# without OpenMP threads; -march=native: the cache key records the CPU, so entries stay local to it;
# -ffp-contract=off: no fused multiply-add, so results round exactly as numpy's;
# -mprefer-vector-width=512: on AVX-512 CPUs, loops calling vector math (libmvec tanh, exp...)
# take the 8-wide forms, ~1.6x faster than the 4-wide ones gcc picks by default (no effect elsewhere);
# -O2, not -O3: the loops that pay for vectorizing carry `omp simd` (vectorized at -O2 as well), and
# -O3 costs ~40% more compile time on a training step's module for 0-5% of its run time
# (bench/RESULTS.md, "Compile flags")
_DEFAULT_CFLAGS = ("-O2 -march=native -mprefer-vector-width=512 -ffp-contract=off -fPIC -shared -std=gnu11 "
                   "-fno-math-errno -fwrapv -fopenmp-simd -Wall -Wextra")


# Theano's flags that its programs set at the top (theano.config.exception_verbosity = 'high'...):
# not part of a compilation. name -> (allowed values, or bool; default). What each does here:
# mode / on_unused_input: function()'s defaults; warn_float64: function() warns about (or refuses)
# a float64 variable in its graph; exception_verbosity (gencomp's messages always name the shapes
# and the node), profile (no profiler), allow_gc (buffers are kept between calls, as allow_gc=False)
# and print_active_device are accepted and have no effect.
_THEANO_FLAGS = {
    "mode": (("Mode", "FAST_RUN", "FAST_COMPILE", "DebugMode", "DEBUG_MODE", "NanGuardMode"), "Mode"),
    "on_unused_input": (("raise", "warn", "ignore"), "raise"),
    "warn_float64": (("ignore", "warn", "raise", "pdb"), "ignore"),
    "exception_verbosity": (("low", "high"), "low"),
    "profile": (bool, False),
    "allow_gc": (bool, True),
    "print_active_device": (bool, True),
}


@dataclasses.dataclass(frozen=True)
class ConfigSnapshot:
    """What one compilation sees; never changes after `function()` took it."""

    floatX: str
    device: str
    cache_dir: str
    cc: str
    cflags: str
    openmp: bool
    optimizer: str
    threads: int
    # graph building, not compilation: Op.__call__ reads the live flag (see graph/testvalue.py)
    compute_test_value: str = "off"


def _parse_threads(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"config.threads must be a positive integer, got {value!r}")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"config.threads must be a positive integer, got {value!r}") from None
    if threads < 1:
        raise ValueError(f"config.threads must be a positive integer, got {value!r}")
    return threads


def default_threads() -> int:
    """The cores this process may run on (its CPU affinity), as OpenMP itself counts them."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _parse_bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"config flag {name!r} expects a boolean, got {value!r}")


@functools.lru_cache(maxsize=None)
def checkout_cache_dir() -> str | None:
    """The top-level cache/ of the checkout gencomp runs from, if it runs from one."""
    checkout_cache = Path(__file__).resolve().parent.parent / "cache"
    if (checkout_cache / "README.md").is_file() and (checkout_cache.parent / "pyproject.toml").is_file():
        return str(checkout_cache)
    return None


def default_cache_dir() -> str:
    """The checkout's top-level cache/ when running from a checkout, else the user cache folder."""
    if checkout_cache_dir() is not None:
        return checkout_cache_dir()
    import platformdirs

    return platformdirs.user_cache_dir("gencomp")


class Config:
    """gencomp.config: set attributes in code, or start from GENCOMP_FLAGS="floatX=float32,..."."""

    _FLAGS = tuple(f.name for f in dataclasses.fields(ConfigSnapshot))

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        object.__setattr__(self, "_values", {})
        self.floatX = "float64"
        self.device = "cpu"
        self.cc = "cc"
        self.cflags = _DEFAULT_CFLAGS
        self.openmp = True         # used only when the compiler supports it
        self.threads = default_threads()   # the most threads one loop uses (see threads.h.j2)
        self.optimizer = "fast_run"
        self.compute_test_value = "off"
        self._values.update({name: default for name, (_, default) in _THEANO_FLAGS.items()})
        self._values["cache_dir"] = None        # resolved lazily: the default may need platformdirs
        for item in filter(None, (s.strip() for s in environ.get("GENCOMP_FLAGS", "").split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"GENCOMP_FLAGS entry {item!r} is not of the form name=value")
            setattr(self, name.strip(), value.strip())
        if environ.get("GENCOMP_CACHE_DIR"):
            self.cache_dir = environ["GENCOMP_CACHE_DIR"]

    def __setattr__(self, name, value):
        if name in _THEANO_FLAGS:
            allowed = _THEANO_FLAGS[name][0]
            if allowed is bool:
                value = _parse_bool(name, value)
            elif value not in allowed:
                raise ValueError(f"config.{name} must be one of {allowed}, got {value!r}")
            self._values[name] = value
            return
        if name == "device" and isinstance(value, str) and re.fullmatch(r"(gpu|cuda)\d*", value):
            value = "cuda"          # Theano's device names: 'gpu' (old backend), 'cuda0', 'cuda1'...
        if name not in self._FLAGS:
            raise AttributeError(f"unknown gencomp config flag {name!r}; known flags: "
                                 f"{', '.join(self._FLAGS + tuple(_THEANO_FLAGS))}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"config.{name} must be one of {_CHOICES[name]}, got {value!r}")
        if name == "openmp":
            value = _parse_bool(name, value)
        elif name == "threads":
            value = _parse_threads(value)
        elif name == "cache_dir" and value is not None:
            value = os.path.abspath(os.path.expanduser(os.fspath(value)))
        elif not isinstance(value, str):
            raise TypeError(f"config.{name} must be a string, got {value!r}")
        self._values[name] = value

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        if name not in values:
            raise AttributeError(f"unknown gencomp config flag {name!r}")
        if name == "cache_dir" and values[name] is None:
            values[name] = default_cache_dir()
        return values[name]

    def __repr__(self):
        return "Config(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self._FLAGS) + ")"

    def change(self, **flags) -> "_Restore":
        """Set flags now; used as `with config.change(...):` they are restored on exit."""
        restore = _Restore(self, dict(self._values))
        try:
            for name, value in flags.items():
                setattr(self, name, value)
        except Exception:
            restore.__exit__(None, None, None)
            raise
        return restore

    def snapshot(self, **overrides) -> ConfigSnapshot:
        values = {name: getattr(self, name) for name in self._FLAGS}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return ConfigSnapshot(**values)



class _Restore:
    """Context manager returned by Config.change: puts the saved flags back."""

    def __init__(self, cfg: Config, saved: dict):
        self._cfg, self._saved = cfg, saved

    def __enter__(self):
        return self._cfg

    def __exit__(self, *exc):
        self._cfg._values.clear()
        self._cfg._values.update(self._saved)
        return False


config = Config()
