"""The graph data structure: Variable, Constant, Apply and Op, plus graph walks and cloning."""

from __future__ import annotations

from typing import Iterable, Sequence

from ..config import config      # only compute_test_value, a graph-building flag read live


class Variable:
    """A value in the graph: an input (owner None) or output `index` of an Apply node."""

    def __init__(self, type, owner=None, index=None, name=None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name

    def clone(self):
        return type(self)(self.type, None, None, self.name)

    @property
    def tag(self):
        """Free-form notes on the variable (Theano's `var.tag`), e.g. `tag.test_value`."""
        tag = self.__dict__.get("_tag")
        if tag is None:
            tag = self.__dict__["_tag"] = Scratchpad(self)
        return tag

    def get_test_value(self):
        """The test value (config.compute_test_value): AttributeError when there is none."""
        from .testvalue import test_value

        return test_value(self)

    def __repr__(self):
        return self.name if self.name is not None else _default_name(self)

    def __str__(self):
        return repr(self)


class Scratchpad:
    """A variable's `tag`: attributes users and tools attach. `test_value` is checked against the
    variable's type when set (as Theano's ValidatingScratchpad does)."""

    def __init__(self, var):
        object.__setattr__(self, "_var", var)

    def __setattr__(self, name, value):
        var = self._var
        if name == "test_value" and hasattr(var.type, "filter"):
            value = var.type.filter(value, f"test value of {var!r}")
        object.__setattr__(self, name, value)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_var"}


def _default_name(var) -> str:
    if var.owner is not None:
        base = str(var.owner.op)
        return base if len(var.owner.outputs) == 1 else f"{base}.{var.index}"
    return f"<{var.type}>"


class Constant(Variable):
    """A variable whose value is fixed when the graph is built; `data` is never mutated."""

    def __init__(self, type, data, name=None):
        super().__init__(type, None, None, name)
        self.data = data

    def clone(self):
        return self     # constants are values: sharing them across graphs is safe

    def __repr__(self):
        if self.name is not None:
            return self.name
        data = self.data
        if getattr(data, "size", 0) == 1:
            data = data.reshape(()).item()
        text = str(data).replace("\n", " ")
        return text if len(text) <= 20 else text[:17] + "..."


class Apply:
    """One application of `op` to `inputs`, producing `outputs` (whose owner is this node)."""

    def __init__(self, op, inputs: Sequence[Variable], output_types: Sequence):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = []
        for i, t in enumerate(output_types):
            out = t.variable_class(t, self, i)
            self.outputs.append(out)

    @property
    def out(self):
        (out,) = self.outputs
        return out

    def __repr__(self):
        return f"{self.op}({', '.join(map(repr, self.inputs))})"


class Op:
    """Base class of operations: subclasses give `make_node`, `perform` and `signature`.

    Two ops are equal when their signatures are equal; the signature is also what
    the structural hash of a graph records, so it must name every parameter.
    """

    def make_node(self, *inputs) -> Apply:
        raise NotImplementedError

    def perform(self, node: Apply, inputs: list) -> list:
        """The numpy reference: inputs and outputs are numpy arrays."""
        raise NotImplementedError

    def signature(self) -> str:
        raise NotImplementedError

    def lowering(self, node: Apply) -> str:
        """How a compiled function runs this node: 'host' (its numpy `perform`, between the C
        segments of the entry point) unless the op names a step family of codegen/entry.py."""
        return "host"

    def __call__(self, *inputs):
        node = self.make_node(*inputs)
        mode = config.compute_test_value
        if mode != "off":
            from .testvalue import compute

            compute(node, mode)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def __eq__(self, other):
        return type(self) is type(other) and self.signature() == other.signature()

    def __hash__(self):
        return hash(self.signature())

    def __str__(self):
        return self.signature()


def ancestors(outputs: Iterable[Variable], blockers: Iterable[Variable] = ()) -> list[Variable]:
    """Every variable that `outputs` depend on, not looking past `blockers`."""
    blocked = {id(v) for v in blockers}
    seen, order, stack = set(), [], list(outputs)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        order.append(v)
        if v.owner is not None and id(v) not in blocked:
            stack.extend(v.owner.inputs)
    return order


def toposort(outputs: Iterable[Variable], blockers: Iterable[Variable] = ()) -> list[Apply]:
    """The Apply nodes that compute `outputs`, each after the nodes it reads (iterative DFS)."""
    blocked = {id(v) for v in blockers}
    order, done = [], set()
    stack = [(v.owner, False) for v in reversed(list(outputs))
             if v.owner is not None and id(v) not in blocked]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for inp in reversed(node.inputs):
            if inp.owner is not None and id(inp) not in blocked and id(inp.owner) not in done:
                stack.append((inp.owner, False))
    return order


def clone_replace(outputs: Sequence[Variable], replace: dict) -> list[Variable]:
    """Copies of `outputs` in which every variable that is a key of `replace` reads its value.

    The original graph is untouched; keys are variables, values their replacements.
    """
    memo = {id(k): v for k, v in replace.items()}
    for node in toposort(outputs, blockers=replace.keys()):
        new_inputs = [memo.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs)):
            continue
        new_node = node.op.make_node(*new_inputs)
        for old, new in zip(node.outputs, new_node.outputs):
            new.name = old.name
            memo[id(old)] = new
    return [memo.get(id(o), o) for o in outputs]
