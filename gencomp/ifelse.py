"""`ifelse(cond, then, else)`: Theano's lazy conditional on a scalar; only the chosen branch runs.

Each branch is held as an inner graph over the variables it reads (as scan holds its step
function): the IfElse node's inputs are the condition and those free variables, and its host
step compiles each branch into a function the first time it is chosen, then runs only the
chosen one. Branches may differ in shape; the gradient is Theano's: an ifelse of the two
branches' gradients, itself lazy. Use T.switch for an elementwise choice.
"""

from __future__ import annotations

import numpy as np

from .graph import Apply, Constant, FunctionGraph, Op, ancestors, clone_replace
from .graph.hashing import canonical_lines, sha256_key
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable


class IfElse(Op):
    """then_outputs if cond else else_outputs, each a graph over `inner_inputs` (placeholders of
    the node's inputs after the condition)."""

    returns_view = False     # the branch functions return new arrays

    def __init__(self, inner_inputs, then_outputs, else_outputs):
        self.inner_inputs = list(inner_inputs)
        self.then_outputs, self.else_outputs = list(then_outputs), list(else_outputs)
        branches = FunctionGraph(self.inner_inputs, self.then_outputs + self.else_outputs)
        self._key = sha256_key(canonical_lines(branches))[:16]
        # a branch with a side effect (a Print, a random draw) is never run at compile time
        self.stateful = any(getattr(n.op, "stateful", False) for n in branches.toposort())
        self._compiled = {}

    def signature(self):
        return f"IfElse{{branches={self._key}, outputs={len(self.then_outputs)}}}"

    def __reduce__(self):
        return IfElse, (self.inner_inputs, self.then_outputs, self.else_outputs)

    def make_node(self, cond, *inputs):
        cond = as_tensor_variable(cond)
        if cond.ndim != 0:
            raise TypeError(f"ifelse needs a scalar condition, got {cond.type}; use T.switch to choose "
                            f"elementwise")
        inputs = [as_tensor_variable(v) for v in inputs]
        if len(inputs) != len(self.inner_inputs):
            raise TypeError(f"ifelse: {len(inputs)} inputs for branches over "
                            f"{len(self.inner_inputs)} variables")
        outs = [TensorType(t.dtype, tuple(a and b for a, b in zip(t.broadcastable, e.broadcastable)))
                for t, e in zip(self.then_outputs, self.else_outputs)]
        return Apply(self, [cond, *inputs], outs)

    def branch(self, which: bool):
        """The compiled function of one branch (compiled once, on first use)."""
        if which not in self._compiled:
            from .config import config
            from .function import function

            device = "cpu" if config.device == "cuda" else None     # the choice runs on the host
            outs = self.then_outputs if which else self.else_outputs
            self._compiled[which] = function(self.inner_inputs, list(outs), on_unused_input="ignore",
                                             device=device)
        return self._compiled[which]

    def perform(self, node, inputs):
        results = self.branch(bool(inputs[0]))(*inputs[1:])
        return [np.asarray(r, dtype=o.dtype) for r, o in zip(results, node.outputs)]

    def grad(self, inputs, output_grads, outputs):
        from .gradient import grad

        cond, free = inputs[0], inputs[1:]
        replace = dict(zip(self.inner_inputs, free))
        wrt = [v for v in free if v.dtype.startswith(("float", "complex"))]

        def branch_grads(inner):
            exprs = clone_replace(inner, replace)
            known = {e: g for e, g in zip(exprs, output_grads)
                     if g is not None and e.dtype.startswith(("float", "complex"))}
            if not known or not wrt:
                return [None] * len(wrt)
            return grad(None, wrt, known_grads=known, disconnected_inputs="ignore",
                        return_disconnected="None")

        from .tensor import math as tm

        then_g, else_g = branch_grads(self.then_outputs), branch_grads(self.else_outputs)
        by_input = {}
        for v, a, b in zip(wrt, then_g, else_g):
            if a is None and b is None:
                continue
            a = tm.zeros_like(v) if a is None else a
            b = tm.zeros_like(v) if b is None else b
            by_input[id(v)] = _restore_pattern(ifelse(cond, a, b), v)
        return [None] + [by_input.get(id(v)) for v in free]


def _restore_pattern(g, var):
    from .tensor.shape import rebroadcast

    return rebroadcast(g, var.broadcastable) if g.broadcastable != var.broadcastable else g


def _branch_pair(then, else_):
    then, else_ = as_tensor_variable(then), as_tensor_variable(else_)
    if then.ndim != else_.ndim:
        raise TypeError(f"ifelse: the branches differ in rank ({then.type} and {else_.type})")
    if then.dtype != else_.dtype:         # numpy's promotion of the two dtypes
        from .tensor.math import cast

        dtype = np.result_type(then.dtype, else_.dtype).name
        then, else_ = cast(then, dtype), cast(else_, dtype)
    return then, else_


def ifelse(condition, then_branch, else_branch, name=None):
    """`then_branch` if the scalar `condition` is true, else `else_branch` (lists: pairwise);
    only the chosen branch is computed."""
    several = isinstance(then_branch, (list, tuple))
    if several and (not isinstance(else_branch, (list, tuple)) or len(then_branch) != len(else_branch)):
        raise TypeError("ifelse: give the two branches as lists of the same length")
    thens, elses = (list(then_branch), list(else_branch)) if several else ([then_branch], [else_branch])
    pairs = [_branch_pair(t, e) for t, e in zip(thens, elses)]
    thens, elses = [t for t, _ in pairs], [e for _, e in pairs]
    cond = as_tensor_variable(condition)
    if cond.ndim != 0:
        raise TypeError(f"ifelse needs a scalar condition, got {cond.type}; use T.switch to choose "
                        f"elementwise")
    free = [v for v in ancestors(thens + elses)
            if v.owner is None and not isinstance(v, Constant)]
    placeholders = [TensorType(v.dtype, v.broadcastable)(v.name) for v in free]
    inner = clone_replace(thens + elses, dict(zip(free, placeholders))) if free else thens + elses
    op = IfElse(placeholders, inner[:len(thens)], inner[len(thens):])
    outs = op(cond, *free)
    outs = outs if isinstance(outs, list) else [outs]
    if name is not None:
        for out in outs:
            out.name = name
    return outs if several else outs[0]
