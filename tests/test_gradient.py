"""Autodiff: every differentiable op's T.grad against central finite differences in float64.

`check_grad` projects an output onto a fixed random tensor to get a scalar cost,
takes T.grad of it, compiles the gradient with the C backend and with the numpy
reference evaluator (device='py'), and compares both with central differences of
the cost (evaluated by the reference evaluator, which costs no compile). Also:
the T.grad API (list / single / shared wrt, errors, disconnected inputs),
jacobian, hessian and verify_grad.
"""

from __future__ import annotations

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from gencomp import function, shared
from gencomp.gradient import DisconnectedInputError, GradientError, hessian, jacobian, verify_grad
from gencomp.graph import Apply, Op
from gencomp.tensor.table import GRADS, ROWS
from gencomp.tensor.type import TensorType

EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-7


def numeric_grad(cost_fn, points, which, eps=EPS):
    """Central differences of the scalar `cost_fn(*points)` with respect to points[k] for k in `which`."""
    points = [np.array(p, copy=True) if isinstance(p, np.ndarray) else p for p in points]
    result = []
    for k in which:
        p = points[k]
        g = np.zeros(p.shape)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = float(cost_fn(*points))
            flat[i] = saved - eps
            minus = float(cost_fn(*points))
            flat[i] = saved
            gflat[i] = (plus - minus) / (2 * eps)
        result.append(g)
    return result


def project(out, inputs, points, seed=0):
    """A scalar cost sum(out * c) with a fixed random c of out's shape (found with the reference evaluator)."""
    value = function(inputs, out, device="py", on_unused_input="ignore")(*points)
    c = np.random.default_rng(seed).uniform(0.5, 1.5, np.shape(value)) * np.where(
        np.random.default_rng(seed + 1).random(np.shape(value)) < 0.5, -1, 1)
    return T.sum(out * c) if out.ndim else out * float(c)


def check_grad(inputs, out, points, wrt=None, rtol=RTOL, atol=ATOL, eps=EPS, what=""):
    """T.grad of a projection of `out` w.r.t. `wrt` (default: the float inputs) against finite differences."""
    points = [np.asarray(p) for p in points]
    if wrt is None:
        wrt = [v for v, p in zip(inputs, points) if p.dtype.kind == "f"]
    which = [next(k for k, v in enumerate(inputs) if v is w) for w in wrt]
    cost = out if out.ndim == 0 else project(out, inputs, points)
    grads = T.grad(cost, wrt)
    assert isinstance(grads, list) and len(grads) == len(wrt)
    for g, w in zip(grads, wrt):
        assert g.ndim == w.ndim and g.dtype == w.dtype, f"{what}: grad type {g.type} for {w.type}"
    numeric = numeric_grad(function(inputs, cost, device="py", on_unused_input="ignore"), points, which, eps)
    for device in ("cpu", "py"):
        f = function(inputs, grads, device=device, on_unused_input="ignore")
        analytic = f(*points)
        for k, (a, n) in enumerate(zip(analytic, numeric)):
            label = f"{what} [{device}] d/d {wrt[k].name or k}"
            assert a.shape == points[which[k]].shape, f"{label}: gradient shape {a.shape}"
            assert a.dtype == points[which[k]].dtype, f"{label}: gradient dtype {a.dtype}"
            np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=label)
    return grads


RNG = np.random.default_rng(2024)


def uni(shape, lo=-2.0, hi=2.0, rng=RNG):
    return rng.uniform(lo, hi, shape)


def away_from_integers(shape, rng=RNG):
    """Values whose fractional part is in (0.1, 0.4) or (0.6, 0.9): floor/ceil/round are flat there."""
    k = rng.integers(-3, 3, shape)
    frac = rng.uniform(0.1, 0.4, shape) + rng.choice([0.0, 0.5], shape)
    return k + frac


def signed(shape, lo, hi, rng=RNG):
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


# ------------------------------------------------------------------------------- elementwise table rows

SHAPE = (3, 4)


def _divisible_pair():
    y = signed(SHAPE, 1.2, 2.0)
    x = y * away_from_integers(SHAPE)        # x / y keeps away from the jumps of floor_div and mod
    return [x, y]


