"""The graph optimizer (gencomp.rewrite): results, firing, purity, memory, big graphs.

1. Property tests (hypothesis): random elementwise + reduction graphs built from the
   patterns the canonicalize / specialize rules target give the same results under
   optimizer 'fast_run', 'fast_compile' and 'None' and against numpy, for inputs that
   include nan, +-inf, -0.0, subnormals and the largest floats. The numpy oracle carries
   a running error bound for every element (first-order rounding analysis: each
   operation adds a few units of roundoff of its result, errors propagate through the
   derivatives), so a rewrite may change rounding but nothing else. Where the bound is
   finite and the reference is inf or nan, the compiled result must be that same inf /
   nan. The stabilizing rewrites are checked separately (their optimized result against
   the numerically stable formula, the unoptimized one against the naive formula).
2. Each stabilization fires (Function.dprint()) and makes a previously overflowing or
   underflowing expression finite and correct (mpmath reference).
3. Each canonicalization rule fires on its pattern and leaves other graphs alone; rules
   never mutate the user's graph.
4. Memory: borrowed outputs reuse their buffer, other outputs alias nothing; reused
   temporaries survive shape changes between calls.
5. A 10,000-node graph optimizes and compiles (no recursion limits, output linear in size).

Tests named test_bug_* document a defect found while writing this file (the docstring says
what and how); each fails until that defect is fixed.
"""

from __future__ import annotations

import os
import re
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gencomp
import gencomp.tensor as T
from gencomp import Out, function, shared
from gencomp.config import _DEFAULT_CFLAGS
from gencomp.graph import FunctionGraph
from gencomp.tensor.shape import shape_i
from gencomp.printing import debugprint, graph_lines
from gencomp.rewrite import optimize, registered
from gencomp.rewrite import engine as rewrite_engine

