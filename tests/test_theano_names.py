"""Theano 1.0 names gencomp adds for drop-in completeness: the special-function and trigonometric rows
of the elementwise table, rounding modes, sort / argsort, the extra_ops helpers, theano.tensor.nlinalg
and slinalg, and the nnet crossentropy / h_softmax / bn functions.

Every op is compared with numpy (or scipy, the reference Theano itself used); gradients with finite
differences (verify_grad, or central differences of the scipy reference for the elementwise rows);
bad input must raise TypeError or ValueError. The compiled C/CUDA forms of the new table rows are
checked dtype by dtype in test_elemwise_ops.py / test_cuda.py, which generate their cases from the table.
"""

from __future__ import annotations

import decimal
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gencomp.tensor as T
from gencomp import function, shared
from gencomp.gradient import verify_grad
from gencomp.tensor import extra_ops, nlinalg, slinalg

special = pytest.importorskip("scipy.special")
scipy_linalg = pytest.importorskip("scipy.linalg")

RNG = np.random.default_rng(20240607)
FEW = settings(max_examples=25, deadline=None)


def _fd_check(fn, pts, **kwargs):
    verify_grad(fn, [np.asarray(p, dtype=np.float64) for p in pts], n_tests=1, rng=np.random.default_rng(1),
                **kwargs)


# ----------------------------------------------------------------------------------------- elementwise

EDGES = [0.0, -0.0, 0.5, 1.0, 1.5, 2.0, -0.5, -1.0, -2.5, -3.7, 1e-8, 1e-300, 30.0, 170.5, -170.5,
         np.inf, -np.inf, np.nan]
GRID = np.concatenate([np.linspace(-12.0, 35.0, 4701), EDGES])

SPECIAL = {      # name -> scipy reference
    "erf": special.erf, "erfc": special.erfc, "gamma": special.gamma, "gammaln": special.gammaln,
    "psi": special.digamma, "tri_gamma": lambda x: special.polygamma(1, x),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_special_functions_match_scipy(dtype):
    """Compiled erf, erfc, gamma, gammaln, psi and tri_gamma against scipy.special (Theano's own
    reference), including poles, infinities, NaN and float32."""
    x = T.vector("x", dtype=dtype)
    f = function([x], [getattr(T, name)(x) for name in SPECIAL])
    values = GRID.astype(dtype)
    rtol, atol = (1e-11, 1e-13) if dtype == "float64" else (2e-6, 1e-6)
    for (name, ref), got in zip(SPECIAL.items(), f(values)):
        with np.errstate(all="ignore"):
            want = ref(values.astype(np.float64)).astype(dtype)
        if name == "gammaln":        # scipy gives -inf at -inf, C's lgamma (and Theano's C code) +inf
            want = np.where(np.isneginf(values), np.inf, want)
        assert got.dtype == dtype, name
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
        finite_zero = (want == 0) & np.isfinite(want)
        assert np.array_equal(np.signbit(got[~finite_zero & ~np.isnan(want)]),
                              np.signbit(want[~finite_zero & ~np.isnan(want)])), name


# name -> (numpy/scipy reference, values inside the domain of the derivative)
SMOOTH = {
    "erf": (special.erf, np.linspace(-3, 3, 13)),
    "erfc": (special.erfc, np.linspace(-3, 3, 13)),
    "gamma": (special.gamma, np.array([-2.5, -0.5, 0.3, 1.0, 2.5, 7.2])),
    "gammaln": (special.gammaln, np.array([-2.5, -0.5, 0.3, 1.0, 2.5, 30.0])),
    "psi": (special.digamma, np.array([-2.5, -0.5, 0.3, 1.0, 2.5, 30.0])),
    "arcsin": (np.arcsin, np.linspace(-0.9, 0.9, 7)),
    "arccos": (np.arccos, np.linspace(-0.9, 0.9, 7)),
    "arctan": (np.arctan, np.linspace(-4, 4, 9)),
    "sinh": (np.sinh, np.linspace(-3, 3, 9)),
    "cosh": (np.cosh, np.linspace(-3, 3, 9)),
    "arcsinh": (np.arcsinh, np.linspace(-4, 4, 9)),
    "arccosh": (np.arccosh, np.linspace(1.2, 6, 9)),
    "arctanh": (np.arctanh, np.linspace(-0.9, 0.9, 7)),
    "deg2rad": (np.deg2rad, np.linspace(-400, 400, 9)),
    "rad2deg": (np.rad2deg, np.linspace(-7, 7, 9)),
}


def _central(ref, x):
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    return (ref(x + h) - ref(x - h)) / (2 * h)


def test_elementwise_gradients_match_finite_differences():
    """T.grad of each new differentiable row (and of arctan2 in both arguments) against central
    differences of the scipy / numpy reference: one compiled function for all of them."""
    xs = {name: T.dvector(name) for name in SMOOTH}
    grads = [T.grad(getattr(T, name)(x).sum(), x) for name, x in xs.items()]
    y, x = T.dvectors("y", "x")
    grads += T.grad(T.arctan2(y, x).sum(), [y, x])
    f = function(list(xs.values()) + [y, x], grads)
    yv, xv = np.array([0.5, -1.0, 2.0, -0.3]), np.array([1.0, 0.7, -3.0, -0.2])
    results = f(*[vals for _, vals in SMOOTH.values()], yv, xv)
    for (name, (ref, vals)), got in zip(SMOOTH.items(), results):
        np.testing.assert_allclose(got, _central(ref, vals), rtol=1e-6, atol=1e-8, err_msg=name)
    np.testing.assert_allclose(results[-2], _central(lambda v: np.arctan2(v, xv), yv), rtol=1e-6)
    np.testing.assert_allclose(results[-1], _central(lambda v: np.arctan2(yv, v), xv), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="tri_gamma"):
        T.grad(T.tri_gamma(xs["psi"]).sum(), xs["psi"])


def _half_away(v: float) -> float:
    if not np.isfinite(v):
        return v
    exact = decimal.Context(prec=400)           # every double is an exact decimal of < 400 digits
    return float(decimal.Decimal(v).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP, context=exact))