# name -> points on which the op is smooth (2-input ops get two arrays)
DOMAIN = {
    "add": lambda: [uni(SHAPE), uni(SHAPE)],
    "sub": lambda: [uni(SHAPE), uni(SHAPE)],
    "mul": lambda: [uni(SHAPE), uni(SHAPE)],
    "true_div": lambda: [uni(SHAPE), signed(SHAPE, 0.5, 2.0)],
    "floor_div": _divisible_pair,
    "mod": _divisible_pair,
    "pow": lambda: [uni(SHAPE, 0.5, 2.0), uni(SHAPE, -2.0, 2.0)],
    "maximum": lambda: (lambda a: [a, a + signed(SHAPE, 0.1, 1.0)])(uni(SHAPE)),
    "minimum": lambda: (lambda a: [a, a + signed(SHAPE, 0.1, 1.0)])(uni(SHAPE)),
    "neg": lambda: [uni(SHAPE)],
    "abs": lambda: [signed(SHAPE, 0.1, 2.0)],
    "sgn": lambda: [signed(SHAPE, 0.1, 2.0)],
    "exp": lambda: [uni(SHAPE)],
    "log": lambda: [uni(SHAPE, 0.2, 3.0)],
    "log1p": lambda: [uni(SHAPE, -0.8, 3.0)],
    "log2": lambda: [uni(SHAPE, 0.2, 3.0)],
    "log10": lambda: [uni(SHAPE, 0.2, 3.0)],
    "exp2": lambda: [uni(SHAPE)],
    "expm1": lambda: [uni(SHAPE)],
    "sqrt": lambda: [uni(SHAPE, 0.2, 3.0)],
    "sin": lambda: [uni(SHAPE, -3, 3)],
    "cos": lambda: [uni(SHAPE, -3, 3)],
    "tan": lambda: [uni(SHAPE, -1.2, 1.2)],
    "tanh": lambda: [uni(SHAPE)],
    "sigmoid": lambda: [uni(SHAPE, -4, 4)],
    "softplus": lambda: [uni(SHAPE, -4, 4)],
    "floor": lambda: [away_from_integers(SHAPE)],
    "ceil": lambda: [away_from_integers(SHAPE)],
    "round": lambda: [away_from_integers(SHAPE)],
    "round_half_away_from_zero": lambda: [away_from_integers(SHAPE)],
    "trunc": lambda: [away_from_integers(SHAPE)],
    "arcsin": lambda: [uni(SHAPE, -0.9, 0.9)],
    "arccos": lambda: [uni(SHAPE, -0.9, 0.9)],
    "arctan": lambda: [uni(SHAPE, -3, 3)],
    "arctan2": lambda: [signed(SHAPE, 0.2, 2.0), signed(SHAPE, 0.2, 2.0)],
    "sinh": lambda: [uni(SHAPE)],
    "cosh": lambda: [uni(SHAPE)],
    "arcsinh": lambda: [uni(SHAPE, -3, 3)],
    "arccosh": lambda: [uni(SHAPE, 1.2, 4.0)],
    "arctanh": lambda: [uni(SHAPE, -0.9, 0.9)],
    "deg2rad": lambda: [uni(SHAPE)],
    "rad2deg": lambda: [uni(SHAPE)],
    "erf": lambda: [uni(SHAPE)],
    "erfc": lambda: [uni(SHAPE)],
    "gamma": lambda: [uni(SHAPE, 0.3, 4.0)],
    "gammaln": lambda: [uni(SHAPE, 0.3, 4.0)],
    "psi": lambda: [uni(SHAPE, 0.3, 4.0)],
}
# rows that are not plain functions of float inputs, each tested on its own below
SPECIAL = {"switch", "cast", "second", "stop_gradient", "tri_gamma"}   # tri_gamma: no gradient (Theano's)


def _float_output(row) -> bool:
    if row.name in SPECIAL:
        return True
    ins = [T.dmatrix(f"x{i}") for i in range(row.arity)]
    try:
        return getattr(T, row.name)(*ins).dtype.startswith("float")
    except TypeError:              # no float form at all (bitwise ops)
        return False


