"""The canonical, process-independent text of a function graph and its SHA-256 key."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .basic import Constant


def constant_text(const: Constant) -> str:
    data = np.ascontiguousarray(const.data)
    if data.size <= 4:
        return f"{const.type.signature()} {json.dumps(data.tolist() if data.dtype.kind != 'c' else repr(data.tolist()))}"
    digest = hashlib.sha256(data.tobytes()).hexdigest()
    return f"{const.type.signature()} shape={list(data.shape)} sha256={digest}"


def canonical_lines(fgraph, for_key: bool = False) -> list[str]:
    """One line per input, constant, node and output, numbered in a fixed traversal order.

    Variable names are recorded (they appear in the generated source); object ids never are.
    `for_key` (a compiled module's cache key): an op's process-wide identity (a random draw's
    generator number, which keeps two draws from merging) is written as its rank of appearance in
    this graph, so a graph built again in the same process (a notebook cell re-run, a second model)
    finds the module the first one compiled: the module itself never reads that identity.
    """
    number, lines, ranks = {}, [], {}

    def rank(token) -> int:
        return ranks.setdefault(token, len(ranks))

    def op_text(op) -> str:
        return op.key_signature(rank) if for_key and hasattr(op, "key_signature") else op.signature()


    def ref(var):
        if id(var) not in number:
            number[id(var)] = len(number)
            lines.append(f"%{number[id(var)]} = const {constant_text(var)}")
        return f"%{number[id(var)]}"

    for i, var in enumerate(fgraph.inputs):
        number[id(var)] = len(number)
        lines.append(f"%{number[id(var)]} = input {i} {var.type.signature()} name={json.dumps(var.name)}")
    for node in fgraph.toposort():
        args = ", ".join(ref(i) for i in node.inputs)
        for out in node.outputs:
            number[id(out)] = len(number)
        outs = ", ".join(f"%{number[id(o)]}:{o.type.signature()}" for o in node.outputs)
        names = json.dumps([o.name for o in node.outputs])
        lines.append(f"{outs} = {op_text(node.op)}({args}) names={names}")
    for i, out in enumerate(fgraph.outputs):
        lines.append(f"output {i} = {ref(out)}")
    return lines


def sha256_key(parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()