OPTIMIZERS = ("fast_run", "fast_compile", "None")
FLOATS = ("float32", "float64")
SHAPES = {"vector": (6,), "matrix": (2, 3)}
PROPERTY = settings(max_examples=20, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def compile_with(optimizer, inputs, outputs, **kwargs):
    with gencomp.config.change(optimizer=optimizer):
        return function(inputs, outputs, **kwargs)


def quiet(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args)


def symbolic(kind, dtype, name):
    return {"vector": T.vector, "matrix": T.matrix}[kind](name, dtype=dtype)


def specials(dtype):
    info = np.finfo(dtype)
    return [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5, -3.0, 2.0, 1e-3, 7.25,
            float(info.max), -float(info.max), float(info.smallest_subnormal), float(info.tiny),
            float(info.max) ** 0.5, 1e5, -1e-5]


def array_strategy(dtype, shape, finite_only=False):
    width = 32 if dtype == "float32" else 64
    values = [v for v in specials(dtype) if not finite_only or np.isfinite(v)]
    elements = st.one_of(st.sampled_from(values),
                         st.floats(width=width, allow_nan=not finite_only, allow_infinity=not finite_only),
                         st.floats(-30, 30, width=width))
    return hnp.arrays(dtype, shape, elements=elements)


def same_bits(a, b) -> bool:
    """Equal including the sign of zero and the position of NaNs."""
    a, b = np.asarray(a), np.asarray(b)
    return (a.shape == b.shape and a.dtype == b.dtype
            and bool(np.all((a == b) & (np.signbit(a) == np.signbit(b)) | (np.isnan(a) & np.isnan(b)))))


# ------------------------------------------------------------------ numpy oracle with error bounds

class R:
    """A reference value (numpy, in the graph's dtype) and a float64 bound on its rounding error."""

    def __init__(self, v, e):
        self.v, self.e = v, e


def _absf(v):
    return np.abs(np.asarray(v, dtype=np.float64))


def _finite_abs(v):
    a = _absf(v)
    return np.where(np.isfinite(a), a, 0.0)


def _mul_e(p, q):
    """p * q for error terms, with 0 * inf = 0 (an exact operand times anything adds no error)."""
    with np.errstate(all="ignore"):
        return np.where((p == 0) | (q == 0), 0.0, p * q)


class Oracle:
    def __init__(self, dtype):
        info = np.finfo(dtype)
        self.dtype = dtype
        self.eps = float(info.eps)
        self.tiny = float(info.smallest_subnormal)

    def rnd(self, val, k=1.0):
        """The error one rounding (k units) of `val` may add (subnormal spacing included)."""
        return k * self.eps * _finite_abs(val) + k * self.tiny

    def add(self, a, b):
        v = a.v + b.v
        return R(v, a.e + b.e + self.rnd(v))

    def sub(self, a, b):
        v = a.v - b.v
        return R(v, a.e + b.e + self.rnd(v))

    def mul(self, a, b):
        v = a.v * b.v
        return R(v, _mul_e(a.e, _absf(b.v)) + _mul_e(b.e, _absf(a.v)) + _mul_e(a.e, b.e) + self.rnd(v))

    def scale(self, a, c):
        """a * c for a constant c (exact)."""
        v = a.v * c
        return R(v, abs(c) * a.e + self.rnd(v))

    def recip(self, a):
        v = 1 / a.v
        m = _absf(a.v)
        with np.errstate(all="ignore"):
            prop = np.where(a.e == 0, 0.0, np.where(m > a.e, a.e / (m - a.e) ** 2, np.inf))
        return R(v, prop + self.rnd(v, 2))

    def tanh(self, a):
        v = np.tanh(a.v)
        return R(v, a.e + self.rnd(v, 4))

    def same(self, a, v):
        return R(v, a.e)

    def reduce(self, kind, a, axis):
        n = a.v.size if axis is None else a.v.shape[axis]
        if kind == "max":
            return R(np.max(a.v, axis=axis), np.max(a.e, axis=axis))
        # gencomp accumulates float32 sums in double precision
        v = np.sum(a.v.astype(np.float64), axis=axis).astype(self.dtype)
        e = (np.sum(a.e, axis=axis) + n * 2.2e-16 * np.sum(_finite_abs(a.v), axis=axis)
             + self.rnd(v) + n * self.tiny)
        return R(v, e)


def check_against(got, ref: R, label: str, factor=4.0):
    """`got` agrees with the reference within `factor` times the error bound.

    Where the bound is not finite (a rounding difference upstream may have been amplified
    without limit) nothing is required; where it is finite and the reference is nan or
    +-inf, `got` must be exactly that.
    """
    got = np.asarray(got)
    ref_v = np.asarray(ref.v)
    assert got.shape == ref_v.shape, f"{label}: shape {got.shape}, expected {ref_v.shape}"
    assert got.dtype == ref_v.dtype, f"{label}: dtype {got.dtype}, expected {ref_v.dtype}"
    g, r = got.astype(np.float64), ref_v.astype(np.float64)
    e = np.broadcast_to(np.asarray(ref.e, dtype=np.float64), r.shape)
    definite = np.isfinite(e)
    finite_ref = np.isfinite(r)
    with np.errstate(all="ignore"):
        bad_nonfinite = definite & ~finite_ref & ~((np.isnan(r) & np.isnan(g)) | (r == g))
        bad_finite = definite & finite_ref & ~(np.abs(g - r) <= factor * e)
    bad = bad_nonfinite | bad_finite
    assert not bad.any(), (f"{label}: at {np.argwhere(bad)[:5].tolist()} got {g[bad][:5]}, "
                           f"expected {r[bad][:5]} (error bound {e[bad][:5]})")


# ------------------------------------------------------------------ random graphs of rule patterns

MUL_CONSTS = (2, -3, 4, 1.5, -1)       # |c| >= 1: (x*c1)*c2 overflows exactly when x*(c1*c2) does
ADD_CONSTS = (1, -2, 0.5, 3)


def matrix_patterns(e):
    """DimShuffle chains whose net effect is the identity on a (2, 3) matrix."""
    return [e.T.T,
            e.dimshuffle("x", 0, 1).dimshuffle(1, 2),
            e.dimshuffle(1, "x", 0).dimshuffle(2, 0),
            e.T.dimshuffle("x", 0, 1).dimshuffle(2, 1)]


def vector_patterns(e):
    return [e.dimshuffle("x", 0).dimshuffle(1),
            e.dimshuffle(0, "x").dimshuffle("x", 1, 0).dimshuffle(2)]


RESHAPES = {"vector": [((2, 3), (6,)), ((3, 2), (6,)), ((1, 6), (6,))],
            "matrix": [((3, 2), (2, 3)), ((6,), (2, 3)), ((1, 2, 3), (2, 3))]}


class TreeBuilder:
    """Draws an expression over inputs x, y and evaluates it with the oracle at the same time."""

    UNARY = ("mul1", "one_mul", "add0", "zero_add", "sub0", "add_negzero", "sub_negzero", "div1", "pow1",
             "negneg", "neg", "abs",
             "tanh", "collect_mul", "collect_add", "pow2", "pow3", "shape", "reshape")
    BINARY = ("add", "sub", "mul", "negsub")

    def __init__(self, data, kind, dtype, env):
        self.data, self.kind, self.dtype, self.env = data, kind, dtype, env
        self.o = Oracle(dtype)
        self.ops = []

    def leaf(self):
        choice = self.data.draw(st.sampled_from(["x", "y", "x", "y", "recip"]))
        if choice == "recip":      # x ** -1 -> 1 / x (pow_to_products), on an input only
            name = self.data.draw(st.sampled_from(["x", "y"]))
            sym, val = self.env[name]
            self.ops.append(f"{name}**-1")
            with np.errstate(all="ignore"):
                return sym ** -1, self.o.recip(R(val, np.zeros(val.shape)))
        sym, val = self.env[choice]
        return sym, R(val, np.zeros(val.shape))

    def tree(self, depth):
        if depth == 0 or self.data.draw(st.integers(0, 4)) == 0:
            return self.leaf()
        if self.data.draw(st.booleans()):
            op = self.data.draw(st.sampled_from(self.BINARY))
            a, b = self.tree(depth - 1), self.tree(depth - 1)
            with np.errstate(all="ignore"):
                return self.binary(op, a, b)
        op = self.data.draw(st.sampled_from(self.UNARY))
        a = self.tree(depth - 1)
        with np.errstate(all="ignore"):
            return self.unary(op, a)

    def binary(self, op, a, b):
        (sa, ra), (sb, rb), o = a, b, self.o
        self.ops.append(op)
        if op == "add":
            return sa + sb, o.add(ra, rb)
        if op == "sub":
            return sa - sb, o.sub(ra, rb)
        if op == "mul":
            return sa * sb, o.mul(ra, rb)
        # -(a - b) -> b - a
        r = o.sub(ra, rb)
        return -(sa - sb), R(-r.v, r.e)

    def unary(self, op, a):
        (s, r), o = a, self.o
        self.ops.append(op)
        if op == "mul1":
            return s * 1, r
        if op == "one_mul":
            return 1 * s, r
        if op == "add0":
            return s + 0, R(r.v + 0, r.e)
        if op == "zero_add":
            return 0 + s, R(0 + r.v, r.e)
        if op == "sub0":
            return s - 0, r
        if op == "add_negzero":
            return s + -0.0, r
        if op == "sub_negzero":
            return s - -0.0, R(r.v - -0.0, r.e)
        if op == "div1":
            return s / 1, r
        if op == "pow1":
            return s ** 1, r
        if op == "negneg":
            return -(-s), r
        if op == "neg":
            return -s, R(-r.v, r.e)
        if op == "abs":
            return abs(s), R(np.abs(r.v), r.e)
        if op == "tanh":
            return T.tanh(s), o.tanh(r)
        if op == "collect_mul":
            c1, c2 = self.data.draw(st.sampled_from(MUL_CONSTS)), self.data.draw(st.sampled_from(MUL_CONSTS))
            self.ops.append(f"(*{c1})*{c2}")
            return (s * c1) * c2, o.scale(o.scale(r, c1), c2)
        if op == "collect_add":
            c1, c2 = self.data.draw(st.sampled_from(ADD_CONSTS)), self.data.draw(st.sampled_from(ADD_CONSTS))
            self.ops.append(f"(+{c1})+{c2}")
            first = r.v + c1
            v = first + c2
            return (s + c1) + c2, R(v, r.e + o.rnd(first) + o.rnd(v) + o.eps * (abs(c1) + abs(c2)))
        if op == "pow2":
            return s ** 2, o.mul(r, r)
        if op == "pow3":
            sq = o.mul(r, r)
            return s ** 3, o.mul(sq, r)
        if op == "shape":
            pats = matrix_patterns(s) if self.kind == "matrix" else vector_patterns(s)
            k = self.data.draw(st.integers(0, len(pats) - 1))
            self.ops.append(f"dimshuffle-chain-{k}")
            return pats[k], r
        # reshape of reshape back to the original shape
        inner, outer = self.data.draw(st.sampled_from(RESHAPES[self.kind]))
        self.ops.append(f"reshape{inner}->{outer}")
        return s.reshape(inner).reshape(outer), r

    def reduction(self, a):
        (s, r) = a
        kind = self.data.draw(st.sampled_from(["sum", "max"]))
        axes = [None, 0] + ([1] if self.kind == "matrix" else [])
        axis = self.data.draw(st.sampled_from(axes))
        self.ops.append(f"{kind}(axis={axis})")
        sym = (T.sum if kind == "sum" else T.max)(s, axis=axis)
        with np.errstate(all="ignore"):
            return sym, self.o.reduce(kind, r, axis)


@pytest.mark.slow
@PROPERTY
@given(data=st.data(), kind=st.sampled_from(sorted(SHAPES)), dtype=st.sampled_from(FLOATS))
def test_random_canonicalizable_graphs_agree_across_optimizers_and_numpy(data, kind, dtype):
    shape = SHAPES[kind]
    x, y = symbolic(kind, dtype, "x"), symbolic(kind, dtype, "y")
    xv = data.draw(array_strategy(dtype, shape), label="x")
    yv = data.draw(array_strategy(dtype, shape), label="y")
    builder = TreeBuilder(data, kind, dtype, {"x": (x, xv), "y": (y, yv)})
    trees = [builder.tree(4), builder.tree(3), builder.reduction(builder.tree(3))]
    note(f"ops: {builder.ops}")
    outputs = [t[0] for t in trees]
    results = {}
    for opt in OPTIMIZERS:
        f = compile_with(opt, [x, y], outputs, on_unused_input="ignore")
        results[opt] = quiet(f, xv, yv)
        if opt == "fast_run":
            note(f.dprint())
    for k, (_, ref) in enumerate(trees):
        for opt in OPTIMIZERS:
            check_against(results[opt][k], ref, f"output {k} with optimizer {opt!r} vs numpy")
        # merging identical subgraphs cannot change a single bit
        assert same_bits(results["fast_compile"][k], results["None"][k]), f"output {k}: fast_compile != None"
        # no rule may flip the sign of a zero (1/x would turn it into the other infinity)
        run, none = np.asarray(results["fast_run"][k]), np.asarray(results["None"][k])
        flipped = (run == 0) & (none == 0) & (np.signbit(run) != np.signbit(none))
        assert not flipped.any(), f"output {k}: fast_run {run[flipped]} where None gives {none[flipped]}"


# ------------------------------------------------------------------ stabilization, as a property

def _np_log_softmax(v):
    with np.errstate(all="ignore"):
        shifted = v - np.max(v, axis=-1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _np_softmax(v):
    with np.errstate(all="ignore"):
        shifted = v - np.max(v, axis=-1, keepdims=True)
        e = np.exp(shifted)
        return e / np.sum(e, axis=-1, keepdims=True)


def _np_sigmoid_c(v):          # the C form of Elemwise{sigmoid}
    return 1 / (1 + np.exp(-v))


# name -> (kind, graph, stable numpy formula, naive numpy formula, naive error scale)
STABILIZED = {
    "log(1+x)": ("vector", lambda x: T.log(1 + x), np.log1p, lambda v: np.log(1 + v),
                 lambda v: np.abs(np.log(1 + v))),
    "log(x+1)": ("vector", lambda x: T.log(x + 1), np.log1p, lambda v: np.log(v + 1),
                 lambda v: np.abs(np.log(v + 1))),
    "exp(x)-1": ("vector", lambda x: T.exp(x) - 1, np.expm1, lambda v: np.exp(v) - 1,
                 lambda v: np.abs(np.exp(v))),
    "log(sigmoid(x))": ("vector", lambda x: T.log(T.sigmoid(x)), lambda v: -np.logaddexp(0, -v),
                        lambda v: np.log(_np_sigmoid_c(v)), lambda v: 1 + np.abs(np.log(_np_sigmoid_c(v)))),
    "log(1-sigmoid(x))": ("vector", lambda x: T.log(1 - T.sigmoid(x)), lambda v: -np.logaddexp(0, v),
                          lambda v: np.log(1 - _np_sigmoid_c(v)),
                          lambda v: 1 + np.abs(np.log(1 - _np_sigmoid_c(v))) + 1 / np.abs(1 - _np_sigmoid_c(v))),
    "log(softmax(x))": ("matrix", lambda x: T.log(T.nnet.softmax(x)), _np_log_softmax,
                        lambda v: np.log(_np_softmax(v)), lambda v: np.abs(np.log(_np_softmax(v)))),
}
_STABLE_FUNCTIONS: dict = {}


def stabilized_function(name, dtype, opt):
    key = (name, dtype, opt)
    if key not in _STABLE_FUNCTIONS:
        kind, build = STABILIZED[name][:2]
        x = symbolic(kind, dtype, "x")
        _STABLE_FUNCTIONS[key] = compile_with(opt, [x], build(x))
    return _STABLE_FUNCTIONS[key]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(STABILIZED))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_stabilized_forms_match_stable_formula_and_unoptimized_match_naive(data, name, dtype):
    kind, _, stable, naive, scale = STABILIZED[name]
    shape = (7,) if kind == "vector" else (3, 4)
    v = data.draw(array_strategy(dtype, shape), label="x")
    o = Oracle(dtype)
    with np.errstate(all="ignore"):
        stable_ref = R(stable(v).astype(dtype), o.rnd(stable(v), 16))
        if name == "log(softmax(x))":     # log of a sum >= 1 rounded in `dtype`: an absolute error
            stable_ref = R(stable_ref.v, stable_ref.e + (shape[-1] + 1) * o.eps)
        naive_ref = R(naive(v).astype(dtype), 8 * o.eps * np.asarray(scale(v), dtype=np.float64) + 8 * o.tiny)
    check_against(quiet(stabilized_function(name, dtype, "fast_run"), v), stable_ref,
                  f"{name} optimized vs the stable formula")
    for opt in ("fast_compile", "None"):
        check_against(quiet(stabilized_function(name, dtype, opt), v), naive_ref,
                      f"{name} with optimizer {opt!r} vs the naive formula")


# ------------------------------------------------------------------ each stabilization fires and helps

mpmath.mp.dps = 60


def _mp_log_sigmoid(v):
    return float(-mpmath.log(1 + mpmath.exp(-mpmath.mpf(float(v)))))


def _mp_log_softmax(row):
    row = [mpmath.mpf(float(r)) for r in row]
    total = mpmath.fsum(mpmath.exp(r) for r in row)
    return [float(r - mpmath.log(total)) for r in row]


# (name, dtype, kind, graph, input, reference, ops that must appear, ops that must be gone)
STABILIZE_CASES = [
    ("log1p", "float64", "vector", lambda x: T.log(1 + x), [1e-20, -1e-30, 3e-17],
     lambda v: [float(mpmath.log(1 + mpmath.mpf(float(a)))) for a in v], ["Elemwise{log1p}"],
     ["Elemwise{log}", "Elemwise{add}"]),
    ("log1p", "float32", "vector", lambda x: T.log(x + 1), [1e-10, -2e-9, 5e-8],
     lambda v: [float(mpmath.log(1 + mpmath.mpf(float(a)))) for a in v], ["Elemwise{log1p}"],
     ["Elemwise{log}", "Elemwise{add}"]),
    ("expm1", "float64", "vector", lambda x: T.exp(x) - 1, [1e-20, -1e-18, 2e-17],
     lambda v: [float(mpmath.expm1(mpmath.mpf(float(a)))) for a in v], ["Elemwise{expm1}"],
     ["Elemwise{exp}", "Elemwise{sub}"]),
    ("expm1", "float32", "vector", lambda x: T.exp(x) - 1, [1e-10, -3e-9, 4e-8],
     lambda v: [float(mpmath.expm1(mpmath.mpf(float(a)))) for a in v], ["Elemwise{expm1}"],
     ["Elemwise{exp}", "Elemwise{sub}"]),
    ("log_sigmoid", "float64", "vector", lambda x: T.log(T.sigmoid(x)), [-1000.0, -800.0, -745.5],
     lambda v: [_mp_log_sigmoid(a) for a in v], ["Elemwise{softplus}"],
     ["Elemwise{sigmoid}", "Elemwise{log}"]),
    ("log_sigmoid", "float32", "vector", lambda x: T.log(T.nnet.sigmoid(x)), [-200.0, -150.0, -105.0],
     lambda v: [_mp_log_sigmoid(a) for a in v], ["Elemwise{softplus}"],
     ["Elemwise{sigmoid}", "Elemwise{log}"]),
    ("log_1m_sigmoid", "float64", "vector", lambda x: T.log(1 - T.sigmoid(x)), [1000.0, 40.0, 800.0],
     lambda v: [_mp_log_sigmoid(-a) for a in v], ["Elemwise{softplus}"],
     ["Elemwise{sigmoid}", "Elemwise{log}"]),
    ("log_1m_sigmoid", "float32", "vector", lambda x: T.log(1 - T.sigmoid(x)), [200.0, 20.0, 100.0],
     lambda v: [_mp_log_sigmoid(-a) for a in v], ["Elemwise{softplus}"],
     ["Elemwise{sigmoid}", "Elemwise{log}"]),
    ("log_softmax", "float64", "matrix", lambda x: T.log(T.nnet.softmax(x)),
     [[1000.0, 0.0, -1000.0], [1.0, 2.0, 800.0]],
     lambda v: [_mp_log_softmax(r) for r in v], ["LogSoftmax{axis=1}"], ["Elemwise{log}", "(?<!Log)Softmax"]),
    ("log_softmax", "float32", "matrix", lambda x: T.log(T.nnet.softmax(x)),
     [[100.0, 0.0, -100.0], [1.0, 2.0, 200.0]],
     lambda v: [_mp_log_softmax(r) for r in v], ["LogSoftmax{axis=1}"], ["Elemwise{log}", "(?<!Log)Softmax"]),
]


@pytest.mark.parametrize("case", STABILIZE_CASES, ids=[f"{c[0]}-{c[1]}" for c in STABILIZE_CASES])
def test_stabilization_fires_and_makes_the_result_finite_and_correct(case):
    name, dtype, kind, build, values, reference, present, absent = case
    x = symbolic(kind, dtype, "x")
    v = np.array(values, dtype=dtype)
    expected = np.array(reference(v), dtype=np.float64)
    naive = quiet(compile_with("None", [x], build(x)), v)
    f = compile_with("fast_run", [x], build(x))
    # the graph the stabilize phase leaves (softmax ops are later lowered to max/exp/sum kernels)
    fg = FunctionGraph([x], [build(x)])
    optimize(fg, "fast_run", exclude=("softmax_as_kernels",))
    text = "\n".join(graph_lines(fg.outputs))
    for op in present:
        assert op in text, f"{name}: {op} not in the optimized graph:\n{text}"
    for op in absent:
        assert not re.search(re.escape(op) if "(" not in op else op, text), \
            f"{name}: {op} still in the optimized graph:\n{text}"
    got = quiet(f, v)
    assert got.dtype == np.dtype(dtype)
    rtol = 8 * np.finfo(dtype).eps
    # the inputs are chosen so that the naive form is infinite or has no correct digit (for
    # softmax: in some entries of each row)
    naive_wrong = ~np.isfinite(naive) | (np.abs(naive - expected) > 1e3 * rtol * np.abs(expected))
    assert (naive_wrong.any(axis=-1) if kind == "matrix" else naive_wrong).all(), \
        f"{name}: the naive form was already fine on {v}: {naive}"
    assert np.all(np.isfinite(got)), f"{name}: {got}"
    # log_softmax entries near 0 carry an absolute rounding error of the log-sum-exp
    atol = rtol if kind == "matrix" else 0
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=rtol, atol=atol)


