"""Text views of graphs (debugprint, Theano's indented tree; pp, an infix formula) and the Print op."""

from __future__ import annotations

import sys

from .graph import Apply, Constant, Op, Variable


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


def debugprint(obj, depth=-1, print_type=False, file=None, ids="CHAR", stop_on_name=False):
    """Print the graph of a variable, list of variables, Apply node or Function in Theano's layout.

    One line per variable: `Elemwise{mul} [id A] 'name'   3` for a computed one (op, id, name,
    and for a Function the node's position in the execution order), `x [id B]` for a leaf; inputs
    follow, indented by ` |`. A node shown before is shown again without its inputs.
    `file=None` prints to stdout, `file='str'` only returns the text; the text is returned always.
    `ids`: 'CHAR' (A, B, ..., Z, BA, ...), 'int', 'id' (Python ids) or '' (none).
    """
    if hasattr(obj, "fgraph") and hasattr(obj, "dprint"):
        text = obj.dprint(depth=depth, print_type=print_type, ids=ids, stop_on_name=stop_on_name)
    else:
        outputs = (obj.outputs if isinstance(obj, Apply)
                   else [obj] if isinstance(obj, Variable) else list(obj))
        text = theano_lines(outputs, depth=depth, print_type=print_type, ids=ids, stop_on_name=stop_on_name)
    if file != "str":
        (file or sys.stdout).write(text)
    return text


def theano_lines(outputs, order=None, depth=-1, print_type=False, ids="CHAR", stop_on_name=False,
                 stop=()) -> str:
    """Theano's debugprint text of `outputs`; `order` (a node list) adds each node's position."""
    position = {id(n): k for k, n in enumerate(order)} if order is not None else None
    stop = {id(v) for v in stop}
    names, done, lines = {}, set(), []

    def ident(obj):
        if ids == "":
            return ""
        if id(obj) not in names:
            k = len(names)
            names[id(obj)] = (_letters(k) if ids == "CHAR" else str(k) if ids == "int" else str(id(obj)))
        return f"[id {names[id(obj)]}]"

    def visit(var, prefix, child_prefix, level):
        type_text = f" <{var.type}>" if print_type else ""
        node = var.owner
        if node is None or id(var) in stop:
            lines.append(f"{prefix}{_leaf_text(var)} {ident(var)}{type_text}")
            return
        op = f"{_op_text(node.op)}.{var.index}" if len(node.outputs) > 1 else _op_text(node.op)
        where = position.get(id(node), "") if position is not None else ""
        lines.append(f"{prefix}{op} {ident(node)}{type_text} '{var.name or ''}'   {where}")
        if id(node) in done or (stop_on_name and var.name and level > 0) or level == depth - 1:
            return
        done.add(id(node))
        for k, inp in enumerate(node.inputs):
            last = k == len(node.inputs) - 1
            visit(inp, child_prefix + " |", child_prefix + ("  " if last else " |"), level + 1)

    for out in outputs:
        visit(out, "", "", 0)
    return "\n".join(lines) + "\n"


def _letters(number: int) -> str:
    """0 -> A, 25 -> Z, 26 -> BA: Theano's id letters (base 26 with A as the digit 0)."""
    text = ""
    while True:
        text = chr(ord("A") + number % 26) + text
        number //= 26
        if number == 0:
            return text


def _op_text(op) -> str:
    return str(op)


def _leaf_text(var) -> str:
    """A leaf as Theano names it: its name, `TensorConstant{value}` or `<TensorType(...)>`."""
    if var.name is not None:
        return var.name
    if isinstance(var, Constant):
        return f"TensorConstant{{{var!r}}}"
    return f"<{var.type}>"


_INFIX = {"add": "+", "sub": "-", "mul": "*", "true_div": "/", "floor_div": "//", "mod": "%",
          "pow": "**", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "eq": "==", "neq": "!=",
          "and_": "&", "or_": "|", "xor": "^"}


def pp(var) -> str:
    """`var` as one formula in Theano's pprint style, e.g. `(x + (2 * y))`; ops without an infix
    form read as calls (`exp(x)`, `fill(a, b)`); a Function shows its optimized outputs."""
    if hasattr(var, "fgraph") and hasattr(var, "dprint"):
        return "\n".join(pp(o) for o in var.fgraph.outputs)
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
            elif name == "second":          # Theano's name for it
                text = f"fill({', '.join(args)})"
            elif name is not None:
                text = f"{name}({', '.join(args)})"
            else:
                text = f"{op}({', '.join(args)})"
        memo[id(v)] = text
        return text

    return show(var)


pprint = pp        # Theano's name for the same printer (theano.printing.pprint)


def _print_values(op, value) -> None:
    """Theano's default Print action: `message attr = value` for each attribute in `op.attrs`."""
    for attr in op.attrs:
        shown = getattr(value, attr)
        print(op.message, attr, "=", shown() if callable(shown) else shown)


class Print(Op):
    """`Print(message)(x)` is x, and prints `message __str__ = <value of x>` each time it is computed.

    `attrs` names what to print (attributes of the numpy value, called when callable: e.g.
    ('shape', '__str__')); `global_fn(op, value)` replaces the printing. The op is stateful, so
    constant folding never removes it; its gradient passes straight through, as in Theano.
    """

    stateful = True          # a side effect: never computed at compile time
    returns_view = True      # perform returns its input as it is

    def __init__(self, message="", attrs=("__str__",), global_fn=_print_values):
        self.message, self.attrs, self.global_fn = str(message), tuple(attrs), global_fn

    def signature(self):
        fn = "" if self.global_fn is _print_values else f",fn={getattr(self.global_fn, '__qualname__', '?')}"
        return f"Print{{{self.message!r},attrs={list(self.attrs)}{fn}}}"

    def __eq__(self, other):
        return type(self) is type(other) and self.signature() == other.signature() \
            and self.global_fn is other.global_fn

    def __hash__(self):
        return hash(self.signature())

    def __reduce__(self):
        return Print, (self.message, self.attrs, self.global_fn)

    def make_node(self, x):
        from .tensor.variable import as_tensor_variable

        x = as_tensor_variable(x)
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        self.global_fn(self, inputs[0])
        return [inputs[0]]

    def grad(self, inputs, output_grads, outputs):
        return list(output_grads)


def pydotprint(*args, **kwargs):
    """Theano drew graphs with pydot; gencomp has no graphviz backend: use debugprint instead."""
    raise NotImplementedError("gencomp has no pydotprint (no graphviz dependency); use "
                              "gencomp.printing.debugprint(f) for the graph as text")
