"""`theano.compile.nanguardmode.NanGuardMode` under its Theano path (it lives in gencomp.mode)."""

from ..mode import NanGuardMode

__all__ = ["NanGuardMode"]