def test_stabilizations_fire_inside_larger_graphs():
    x, y = T.vectors("x", "y")
    m = T.matrix("m")
    cost = (T.sum(T.log(1 + x * y)) + T.sum(T.exp(y * 2) - 1) - T.mean(T.log(T.sigmoid(x + y)))
            + T.sum(T.log(T.nnet.softmax(m * 2))))
    f = compile_with("fast_run", [x, y, m], cost)
    fg = FunctionGraph([x, y, m], [cost])
    optimize(fg, "fast_run", exclude=("softmax_as_kernels",))
    text = "\n".join(graph_lines(fg.outputs))
    for op in ("Elemwise{log1p}", "Elemwise{expm1}", "Elemwise{softplus}", "LogSoftmax"):
        assert op in text, text
    assert "Elemwise{log}" not in text and "Elemwise{sigmoid}" not in text, text
    final = f.dprint()          # then log_softmax is max, exp-sum and log kernels
    assert "Softmax" not in final and "Reduce{max,axes=[1]}" in final and "Elemwise{sigmoid}" not in final
    xv, yv, mv = np.array([-0.5, 2.0, 1e-3]), np.array([0.25, -0.4, 1e-3]), np.array([[1.0, 2.0], [500.0, -500.0]])
    s = 1 / (1 + np.exp(-(xv + yv)))
    expected = (np.sum(np.log1p(xv * yv)) + np.sum(np.expm1(yv * 2)) - np.mean(np.log(s))
                + np.sum(_np_log_softmax(mv * 2)))
    np.testing.assert_allclose(f(xv, yv, mv), expected, rtol=1e-12)
    naive = quiet(compile_with("None", [x, y, m], cost), xv, yv, mv)
    assert np.isneginf(naive)       # log(softmax) underflows to log(0) without the rewrite