def test_every_row_with_a_float_output_is_tested():
    assert set(GRADS) == {row.name for row in ROWS}
    float_rows = {row.name for row in ROWS if _float_output(row)}
    untested = float_rows - set(DOMAIN) - SPECIAL
    assert not untested, f"elementwise rows with a float output but no gradient test: {sorted(untested)}"


@pytest.mark.parametrize("name", sorted(DOMAIN))
def test_elementwise_row_gradient(name):
    row = next(r for r in ROWS if r.name == name)
    points = DOMAIN[name]()
    assert len(points) == row.arity
    inputs = [T.dmatrix(f"x{i}") for i in range(row.arity)]
    out = getattr(T, name)(*inputs)
    check_grad(inputs, out, points, what=name)


def test_switch_gradient():
    c = T.matrix("c", dtype="bool")
    a, b = T.dmatrices("a", "b")
    cond = RNG.random(SHAPE) < 0.5
    check_grad([c, a, b], T.switch(c, a, b), [cond, uni(SHAPE), uni(SHAPE)], wrt=[a, b], what="switch")
    # a condition computed from a float input is connected, with a zero gradient through it
    check_grad([a, b], T.switch(a > 0, a * b, b ** 2), [signed(SHAPE, 0.1, 2), uni(SHAPE)], what="switch(a>0)")


def test_cast_gradient():
    x = T.dmatrix("x")
    through32 = T.cast(T.cast(x, "float32") * 3, "float64")
    check_grad([x], through32, [uni(SHAPE)], rtol=1e-3, atol=1e-3, eps=1e-3, what="cast via float32")
    g = T.grad(T.sum(T.cast(x, "float32")), x)
    assert g.dtype == "float64"
    # casting to an integer type stops the gradient (zero, not an error)
    gi = T.grad(T.sum(x + T.cast(T.cast(x, "int64"), "float64")), x)
    np.testing.assert_array_equal(function([x], gi)(uni(SHAPE)), np.ones(SHAPE))


def test_fill_and_stop_gradient():
    x = T.dmatrix("x")
    s = T.dscalar("s")
    check_grad([x, s], T.fill(x, s) * x, [uni(SHAPE), 0.7], what="fill")
    check_grad([x, s], T.zeros_like(x) + T.ones_like(x) * s, [uni(SHAPE), 0.7], what="zeros_like/ones_like")
    # no gradient flows through disconnected_grad / stop_gradient: d/dx sum(stop(x) * x) is stop(x) = x
    for stop in (T.disconnected_grad, T.stop_gradient):
        g = T.grad(T.sum(stop(x) * x), x)
        a = uni(SHAPE)
        for device in ("cpu", "py"):
            np.testing.assert_allclose(function([x], g, device=device)(a), a, rtol=1e-15)


def _masks(x, y):
    return [T.eq(x, y), T.neq(x, y), T.lt(x, y), T.gt(x, y), T.le(x, y), T.ge(x, y),
            T.and_(x > 0, y > 0), T.or_(x > 0, y > 0), T.xor(x > 0, y > 0), T.invert(x > 0)]


def _mask_points():
    a, b = uni(SHAPE), uni(SHAPE)
    b[0, 0] = a[0, 0] + 0.5
    return [a, b]


def test_gradient_through_comparisons_is_zero():
    x, y = T.dmatrices("x", "y")
    out = sum(T.cast(m, "float64") * (k + 1) for k, m in enumerate(_masks(x, y))) * x
    check_grad([x, y], out, _mask_points(), wrt=[x], what="comparisons (wrt x)")


def test_input_reaching_the_cost_only_through_comparisons_gets_zeros():
    """As in Theano: y is connected (through lt etc.), its gradient is zero, T.grad does not raise."""
    x, y = T.dmatrices("x", "y")
    out = sum(T.cast(m, "float64") * (k + 1) for k, m in enumerate(_masks(x, y))) * x
    check_grad([x, y], out, _mask_points(), what="comparisons (wrt x and y)")


def test_check_grad_helper_detects_a_wrong_gradient():
    x = T.dmatrix("x")
    with pytest.raises(AssertionError, match="d/d x"):
        check_grad([x], _WrongSquare()(x), [uni(SHAPE)], what="wrong square")


