"""The numpy reference evaluator (device='py'): runs a graph through each op's numpy reference.

It is the oracle compiled code is tested against, so it enforces the same
broadcasting rules as the generated code (a length-1 dimension stretches only
when its type says it is broadcastable).
"""

from __future__ import annotations

import numpy as np


from .graph import Constant
from .tensor.elemwise import Elemwise
from .tensor.type import TensorType


class PyRunner:
    def __init__(self, fgraph):
        self.fgraph = fgraph
        self.nodes = fgraph.toposort()

    def __call__(self, values: list) -> list:
        env = {id(v): x for v, x in zip(self.fgraph.inputs, values)}
        for node in self.nodes:
            inputs = [i.data if isinstance(i, Constant) else env[id(i)] for i in node.inputs]
            if isinstance(node.op, Elemwise):
                check_broadcast(node, inputs)
            for out, value in zip(node.outputs, node.op.perform(node, inputs)):
                env[id(out)] = value
        return [_copy(o.data if isinstance(o, Constant) else env[id(o)], o) for o in self.fgraph.outputs]


def _copy(value, var):
    """An output of its variable's dtype that aliases nothing (other types, e.g. sparse: their copy)."""
    if isinstance(var.type, TensorType):
        return np.array(value, dtype=var.dtype, copy=True)
    return value.copy()


def check_broadcast(node, inputs) -> None:
    """ValueError unless every non-broadcastable dimension agrees and broadcastable ones are 1."""
    for d in range(node.outputs[0].ndim):
        lengths = {}
        for var, value in zip(node.inputs, inputs):
            if var.broadcastable[d]:
                if value.shape[d] != 1:
                    raise ValueError(f"{var!r} is broadcastable in dimension {d} but has shape {value.shape}")
            else:
                lengths.setdefault(value.shape[d], var)
        if len(lengths) > 1:
            shown = ", ".join(f"{v!r}: length {n}" for n, v in lengths.items())
            raise ValueError(f"shape mismatch in dimension {d} of {node.op}: {shown}")
