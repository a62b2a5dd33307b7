"""theano.tensor.sharedvar's import path for ported programs: shared tensor variables
(TensorSharedVariable, as isinstance checks of Theano code name them)."""

from ..sharedvar import SharedVariable, shared  # noqa: F401

TensorSharedVariable = SharedVariable
tensor_constructor = shared

__all__ = ["SharedVariable", "TensorSharedVariable", "shared", "tensor_constructor"]
