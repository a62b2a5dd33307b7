"""theano.scan_module's import path: `scan` and `until` (a step function's stop condition), for
programs that write `theano.scan_module.until(cond)` or `from theano.scan_module import until`.

A module, not a package, so that it ships with the `gencomp` package as it is listed."""

from .scan import scan, until
from .scan_op import Scan

__all__ = ["Scan", "scan", "until"]