# ------------------------------------------------------------------ canonicalization: fires / leaves alone

def _fg(inputs, outputs):
    return FunctionGraph(inputs, outputs if isinstance(outputs, list) else [outputs])


def _ops(fg) -> list[str]:
    return [str(n.op) for n in fg.toposort()]


def _vars():
    x, y = T.vectors("x", "y")
    m = T.matrix("m")
    return x, y, m


# rule -> graphs it must rewrite (the value must not change)
FIRES = {
    "neutral_elements": [
        lambda x, y, m: x * 1, lambda x, y, m: 1 * x, lambda x, y, m: x + -0.0, lambda x, y, m: -0.0 + x,
        lambda x, y, m: x - 0, lambda x, y, m: x / 1, lambda x, y, m: x ** 1,
        lambda x, y, m: m * np.ones((1, 1)), lambda x, y, m: T.ivector("i") + 0,
    ],
    "double_negation": [lambda x, y, m: -(-x), lambda x, y, m: -(T.ivector("i") - 3)],
    "self_subtraction": [lambda x, y, m: (lambda i: (i - i) * 2)(T.ivector("i"))],
    # integers only: for floats constant collection can change overflow and cancellation
    "collect_constants": [lambda x, y, m: (T.ivector("i") * 2) * 3, lambda x, y, m: 3 * (2 * T.ivector("i")),
                          lambda x, y, m: (T.ivector("i") + 2) + 3, lambda x, y, m: 5 + (T.ivector("i") + 2)],
    "constant_folding": [lambda x, y, m: x + T.exp(T.constant(0.5)),
                         lambda x, y, m: m * T.constant(np.array([[1.0], [2.0]])).T.T ** 2],
    "dimshuffle_of_dimshuffle": [lambda x, y, m: m.T.T, lambda x, y, m: m.dimshuffle("x", 1, 0).dimshuffle(2, 1),
                                 lambda x, y, m: m.dimshuffle(1, 0, "x").dimshuffle("x", 1, 0)],
    "reshape_of_reshape": [lambda x, y, m: x.reshape((2, 3)).reshape((3, 2)),
                           lambda x, y, m: m.reshape((-1,)).reshape((3, 2))],
    "pow_to_products": [lambda x, y, m: x ** 2, lambda x, y, m: x ** 3, lambda x, y, m: x ** -1],
    "log1p_expm1": [lambda x, y, m: T.log(1 + x), lambda x, y, m: T.log(x + 1), lambda x, y, m: T.exp(x) - 1],
    "log_sigmoid": [lambda x, y, m: T.log(T.sigmoid(x)), lambda x, y, m: T.log(1 - T.sigmoid(x))],
    "logistic_as_sigmoid": [lambda x, y, m: 1 / (1 + T.exp(-x)), lambda x, y, m: T.exp(x) / (1 + T.exp(x)),
                            lambda x, y, m: 1 - T.sigmoid(x), lambda x, y, m: y / (1 + T.exp(x)) * T.exp(x)],
    "log_softmax": [lambda x, y, m: T.log(T.nnet.softmax(m))],
    "softmax_as_kernels": [lambda x, y, m: T.nnet.softmax(m), lambda x, y, m: T.nnet.log_softmax(m, axis=0),
                           lambda x, y, m: T.nnet.softmax(x)],
    "reduce_of_length_one": [lambda x, y, m: T.sum(x.dimshuffle("x", 0), axis=0),
                             lambda x, y, m: T.max(m.dimshuffle(0, "x", 1), axis=1) * 2],
    "gemm": [lambda x, y, m: m[:, :2] - 0.5 * T.dot(m, m.T), lambda x, y, m: T.dot(m, m.T) * 2 + m[:, 1:],
             lambda x, y, m: T.dot(m, m.T) + m[:, :2], lambda x, y, m: T.exp(m[:, :2]) - T.dot(m, m.T)],
    "argmax_of_monotonic": [lambda x, y, m: T.argmax(T.nnet.softmax(m), axis=1),
                            lambda x, y, m: T.argmin(T.exp(x))],
    "shape_of_shape_preserving": [
        lambda x, y, m: x * T.cast(shape_i(T.exp(x) + y, 0), "float64"),
        lambda x, y, m: m * T.cast(shape_i(T.nnet.softmax(m), 1), "float64")],
    "shape_entry": [lambda x, y, m: x * T.cast(m.shape[0], "float64"),
                    lambda x, y, m: x * T.cast(m.shape[-1] + x.shape[0], "float64")],
    "scan_unused_outputs": [lambda x, y, m: gencomp.scan(lambda a: [a * 2, T.exp(a)], sequences=x)[0][0],
                            lambda x, y, m: gencomp.scan(lambda a, s: [s + a, a * 3], sequences=x,
                                                         outputs_info=[T.constant(0.0), None])[0][0] * 2],
    "scan_save_mem": [lambda x, y, m: gencomp.scan(lambda a, s: s * a + 1, sequences=x, outputs_info=T.constant(0.5))[0][-1],
                      lambda x, y, m: gencomp.scan(lambda a, s: [s + a, a * 3], sequences=x,
                                                   outputs_info=[T.constant(0.0), None])[0][1][-1:] * 2,
                      lambda x, y, m: gencomp.scan(lambda a2, a1: a1 + a2 * 0.5, n_steps=5,     # hidden taps
                                                   outputs_info=dict(initial=x, taps=[-2, -1]))[0][-1]],
    "gemm_update": [lambda x, y, m: m - 0.1 * (T.dot(m[:, :2], m[:2, :]) + 0.5 * m),
                    lambda x, y, m: m - 0.1 * (T.dot(m[:, :2], m[:2, :]) + T.grad(0.5 * (m ** 2).sum(), m)),
                    lambda x, y, m: m + (m * 2 + T.dot(m[:, :1], m[:1, :])) * -0.5],
    "scalar_fill": [lambda x, y, m: T.ones_like(T.sum(x * y)) * x, lambda x, y, m: T.fill(x.sum(), m) + 1,
                    lambda x, y, m: T.zeros_like(T.max(m), dtype="float32") + x],
}