# ----------------------------------------------------------------------------------------- reductions

RED_AXES = [(None, False), (0, False), (-1, False), ((0, 2), False), (1, True), ((0, 2), True), (None, True)]


def distinct(shape, rng=RNG):
    """Values at least 0.05 apart (no ties for max / min), none near zero."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2 + 0.5) * 0.1
    return rng.permutation(v).reshape(shape) + 0.01


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "var", "std"])
def test_reduction_gradient(name):
    x = T.tensor3("x")
    outs = [getattr(T, name)(x, axis=axis, keepdims=keep) for axis, keep in RED_AXES]
    out = T.concatenate([o.flatten() if o.ndim else o.dimshuffle("x") for o in outs])
    point = distinct((2, 3, 4)) if name in ("max", "min") else uni((2, 3, 4), 0.5, 1.5)
    check_grad([x], out, [point], what=name)


def test_reduction_methods_and_fused_producer_gradients():
    x = T.dmatrix("x")
    out = T.stack([(x ** 2).sum(), x.T.mean(axis=0).sum(), x.max(axis=1).sum(), T.exp(x).sum(axis=0).prod(),
                   x.std(axis=0, ddof=1).sum(), T.var(x, axis=1, keepdims=True).sum()])
    check_grad([x], out, [distinct((3, 4))], what="methods")


def test_prod_gradient_with_zeros():
    """d prod / d x_i is the product of the others, also where some x_j is 0 (Theano's Prod.grad)."""
    x = T.dmatrix("x")
    point = uni((3, 4), 0.5, 1.5)
    point[0, 1] = 0.0              # one zero in row 0
    point[1, 0] = point[1, 3] = 0.0  # two zeros in row 1
    check_grad([x], T.prod(x, axis=1), [point], what="prod with zeros (axis 1)")
    check_grad([x], T.prod(x), [np.where(np.arange(12).reshape(3, 4) == 5, 0.0, point)], what="prod with zeros")


# ------------------------------------------------------------------------------------------- shape ops

def test_dimshuffle_transpose_gradients():
    x = T.tensor3("x")
    r = T.row("r")
    out = T.concatenate([x.dimshuffle(2, 0, 1).flatten(), x.T.flatten(), x.transpose(1, 0, 2)[0].flatten(),
                         x.dimshuffle("x", 0, 1, "x", 2).flatten(), (r.dimshuffle(1) * 2), r.T.flatten()])
    check_grad([x, r], out, [uni((2, 3, 4)), uni((1, 3))], what="dimshuffle")


def test_reshape_flatten_gradients():
    x = T.dmatrix("x")
    n = T.lscalar("n")
    out = T.concatenate([(x.reshape((n, -1)) ** 2).flatten(), x.T.reshape((2, 6))[1] * 3, x.flatten(),
                         x.reshape((3, 2, 2)).flatten(2)[:, 1], x.reshape(x.shape[::-1], ndim=2)[0]])
    check_grad([x, n], out, [uni((4, 3)), 6], wrt=[x], what="reshape")


def test_concatenate_and_stack_gradients():
    a = T.dmatrix("a")
    b = T.dmatrix("b")
    v = T.dvector("v")
    out = T.concatenate([T.concatenate([a, b], axis=1).flatten(), T.concatenate([a.T, b.T]).flatten() ** 2,
                         T.stack([v, v * 2, a[0, :3]], axis=1).flatten(), T.stack([v, v]).flatten()])
    check_grad([a, b, v], out, [uni((2, 3)), uni((2, 4)), uni(3)], what="concatenate/stack")


def test_alloc_gradient():
    s = T.dscalar("s")
    r = T.row("r")
    n = T.lscalar("n")
    out = T.concatenate([T.alloc(s, n, 3).flatten(), T.alloc(r, n, 3).flatten()])
    check_grad([s, r, n], out, [0.3, uni((1, 3)), 2], wrt=[s, r], what="alloc")


# -------------------------------------------------------------------------------------------- indexing

def test_subtensor_gradients():
    x = T.dmatrix("x")
    i, j = T.lscalars("i", "j")
    out = T.concatenate([x[1], x[-1] * 2, x[1:3].flatten(), x[::-1].flatten(), x[::-2, 1], x[i:j].flatten(),
                         x[i, j].dimshuffle("x"), x[:, ::-1][0] ** 2, x[None, 1:, 2].flatten()])
    check_grad([x, i, j], out, [uni((4, 3)), 1, 2], wrt=[x], what="subtensor")


def test_advanced_subtensor_gradients():
    p = T.dmatrix("p")
    y = T.lvector("y")
    out = T.concatenate([p[T.arange(p.shape[0]), y], p[[0, 2, 2, 0]].flatten(), p[:, y].flatten(),
                         p[y, 1:].flatten() ** 2])
    check_grad([p, y], out, [uni((4, 4)), np.array([1, 3, 3, 0])], wrt=[p], what="advanced subtensor")


def test_set_and_inc_subtensor_gradients():
    x = T.dmatrix("x")
    v = T.dvector("v")
    s = T.dscalar("s")
    r = T.row("r")
    idx = T.lvector("idx")
    outs = [T.set_subtensor(x[1:3], r * v), T.set_subtensor(x[::-1, 0], v), T.inc_subtensor(x[2], v * 3),
            T.inc_subtensor(x[idx], v), T.set_subtensor(x[1, 1:], s), T.inc_subtensor(x[idx, 0], s * v),
            T.inc_subtensor(x[1:3], r)]
    out = T.concatenate([o.flatten() for o in outs])
    check_grad([x, v, s, r, idx], out, [uni((4, 4)), uni(4), 0.4, uni((1, 4)), np.array([0, 3, 3, 1])],
               wrt=[x, v, s, r], what="set/inc_subtensor")


# ---------------------------------------------------------------------------------------------- blas

def test_dot_gradients_every_combination():
    v, w = T.dvectors("v", "w")
    a, b = T.dmatrices("a", "b")
    out = T.concatenate([T.dot(v, w).dimshuffle("x"), T.dot(a, v), T.dot(v, a), T.dot(a, b).flatten(),
                         (a @ b.T).flatten(), T.outer(v, w).flatten(), (a.T @ v) * 2, (v @ w).dimshuffle("x")])
    check_grad([v, w, a, b], out, [uni(3), uni(3), uni((3, 3)), uni((3, 3))], what="dot")


def test_dot_gradient_rectangular():
    a = T.dmatrix("a")
    b = T.dmatrix("b")
    v = T.dvector("v")
    out = T.concatenate([T.dot(a, b).flatten(), T.dot(b.T, v), T.dot(v, b), T.dot(a, v)])
    check_grad([a, b, v], out, [uni((2, 3)), uni((3, 4)), uni(3)], what="dot rect")


BATCHED = {"t3@t3": ((2, 3, 4), (2, 4, 3)), "t3@m": ((2, 3, 4), (4, 2)), "m@t3": ((2, 3), (2, 3, 4)),
           "t3@v": ((2, 3, 4), (4,)), "v@t3": ((3,), (2, 3, 4)), "t4@t3": ((2, 2, 5, 3), (2, 3, 4)),
           "t3@t4": ((2, 5, 3), (3, 2, 3, 4))}


@pytest.mark.parametrize("case", list(BATCHED))
def test_batched_matmul_gradient(case):
    left, right = BATCHED[case]
    x = T.tensor(dtype="float64", shape=(None,) * len(left), name="x")
    y = T.tensor(dtype="float64", shape=(None,) * len(right), name="y")
    check_grad([x, y], T.matmul(x, y), [uni(left), uni(right)], what=case)


# ---------------------------------------------------------------------------------------------- nnet

def test_nnet_gradients():
    x = T.dmatrix("x")
    y = T.lvector("y")
    onehot = T.dmatrix("onehot")
    t = T.dmatrix("t")
    p = T.dmatrix("p")
    nn = T.nnet
    out = T.concatenate([
        nn.softmax(x).flatten(), nn.softmax(x, axis=0).flatten(), nn.log_softmax(x).flatten(),
        nn.relu(x).flatten(), nn.relu(x, alpha=0.2).flatten(), nn.sigmoid(x).flatten(), nn.softplus(x).flatten(),
        nn.categorical_crossentropy(nn.softmax(x), y), nn.categorical_crossentropy(nn.softmax(x), onehot),
        nn.categorical_crossentropy(p, y), nn.categorical_crossentropy(p, onehot),
        nn.binary_crossentropy(nn.sigmoid(x), t).flatten(), nn.binary_crossentropy(p, t).flatten()])
    xa = signed((3, 4), 0.1, 2.0)
    pa = RNG.uniform(0.1, 0.9, (3, 4))
    yv = np.array([0, 3, 1])
    check_grad([x, y, onehot, t, p], out, [xa, yv, np.eye(4)[yv] * 0.9 + 0.025, RNG.uniform(0, 1, (3, 4)), pa],
               wrt=[x, onehot, t, p], what="nnet")


def test_crossentropy_gradients_are_stable_at_extremes():
    x = T.dmatrix("x")
    y = T.lvector("y")
    t = T.dmatrix("t")
    a = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0], [0.5, 1000.0, 1000.0]])
    yv = np.array([1, 2, 0])
    tv = np.array([[1.0, 0.0, 0.5]] * 3)
    cce = T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).sum()
    bce = T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t).sum()
    lsm = T.nnet.log_softmax(x)[T.arange(3), y].sum()
    grads = [T.grad(cce, x), T.grad(bce, x), T.grad(lsm, x)]
    e = np.exp(a - a.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(3)[yv]
    sig = np.where(a >= 0, 1 / (1 + np.exp(-np.abs(a))), np.exp(-np.abs(a)) / (1 + np.exp(-np.abs(a))))
    want = [sm - onehot, sig - tv, onehot - sm]
    for device in ("cpu", "py"):
        got = function([x, y, t], grads, device=device)(a, yv, tv)
        for k, (g, w) in enumerate(zip(got, want)):
            assert np.all(np.isfinite(g)), f"{device}: gradient {k} is not finite: {g}"
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15, err_msg=f"{device} gradient {k}")


