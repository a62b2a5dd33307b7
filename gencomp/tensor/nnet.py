"""gencomp.tensor.nnet: the neural-network functions Theano kept under T.nnet, in numerically stable forms."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..graph import Apply, Op
from .math import (arange, as_tensor_variable, log, mean, relu, sigmoid, softplus,  # noqa: F401
                   sum as sum_)
from .subtensor import getitem
from .type import TensorType


class Softmax(Op):
    """exp(x - max) / sum(exp(x - max)) along `axis`, computed stably (the max is subtracted first)."""

    def __init__(self, axis: int, log: bool = False):
        self.axis, self.log = int(axis), bool(log)

    def signature(self):
        return f"{'LogSoftmax' if self.log else 'Softmax'}{{axis={self.axis}}}"

    def __reduce__(self):
        return Softmax, (self.axis, self.log)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not dtypes.is_float(x.dtype):
            from .math import cast

            x = cast(x, "float64")
        if not 0 <= self.axis < max(x.ndim, 1):
            raise ValueError(f"{self}: axis out of range for a {x.ndim}-d tensor")
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        (x,) = inputs
        # an empty axis raises numpy's ValueError (no maximum), as the compiled kernels do
        shifted = x - np.max(x, axis=self.axis, keepdims=True)
        with np.errstate(all="ignore"):
            if self.log:
                out = shifted - np.log(np.sum(np.exp(shifted), axis=self.axis, keepdims=True))
            else:
                e = np.exp(shifted)
                out = e / np.sum(e, axis=self.axis, keepdims=True)
        return [np.asarray(out, dtype=x.dtype)]

    def grad(self, inputs, output_grads, outputs):
        from .math import exp

        (g,), (out,) = output_grads, outputs
        if self.log:
            return [g - exp(out) * sum_(g, axis=self.axis, keepdims=True)]
        return [(g - sum_(g * out, axis=self.axis, keepdims=True)) * out]


def _axis(x, axis):
    x = as_tensor_variable(x)
    if x.ndim == 1 and axis in (0, -1):
        # Theano's Softmax turns a vector into a (1, n) row: programs index s[:, 0, :] on a scan of it
        from .math import shape_padleft

        return shape_padleft(x), 1
    return x, (axis + x.ndim if axis < 0 else axis)


def softmax(x, axis=-1):
    """Softmax over `axis` (the last one by default, as Theano's); a vector gives a (1, n) row."""
    x, axis = _axis(x, axis)
    return Softmax(axis)(x)


def log_softmax(x, axis=-1):
    """log(softmax(x)) computed without overflow; a vector gives a (1, n) row, as softmax."""
    x, axis = _axis(x, axis)
    return Softmax(axis, log=True)(x)


def _owner_is(var, op_type, **attrs):
    node = var.owner
    return node is not None and isinstance(node.op, op_type) and all(
        getattr(node.op, k) == v for k, v in attrs.items())


def categorical_crossentropy(coding_dist, true_dist):
    """-sum(true_dist * log(coding_dist), axis=-1), or -log(coding_dist[i, true_dist[i]]) for int labels.

    When `coding_dist` is a softmax, its log is taken as log_softmax, so large logits stay finite.
    """
    coding_dist, true_dist = as_tensor_variable(coding_dist), as_tensor_variable(true_dist)
    if _owner_is(coding_dist, Softmax, log=False):
        node = coding_dist.owner
        log_p = Softmax(node.op.axis, log=True)(node.inputs[0])
    else:
        log_p = log(coding_dist)
    if dtypes.is_integer(true_dist.dtype):
        if true_dist.ndim != 1 or coding_dist.ndim != 2:
            raise TypeError("integer labels must be a vector indexing the rows of a matrix of probabilities")
        from .shape import shape_i

        rows = arange(shape_i(log_p, 0))
        return -getitem(log_p, (rows, true_dist))
    return -sum_(true_dist * log_p, axis=-1)


def binary_crossentropy(output, target):
    """-(target * log(output) + (1 - target) * log(1 - output)); stable when `output` is a sigmoid."""
    output, target = as_tensor_variable(output), as_tensor_variable(target)
    node = output.owner
    if node is not None and getattr(getattr(node.op, "scalar", None), "name", None) == "sigmoid":
        x = node.inputs[0]
        return target * softplus(-x) + (1 - target) * softplus(x)
    return -(target * log(output) + (1 - target) * log(1 - output))


def sigmoid_binary_crossentropy(logits, target):
    """binary_crossentropy(sigmoid(logits), target), computed from the logits."""
    return binary_crossentropy(sigmoid(logits), target)


def crossentropy_categorical_1hot(coding_dist, true_idx):
    return categorical_crossentropy(coding_dist, true_idx)


__all__ = ["relu", "sigmoid", "softplus", "softmax", "log_softmax", "categorical_crossentropy",
           "binary_crossentropy", "sigmoid_binary_crossentropy", "crossentropy_categorical_1hot", "Softmax"]
_ = TensorType


def hard_sigmoid(x):
    """Theano's piecewise-linear sigmoid: clip(0.2 * x + 0.5, 0, 1)."""
    from .math import clip

    return clip(0.2 * as_tensor_variable(x) + 0.5, 0, 1)


def ultra_fast_sigmoid(x):
    """Theano's fast approximation of the sigmoid; here the exact sigmoid, which the generated
    loops compute at nearly the same speed (and is more accurate)."""
    return sigmoid(x)


from . import conv  # noqa: E402,F401  (theano.tensor.nnet.conv.conv2d, the older path)
from .conv import conv2d  # noqa: E402,F401  (theano.tensor.nnet.conv2d)


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1) (Theano's nnet.elu)."""
    from .math import expm1, switch

    x = as_tensor_variable(x)
    return switch(x > 0, x, alpha * expm1(x))


def selu(x):
    """Scaled ELU with the self-normalizing constants (Theano's nnet.selu)."""
    return 1.0507009873554805 * elu(x, 1.6732632423543772)


def softsign(x):
    """x / (1 + |x|) (Theano's nnet.softsign)."""
    x = as_tensor_variable(x)
    return x / (1 + abs(x))