# rules that replace one op by several: the ops (regex) that must be gone afterwards
GROWS = {"pow_to_products": [r"Elemwise\{pow\}"], "softmax_as_kernels": ["Softmax"], "gemm": ["^Dot$"]}

# rule -> graphs it must leave alone
LEAVES_ALONE = {
    "reduce_of_length_one": [lambda x, y, m: T.sum(m, axis=0),
                             lambda x, y, m: T.mean(T.cast(x, "int64").dimshuffle("x", 0), axis=0),
                             lambda x, y, m: T.sum((x > 0).dimshuffle("x", 0), axis=0)],   # dtypes change
    "gemm": [lambda x, y, m: m - 0.5 * T.dot(x, m), lambda x, y, m: T.dot(m, m.T) * 0 + m,
             lambda x, y, m: m - T.dot(m, m.T) * y[0], lambda x, y, m: T.dot(m, m.T) + m + T.dot(m, m.T).sum(),
             lambda x, y, m: T.matmul(m.dimshuffle("x", 0, 1), m.dimshuffle("x", 1, 0)) + 1],
    "neutral_elements": [lambda x, y, m: x * 2, lambda x, y, m: x + 1, lambda x, y, m: 1 - x,
                         lambda x, y, m: 1 / x, lambda x, y, m: x ** 0.5, lambda x, y, m: x * y,
                         lambda x, y, m: x - x, lambda x, y, m: x * 0, lambda x, y, m: 0 - x,
                         lambda x, y, m: x + 0, lambda x, y, m: 0.0 + x,     # -0.0 + 0.0 is +0.0
                         lambda x, y, m: x * np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0])],
    "self_subtraction": [lambda x, y, m: x - x, lambda x, y, m: T.ivector("i") - 1],
    "scan_unused_outputs": [lambda x, y, m: sum(gencomp.scan(lambda a: [a * 2, T.exp(a)], sequences=x)[0]),
                            lambda x, y, m: gencomp.scan(lambda a, s: [s + a, a * 3], sequences=x,
                                                         outputs_info=[T.constant(0.0), None])[0][1]],  # a state
    "gemm_update": [lambda x, y, m: m - 0.1 * (T.dot(m[:, :2], m[:2, :]) + 0.5 * T.exp(m)),
                    lambda x, y, m: T.exp(m) - 0.1 * (T.dot(m[:, :2], m[:2, :]) + 0.5 * m)],
    "scalar_fill": [lambda x, y, m: T.ones_like(x) * y, lambda x, y, m: T.fill(m, x.sum())],     # x, m decide a shape
    "scan_save_mem": [lambda x, y, m: gencomp.scan(lambda a, s: s * a, sequences=x, outputs_info=T.constant(0.5))[0][-2],
                      lambda x, y, m: (lambda o: o[-1] + o.sum())(gencomp.scan(lambda a, s: s * a, sequences=x,
                                                                              outputs_info=T.constant(0.5))[0]),
                      lambda x, y, m: gencomp.scan(lambda a, s: s * a, sequences=x, outputs_info=T.constant(0.5))[0][1:]],
    "shape_entry": [lambda x, y, m: x * T.cast(m.shape[1:].sum(), "float64")],     # a slice, not an entry
    "double_negation": [lambda x, y, m: -(x + y), lambda x, y, m: -T.exp(-x), lambda x, y, m: -(x * y),
                        lambda x, y, m: -(x - y)],        # floats: -(a - a) is -0.0, b - a is +0.0
    "collect_constants": [lambda x, y, m: (x * y) * 2, lambda x, y, m: (x + y) + 2, lambda x, y, m: (x * 2) + 3,
                          lambda x, y, m: (x + 2) * 3, lambda x, y, m: (x - 2) - 3,
                          lambda x, y, m: (x * 2) * 3, lambda x, y, m: (x + 2) + 3],    # floats
    "constant_folding": [lambda x, y, m: T.exp(x) + 1],
    "dimshuffle_of_dimshuffle": [lambda x, y, m: m.T + 1, lambda x, y, m: m.dimshuffle("x", 0, 1) + 1],
    "reshape_of_reshape": [lambda x, y, m: x.reshape((2, 3)) + 1, lambda x, y, m: (x.reshape((2, 3)) + 1).reshape((6,)),
                           lambda x, y, m: x.reshape((4,)).reshape((2, 3)),      # the first must fail
                           lambda x, y, m: x.reshape((2, 3)).reshape((-1,))],    # -1 outside: not provable
    "pow_to_products": [lambda x, y, m: x ** 4, lambda x, y, m: x ** 0.5, lambda x, y, m: x ** y,
                        lambda x, y, m: T.ivector("i") ** 2, lambda x, y, m: x ** -2],
    "log1p_expm1": [lambda x, y, m: T.log(2 + x), lambda x, y, m: T.log(x + y), lambda x, y, m: T.exp(x) - 2,
                    lambda x, y, m: 1 - T.exp(x), lambda x, y, m: T.log(1 - x)],
    "log_sigmoid": [lambda x, y, m: T.log(T.tanh(x)), lambda x, y, m: T.log(2 - T.sigmoid(x)),
                    lambda x, y, m: T.log(T.sigmoid(x) + 1)],
    "log_softmax": [lambda x, y, m: T.log(T.exp(m)), lambda x, y, m: T.exp(T.nnet.softmax(m))],
    "argmax_of_monotonic": [lambda x, y, m: T.argmax(T.nnet.softmax(m), axis=0),     # other axis
                            lambda x, y, m: T.argmax(T.sin(x)), lambda x, y, m: T.argmax(T.exp(T.ivector("i")))],
}