# -------------------------------------------------------------------------------------- broadcasting

def test_gradient_wrt_broadcast_inputs_sums_over_stretched_dims():
    x = T.dmatrix("x")
    r = T.row("r")
    c = T.col("c")
    s = T.dscalar("s")
    v = T.dvector("v")
    out = x * r + c ** 2 * x - s * r + T.exp(c * r) + v * s + x / (2 + r * r)
    grads = check_grad([x, r, c, s, v], out, [uni((3, 4)), uni((1, 4)), uni((3, 1)), 0.3, uni(4)],
                       what="broadcast")
    assert grads[1].broadcastable == (True, False)
    assert grads[2].broadcastable == (False, True)
    assert grads[3].ndim == 0


def test_gradient_wrt_broadcastable_shared_variable():
    x = T.dmatrix("x")
    b = shared(np.array([[0.1, -0.2, 0.3]]), name="b", broadcastable=(True, False))
    cost = T.sum(T.tanh(x + b) ** 2)
    g = T.grad(cost, b)
    assert g.broadcastable == (True, False)
    xa = uni((4, 3))
    got = function([x], g)(xa)
    want = (2 * np.tanh(xa + b.get_value()) * (1 - np.tanh(xa + b.get_value()) ** 2)).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ------------------------------------------------------------------------------------------ grad API

