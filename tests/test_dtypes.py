"""dtype promotion and conversion follow numpy 2 (C backend and the numpy reference, device='py').

Python scalars are weak (`fvector + 0.1` stays float32), `/` on integers gives
float64, `//` and `%` floor like numpy (also for negatives and a zero divisor),
comparisons give bool, integer overflow wraps, `T.cast` / `.astype` convert like
numpy's astype, complex tensors do arithmetic, and an op with no complex form
raises a TypeError naming the op.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gencomp.tensor as T
from gencomp import config, function

DEVICES = ("cpu", "py")


def run(inputs, outputs, *values, device="cpu"):
    return function(inputs, outputs, device=device)(*values)


def assert_same(actual, expected, rtol=0.0):
    """Equal values and dtype (numpy's), NaN where numpy has NaN."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if rtol:
        np.testing.assert_allclose(actual, expected, rtol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


# ------------------------------------------------------------------------------ weak python scalars

@pytest.mark.parametrize("device", DEVICES)
def test_float32_plus_python_float_stays_float32(device):
    x = T.fvector("x")
    y = x + 0.1
    assert y.dtype == "float32"
    xv = np.array([0, 1, -2.5, 1e30], dtype=np.float32)
    out = run([x], y, xv, device=device)
    assert_same(out, xv + 0.1)                      # 0.1 rounded to float32, added in float32
    assert out[0] == np.float32(0.1) and float(out[0]) != 0.1


@pytest.mark.parametrize("expr, dtype", [
    (lambda x: x * 2, "float32"),
    (lambda x: 2 * x, "float32"),
    (lambda x: x - 1.5, "float32"),
    (lambda x: 1.5 / x, "float32"),
    (lambda x: x ** 2, "float32"),
    (lambda x: T.maximum(x, 0), "float32"),
    (lambda x: T.switch(T.gt(x, 0), x, 0.5), "float32"),
    (lambda x: x + 1j, "complex64"),
])
def test_weak_scalars_keep_float32(expr, dtype):
    assert expr(T.fvector()).dtype == dtype


@pytest.mark.parametrize("make, scalar", [
    (T.ivector, 1.5),           # int32 with python float: float64
    (T.bvector, 1),             # int8 with python int: int8
    (T.bvector, 1.5),
    (T.lvector, 2),
    (T.dvector, 1j),
    (T.cvector, 2.0),
    (lambda: T.vector(dtype="uint8"), 3),
    (lambda: T.vector(dtype="bool"), 3),      # bool with python int: default int (int64)
    (lambda: T.vector(dtype="bool"), 2.5),
])
@pytest.mark.parametrize("device", DEVICES)
def test_weak_scalar_promotion_matches_numpy(make, scalar, device):
    x = make()
    xv = np.array([0, 1, 5], dtype=x.dtype)
    y = x + scalar
    assert y.dtype == (xv + scalar).dtype.name
    assert_same(run([x], y, xv, device=device), xv + scalar)


def test_python_int_out_of_range_for_dtype_raises_like_numpy():
    # numpy 2: np.uint8 array + 300 raises OverflowError; so does building the graph
    with pytest.raises(OverflowError):
        np.zeros(1, np.uint8) + 300
    with pytest.raises(OverflowError):
        T.vector(dtype="uint8") + 300
    with pytest.raises(OverflowError):
        T.bvector() + (-129)


# ---------------------------------------------------------------------- strong-type promotion table

PAIRS = [("int8", "uint8"), ("int32", "float32"), ("int64", "float32"), ("uint64", "int64"),
         ("bool", "int8"), ("float32", "complex64"), ("float64", "complex64"), ("int16", "float32"),
         ("uint32", "int32"), ("int8", "float64"), ("bool", "float32"), ("uint8", "int16")]


@pytest.mark.parametrize("a, b", PAIRS)
def test_mixed_dtypes_promote_like_numpy(a, b):
    x, y = T.vector("x", dtype=a), T.vector("y", dtype=b)
    ops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "true_div": np.true_divide,
           "maximum": np.maximum, "lt": np.less}
    if "complex" in a + b:            # no complex form (a TypeError, tested below)
        ops.pop("maximum")
        ops.pop("lt")
    outs = [getattr(T, name)(x, y) for name in ops]
    xv = np.array([0, 1, 5, 7], dtype=a)
    yv = np.array([1, 0, 3, 1], dtype=b)
    with np.errstate(all="ignore"):
        exp = [ufunc(xv, yv) for ufunc in ops.values()]
    for name, o, e in zip(ops, outs, exp):
        assert o.dtype == e.dtype.name, (name, a, b)
    for device in DEVICES:
        for got, e in zip(run([x, y], outs, xv, yv, device=device), exp):
            assert_same(got, e)


EDGE_PAIRS = [("int64", "uint64"), ("int8", "uint64"), ("int32", "uint32"), ("int16", "uint64"),
              ("uint64", "int64"), ("int64", "float32"), ("uint64", "float64"), ("uint32", "int8"),
              ("bool", "uint64"), ("int64", "float64")]


def _edges(dtype):
    d = np.dtype(dtype)
    if d.kind == "b":
        return [False, True]
    if d.kind in "iu":
        info = np.iinfo(d)
        return sorted({v for v in (0, 1, -1, 5, info.min, info.max, info.max - 1, info.min + 1,
                                   2**53 + 1, 2**63, -2**63) if info.min <= v <= info.max})
    return [0.0, -1.0, 5.0, 2.0**63, -2.0**63, 2.0**64, 9.3e18, np.nan, np.inf]


@pytest.mark.parametrize("a, b", EDGE_PAIRS)
def test_mixed_dtypes_on_edge_values(a, b):
    """Mixed signed / unsigned / float operands at the ends of their ranges: as numpy, which compares
    int64 with uint64 exactly (no wrap-around through a common C type)."""
    x, y = T.vector("x", dtype=a), T.vector("y", dtype=b)
    ea, eb = _edges(a), _edges(b)
    xv = np.array([u for u in ea for _ in eb], dtype=a)
    yv = np.array([v for _ in ea for v in eb], dtype=b)
    ops = {"lt": np.less, "le": np.less_equal, "eq": np.equal, "neq": np.not_equal, "gt": np.greater,
           "maximum": np.maximum, "add": np.add, "mul": np.multiply}
    if "bool" in (a, b):
        ops.pop("maximum")
    outs = [getattr(T, name)(x, y) for name in ops]
    with np.errstate(all="ignore"):
        exp = [ufunc(xv, yv) for ufunc in ops.values()]
    for device in DEVICES:
        got = run([x, y], outs, xv, yv, device=device)
        for name, g, e in zip(ops, got, exp):
            bad = ~((g == e) | ((g != g) & (e != e)))
            assert g.dtype == e.dtype and not bad.any(), (
                f"{name}({a}, {b}) on {device}: {g.dtype} vs numpy {e.dtype}; at "
                f"{list(zip(xv[bad][:4].tolist(), yv[bad][:4].tolist()))} got {g[bad][:4].tolist()}, "
                f"numpy {e[bad][:4].tolist()}")


def test_float16_is_refused_and_small_int_math_is_float32():
    with pytest.raises(TypeError):
        T.vector(dtype="float16")
    # numpy computes exp of int8 / bool in float16; gencomp widens that to float32
    for make in (T.bvector, lambda: T.vector(dtype="bool"), lambda: T.vector(dtype="uint8")):
        x = make()
        for op in (T.exp, T.sqrt, T.sin, T.sigmoid):
            assert op(x).dtype == "float32", (op.__name__, x.dtype)
    x = T.bvector("x")
    xv = np.array([0, 1, 3, 10, -7], dtype=np.int8)
    for device in DEVICES:
        out = run([x], [T.exp(x), T.sqrt(x), x / x], xv, device=device)
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(out[0], np.exp(xv.astype(np.float32)), rtol=1e-6)
            np.testing.assert_allclose(out[1], np.sqrt(xv.astype(np.float32)), rtol=1e-6, equal_nan=True)
            assert_same(out[2], xv / xv)            # int8 / int8: float64


# --------------------------------------------------------------------------- integer arithmetic

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_int_true_division_is_float64(dtype, device):
    x, y = T.vector("x", dtype=dtype), T.vector("y", dtype=dtype)
    assert (x / y).dtype == "float64"
    assert T.true_div(x, y).dtype == "float64"
    xv = np.array([7, -7, 1, 0, 0, -1, 5], dtype=dtype)
    yv = np.array([2, 2, 3, 0, 5, 0, -5], dtype=dtype)
    with np.errstate(all="ignore"):
        assert_same(run([x, y], x / y, xv, yv, device=device), xv / yv)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"])
def test_int_floor_div_and_mod_floor_like_numpy(dtype, device):
    info = np.iinfo(dtype)
    vals = [v for v in (-7, 7, -1, 1, 0, 6, -6, 3, info.min, info.max) if info.min <= v <= info.max]
    divs = [v for v in (2, -2, 3, -3, 1, -1, 0, info.min, info.max) if info.min <= v <= info.max]
    xv = np.array([a for a in vals for _ in divs], dtype=dtype)
    yv = np.array([b for _ in vals for b in divs], dtype=dtype)
    x, y = T.vector("x", dtype=dtype), T.vector("y", dtype=dtype)
    fd, md = run([x, y], [x // y, x % y], xv, yv, device=device)
    with np.errstate(all="ignore"):
        assert_same(fd, xv // yv)                   # division by zero gives 0, as numpy
        assert_same(md, xv % yv)
    if info.min < 0:
        assert fd[(xv == -7) & (yv == 2)][0] == -4
        assert md[(xv == -7) & (yv == 2)][0] == 1
        assert md[(xv == 7) & (yv == -2)][0] == -1


@pytest.mark.parametrize("device", DEVICES)
def test_int_floor_div_by_python_constant(device):
    x = T.ivector("x")
    xv = np.array([-7, 7, -1, 0, -2**31, 2**31 - 1], dtype=np.int32)
    outs = [x // 2, x % 2, x // -3, x % -3, 7 // x, -7 % x]
    for o in outs:
        assert o.dtype == "int32"
    with np.errstate(all="ignore"):
        exp = [xv // 2, xv % 2, xv // -3, xv % -3, 7 // xv, -7 % xv]
    for got, e in zip(run([x], outs, xv, device=device), exp):
        assert_same(got, e)


@pytest.mark.parametrize("device", DEVICES)
def test_float_floor_div_and_mod_like_numpy(device):
    x, y = T.dvectors("x", "y")
    vals = [-7.5, 7.5, -1.0, 0.0, -0.0, 5.0, 1e300, np.inf, -np.inf, np.nan]
    xv = np.array([a for a in vals for _ in vals])
    yv = np.array([b for _ in vals for b in vals])
    fd, md = run([x, y], [x // y, x % y], xv, yv, device=device)
    with np.errstate(all="ignore"):
        assert_same(fd, xv // yv)
        assert_same(md, xv % yv)
        assert np.array_equal(np.signbit(md), np.signbit(xv % yv))


@pytest.mark.parametrize("device", DEVICES)
def test_int8_overflow_wraps_like_numpy(device):
    x, y = T.bvectors("x", "y")
    xv = np.array([127, -128, 100, -100, 127, -128], dtype=np.int8)
    yv = np.array([1, -1, 3, 3, 127, -128], dtype=np.int8)
    outs = [x + y, x - y, x * y, -x, abs(x), x + 1, x * 2, x ** 2]
    with np.errstate(all="ignore"):
        exp = [xv + yv, xv - yv, xv * yv, -xv, np.abs(xv), xv + 1, xv * 2, xv ** 2]
    for o, e in zip(outs, exp):
        assert o.dtype == "int8"
    got = run([x, y], outs, xv, yv, device=device)
    for g, e in zip(got, exp):
        assert_same(g, e)
    assert got[0][0] == -128 and got[3][1] == -128


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "uint64"])
def test_wide_int_overflow_wraps_like_numpy(dtype, device):
    info = np.iinfo(dtype)
    x, y = T.vector("x", dtype=dtype), T.vector("y", dtype=dtype)
    xv = np.array([info.max, info.min, info.max, info.min, 3], dtype=dtype)
    yv = np.array([1, 1, info.max, 2, info.max], dtype=dtype)
    outs = [x + y, x - y, x * y]
    with np.errstate(all="ignore"):
        exp = [xv + yv, xv - yv, xv * yv]
    for g, e in zip(run([x, y], outs, xv, yv, device=device), exp):
        assert_same(g, e)


# --------------------------------------------------------------------------------- comparisons

@pytest.mark.parametrize("device", DEVICES)
def test_comparisons_return_bool(device):
    x, y = T.ivector("x"), T.dvector("y")
    f = T.fvector("f")
    ops = [T.lt, T.gt, T.le, T.ge, T.eq, T.neq]
    outs = [op(x, y) for op in ops] + [x < y, x <= y, x > y, x >= y] + [op(f, 0.5) for op in ops]
    for o in outs:
        assert o.dtype == "bool"
    xv = np.array([0, 1, -2, 3, 2**31 - 1], dtype=np.int32)
    yv = np.array([0.0, 1.5, -2.0, np.nan, 2.0**31 - 1])
    fv = np.array([0.5, 0.25, np.nan, np.inf, -0.5], dtype=np.float32)
    got = run([x, y, f], outs, xv, yv, fv, device=device)
    exp = ([np.less(xv, yv), np.greater(xv, yv), np.less_equal(xv, yv), np.greater_equal(xv, yv),
            np.equal(xv, yv), np.not_equal(xv, yv), xv < yv, xv <= yv, xv > yv, xv >= yv]
           + [np.less(fv, 0.5), np.greater(fv, 0.5), np.less_equal(fv, 0.5), np.greater_equal(fv, 0.5),
              np.equal(fv, 0.5), np.not_equal(fv, 0.5)])
    for g, e in zip(got, exp):
        assert_same(g, e)


@pytest.mark.parametrize("device", DEVICES)
def test_bool_comparisons_and_logic(device):
    a, b = T.vector("a", dtype="bool"), T.vector("b", dtype="bool")
    outs = [T.eq(a, b), T.lt(a, b), a & b, a | b, a ^ b, ~a, a + b, a * b]
    av = np.array([False, False, True, True])
    bv = np.array([False, True, False, True])
    exp = [av == bv, av < bv, av & bv, av | bv, av ^ bv, ~av, av + bv, av * bv]
    for o, e in zip(outs, exp):
        assert o.dtype == "bool"
    for g, e in zip(run([a, b], outs, av, bv, device=device), exp):
        assert_same(g, e)


# ---------------------------------------------------------------------------------------- casts

CAST_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64",
               "float32", "float64", "complex64", "complex128"]

CAST_VALUES = {
    "float": [0.0, -0.0, 0.1, -0.1, 0.5, -0.5, 1.0, -1.0, 2.7, -2.7, 99.9, -99.9, 126.99, -127.99],
    "special": [np.nan, np.inf, -np.inf],
}


def _in_range(values, target):
    t = np.dtype(target)
    if t.kind not in "iu":
        return np.ones(values.shape, bool)
    info = np.iinfo(t)
    real = np.real(values).astype(np.float64)
    with np.errstate(all="ignore"):
        tr = np.trunc(real)
    return np.isfinite(tr) & (tr >= info.min) & (tr <= info.max)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("src", ["float32", "float64", "complex128"])
def test_cast_from_float_matches_numpy_astype(src, device):
    x = T.vector("x", dtype=src)
    values = CAST_VALUES["float"] + CAST_VALUES["special"]
    if src.startswith("complex"):
        values = values + [complex(0, 1), complex(0, -0.0), complex(2.5, 7), complex(np.nan, 0)]
    xv = np.array(values, dtype=src)
    outs = [T.cast(x, t) for t in CAST_DTYPES] + [x.astype(t) for t in CAST_DTYPES]
    got = run([x], outs, xv, device=device)
    for t, g in zip(CAST_DTYPES * 2, got):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = xv.astype(t)
        assert g.dtype == np.dtype(t), (src, t)
        ok = _in_range(xv, t)        # float -> int outside the range (and nan/inf) is undefined
        assert_same(g[ok], e[ok])
    # truncation toward zero and to-bool, spelled out
    as_int = got[CAST_DTYPES.index("int32")]
    assert list(as_int[[8, 9, 10, 11]]) == [2, -2, 99, -99]
    as_bool = got[CAST_DTYPES.index("bool")]
    assert list(as_bool[:4]) == [False, False, True, True]
    assert as_bool[len(CAST_VALUES["float"])]         # nan is truthy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("src", ["bool", "int8", "int64", "uint8", "uint64"])
def test_cast_from_int_matches_numpy_astype(src, device):
    if src == "bool":
        vals = [False, True]
    else:
        info = np.iinfo(src)
        cand = [0, 1, 2, 127, 255, -1, -128, 300, 2**31, 2**53 + 1, info.min, info.max]
        vals = {v for v in cand if info.min <= v <= info.max}
    xv = np.array(sorted(vals), dtype=src)
    x = T.vector("x", dtype=src)
    outs = [T.cast(x, t) for t in CAST_DTYPES]
    for t, g in zip(CAST_DTYPES, run([x], outs, xv, device=device)):
        assert_same(g, xv.astype(t))     # int -> narrower int wraps, int -> float rounds, as numpy


def test_cast_floatx_and_identity():
    x = T.ivector("x")
    with config.change(floatX="float32"):
        assert T.cast(x, "floatX").dtype == "float32"
    with config.change(floatX="float64"):
        assert T.cast(x, "floatX").dtype == "float64"
    assert T.cast(x, "int32").dtype == "int32"
    assert x.astype(np.float32).dtype == "float32"
    assert x.astype(np.dtype("int8")).dtype == "int8"
    with pytest.raises(TypeError):
        T.cast(x, "float16")
    with pytest.raises(TypeError):
        T.cast(x, "not-a-dtype")
    xv = np.array([1, 2, 3], dtype=np.int32)
    out = function([x], T.cast(x, "int32"))(xv)
    assert_same(out, xv)
    assert not np.shares_memory(out, xv)            # outputs never alias inputs


# ---------------------------------------------------------------------------------------- complex

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_arithmetic(dtype, device):
    a, b = T.vector("a", dtype=dtype), T.vector("b", dtype=dtype)
    outs = [a + b, a - b, a * b, a / b, -a, abs(a), a ** 2, T.exp(a), T.sqrt(a), T.log(a),
            T.eq(a, b), T.neq(a, b), a * 2, a + 1.5, a * 1j, T.switch(T.neq(a, 0), a, b)]
    av = np.array([1 + 2j, -3.5 + 0.5j, 0, 2j, -1, 1e3 - 1e3j], dtype=dtype)
    bv = np.array([1 + 2j, 2 - 1j, 1j, -2j, 0.5, 3], dtype=dtype)
    with np.errstate(all="ignore"):
        exp = [av + bv, av - bv, av * bv, av / bv, -av, np.abs(av), av ** 2, np.exp(av), np.sqrt(av),
               np.log(av), av == bv, av != bv, av * 2, av + 1.5, av * 1j, np.where(av != 0, av, bv)]
    for o, e in zip(outs, exp):
        assert o.dtype == e.dtype.name, (o, e.dtype)
    rtol = 1e-5 if dtype == "complex64" else 1e-12
    for g, e in zip(run([a, b], outs, av, bv, device=device), exp):
        assert_same(g, e, rtol=rtol)


@pytest.mark.parametrize("device", DEVICES)
def test_complex_mixed_with_real(device):
    c, f, d = T.cvector("c"), T.fvector("f"), T.dvector("d")
    outs = [c + f, c * d, f - c, c / d]
    assert [o.dtype for o in outs] == ["complex64", "complex128", "complex64", "complex128"]
    cv = np.array([1 + 1j, -2j, 3], dtype=np.complex64)
    fv = np.array([0.5, 2, -1], dtype=np.float32)
    dv = np.array([2.0, -0.25, 4.0])
    exp = [cv + fv, cv * dv, fv - cv, cv / dv]
    for g, e in zip(run([c, f, d], outs, cv, fv, dv, device=device), exp):
        assert_same(g, e, rtol=1e-6)


@pytest.mark.parametrize("name, build", [
    ("floor", lambda z: T.floor(z)),
    ("ceil", lambda z: T.ceil(z)),
    ("maximum", lambda z: T.maximum(z, z)),
    ("minimum", lambda z: T.minimum(z, 1)),
    ("lt", lambda z: T.lt(z, z)),
    ("lt", lambda z: z < 0),
    ("ge", lambda z: z >= z),
    ("floor_div", lambda z: z // z),
    ("mod", lambda z: z % 2),
    ("sgn", lambda z: T.sgn(z)),
    ("log1p", lambda z: T.log1p(z)),
    ("sigmoid", lambda z: T.sigmoid(z)),
    ("round", lambda z: T.round(z)),
    ("and_", lambda z: z & z),
    ("invert", lambda z: ~z),
    ("maximum", lambda z: T.clip(z, 0, 1)),
    ("maximum", lambda z: T.relu(z)),
])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_op_without_complex_form_raises_type_error(name, build, dtype):
    z = T.vector("z", dtype=dtype)
    with pytest.raises(TypeError) as info:
        build(z)
    msg = str(info.value)
    assert name in msg and dtype in msg, msg
