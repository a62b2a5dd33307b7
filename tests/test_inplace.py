"""Accumulating products and in-place updates: the Gemm rewrite, the CBLAS binding, shared
variables updated in their own buffers, and softmax lowered to C kernels.

1. gencomp.cblas.Gemm against numpy for every operand layout (C, Fortran, strided), empty
   dims and both float dtypes (hypothesis).
2. The gemm rule fires on C +- a * dot(A, B) and its variants, and not where the product is
   read elsewhere or a = 0; results match numpy and the unoptimized graph.
3. An update W <- f(W) writes into W's old buffer when nothing reads W later (elementwise
   kernels and Gemm alike), and never when the old value is still needed (returned, read by a
   later step, a view of it kept) or the buffer does not fit (not contiguous, read-only).
4. softmax / log_softmax become max + exp-sum kernels; an empty softmax axis raises.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gencomp
import gencomp.tensor as T
from gencomp import cblas, function, shared
from gencomp.codegen.lower import HostStep, lower
from gencomp.tensor.blas import Gemm

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


def _layout(rng, shape, layout, dtype):
    """A matrix of `shape` stored C-order, Fortran-order (a transposed view) or strided."""
    if layout == "C":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal((shape[0], 2 * shape[1] + 1)).astype(dtype)[:, 1::2]


# ---- 1. the CBLAS binding ---------------------------------------------------------------------

def test_cblas_found_for_numpy_wheel():
    """numpy's own wheel ships OpenBLAS: the binding must find it (else Gemm falls back to numpy)."""
    assert cblas.gemm_for("float64") is not None and cblas.gemm_for("float32") is not None
    assert cblas.gemm_for("int64") is None and cblas.gemm_for("complex128") is None


@PROPERTY
@given(m=st.integers(0, 7), k=st.integers(0, 7), n=st.integers(0, 7), la=st.sampled_from("CFS"),
       lb=st.sampled_from("CFS"), dtype=st.sampled_from(["float32", "float64"]),
       alpha=st.sampled_from([1.0, -0.1, 2.5]), beta=st.sampled_from([1.0, 0.0, -3.0]), seed=st.integers(0, 99))