def _inputs_of(expr, x, y, m):
    from gencomp.graph.basic import ancestors

    found = {id(v) for v in ancestors([expr])}
    extra = [v for v in ancestors([expr]) if v.owner is None and getattr(v, "name", None) == "i"]
    return [v for v in (x, y, m) if id(v) in found] + extra


def _eval_inputs(inputs):
    rng = np.random.default_rng(5)
    values = []
    for v in inputs:
        if v.dtype.startswith("int"):
            values.append(rng.integers(-3, 4, size=6).astype(v.dtype))
        elif v.ndim == 1:
            values.append(rng.uniform(0.1, 2.0, size=6))
        else:
            values.append(rng.uniform(0.1, 2.0, size=(2, 3)))
    return values


@pytest.mark.parametrize("rule,k", [(r, k) for r, cases in FIRES.items() for k in range(len(cases))])
def test_rule_fires_on_its_pattern_and_keeps_the_value(rule, k):
    x, y, m = _vars()
    expr = FIRES[rule][k](x, y, m)
    inputs = _inputs_of(expr, x, y, m)
    fg = _fg(inputs, expr)
    before = len(fg.toposort())
    # lowering softmax to kernels adds nodes: the shrinking is checked on the graph before it
    counts = optimize(fg, "fast_run", exclude=() if rule in GROWS else ("softmax_as_kernels",))
    assert counts.get(rule, 0) >= 1, f"{rule} did not fire on {graph_lines([expr])}: {counts}"
    if rule in GROWS:
        assert not any(re.search(p, op) for p in GROWS[rule] for op in _ops(fg)), _ops(fg)
    elif rule not in ("log_sigmoid", "logistic_as_sigmoid", "self_subtraction", "scan_unused_outputs",
                      "scan_save_mem"):
        # same node count: -softplus(-x), fill(x, 0), a scan with fewer outputs or rows
        assert len(fg.toposort()) < before, _ops(fg)
    values = _eval_inputs(inputs)
    expected = compile_with("None", inputs, expr)(*values)
    got = compile_with("fast_run", inputs, expr)(*values)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-14)


@pytest.mark.parametrize("rule,k", [(r, k) for r, cases in LEAVES_ALONE.items() for k in range(len(cases))])
def test_rule_leaves_non_matching_graphs_alone(rule, k):
    x, y, m = _vars()
    expr = LEAVES_ALONE[rule][k](x, y, m)
    inputs = _inputs_of(expr, x, y, m)
    fg = _fg(inputs, expr)
    counts = optimize(fg, "fast_run")
    assert rule not in counts, f"{rule} fired on {graph_lines([expr])}: {counts}"


def test_every_registered_rule_is_covered_here():
    assert set(registered()) - {"merge"} <= set(FIRES), set(registered()) - set(FIRES)
    assert set(FIRES) <= set(registered())


def test_shape_rewrites_compose_transpositions_correctly():
    t3 = T.tensor3("t")
    v = np.arange(24.0).reshape(2, 3, 4)
    cases = [
        (t3.dimshuffle(2, 0, 1).dimshuffle(2, 0, 1), lambda a: a.transpose(2, 0, 1).transpose(2, 0, 1)),
        (t3.dimshuffle(1, 2, 0).dimshuffle(0, "x", 2, 1), lambda a: a.transpose(1, 2, 0).transpose(0, 2, 1)[:, None]),
        (t3.dimshuffle(2, "x", 1, 0).dimshuffle(3, 2, 0), lambda a: a.transpose(2, 1, 0).transpose(2, 1, 0)),
        (t3.reshape((6, 4)).reshape((4, 6)).T, lambda a: a.reshape(4, 6).T),
    ]
    for expr, ref in cases:
        fg = _fg([t3], expr)
        counts = optimize(fg, "fast_run")
        assert counts, f"nothing fired on {graph_lines([expr])}"
        got = compile_with("fast_run", [t3], expr)(v)
        np.testing.assert_array_equal(got, ref(v))


def test_constant_chains_fold_to_one_multiplication():
    x = T.lvector("x")          # integers: float chains are kept (overflow / cancellation)
    e = x
    for _ in range(40):
        e = e * 3
    fg = _fg([x], e)
    optimize(fg, "fast_run")
    assert _ops(fg) == ["Elemwise{mul}"], _ops(fg)
    v = np.array([1, -2, 0, 7], dtype=np.int64)
    with np.errstate(all="ignore"):
        expected = v * np.int64(3) ** 40                   # wraps exactly like the chain
    np.testing.assert_array_equal(compile_with("fast_run", [x], e)(v), expected)


def test_merge_joins_equal_subgraphs_and_constants_but_not_signed_zeros():
    x, y = T.vectors("x", "y")
    fg = _fg([x, y], [T.exp(x) * 2 + T.exp(x) * 2, T.exp(y) + 2])
    optimize(fg, "fast_compile")
    ops = _ops(fg)
    assert ops.count("Elemwise{exp}") == 2 and ops.count("Elemwise{mul}") == 1, ops
    consts = {id(i) for n in fg.toposort() for i in n.inputs if isinstance(i, gencomp.graph.Constant)}
    assert len(consts) == 1
    f = compile_with("fast_run", [x], [x * 0.0, x * -0.0, x + 1, x + 1])
    a, b, c, d = f(np.array([1.0, -1.0]))
    assert same_bits(a, np.array([0.0, -0.0])) and same_bits(b, np.array([-0.0, 0.0]))
    assert c is not d and not np.shares_memory(c, d)


def test_optimizer_modes_select_phases():
    x = T.vector("x")
    expr = T.log(1 + (x * 1) ** 2) + T.exp(x) * 1
    fg = _fg([x], expr)
    before = [(n.op, list(n.inputs)) for n in fg.toposort()]
    assert optimize(fg, "None") == {}
    assert [(n.op, list(n.inputs)) for n in fg.toposort()] == before
    fg = _fg([x], expr)
    assert optimize(fg, "fast_compile") == {}         # merge only (a graph rule)
    assert "Elemwise{log}" in _ops(fg) and "Elemwise{pow}" in _ops(fg)
    fg = _fg([x], expr)
    counts = optimize(fg, "fast_run")
    assert {"neutral_elements", "log1p_expm1", "pow_to_products"} <= set(counts), counts
    assert "Elemwise{pow}" not in _ops(fg) and "Elemwise{log}" not in _ops(fg)
    assert compile_with("fast_compile", [x], expr).dprint().count("Elemwise{mul}") == 2
    # the mode names of function(mode=...) map onto the same optimizers
    assert "log1p" in function([x], expr, mode="FAST_RUN").dprint()
    assert "log1p" not in function([x], expr, mode="FAST_COMPILE").dprint()


