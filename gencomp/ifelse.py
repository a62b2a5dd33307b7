"""`ifelse(cond, then, else)`: Theano's conditional on a scalar, whose branches may differ in shape.

Unlike Theano's, both branches are computed (the graph runs as straight-line code); the result
is the branch the condition picks, so values and gradients are Theano's. Use T.switch for an
elementwise choice.
"""

from __future__ import annotations

import numpy as np

from .graph import Apply, Op
from .tensor.shape import rebroadcast
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable


class IfElse(Op):
    """then if cond else else_: a host step that returns one of its inputs."""

    returns_view = True      # perform returns one of its inputs as it is

    def signature(self):
        return "IfElse"

    def __reduce__(self):
        return IfElse, ()

    def make_node(self, cond, then, else_):
        cond, then, else_ = (as_tensor_variable(v) for v in (cond, then, else_))
        if cond.ndim != 0:
            raise TypeError(f"ifelse needs a scalar condition, got {cond.type}; use T.switch to choose "
                            f"elementwise")
        if then.ndim != else_.ndim:
            raise TypeError(f"ifelse: the branches differ in rank ({then.type} and {else_.type})")
        if then.dtype != else_.dtype:         # numpy's promotion of the two dtypes
            from .tensor.math import cast

            dtype = np.result_type(then.dtype, else_.dtype).name
            then, else_ = cast(then, dtype), cast(else_, dtype)
        bcast = tuple(a and b for a, b in zip(then.broadcastable, else_.broadcastable))
        return Apply(self, [cond, then, else_], [TensorType(then.dtype, bcast)])

    def perform(self, node, inputs):
        cond, then, else_ = inputs
        return [then if bool(cond) else else_]

    def grad(self, inputs, output_grads, outputs):
        from .tensor import math as tm

        cond, then, else_ = inputs
        (g,) = output_grads
        # the chosen value has the shape of the branch it flows into: its pattern is restored after
        # the choice (before it, g may have the other branch's shape)
        to_then = rebroadcast(ifelse(cond, g, tm.zeros_like(then)), then.broadcastable)
        to_else = rebroadcast(ifelse(cond, tm.zeros_like(else_), g), else_.broadcastable)
        return [None, to_then, to_else]


def ifelse(condition, then_branch, else_branch, name=None):
    """`then_branch` if the scalar `condition` is true, else `else_branch` (lists: pairwise)."""
    if isinstance(then_branch, (list, tuple)):
        if not isinstance(else_branch, (list, tuple)) or len(then_branch) != len(else_branch):
            raise TypeError("ifelse: give the two branches as lists of the same length")
        return [ifelse(condition, t, e, name) for t, e in zip(then_branch, else_branch)]
    out = IfElse()(condition, then_branch, else_branch)
    if name is not None:
        out.name = name
    return out
