"""gencomp.tensor.nnet: the neural-network functions Theano kept under T.nnet, in numerically stable forms."""

from __future__ import annotations

import sys
import types

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


from . import abstract_conv, conv  # noqa: E402,F401  (theano.tensor.nnet.conv.conv2d, the older path)
from .conv import conv2d, conv2d_transpose  # noqa: E402,F401  (theano.tensor.nnet.conv2d)

logsoftmax = log_softmax      # Theano 0.9's name


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


# ---- Theano's crossentropy-softmax family, h_softmax and nnet.bn -------------------------------------

def _one_hot_args(x, b, y_idx):
    x, y_idx = as_tensor_variable(x), as_tensor_variable(y_idx)
    if x.ndim != 2:
        raise TypeError(f"x must be a matrix (one row of logits per example), got {x.type}")
    if y_idx.ndim != 1 or not dtypes.is_integer(y_idx.dtype):
        raise TypeError(f"y_idx must be a vector of integer class indices, got {y_idx.type}")
    if b is not None:
        b = as_tensor_variable(b)
        if b.ndim != 1:
            raise TypeError(f"b must be a vector (one bias per class), got {b.type}")
        x = x + b.dimshuffle("x", 0)
    return x, y_idx


def softmax_with_bias(x, b):
    """softmax(x + b) of a matrix x and a bias vector b (Theano's nnet.softmax_with_bias)."""
    x, _ = _one_hot_args(x, b, np.zeros(0, np.int64))
    return Softmax(1)(x)


def crossentropy_softmax_argmax_1hot_with_bias(x, b, y_idx):
    """(nll, sm, am) of logits x + b: nll[i] = -log(softmax(x + b)[i, y_idx[i]]) (from log_softmax,
    so large logits stay finite), sm the softmax, am the argmax of each row (y_idx's dtype)."""
    from .math import argmax, cast
    from .shape import shape_i

    z, y_idx = _one_hot_args(x, b, y_idx)
    nll = -getitem(Softmax(1, log=True)(z), (arange(shape_i(z, 0)), y_idx))
    return nll, Softmax(1)(z), cast(argmax(z, axis=1), y_idx.dtype)


def crossentropy_softmax_1hot_with_bias(x, b, y_idx):
    """(nll, softmax) of logits x + b against the class indices y_idx (see the argmax form)."""
    return crossentropy_softmax_argmax_1hot_with_bias(x, b, y_idx)[:2]


def crossentropy_softmax_1hot(x, y_idx):
    """(nll, softmax) of the logits x against the class indices y_idx (no bias)."""
    z, y_idx = _one_hot_args(x, None, y_idx)
    return crossentropy_softmax_argmax_1hot_with_bias(z, None, y_idx)[:2]


def h_softmax(x, batch_size, n_outputs, n_classes, n_outputs_per_class, W1, b1, W2, b2, target=None):
    """Theano's two-level hierarchical softmax: P(output) = P(class) P(output | class), the outputs
    split into n_classes classes of n_outputs_per_class. W1 (dim, n_classes), b1 (n_classes,),
    W2 (n_classes, dim, n_outputs_per_class), b2 (n_classes, n_outputs_per_class). Without `target`,
    every output's probability, (batch_size, n_outputs); with it (integer, one per example), the
    probability of each example's target, (batch_size,)."""
    from .math import dot, matmul, tensordot

    x = as_tensor_variable(x)
    class_probs = softmax(dot(x, W1) + b1)
    if target is None:
        activations = tensordot(x, W2, (1, 1)) + b2
        output_probs = softmax(activations.reshape((-1, n_outputs_per_class)))
        output_probs = output_probs.reshape((batch_size, n_classes, -1))
        output_probs = class_probs.dimshuffle(0, 1, "x") * output_probs
        return output_probs.reshape((batch_size, -1))[:, :n_outputs]
    target = as_tensor_variable(target).flatten()
    target_classes = target // n_outputs_per_class
    target_outputs_in_class = target % n_outputs_per_class
    rows = arange(batch_size)
    activations = matmul(x.dimshuffle(0, "x", 1), as_tensor_variable(W2)[target_classes])[:, 0, :]
    output_probs = softmax(activations + as_tensor_variable(b2)[target_classes])
    return class_probs[rows, target_classes] * output_probs[rows, target_outputs_in_class]


def _bn_axes(axes, ndim):
    if axes == "per-activation":
        axes = (0,)
    elif axes == "spatial":
        axes = (0,) + tuple(range(2, ndim))
    elif isinstance(axes, (tuple, list, np.ndarray)):
        axes = tuple(sorted(int(a) % ndim for a in axes))
    else:
        raise ValueError(f"axes should be 'per-activation', 'spatial' or a tuple of ints, got {axes!r}")
    return axes, tuple(d for d in range(ndim) if d not in axes)