def test_rounding_modes():
    """round (half_to_even by default, numpy's rint), round(mode='half_away_from_zero') exactly
    (0.49999999999999994 stays 0, -0.3 gives -0.0), iround in int64, trunc, and the method form."""
    vals = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, -0.3, 2.6, -2.6, 1e300,
                     4503599627370495.5, np.inf, -np.inf, np.nan])
    x = T.dvector("x")
    i = T.ivector("i")
    f = function([x, i], [T.round(x), T.round(x, "half_away_from_zero"), T.round_half_to_even(x),
                          T.round_half_away_from_zero(x), x.round(mode="half_away_from_zero"),
                          T.trunc(x), T.iround(x[:10]), T.iround(x[:10], "half_away_from_zero"),
                          T.round(i), T.round(i, "half_away_from_zero"), T.trunc(i)])
    ints = np.array([-3, 0, 7], np.int32)
    even, away, even2, away2, away3, trunc, ieven, iaway, ri, ria, ti = f(vals, ints)
    want_away = np.array([_half_away(v) for v in vals])
    np.testing.assert_array_equal(even, np.rint(vals))
    np.testing.assert_array_equal(even2, np.rint(vals))
    for got in (away, away2, away3):
        np.testing.assert_array_equal(got, want_away)
        assert np.array_equal(np.signbit(got), np.signbit(want_away))
    np.testing.assert_array_equal(trunc, np.trunc(vals))
    assert ieven.dtype == iaway.dtype == np.int64
    np.testing.assert_array_equal(ieven, np.rint(vals[:10]).astype(np.int64))
    np.testing.assert_array_equal(iaway, want_away[:10].astype(np.int64))
    for got in (ri, ria, ti):
        assert got.dtype == np.int32 and np.array_equal(got, ints)
    with pytest.raises(ValueError, match="mode"):
        T.round(x, "half_up")


ISCLOSE_VALUES = np.array([0.0, -0.0, 1.0, 1.0 + 1e-9, 1.00001, 1.0001, -1.0, 1e-9, 1e10, 1e10 + 1e5,
                           np.inf, -np.inf, np.nan])


def test_isclose_and_allclose_match_numpy():
    """Every pair of edge values (inf, -inf, NaN, near ties) under several tolerances, with and
    without equal_nan; integers, float32 and broadcasting; allclose is a boolean scalar."""
    a, b = T.dvectors("a", "b")
    cases = [dict(), dict(rtol=1e-3), dict(atol=1e-2, rtol=0.0), dict(equal_nan=True)]
    i, fv = T.ivector("i"), T.fvector("fv")
    outs = [T.isclose(a, b, **kw) for kw in cases] + [T.allclose(a, b, **kw) for kw in cases]
    outs += [T.isclose(i, b[:3]), T.isclose(fv, fv + 1e-6), T.isclose(a.dimshuffle(0, "x"), b.dimshuffle("x", 0))]
    f = function([a, b, i, fv], outs)
    av = np.repeat(ISCLOSE_VALUES, len(ISCLOSE_VALUES))
    bv = np.tile(ISCLOSE_VALUES, len(ISCLOSE_VALUES))
    iv, fvv = np.array([0, 1, 3], np.int32), np.linspace(-1, 1, 5, dtype=np.float32)
    got = f(av, bv, iv, fvv)
    for kw, res in zip(cases, got[:4]):
        np.testing.assert_array_equal(res, np.isclose(av, bv, **kw), err_msg=str(kw))
    for kw, res in zip(cases, got[4:8]):
        assert res.shape == () and bool(res) == np.allclose(av, bv, **kw)
    np.testing.assert_array_equal(got[8], np.isclose(iv, bv[:3]))
    np.testing.assert_array_equal(got[9], np.isclose(fvv, fvv + np.float32(1e-6)))
    np.testing.assert_array_equal(got[10], np.isclose(av[:, None], bv[None, :]))
    same = f(av[:3], av[:3], iv, fvv)
    assert bool(same[4]) and bool(same[7]) and not bool(got[4])


def test_largest_and_smallest():
    """Theano's largest / smallest: two arguments by switch, more by a max / min over a stack."""
    a, b, c = T.dvectors("a", "b", "c")
    f = function([a, b, c], [T.largest(a, b), T.smallest(a, b), T.largest(a, b, c), T.smallest(a, b, c),
                             T.largest(a, 2.0)])
    av, bv, cv = RNG.standard_normal((3, 50))
    got = f(av, bv, cv)
    np.testing.assert_array_equal(got[0], np.maximum(av, bv))
    np.testing.assert_array_equal(got[1], np.minimum(av, bv))
    np.testing.assert_array_equal(got[2], np.max([av, bv, cv], axis=0))
    np.testing.assert_array_equal(got[3], np.min([av, bv, cv], axis=0))
    np.testing.assert_array_equal(got[4], np.maximum(av, 2.0))
    with pytest.raises(TypeError):
        T.largest()


