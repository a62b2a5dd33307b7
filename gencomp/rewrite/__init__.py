"""Graph rewrites run by function(): merge identical subgraphs and fold constants.

`optimize(fgraph, mode)` edits the FunctionGraph in place; mode 'None' does nothing,
'fast_compile' only merges, 'fast_run' merges and folds.
"""

from __future__ import annotations

import numpy as np

from ..graph import Constant


def optimize(fgraph, mode: str) -> None:
    if mode == "None":
        return
    merge(fgraph)
    if mode == "fast_run":
        fold_constants(fgraph)
        merge(fgraph)


def _const_key(var):
    return ("const", var.type, np.ascontiguousarray(var.data).tobytes(), getattr(var, "weak", False))


def merge(fgraph) -> None:
    """Common-subexpression elimination: equal constants and equal (op, inputs) nodes become one."""
    canon, replace = {}, {}

    def lookup(var):
        return replace.get(id(var), var)

    for node in fgraph.toposort():
        for pos, inp in enumerate(node.inputs):
            inp = lookup(inp)
            if isinstance(inp, Constant):
                inp = canon.setdefault(_const_key(inp), inp)
            node.inputs[pos] = inp
        key = (node.op, tuple(id(i) for i in node.inputs))
        if key in canon:
            for old, new in zip(node.outputs, canon[key].outputs):
                replace[id(old)] = new
        else:
            canon[key] = node
    fgraph.outputs = [lookup(o) for o in fgraph.outputs]


def fold_constants(fgraph) -> None:
    """Nodes whose inputs are all constants are computed now, through the op's numpy reference."""
    from ..tensor.variable import constant

    replace = {}
    for node in fgraph.toposort():
        node.inputs = [replace.get(id(i), i) for i in node.inputs]
        if node.inputs and all(isinstance(i, Constant) for i in node.inputs):
            values = node.op.perform(node, [i.data for i in node.inputs])
            for out, value in zip(node.outputs, values):
                replace[id(out)] = constant(np.asarray(value, dtype=out.dtype), name=out.name)
    fgraph.outputs = [replace.get(id(o), o) for o in fgraph.outputs]
