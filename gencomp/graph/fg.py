"""FunctionGraph: a private copy of the graph between a function's inputs and outputs."""

from __future__ import annotations

from typing import Sequence

from .basic import Apply, Constant, Variable, toposort


def _clone_node(node: Apply, inputs: list) -> Apply:
    new = Apply.__new__(Apply)
    new.op, new.inputs, new.outputs = node.op, inputs, []
    for old in node.outputs:
        out = old.type.variable_class(old.type, new, old.index, old.name)
        new.outputs.append(out)
    return new


class FunctionGraph:
    """The nodes computing `outputs` from `inputs`, cloned so rewrites can edit them in place.

    `inputs` are kept as they are (they are leaves); every Apply between them and
    the outputs is copied. Any other leaf must be a Constant.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable]):
        self.inputs = list(inputs)
        memo = {id(v): v for v in self.inputs}
        for node in toposort(outputs, blockers=self.inputs):
            for inp in node.inputs:
                if id(inp) not in memo:
                    if inp.owner is None and not isinstance(inp, Constant):
                        raise MissingInputError(inp)
                    memo[id(inp)] = inp
            new = _clone_node(node, [memo[id(i)] for i in node.inputs])
            for old, out in zip(node.outputs, new.outputs):
                memo[id(old)] = out
        for out in outputs:
            if id(out) not in memo:
                if out.owner is None and not isinstance(out, Constant):
                    raise MissingInputError(out)
                memo[id(out)] = out
        self.outputs = [memo[id(o)] for o in outputs]

    def toposort(self) -> list[Apply]:
        return toposort(self.outputs, blockers=self.inputs)

    def variables(self) -> list[Variable]:
        """Inputs, then every node's outputs in topological order (constants are not listed)."""
        result = list(self.inputs)
        for node in self.toposort():
            result.extend(node.outputs)
        return result

    def clients(self) -> dict:
        """id(variable) -> list of (node, input position) reading it; outputs read as ('output', i)."""
        users: dict = {}
        for node in self.toposort():
            for pos, inp in enumerate(node.inputs):
                users.setdefault(id(inp), []).append((node, pos))
        for i, out in enumerate(self.outputs):
            users.setdefault(id(out), []).append(("output", i))
        return users

    def replace_all(self, pairs: dict) -> None:
        """Make every reader of a key of `pairs` (id(old) -> new) read the new variable instead."""
        if not pairs:
            return
        for node in self.toposort():
            node.inputs = [pairs.get(id(i), i) for i in node.inputs]
        self.outputs = [pairs.get(id(o), o) for o in self.outputs]

    def replace(self, old: Variable, new: Variable) -> None:
        self.replace_all({id(old): new})


class MissingInputError(ValueError):
    """An output depends on a variable that is neither an input nor a constant."""

    def __init__(self, var):
        super().__init__(
            f"the graph depends on {var!r} (type {var.type}), which is not among the function's "
            f"inputs: pass it in `inputs`, or replace it with `givens`")
        self.variable = var
