"""`theano.compile.mode` under its Theano path (Mode, DebugMode, ... live in gencomp.mode)."""

from ..mode import FAST_COMPILE, FAST_RUN, DebugMode, Mode, MonitorMode, NanGuardMode, get_mode  # noqa: F401