def test_rules_never_mutate_the_users_graph():
    x, y = T.vectors("x", "y")
    m = T.matrix("m")
    exprs = [T.log(1 + -(-x) * 1) + (y * 2) * 3 + x ** 2, T.log(T.sigmoid(x - y)) + (T.exp(y) - 1),
             T.sum(T.log(T.nnet.softmax(m.T.T))), m.reshape((3, 2)).reshape((2, 3)) + 0]
    text = debugprint(exprs, file=open(os.devnull, "w"))
    from gencomp.graph.basic import toposort

    nodes = toposort(exprs)
    snapshot = [(n, n.op, list(n.inputs), list(n.outputs)) for n in nodes]
    values = [np.array([0.5, -1.0, 3.0]), np.array([2.0, 0.25, -1.0]), np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])]
    before = compile_with("None", [x, y, m], exprs)(*values)
    # every node rule, called directly on every user node, must not touch the node
    for name, (phase, fn) in list(rewrite_engine._NODE_RULES.items()):
        for n in nodes:
            fn(n)
    compile_with("fast_run", [x, y, m], exprs)
    fg = FunctionGraph([x, y, m], exprs)
    optimize(fg, "fast_run")
    assert [(n, n.op, list(n.inputs), list(n.outputs)) for n in toposort(exprs)] == snapshot
    assert all(n.op is op and n.inputs == ins and n.outputs == outs for n, op, ins, outs in snapshot)
    assert debugprint(exprs, file=open(os.devnull, "w")) == text
    after = compile_with("None", [x, y, m], exprs)(*values)
    for a, b in zip(before, after):
        assert same_bits(a, b)


# ------------------------------------------------------------------ defects found (regressions)

def test_bug_neutral_elements_and_neg_of_sub_keep_the_sign_of_zero():
    """Regression: x + 0 -> x turned +0.0 into -0.0 when x = -0.0, -(a - b) -> b - a turned -0.0
    into +0.0 when a == b (fixed); x - (-0.0) -> x still turns +0.0 into -0.0 when x = -0.0.
    IEEE: -0.0 + 0.0 = +0.0, -0.0 - -0.0 = +0.0 and -(a - a) = -0.0; 1/result shows the sign."""
    x, y = T.vectors("x", "y")
    xv, yv = np.array([-0.0, 0.0, 2.0]), np.array([-0.0, 0.0, 2.0])
    for expr in (1 / (x + 0), 1 / (0 + x), 1 / -(x - y), 1 / (x - -0.0), 1 / (x + -0.0), 1 / (x - 0),
                 1 / ((x + 1) + -1), 1 / ((x * 1) / 1) ** 1):
        expected = quiet(compile_with("None", [x, y], expr, on_unused_input="ignore"), xv, yv)
        got = quiet(compile_with("fast_run", [x, y], expr, on_unused_input="ignore"), xv, yv)
        assert same_bits(got, expected), f"{graph_lines([expr])}: {got} != {expected}"


def test_bug_collect_constants_must_not_fold_to_zero_or_infinity():
    """Regression: (x*1e-200)*1e-200 -> x*0.0 (c1*c2 underflows): 1e300 -> 0 instead of 1e-100 and
    inf -> nan; (x*1e200)*1e200 -> x*inf: 0 -> nan, 1e-300 -> inf instead of 1e100."""
    x = T.vector("x")
    xv = np.array([1e300, np.inf, 0.0, 1e-300, -2.0])
    for expr in ((x * 1e-200) * 1e-200, (x * 1e200) * 1e200):
        expected = quiet(compile_with("None", [x], expr), xv)
        got = quiet(compile_with("fast_run", [x], expr), xv)
        np.testing.assert_array_equal(got, expected)
    f = T.fvector("f")
    fv = np.array([3e38, np.inf, 0.0], dtype="float32")
    expr = (f * np.float32(1e-30)) * np.float32(1e-30)
    np.testing.assert_array_equal(quiet(compile_with("fast_run", [f], expr), fv),
                                  quiet(compile_with("None", [f], expr), fv))


def test_bug_collect_constants_must_respect_the_dtype_of_the_inner_operation():
    """Regression: (int8 * 100) * 2.0 wraps in int8 before the float multiply (2 -> -112.0), but the
    rewrite gives int8 * 200.0 = 400.0; (float32 * 3) * float64(2) overflows float32 (inf) but the
    rewrite computes float32 * 6.0 in float64 (1.2e39)."""
    b = T.bvector("b")
    f = T.fvector("f")
    cases = [([b], (b * 100) * 2.0, [np.array([2, -1, 1], dtype="int8")]),
             ([f], (f * 3) * np.float64(2), [np.array([2e38, 1.0], dtype="float32")]),
             ([f], (f + 1) + np.float64(0.25), [np.array([1e-8, 3.0], dtype="float32")])]
    for inputs, expr, values in cases:
        expected = quiet(compile_with("None", inputs, expr), *values)
        got = quiet(compile_with("fast_run", inputs, expr), *values)
        assert same_bits(got, expected), f"{graph_lines([expr])}: {got} != {expected}"


def test_bug_stabilizations_must_not_change_integer_results():
    """Regression: log(sigmoid(x)) -> -softplus(-x) negates an int8 -128 (wraps to -128):
    -softplus(-128) = -0.0 instead of about -128; log(1 + x) -> log1p(x) drops the int8
    wrap-around of 1 + 127 (numpy and the unoptimized graph: log(-128) = nan)."""
    b = T.bvector("b")
    v = np.array([-128, -100, 3, 127], dtype="int8")
    wide = v.astype(np.float64)
    with np.errstate(all="ignore"):
        cases = [(T.log(T.sigmoid(b)), -np.logaddexp(0, -wide)),
                 (T.log(1 + b), np.log((v + np.int8(1)).astype(np.float64)))]
    for expr, expected in cases:
        got = quiet(compile_with("fast_run", [b], expr), v).astype(np.float64)
        # float32 results: values below its smallest subnormal are 0
        ok = (np.isnan(got) & np.isnan(expected)) | (np.abs(got - expected) <= 1e-5 * np.abs(expected) + 1.5e-45)
        assert ok.all(), f"{graph_lines([expr])}: {got}, expected {expected}"


def test_bug_rewrites_must_not_hide_shape_errors():
    """Regression: m * ones((3, 4)) -> m drops the check that m (not broadcastable) has 3 rows, so a
    (1, 4) input gives a (1, 4) result instead of the shape error; reshape(reshape(x, (4,)), (2, 3))
    -> reshape(x, (2, 3)) accepts a 6-element x that the first reshape rejects."""
    m = T.matrix("m")
    x = T.vector("x")
    for inputs, expr, value in [([m], m * np.ones((3, 4)), np.ones((1, 4))),
                                ([x], x.reshape((4,)).reshape((2, 3)), np.ones(6))]:
        with pytest.raises(ValueError):
            compile_with("None", inputs, expr)(value)
        with pytest.raises(ValueError):
            compile_with("fast_run", inputs, expr)(value)


# ------------------------------------------------------------------ memory

def test_borrowed_output_reuses_its_buffer_and_others_are_fresh():
    x = T.vector("x")
    f = function([x], [Out(T.exp(x) * 2, borrow=True), x * 3])
    a1, b1 = f(np.array([0.0, 1.0]))
    a2, b2 = f(np.array([1.0, 2.0]))
    assert a1 is a2                                    # the borrowed buffer, overwritten in place
    np.testing.assert_allclose(a1, np.exp([1.0, 2.0]) * 2)
    assert b1 is not b2 and not np.shares_memory(b1, b2)
    np.testing.assert_array_equal(b1, [0.0, 3.0])      # not overwritten by the second call
    a3, _ = f(np.array([1.0, 2.0, 3.0]))               # a new shape: a new buffer
    assert a3.shape == (3,)
    np.testing.assert_allclose(a3, np.exp([1.0, 2.0, 3.0]) * 2)
    g = function([x], Out(x + 1, borrow=False))
    assert g(np.ones(2)) is not g(np.ones(2))
    # an output the optimizer reduces to the input itself is still a buffer of its own
    v = np.arange(3.0)
    h = function([x], [Out(x * 1, borrow=True), Out(-(-x), borrow=True), x.T + 0])
    r1 = h(v)
    r2 = h(v + 1)
    assert r1[0] is r2[0] and r1[1] is r2[1]
    assert _aliases(r2, [v, r1[2]]) == []
    np.testing.assert_array_equal(r2[0], v + 1)
    np.testing.assert_array_equal(r1[2], v)