def test_grad_wrt_list_single_and_shared():
    x = T.dvector("x")
    W = shared(RNG.standard_normal((3, 2)), name="W")
    bias = shared(np.zeros(2), name="bias")
    cost = T.sum(T.tanh(T.dot(x, W) + bias) ** 2) + T.sum(x ** 3)
    g_list = T.grad(cost, [x, W, bias])
    assert isinstance(g_list, list) and len(g_list) == 3
    g_single = T.grad(cost, W)
    assert not isinstance(g_single, list) and g_single.ndim == 2
    g_tuple = T.grad(cost, (bias,))
    assert isinstance(g_tuple, (list, tuple)) and len(g_tuple) == 1
    xa = uni(3)
    f = function([x], g_list + [g_single, g_tuple[0]])
    cost_fn = function([x], cost, device="py")
    gx, gW, gb, gW2, gb2 = f(xa)
    np.testing.assert_array_equal(gW, gW2)
    np.testing.assert_array_equal(gb, gb2)
    np.testing.assert_allclose(gx, numeric_grad(cost_fn, [xa], [0])[0], rtol=RTOL, atol=ATOL)
    for var, analytic in ((W, gW), (bias, gb)):          # finite differences through set_value
        value = var.get_value()
        numeric = np.zeros_like(value)
        for i in range(value.size):
            for sign in (1, -1):
                moved = value.copy()
                moved.reshape(-1)[i] += sign * EPS
                var.set_value(moved)
                numeric.reshape(-1)[i] += sign * float(cost_fn(xa)) / (2 * EPS)
        var.set_value(value)
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=var.name)
    # the gradient graph compiles and caches like any other: the same graph again is a cache hit
    again = function([x], T.grad(T.sum(T.tanh(T.dot(x, W) + bias) ** 2) + T.sum(x ** 3), [x, W, bias]) +
                     [g_single, g_tuple[0]])
    assert again.cache_hit
    assert again.cache_key == f.cache_key


