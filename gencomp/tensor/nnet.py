"""gencomp.tensor.nnet: the neural-network functions Theano kept under T.nnet."""

from .math import relu, sigmoid, softplus  # noqa: F401

__all__ = ["relu", "sigmoid", "softplus"]
