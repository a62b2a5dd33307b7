"""theano.tensor.nnet.abstract_conv's names for ported programs: conv2d and its two gradients as
functions (conv2d_grad_wrt_inputs, the transposed convolution, and conv2d_grad_wrt_weights)."""

from .conv import conv2d, conv2d_grad_wrt_inputs, conv2d_grad_wrt_weights, conv2d_transpose  # noqa: F401

__all__ = ["conv2d", "conv2d_grad_wrt_inputs", "conv2d_grad_wrt_weights", "conv2d_transpose"]