def test_sgd_step_with_gradient_updates_matches_numpy():
    x = T.dmatrix("x")
    y = T.lvector("y")
    W = shared(np.zeros((3, 2)), name="W")
    b = shared(np.zeros(2), name="b")
    p = T.nnet.softmax(T.dot(x, W) + b)
    cost = T.nnet.categorical_crossentropy(p, y).mean()
    gW, gb = T.grad(cost, [W, b])
    train = function([x, y], cost, updates=[(W, W - 0.5 * gW), (b, b - 0.5 * gb)])
    xa, ya = uni((5, 3)), np.array([0, 1, 1, 0, 1])
    Wn, bn = np.zeros((3, 2)), np.zeros(2)
    for _ in range(5):
        z = xa @ Wn + bn
        e = np.exp(z - z.max(1, keepdims=True))
        sm = e / e.sum(1, keepdims=True)
        loss = -np.log(sm[np.arange(5), ya]).mean()
        d = (sm - np.eye(2)[ya]) / 5
        np.testing.assert_allclose(train(xa, ya), loss, rtol=1e-12)
        Wn, bn = Wn - 0.5 * xa.T @ d, bn - 0.5 * d.sum(0)
        np.testing.assert_allclose(W.get_value(), Wn, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.get_value(), bn, rtol=1e-12, atol=1e-15)


def test_grad_errors():
    x = T.dvector("x")
    y = T.dvector("y")
    with pytest.raises(TypeError):
        T.grad(x ** 2, x)                        # non-scalar cost
    with pytest.raises(TypeError):
        T.grad(T.sum(T.cast(x, "int64")), x)     # integer cost
    with pytest.raises(TypeError):
        T.grad(T.sum(x), [x, 3.0])               # wrt must be symbolic
    with pytest.raises(DisconnectedInputError):
        T.grad(T.sum(x ** 2), y)
    with pytest.raises(ValueError):              # DisconnectedInputError is a ValueError, as in Theano
        T.grad(T.sum(x ** 2), [x, y])
    gx, gy = T.grad(T.sum(x ** 2), [x, y], disconnected_inputs="ignore")
    f = function([x, y], [gx, gy], on_unused_input="ignore")
    a, b = uni(3), uni(5)
    got_x, got_y = f(a, b)
    np.testing.assert_allclose(got_x, 2 * a, rtol=1e-15)
    np.testing.assert_array_equal(got_y, np.zeros(5))
    assert got_y.dtype == np.float64


def test_gradient_through_argmax_and_shape_is_zero_not_disconnected():
    x = T.dmatrix("x")
    cost = T.sum(x * T.cast(T.argmax(x, axis=1), "float64").dimshuffle(0, "x")) + T.cast(x.shape[0], "float64")
    check_grad([x], cost, [distinct((3, 4))], what="argmax/shape")


# ---------------------------------------------------------------------------------- jacobian / hessian