def test_cblas_gemm_matches_numpy(m, k, n, la, lb, dtype, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    a, b = _layout(rng, (m, k), la, dtype), _layout(rng, (k, n), lb, dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    a0, b0 = a.copy(), b.copy()
    out = c.copy()
    cblas.gemm_for(dtype)(out, alpha, a, b, beta)
    want = alpha * (a0.astype("float64") @ b0.astype("float64")) + beta * c.astype("float64")
    np.testing.assert_allclose(out, want, **TOL[dtype])
    np.testing.assert_array_equal(a, a0)          # operands untouched
    np.testing.assert_array_equal(b, b0)


# ---- 2. the gemm rule -------------------------------------------------------------------------

def _ops(f):
    return [type(n.op).__name__ for n in f.fgraph.toposort()]


FORMS = {
    "C - a*dot": lambda c, a, b: c - 0.1 * T.dot(a, b),
    "C + dot*a": lambda c, a, b: c + T.dot(a, b) * 3.0,
    "a*dot + C": lambda c, a, b: 2.0 * T.dot(a, b) + c,
    "C - dot": lambda c, a, b: c - T.dot(a, b),
    "dot + C": lambda c, a, b: T.dot(a, b) + c,
    "C + -dot": lambda c, a, b: c + -T.dot(a, b),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_rule_fires_and_matches(form, dtype):
    c, a, b = T.matrix("c", dtype=dtype), T.matrix("a", dtype=dtype), T.matrix("b", dtype=dtype)
    expr = FORMS[form](c, a, b)
    f = function([c, a, b], expr)
    assert "Gemm" in _ops(f) and "Dot" not in _ops(f), f.dprint()
    with gencomp.config.change(optimizer="None"):
        plain = function([c, a, b], expr)
    rng = np.random.default_rng(1)
    for la, lb in (("C", "C"), ("F", "C"), ("C", "F"), ("S", "F")):
        args = [rng.standard_normal((4, 5)).astype(dtype), _layout(rng, (4, 3), la, dtype),
                _layout(rng, (3, 5), lb, dtype)]
        np.testing.assert_allclose(f(*args), plain(*args), **TOL[dtype])


def test_gemm_inputs_untouched_and_shape_errors():
    c, a, b = T.dmatrix("c"), T.dmatrix("a"), T.dmatrix("b")
    f = function([c, a, b], c - 0.5 * T.dot(a, b))
    assert "Gemm" in _ops(f)
    rng = np.random.default_rng(2)
    cv, av, bv = rng.standard_normal((3, 4)), rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    c0 = cv.copy()
    out = f(cv, av, bv)
    np.testing.assert_allclose(out, cv - 0.5 * (av @ bv), rtol=1e-12)
    np.testing.assert_array_equal(cv, c0)                             # the input is not written
    with pytest.raises(ValueError, match="align"):
        f(cv, av, rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="shape"):
        f(rng.standard_normal((2, 4)), av, bv)
    with pytest.raises(ValueError, match="shape"):                    # C does not stretch
        f(rng.standard_normal((1, 4)), av, bv)
    # a broadcast C (bias row) stays an addition, fused into the elementwise kernel that follows
    r = T.row("r")
    g = function([r, a, b], T.tanh(r + T.dot(a, b)))
    assert "Gemm" not in _ops(g)
    np.testing.assert_allclose(g(cv[:1], av, bv), np.tanh(cv[:1] + av @ bv), rtol=1e-12)


def test_gemm_rule_leaves_shared_products_and_zero_scale():
    c, a, b = T.dmatrix("c"), T.dmatrix("a"), T.dmatrix("b")
    p = T.dot(a, b)
    f = function([c, a, b], [c - 0.1 * p, p])            # the product is an output too
    assert "Gemm" not in _ops(f) and "Dot" in _ops(f)
    g = function([c, a, b], c - 0.0 * T.dot(a, b))      # 0 * nan must stay nan
    assert "Gemm" not in _ops(g)
    nan = np.full((2, 2), np.nan)
    assert np.isnan(g(np.ones((2, 2)), nan, np.ones((2, 2)))).all()
    v = T.dvector("v")
    h = function([v, a], v - T.dot(a, v))               # matrix-vector: not a gemm
    assert "Gemm" not in _ops(h)


def test_gemm_reference_perform_matches_blas():
    """Gemm.perform (numpy, used by device='py' and without CBLAS) agrees with the BLAS path."""
    rng = np.random.default_rng(3)
    c, a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    ct, at, bt = T.dmatrix("c"), T.dmatrix("a"), T.dmatrix("b")
    node = Gemm(-0.25)(ct, at, bt).owner
    (ref,) = node.op.perform(node, [c, a, b])
    out = c.copy()
    cblas.gemm_for("float64")(out, -0.25, a, b, 1.0)
    np.testing.assert_allclose(ref, out, rtol=1e-13)


# ---- 3. in-place updates ----------------------------------------------------------------------

def _sgd(shape=(6, 4)):
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal(shape)
    w = shared(w0.copy(), name="W")
    x, g = T.dmatrix("x"), T.dmatrix("g")
    return rng, w0, w, x, g


def test_gemm_update_writes_into_the_shared_buffer():
    rng, w0, w, x, g = _sgd()
    f = function([x, g], [], updates=[(w, w - 0.1 * T.dot(x.T, g))])
    xv, gv = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
    held = w.get_value(borrow=True)
    copy = w.get_value()
    f(xv, gv)
    assert w.get_value(borrow=True) is held                # updated in its own buffer
    np.testing.assert_allclose(held, w0 - 0.1 * (xv.T @ gv), rtol=1e-12)
    np.testing.assert_array_equal(copy, w0)                # get_value() copies were not touched


def test_elementwise_update_writes_into_the_shared_buffer():
    b = shared(np.arange(4.0), name="b")
    v = T.dvector("v")
    f = function([v], (b * v).sum(), updates=[(b, b - 0.5 * v)])
    held = b.get_value(borrow=True)
    assert f(np.ones(4)) == 6.0
    assert b.get_value(borrow=True) is held
    np.testing.assert_array_equal(held, np.arange(4.0) - 0.5)


def test_update_not_in_place_when_old_value_is_still_needed():
    rng, w0, w, x, g = _sgd((3, 3))
    xv, gv = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    # the old value is an output
    f = function([x, g], w, updates=[(w, w - 0.1 * T.dot(x, g))])
    old = f(xv, gv)
    np.testing.assert_array_equal(old, w0)
    np.testing.assert_allclose(w.get_value(), w0 - 0.1 * (xv @ gv), rtol=1e-12)
    # the old value is read by a product that also feeds the update
    w.set_value(w0)
    f2 = function([x], T.dot(w, w).sum(), updates=[(w, w - 0.1 * T.dot(w, x))])
    assert f2(xv) == pytest.approx((w0 @ w0).sum(), rel=1e-12)
    np.testing.assert_allclose(w.get_value(), w0 - 0.1 * (w0 @ xv), rtol=1e-12)
    # a view of the old value (its transpose) is an output
    w.set_value(w0)
    f3 = function([], w.T, updates=[(w, w * 2)])
    np.testing.assert_array_equal(f3(), w0.T)
    np.testing.assert_array_equal(w.get_value(), w0 * 2)


def test_update_swaps_and_mixed_reads_stay_correct():
    a, b = shared(np.arange(3.0), name="a"), shared(np.arange(3.0) + 10, name="b")
    f = function([], [], updates=[(a, b * 1.0), (b, a + 0.0)])
    f()
    np.testing.assert_array_equal(a.get_value(), np.arange(3.0) + 10)
    np.testing.assert_array_equal(b.get_value(), np.arange(3.0))
    c = shared(np.arange(4.0), name="c")
    g = function([], [], updates=[(c, c + c[::-1])])     # reads another element than it writes
    g()
    np.testing.assert_array_equal(c.get_value(), np.arange(4.0) + np.arange(4.0)[::-1])


def test_update_falls_back_for_buffers_that_do_not_fit():
    rng, w0, w, x, g = _sgd((4, 4))
    f = function([x, g], [], updates=[(w, w - 0.1 * T.dot(x, g))])
    e = function([], [], updates=[(w, w * 2)])
    xv, gv = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    for value in (np.asfortranarray(w0), w0.copy()):
        if value.flags.c_contiguous:
            value.setflags(write=False)
        w.set_value(value, borrow=True)
        f(xv, gv)
        np.testing.assert_allclose(w.get_value(), w0 - 0.1 * (xv @ gv), rtol=1e-12)
        np.testing.assert_array_equal(value, w0)            # not written through
        w.set_value(value, borrow=True)
        e()
        np.testing.assert_array_equal(w.get_value(), w0 * 2)
        np.testing.assert_array_equal(value, w0)


def test_plan_marks_in_place_steps():
    rng, w0, w, x, g = _sgd()
    b = shared(np.zeros(4), name="bias")
    f = function([x, g], [], updates=[(w, w - 0.1 * T.dot(x.T, g)), (b, b - g.sum(axis=0))])
    plan = lower(f.fgraph, f._inplace_updates())
    marked = [s for s in plan.steps if s.inplace]
    assert {type(s).__name__ for s in marked} == {"HostStep", "Kernel"}
    assert all(isinstance(s.node.op, Gemm) for s in marked if isinstance(s, HostStep))
    # the aliased pair loses `restrict` (the compiler may not assume they differ); others keep it
    assert "const double *in3_data = (const double *)in3_raw;  /* shared variable 'bias' */" in f.source
    assert "double *out1_data =" in f.source
    assert "const double *restrict in1_data = (const double *)in1_raw;  /* input 'g' */" in f.source


# ---- 4. softmax as kernels --------------------------------------------------------------------

@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_lowered_to_kernels(log, axis):
    x = T.dmatrix("x")
    fn = T.nnet.log_softmax if log else T.nnet.softmax
    f = function([x], fn(x, axis=axis))
    assert "Softmax" not in _ops(f) and "Reduce" in _ops(f)
    xv = np.array([[1.0, 1000.0, -1000.0], [0.0, np.inf, 3.0], [2.0, 2.0, 2.0]])
    m = xv.max(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        s = xv - m
        want = s - np.log(np.exp(s).sum(axis=axis, keepdims=True)) if log else \
            np.exp(s) / np.exp(s).sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(f(xv), want, rtol=1e-13)
    with pytest.raises(ValueError, match="zero-size"):
        f(np.zeros((3, 0)) if axis == 1 else np.zeros((0, 3)))


def test_temporaries_computed_in_place_only_in_owned_buffers():
    """tanh(dot(a, b) + c) writes into the product's buffer (read for the last time); a kernel
    reading a view of an input (a reshape) never writes into it."""
    a, b, c, x = T.dmatrix("a"), T.dmatrix("b"), T.dvector("c"), T.dmatrix("x")
    h = T.tanh(T.dot(a, b) + c)
    f = function([a, b, c, x], [T.dot(h, b.T).sum(), T.exp(x.reshape((-1,))).sum(), (T.exp(x) * 2).sum()])
    plan = lower(f.fgraph)
    marked = {(plan.args[o].label, plan.args[i].label) for k in plan.kernels for o, i in k.inplace.items()}
    assert ("intermediate Elemwise{tanh}", "result of Dot") in marked, marked
    assert all("Reshape" not in src and plan.args[i].role == "temp" for k in plan.kernels
               for i in k.inplace.values() for src in [plan.args[i].label]), marked
    rng = np.random.default_rng(9)
    for n in (3, 5, 3):                                   # buffers survive shape changes between calls
        av, bv, cv = rng.standard_normal((n, 4)), rng.standard_normal((4, 6)), rng.standard_normal(6)
        xv = rng.standard_normal((n, 2))
        x0 = xv.copy()
        got = f(av, bv, cv, xv)
        hv = np.tanh(av @ bv + cv)
        np.testing.assert_allclose(got, [(hv @ bv.T).sum(), np.exp(x0).sum(), (np.exp(x0) * 2).sum()], rtol=1e-12)
        np.testing.assert_array_equal(xv, x0)           # the reshaped input was not written


def test_momentum_and_cross_updates_match_the_reference():
    """Theano's momentum SGD (the velocity's old value feeds the weight's update) and updates whose
    products read each other's variables: in-place updates must not change any value."""
    def train(device):
        rng = np.random.default_rng(10)
        xv, yv = rng.standard_normal((16, 5)), rng.standard_normal((16, 3))
        w, b = shared(rng.standard_normal((5, 3))), shared(np.zeros(3))
        vw, vb = shared(np.zeros((5, 3))), shared(np.zeros(3))
        a, c = shared(np.arange(9.0).reshape(3, 3)), shared(np.eye(3))
        x, y = T.dmatrix("x"), T.dmatrix("y")
        cost = ((T.dot(x, w) + b - y) ** 2).mean()
        gw, gb = T.grad(cost, [w, b])
        upd = [(vw, 0.9 * vw - 0.05 * gw), (w, w + 0.9 * vw - 0.05 * gw), (vb, 0.9 * vb - 0.05 * gb),
               (b, b + 0.9 * vb - 0.05 * gb), (a, a - 0.5 * T.dot(c, a)), (c, c - 0.5 * T.dot(a, c))]
        f = function([x, y], [cost, w * 1], updates=upd, device=device)
        costs = [float(f(xv, yv)[0]) for _ in range(4)]
        return costs, [v.get_value() for v in (w, b, vw, vb, a, c)]

    got, want = train("cpu"), train("py")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for g, wv in zip(got[1], want[1]):
        np.testing.assert_allclose(g, wv, rtol=1e-12, atol=1e-15)


# ---- 5. property: random update sets (in-place candidates everywhere) against the reference --------

def _expression(draw, leaves, depth):
    from hypothesis import strategies as st

    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    kind = draw(st.sampled_from(["add", "sub", "mul", "scale", "dot", "T", "flip", "tanh", "gemm"]))
    a = _expression(draw, leaves, depth - 1)
    if kind in ("add", "sub", "mul", "dot", "gemm"):
        b = _expression(draw, leaves, depth - 1)
        if kind == "gemm":
            return a - 0.25 * T.dot(b, draw(st.sampled_from(leaves)))
        return {"add": a + b, "sub": a - b, "mul": a * b, "dot": T.dot(a, b) * 0.5}[kind]
    return {"scale": a * 1.5 - 0.5, "T": a.T, "flip": a[::-1], "tanh": T.tanh(a)}[kind]


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_updates_match_the_reference(data):
    """Updates and outputs built at random from the shared variables themselves (their transposes,
    flips, products, gemm forms): whatever the plan writes in place, every value after three calls
    equals the reference evaluator's."""
    n = 3
    init = [np.random.default_rng(k).standard_normal((n, n)) * 0.5 for k in range(3)]
    results = {}
    for device in ("cpu", "py"):
        shared_vars = [shared(v.copy(), name=f"s{k}") for k, v in enumerate(init)]
        x = T.dmatrix("x")
        leaves = [*shared_vars, x]
        draw = data.draw if device == "cpu" else None
        if device == "cpu":
            picks = [k for k in range(3) if data.draw(st.booleans(), label=f"update s{k}")]
            exprs = [_expression(draw, leaves, 3) for _ in picks]
            outs = [_expression(draw, leaves, 2) for _ in range(data.draw(st.integers(0, 2), label="outputs"))]
            built = (picks, exprs, outs, leaves)
        else:                                # the same expressions, rebuilt over fresh variables
            picks, exprs, outs, old_leaves = built
            exprs, outs = [gencomp.graph.clone_replace(e, dict(zip(old_leaves, leaves))) if e is not None else e
                           for e in (exprs, outs)]
        f = function([x], outs, updates=[(shared_vars[k], e) for k, e in zip(picks, exprs)], device=device,
                     on_unused_input="ignore")
        xv = np.arange(n * n, dtype=float).reshape(n, n) / 10
        got = [f(xv) for _ in range(3)]
        results[device] = (got, [v.get_value() for v in shared_vars])
    (cpu_outs, cpu_state), (ref_outs, ref_state) = results["cpu"], results["py"]
    for a, b in zip(cpu_state, ref_state):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    for call_a, call_b in zip(cpu_outs, ref_outs):
        for a, b in zip(call_a, call_b):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
