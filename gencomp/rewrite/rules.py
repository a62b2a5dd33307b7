"""The rewrite rules, by phase. Each is a small pure function of one node (or of the whole graph).

No rule may change a result for finite, infinite or NaN inputs beyond rounding:
x - x and x * 0 are therefore left alone for floats.
"""

from __future__ import annotations

import numpy as np

from ..graph import Constant
from ..tensor import math as tm
from ..tensor.elemwise import DimShuffle, Elemwise
from ..tensor.shape import Reshape
from .engine import register_graph_rule, register_node_rule


def _name(node) -> str | None:
    return node.op.scalar.name if isinstance(node.op, Elemwise) else None


def _const_value(var):
    """The value of a one-element constant (which broadcasts everywhere, so it decides no shape)."""
    if isinstance(var, Constant) and var.data.size == 1:
        return var.data.reshape(-1)[0].item()
    return None


def _is(var, value) -> bool:
    v = _const_value(var)
    return v is not None and v == value and not isinstance(v, complex)


def _neutral_zero(var, any_zero: bool, negative: bool = True) -> bool:
    v = _const_value(var)
    if v is None or isinstance(v, complex) or v != 0:
        return False
    return any_zero or bool(np.signbit(v)) == negative


def _is_float(var) -> bool:
    """Rewrites that move an operation into another dtype are only exact on floats (ints wrap)."""
    return var.dtype in ("float32", "float64")


def _owner_name(var) -> str | None:
    return _name(var.owner) if var.owner is not None else None


def _keep(node, var):
    """`var` shaped and typed as node's output (or None when it cannot be)."""
    out = node.outputs[0]
    if var.dtype != out.dtype:
        var = tm.cast(var, out.dtype)
    if var.ndim < out.ndim or any(o and not v for o, v in zip(out.broadcastable, var.broadcastable)) \
            or var.broadcastable != out.broadcastable:
        others = [i for i in node.inputs if i is not var and not isinstance(i, Constant)]
        model = others[0] if others else None
        if model is None or model.ndim != out.ndim:
            return None if var.broadcastable != out.broadcastable else var
        var = tm.fill(model, var) if var.ndim == out.ndim else None
        if var is None or var.broadcastable != out.broadcastable:
            return None
    return var


# ---- merge ----------------------------------------------------------------------------------------

def _const_key(var):
    return ("const", var.type, np.ascontiguousarray(var.data).tobytes(), getattr(var, "weak", False))


@register_graph_rule("merge")
def merge(fgraph) -> None:
    """Common-subexpression elimination: equal constants and equal (op, inputs) nodes become one."""
    canon, replace = {}, {}
    for node in fgraph.toposort():
        for pos, inp in enumerate(node.inputs):
            inp = replace.get(id(inp), inp)
            if isinstance(inp, Constant):
                inp = canon.setdefault(_const_key(inp), inp)
            node.inputs[pos] = inp
        key = (node.op, tuple(id(i) for i in node.inputs))
        if key in canon:
            for old, new in zip(node.outputs, canon[key].outputs):
                replace[id(old)] = new
        else:
            canon[key] = node
    fgraph.outputs = [replace.get(id(o), o) for o in fgraph.outputs]


# ---- canonicalize ---------------------------------------------------------------------------------

@register_node_rule("canonicalize")
def constant_folding(node):
    """A node whose inputs are all constants is computed now, through its numpy implementation."""
    if not node.inputs or not all(isinstance(i, Constant) for i in node.inputs):
        return None
    if not hasattr(node.op, "perform") or type(node.op).__name__ in ("Jacobian",) \
            or getattr(node.op, "stateful", False):          # random draws change from call to call
        return None
    values = node.op.perform(node, [i.data for i in node.inputs])
    result = []
    for out, value in zip(node.outputs, values):
        const = tm.as_tensor_variable(np.array(value, dtype=out.dtype))
        if const.broadcastable != out.broadcastable:
            if const.ndim != out.ndim or any(o and not c for o, c in zip(out.broadcastable, const.broadcastable)):
                return None
            const = tm.constant(np.array(value, dtype=out.dtype))
            const.type = out.type
        result.append(const)
    return result


