"""Basic indexing inside the compiled entry point: x[ints and slices] as a view computed in C, and
set_subtensor / inc_subtensor on such a part (y stretched over it as numpy broadcasts), against
numpy over random shapes, bounds (negative, past either end, None), steps and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gencomp
import gencomp.tensor as T

_FUNCTIONS = {}


def _host_steps(f):
    from gencomp.codegen.entry import plan_entry
    from gencomp.codegen.lower import lower

    return [k for k, _ in plan_entry(lower(f.fgraph)).order if k == "host"]


def _function(kind, dtype="float64"):
    """One compiled function per form; the bounds are symbolic, so one module serves every draw."""
    key = (kind, dtype)
    if key not in _FUNCTIONS:
        x = T.tensor3("x", dtype=dtype)
        y = T.vector("y", dtype=dtype)
        a, b, c, i = T.lscalars("a", "b", "c", "i")
        j = T.iscalar("j")
        forms = {
            "slice": ([x, a, b, c, i], x[a:b:c, i] * 2 + 1),
            "open": ([x, a, b, c], T.exp(x[::c, a:, :b])),
            "ints": ([x, i, j, a, b, c], x[i, a:b:c, j] - 1),
            "output": ([x, a, b, c], x[a:b:c]),                  # a view returned: copied out
            "inc": ([x, y, a, b, c, i], T.inc_subtensor(x[a:b:c, i], y)),
            "set": ([x, y, i, a, b, c], T.set_subtensor(x[i, a:b:c], y)),
            "inc_scalar": ([x, i, j], T.inc_subtensor(x[i, :, j], 2.5)),
        }
        ins, out = forms[kind]
        f = _FUNCTIONS[key] = gencomp.function(ins, out)
        assert not _host_steps(f), kind
    return _FUNCTIONS[key]


bounds = st.one_of(st.integers(-7, 7), st.just(10 ** 12), st.just(-10 ** 12))
steps = st.integers(-3, 3).filter(lambda v: v != 0)


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(0, 5), st.integers(1, 4), st.integers(1, 3)), bounds, bounds, steps,
       st.integers(0, 2 ** 31), st.sampled_from(["float64", "float32"]))
def test_slices_in_c_match_numpy(shape, a, b, c, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    i = int(rng.integers(-shape[1], shape[1]))
    j = np.int32(rng.integers(-shape[2], shape[2]))
    tol = dict(rtol=1e-6 if dtype == "float32" else 1e-15)
    np.testing.assert_allclose(_function("slice", dtype)(x, a, b, c, i), x[a:b:c, i] * 2 + 1, **tol)
    np.testing.assert_allclose(_function("open", dtype)(x, a, b, c), np.exp(x[::c, a:, :b]), **tol)
    np.testing.assert_array_equal(_function("output", dtype)(x, a, b, c), x[a:b:c])
    if shape[0]:
        k = int(rng.integers(-shape[0], shape[0]))
        np.testing.assert_allclose(_function("ints", dtype)(x, k, j, a, b, c), x[k, a:b:c, j] - 1, **tol)


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(0, 5), st.integers(1, 4), st.integers(1, 4)), bounds, bounds, steps,
       st.integers(0, 2 ** 31), st.booleans())
def test_set_and_inc_subtensor_in_c_match_numpy(shape, a, b, c, seed, stretch):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    i = int(rng.integers(-shape[1], shape[1]))
    part = x[a:b:c, i]                               # (rows, shape[2]): y spans its last dimension
    y = rng.standard_normal(1 if stretch else shape[2])
    want = x.copy()
    want[a:b:c, i] += y
    assert np.array_equal(_function("inc")(x, y, a, b, c, i), want)
    assert part.shape[0] >= 0
    if shape[0]:
        k = int(rng.integers(-shape[0], shape[0]))
        cols = x[k, a:b:c].shape[0]                  # x[k, a:b:c] is (cols, shape[2])
        y = rng.standard_normal(1 if stretch else shape[2])
        want = x.copy()
        want[k, a:b:c] = y
        assert np.array_equal(_function("set")(x, y, k, a, b, c), want)
        assert cols >= 0
        want = x.copy()
        want[k, :, int(j := rng.integers(-shape[2], shape[2]))] += 2.5
        assert np.array_equal(_function("inc_scalar")(x, k, np.int32(j)), want)


def test_inputs_are_left_alone_and_strided_inputs_work():
    x = np.arange(60.0).reshape(3, 4, 5)
    keep = x.copy()
    f = _function("inc")
    got = f(x, np.ones(5), 0, 3, 1, 1)
    assert np.array_equal(x, keep)                   # the result is a copy: x is never written
    want = keep.copy()
    want[0:3:1, 1] += 1
    assert np.array_equal(got, want)
    strided = np.arange(240.0).reshape(6, 8, 5)[::2, ::2]      # not contiguous
    want = strided.copy()
    want[1:, 0] += np.ones(5)
    assert np.array_equal(f(strided, np.ones(5), 1, 10, 1, 0), want)


def test_bad_indices_raise_numpys_errors():
    x = np.zeros((3, 4, 2))
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        _function("slice")(x, 0, 3, 0, 1)
    with pytest.raises(IndexError, match="out of bounds"):
        _function("slice")(x, 0, 3, 1, 4)
    with pytest.raises(IndexError, match="out of bounds"):
        _function("ints")(x, -4, np.int32(0), 0, 3, 1)
    with pytest.raises(ValueError, match="broadcast"):
        _function("inc")(x, np.ones(3), 0, 3, 1, 1)         # y of 3 over a part of (3, 2)


def test_views_of_views_and_in_place_increments():
    """A gradient through several slices sums inc_subtensors of one zero array: each may write
    into the buffer of the one before (it is read for the last time there)."""
    x = T.dmatrix("x")
    parts = [x[:, 0:2], x[:, 2:3], x[1:, 3:]]
    cost = sum(T.tanh(p).sum() * (k + 1) for k, p in enumerate(parts))
    f = gencomp.function([x], T.grad(cost, x))
    assert not _host_steps(f)
    X = np.random.default_rng(3).standard_normal((3, 5))
    want = np.zeros_like(X)
    for k, sl in enumerate([(slice(None), slice(0, 2)), (slice(None), slice(2, 3)), (slice(1, None), slice(3, None))]):
        want[sl] += (1 - np.tanh(X[sl]) ** 2) * (k + 1)
    np.testing.assert_allclose(f(X), want, rtol=1e-13)


_SHAPES = {}


def _shape_function(kind):
    if kind not in _SHAPES:
        x, v = T.dtensor3("x"), T.dvector("v")
        s = T.lvector("s")
        n, m = T.lscalar("n"), T.iscalar("m")
        forms = {
            "reshape": ([x, s], x.reshape(s, ndim=2) * 1),
            "reshape_t": ([x, s], x.dimshuffle(2, 0, 1).reshape(s, ndim=2) + 0.5),   # not contiguous: a copy
            "alloc": ([v, n, m], T.alloc(v, n, m, v.shape[0]) * 2),
            "join0": ([x], T.concatenate([x, x[::-1] * 2, x[:1]], axis=0)),
            "join2": ([x, v], T.concatenate([x, T.alloc(v, x.shape[0], x.shape[1], v.shape[0])], axis=2)),
            "shape": ([x], x.shape * 3),
        }
        ins, out = forms[kind]
        f = _SHAPES[kind] = gencomp.function(ins, out)
        assert not _host_steps(f), kind
    return _SHAPES[kind]


@settings(max_examples=40, deadline=None)
@given(st.tuples(st.integers(0, 4), st.integers(1, 4), st.integers(1, 5)), st.integers(0, 2 ** 31),
       st.booleans())
def test_reshape_alloc_join_and_shape_in_c_match_numpy(shape, seed, free):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    size = x.size
    rows = int(rng.choice([d for d in range(1, size + 1) if size % d == 0])) if size else 0
    s = np.array([rows, -1 if free else size // rows] if size else [0, 7], dtype=np.int64)
    np.testing.assert_array_equal(_shape_function("reshape")(x, s), x.reshape(s))
    np.testing.assert_array_equal(_shape_function("reshape_t")(x, s), x.transpose(2, 0, 1).reshape(s) + 0.5)
    v = rng.standard_normal(shape[2])
    n, m = int(rng.integers(0, 4)), np.int32(rng.integers(0, 3))
    np.testing.assert_array_equal(_shape_function("alloc")(v, n, m), np.broadcast_to(v, (n, m, len(v))) * 2)
    np.testing.assert_array_equal(_shape_function("join0")(x), np.concatenate([x, x[::-1] * 2, x[:1]], axis=0))
    np.testing.assert_array_equal(_shape_function("join2")(x, v),
                                  np.concatenate([x, np.broadcast_to(v, shape)], axis=2))
    np.testing.assert_array_equal(_shape_function("shape")(x), np.array(shape) * 3)


def test_reshape_alloc_and_join_errors_are_numpys():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="reshape"):
        _shape_function("reshape")(x, np.array([5, -1]))
    with pytest.raises(ValueError, match="reshape"):
        _shape_function("reshape")(x, np.array([-1, -1]))
    with pytest.raises(ValueError):
        _shape_function("reshape")(x, np.array([4, 5]))
    with pytest.raises(ValueError):
        _shape_function("alloc")(np.ones(3), -1, np.int32(2))
    y = T.dmatrix("y")
    f = gencomp.function([y], T.concatenate([y, y.T], axis=0))
    with pytest.raises(ValueError, match="concatenate"):
        f(np.zeros((2, 3)))
    np.testing.assert_array_equal(f(np.ones((2, 2))), np.ones((4, 2)))