def _bn_params(params, ndim, axes, kept):
    """Parameters given with the inputs' dimensions (broadcastable on `axes`) or with only the kept
    ones (then dimshuffled into place), as Theano's; (params in place, whether they were short)."""
    from .shape import addbroadcast

    params = [as_tensor_variable(p) for p in params]
    short = params[0].ndim != ndim
    pattern = ["x"] * ndim
    for i, d in enumerate(kept):
        pattern[d] = i
    placed = []
    for p in params:
        if p.ndim != (len(kept) if short else ndim):
            raise ValueError(f"batch normalization: parameters must have {len(kept)} dimensions (the axes "
                             f"not normalized) or {ndim} (the inputs'), got {p.type}")
        placed.append(p.dimshuffle(pattern) if short else addbroadcast(p, *axes))
    return placed, short


def _bn_epsilon(epsilon):
    if epsilon < 1e-5:
        raise ValueError(f"epsilon must be at least 1e-5, got {epsilon}")
    return epsilon


def batch_normalization(inputs, gamma, beta, mean, std, mode="low_mem"):
    """(inputs - mean) / std * gamma + beta, broadcasting as the types say (Theano's nnet.bn)."""
    if mode not in ("low_mem", "high_mem"):
        raise ValueError(f'mode must be either "low_mem" or "high_mem", got {mode!r}')
    inputs = as_tensor_variable(inputs)
    if mode == "high_mem":
        return (inputs - mean) * (gamma / std) + beta
    return (inputs - mean) / std * gamma + beta


def batch_normalization_train(inputs, gamma, beta, axes="per-activation", epsilon=1e-4,
                              running_average_factor=0.1, running_mean=None, running_var=None):
    """Normalize over `axes` with the batch's statistics: (out, mean, invstd), and with running_mean
    and running_var also their updated values (the variance's unbiased, as Theano's)."""
    from .math import cast, inv, mean as mean_, sqrt, var as var_
    from .shape import ShapeI

    inputs = as_tensor_variable(inputs)
    axes, kept = _bn_axes(axes, inputs.ndim)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be given or both be None")
    running = [] if running_mean is None else [running_mean, running_var]
    (gamma, beta, *running), short = _bn_params([gamma, beta, *running], inputs.ndim, axes, kept)
    epsilon = _bn_epsilon(epsilon)
    mean = mean_(inputs, axes, keepdims=True)
    var = var_(inputs, axes, keepdims=True)
    invstd = inv(sqrt(var + epsilon))
    out = (inputs - mean) * (gamma * invstd) + beta
    results = [mean, invstd]
    if running:
        f = running_average_factor
        m = cast(ShapeI(axes)(inputs), var.dtype)
        results += [running[0] * (1.0 - f) + mean * f, running[1] * (1.0 - f) + (m / (m - 1)) * var * f]
    if short:
        results = [r.dimshuffle(kept) for r in results]
    return tuple([out] + results)


def batch_normalization_test(inputs, gamma, beta, mean, var, axes="per-activation", epsilon=1e-4):
    """Normalize with given statistics: (inputs - mean) * (gamma / sqrt(var + epsilon)) + beta."""
    from .math import sqrt

    inputs = as_tensor_variable(inputs)
    axes, kept = _bn_axes(axes, inputs.ndim)
    (gamma, beta, mean, var), _ = _bn_params([gamma, beta, mean, var], inputs.ndim, axes, kept)
    return (inputs - mean) * (gamma / sqrt(var + _bn_epsilon(epsilon))) + beta


def _submodule(name, doc, functions):
    """A module `gencomp.tensor.nnet.<name>` holding `functions`, importable by that path (Theano's
    theano.tensor.nnet.bn) although nnet is a module, not a package."""
    module = types.ModuleType(f"{__name__}.{name}", doc)
    for fn in functions:
        setattr(module, fn.__name__, fn)
    sys.modules[module.__name__] = module
    return module


bn = _submodule("bn", "theano.tensor.nnet.bn: batch normalization as elementwise graphs.",
                [batch_normalization, batch_normalization_train, batch_normalization_test])


def _alias(name, module) -> None:
    """`module` importable as gencomp.tensor.nnet.<name> too: Theano's files of nnet (`from
    theano.tensor.nnet.conv import conv2d`, `...nnet.abstract_conv`, `...nnet.nnet`, `...nnet.sigm`)."""
    sys.modules.setdefault(f"{__name__}.{name}", module)


from . import neighbours  # noqa: E402  (theano.tensor.nnet.neighbours)
from .neighbours import images2neibs, neibs2images  # noqa: E402,F401

_alias("neighbours", neighbours)
_alias("conv", conv)
_alias("abstract_conv", abstract_conv)
_alias("nnet", sys.modules[__name__])         # theano.tensor.nnet.nnet: softmax, crossentropies, relu...
_alias("sigm", sys.modules[__name__])         # theano.tensor.nnet.sigm: sigmoid, hard_sigmoid, softplus...

__all__ += ["softmax_with_bias", "crossentropy_softmax_1hot", "crossentropy_softmax_1hot_with_bias",
            "crossentropy_softmax_argmax_1hot_with_bias", "h_softmax", "bn"]
