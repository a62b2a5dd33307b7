"""Every row of the elementwise table, on every dtype, against its numpy reference (C backend).

The tests are generated from `gencomp.tensor.table.ROWS`: a new row is tested
automatically. For each (row, dtype):

* if numpy has no loop for the row's typing ufunc on that dtype, or the row has
  no C form for the kind of the compute dtype, building the graph must raise a
  TypeError whose message names the op and the dtype;
* otherwise ONE function is compiled that computes the op for every broadcast
  pattern (0-d with 0-d, vector with vector, matrix with row, row with matrix,
  col with row, matrix with a weak python constant on either side), and it is
  called three times: on edge values, on the same values as non-contiguous views
  (Fortran order / negative strides / step 2), and on empty arrays. Each output
  is compared with the row's numpy reference evaluated on the numpy compute
  dtypes (float16, which numpy picks for some small-integer loops, is widened to
  float32, as gencomp does).

What is deliberately not compared (each is noted where it happens, nothing is
dropped silently):
* integer `pow` with a negative exponent: numpy raises ValueError, so there is
  no reference; those exponents are mapped to non-negative ones (the base keeps
  its sign);
* `cast` from float/complex to an integer type of a value outside the target's
  range (or nan/inf): numpy and C both leave it undefined; those elements are
  masked out of the comparison (the call must still succeed);
* the sign of a zero result of `maximum` / `minimum` of 0.0 and -0.0 (IEEE
  leaves it open; numpy's SIMD loops return the second operand). The sign of
  zero is compared for every other real-float result, not for complex ones.

A float32 / complex64 result also passes when it matches numpy's double-precision
result rounded to the dtype (numpy's complex64 pow, for one, loses 4 digits on
(1000+1j) ** (-2.5+1000j)).
"""

from __future__ import annotations

import itertools
import warnings
import zlib

import numpy as np
import pytest

import gencomp.tensor as T
from gencomp import function
from gencomp.tensor.table import ROWS

DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64",
          "float32", "float64", "complex64", "complex128")

# Per-dtype tolerances of compiled results against numpy (rtol, atol); integers and bools are exact.
TOL = {
    "float32": (1e-5, 1e-30),
    "float64": (1e-12, 1e-300),
    "complex64": (1e-5, 1e-30),
    "complex128": (1e-12, 1e-300),
}

# maximum / minimum of 0.0 and -0.0: IEEE 754 leaves the sign open and numpy's SIMD loops return the
# second operand, so the sign of a zero result is not compared for these (it is for every other real op).
UNSPECIFIED_ZERO_SIGN = {"maximum", "minimum"}

# A python constant of the dtype's kind: stays weak (an fvector op 0.1 is float32).
WEAK_CONSTANT = {"b": True, "i": 3, "u": 3, "f": 0.1, "c": 0.5 - 2j}


# ----------------------------------------------------------------------------------------- edge values