@register_node_rule("canonicalize")
def neutral_elements(node):
    """x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1, x ** 1 -> x (same dtype and shape only)."""
    name = _name(node)
    if name not in ("mul", "add", "sub", "true_div", "pow"):
        return None
    a, b = node.inputs
    keep = None
    if name == "mul":
        keep = a if _is(b, 1) else b if _is(a, 1) else None
    elif name == "add":          # for floats only -0.0 is neutral: -0.0 + 0.0 is +0.0
        exact = not node.outputs[0].dtype.startswith(("float", "complex"))
        keep = a if _neutral_zero(b, exact) else b if _neutral_zero(a, exact) else None
    elif name == "sub":          # for floats only +0.0 is neutral: -0.0 - -0.0 is +0.0
        exact = not node.outputs[0].dtype.startswith(("float", "complex"))
        keep = a if _neutral_zero(b, exact, negative=False) else None
    elif name in ("true_div", "pow"):
        keep = a if _is(b, 1) else None
    if keep is None:
        return None
    var = _keep(node, keep)
    return [var] if var is not None else None


@register_node_rule("canonicalize")
def scalar_fill(node):
    """fill(s, y) -> y when s has only length-1 dimensions (a scalar): it decides no shape, and its
    value is never read. The seed of a gradient is ones_like(cost): without this the cost is
    computed only to be discarded (in every step of a scan's backward loop, too)."""
    if _name(node) != "second" or not all(node.inputs[0].broadcastable):
        return None
    var = _keep(node, node.inputs[1])
    return [var] if var is not None else None


@register_node_rule("canonicalize")
def self_subtraction(node):
    """x - x -> 0 for integers (for floats inf - inf and nan - nan are nan, so it stays)."""
    if _name(node) != "sub" or node.inputs[0] is not node.inputs[1]:
        return None
    out = node.outputs[0]
    if out.dtype.startswith(("float", "complex")) or out.dtype != node.inputs[0].dtype:
        return None
    return [tm.zeros_like(node.inputs[0])]


@register_node_rule("canonicalize")
def double_negation(node):
    """-(-x) -> x; for integers -(a - b) -> b - a (for floats a == b would turn -0.0 into +0.0)."""
    if _name(node) != "neg":
        return None
    (x,) = node.inputs
    inner = _owner_name(x)
    if inner == "neg":
        return [x.owner.inputs[0]]
    if inner == "sub" and not x.dtype.startswith(("float", "complex")):
        a, b = x.owner.inputs
        out = tm.sub(b, a)
        return [out] if out.type == node.outputs[0].type else None
    return None


@register_node_rule("canonicalize")
def collect_constants(node):
    """(x * c1) * c2 -> x * (c1 * c2), and the same for +, for integers (exact, wrapping included).

    Floats are left alone: x * 1e-200 * 1e-200 is not x * 0.0, and (x + c1) + c2 may differ
    from x + (c1 + c2) by more than rounding when x cancels c1.
    """
    name = _name(node)
    if name not in ("mul", "add") or node.outputs[0].dtype.startswith(("float", "complex", "bool")):
        return None
    a, b = node.inputs
    if not isinstance(b, Constant):
        a, b = b, a
    if not isinstance(b, Constant) or _owner_name(a) != name:
        return None
    x, c = a.owner.inputs
    if not isinstance(c, Constant):
        x, c = c, x
    if not isinstance(c, Constant) or isinstance(x, Constant) or a.dtype != node.outputs[0].dtype:
        return None
    op = tm.mul if name == "mul" else tm.add
    out = op(x, op(c, b))
    return [out] if out.type == node.outputs[0].type else None


@register_node_rule("canonicalize")
def dimshuffle_of_dimshuffle(node):
    """Two DimShuffles in a row become one; a DimShuffle that changes nothing disappears."""
    if not isinstance(node.op, DimShuffle):
        return None
    (x,) = node.inputs
    order = node.op.new_order
    if order == tuple(range(x.ndim)):
        return [x]
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    inner = x.owner.op.new_order
    combined = tuple("x" if d == "x" else inner[d] for d in order)
    base = x.owner.inputs[0]
    if combined == tuple(range(base.ndim)):
        return [base]
    return [DimShuffle(base.broadcastable, combined)(base)]


@register_node_rule("canonicalize")
def reshape_of_reshape(node):
    """reshape(reshape(x, s1), s2) -> reshape(x, s2) when s1 and s2 are constants that make the
    first reshape fail exactly when the second would (so no shape error is hidden)."""
    if not isinstance(node.op, Reshape):
        return None
    x, s2 = node.inputs
    if x.owner is None or not isinstance(x.owner.op, Reshape):
        return None
    s1 = x.owner.inputs[1]
    if not isinstance(s1, Constant) or not isinstance(s2, Constant) or -1 in s2.data:
        return None
    known = int(np.prod([d for d in s1.data if d != -1]))
    total = int(np.prod(s2.data))
    same_failures = known == total if -1 not in s1.data else known != 0 and total % known == 0
    if not same_failures:
        return None
    out = Reshape(node.op.ndim)(x.owner.inputs[0], s2)
    return [out] if out.type == node.outputs[0].type else None


