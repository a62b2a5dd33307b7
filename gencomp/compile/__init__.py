"""Compilation and caching: the content-addressed disk cache and the C compiler driver.

Theano's `theano.compile` also held the function driver and the modes; those names resolve here
lazily (gencomp.function and gencomp.mode import this package, so it must not import them first).
"""

_LAZY = {"function": "function", "In": "function", "Out": "function", "Function": "function",
         "SharedVariable": "sharedvar", "shared": "sharedvar",
         "Mode": "mode", "DebugMode": "mode", "MonitorMode": "mode", "NanGuardMode": "mode",
         "FAST_RUN": "mode", "FAST_COMPILE": "mode", "get_mode": "mode"}


def __getattr__(name):
    import importlib

    if name == "mode":                     # theano.compile.mode.Mode
        return importlib.import_module("gencomp.mode")
    if name in _LAZY:
        return getattr(importlib.import_module(f"gencomp.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gencomp.compile' has no attribute {name!r}")
