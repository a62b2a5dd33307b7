"""theano.compile.sharedvalue's import path for ported programs: shared and SharedVariable."""

from ..sharedvar import SharedVariable, shared  # noqa: F401

__all__ = ["SharedVariable", "shared"]
