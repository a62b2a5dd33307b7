"""Lower an optimized FunctionGraph to a Plan: the arrays of the entry point and fused loop kernels.

Every output is computed by one fused elementwise loop nest over its own shape;
outputs whose loop shape comes from the same input dimensions share a loop.
DimShuffles never produce code: they change how a leaf array is indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..graph import Constant
from ..tensor.elemwise import DimShuffle, Elemwise, resolve_dtypes


@dataclass(frozen=True)
class Arg:
    """An array the entry point receives: a function input, a hidden constant, or an output."""

    role: str          # 'input' | 'const' | 'output'
    cname: str         # C identifier prefix
    label: str         # how error messages name it
    dtype: str
    broadcastable: tuple


@dataclass(frozen=True)
class Leaf:
    """One read of an input array inside a loop: loop dim d reads array dim axes[d] (None: index 0)."""

    arg: int
    cname: str
    axes: tuple


@dataclass(frozen=True)
class Stmt:
    dtype: str
    cname: str
    op: object         # the Scalar row
    operands: tuple    # (kind, payload): ('name', cname, dtype) or ('literal', value, dtype)
    out_dtype: str
    comment: str


@dataclass
class Kernel:
    ndim: int
    leaves: list = field(default_factory=list)
    stmts: list = field(default_factory=list)
    stores: list = field(default_factory=list)     # (output arg index, operand)
    sources: tuple = ()                            # loop dim d -> (arg index, array dim) or None


@dataclass(frozen=True)
class ShapeError:
    """What failed when gc_main returns a check code: arg `arg` dim `dim` vs 1 or vs a loop dim source."""

    arg: int
    dim: int
    source: tuple | None      # (arg, dim) whose length the loop uses, None when it must be 1
    output: int


@dataclass
class Plan:
    args: list
    kernels: list
    constants: list            # ndarray per 'const' arg, in arg order
    output_args: list          # arg index of each fgraph output


def _sanitize(name: str | None, fallback: str) -> str:
    if not name:
        return fallback
    clean = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    if not clean or not (clean[0].isalpha() or clean[0] == "_"):
        clean = "v_" + clean
    return clean[:32]


def _input_label(var, position: int) -> str:
    kind = "shared variable" if hasattr(var, "get_value") else "input"
    return f"{kind} {var.name!r}" if var.name else f"{kind} at position {position}"


def is_literal(var) -> bool:
    return isinstance(var, Constant) and var.data.size == 1


def lower(fgraph) -> Plan:
    args, constants, arg_of, used_names = [], [], {}, set()

    def unique(base):
        name, i = base, 1
        while name in used_names or name in ("i", "n", "o", "rc") or name.startswith("gc_"):
            name, i = f"{base}_{i}", i + 1
        used_names.add(name)
        return name

    for i, var in enumerate(fgraph.inputs):
        arg_of[id(var)] = len(args)
        args.append(Arg("input", unique(_sanitize(var.name, f"in{i}")), _input_label(var, i),
                        var.dtype, var.broadcastable))
    for node in fgraph.toposort():
        for inp in node.inputs:
            if isinstance(inp, Constant) and not is_literal(inp) and id(inp) not in arg_of:
                arg_of[id(inp)] = len(args)
                args.append(Arg("const", unique(f"const{len(constants)}"), f"constant {len(constants)}",
                                inp.dtype, inp.broadcastable))
                constants.append(inp.data)
    for out in fgraph.outputs:
        if isinstance(out, Constant) and not is_literal(out) and id(out) not in arg_of:
            arg_of[id(out)] = len(args)
            args.append(Arg("const", unique(f"const{len(constants)}"), f"constant {len(constants)}",
                            out.dtype, out.broadcastable))
            constants.append(out.data)

    output_args, kernels, by_sources = [], [], {}
    for j, out in enumerate(fgraph.outputs):
        index = len(args)
        output_args.append(index)
        args.append(Arg("output", unique(f"out{j}"), f"output {j}", out.dtype, out.broadcastable))
        trial = _KernelBuilder(args, arg_of, out.ndim)
        value = trial.value(out, tuple(range(out.ndim)))
        key = (out.ndim, trial.sources())
        if key in by_sources:        # same loop shape: share the loop (and its common statements)
            builder = by_sources[key]
            value = builder.value(out, tuple(range(out.ndim)))
        else:
            builder = by_sources[key] = trial
            trial.kernel.sources = key[1]
            kernels.append(trial)
        builder.kernel.stores.append((index, value))
    return Plan(args, [k.kernel for k in kernels], constants, output_args)


class _KernelBuilder:
    """Builds one loop kernel: leaves, statements in dependency order, stores."""

    def __init__(self, args, arg_of, ndim):
        self.args, self.arg_of = args, arg_of
        self.kernel = Kernel(ndim)
        self.memo = {}            # (id(var), axes) -> operand
        self.temp_count = 0

    def value(self, var, axes):
        """The operand holding `var` as seen through loop axes `axes` (iterative post-order walk)."""
        stack = [(var, axes)]
        while stack:
            v, ax = stack[-1]
            key = (id(v), ax)
            if key in self.memo:
                stack.pop()
                continue
            pending = [p for p in self._parents(v, ax) if (id(p[0]), p[1]) not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.memo[key] = self._emit(v, ax)
        return self.memo[(id(var), axes)]

    def _parents(self, v, ax):
        if v.owner is None or id(v) in self.arg_of:
            return []
        op = v.owner.op
        if isinstance(op, DimShuffle):
            return [(v.owner.inputs[0], _through_dimshuffle(op, ax))]
        return [(i, _through_elemwise(i, ax)) for i in v.owner.inputs]

    def _emit(self, v, ax):
        if is_literal(v):
            return ("literal", v.data.reshape(()).item(), v.dtype)
        if id(v) in self.arg_of:
            return self._leaf(self.arg_of[id(v)], v, ax)
        op = v.owner.op
        if isinstance(op, DimShuffle):
            return self.memo[(id(v.owner.inputs[0]), _through_dimshuffle(op, ax))]
        if not isinstance(op, Elemwise):
            raise NotImplementedError(f"the C backend cannot generate code for {op} yet")
        operands = tuple(self.memo[(id(i), _through_elemwise(i, ax))] for i in v.owner.inputs)
        name = f"t{self.temp_count}"
        self.temp_count += 1
        comment = f"{op}({', '.join(_describe(i) for i in v.owner.inputs)})"
        self.kernel.stmts.append(Stmt(v.dtype, name, op.scalar, operands, v.dtype, comment))
        return ("name", name, v.dtype)

    def _leaf(self, index, v, ax):
        ax = tuple(None if a is None or v.broadcastable[a] else a for a in ax)
        for leaf in self.kernel.leaves:
            if leaf.arg == index and leaf.axes == ax:
                return ("name", leaf.cname, v.dtype)
        count = sum(1 for leaf in self.kernel.leaves if leaf.arg == index)
        cname = self.args[index].cname + ("" if count == 0 else f"_v{count}")
        self.kernel.leaves.append(Leaf(index, cname, ax))
        return ("name", cname, v.dtype)

    def sources(self) -> tuple:
        result = []
        for d in range(self.kernel.ndim):
            src = next(((leaf.arg, leaf.axes[d]) for leaf in self.kernel.leaves
                        if leaf.axes[d] is not None), None)
            result.append(src)
        return tuple(result)


def _through_dimshuffle(op, ax):
    order = op.new_order
    return tuple(None if a is None or order[a] == "x" else order[a] for a in ax)


def _through_elemwise(inp, ax):
    return tuple(None if a is None or inp.broadcastable[a] else a for a in ax)


def _describe(var) -> str:
    if is_literal(var):
        return repr(np.asarray(var.data).reshape(()).item())
    return var.name if var.name else (str(var.owner.op) if var.owner else "input")


def compute_dtypes(stmt: Stmt) -> tuple:
    in_dtypes = tuple(o[2] for o in stmt.operands)
    compute, _ = resolve_dtypes(stmt.op, in_dtypes, stmt.out_dtype if stmt.op.typing == "cast" else None)
    return compute
