"""The compiled entry point of a function: the whole plan in C (BLAS products, views, shape reads,
arange, integer-array indexing and its increments), checked against numpy."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gencomp
import gencomp.tensor as T
from _threads import in_threads


def _entry_points(f):
    with open(os.path.join(os.path.dirname(f.source_path), "meta.json")) as fh:
        return json.load(fh)["entry_points"]


def _host_steps(f):
    from gencomp.codegen.entry import plan_entry
    from gencomp.codegen.lower import lower

    return [k for k, _ in plan_entry(lower(f.fgraph)).order if k == "host"]


def _mlp(batch, dtype, rng):
    x, y = T.matrix("x", dtype=dtype), T.lvector("y")
    W1 = gencomp.shared((rng.standard_normal((12, 7)) * 0.3).astype(dtype), name="W1")
    b1 = gencomp.shared(np.zeros(7, dtype), name="b1")
    W2 = gencomp.shared((rng.standard_normal((7, 4)) * 0.3).astype(dtype), name="W2")
    b2 = gencomp.shared(np.zeros(4, dtype), name="b2")
    h = T.tanh(T.dot(x, W1) + b1)
    p = T.nnet.softmax(T.dot(h, W2) + b2)
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y])
    params = [W1, b1, W2, b2]
    lr = np.asarray(0.1, dtype)
    f = gencomp.function([x, y], cost, updates=[(v, v - lr * g) for v, g in zip(params, T.grad(cost, params))])
    return f, [p.get_value() for p in params], params


def _numpy_mlp_step(values, X, Y, lr):
    W1, b1, W2, b2 = values
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    rows = np.arange(len(Y))
    cost = -np.mean(np.log(p[rows, Y]))
    dz = p.copy()
    dz[rows, Y] -= 1
    dz /= len(Y)
    dh = (dz @ W2.T) * (1 - h * h)
    grads = [X.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
    return cost, [v - lr * g for v, g in zip(values, grads)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_training_step_is_one_entry_point_and_matches_numpy(dtype):
    rng = np.random.default_rng(1)
    f, values, params = _mlp(9, dtype, rng)
    assert _entry_points(f) == ["gc_run_0"] and not _host_steps(f)
    source = f.source
    assert "gc_product_" in source and "AdvancedSubtensor" in source and "IncSubtensor" in source
    X = rng.standard_normal((9, 12)).astype(dtype)
    Y = rng.integers(0, 4, 9)
    tol = 1e-4 if dtype == "float32" else 1e-10
    for _ in range(3):
        cost = f(X, Y)
        ref, values = _numpy_mlp_step(values, X.astype(np.float64), Y, 0.1)
        np.testing.assert_allclose(cost, ref, rtol=tol)
        for p, v in zip(params, values):
            np.testing.assert_allclose(p.get_value(), v, rtol=tol, atol=tol)


_LAYOUTS = st.sampled_from(["c", "t", "strided"])


def _layout(a, how):
    """`a` as given, or the same values in a transposed or a strided buffer."""
    if how == "t" and a.ndim == 2:
        return np.ascontiguousarray(a.T).T
    if how == "strided":
        big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)]
    return a


_DOTS = {}


def _dot_function(xnd, ynd, dtype):
    key = (xnd, ynd, dtype)
    if key not in _DOTS:
        x, y = T.tensor(dtype, shape=(None,) * xnd), T.tensor(dtype, shape=(None,) * ynd)
        _DOTS[key] = gencomp.function([x, y], T.dot(x, y))
        assert not _host_steps(_DOTS[key])
    return _DOTS[key]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2), st.integers(1, 2), st.sampled_from(["float32", "float64"]),
       st.integers(0, 5), st.integers(0, 5), st.integers(0, 5), _LAYOUTS, _LAYOUTS, st.integers(0, 2 ** 31))
def test_dot_in_c_matches_numpy(xnd, ynd, dtype, m, k, n, lx, ly, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k) if xnd == 2 else (k,)).astype(dtype)
    b = rng.standard_normal((k, n) if ynd == 2 else (k,)).astype(dtype)
    got = _dot_function(xnd, ynd, dtype)(_layout(a, lx), _layout(b, ly))
    want = np.dot(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-5)


def test_dot_of_contiguous_matrices_has_numpys_bits():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((33, 17)), rng.standard_normal((17, 29))
    f = _dot_function(2, 2, "float64")
    assert np.array_equal(f(a, b), a @ b)
    assert np.array_equal(f(a.T.copy().T, b), a @ b)


def test_dot_that_does_not_align_raises_numpys_message():
    f = _dot_function(2, 2, "float64")
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(4, 5\) do not align"):
        f(np.ones((2, 3)), np.ones((4, 5)))
    g = _dot_function(2, 1, "float64")
    with pytest.raises(ValueError, match="do not align"):
        g(np.ones((2, 3)), np.ones(4))


def test_gemm_with_a_broadcast_accumulator():
    rng = np.random.default_rng(4)
    c = T.row("c")
    a, b = T.dmatrices("a", "b")
    f = gencomp.function([c, a, b], c - 0.5 * T.dot(a, b))
    C, A, B = rng.standard_normal((1, 6)), rng.standard_normal((5, 3)), rng.standard_normal((3, 6))
    np.testing.assert_allclose(f(C, A, B), C - 0.5 * (A @ B), rtol=1e-12)
    with pytest.raises(ValueError):
        f(C, A, rng.standard_normal((4, 6)))


_GATHERS = {}


def _gather(kind):
    if kind not in _GATHERS:
        x, i, j = T.dmatrix("x"), T.lvector("i"), T.ivector("j")
        v = T.dvector("v")
        outs = {"rows": x[i], "pairs": x[i, j], "inc": T.inc_subtensor(x[i, j], v),
                "inc_rows": T.inc_subtensor(x[i], 2.0), "set": T.set_subtensor(x[i], v)}
        ins = {"rows": [x, i], "pairs": [x, i, j], "inc": [x, i, j, v], "inc_rows": [x, i], "set": [x, i, v]}
        _GATHERS[kind] = gencomp.function(ins[kind], outs[kind])
        assert not _host_steps(_GATHERS[kind]), kind
    return _GATHERS[kind]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 8), st.integers(0, 2 ** 31))
def test_integer_array_indexing_in_c_matches_numpy(rows, cols, length, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    i = rng.integers(-rows, rows, length)
    j = rng.integers(-cols, cols, length).astype(np.int32)
    v = rng.standard_normal(length)
    assert np.array_equal(_gather("rows")(x, i), x[i])
    assert np.array_equal(_gather("pairs")(x, i, j), x[i, j])
    want = x.copy()
    np.add.at(want, (i, j), v)                    # repeated pairs accumulate, in order
    assert np.array_equal(_gather("inc")(x, i, j, v), want)
    want = x.copy()
    np.add.at(want, i, 2.0)
    assert np.array_equal(_gather("inc_rows")(x, i), want)
    if length == cols and len(set(i % rows)) == length:
        want = x.copy()
        want[i] = v
        assert np.array_equal(_gather("set")(x, i, v), want)


def test_index_out_of_bounds_raises_numpys_index_error():
    x = np.zeros((3, 2))
    with pytest.raises(IndexError, match="out of bounds"):
        _gather("rows")(x, np.array([0, 3]))
    with pytest.raises(IndexError, match="out of bounds"):
        _gather("pairs")(x, np.array([0, -4]), np.array([0, 0], np.int32))
    with pytest.raises(IndexError, match="could not be broadcast"):    # as numpy says it
        _gather("pairs")(x, np.array([0, 1, 2]), np.array([0, 1], np.int32))


@pytest.mark.parametrize("start, stop, step", [(0, 7, 1), (5, -3, -2), (4, 4, 1), (3, 0, 1), (-5, 9, 4)])
def test_arange_in_c_matches_numpy(start, stop, step):
    a, b, c = T.lscalars("a", "b", "c")
    f = _ARANGE.get("f") or _ARANGE.setdefault("f", gencomp.function([a, b, c], T.arange(a, b, c) * 2))
    assert not _host_steps(f)
    assert np.array_equal(f(start, stop, step), np.arange(start, stop, step) * 2)


_ARANGE = {}


def test_arange_with_step_zero_raises():
    a, b, c = T.lscalars("a", "b", "c")
    f = _ARANGE.get("f") or _ARANGE.setdefault("f", gencomp.function([a, b, c], T.arange(a, b, c) * 2))
    with pytest.raises(ValueError, match="step must not be zero"):
        f(0, 3, 0)


def test_host_steps_split_the_plan_into_segments():
    """An op without a C form (cumsum) runs between two entry points; views and products around it."""
    x = T.dmatrix("x")
    y = T.cumsum(T.dot(x, x.T), axis=0)
    f = gencomp.function([x], T.dot(y, x) + 1)
    assert len(_entry_points(f)) == 2 and len(_host_steps(f)) == 1
    X = np.random.default_rng(5).standard_normal((4, 3))
    np.testing.assert_allclose(f(X), np.cumsum(X @ X.T, axis=0) @ X + 1, rtol=1e-12)


def test_concurrent_calls_of_one_function_are_correct():
    """Each thread calls on a frame of its own: threads never share temporaries."""
    x = T.dmatrix("x")
    f = gencomp.function([x], T.tanh(T.dot(x, x.T) + 1).sum(axis=1) * 2)
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal((int(rng.integers(1, 40)), 5)) for _ in range(64)]
    wants = [f(X) for X in inputs]

    def work(k):
        for r in range(20):
            X, want = inputs[(k + r) % len(inputs)], wants[(k + r) % len(inputs)]
            np.testing.assert_array_equal(f(X), want)

    in_threads(work, 8)


def test_outputs_that_host_steps_read_stay_alive():
    """An output C wrote into an array Python allocated, read by a host step (basic indexing,
    cumsum), is that array: it was once replaced by a view of the frame that did not keep it
    alive, and a later output reused its memory (silently wrong numbers)."""
    m = T.dmatrix("m")
    e = T.exp(m)
    f = gencomp.function([m], [e, e[0, :], T.log(m), T.cumsum(e, axis=1), e[:, ::-1] * 2])
    X = np.random.default_rng(9).random((3, 4)) + 0.5
    for _ in range(3):
        got = f(X)
        want = [np.exp(X), np.exp(X)[0], np.log(X), np.cumsum(np.exp(X), axis=1), np.exp(X)[:, ::-1] * 2]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-13)
