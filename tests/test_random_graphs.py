"""Property tests: random elementwise expression trees, compiled C == device='py' == direct numpy.

Hypothesis draws 1-3 inputs (float32 / float64 / int32 / bool; 0-d, vector,
matrix, row or col, with lengths 0, 1, 3 or 4), one to three expression trees
of depth <= 4 over them built from the table's public functions (every row;
python constants appear as weak leaves), and input values that include nan,
inf, -0.0, int32 min/max. All trees, plus a subtree of the first (so that
outputs share a loop), are compiled into one function. A tree that numpy's
rules (or the lack of a C form) reject at build time raises TypeError and is
left out; an example where every tree is rejected is discarded with `assume`.
Three properties draw from all four dtypes, from floats only and from int32 /
bool only.

The oracle is a direct numpy evaluation of the tree, op by op, in numpy's
compute dtypes (float16 widened to float32, as gencomp does):

* device='py' on the unoptimized graph runs the same numpy functions, so it must match it
  exactly (the optimizer's stabilizing rewrites change rounding: they are checked like C);
* compiled C code uses the C library's exp/log/sin/... which may differ from
  numpy's by a few units in the last place, and such a difference can be
  amplified downstream (cancellation, a floor or a comparison of a computed
  value). So the numpy evaluation is also run with the result of every
  transcendental op perturbed by up to 8 ulp (a few random draws), and a C
  element passes when it lies within the range those runs span (or equals one
  of them, for bool / int results), plus a small dtype tolerance;
* elements that numpy leaves undefined are not compared: a float -> int cast of
  nan / inf / an out-of-range value, and an integer power with a negative
  exponent (numpy raises ValueError: device='py', or constant folding, may raise
  it too; the oracle evaluates such a power with exponent 0 and masks it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gencomp.tensor as T
from gencomp import function
from gencomp.tensor.table import ROWS, SCALARS

DTYPES = ("float32", "float64", "int32", "bool")
KINDS = ("scalar", "vector", "matrix", "row", "col")
CONSTANTS = (0, 1, 2, -3, 0.5, -1.5, 2.0, True)
INEXACT = {"exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "sigmoid", "softplus", "pow",
           "log2", "log10", "exp2"}
ULPS = 8
RUNS = 6                                   # perturbed numpy runs besides the exact one
TOL = {"float32": (1e-6, 1e-37), "float64": (1e-14, 1e-300)}


# ------------------------------------------------------------------------------------- numpy oracle

def _widen(d):
    return np.dtype("float32") if d == np.float16 else d


def numpy_loop(row, args):
    """(numpy compute dtypes of the inputs, result dtype) for a row on arrays / python scalars."""
    sig = [a.dtype if isinstance(a, np.ndarray) else np.dtype(bool) if isinstance(a, bool) else type(a)
           for a in args]
    if row.typing == "same":
        d = sig[0] if isinstance(sig[0], np.dtype) else np.dtype({int: "int64", float: "float64"}[sig[0]])
        return [d], d
    if row.typing == "where":
        out = np.where(*[np.zeros(1, a.dtype) if isinstance(a, np.ndarray) else a for a in args]).dtype
        return [np.dtype(bool), out, out], out
    if row.typing == "second":       # the value's dtype (a python scalar takes the first operand's)
        strong = [s if isinstance(s, np.dtype) else np.dtype({int: "int64", float: "float64"}[s])
                  for s in sig]
        weak_model = not isinstance(sig[0], np.dtype)
        out = sig[1] if isinstance(sig[1], np.dtype) else strong[1] if weak_model else strong[0]
        return [strong[0], out], out
    resolved = [_widen(d) for d in row.typing.resolve_dtypes(tuple(sig) + (None,) * row.typing.nout)]
    return resolved[:-1], resolved[-1]


class Evaluator:
    """Evaluates a tree with numpy; `rng` set: perturbs transcendental float results by up to ULPS ulp."""

    def __init__(self, values, rng=None):
        self.values = values
        self.rng = rng
        self.negative_int_power = False     # numpy raises ValueError on such a power

    def __call__(self, tree):
        """(value: ndarray or python scalar, undefined: bool mask broadcastable to the value)."""
        tag = tree[0]
        if tag == "input":
            return self.values[tree[1]], np.zeros((), bool)
        if tag == "const":
            return tree[1], np.zeros((), bool)
        if tag == "cast":
            x, undef = self(tree[2])
            x = np.asarray(x)
            target = np.dtype(tree[1])
            if target.kind in "iu" and x.dtype.kind == "f":
                info = np.iinfo(target)
                with np.errstate(all="ignore"):
                    tr = np.trunc(x.astype(np.float64))
                undef = undef | ~(np.isfinite(tr) & (tr >= info.min) & (tr <= info.max))
            with np.errstate(all="ignore"):
                return x.astype(target), undef
        row = SCALARS[tag]
        evaluated = [self(child) for child in tree[1:]]
        args = [v for v, _ in evaluated]
        undef = np.zeros((), bool)
        for _, u in evaluated:
            undef = undef | u
        ins, out = numpy_loop(row, args)
        # python constants take the compute dtype numpy gives them in this operation (weak scalars)
        args = [np.asarray(a).astype(d) for a, d in zip(args, ins)]
        if row.name == "pow" and np.dtype(ins[1]).kind in "iu":
            exponent = np.asarray(args[1])
            negative = exponent < 0
            if negative.any():
                self.negative_int_power = True
                undef = undef | negative
                args[1] = np.where(negative, np.zeros((), exponent.dtype), exponent)
        with np.errstate(all="ignore"):
            result = np.asarray(row.ref(*args)).astype(out)
        if row.name in ("mod", "floor_div") and np.dtype(ins[0]).kind == "f":
            # |a / b| beyond 1/eps: one ulp of b (from an inexact operand) changes the result entirely
            with np.errstate(all="ignore"):
                ratio = np.abs(args[0].astype(np.float64) / args[1].astype(np.float64))
            undef = undef | (ratio > 1 / np.finfo(ins[0]).eps)
        if self.rng is not None and row.name in INEXACT and out.kind == "f":
            eps = np.finfo(out).eps * ULPS
            noise = self.rng.uniform(-1, 1, result.shape)
            tiny = np.finfo(out).smallest_subnormal * ULPS * self.rng.uniform(-1, 1, result.shape)
            with np.errstate(all="ignore"):
                result = np.asarray(result.astype(np.float64) * (1 + eps * noise) + tiny).astype(out)
        return result, undef


def accept(actual, runs, undefined):
    """Mask of the elements of `actual` consistent with the numpy runs (runs[0] is the exact one)."""
    exact = runs[0]
    stack = np.stack([np.broadcast_to(r, exact.shape) for r in runs])
    if exact.dtype.kind in "biu":
        ok = (stack == actual).any(axis=0)
    else:
        rtol, atol = TOL[exact.dtype.name]
        s = stack.astype(np.float64)
        a = actual.astype(np.float64)
        isnan = np.isnan(s)
        anynan, allnan = isnan.any(axis=0), isnan.all(axis=0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo = np.nanmin(np.where(isnan, np.inf, s), axis=0)
            hi = np.nanmax(np.where(isnan, -np.inf, s), axis=0)
            scale = np.maximum(np.abs(np.where(np.isfinite(lo), lo, 0)),
                               np.abs(np.where(np.isfinite(hi), hi, 0)))
            tol = rtol * scale + atol
            ok = (np.isnan(a) & anynan) | (~np.isnan(a) & ~allnan & (a >= lo - tol) & (a <= hi + tol))
    return ok | np.broadcast_to(undefined, exact.shape)


# ----------------------------------------------------------------------------------------- strategies

def shape_of(kind, m, n):
    return {"scalar": (), "vector": (n,), "matrix": (m, n), "row": (1, n), "col": (m, 1)}[kind]


def elements(dtype):
    if dtype == "bool":
        return st.booleans()
    if dtype == "int32":
        return st.one_of(st.integers(-4, 4), st.sampled_from([-2**31, 2**31 - 1, 100, -100]),
                         st.integers(-2**31, 2**31 - 1))
    width = 32 if dtype == "float32" else 64
    specials = st.sampled_from([float(np.dtype(dtype).type(v)) for v in
                                (0.0, -0.0, 1.0, -1.0, 0.5, 2.5, -2.5, np.inf, -np.inf, np.nan,
                                 1e30, -1e-30)])
    return st.one_of(specials, st.floats(width=width, allow_nan=True, allow_infinity=True),
                     st.floats(-10, 10, width=width))


OP_NAMES = [row.name for row in ROWS]


@st.composite
def trees(draw, n_inputs, depth, root=False):
    if not root and (depth == 0 or draw(st.integers(0, 3)) == 0):
        if draw(st.integers(0, 4)) == 0:
            return ("const", draw(st.sampled_from(CONSTANTS)))
        return ("input", draw(st.integers(0, n_inputs - 1)))
    name = draw(st.sampled_from(OP_NAMES))
    if name == "cast":
        return ("cast", draw(st.sampled_from(DTYPES)), draw(trees(n_inputs, depth - 1)))
    return (name, *[draw(trees(n_inputs, depth - 1)) for _ in range(SCALARS[name].arity)])


@st.composite
def problems(draw, dtypes=DTYPES):
    """(input types, 1-3 expression trees over them, input values)."""
    n_inputs = draw(st.integers(1, 3))
    types = [(draw(st.sampled_from(dtypes)), draw(st.sampled_from(KINDS))) for _ in range(n_inputs)]
    m = draw(st.sampled_from([0, 1, 3]))
    n = draw(st.sampled_from([1, 4]))
    n_roots = draw(st.integers(1, 3))
    roots = [draw(trees(n_inputs, draw(st.integers(1, 4)), root=True)) for _ in range(n_roots)]
    values = [draw(hnp.arrays(np.dtype(d), shape_of(k, m, n), elements=elements(d))) for d, k in types]
    return types, roots, values


def build(tree, variables):
    tag = tree[0]
    if tag == "input":
        return variables[tree[1]]
    if tag == "const":
        return tree[1]
    if tag == "cast":
        return T.cast(build(tree[2], variables), tree[1])
    return getattr(T, tag)(*[build(child, variables) for child in tree[1:]])


def subtrees(tree):
    if tree[0] in ("input", "const"):
        return []
    children = tree[2:] if tree[0] == "cast" else tree[1:]
    return [c for c in children if c[0] not in ("input", "const")]


def show(tree):
    tag = tree[0]
    if tag == "input":
        return f"x{tree[1]}"
    if tag == "const":
        return repr(tree[1])
    if tag == "cast":
        return f"cast({show(tree[2])}, {tree[1]!r})"
    return f"{tag}({', '.join(show(c) for c in tree[1:])})"


# ------------------------------------------------------------------------------------------- the tests

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.slow
@SETTINGS
@given(problems())
def test_random_elementwise_graph(problem):
    check(*problem)


@pytest.mark.slow
@SETTINGS
@given(problems(dtypes=("float32", "float64")))
def test_random_float_graph(problem):
    check(*problem)


@pytest.mark.slow
@SETTINGS
@given(problems(dtypes=("int32", "bool")))
def test_random_int_bool_graph(problem):
    check(*problem)


def check(types, roots, values):
    """Compile the trees that build (one function, every root plus a subtree of the first as outputs)
    with the C backend and with device='py', and compare both with the numpy evaluation."""
    variables = [getattr(T, kind)(f"x{i}", dtype=dtype) for i, (dtype, kind) in enumerate(types)]
    note(f"inputs: {[(d, k, v.shape) for (d, k), v in zip(types, values)]}")
    chosen, outputs = [], []
    for tree in roots + subtrees(roots[0])[:1]:      # the subtree shares its loop with its root
        note(f"graph: {show(tree)}")
        try:
            outputs.append(build(tree, variables))
        except TypeError as exc:     # numpy has no loop, or the row no C form, for these dtypes
            note(f"  rejected at build time: {exc}")
            continue
        chosen.append(tree)
    assume(outputs)

    def numpy_raises(exc):
        """numpy raises ValueError on an integer power with a negative exponent: that is its answer
        there (in device='py', or in constant folding at build time), and the elements are undefined
        for the comparison with C."""
        oracle = Evaluator(values)
        for tree in chosen:
            oracle(tree)
        note(f"raised {exc!r}")
        return oracle.negative_int_power

    try:
        got_c = function(variables, outputs, on_unused_input="ignore")(*values)
    except ValueError as exc:
        if not numpy_raises(exc):
            raise
        return
    try:
        # the unoptimized graph: stabilizing rewrites (log(sigmoid(x)) -> -softplus(-x)) change rounding
        got_p = function(variables, outputs, on_unused_input="ignore", device="py", mode="None")(*values)
    except ValueError as exc:
        if not numpy_raises(exc):
            raise
        got_p = None

    for k, (sub, c_val, out_var) in enumerate(zip(chosen, got_c, outputs)):
        p_val = None if got_p is None else got_p[k]
        exact, undef = Evaluator(values)(sub)
        exact = np.asarray(exact)
        rng = np.random.default_rng(k)
        runs = [exact] + [np.asarray(Evaluator(values, rng)(sub)[0]) for _ in range(RUNS)]
        label = f"output {k} = {show(sub)}"
        assert out_var.dtype == exact.dtype.name, f"{label}: graph dtype {out_var.dtype}, numpy {exact.dtype}"
        for name, val in (("C", c_val), ("py", p_val if p_val is not None else c_val)):
            assert isinstance(val, np.ndarray), f"{label}: {name} returned {type(val).__name__}"
            assert val.dtype == exact.dtype, f"{label}: {name} dtype {val.dtype}, numpy {exact.dtype}"
            assert val.shape == exact.shape, f"{label}: {name} shape {val.shape}, numpy {exact.shape}"
        defined = ~np.broadcast_to(undef, exact.shape)
        if p_val is not None:
            # the numpy reference evaluator runs the same numpy functions: exactly equal
            same = (p_val == exact) | ((p_val != p_val) & (exact != exact))
            assert (same | ~defined).all(), (
                f"{label}: device='py' differs from numpy at {np.argwhere(~same & defined)[:4].tolist()}: "
                f"py {p_val[~same & defined][:4]!r}, numpy {exact[~same & defined][:4]!r}")
        ok = accept(c_val, runs, undef)
        assert ok.all(), (
            f"{label}: compiled C differs from numpy at {np.argwhere(~ok)[:4].tolist()}: "
            f"C {c_val[~ok][:4]!r}, numpy {exact[~ok][:4]!r}")


def test_every_row_can_appear():
    """The generator draws from the whole table (new rows included) and builds each through T."""
    assert set(OP_NAMES) == {row.name for row in ROWS}
    for name in OP_NAMES:
        if name != "cast":
            assert callable(getattr(T, name))


@pytest.mark.parametrize("dtype", DTYPES)
def test_accept_rejects_a_wrong_value(dtype):
    """The bracket comparison is not vacuous: a changed element is caught, a nan for a number too."""
    exact = np.array([1, 0, 1], dtype=dtype)
    runs = [exact] * 3
    wrong = exact.copy()
    wrong[0] = 0 if dtype == "bool" else 2
    assert accept(exact, runs, np.zeros((), bool)).all()
    assert not accept(wrong, runs, np.zeros((), bool))[0]
    if dtype.startswith("float"):
        wrong[0] = np.nan
        assert not accept(wrong, runs, np.zeros((), bool))[0]
