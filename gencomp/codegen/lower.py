"""Lower an optimized FunctionGraph to a Plan: the arrays of a call and the steps that fill them.

A step is a C kernel (a fused elementwise loop nest, or a reduction whose input
expression is fused into it) or a host step (an op run through its numpy
implementation: BLAS products, indexing, reshapes). Elementwise chains and
DimShuffles are never materialized unless a host op or an output needs them;
a DimShuffle only changes how a kernel indexes its leaf arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..graph import Apply, Constant, Op
from ..tensor.elemwise import DimShuffle, Elemwise, resolve_dtypes
from ..tensor.reduce import ArgReduce, Reduce
from ..tensor.type import TensorType


@dataclass(frozen=True)
class Arg:
    """An array of a call: a function input, a hidden constant, a temporary, or an output."""

    role: str          # 'input' | 'const' | 'temp' | 'output'
    cname: str         # C identifier prefix
    label: str         # how error messages name it
    dtype: str
    broadcastable: tuple


@dataclass(frozen=True)
class Leaf:
    """One read of an array inside a loop: loop dim d reads array dim axes[d] (None: index 0)."""

    arg: int
    cname: str
    axes: tuple


@dataclass(frozen=True)
class Stmt:
    dtype: str
    cname: str
    op: object         # the Scalar row
    operands: tuple    # ('name', cname, dtype) or ('literal', value, dtype)
    out_dtype: str
    comment: str


@dataclass
class Kernel:
    """A C loop nest over `ndim` loop dims; `reduce` set for a reduction kernel."""

    ndim: int
    leaves: list = field(default_factory=list)
    stmts: list = field(default_factory=list)
    stores: list = field(default_factory=list)     # (arg index, operand)
    sources: tuple = ()                            # loop dim d -> (arg index, array dim) or None
    reduce: object = None                          # Reduce op of a reduction kernel
    name: str = ""
    inplace: dict = field(default_factory=dict)    # stored arg -> input arg whose buffer it may reuse

    def out_dims(self) -> tuple:
        """The loop dims that index the stored arrays."""
        if self.reduce is None:
            return tuple(range(self.ndim))
        return tuple(d for d in range(self.ndim) if d not in self.reduce.reduced_axes(self.ndim))


@dataclass
class HostStep:
    """Run `node.op.perform` (numpy) on the arrays `inputs`, giving the arrays `outputs`."""

    node: object
    inputs: list
    outputs: list
    inplace: dict = field(default_factory=dict)    # output arg -> input arg whose buffer it may take


@dataclass
class ScanStep(HostStep):
    """A scan run as a C loop: each step runs `steps` (the step function's own plan, its arrays
    numbered after the function's) on rows the loop points at the sequences' slices, the states and
    the stacked results. As a HostStep it is still the node's numpy `perform` to every pass that
    does not know loops (and to the runtime, which re-runs it to explain a failed check)."""

    steps: list = field(default_factory=list)
    name: str = ""                 # gc_scan0: its step function is gc_scan0_step
    inner_inputs: list = field(default_factory=list)    # rows of the step's arguments
    inner_outputs: list = field(default_factory=list)   # rows of its results (the condition last: until)
    out_dims: list = field(default_factory=list)        # per result: its lengths ('dim', row, d) or 1
    consts: list = field(default_factory=list)          # constants the step reads (Python sets their rows)


@dataclass(frozen=True)
class ShapeError:
    """A failed check of a kernel: arg `arg` dim `dim` vs 1 (source None) or vs the loop dim of `source`.

    `dim` -1 means an empty reduction without identity.
    """

    arg: int
    dim: int
    source: tuple | None
    output: int


def error_records(errors: list) -> list:
    """The checks of a module as JSON for its meta.json (the runtime turns a failed one into a message)."""
    return [["step", e.step] if not hasattr(e, "arg") else [e.arg, e.dim, list(e.source) if e.source else None, e.output]
            for e in errors]


@dataclass
class Plan:
    args: list
    steps: list
    constants: list            # ndarray per 'const' arg, in arg order
    output_args: list          # arg index of each fgraph output

    @property
    def kernels(self) -> list:
        """Every kernel, those of scan loops' steps included."""
        return _kernels(self.steps)


def _kernels(steps) -> list:
    found = []
    for s in steps:
        if isinstance(s, Kernel):
            found.append(s)
        elif isinstance(s, ScanStep):
            found += _kernels(s.steps)
    return found


class OutputCopy(Op):
    """An output that is an input (or a repeat) of a type kernels do not handle: its value's copy()."""

    def signature(self):
        return "OutputCopy"

    def make_node(self, x):
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        return [inputs[0].copy()]


def _input_label(var, position: int) -> str:
    kind = "shared variable" if hasattr(var, "get_value") else "input"
    return f"{kind} {var.name!r}" if var.name else f"{kind} at position {position}"


# elementwise operations worth a store and a load rather than computing them twice
COSTLY = frozenset({"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "tanh", "sigmoid", "softplus",
                    "sin", "cos", "tan", "pow", "erf", "erfc", "gamma", "gammaln", "psi", "tri_gamma",
                    "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh", "arctanh"})
_MANY = "many"


def is_literal(var) -> bool:
    return isinstance(var, Constant) and var.data.size == 1


def is_fusible(node) -> bool:
    return isinstance(node.op, (Elemwise, DimShuffle))


def lower(fgraph, updates=None, loops: bool = True) -> Plan:
    """The Plan of `fgraph`; `updates` maps output positions to the input positions they replace
    (shared-variable updates), whose old buffers an elementwise kernel may then overwrite.
    Temporaries are computed in place where possible too. `loops`: scans whose step has a C form
    become C loops (ScanStep); else every scan is a host step (the CUDA backend)."""
    plan = _Lowering(fgraph, loops).run()
    for out_pos, in_pos in (updates or {}).items():
        _mark_inplace(plan, plan.output_args[out_pos], in_pos)
    _reuse_temporaries(plan)
    return plan


def _reuse_temporaries(plan: Plan):
    """An elementwise kernel stores a temporary into the buffer of one it reads for the last time:
    a buffer that stays in cache instead of a second one. Only buffers gencomp owns qualify: kernel
    results, and results of ops whose outputs are always new arrays (BLAS products), never views."""
    owned = set()
    for step in plan.steps:
        if isinstance(step, Kernel):
            owned |= {a for a, _ in step.stores}
        elif getattr(step.node.op, "fresh_outputs", False):
            owned |= set(step.outputs)
    owned = {a for a in owned if plan.args[a].role == "temp"}
    for step in plan.steps:
        if isinstance(step, HostStep):
            position = getattr(step.node.op, "inplace_input", None)      # a gemm accumulating into C
            if position is not None and plan.args[step.outputs[0]].role == "temp" \
                    and step.inputs[position] in owned:
                _mark_inplace(plan, step.outputs[0], step.inputs[position])
            continue
        if step.reduce is not None:
            continue
        for out_arg, _ in step.stores:
            if plan.args[out_arg].role != "temp" or out_arg in step.inplace:
                continue
            for arg in dict.fromkeys(leaf.arg for leaf in step.leaves):
                if arg in owned and arg not in step.inplace.values():
                    _mark_inplace(plan, out_arg, arg)
                    if out_arg in step.inplace:
                        break


def _mark_inplace(plan: Plan, out_arg: int, in_arg: int):
    """Let the kernel storing `out_arg` write into `in_arg`'s buffer when nothing reads it later.

    Safe only if the kernel reads `in_arg` at exactly the element it writes (one leaf, identity
    axes, same type) and every other read of `in_arg`, or of a host view of it, comes before.
    """
    src, out = plan.args[in_arg], plan.args[out_arg]
    if src.dtype != out.dtype or src.broadcastable != out.broadcastable or out.role not in ("output", "temp"):
        return
    aliases = {in_arg}
    for step in plan.steps:              # views of the input read the same memory
        if isinstance(step, HostStep) and getattr(step.node.op, "returns_view", False) \
                and aliases & set(step.inputs):
            aliases |= set(step.outputs)
    if aliases & set(plan.output_args):
        return
    writer = last_reader = None
    for k, step in enumerate(plan.steps):
        reads = set(step.inputs) if isinstance(step, HostStep) else {leaf.arg for leaf in step.leaves}
        if aliases & reads:
            last_reader = k
        if out_arg in (step.outputs if isinstance(step, HostStep) else [a for a, _ in step.stores]):
            writer = k
    if writer is None or last_reader != writer:
        return
    kernel = plan.steps[writer]
    if isinstance(kernel, HostStep):      # an op that can accumulate into one input (Gemm)
        position = getattr(kernel.node.op, "inplace_input", None)
        if position is not None and kernel.inputs[position] == in_arg \
                and not aliases & set(kernel.inputs[:position] + kernel.inputs[position + 1:]):
            kernel.inplace[out_arg] = in_arg
        return
    leaves = [leaf for leaf in kernel.leaves if leaf.arg in aliases]
    if kernel.reduce is not None or len(leaves) != 1 or leaves[0].arg != in_arg \
            or in_arg in kernel.inplace.values():
        return
    if any(a != d and not (a is None and src.broadcastable[d]) for d, a in enumerate(leaves[0].axes)):
        return
    kernel.inplace[out_arg] = in_arg


class _Lowering:
    def __init__(self, fgraph, loops=True):
        self.fgraph, self.loops = fgraph, loops
        self.args, self.constants, self.arg_of, self.names = [], [], {}, set()
        self.steps, self.pending, self.n_loops = [], None, 0

    def new_arg(self, role, base, label, var) -> int:
        """A new array of the call. Its C name comes from its position (in3, tmp7, out0), never from
        a user's name, which only ever appears in comments and messages (`label`)."""
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        self.args.append(Arg(role, name, label, var.dtype, var.broadcastable))
        return len(self.args) - 1

    def const_arg(self, var) -> int:
        if id(var) not in self.arg_of:
            k = len(self.constants)
            self.arg_of[id(var)] = self.new_arg("const", f"const{k}", f"constant {k}", var)
            self.constants.append(var.data)
        return self.arg_of[id(var)]

    def run(self) -> Plan:
        fg = self.fgraph
        for i, var in enumerate(fg.inputs):
            self.arg_of[id(var)] = self.new_arg("input", f"in{i}", _input_label(var, i), var)
        nodes = fg.toposort()
        host_views, needed = self._materialized(nodes)
        outputs = {id(o) for o in fg.outputs}
        out_args = self.out_args = {}
        for node in nodes:
            if is_fusible(node) and id(node) not in host_views:
                var = node.outputs[0]
                if id(var) in needed or id(var) in outputs:
                    self._store_elementwise(var, out_args)
            elif isinstance(node.op, (Reduce, ArgReduce)):
                self._flush()
                self._reduce_kernel(node, out_args)
            else:
                self._flush()
                self._host_step(node)
                if self.loops and node.op.lowering(node) == "scan":
                    from .loops import as_loop

                    as_loop(self, self.steps[-1])
        output_args = []
        for j, var in enumerate(fg.outputs):
            if id(var) in out_args and out_args[id(var)] not in output_args:
                output_args.append(out_args[id(var)])
            elif not isinstance(var.type, TensorType):    # e.g. a sparse matrix: copied by its own method
                self._flush()
                index = self.new_arg("output", f"out{j}", f"output {j}", var)
                source = self.const_arg(var) if isinstance(var, Constant) else self.arg_of[id(var)]
                self.steps.append(HostStep(Apply(OutputCopy(), [var], [var.type]), [source], [index]))
                output_args.append(index)
            else:                         # an input, constant, host result or repeat: copied
                index = self.new_arg("output", f"out{j}", f"output {j}", var)
                self._store_in_kernel(var, index)
                output_args.append(index)
        self._flush()
        for k, step in enumerate(s for s in self.steps if isinstance(s, Kernel)):
            family = "elemwise" if step.reduce is None else "reduce" if isinstance(step.reduce, Reduce) else "argreduce"
            step.name = f"gc_{family}_{k}"
        return Plan(self.args, self.steps, self.constants, output_args)

    def _materialized(self, nodes):
        """(ids of DimShuffle nodes run as host views, ids of variables stored in arrays): those
        some host op reads, and costly elementwise results (exp, tanh, ...) that two or more
        kernels would each recompute if it were fused into both."""
        needed, host_views = set(), set()
        for node in reversed(nodes):
            fusible_consumer = is_fusible(node) and id(node) not in host_views
            if isinstance(node.op, DimShuffle) and id(node.outputs[0]) in needed:
                host_views.add(id(node))
                fusible_consumer = False
            if fusible_consumer or isinstance(node.op, (Reduce, ArgReduce)):
                continue
            for inp in node.inputs:
                if inp.owner is not None and is_fusible(inp.owner):
                    needed.add(id(inp))
        outputs = {id(o) for o in self.fgraph.outputs}
        reach = {}        # id(var) -> the one kernel (its stored variable or reduction) computing it, or _MANY
        for node in reversed(nodes):
            if isinstance(node.op, (Reduce, ArgReduce)):
                root = id(node)
            elif is_fusible(node) and id(node) not in host_views:
                var = node.outputs[0]
                root = reach.get(id(var))
                if id(var) in needed or id(var) in outputs:
                    root = id(var)
                elif root is _MANY and isinstance(node.op, Elemwise) and node.op.scalar.name in COSTLY:
                    needed.add(id(var))
                    root = id(var)
            else:
                continue
            if root is None:
                continue
            for inp in node.inputs:
                if inp.owner is not None and is_fusible(inp.owner):
                    seen = reach.setdefault(id(inp), root)
                    if seen != root:
                        reach[id(inp)] = _MANY
        return host_views, needed

    def _target(self, var, out_args) -> int:
        """The arg a kernel stores `var` into: an output if it is one, else a temporary."""
        outputs = self.fgraph.outputs
        if any(o is var for o in outputs):
            j = next(k for k, o in enumerate(outputs) if o is var)
            index = self.new_arg("output", f"out{j}", f"output {j}", var)
            out_args[id(var)] = index
        else:
            index = self.new_arg("temp", f"tmp{len(self.args)}", f"intermediate {var!r}", var)
        self.arg_of[id(var)] = index
        return index

    def _store_elementwise(self, var, out_args):
        index = self._target(var, out_args)
        self.arg_of.pop(id(var))          # the kernel computes it: it is not its own leaf
        self._store_in_kernel(var, index)
        self.arg_of[id(var)] = index

    def _store_in_kernel(self, var, index):
        axes = tuple(range(var.ndim))
        trial = _KernelBuilder(self, var.ndim)
        value = trial.value(var, axes)
        key = (var.ndim, trial.sources())
        pending = self.pending
        written = {a for a, _ in pending.kernel.stores} if pending else set()
        if pending and pending.key == key and not written & {leaf.arg for leaf in trial.kernel.leaves}:
            value = pending.value(var, axes)
        else:
            self._flush()
            pending = self.pending = trial
            trial.key = key
            trial.kernel.sources = key[1]
        pending.kernel.stores.append((index, value))

    def _flush(self):
        if self.pending is not None:
            self.steps.append(self.pending.kernel)
            self.pending = None

    def _reduce_kernel(self, node, out_args):
        (x,) = node.inputs
        builder = _KernelBuilder(self, x.ndim)
        value = builder.value(x, tuple(range(x.ndim)))
        builder.kernel.sources = builder.sources()
        builder.kernel.reduce = node.op
        index = self._target(node.outputs[0], out_args)
        builder.kernel.stores.append((index, value))
        self.steps.append(builder.kernel)

    def _host_step(self, node):
        inputs = []
        for inp in node.inputs:
            if isinstance(inp, Constant):
                inputs.append(self.const_arg(inp))
            else:
                inputs.append(self.arg_of[id(inp)])
        outputs = []
        for out in node.outputs:
            if not getattr(node.op, "returns_view", False) and any(o is out for o in self.fgraph.outputs):
                index = self._target(out, self.out_args)      # a fresh array: it is the output itself
            else:
                index = self.new_arg("temp", f"tmp{len(self.args)}", f"result of {node.op}", out)
            self.arg_of[id(out)] = index
            outputs.append(index)
        self.steps.append(HostStep(node, inputs, outputs))


class _KernelBuilder:
    """Builds one loop kernel: leaves, statements in dependency order, stores."""

    def __init__(self, lowering, ndim):
        self.lowering = lowering
        self.kernel = Kernel(ndim)
        self.memo = {}            # (id(var), axes) -> operand
        self.temp_count = 0
        self.key = None

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

    def _is_leaf(self, v) -> bool:
        return v.owner is None or id(v) in self.lowering.arg_of or not is_fusible(v.owner)

    def _parents(self, v, ax):
        if self._is_leaf(v):
            return []
        op = v.owner.op
        if isinstance(op, DimShuffle):
            return [(v.owner.inputs[0], _through_dimshuffle(op, ax))]
        return [(i, _through_elemwise(i, ax)) for i in v.owner.inputs]

    def _emit(self, v, ax):
        if is_literal(v):
            return ("literal", v.data.reshape(()).item(), v.dtype)
        if isinstance(v, Constant):
            return self._leaf(self.lowering.const_arg(v), v, ax)
        if self._is_leaf(v):
            return self._leaf(self.lowering.arg_of[id(v)], v, ax)
        op = v.owner.op
        if isinstance(op, DimShuffle):
            return self.memo[(id(v.owner.inputs[0]), _through_dimshuffle(op, ax))]
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
        cname = self.lowering.args[index].cname + ("" if count == 0 else f"_v{count}")
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