@register_node_rule("canonicalize")
def reduce_of_length_one(node):
    """A sum / prod / max / min / mean over dimensions known to have length 1 drops them:
    sum(x.dimshuffle('x', 0), axis=0) is x (what the gradient of a broadcast bias builds)."""
    from ..tensor.reduce import Reduce

    if not isinstance(node.op, Reduce):
        return None
    (x,) = node.inputs
    out = node.outputs[0]
    if out.dtype != x.dtype or not all(x.broadcastable[a] for a in node.op.axes):
        return None
    kept = [d for d in range(x.ndim) if d not in node.op.axes]
    return [DimShuffle(x.broadcastable, kept)(x)]


@register_node_rule("canonicalize")
def shape_entry(node):
    """x.shape[i] for a constant i is ShapeI(i)(x): a length read, no shape vector to build and index."""
    from ..tensor.shape import ShapeI, ShapeOp
    from ..tensor.subtensor import Subtensor

    if type(node.op) is not Subtensor or len(node.op.spec) != 1 or node.op.spec[0][0] != "int" \
            or not isinstance(node.op.spec[0][1], int) or node.inputs[0].owner is None \
            or not isinstance(node.inputs[0].owner.op, ShapeOp):
        return None
    x, i = node.inputs[0].owner.inputs[0], node.op.spec[0][1]
    if not -x.ndim <= i < x.ndim:
        return None                      # numpy's IndexError stays where the user wrote it
    return [ShapeI(i % x.ndim)(x)]


# ---- shape inference (Theano's ShapeFeature): a shape is read from the inputs, not measured on a result ----

_ONE = ("one",)              # a length known to be 1: an inserted 'x' dimension, or a checked input's


def _length_sources(var, d):
    """How the length of dimension d of `var` follows from its op's inputs: (sources, checks) with
    `sources` the (variable, dim) pairs (or _ONE) it equals and `checks` groups of pairs that the op
    requires equal; None when the op's output shape is its own business (a leaf)."""
    from ..tensor.blas import Dot
    from ..tensor.nnet import Softmax
    from ..tensor.reduce import ArgReduce, Reduce

    node = var.owner
    if node is None:
        return ([_ONE], []) if var.broadcastable[d] else None
    op, ins = node.op, node.inputs
    if isinstance(op, Elemwise):
        aligned = [(i, d - (var.ndim - i.ndim)) for i in ins if d - (var.ndim - i.ndim) >= 0]
        stretching = [(i, k) for i, k in aligned if not i.broadcastable[k]]
        return (stretching or aligned), []
    if isinstance(op, DimShuffle):
        k = op.new_order[d]
        return ([_ONE] if k == "x" else [(ins[0], k)]), []
    if isinstance(op, Softmax):
        return [(ins[0], d)], []
    if isinstance(op, Reduce) or (isinstance(op, ArgReduce) and op.axis is not None):
        kept = [a for a in range(ins[0].ndim) if a not in op.reduced_axes(ins[0].ndim)]
        return [(ins[0], kept[d])], []
    if isinstance(op, Dot) and not op.batched:
        x, y = ins
        inner = [[(x, x.ndim - 1), (y, 0)]]
        return ([(x, d)] if d < x.ndim - 1 else [(y, 1)]), inner
    return None


def _expand(pairs):
    """`pairs` traced up to leaves: (leaf pairs, whether a known 1 is among them, check groups met)."""
    leaves, one, checks, stack, seen = [], False, [], list(pairs), set()
    while stack:
        pair = stack.pop()
        if pair is _ONE:
            one = True
            continue
        key = (id(pair[0]), pair[1])
        if key in seen:
            continue
        seen.add(key)
        found = _length_sources(*pair)
        if found is None:
            leaves.append(pair)
        else:
            stack.extend(found[0])
            checks.extend(found[1])
    return leaves, one, checks