def test_jacobian_against_numpy():
    x = T.dvector("x")
    W = T.dmatrix("W")
    y = T.tanh(T.dot(W, x))
    Jx, JW = jacobian(y, [x, W])
    Jx_single = jacobian(y, x)
    J_scalar = jacobian(T.sum(x ** 2), x)          # a scalar expression: its gradient
    Wa, xa = uni((2, 3)), uni(3)
    ya = np.tanh(Wa @ xa)
    want_x = (1 - ya ** 2)[:, None] * Wa
    want_W = np.zeros((2, 2, 3))
    for i in range(2):
        want_W[i, i, :] = (1 - ya[i] ** 2) * xa
    for device in ("cpu", "py"):
        got = function([x, W], [Jx, JW, Jx_single, J_scalar], device=device)(xa, Wa)
        np.testing.assert_allclose(got[0], want_x, rtol=1e-12, err_msg=device)
        np.testing.assert_allclose(got[1], want_W, rtol=1e-12, atol=1e-15, err_msg=device)
        np.testing.assert_allclose(got[2], want_x, rtol=1e-12, err_msg=device)
        np.testing.assert_allclose(got[3], 2 * xa, rtol=1e-12, err_msg=device)
    with pytest.raises(TypeError):
        jacobian(T.outer(x, x), x)                 # matrices must be flattened first


def test_hessian_against_numpy():
    x = T.dvector("x")
    z = T.dvector("z")
    A = T.dmatrix("A")
    H_cubic = hessian(T.sum(x ** 3), x)
    H_quad = hessian(T.dot(x, T.dot(A, x)), x)
    Hx, Hz = hessian(T.sum(x ** 2 * z) + T.sum(T.exp(z)), [x, z])
    xa, za, Aa = uni(3), uni(3), uni((3, 3))
    for device in ("cpu", "py"):
        got = function([x, z, A], [H_cubic, H_quad, Hx, Hz], device=device, on_unused_input="ignore")(xa, za, Aa)
        np.testing.assert_allclose(got[0], np.diag(6 * xa), rtol=1e-12, atol=1e-15, err_msg=device)
        np.testing.assert_allclose(got[1], Aa + Aa.T, rtol=1e-12, err_msg=device)
        np.testing.assert_allclose(got[2], np.diag(2 * za), rtol=1e-12, atol=1e-15, err_msg=device)
        np.testing.assert_allclose(got[3], np.diag(np.exp(za)), rtol=1e-12, atol=1e-15, err_msg=device)
    with pytest.raises(TypeError):
        hessian(T.sum(A ** 2), A)                   # hessian takes vectors


# -------------------------------------------------------------------------------------------- verify_grad

class _WrongSquare(Op):
    """x ** 2 with a deliberately wrong gradient (g * x instead of 2 * g * x)."""

    def signature(self):
        return "TestWrongSquare"

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, x.broadcastable)])

    def perform(self, node, inputs):
        return [np.asarray(inputs[0] ** 2)]

    def grad(self, inputs, output_grads, outputs):
        return [output_grads[0] * inputs[0]]


def test_verify_grad_accepts_right_and_rejects_wrong_gradients():
    pts = [uni((2, 3)), uni((2, 3), 0.5, 1.5)]
    verify_grad(lambda a, b: T.tanh(a) * T.log(b) + T.dot(a, b.T).sum(), pts, n_tests=1)
    verify_grad(lambda a: T.nnet.softmax(a), [uni((2, 3))], n_tests=1)
    with pytest.raises(GradientError):
        verify_grad(lambda a: _WrongSquare()(a), [uni((2, 3))], n_tests=1)
    with pytest.raises(AssertionError):            # GradientError is an AssertionError
        verify_grad(lambda a: T.sum(_WrongSquare()(a)), [uni(3)], n_tests=1)


def test_float32_gradient_keeps_dtype():
    x = T.fmatrix("x")
    g = T.grad(T.sum(T.nnet.sigmoid(x) * x), x)
    assert g.dtype == "float32"
    a = uni((2, 3)).astype(np.float32)
    got = function([x], g)(a)
    s = 1 / (1 + np.exp(-a.astype(np.float64)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, s + a * s * (1 - s), rtol=1e-5)


def test_config_floatx_is_respected_by_grad_of_float32_model():
    with gencomp.config.change(floatX="float32"):
        x = T.matrix("x")
        assert x.dtype == "float32"
        g = T.grad(T.mean(x ** 2), x)
        assert g.dtype == "float32"