def edge_values(dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return np.array([False, True])
    if dt.kind in "iu":
        info = np.iinfo(dt)
        cand = [0, 1, 2, 3, 7, 100, -1, -2, -7, info.min, info.min + 1, info.max, info.max - 1,
                info.max // 2, info.max // 2 + 1]
        vals = sorted({v for v in cand if info.min <= v <= info.max})
        return np.array(vals, dtype=dt)
    if dt.kind == "f":
        fi = np.finfo(dt)
        large = 1e30 if dt == np.float32 else 1e300
        vals = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1.5, 1e-3, 30.0, -100.0, large, -large, float(fi.max),
                float(fi.tiny), np.inf, -np.inf, np.nan]
        return np.array(vals, dtype=dt)
    parts = [0.0, 1.0, -2.5, 1e3, np.inf, -np.inf, np.nan]
    return np.array([complex(re, im) for re in parts for im in parts], dtype=dt)


# --------------------------------------------------------------------------------- numpy oracle helpers

def _widen(d: np.dtype) -> np.dtype:
    return np.dtype("float32") if d == np.float16 else d


def numpy_loop(row, args):
    """(numpy compute dtypes of the inputs, numpy result dtype), float16 widened to float32."""
    typing = row.typing
    # python bool is bool (the lowest dtype); python int / float / complex are weak (numpy 2)
    sig = [a.dtype if isinstance(a, np.ndarray) else np.dtype(bool) if isinstance(a, bool) else type(a)
           for a in args]
    if typing == "same":
        return [sig[0]], sig[0]
    if typing == "second":       # the value's dtype, broadcast to the first operand's shape
        out = sig[1] if isinstance(sig[1], np.dtype) else sig[0]
        return [sig[0], out], out
    if typing == "where":
        out = np.where(*[np.zeros(1, a.dtype) if isinstance(a, np.ndarray) else a for a in args]).dtype
        return [np.dtype(bool), out, out], out
    resolved = typing.resolve_dtypes(tuple(sig) + (None,) * typing.nout)
    resolved = [_widen(d) for d in resolved]
    return resolved[:-1], resolved[-1]


_DOUBLE = {np.dtype("float32"): np.dtype("float64"), np.dtype("complex64"): np.dtype("complex128")}


def numpy_expected(row, args, precise=False):
    """The row's numpy reference on `args` (arrays or python scalars), computed in numpy's compute dtypes
    (with `precise`, single-precision compute dtypes are raised to double; the result dtype is kept)."""
    ins, out = numpy_loop(row, args)
    if precise:
        ins = [_DOUBLE.get(np.dtype(d), d) if isinstance(d, np.dtype) else d for d in ins]
    cast = [a.astype(d) if isinstance(a, np.ndarray) else a for a, d in zip(args, ins)]
    arrays = [a for a in cast if isinstance(a, np.ndarray)]
    scalar = bool(arrays) and all(a.ndim == 0 for a in arrays)
    if scalar:   # numpy's 0-d path can differ from its array loops (float32 pow(-inf, 0.5)): use the latter
        cast = [a.reshape(1) if isinstance(a, np.ndarray) else a for a in cast]
    with np.errstate(all="ignore"):
        result = np.asarray(row.ref(*cast)).astype(out)
    return result.reshape(()) if scalar else result


def expected_defined(row, dtype: str) -> tuple[bool, str]:
    """Whether numpy has a loop for the row on `dtype` inputs, and the row a C form for the compute kind."""
    args = [np.zeros(1, dtype)] * row.arity
    if row.typing == "cast":
        return True, ""
    try:
        ins, _ = numpy_loop(row, args)
    except TypeError as exc:
        return False, f"numpy: {exc}"
    for d in ins:
        if row.c_expr(np.dtype(d).kind) is None:
            return False, f"no C form for kind {np.dtype(d).kind!r}"
    return True, ""


# ------------------------------------------------------------------------------------------ comparison

def _bad(actual, expected, rtol, zero_sign):
    """Boolean mask of the elements of `actual` that do not match `expected`."""
    kind = expected.dtype.kind
    if kind in "biu":
        bad = actual != expected
    else:
        r, a = TOL[expected.dtype.name]
        r = rtol or r
        bad = np.zeros(expected.shape, bool)
        parts = (lambda z: (z.real, z.imag)) if kind == "c" else (lambda z: (z,))
        # relative to the modulus: a complex result is as accurate as its larger component
        with np.errstate(all="ignore"):
            scale = np.abs(expected.astype(np.complex128 if kind == "c" else np.float64))
        for x, e in zip(parts(actual), parts(expected)):
            x, e = x.astype(np.float64), e.astype(np.float64)
            xn, en = np.isnan(x), np.isnan(e)
            bad |= xn != en
            both_inf = np.isinf(x) & np.isinf(e)
            bad |= (np.isinf(x) | np.isinf(e)) & ~(both_inf & (x == e))
            finite = np.isfinite(x) & np.isfinite(e)
            with np.errstate(all="ignore"):
                bad |= finite & (np.abs(x - e) > a + r * np.where(np.isfinite(scale), scale, np.abs(e)))
            if zero_sign and kind == "f":     # -0.0 exactly where numpy gives -0.0
                zeros = finite & (x == 0) & (e == 0)
                bad |= zeros & (np.signbit(x) != np.signbit(e))
    return bad


def compare(actual, expected, label: str, inputs=(), rtol=None, mask=None, zero_sign=True,
            alternative=None) -> list[str]:
    """Mismatch descriptions (empty when equal within the dtype's tolerance).

    An element also passes when it matches `alternative` (numpy's result computed in double precision
    and rounded to the single-precision dtype: numpy's own float32 / complex64 loops are not always the
    more accurate of the two).
    """
    if not isinstance(actual, np.ndarray):
        return [f"{label}: result is {type(actual).__name__}, not an ndarray"]
    if actual.dtype != expected.dtype:
        return [f"{label}: dtype {actual.dtype}, numpy gives {expected.dtype}"]
    if actual.shape != expected.shape:
        return [f"{label}: shape {actual.shape}, numpy gives {expected.shape}"]
    bad = _bad(actual, expected, rtol, zero_sign)
    if alternative is not None and bad.any():
        bad &= _bad(actual, alternative, rtol, zero_sign)
    if mask is not None:
        bad &= mask
    if not bad.any():
        return []
    where = np.argwhere(bad)[:6]
    shown = []
    bins = np.broadcast_arrays(*[np.asarray(i) for i in inputs]) if inputs else []
    for idx in map(tuple, where):
        ins = ", ".join(repr(b[idx].item()) if b.ndim else repr(b.item()) for b in bins)
        shown.append(f"f({ins}) = {actual[idx]!r}, numpy {expected[idx]!r}")
    return [f"{label}: {int(bad.sum())} of {bad.size} elements differ; e.g. " + "; ".join(shown)]


# -------------------------------------------------------------------------------- inputs and patterns

def make_var(kind: str, dtype: str, name: str):
    return {"scalar": T.scalar, "vector": T.vector, "matrix": T.matrix,
            "row": T.row, "col": T.col}[kind](name, dtype=dtype)


def patterns(arity: int) -> dict:
    """pattern name -> operand kinds ('const' is a weak python constant)."""
    if arity == 1:
        # unary ops have no second operand: constants and mixed shapes do not apply
        return {"scalar": ["scalar"], "vector": ["vector"], "matrix": ["matrix"],
                "row": ["row"], "col": ["col"]}
    alt = ["col" if p % 2 == 0 else "row" for p in range(arity)]
    return {
        "scalar": ["scalar"] * arity,
        "vector": ["vector"] * arity,
        "matrix_row": ["matrix"] + ["row"] * (arity - 1),
        "row_matrix": ["row"] + ["matrix"] * (arity - 1),
        "col_row": alt,
        "matrix_const": ["matrix"] * (arity - 1) + ["const"],
        "const_matrix": ["const"] + ["matrix"] * (arity - 1),
    }


def _grid(vals, axis, n):
    """An (n, n) matrix whose element [i, j] is vals[i] (axis 0) or vals[j] (axis 1)."""
    col = np.resize(vals, n)
    return np.tile(col[:, None], (1, n)) if axis == 0 else np.tile(col[None, :], (n, 1))


def pattern_data(pname, kinds, dtype, dataset, rng):
    """Argument values (arrays, or the python constant) for one pattern and data set."""
    edges = edge_values(dtype)
    n = len(edges)
    arity = len(kinds)
    if pname == "scalar":
        return [np.array(edges[rng.integers(n)]) for _ in kinds]
    if pname == "vector":
        if dataset == "empty":
            return [np.zeros(0, dtype) for _ in kinds]
        if n ** arity <= 5000:
            cols = [list(c) for c in zip(*itertools.product(range(n), repeat=arity))]
        else:
            cols = [list(rng.integers(n, size=3000)) for _ in range(arity)]
        # an odd length: vectorized loops also run their scalar remainder
        cols = [c + c[:1 + len(c) % 2] for c in cols]
        return [edges[np.asarray(c)] for c in cols]
    out = []
    for p, k in enumerate(kinds):
        # operand p varies along axis 0 when p == 0, along axis 1 otherwise: all pairs of edge values meet
        axis = 0 if p == 0 else 1
        if k == "const":
            out.append(WEAK_CONSTANT[np.dtype(dtype).kind])
        elif k == "matrix":
            out.append(np.zeros((0, 4), dtype) if dataset == "empty" else _grid(edges, axis, n))
        elif k == "row":
            m = 0 if (dataset == "empty" and pname == "col_row") else 4 if dataset == "empty" else n
            out.append(np.resize(edges, m)[None, :].astype(dtype))
        elif k == "col":
            m = n if dataset != "empty" or pname == "col_row" else 0
            out.append(np.resize(edges, m)[:, None].astype(dtype))
    if pname in ("row", "col", "matrix") and dataset == "empty":
        shape = {"row": (1, 0), "col": (0, 1), "matrix": (0, 3)}[pname]
        out = [np.zeros(shape, dtype)]
    return out


def restrict_domain(row, dtype, position, value):
    """Map values outside the op's numpy domain to ones inside it (see the module docstring)."""
    if row.name == "pow" and position == 1 and np.dtype(dtype).kind == "i" and isinstance(value, np.ndarray):
        # non-negative exponents: numpy raises on negative ones
        return np.asarray(value & np.iinfo(dtype).max)
    return value


def noncontiguous(a, transposed=False):
    """The same values as a view that is not C-contiguous: Fortran order (a transposed C array) when
    `transposed` and `a` is a true matrix, else a step -2 slice of a larger array."""
    if not isinstance(a, np.ndarray) or a.ndim == 0 or a.size == 0:
        return a
    if transposed and a.ndim == 2 and a.shape[0] > 1 and a.shape[1] > 1:
        view = np.asfortranarray(a)                       # a transposed C array
    else:
        big = np.ones(tuple(2 * s for s in a.shape), a.dtype)
        view = big[tuple(slice(None, None, -2) for _ in a.shape)]
        view[...] = a
    assert not view.flags.c_contiguous and np.array_equal(view, a, equal_nan=a.dtype.kind in "fc")
    return view


# ------------------------------------------------------------------------------------------ the tests

CASES = [(row, dtype) for row in ROWS for dtype in DTYPES]


def test_every_row_is_covered():
    names = [row.name for row in ROWS]
    assert len(set(names)) == len(names), "duplicate row names in the table"
    assert {r.name for r, _ in CASES} == set(names)
    for row in ROWS:
        assert callable(getattr(T, row.name, None)), f"row {row.name!r} has no public function T.{row.name}"
        defined = [d for d in DTYPES if expected_defined(row, d)[0]]
        assert defined, f"row {row.name!r} is defined for none of {DTYPES}: nothing of it would be compiled"


def apply_op(row, operands, out_dtype=None):
    if row.name == "cast":
        return T.cast(operands[0], out_dtype)
    return getattr(T, row.name)(*operands)


@pytest.mark.parametrize("row,dtype", CASES, ids=[f"{r.name}-{d}" for r, d in CASES])
def test_op_dtype(row, dtype):
    if row.name == "cast":
        return check_cast(row, dtype)
    defined, why = expected_defined(row, dtype)
    pats = patterns(row.arity)
    if not defined:
        for pname in ("vector", "scalar"):
            operands = [make_var(k, dtype, f"x{p}") for p, k in enumerate(pats[pname])]
            with pytest.raises(TypeError) as info:
                apply_op(row, operands)
            msg = str(info.value)
            assert row.name in msg and dtype in msg, (
                f"{row.name} on {dtype} ({why}): the TypeError should name the op and the dtype, got {msg!r}")
        return

    inputs, outputs, plan = [], [], []
    for pname, kinds in pats.items():
        operands, slots = [], []
        for p, k in enumerate(kinds):
            if k == "const":
                operands.append(WEAK_CONSTANT[np.dtype(dtype).kind])
                slots.append(None)
            else:
                var = make_var(k, dtype, f"{pname}_{p}")
                operands.append(var)
                slots.append(len(inputs))
                inputs.append(var)
        try:
            out = apply_op(row, operands)
        except TypeError as exc:
            pytest.fail(f"{row.name} on {dtype} is defined in numpy and has a C form, but building "
                        f"pattern {pname} raised TypeError: {exc}")
        outputs.append(out)
        plan.append((pname, kinds, slots))
    f = function(inputs, outputs)

    failures = []
    for dataset in ("edges", "strided", "empty"):
        rng = np.random.default_rng(zlib.crc32(f"{row.name}/{dtype}/{dataset}".encode()))
        values = [None] * len(inputs)
        args_by_pattern = []
        for pname, kinds, slots in plan:
            data = pattern_data(pname, kinds, dtype, "empty" if dataset == "empty" else "edges", rng)
            data = [restrict_domain(row, dtype, p, v) for p, v in enumerate(data)]
            if dataset == "strided":
                data = [noncontiguous(v, transposed=(p == 0)) for p, v in enumerate(data)]
            for slot, v in zip(slots, data):
                if slot is not None:
                    values[slot] = v
            args_by_pattern.append(data)
        try:
            results = f(*values)
        except Exception as exc:   # noqa: BLE001  (reported with the data set)
            failures.append(f"{dataset}: the call raised {type(exc).__name__}: {exc}")
            continue
        for (pname, _, _), data, res in zip(plan, args_by_pattern, results):
            exp = numpy_expected(row, data)
            single = exp.dtype.name in ("float32", "complex64")
            alt = numpy_expected(row, data, precise=True) if single else None
            failures += compare(res, exp, f"{row.name}[{dtype}] {pname} ({dataset})",
                                inputs=[d for d in data if isinstance(d, np.ndarray)],
                                zero_sign=row.name not in UNSPECIFIED_ZERO_SIGN,
                                alternative=alt)
    assert not failures, "\n".join(failures[:12])


def check_cast(row, dtype):
    """One function per source dtype: cast to every dtype, for 0-d, vector, matrix, row and col inputs."""
    kinds = ("scalar", "vector", "matrix", "row", "col")
    xs = [make_var(k, dtype, f"x_{k}") for k in kinds]
    outs = [T.cast(x, t) for x in xs for t in DTYPES]
    outs += [xs[1].astype(t) for t in DTYPES]
    f = function(xs, outs)
    edges = edge_values(dtype)
    n = len(edges)
    failures = []
    for dataset in ("edges", "strided", "empty"):
        vals = [np.array(edges[-1]), edges, np.resize(edges, (3, n)), edges[None, :], edges[:, None]]
        if dataset == "empty":
            vals = [vals[0], np.zeros(0, dtype), np.zeros((0, 3), dtype), np.zeros((1, 0), dtype),
                    np.zeros((0, 1), dtype)]
        if dataset == "strided":
            vals = [noncontiguous(v, transposed=True) for v in vals]
        results = f(*vals)
        pairs = [(x, t) for x in vals for t in DTYPES] + [(vals[1], t) for t in DTYPES]
        for (x, t), res in zip(pairs, results):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")       # ComplexWarning: numpy drops the imaginary part
                exp = x.astype(t)
            mask = None
            if np.dtype(t).kind in "iu" and x.dtype.kind in "fc":
                real = np.real(x).astype(np.float64) if x.size else np.zeros(x.shape)
                info = np.iinfo(t)
                with np.errstate(all="ignore"):
                    tr = np.trunc(real)
                    # float64 cannot hold int64/uint64 max exactly: stay clear of the rounding edge
                    mask = np.isfinite(tr) & (tr >= float(info.min)) & (tr < float(info.max) * (1 - 2**-50))
            failures += compare(res, exp, f"cast {dtype}->{t} ndim={x.ndim} ({dataset})", inputs=[x],
                                mask=mask)
            if res is x or (isinstance(res, np.ndarray) and np.shares_memory(res, x)):
                failures.append(f"cast {dtype}->{t}: the output aliases the input")
    assert not failures, "\n".join(failures[:12])


# --------------------------------------------------------------------- composite and alias functions

@pytest.mark.parametrize("dtype", ["int32", "float32", "float64"])
def test_composites_and_aliases_match_numpy(dtype):
    """T.clip, T.relu (plain and leaky), T.where and the alias names, against numpy, on edge values."""
    x, y = T.vector("x", dtype=dtype), T.vector("y", dtype=dtype)
    edges = edge_values(dtype)
    xv = np.repeat(edges, len(edges))
    yv = np.tile(edges, len(edges))
    lo, hi = (-2, 3) if dtype == "int32" else (-0.5, 2.5)
    outs = {
        "clip": (T.clip(x, lo, hi), lambda a, b: np.clip(a, lo, hi)),
        "relu": (T.relu(x), lambda a, b: np.maximum(a, 0)),
        "where": (T.where(T.gt(x, y), x, y), lambda a, b: np.where(a > b, a, b)),
        "switch": (T.switch(x, y, 1), lambda a, b: np.where(a, b, 1)),
        "abs_": (T.abs_(x), lambda a, b: np.abs(a)),
        "sign": (T.sign(x), lambda a, b: np.sign(a)),
        "true_div": (T.true_div(x, y), lambda a, b: np.true_divide(a, b)),
        "int_div": (T.int_div(x, y), lambda a, b: np.floor_divide(a, b)),
        # int32: exponents kept non-negative (numpy and gencomp raise ValueError on negative ones)
        "power": (T.power(x, T.abs_(y) % 7 if dtype == "int32" else y),
                  lambda a, b: np.power(a, np.abs(b) % 7 if dtype == "int32" else b)),
    }
    if dtype != "int32":
        outs["leaky_relu"] = (T.relu(x, alpha=0.1), lambda a, b: np.where(a > 0, a, a.dtype.type(0.1) * a))
    else:
        outs["bitwise_not"] = (T.bitwise_not(x), lambda a, b: np.invert(a))
        outs["bitwise_and"] = (T.bitwise_and(x, y), lambda a, b: np.bitwise_and(a, b))
    f = function([x, y], [o for o, _ in outs.values()], on_unused_input="ignore")
    failures = []
    for (name, (_, ref)), got in zip(outs.items(), f(xv, yv)):
        with np.errstate(all="ignore"):
            exp = np.asarray(ref(xv, yv))
        if name == "power" and dtype == "int32":
            keep = yv != np.iinfo(np.int32).min          # abs(int32 min) is negative: no numpy answer
            got, exp, a, b = got[keep], exp[keep], xv[keep], yv[keep]
        else:
            a, b = xv, yv
        # clip / relu are maximum / minimum underneath: the sign of a zero result is open (see above)
        failures += compare(got, exp, f"{name}[{dtype}]", inputs=[a, b],
                            zero_sign=name not in ("clip", "relu", "leaky_relu"))
    assert not failures, "\n".join(failures)
    with pytest.raises(TypeError):
        T.where(x)