def _length(var, d, allow_checks):
    """A scalar int64 graph for len(var.shape[d]) that reads only leaf shapes, keeping the checks
    of the ops it looks through (a host step: only when `allow_checks`); None when nothing is gained."""
    from ..tensor.shape import CheckedLength, ShapeI

    leaves, one, checks = _expand([(var, d)])
    groups, done, pending = [(leaves, one)], set(), list(checks)
    while pending:                         # each check is traced to leaves too, once
        group = pending.pop()
        key = frozenset((id(v), k) for v, k in group)
        if key in done:
            continue
        done.add(key)
        g_leaves, g_one, g_checks = _expand(group)
        if len(g_leaves) + g_one > 1:
            groups.append((g_leaves, g_one))
        pending.extend(g_checks)
    if len(groups) == 1 and not leaves:
        return tm.as_tensor_variable(np.int64(1))
    if len(groups) == 1 and len(leaves) == 1 and not one:
        leaf, k = leaves[0]
        return None if leaf is var else ShapeI(k)(leaf)
    if not allow_checks:
        return None
    tensors = []
    for group, _ in groups:
        for v, _k in group:
            if not any(v is t for t in tensors):
                tensors.append(v)
    position = {id(t): j for j, t in enumerate(tensors)}
    return CheckedLength([(tuple((position[id(v)], k) for v, k in group), o) for group, o in groups])(*tensors)


def _shape_i_read(var):
    """(the tensor, axes) when `var` is ShapeI(axes)(tensor), else None."""
    from ..tensor.shape import ShapeI

    node = var.owner
    return (node.inputs[0], node.op.axes) if node is not None and isinstance(node.op, ShapeI) else None


@register_graph_rule("canonicalize")
def scan_unused_outputs(fgraph) -> int:
    """A scan's stacked outputs that nothing reads and that are not states are no longer computed:
    the step loses them (BPTT computes the gradient of every float sequence, e.g. an LSTM's mask,
    whether or not it is asked for)."""
    from ..scan_op import Scan

    users = fgraph.clients()
    pairs = {}
    for node in fgraph.toposort():
        op = node.op
        if not isinstance(op, Scan):
            continue
        keep = [k for k, out in enumerate(node.outputs) if k < op.n_states or users.get(id(out))]
        if len(keep) == len(node.outputs) or len(keep) == 0:
            continue
        inner = [op.inner_outputs[k] for k in keep] + (op.inner_outputs[-1:] if op.until else [])
        new = op.rebuilt(inner, [op.last_only[k] for k in keep])(*node.inputs)
        new = new if isinstance(new, list) else [new]
        for k, out in zip(keep, new):
            pairs[id(node.outputs[k])] = out
    fgraph.replace_all(pairs)
    return len(pairs)


@register_graph_rule("specialize")
def scan_save_mem(fgraph) -> int:
    """A scan's stacked output of which the graph reads only the last row (`x[-1]`, `x[-1:]`, and
    a state nothing reads, as the hidden rows of a state with taps) keeps only that row: the loop
    writes a ring of two rows, not a stack as long as the loop (Theano's scan_save_mem; a scan of a
    million steps returning its last state needs two states' memory)."""
    from ..scan_op import Scan
    from ..tensor.subtensor import Subtensor

    def last_row_only(client) -> bool:
        node, _ = client
        if node == "output" or type(node.op) is not Subtensor:
            return False
        first = node.op.spec[0] if node.op.spec else None
        return first in (("int", -1), ("slice", -1, None, None), ("slice", -1, None, 1))

    users = fgraph.clients()
    pairs = {}
    for node in fgraph.toposort():
        op = node.op
        if not isinstance(op, Scan):
            continue
        last = [was or all(last_row_only(c) and c[0].inputs[0] is out for c in users.get(id(out), ()))
                for was, out in zip(op.last_only, node.outputs)]
        if last == list(op.last_only):
            continue
        new = op.rebuilt(op.inner_outputs, last)(*node.inputs)
        pairs.update((id(old), out) for old, out in zip(node.outputs, new if isinstance(new, list) else [new]))
    fgraph.replace_all(pairs)
    return len(pairs)


@register_graph_rule("canonicalize")
def shape_of_shape_preserving(fgraph) -> int:
    """Theano's shape inference: the shape of an elementwise result, a dimshuffle, a reduction, a
    softmax or a dot is read from the shapes of their inputs, so `function([x], (x * x).shape)`
    computes no product. What those ops would have checked (broadcast lengths, a dot's inner
    lengths) is still checked, by CheckedLength, so a mismatch still raises (DESIGN.md); as that
    check is a host step, it is only built when it saves computing the measured result."""
    from ..tensor.shape import ShapeI, ShapeOp

    users = fgraph.clients()
    pairs = {}
    for node in fgraph.toposort():
        if isinstance(node.op, (ShapeI, ShapeOp)):
            x = node.inputs[0]
            measured_only = all(n != "output" and isinstance(n.op, (ShapeI, ShapeOp)) for n, _ in users[id(x)])
            new = _inferred_shape(node, allow_checks=measured_only)
            if new is not None:
                pairs[id(node.outputs[0])] = new
    fgraph.replace_all(pairs)
    return len(pairs)


