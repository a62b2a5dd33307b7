"""Text views of graphs: debugprint (Theano's indented tree) and pp (an infix formula)."""

from __future__ import annotations

import sys

from .graph import Constant, Variable


def _label(var) -> str:
    if isinstance(var, Constant):
        return f"{var!r} [const {var.type.signature()}]"
    text = var.name if var.name else (str(var.owner.op) if var.owner else "<input>")
    return f"{text} [{var.type.signature()}]"


def graph_lines(outputs, stop=()) -> list[str]:
    """Indented tree of `outputs`; a node shown once is later referred to by its id."""
    lines, ids = [], {}
    stop = {id(v) for v in stop}

    def visit(var, depth):
        stack = [(var, depth)]
        while stack:
            v, d = stack.pop()
            pad = " |" * d
            if v.owner is None or id(v) in stop:
                lines.append(f"{pad}{_label(v)}")
                continue
            node = v.owner
            if id(node) in ids:
                lines.append(f"{pad}{node.op} id={ids[id(node)]} (shown above)")
                continue
            ids[id(node)] = len(ids)
            name = f" '{v.name}'" if v.name else ""
            index = f".{v.index}" if len(node.outputs) > 1 else ""
            lines.append(f"{pad}{node.op}{index}{name} id={ids[id(node)]} [{v.type.signature()}]")
            for inp in reversed(node.inputs):
                stack.append((inp, d + 1))

    for out in outputs:
        visit(out, 0)
    return lines


def flat_lines(fgraph) -> list[str]:
    """One line per node, producers first (linear in the graph's size, unlike the indented tree)."""
    from .graph import Constant

    number, lines = {}, []

    def ref(var):
        if isinstance(var, Constant):
            return repr(var)
        return number.get(id(var), var.name or "?")

    for i, var in enumerate(fgraph.inputs):
        number[id(var)] = f"%{len(number)}"
        lines.append(f"{number[id(var)]} = input {var.name or i} [{var.type.signature()}]")
    for node in fgraph.toposort():
        for out in node.outputs:
            number[id(out)] = f"%{len(number)}"
        outs = ", ".join(number[id(o)] for o in node.outputs)
        args = ", ".join(ref(i) for i in node.inputs)
        lines.append(f"{outs} = {node.op}({args}) [{node.outputs[0].type.signature()}]")
    for j, out in enumerate(fgraph.outputs):
        lines.append(f"output {j} = {ref(out)}")
    return lines


def debugprint(obj, file=None) -> str:
    """Print the graph of a variable, list of variables or Function (its optimized graph); return the text."""
    if hasattr(obj, "dprint"):
        text = obj.dprint()
    else:
        outputs = [obj] if isinstance(obj, Variable) else list(obj)
        text = "\n".join(graph_lines(outputs)) + "\n"
    (file or sys.stdout).write(text)
    return text


_INFIX = {"add": "+", "sub": "-", "mul": "*", "true_div": "/", "floor_div": "//", "mod": "%",
          "pow": "**", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "eq": "==", "neq": "!=",
          "and_": "&", "or_": "|", "xor": "^"}


def pp(var) -> str:
    """`var` as one formula, e.g. `(x + (2 * y))`."""
    memo = {}

    def show(v):
        if id(v) in memo:
            return memo[id(v)]
        if v.owner is None:
            text = repr(v)
        else:
            op, args = v.owner.op, [show(i) for i in v.owner.inputs]
            name = getattr(getattr(op, "scalar", None), "name", None)
            if name in _INFIX and len(args) == 2:
                text = f"({args[0]} {_INFIX[name]} {args[1]})"
            elif name == "neg":
                text = f"-{args[0]}"
            elif name is not None:
                text = f"{name}({', '.join(args)})"
            else:
                text = f"{op}({', '.join(args)})"
        memo[id(v)] = text
        return text

    return show(var)