# -------------------------------------------------------------------------------------- sort, argsort

_SORT_FUNCTIONS = {}


def _sort_function(ndim, dtype):
    """One compiled function per (ndim, dtype): sort and argsort along every axis and None."""
    key = (ndim, dtype)
    if key not in _SORT_FUNCTIONS:
        x = T.tensor(dtype, shape=(None,) * ndim, name="x")
        axes = list(range(-ndim, ndim)) + [None]
        outs = [T.sort(x, axis) for axis in axes] + [T.argsort(x, axis) for axis in axes]
        outs += [x.sort(), x.argsort(axis=0), extra_ops.cumprod(x), x.cumprod(axis=-1)]
        _SORT_FUNCTIONS[key] = (function([x], outs), axes)
    return _SORT_FUNCTIONS[key]


def _arrays(dtype):
    if dtype == "float64":
        elements = st.floats(-1e3, 1e3) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0])
    else:
        elements = st.integers(-50, 50)
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5), elements=elements)


@FEW
@given(data=st.data(), dtype=st.sampled_from(["float64", "int32"]))
def test_sort_argsort_and_cumprod_match_numpy(data, dtype):
    """sort / argsort (every axis, None, the methods) and cumprod on random shapes (empty ones too),
    ties, NaNs and infinities, against numpy; an argsort also sorts by take_along_axis."""
    value = data.draw(_arrays(dtype))
    f, axes = _sort_function(value.ndim, dtype)
    got = f(value)
    n = len(axes)
    for axis, s, a in zip(axes, got[:n], got[n:2 * n]):
        want = np.sort(value, axis=axis)
        np.testing.assert_array_equal(s, want)
        assert s.dtype == value.dtype and a.dtype == np.int64
        np.testing.assert_array_equal(a, np.argsort(value, axis=axis))
        flat = value.reshape(-1) if axis is None else value
        np.testing.assert_array_equal(np.take_along_axis(flat, a, axis=0 if axis is None else axis), want)
    np.testing.assert_array_equal(got[2 * n], np.sort(value))
    np.testing.assert_array_equal(got[2 * n + 1], np.argsort(value, axis=0))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got[2 * n + 2], np.cumprod(value))
        np.testing.assert_array_equal(got[2 * n + 3], np.cumprod(value, axis=-1))
    assert got[2 * n + 2].dtype == np.cumprod(value).dtype


def test_sort_and_cumprod_gradients():
    """sort's gradient scatters back through the permutation; cumprod's is exact at zeros (one and
    two in a row), unlike a division by x."""
    a = RNG.standard_normal((4, 5))
    for axis in (0, 1, None):
        _fd_check(lambda x, axis=axis: T.sort(x, axis), [a])
    b = RNG.standard_normal((3, 6))
    b[0, 2] = b[1, 1] = b[1, 2] = b[2, 0] = 0.0
    for axis in (0, 1, None):
        _fd_check(lambda x, axis=axis: T.cumprod(x, axis), [b])
    x = T.dvector("x")
    g = function([x], T.grad(T.cumprod(x).sum(), x))(np.array([2.0, 0.0, 3.0, 0.0, 5.0]))
    np.testing.assert_allclose(g, [1.0, 2.0 + 6.0, 0.0, 0.0, 0.0])


def test_sort_bad_input():
    x = T.dmatrix("x")
    with pytest.raises(ValueError, match="scalar"):
        T.sort(T.dscalar("s"))
    with pytest.raises(ValueError, match="axis"):
        T.argsort(x, 2)
    with pytest.raises(TypeError, match="axis"):
        T.sort(x, 1.0)
    with pytest.raises(TypeError, match="complex128"):
        T.sort(T.zvector("z"))
    with pytest.raises(ValueError, match="order"):
        T.sort(x, order="f0")
    with pytest.raises(ValueError, match="kind"):
        T.sort(x, kind="bogo")
    with pytest.raises(ValueError, match="axis"):
        T.cumprod(x, axis=2)


# -------------------------------------------------------------------------------------- nonzero family

@FEW
@given(value=hnp.arrays("float64", hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
                        elements=st.sampled_from([0.0, -0.0, 1.5, -2.0, np.nan, np.inf])))
def test_nonzero_family_matches_numpy(value):
    """nonzero (tuple and matrix), flatnonzero, nonzero_values and compress on random arrays with
    zeros (-0.0 is zero, NaN is not)."""
    f = _nonzero_function(value.ndim)
    got = f(value)
    want = np.nonzero(value)
    for g, w in zip(got[:value.ndim], want):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(got[value.ndim], np.array(want).reshape(value.ndim, -1))
    np.testing.assert_array_equal(got[value.ndim + 1], np.flatnonzero(value))
    np.testing.assert_array_equal(got[value.ndim + 2], value.reshape(-1)[np.flatnonzero(value)])
    np.testing.assert_array_equal(got[value.ndim + 3], np.compress(value.reshape(-1) > 0, value))


_NONZERO_FUNCTIONS = {}