def _inferred_shape(node, allow_checks):
    """The replacement of ShapeI / ShapeOp `node` that reads input shapes, or None."""
    from ..tensor.shape import ShapeI, ShapeOp

    (x,) = node.inputs
    if x.owner is None or x.ndim == 0:
        return None
    axes = node.op.axes if isinstance(node.op, ShapeI) else tuple(range(x.ndim))
    lengths = [_length(x, a, allow_checks) for a in axes]
    if all(n is None for n in lengths):
        return None
    lengths = [ShapeI(a)(x) if n is None else n for a, n in zip(axes, lengths)]
    if isinstance(node.op, ShapeI):            # several axes: the product of their lengths
        out = lengths[0]
        for n in lengths[1:]:
            out = tm.mul(out, n)
        return out
    reads = [_shape_i_read(n) for n in lengths]
    whole = reads[0][0] if reads[0] is not None else None
    if whole is not None and whole.ndim == x.ndim and all(
            r is not None and r[0] is whole and r[1] == (a,) for a, r in zip(axes, reads)):
        return ShapeOp()(whole)                # the whole shape of one input
    if x.ndim == 1:
        return tm.dimshuffle(lengths[0], ["x"])
    return tm.stack(lengths)


@register_node_rule("canonicalize")
def argmax_of_monotonic(node):
    """argmax/argmin of softmax(x) (along its axis), exp(x), sigmoid(x) or tanh(x) is that of x:
    the op preserves order, so it need not run at all."""
    from ..tensor.nnet import Softmax
    from ..tensor.reduce import ArgReduce

    if not isinstance(node.op, ArgReduce) or node.inputs[0].owner is None:
        return None
    inner = node.inputs[0].owner
    if isinstance(inner.op, Softmax) and not inner.op.log:
        if node.op.axis != inner.op.axis and inner.outputs[0].ndim > 1:
            return None
    elif _name(inner) not in ("exp", "sigmoid", "tanh") or not _is_float(inner.inputs[0]) \
            or inner.inputs[0].dtype != inner.outputs[0].dtype:
        return None
    return [ArgReduce(node.op.kind, node.op.axis)(inner.inputs[0])]


# ---- stabilize ------------------------------------------------------------------------------------

@register_node_rule("stabilize")
def log1p_expm1(node):
    """log(1 + x) -> log1p(x), exp(x) - 1 -> expm1(x): exact near 0 where the naive forms lose digits."""
    name = _name(node)
    if name == "log" and _owner_name(node.inputs[0]) == "add" and _is_float(node.inputs[0]):
        a, b = node.inputs[0].owner.inputs
        x = b if _is(a, 1) else a if _is(b, 1) else None
        if x is not None:
            out = tm.log1p(x)
            return [out] if out.type == node.outputs[0].type else None
    if name == "sub" and _is(node.inputs[1], 1) and _owner_name(node.inputs[0]) == "exp" \
            and _is_float(node.inputs[0].owner.inputs[0]):
        out = tm.expm1(node.inputs[0].owner.inputs[0])
        return [out] if out.type == node.outputs[0].type else None
    return None


@register_node_rule("stabilize")
def log_sigmoid(node):
    """log(sigmoid(x)) -> -softplus(-x); log(1 - sigmoid(x)) -> -softplus(x): finite for large |x|."""
    if _name(node) != "log":
        return None
    (x,) = node.inputs
    dtype = node.outputs[0].dtype          # sigmoid computes in it: integers are converted first
    if _owner_name(x) == "sigmoid":
        out = -tm.softplus(-tm.cast(x.owner.inputs[0], dtype))
    elif _owner_name(x) == "sub" and _is(x.owner.inputs[0], 1) and _owner_name(x.owner.inputs[1]) == "sigmoid":
        out = -tm.softplus(tm.cast(x.owner.inputs[1].owner.inputs[0], dtype))
    else:
        return None
    return [out] if out.type == node.outputs[0].type else None


