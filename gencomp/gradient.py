"""Automatic differentiation: reverse-mode grad over the graph, jacobian, hessian and verify_grad.

Gradients are ordinary graphs: they are optimized, compiled and cached like any other.
Each op gives `grad(inputs, output_grads, outputs)`; elementwise ops take theirs from
their table row.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from .graph import Apply, Constant, Op, Variable, toposort
from .tensor import math as tm
from .tensor.elemwise import Elemwise
from .tensor.table import SCALARS
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable


class DisconnectedInputError(ValueError):
    """A variable in `wrt` does not influence the cost."""


class GradientError(AssertionError):
    """verify_grad found an analytic gradient that disagrees with finite differences."""


def _as_list(wrt):
    return (list(wrt), True) if isinstance(wrt, (list, tuple)) else ([wrt], False)


class DisconnectedType:
    """The type of the gradient of a cost with respect to an input it does not depend on
    (Theano's gradient.DisconnectedType, returned for return_disconnected='Disconnected')."""

    def __call__(self, name=None):
        return Variable(self, None, None, name)

    def __eq__(self, other):
        return type(other) is DisconnectedType

    def __hash__(self):
        return hash(DisconnectedType)

    def __repr__(self):
        return "DisconnectedType"


_DISCONNECTED_INPUTS = ("raise", "warn", "ignore")
_RETURN_DISCONNECTED = ("zero", "None", "Disconnected")


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", known_grads=None,
         return_disconnected="zero"):
    """d cost / d wrt for a scalar `cost`; `wrt` a variable, shared variable, or a list of them.

    Theano 1.0's options: `consider_constant` lists expressions no gradient flows through;
    `known_grads` maps variables to gradients to start from (with or instead of `cost`, which may
    then be None); `disconnected_inputs` says what a `wrt` the cost does not depend on does
    ('raise', 'warn' or 'ignore'); `return_disconnected` what its gradient is then ('zero': zeros
    of its type, 'None', or 'Disconnected': a variable of DisconnectedType).
    """
    if disconnected_inputs not in _DISCONNECTED_INPUTS:
        raise ValueError(f"disconnected_inputs must be one of {_DISCONNECTED_INPUTS}, got {disconnected_inputs!r}")
    if return_disconnected not in _RETURN_DISCONNECTED:
        raise ValueError(f"return_disconnected must be one of {_RETURN_DISCONNECTED}, got {return_disconnected!r}")
    if cost is None and not known_grads:
        raise ValueError("grad needs a cost, or known_grads to start from")
    targets, as_list = _as_list(wrt)
    for w in targets:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must hold symbolic variables, got {w!r}")
    grads, sources = _initial_grads(cost, known_grads)
    stop = {id(v) for v in (consider_constant or [])}
    nodes = toposort(sources)
    relevant = _depends_on(nodes, {id(w) for w in targets})
    for node in reversed(nodes):
        if id(node) not in relevant:
            continue
        out_grads = [grads.get(id(o)) for o in node.outputs]
        if all(g is None for g in out_grads):
            continue
        out_grads = [g if g is not None else tm.zeros_like(o) for g, o in zip(out_grads, node.outputs)]
        if not hasattr(node.op, "grad"):
            raise TypeError(f"{node.op} has no gradient; it cannot appear between the cost and wrt")
        in_grads = node.op.grad(node.inputs, out_grads, node.outputs)
        for inp, g in zip(node.inputs, in_grads):
            if g is None or isinstance(inp, Constant) or id(inp) in stop:
                continue
            grads[id(inp)] = g if id(inp) not in grads else grads[id(inp)] + g
    results = [_result(w, grads.get(id(w)), nodes, sources, disconnected_inputs, return_disconnected)
               for w in targets]
    return results if as_list else results[0]


def _initial_grads(cost, known_grads):
    """({id(var): gradient} to start the backward pass from, the variables it starts from)."""
    grads, sources = {}, []
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise TypeError(f"grad needs a scalar cost, got a {cost.ndim}-d tensor {cost.type}; "
                            f"reduce it first (e.g. cost.sum() or cost.mean())")
        if cost.dtype not in ("float32", "float64"):
            raise TypeError(f"grad needs a float cost, got dtype {cost.dtype}")
        grads[id(cost)] = tm.ones_like(cost)
        sources.append(cost)
    for var, g in (known_grads or {}).items():
        var, g = as_tensor_variable(var), as_tensor_variable(g)
        if g.ndim != var.ndim:
            raise TypeError(f"known_grads: the gradient of {var!r} has {g.ndim} dimensions, "
                            f"{var!r} has {var.ndim}")
        grads[id(var)] = g if id(var) not in grads else grads[id(var)] + g
        sources.append(var)
    return grads, sources


