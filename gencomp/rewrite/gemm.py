"""The BLAS rewrites: sums and differences of float matrices with a scaled product become one Gemm
(beta * C + alpha * dot(A, B)), which a compiled entry point runs as one BLAS call."""

from __future__ import annotations

import numpy as np

from ..tensor.elemwise import Elemwise
from .engine import register_graph_rule
from .rules import _const_value, _name


def _matrix_sums(fgraph, build) -> int:
    """Replace each float-matrix `x + y` or `x - y` (both orders for +) for which
    `build(kept, other, sign, single, out)` gives a variable of its type `out.type`; `single(var)`:
    whether only one node reads var. The number of replacements."""
    clients = fgraph.clients()

    def single(var):
        return len(clients.get(id(var), ())) == 1

    replace = {}
    for node in fgraph.toposort():
        out = node.outputs[0]
        if _name(node) not in ("add", "sub") or len(node.inputs) != 2 or out.ndim != 2 \
                or out.dtype not in ("float32", "float64"):
            continue
        sign = -1.0 if _name(node) == "sub" else 1.0
        for ki, oi in [(0, 1), (1, 0)] if sign > 0 else [(0, 1)]:
            new = build(node.inputs[ki], node.inputs[oi], sign, single, out)
            if new is not None and new.type == out.type:
                replace[id(out)] = new
                break
    fgraph.replace_all(replace)
    return len(replace)


def _scaled_product(var, single):
    """(scale, A, B) if var is dot(A, B), a * dot(A, B) or -dot(A, B) read only here."""
    from ..tensor.blas import Dot

    if var.owner is None or not single(var):
        return None
    node, scale = var.owner, 1.0
    if _name(node) == "mul" and len(node.inputs) == 2:
        const = [i for i in node.inputs if _const_value(i) is not None]
        if len(const) != 1 or isinstance(_const_value(const[0]), complex):
            return None
        scale = float(_const_value(const[0]))
        var = next(i for i in node.inputs if i is not const[0])
    elif _name(node) == "neg":
        scale, var = -1.0, node.inputs[0]
    if var.owner is None or not isinstance(var.owner.op, Dot) or var.owner.op.batched or not single(var):
        return None
    a, b = var.owner.inputs
    if a.ndim != 2 or b.ndim != 2 or not a.dtype == b.dtype == var.dtype:
        return None
    return scale, a, b


@register_graph_rule("specialize")
def gemm(fgraph) -> int:
    """C - a * dot(A, B), C + a * dot(A, B), C +- dot(A, B) (float matrices) -> Gemm(+-a)(C, A, B).

    Only where the product and its scaling feed nothing else, so no product is computed twice,
    and C is a full matrix (not broadcast); never with a = 0 (BLAS may then skip the product and
    lose its NaNs).
    """
    from ..tensor.blas import Gemm

    def build(c, other, sign, single, out):
        found = _scaled_product(other, single)
        # a broadcast C (a bias row) would have to be materialized first: fusing `+ b` into
        # the next elementwise kernel is cheaper
        if found is None or c.dtype != out.dtype or c.broadcastable != out.broadcastable:
            return None
        scale, a, b = found
        alpha = sign * scale
        return Gemm(alpha)(c, a, b) if alpha != 0 and np.isfinite(alpha) else None

    return _matrix_sums(fgraph, build)


def _same_shape(model, var) -> bool:
    """Whether `model` is an elementwise function of `var` alone (and constants), typed like it:
    then its shape is var's."""
    if model.broadcastable != var.broadcastable:
        return False
    stack = [model]
    while stack:
        v = stack.pop()
        if v is var or _const_value(v) is not None:
            continue
        if v.owner is None or not isinstance(v.owner.op, Elemwise):
            return False
        stack.extend(v.owner.inputs)
    return True


def _constant_factor(v, like):
    """The real number `v` is when multiplied with `like`: a constant, fill(m, constant) with m of
    like's shape (what the gradient of l2 * sum(W ** 2) holds), or a product of those; else None."""
    value = _const_value(v)
    if value is not None:
        return None if isinstance(value, complex) else float(value)
    if v.owner is None:
        return None
    if _name(v.owner) == "second" and _same_shape(v.owner.inputs[0], like):
        return _constant_factor(v.owner.inputs[1], like)
    if _name(v.owner) == "mul" and len(v.owner.inputs) == 2:
        a, b = (_constant_factor(i, like) for i in v.owner.inputs)
        return None if a is None or b is None else a * b
    return None


def _scaled(var, single):
    """(c, x) when var is c * x with c a product of real constants (through nested products and
    negations, each read only here), else (1.0, var)."""
    scale = 1.0
    while var.owner is not None and single(var):
        node = var.owner
        if _name(node) == "neg":
            scale, var = -scale, node.inputs[0]
            continue
        if _name(node) != "mul" or len(node.inputs) != 2:
            break
        a, b = node.inputs
        factor = _constant_factor(a, b)
        if factor is not None:
            scale, var = scale * factor, b
            continue
        factor = _constant_factor(b, a)
        if factor is None:
            break
        scale, var = scale * factor, a
    return scale, var


@register_graph_rule("specialize")
def gemm_update(fgraph) -> int:
    """W - c * Gemm{a, b}(k * W, A, B) -> Gemm{-c*a, 1 - c*b*k}(W, A, B) (and with +, or C = W):
    an SGD step with an L2 term, `W - lr * (dot(X.T, G) + l2 * W)`, as one BLAS call that reads
    and writes W once (in place when W is an update's old value), instead of three passes."""
    from ..tensor.blas import Gemm

    def build(w, other, sign, single, out):
        c, g = _scaled(other, single)
        if g.owner is None or not isinstance(g.owner.op, Gemm) or not single(g) or w.type != out.type:
            return None
        k, base = _scaled(g.owner.inputs[0], single)
        if base is not w:
            return None
        alpha, beta = sign * c * g.owner.op.alpha, 1.0 + sign * c * g.owner.op.beta * k
        if alpha == 0 or not (np.isfinite(alpha) and np.isfinite(beta)):
            return None
        return Gemm(alpha, beta)(w, *g.owner.inputs[1:])

    return _matrix_sums(fgraph, build)