def _one_plus_exp(var):
    """t when `var` is 1 + exp(t) or exp(t) + 1, else None."""
    if _owner_name(var) != "add":
        return None
    a, b = var.owner.inputs
    for one, e in ((a, b), (b, a)):
        if _is(one, 1) and _owner_name(e) == "exp":
            return e.owner.inputs[0]
    return None


def _negated(t):
    """-t, without a double negation (exact: negating a float only flips its sign)."""
    return t.owner.inputs[0] if _owner_name(t) == "neg" else tm.neg(t)


@register_node_rule("stabilize")
def logistic_as_sigmoid(node):
    """c / (1 + exp(t)) -> c * sigmoid(-t), exp(t) / (1 + exp(t)) -> sigmoid(t), 1 - sigmoid(t) ->
    sigmoid(-t), and (a / (1 + exp(t))) * exp(t) -> a * sigmoid(t), which T.grad makes of the first.
    Theano's tutorial writes the logistic out: once exp(-t) is below the float's epsilon, 1 - p is 0,
    log(1 - p) is -inf and its gradient 0 * inf = nan; as sigmoids, log_sigmoid makes them softplus."""
    name, out = _name(node), node.outputs[0]
    if name == "true_div":
        num, den = node.inputs
        t = _one_plus_exp(den)
        if t is None or t.dtype != out.dtype:
            return None
        if _owner_name(num) == "exp" and num.owner.inputs[0] is t:
            new = tm.sigmoid(t)
        elif _const_value(num) is not None and not isinstance(_const_value(num), complex):
            new = tm.sigmoid(_negated(t))
            new = new if _is(num, 1) else num * new
        else:
            return None
    elif name == "sub" and _is(node.inputs[0], 1) and _owner_name(node.inputs[1]) == "sigmoid":
        new = tm.sigmoid(_negated(node.inputs[1].owner.inputs[0]))
    elif name == "mul":
        a, b = node.inputs
        for q, e in ((a, b), (b, a)):
            if _owner_name(q) == "true_div" and _owner_name(e) == "exp":
                t = _one_plus_exp(q.owner.inputs[1])
                if t is not None and t is e.owner.inputs[0]:
                    new = q.owner.inputs[0] * tm.sigmoid(t)
                    break
        else:
            return None
    else:
        return None
    return [new] if new.type == out.type else None


@register_node_rule("stabilize")
def log_softmax(node):
    """log(softmax(x)) -> log_softmax(x)."""
    from ..tensor.nnet import Softmax

    if _name(node) != "log":
        return None
    (x,) = node.inputs
    if x.owner is not None and isinstance(x.owner.op, Softmax) and not x.owner.op.log:
        out = Softmax(x.owner.op.axis, log=True)(x.owner.inputs[0])
        return [out] if out.type == node.outputs[0].type else None
    return None


# ---- specialize -----------------------------------------------------------------------------------

@register_node_rule("specialize")
def pow_to_products(node):
    """x ** 2 -> x * x, x ** 3 -> x * x * x, x ** -1 -> 1 / x (float x): no pow() call in the loop."""
    if _name(node) != "pow":
        return None
    x, e = node.inputs
    value = _const_value(e)
    if value not in (2, 3, -1, 0.0) or isinstance(value, bool) or x.dtype != node.outputs[0].dtype \
            or x.dtype not in ("float32", "float64"):
        return None
    if value == 2:
        out = x * x
    elif value == 3:
        out = x * x * x
    elif value == -1:
        out = tm.true_div(np.asarray(1, dtype=x.dtype), x)
    else:
        return None
    out = _keep(node, out)
    return [out] if out is not None and out.type == node.outputs[0].type else None


@register_node_rule("specialize")
def softmax_as_kernels(node):
    """softmax / log_softmax -> max, then exp and sum, then one elementwise pass: C kernels (the
    max and the exp-sum fuse their elementwise work) instead of a numpy host step."""
    from ..tensor.nnet import Softmax

    if not isinstance(node.op, Softmax):
        return None
    (x,) = node.inputs
    if x.ndim == 0 or x.dtype not in ("float32", "float64"):
        return None
    axis = node.op.axis
    shifted = x - tm.max(x, axis=axis, keepdims=True)
    if node.op.log:
        out = shifted - tm.log(tm.sum(tm.exp(shifted), axis=axis, keepdims=True))
    else:
        e = tm.exp(shifted)
        out = e / tm.sum(e, axis=axis, keepdims=True)
    return [out] if out.type == node.outputs[0].type else None