def _result(w, g, nodes, sources, disconnected_inputs, return_disconnected):
    """The gradient returned for `w` (g: what the backward pass accumulated, or None)."""
    if g is None:
        connected = any(w is s for s in sources) or any(id(w) in map(id, node.inputs) for node in nodes)
        if connected:          # reaches the cost only through comparisons or integer ops: zero
            return tm.zeros_like(w)
        message = (f"grad: the cost does not depend on {w!r} (it is not part of the computational graph "
                   f"of the cost); pass disconnected_inputs='ignore' (or 'warn') to get "
                   f"{'zeros' if return_disconnected == 'zero' else return_disconnected}")
        if disconnected_inputs == "raise":
            raise DisconnectedInputError(message)
        if disconnected_inputs == "warn":
            warnings.warn(message, stacklevel=3)
        if return_disconnected == "None":
            return None
        if return_disconnected == "Disconnected":
            return DisconnectedType()()
        return tm.zeros_like(w)
    if g.broadcastable != w.broadcastable and g.ndim == w.ndim:
        g = tm.fill(w, g) if any(a and not b for a, b in zip(g.broadcastable, w.broadcastable)) else g
    return g


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):
    """The vector-Jacobian product v^T (d f / d wrt), v = `eval_points` (Theano's T.Lop).

    `f` and `eval_points` are a variable each or matching lists; `wrt` a variable or a list (the
    result follows its form). Computed as grad with known_grads={f: eval_points}.
    """
    fs, _ = _as_list(f)
    vs, _ = _as_list(eval_points)
    if len(fs) != len(vs):
        raise ValueError(f"Lop: {len(fs)} expressions but {len(vs)} eval_points")
    known = {}
    for fi, vi in zip(fs, vs):
        fi, vi = as_tensor_variable(fi), as_tensor_variable(vi)
        if vi.ndim != fi.ndim:
            raise TypeError(f"Lop: eval point {vi!r} has {vi.ndim} dimensions, its expression {fi!r} {fi.ndim}")
        known[fi] = vi
    return grad(None, wrt, consider_constant=consider_constant, disconnected_inputs=disconnected_inputs,
                known_grads=known)


def Rop(f, wrt, eval_points, disconnected_outputs="raise", return_disconnected="zero"):
    """The Jacobian-vector product (d f / d wrt) v, v = `eval_points` (Theano's T.Rop).

    `wrt` and `eval_points` are a variable each or matching lists; the result follows `f`'s form.
    Built by the double-Lop trick: g(u) = u^T J is linear in u, so d(g . v)/du = J v; u is a
    zeros_like(f) the result never reads (its shape at most, which f has anyway). As in Theano, the
    result is a function of every input of `f` (Theano evaluates the others at zeros): J v of
    dot(x, W) in W is dot(x, V), and `function([W, V, x], Rop(dot(x, W), W, V))` must not find W
    unused. Where the product does not read such an input, it reads f's shape instead (a shape
    check at run time, never f itself).
    """
    fs, f_list = _as_list(f)
    ws, _ = _as_list(wrt)
    vs, _ = _as_list(eval_points)
    if len(ws) != len(vs):
        raise ValueError(f"Rop: {len(ws)} variables in wrt but {len(vs)} eval_points")
    vs = [as_tensor_variable(v) for v in vs]
    for w, v in zip(ws, vs):
        if v.ndim != w.ndim:
            raise TypeError(f"Rop: eval point {v!r} has {v.ndim} dimensions, {w!r} has {w.ndim}")
    results = []
    for fi in fs:
        fi = as_tensor_variable(fi)
        u = tm.zeros_like(fi if fi.dtype in ("float32", "float64") else tm.cast(fi, "float64"))
        g = grad(None, ws, disconnected_inputs="ignore", known_grads={fi: u})
        known = {gj: vj for gj, vj in zip(g, vs) if _depends_on_var(gj, u)}
        if not known:
            if disconnected_outputs == "raise":
                raise DisconnectedInputError(f"Rop: {fi!r} does not depend on any variable in wrt; pass "
                                             f"disconnected_outputs='ignore' to get zeros")
            results.append(None if return_disconnected == "None" else tm.zeros_like(u))
            continue
        r = grad(None, u, disconnected_inputs="ignore", known_grads=known)
        if not {id(v) for v in _free_inputs([fi])} <= {id(v) for v in _free_inputs([r])}:
            from .tensor.shape import patternbroadcast, reshape, shape

            r = patternbroadcast(reshape(r, shape(fi), ndim=fi.ndim), r.broadcastable)
        results.append(r)
    return results if f_list else results[0]