def _nonzero_function(ndim):
    if ndim not in _NONZERO_FUNCTIONS:
        x = T.tensor("float64", shape=(None,) * ndim, name="x")
        outs = list(T.nonzero(x)) + [x.nonzero(return_matrix=True), T.flatnonzero(x), T.nonzero_values(x),
                                     extra_ops.compress(T.gt(x.flatten(), 0), x)]
        _NONZERO_FUNCTIONS[ndim] = function([x], outs)
    return _NONZERO_FUNCTIONS[ndim]


def test_nonzero_values_gradient_and_errors():
    x = T.dmatrix("x")
    value = np.array([[0.0, 2.0, -1.0], [3.0, 0.0, 0.5]])
    g = function([x], T.grad((x.nonzero_values() ** 2).sum(), x))(value)
    np.testing.assert_allclose(g, 2 * value)
    s = T.dscalar("s")
    for fn in (T.nonzero, T.flatnonzero, T.nonzero_values):
        with pytest.raises(ValueError, match="scalar"):
            fn(s)
    m = T.dmatrix("m")
    cond = T.bvector("c")
    f = function([cond, m], [extra_ops.compress(cond, m, axis=1), cond.compress(m, axis=0)])
    mv = RNG.standard_normal((3, 4))
    c = np.array([1, 0, 1], np.int8)
    got = f(c, mv)
    np.testing.assert_array_equal(got[0], np.compress(c, mv, axis=1))
    np.testing.assert_array_equal(got[1], np.compress(c, mv, axis=0))


# ----------------------------------------------------------------------------- diagonals and friends

def test_diagonal_matches_numpy_with_gradient():
    x3 = T.dtensor3("x3")
    cases = [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, 1, 2), (-2, 2, 0), (0, -1, -3), (5, 0, 1)]
    f = function([x3], [T.diagonal(x3, *c) for c in cases] + [x3[0].diagonal(), x3[0].diagonal(1)])
    value = RNG.standard_normal((3, 4, 5))
    got = f(value)
    for c, res in zip(cases, got):
        np.testing.assert_array_equal(res, np.diagonal(value, *c))
    np.testing.assert_array_equal(got[-2], np.diagonal(value[0]))
    np.testing.assert_array_equal(got[-1], np.diagonal(value[0], 1))
    _fd_check(lambda v: T.diagonal(v, -1, 2, 0), [value])
    _fd_check(lambda v: T.diagonal(v, 1), [value[0]])
    with pytest.raises(ValueError, match="two dimensions"):
        T.diagonal(T.dvector("v"))
    with pytest.raises(ValueError, match="same"):
        T.diagonal(x3, 0, 1, -2)


def test_fill_diagonal_matches_numpy_with_gradient():
    a, c = T.dmatrix("a"), T.dtensor3("c")
    v = T.dscalar("v")
    f = function([a, c, v], [T.fill_diagonal(a, v), extra_ops.fill_diagonal(c, 7),
                             T.fill_diagonal_offset(a, v, 2), extra_ops.fill_diagonal_offset(a, v, -1),
                             T.fill_diagonal(a, 0)])
    cube = RNG.standard_normal((3, 3, 3))
    for shape in ((3, 5), (5, 3), (4, 4), (0, 3)):
        m = RNG.standard_normal(shape)
        got = f(m, cube, 2.5)
        want = []
        for target, val in ((m, 2.5), (cube, 7.0)):
            w = target.copy()
            np.fill_diagonal(w, val)
            want.append(w)
        for offset in (2, -1):
            w = m.copy()
            rows = np.arange(m.shape[0])[:, None]
            cols = np.arange(m.shape[1])[None, :]
            w[cols - rows == offset] = 2.5
            want.append(w)
        w = m.copy()
        np.fill_diagonal(w, 0)
        want.append(w)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    _fd_check(lambda x, s: T.fill_diagonal(x, s), [RNG.standard_normal((3, 4)), 1.5])
    _fd_check(lambda x, s: T.fill_diagonal_offset(x, s, 1), [RNG.standard_normal((4, 3)), 1.5])
    _fd_check(lambda x, s: T.fill_diagonal(x, s), [cube, 0.5])
    with pytest.raises(TypeError, match="float64"):
        T.fill_diagonal(T.fmatrix("f"), v)
    with pytest.raises(TypeError, match="two dimensions"):
        T.fill_diagonal(T.dvector("x"), 1)
    with pytest.raises(ValueError):
        function([c], T.fill_diagonal(c, 1))(np.zeros((2, 3, 3)))


def test_bincount_matches_numpy():
    x, w = T.lvector("x"), T.dvector("w")
    i8 = T.bvector("i8")
    f = function([x, w, i8], [T.bincount(x), extra_ops.bincount(x, w), T.bincount(x, minlength=9),
                              T.bincount(i8, assert_nonneg=True)])
    xv = np.array([0, 3, 3, 1, 7, 3])
    wv = RNG.standard_normal(6)
    i8v = np.array([2, 2, 0], np.int8)
    got = f(xv, wv, i8v)
    np.testing.assert_array_equal(got[0], np.bincount(xv))
    np.testing.assert_allclose(got[1], np.bincount(xv, wv))
    np.testing.assert_array_equal(got[2], np.bincount(xv, minlength=9))
    np.testing.assert_array_equal(got[3], np.bincount(i8v))
    assert got[0].dtype == np.int64 and got[3].dtype == np.int8 and got[1].dtype == np.float64
    empty = f(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8))
    assert [e.shape for e in empty] == [(0,), (0,), (9,), (0,)]
    _fd_check(lambda weights: T.bincount(T.constant(xv), weights, minlength=10), [wv])
    with pytest.raises(ValueError, match="negative"):
        f(np.array([1, -1]), np.ones(2), i8v)
    with pytest.raises(TypeError, match="integers"):
        T.bincount(w)
    with pytest.raises(ValueError, match="minlength"):
        T.bincount(x, minlength=-1)