def _aliases(outputs, others):
    outs = outputs if isinstance(outputs, list) else [outputs]
    pairs = [(i, j) for i in range(len(outs)) for j in range(i + 1, len(outs)) if np.shares_memory(outs[i], outs[j])]
    return pairs + [("other", k) for o in outs for k, w in enumerate(others) if np.shares_memory(o, w)]


def test_outputs_never_alias_inputs_each_other_shared_values_or_constants():
    x = T.vector("x")
    m = T.matrix("m")
    xv, mv = np.arange(6.0), np.arange(6.0).reshape(2, 3)
    cases = [([x], x, [xv]), ([x], x * 1, [xv]), ([x], [x * 1, x, x + 0], [xv]), ([m], m.T.T, [mv]),
             ([m], m.T, [mv]), ([x], x.reshape((2, 3)).reshape((6,)), [xv]), ([x], x.reshape((2, 3)), [xv]),
             ([x], x[1:], [xv]), ([m], m.T[1:], [mv]), ([x], [x + 1, x + 1], [xv]),
             ([x], -(-x), [xv]), ([x], x.dimshuffle("x", 0).dimshuffle(1), [xv])]
    for opt in ("fast_run", "None"):
        for inputs, outputs, values in cases:
            f = compile_with(opt, inputs, outputs)
            first = f(*values)
            second = f(*values)
            firsts = first if isinstance(first, list) else [first]
            seconds = second if isinstance(second, list) else [second]
            assert _aliases(firsts, list(values) + seconds) == [], (opt, outputs)
    s = shared(np.arange(4.0), name="s")
    for opt in ("fast_run", "None"):
        for expr in (s, s * 1, s + 0, s.reshape((2, 2)).reshape((4,)), s[::2], s.dimshuffle("x", 0).dimshuffle(1)):
            out = compile_with(opt, [], expr)()
            assert not np.shares_memory(out, s.get_value(borrow=True)), (opt, expr)
        f = compile_with(opt, [], [T.arange(3) + 1, T.constant(np.ones(3)) * 1, T.exp(T.constant(0.0))])
        first = f()
        for a in first:
            a[...] = 7
        second = f()
        np.testing.assert_array_equal(second[0], [1, 2, 3])
        np.testing.assert_array_equal(second[1], [1.0, 1.0, 1.0])
        assert second[2] == 1.0
    # an output that is also the new value of a shared variable is a separate array
    s2 = shared(np.zeros(3), name="s2")
    f = function([], s2 + 1, updates={s2: s2 + 1})
    out = f()
    out[...] = -5
    np.testing.assert_array_equal(s2.get_value(), [1.0, 1.0, 1.0])
    g = function([], Out(s2 * 1, borrow=True), updates={s2: s2 * 1})
    assert not np.shares_memory(g(), s2.get_value(borrow=True))


def test_reused_temporaries_survive_shape_changes_between_calls():
    m, w = T.matrices("m", "w")
    outputs = [T.nnet.softmax(m * 2 + 1) * 3,                 # a temporary read by a host op
               T.dot(T.exp(m * 0.1), w) + 1,                  # another one feeding a BLAS product
               T.sum((T.tanh(m * 2 + 1) - m).reshape((-1,)) ** 2),
               (m.T.T * 1 + 0).reshape((-1,))[::2] * 2]
    f = compile_with("fast_run", [m, w], outputs)

    def reference(a, b):
        return [_np_softmax(a * 2 + 1) * 3, np.exp(a * 0.1) @ b + 1,
                np.sum((np.tanh(a * 2 + 1) - a).reshape(-1) ** 2), a.reshape(-1)[::2] * 2]

    rng = np.random.default_rng(3)
    held = []
    for shape in [(3, 4), (5, 2), (3, 4), (1, 1), (40, 50), (3, 4), (2, 6)]:
        a, b = rng.standard_normal(shape), rng.standard_normal((shape[1], 3))
        held.append((f(a, b), reference(a, b)))
        for got, expected in held:                    # earlier results are untouched, too
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ big graphs

N_BIG = 10_000


@pytest.mark.slow
def test_ten_thousand_node_chains_that_rewrite_away():
    x = T.vector("x")
    m = T.matrix("m")
    xv = np.array([1.5, -0.0, np.inf, np.nan, -3.0])
    chains = {}
    e = x
    for _ in range(N_BIG):
        e = -e
    chains["neg"] = ([x], e, xv, xv)
    e = m
    for _ in range(N_BIG):
        e = e.T
    mv = np.arange(6.0).reshape(2, 3)
    chains["transpose"] = ([m], e, mv, mv)
    e = x                 # chains with constants: 3,000 and 2,000 nodes (building them is the slow part)
    for _ in range(1000):
        e = (e * 1 - 0) / 1
    chains["neutral"] = ([x], e, xv, xv)
    e = T.vector("v")
    v = e
    for k in range(N_BIG):
        e = e.reshape((2, 3)) if k % 2 == 0 else e.reshape((6,))
    chains["reshape"] = ([v], e, np.arange(6.0), np.arange(6.0))
    xi = T.lvector("xi")
    e = xi
    for k in range(2000):
        e = e * 3 if k % 2 else e + 5
    e = xi
    for k in range(2000):
        e = e + 3 if k % 2 else e + (-2)
    chains["collect"] = ([xi], e, np.array([1, -3, 0]), np.array([1001, 997, 1000]))
    for name, (inputs, expr, value, expected) in chains.items():
        f = compile_with("fast_run", inputs, expr)
        assert len(f.fgraph.toposort()) <= 1, (name, f.dprint()[:500])
        got = f(value)
        np.testing.assert_array_equal(got, expected, err_msg=name)


@pytest.mark.slow
def test_ten_thousand_node_graph_optimizes_and_compiles():
    """A deep elementwise chain (an unrolled recurrence) of 10,000 nodes that no rule removes:
    no recursion error anywhere (rewrites, lowering, rendering, printing, hashing), the right
    answer, and a generated source whose size grows linearly with the graph (regression: the
    indented optimized-graph listing embedded in the C source and meta.json is O(depth**2):
    about 180 MB for this graph, most of the compile time)."""
    x, y = T.vectors("x", "y")
    e = x
    for k in range(N_BIG // 2):
        e = T.tanh(e) + y if k % 2 else e * 0.5 - x
    fg = FunctionGraph([x, y], [e])
    optimize(fg, "fast_run")
    assert len(fg.toposort()) == N_BIG
    # -O0: the C compiler's optimizer is not under test here and takes seconds on 10,000 statements
    with gencomp.config.change(cflags=_DEFAULT_CFLAGS.replace("-O2", "-O0")):
        f = function([x, y], e)
    a, b = np.linspace(-1, 1, 7), np.linspace(0, 1, 7)
    r = a.copy()
    for k in range(N_BIG // 2):
        r = np.tanh(r) + b if k % 2 else r * 0.5 - a
    np.testing.assert_allclose(f(a, b), r, rtol=1e-12, atol=1e-12)
    size = os.path.getsize(f.source_path)
    assert size < 1000 * N_BIG, f"generated source is {size / 1e6:.0f} MB for {N_BIG} nodes"