def _depends_on_var(expr, var) -> bool:
    return expr is var or bool(_depends_on(toposort([expr]), {id(var)}))


def _depends_on(nodes, sources) -> set:
    """ids of the nodes with an input that depends on a variable in `sources`."""
    live, result = set(sources), set()
    for node in nodes:
        if any(id(i) in live for i in node.inputs):
            result.add(id(node))
            live.update(id(o) for o in node.outputs)
    return result


_JACOBIANS = itertools.count()


class Jacobian(Op):
    """d y[i] / d wrt for every i of a vector `y`, stacked: computed row by row by a compiled gradient."""

    def __init__(self, y, wrt, inputs):
        self.y, self.wrt, self.inputs = y, wrt, list(inputs)
        self._compiled = None
        self.number = next(_JACOBIANS)

    def signature(self):
        # numbered in the order a program builds them: the same program gets the same cache key in
        # every process (an id() would not), and two jacobians never merge
        return f"Jacobian{{{self.number}}}"

    def make_node(self, *inputs):
        w = self.wrt
        return Apply(self, list(inputs), [TensorType(self.y.dtype, (False,) + tuple(w.broadcastable))])

    def perform(self, node, inputs):
        from .function import function

        if self._compiled is None:
            index = TensorType("int64", ())("jacobian_row")
            row = grad(self.y[index], self.wrt, disconnected_inputs="ignore")
            self._compiled = function([index, *self.inputs], row, on_unused_input="ignore")
            self._shapes = function(self.inputs, [self.y.shape[0], self.wrt.shape], on_unused_input="ignore")
        length, wrt_shape = self._shapes(*inputs)
        rows = [self._compiled(k, *inputs) for k in range(int(length))]
        if not rows:
            return [np.zeros((0, *wrt_shape), dtype=self.y.dtype)]
        return [np.stack(rows)]

    def grad(self, inputs, output_grads, outputs):
        raise TypeError("the gradient of a jacobian is not supported (build hessians with hessian())")


def _free_inputs(outputs) -> list:
    from .sharedvar import SharedVariable

    seen, result = set(), []
    for node in toposort(outputs):
        for v in node.inputs:
            if v.owner is None and not isinstance(v, (Constant, SharedVariable)) and id(v) not in seen:
                seen.add(id(v))
                result.append(v)
    for v in outputs:
        if v.owner is None and not isinstance(v, (Constant, SharedVariable)) and id(v) not in seen:
            seen.add(id(v))
            result.append(v)
    return result


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Jacobian of a vector (or scalar) `expression` with respect to `wrt` (a variable or list)."""
    expression = as_tensor_variable(expression)
    targets, as_list = _as_list(wrt)
    if expression.ndim == 0:
        result = grad(expression, targets, consider_constant, disconnected_inputs)
        return result if as_list else result[0]
    if expression.ndim != 1:
        raise TypeError("jacobian needs a scalar or vector expression; flatten it first")
    results = []
    for w in targets:
        inputs = _free_inputs([expression, w])
        op = Jacobian(expression, w, inputs)
        results.append(op(*inputs))
    return results if as_list else results[0]


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Hessian of a scalar `cost` with respect to each vector in `wrt`."""
    targets, as_list = _as_list(wrt)
    results = []
    for w in targets:
        if w.ndim != 1:
            raise TypeError("hessian takes vectors in wrt")
        g = grad(cost, w, consider_constant, disconnected_inputs)
        results.append(jacobian(g, w, consider_constant, disconnected_inputs))
    return results if as_list else results[0]