def test_unique_matches_numpy():
    x = T.lmatrix("x")
    u = extra_ops.Unique(True, True, True)(x)
    rows = extra_ops.unique(x, return_inverse=True, axis=0)
    f = function([x], [*u, extra_ops.unique(x), *rows])
    value = np.array([[3, 1, 3], [1, 1, 2], [3, 1, 3]])
    got = f(value)
    want = np.unique(value, return_index=True, return_inverse=True, return_counts=True)
    for g, w in zip(got[:4], want):
        np.testing.assert_array_equal(g, np.ravel(w))
        assert g.ndim == 1
    np.testing.assert_array_equal(got[0][got[2]], value.ravel())
    np.testing.assert_array_equal(got[4], np.unique(value))
    np.testing.assert_array_equal(got[5], np.unique(value, axis=0))
    np.testing.assert_array_equal(got[5][got[6]], value)


def test_unique_has_no_gradient():
    d = T.dvector("d")
    with pytest.raises(TypeError, match="no gradient"):
        T.grad(extra_ops.unique(d).sum(), d)


def test_squeeze_mgrid_and_ogrid():
    r = T.row("r")
    assert extra_ops.squeeze(r).ndim == 1
    m = T.mgrid[0:4, 1:7:2]
    o = T.ogrid[0:4, 1:7:2]
    f = function([], [*m, *o, *T.mgrid[-1:2]])
    got = f()
    for g, w in zip(got[:2], np.mgrid[0:4, 1:7:2]):
        np.testing.assert_array_equal(g, w)
    for g, w in zip(got[2:4], np.ogrid[0:4, 1:7:2]):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(got[4], np.mgrid[-1:2])
    assert o[0].broadcastable == (False, True) and o[1].broadcastable == (True, False)
    with pytest.raises(NotImplementedError):
        T.mgrid[0:5:10j]


# ---------------------------------------------------------------------------------------------- nlinalg

def _spd(n):
    a = RNG.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def test_nlinalg_matches_numpy():
    x, y = T.dmatrices("x", "y")
    v = T.dvector("v")
    N = nlinalg
    outs = [N.matrix_inverse(x), N.det(x), N.pinv(y), *N.eigh(x), *N.eigh(x, "U"), *N.svd(y),
            N.svd(y, full_matrices=0, compute_uv=0), *N.qr(y), *N.qr(y, "complete"), N.qr(y, "r"),
            N.matrix_dot(x, x, y.T), N.matrix_power(x, 3), N.matrix_power(x, 0), N.diag(v), N.diag(y),
            N.alloc_diag(v), N.extract_diag(x), N.trace(x), N.norm(v, None), N.norm(v, "inf"),
            N.norm(v, "-inf"), N.norm(v, 0), N.norm(v, 3), N.norm(y, "fro"), N.norm(y, "inf"),
            N.norm(y, "-inf"), N.norm(y, 1), N.norm(y, -1), *N.lstsq()(y, v[:4], -1)]
    f = function([x, y, v], outs)
    xv = _spd(3)
    xv[0, 2] = 7.0           # garbage in the upper triangle: eigh('L') must not read it
    yv = RNG.standard_normal((4, 3))
    vv = np.array([1.5, 0.0, -3.0, 2.0, 0.25])
    got = iter(f(xv, yv, vv))
    lower = np.tril(xv) + np.tril(xv, -1).T
    upper = np.triu(xv) + np.triu(xv, 1).T
    n = np.linalg
    want = [n.inv(xv), n.det(xv), n.pinv(yv), n.eigvalsh(lower), None, n.eigvalsh(upper), None,
            *n.svd(yv), n.svd(yv, compute_uv=False), *n.qr(yv), *n.qr(yv, "complete"), n.qr(yv, "r"),
            xv @ xv @ yv.T, xv @ xv @ xv, np.eye(3), np.diag(vv), np.diag(yv), np.diag(vv), np.diag(xv),
            np.trace(xv), n.norm(vv), n.norm(vv, np.inf), n.norm(vv, -np.inf), n.norm(vv, 0),
            n.norm(vv, 3), n.norm(yv, "fro"), n.norm(yv, np.inf), n.norm(yv, -np.inf), n.norm(yv, 1),
            n.norm(yv, -1), *n.lstsq(yv, vv[:4], rcond=-1)]
    for k, w in enumerate(want):
        g = next(got)
        if w is None:             # eigenvectors: check A v = w v instead of signs
            sym = lower if k == 4 else upper
            np.testing.assert_allclose(sym @ g, g * np.linalg.eigvalsh(sym), atol=1e-10)
            continue
        if k in (7, 9, 11, 12, 13, 14, 15):     # svd / qr factors: up to signs, check the products
            continue
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"output {k}")
    u, s, vh, _, q, r, qc, rc, r_only = f(xv, yv, vv)[7:16]
    np.testing.assert_allclose(u[:, :3] * s @ vh, yv, atol=1e-12)
    assert u.shape == (4, 4) and vh.shape == (3, 3)
    np.testing.assert_allclose(q @ r, yv, atol=1e-12)
    np.testing.assert_allclose(qc @ rc, yv, atol=1e-12)
    np.testing.assert_allclose(np.abs(r_only), np.abs(r), atol=1e-12)
    assert qc.shape == (4, 4) and q.shape == (4, 3)


