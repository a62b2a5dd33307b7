"""theano.tensor.var's import path for ported programs: TensorVariable and TensorConstant."""

from .variable import TensorConstant, TensorVariable, as_tensor_variable  # noqa: F401

__all__ = ["TensorConstant", "TensorVariable", "as_tensor_variable"]