def numeric_grad(fn, points, eps):
    """Central finite differences of a scalar numpy function at `points` (list of arrays)."""
    result = []
    for k, p in enumerate(points):
        g = np.zeros_like(p, dtype=np.float64)
        flat = p.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = fn(*points)
            flat[i] = saved - eps
            minus = fn(*points)
            flat[i] = saved
            g.reshape(-1)[i] = (plus - minus) / (2 * eps)
        result.append(g)
    return result


def verify_grad(fun, pt, n_tests=2, rng=None, eps=None, abs_tol=None, rel_tol=None):
    """Check T.grad of `fun` against central finite differences at the points `pt` (Theano's verify_grad).

    `fun` maps symbolic tensors to a symbolic tensor; a random projection makes it scalar.
    Raises GradientError on a mismatch.
    """
    from .function import function

    rng = rng or np.random.default_rng(42)
    pt = [np.array(p, dtype=np.float64) if np.asarray(p).dtype.kind != "f" else np.array(p) for p in pt]
    dtype = np.result_type(*pt).name
    eps = eps or (1e-7 if dtype == "float64" else 1e-3)
    tol = abs_tol or (1e-4 if dtype == "float64" else 1e-2)
    rtol = rel_tol or tol
    for _ in range(n_tests):
        inputs = [TensorType(p.dtype.name, (False,) * p.ndim)(f"input{i}") for i, p in enumerate(pt)]
        out = as_tensor_variable(fun(*inputs))
        probe = function(inputs, out)
        projection = rng.standard_normal(np.shape(probe(*pt))).astype(out.dtype)
        cost = tm.sum(out * as_tensor_variable(projection))
        cost_fn = function(inputs, cost)
        grad_fn = function(inputs, grad(cost, inputs, disconnected_inputs="ignore"))
        analytic = grad_fn(*pt)
        numeric = numeric_grad(lambda *xs: float(cost_fn(*xs)), [p.copy() for p in pt], eps)
        for k, (a, n) in enumerate(zip(analytic, numeric)):
            err = np.abs(a - n)
            if np.any(err > tol + rtol * np.abs(n)):
                raise GradientError(f"gradient of input {k} differs from finite differences: max abs "
                                    f"error {err.max():.3g}\nanalytic {a}\nnumeric {n}")


def disconnected_grad(x):
    """`x`, through which no gradient flows (theano.gradient.disconnected_grad)."""
    return tm.disconnected_grad(x)


zero_grad = disconnected_grad        # theano.gradient.zero_grad: same value, zero gradient
consider_constant = disconnected_grad  # theano.gradient.consider_constant: the same, as a function of x


class _GradientMap(Elemwise):
    """`x` itself going forward (the identity row's kernel, so the generated loops copy or fuse it
    like any elementwise op), its gradient mapped by `_map` going back."""

    def __init__(self, *params):
        super().__init__(SCALARS["stop_gradient"])
        self.params = tuple(float(p) for p in params)

    def signature(self):
        return f"{type(self).__name__}{{{','.join(repr(p) for p in self.params)}}}"

    def __reduce__(self):
        return type(self), self.params

    def grad(self, inputs, output_grads, outputs):
        (x,), (g,) = inputs, output_grads
        if x.dtype not in ("float32", "float64", "complex64", "complex128"):
            return [None]
        gx = self._map(g)
        return [gx if gx.dtype == x.dtype else tm.cast(gx, x.dtype)]


class GradClip(_GradientMap):
    """Theano's GradClip: the identity, whose gradient is clipped to [lower, upper]."""

    def __init__(self, lower, upper):
        if not float(lower) <= float(upper):
            raise ValueError(f"grad_clip: the lower bound {lower} is above the upper bound {upper}")
        super().__init__(lower, upper)

    def _map(self, g):
        return tm.clip(g, *self.params)


class GradScale(_GradientMap):
    """Theano's GradScale: the identity, whose gradient is multiplied by `multiplier`."""

    def _map(self, g):
        return g * self.params[0]


def grad_clip(x, lower_bound, upper_bound):
    """`x`, whose gradient is clipped elementwise to [lower_bound, upper_bound] (theano.gradient.grad_clip:
    recurrent networks clip what flows back through time this way)."""
    return GradClip(lower_bound, upper_bound)(x)


def grad_scale(x, multiplier):
    """`x`, whose gradient is multiplied by `multiplier` (theano.gradient.grad_scale)."""
    return GradScale(multiplier)(x)