def test_nlinalg_gradients():
    a = _spd(3) + RNG.standard_normal((3, 3))
    _fd_check(nlinalg.matrix_inverse, [a])
    _fd_check(nlinalg.det, [a])
    _fd_check(nlinalg.alloc_diag, [RNG.standard_normal(4)])
    _fd_check(nlinalg.extract_diag, [RNG.standard_normal((3, 4))])
    _fd_check(nlinalg.trace, [a])
    s = _spd(4)
    for uplo in ("L", "U"):
        # eigenvectors are defined up to sign: a cost of their squares is smooth
        _fd_check(lambda m, uplo=uplo: nlinalg.eigh(m, uplo)[0] + (nlinalg.eigh(m, uplo)[1] ** 2).sum(0), [s])


def test_nlinalg_bad_input():
    x = T.dmatrix("x")
    with pytest.raises(TypeError, match="matrix"):
        nlinalg.det(T.dtensor3("t"))
    with pytest.raises(TypeError, match="complex128"):
        nlinalg.matrix_inverse(T.zmatrix("z"))
    with pytest.raises(ValueError, match="square"):
        function([x], nlinalg.det(x))(np.ones((2, 3)))
    with pytest.raises(ValueError):                       # numpy's LinAlgError is a ValueError
        function([x], nlinalg.matrix_inverse(x))(np.ones((2, 2)))
    with pytest.raises(ValueError, match="complex eigenvalues"):
        function([x], nlinalg.eig(x))(np.array([[0.0, -1.0], [1.0, 0.0]]))
    w, v = function([x], nlinalg.eig(x))(np.array([[2.0, 1.0], [0.0, 3.0]]))
    np.testing.assert_allclose(np.sort(w), [2.0, 3.0])
    with pytest.raises(ValueError, match="mode"):
        nlinalg.qr(x, "economic")
    with pytest.raises(ValueError, match="order"):
        nlinalg.norm(x, 3)
    with pytest.raises(TypeError, match="no gradient"):
        T.grad(nlinalg.pinv(x).sum(), x)
    i = T.imatrix("i")
    np.testing.assert_allclose(function([i], nlinalg.det(i))(np.array([[2, 1], [1, 3]], np.int32)), 5.0)


# ---------------------------------------------------------------------------------------------- slinalg

def test_slinalg_matches_scipy():
    """Each op reads the triangle scipy reads: the other one holds garbage."""
    x, y, z = T.dmatrices("x", "y", "z")
    v = T.dvector("v")
    S = slinalg
    gen = y.T.dot(y) + T.eye(4)
    f = function([x, y, z, v], [S.cholesky(x), S.solve(y, z), S.solve(y, v), S.solve_lower_triangular(y, z),
                                S.solve_upper_triangular(y, v), S.solve_symmetric(x, z), S.eigvalsh(x, None),
                                S.eigvalsh(x, gen), S.expm(y), S.kron(y, z)])
    f_upper = function([x, y], [S.Cholesky(lower=False)(x), S.Eigvalsh(lower=False)(x, gen),
                                S.Eigvalsh(lower=False)(x, None)])
    spd = _spd(4)
    lower_only = np.tril(spd) + np.triu(np.full((4, 4), 9.0), 1)
    upper_only = np.triu(spd) - np.tril(np.ones((4, 4)), -1)
    yv = RNG.standard_normal((4, 4)) + 4 * np.eye(4)
    zv = RNG.standard_normal((4, 2))
    vv = RNG.standard_normal(4)
    L = scipy_linalg
    b = yv.T @ yv + np.eye(4)
    want = [L.cholesky(lower_only, lower=True), L.solve(yv, zv), L.solve(yv, vv),
            L.solve_triangular(yv, zv, lower=True), L.solve_triangular(yv, vv, lower=False),
            np.linalg.solve(lower_only, zv), L.eigvalsh(lower_only, lower=True),
            L.eigvalsh(lower_only, b, lower=True), L.expm(yv), np.kron(yv, zv)]
    for k, (g, w) in enumerate(zip(f(lower_only, yv, zv, vv), want)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"output {k}")
    want = [L.cholesky(upper_only, lower=False), L.eigvalsh(upper_only, b, lower=False),
            L.eigvalsh(upper_only, lower=False)]
    for k, (g, w) in enumerate(zip(f_upper(upper_only, yv), want)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"upper output {k}")


@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0])
def test_expm_matches_scipy(scale):
    """The Pade approximant, scaled and squared for large norms, and defective / zero matrices."""
    x = T.dmatrix("x")
    f = function([x], slinalg.expm(x))
    for a in (RNG.standard_normal((5, 5)) * scale, np.array([[1.0, 1.0], [0.0, 1.0]]) * scale, np.zeros((3, 3))):
        np.testing.assert_allclose(f(a), scipy_linalg.expm(a), rtol=1e-11, atol=1e-13)
    assert f(np.zeros((0, 0))).shape == (0, 0)


def test_slinalg_gradients():
    spd = _spd(4)
    a = RNG.standard_normal((4, 4)) + 4 * np.eye(4)
    b = RNG.standard_normal((4, 2))
    S = slinalg
    _fd_check(S.cholesky, [spd])
    _fd_check(S.Cholesky(lower=False), [spd])
    _fd_check(S.solve, [a, b])
    _fd_check(S.solve, [a, b[:, 0]])
    _fd_check(S.solve_lower_triangular, [a, b])
    _fd_check(S.solve_upper_triangular, [a, b[:, 1]])
    _fd_check(lambda m: S.eigvalsh(m, None), [spd])
    _fd_check(lambda m, n: S.eigvalsh(m, n), [spd, a.T @ a + np.eye(4)])
    _fd_check(lambda m, n: S.Eigvalsh(False)(m, n), [spd, a.T @ a + np.eye(4)])
    _fd_check(S.expm, [0.5 * RNG.standard_normal((3, 3))])
    _fd_check(S.expm, [np.array([[1.0, 1.0], [0.0, 1.0]])])


def test_slinalg_bad_input():
    x = T.dmatrix("x")
    with pytest.raises(ValueError):                      # not positive definite: LinAlgError
        function([x], slinalg.cholesky(x))(-np.eye(2))
    assert np.isnan(function([x], slinalg.Cholesky(on_error="nan")(x))(-np.eye(2))).all()
    with pytest.raises(ValueError, match="square"):
        function([x], slinalg.expm(x))(np.ones((2, 3)))
    v = T.dvector("v")
    with pytest.raises(ValueError, match="match"):
        function([x, v], slinalg.solve(x, v))(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="structure"):
        slinalg.Solve("orthogonal")
    with pytest.raises(TypeError, match="vector or a matrix"):
        slinalg.solve(x, T.dtensor3("t"))
    with pytest.raises(TypeError, match="matrices"):
        slinalg.kron(x, T.dvector("v"))


# ------------------------------------------------------------------------------------------------- nnet

def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_crossentropy_softmax_family():
    """nll, softmax and argmax of logits far beyond exp's range, against numpy; gradients to x and b."""
    x, b, y = T.dmatrix("x"), T.dvector("b"), T.ivector("y")
    nn = T.nnet
    outs = [*nn.crossentropy_softmax_argmax_1hot_with_bias(x, b, y), *nn.crossentropy_softmax_1hot_with_bias(x, b, y),
            *nn.crossentropy_softmax_1hot(x, y), nn.softmax_with_bias(x, b)]
    f = function([x, b, y], outs)
    xv = RNG.standard_normal((5, 4)) * 400
    bv = RNG.standard_normal(4)
    yv = np.array([0, 3, 1, 1, 2], np.int32)
    got = f(xv, bv, yv)
    ls, ls0 = _log_softmax(xv + bv), _log_softmax(xv)
    rows = np.arange(5)
    for g, w in zip(got, [-ls[rows, yv], np.exp(ls), (xv + bv).argmax(1), -ls[rows, yv], np.exp(ls),
                          -ls0[rows, yv], np.exp(ls0), np.exp(ls)]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-300)
    assert got[2].dtype == np.int32 and np.isfinite(got[0]).all()
    _fd_check(lambda x, b: nn.crossentropy_softmax_1hot_with_bias(x, b, yv)[0], [xv / 100, bv])
    _fd_check(lambda x: nn.crossentropy_softmax_1hot(x, yv)[1], [xv / 100])
    with pytest.raises(TypeError, match="integer"):
        nn.crossentropy_softmax_1hot(x, b)
    with pytest.raises(TypeError, match="matrix"):
        nn.crossentropy_softmax_1hot(b, y)
    with pytest.raises(IndexError):
        f(xv, bv, np.array([0, 9, 1, 1, 2], np.int32))


def test_existing_nnet_names_still_work():
    """Theano's relu(alpha), categorical and binary crossentropy are there (covered elsewhere too)."""
    x = T.dmatrix("x")
    t = T.dmatrix("t")
    f = function([x, t], [T.nnet.relu(x, 0.1), T.nnet.categorical_crossentropy(T.nnet.softmax(x), t),
                          T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t)])
    xv, tv = RNG.standard_normal((3, 4)), RNG.random((3, 4))
    relu, cce, bce = f(xv, tv)
    np.testing.assert_allclose(relu, np.where(xv > 0, xv, 0.1 * xv))
    np.testing.assert_allclose(cce, -(tv * _log_softmax(xv)).sum(1))
    p = 1 / (1 + np.exp(-xv))
    np.testing.assert_allclose(bce, -(tv * np.log(p) + (1 - tv) * np.log(1 - p)))


def test_h_softmax_matches_numpy():
    bs, dim, n_out, n_cls, per = 5, 3, 7, 3, 3
    W1, b1 = RNG.standard_normal((dim, n_cls)), RNG.standard_normal(n_cls)
    W2, b2 = RNG.standard_normal((n_cls, dim, per)), RNG.standard_normal((n_cls, per))
    x, t = T.dmatrix("x"), T.lvector("t")
    sh = [shared(v) for v in (W1, b1, W2, b2)]
    f = function([x, t], [T.nnet.h_softmax(x, bs, n_out, n_cls, per, *sh),
                          T.nnet.h_softmax(x, bs, n_out, n_cls, per, *sh, target=t)])
    xv, tv = RNG.standard_normal((bs, dim)), np.array([0, 6, 3, 5, 2])

    def softmax(a):
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    probs = (softmax(xv @ W1 + b1)[:, :, None] * softmax(np.einsum("bd,cdk->bck", xv, W2) + b2)).reshape(bs, -1)
    full, target = f(xv, tv)
    np.testing.assert_allclose(full, probs[:, :n_out], rtol=1e-12)
    np.testing.assert_allclose(target, probs[np.arange(bs), tv], rtol=1e-12)
    _fd_check(lambda w: T.nnet.h_softmax(xv, bs, n_out, n_cls, per, W1, b1, w, b2, target=tv), [W2])


def test_batch_normalization():
    from gencomp.tensor.nnet.bn import batch_normalization, batch_normalization_test, batch_normalization_train

    x = T.dtensor4("x")
    g, b, rm, rv = T.dvectors("g", "b", "rm", "rv")
    gm = T.tensor("float64", shape=(1, None, None, None), name="gm")
    train = batch_normalization_train(x, g, b, "spatial", running_mean=rm, running_var=rv)
    train_full = batch_normalization_train(x, gm, gm, "per-activation", epsilon=1e-3)
    test = batch_normalization_test(x, g, b, rm, rv, "spatial")
    plain = [batch_normalization(x, gm, gm, gm, gm + 2, mode) for mode in ("low_mem", "high_mem")]
    f = function([x, g, b, rm, rv, gm], [*train, *train_full, test, *plain])
    X = RNG.standard_normal((6, 3, 2, 2))
    G, B, RM, RV = RNG.standard_normal(3), RNG.standard_normal(3), RNG.standard_normal(3), RNG.random(3)
    GM = RNG.standard_normal((1, 3, 2, 2))
    out, mean, invstd, new_rm, new_rv, out2, mean2, invstd2, tout, p1, p2 = f(X, G, B, RM, RV, GM)
    c = (slice(None), None, None)
    mu, var = X.mean((0, 2, 3)), X.var((0, 2, 3))
    np.testing.assert_allclose(out, (X - mu[c]) * (G / np.sqrt(var + 1e-4))[c] + B[c], rtol=1e-10)
    np.testing.assert_allclose(mean, mu)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(var + 1e-4))
    np.testing.assert_allclose(new_rm, 0.9 * RM + 0.1 * mu)
    np.testing.assert_allclose(new_rv, 0.9 * RV + 0.1 * var * 24 / 23)
    mu2, var2 = X.mean(0, keepdims=True), X.var(0, keepdims=True)
    np.testing.assert_allclose(out2, (X - mu2) * (GM / np.sqrt(var2 + 1e-3)) + GM, rtol=1e-10)
    assert mean2.shape == (1, 3, 2, 2) and invstd2.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(tout, (X - RM[c]) * (G / np.sqrt(RV + 1e-4))[c] + B[c], rtol=1e-10)
    np.testing.assert_allclose(p1, (X - GM) / (GM + 2) * GM + GM, rtol=1e-10)
    np.testing.assert_allclose(p2, p1, rtol=1e-10)
    with pytest.raises(ValueError, match="epsilon"):
        batch_normalization_train(x, g, b, "spatial", epsilon=1e-6)
    with pytest.raises(ValueError, match="both"):
        batch_normalization_train(x, g, b, "spatial", running_mean=rm)
    with pytest.raises(ValueError, match="dimensions"):
        batch_normalization_train(x, T.dmatrix("m"), b, "spatial")
    with pytest.raises(ValueError, match="mode"):
        batch_normalization(x, g, b, rm, rv, mode="fast")


# ---------------------------------------------------------------------------------- paths and pickling

def test_theano_import_paths():
    import importlib

    for path, names in [("gencomp.tensor.nlinalg", ["matrix_inverse", "det", "eigh", "svd", "qr", "pinv",
                                                    "alloc_diag", "extract_diag", "trace", "matrix_dot"]),
                        ("gencomp.tensor.slinalg", ["cholesky", "solve", "solve_lower_triangular",
                                                    "solve_upper_triangular", "eigvalsh", "expm", "kron"]),
                        ("gencomp.tensor.sort", ["sort", "argsort"]),
                        ("gencomp.tensor.extra_ops", ["cumprod", "bincount", "squeeze", "compress",
                                                      "fill_diagonal", "fill_diagonal_offset", "Unique", "unique"]),
                        ("gencomp.tensor.nnet.bn", ["batch_normalization", "batch_normalization_train",
                                                    "batch_normalization_test"])]:
        module = importlib.import_module(path)
        for name in names:
            assert callable(getattr(module, name)), f"{path}.{name}"
    assert T.nlinalg.det is nlinalg.det and T.slinalg.solve is slinalg.solve and T.nnet.bn.batch_normalization
    for name in ("sort", "argsort", "cumprod", "nonzero", "nonzero_values", "flatnonzero", "diagonal",
                 "isclose", "allclose", "largest", "smallest", "iround", "erf", "erfc", "gammaln", "psi",
                 "arctan2", "deg2rad", "bincount", "fill_diagonal"):
        assert callable(getattr(T, name)), name


def test_new_ops_pickle_and_recompile():
    x = T.dmatrix("x")
    out = T.sort(T.cumprod(x, 1), 0) + nlinalg.det(x) + T.diagonal(slinalg.expm(x)).sum() + T.psi(x)
    x2, out2 = pickle.loads(pickle.dumps((x, out)))
    value = _spd(3) / 10
    f, f2 = function([x], out), function([x2], out2)
    assert f2.cache_key == f.cache_key
    np.testing.assert_allclose(f2(value), f(value), rtol=1e-12)
