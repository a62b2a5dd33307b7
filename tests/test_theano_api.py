"""Theano names that ported programs use beyond the core contract, each against numpy:
isnan/isinf, log2/log10/exp2, square/inv, all/any, zeros/ones/eye/identity_like,
shape_padleft/padright/padaxis, squeeze, addbroadcast/unbroadcast/patternbroadcast,
nnet.hard_sigmoid/ultra_fast_sigmoid, and theano.grad / T.jacobian / T.hessian."""

from __future__ import annotations

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from gencomp import function

EDGE = np.array([[1.0, np.nan, -np.inf, 0.0], [0.5, 2.0, -3.0, np.inf]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elementwise_additions(dtype):
    x = T.matrix("x", dtype=dtype)
    f = function([x], [T.isnan(x), T.isinf(x), T.log2(abs(x)), T.log10(abs(x)), T.exp2(x), T.square(x),
                       T.inv(x), T.reciprocal(x)])
    xv = EDGE.astype(dtype)
    with np.errstate(all="ignore"):
        want = [np.isnan(xv), np.isinf(xv), np.log2(abs(xv)), np.log10(abs(xv)), np.exp2(xv), xv * xv,
                1 / xv, 1 / xv]
    for got, w in zip(f(xv), want):
        assert got.dtype == w.dtype
        np.testing.assert_allclose(got, w, rtol=1e-6 if dtype == "float32" else 1e-14)
    i = T.lvector("i")
    assert not function([i], T.isnan(i).sum())(np.arange(3)) and T.inv(i).dtype == "float64"


def test_all_any():
    x = T.dmatrix("x")
    f = function([x], [T.all(x), T.any(x), T.all(x, axis=1), T.any(x, axis=0, keepdims=True)])
    for xv in (np.array([[1.0, 0.0], [2.0, 3.0]]), np.ones((2, 2)), np.zeros((2, 2)), np.zeros((0, 2))):
        want = [np.all(xv), np.any(xv), np.all(xv, axis=1), np.any(xv, axis=0, keepdims=True)]
        for got, w in zip(f(xv), want):
            assert got.dtype == np.bool_ and got.shape == w.shape
            np.testing.assert_array_equal(got, w)


def test_allocation_helpers():
    x, n = T.dmatrix("x"), T.lscalar("n")
    f = function([x, n], [T.zeros((n, 2)), T.ones(x.shape, dtype="int32"), T.zeros(n), T.eye(n),
                          T.eye(3, 4, k=1, dtype="int64"), T.eye(n, k=-1), T.identity_like(x)])
    xv = np.arange(6.0).reshape(2, 3)
    want = [np.zeros((4, 2)), np.ones((2, 3), np.int32), np.zeros(4), np.eye(4), np.eye(3, 4, k=1, dtype=np.int64),
            np.eye(4, k=-1), np.eye(2, 3)]
    for got, w in zip(f(xv, 4), want):
        assert got.dtype == w.dtype
        np.testing.assert_array_equal(got, w)
    with gencomp.config.change(floatX="float32"):
        assert T.zeros((2,)).dtype == "float32" and T.eye(2).dtype == "float32"
    with pytest.raises(TypeError, match="shape"):
        T.zeros(T.dvector("s"))


def test_pattern_helpers():
    v, x = T.dvector("v"), T.dmatrix("x")
    assert T.shape_padleft(v).broadcastable == (True, False)
    assert T.shape_padright(v, 2).broadcastable == (False, True, True)
    assert T.shape_padaxis(x, 1).broadcastable == (False, True, False)
    assert T.squeeze(T.shape_padleft(v)).broadcastable == (False,)
    with pytest.raises(ValueError, match="not broadcastable"):
        T.squeeze(x, axis=0)
    row = T.addbroadcast(x[:1], 0)
    assert row.broadcastable == (True, False) and T.unbroadcast(row, 0).broadcastable == (False, False)
    assert T.patternbroadcast(x, (True, False)).broadcastable == (True, False)
    f = function([x, v], [row + x, T.squeeze(T.shape_padright(v)) * 2, T.shape_padaxis(v, 0) + x])
    xv, vv = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 3.0])
    for got, w in zip(f(xv, vv), [xv[:1] + xv, vv * 2, vv[None, :] + xv]):
        np.testing.assert_array_equal(got, w)
    g = function([x], T.addbroadcast(x, 0) * 2)
    with pytest.raises(ValueError, match="declared broadcastable"):
        g(xv)
    # gradients flow through a rebroadcast
    b = T.dmatrix("b")
    cost = (T.addbroadcast(b, 0) * x).sum()
    gb = function([b, x], T.grad(cost, b))(np.ones((1, 3)), xv)
    np.testing.assert_array_equal(gb, xv.sum(axis=0, keepdims=True))


def test_nnet_sigmoid_variants():
    x = T.dvector("x")
    xv = np.array([-10.0, -2.6, -1.0, 0.0, 1.0, 2.4, 10.0])
    hard, fast = function([x], [T.nnet.hard_sigmoid(x), T.nnet.ultra_fast_sigmoid(x)])(xv)
    np.testing.assert_allclose(hard, np.clip(0.2 * xv + 0.5, 0, 1), rtol=1e-15)
    np.testing.assert_allclose(fast, 1 / (1 + np.exp(-xv)), rtol=1e-15)


def test_grad_aliases():
    x = T.dvector("x")
    cost = (x ** 3).sum()
    xv = np.array([1.0, -2.0])
    np.testing.assert_allclose(function([x], gencomp.grad(cost, x))(xv), 3 * xv ** 2)
    np.testing.assert_allclose(function([x], T.jacobian(x ** 2, x))(xv), np.diag(2 * xv))
    np.testing.assert_allclose(function([x], T.hessian(cost, x))(xv), np.diag(6 * xv))


def test_ifelse():
    from gencomp.ifelse import ifelse

    c, x, y = T.lscalar("c"), T.dmatrix("x"), T.dmatrix("y")
    out = ifelse(T.gt(c, 0), x * 2, y.sum(axis=0, keepdims=True))       # branches of other shapes
    f = function([c, x, y], out)
    xv, yv = np.arange(6.0).reshape(2, 3), np.ones((4, 3))
    np.testing.assert_array_equal(f(1, xv, yv), xv * 2)
    np.testing.assert_array_equal(f(0, xv, yv), np.full((1, 3), 4.0))
    a, b = ifelse(T.eq(c, 1), [x, x + 1], [y, y - 1])
    np.testing.assert_array_equal(function([c, x, y], b)(0, xv, yv), yv - 1)
    cost = ifelse(T.gt(c, 0), (x ** 2).sum(), (3 * y).sum())
    gx, gy = T.grad(cost, [x, y])
    g = function([c, x, y], [gx, gy])
    np.testing.assert_array_equal(g(1, xv, yv)[0], 2 * xv)
    np.testing.assert_array_equal(g(1, xv, yv)[1], np.zeros_like(yv))
    np.testing.assert_array_equal(g(0, xv, yv)[0], np.zeros_like(xv))
    np.testing.assert_array_equal(g(0, xv, yv)[1], np.full_like(yv, 3.0))
    with pytest.raises(TypeError, match="scalar condition"):
        ifelse(x, x, y)
    assert ifelse(c, T.ivector("i"), T.dvector("d")).dtype == "float64"


def test_random_streams():
    import pickle

    from gencomp.tensor.shared_randomstreams import MRG_RandomStreams, RandomStreams

    def build(seed):
        srng = RandomStreams(seed=seed)
        x = T.dmatrix("x")
        mask = srng.binomial(size=x.shape, p=0.3, dtype="float64")      # dropout, as in Theano tutorials
        u, n = srng.uniform((20000,), low=-1, high=3), srng.normal((20000,), avg=2.0, std=0.5)
        cost = (x * mask).sum()
        return srng, function([x], [x * mask, T.grad(cost, x), u, n, u.mean() * 1])

    srng, f = build(7)
    xv = np.ones((50, 40))
    dropped, grad, u, n, umean = f(xv)
    np.testing.assert_array_equal(grad, dropped)         # one draw per call, shared by both uses
    assert set(np.unique(dropped)) <= {0.0, 1.0} and abs(dropped.mean() - 0.3) < 0.03
    assert -1 <= u.min() and u.max() < 3 and abs(u.mean() - 1) < 0.03 and umean == pytest.approx(u.mean())
    assert abs(n.mean() - 2) < 0.02 and abs(n.std() - 0.5) < 0.02
    again = f(xv)
    assert not np.array_equal(again[2], u)               # a new draw at every call, even of constant size
    _, g = build(7)
    np.testing.assert_array_equal(g(xv)[2], u)           # the same seed gives the same sequence
    srng.seed(7)
    np.testing.assert_array_equal(f(xv)[2], u)           # reseeding restarts it
    restored = pickle.loads(pickle.dumps(f))              # the generators' states travel with it
    np.testing.assert_array_equal(restored(xv)[2], f(xv)[2])
    with gencomp.config.change(floatX="float32"):
        assert MRG_RandomStreams(1).uniform((2,)).dtype == "float32"
    assert RandomStreams(1).binomial((2,)).dtype == "int64"
    with pytest.raises(TypeError, match="size"):
        RandomStreams(1).uniform()


def test_variable_methods():
    x = T.dmatrix("x")
    xv = np.array([[1.5, -2.5, 0.0], [3.0, -0.5, 2.0]])
    outs = [x.clip(-1, 2), x.round(), x.any(axis=1), x.all(), T.shape_padleft(x).squeeze(),
            x.norm(2), x.norm(1, axis=0), x.norm(3, axis=1)]
    want = [np.clip(xv, -1, 2), np.round(xv), xv.any(axis=1), xv.all(), xv, np.sqrt((xv ** 2).sum()),
            abs(xv).sum(axis=0), (abs(xv) ** 3).sum(axis=1) ** (1 / 3)]
    for got, w in zip(function([x], outs)(xv), want):
        np.testing.assert_allclose(got, w, rtol=1e-14)


def test_eval_and_ported_function_arguments():
    x = T.dvector("x")
    y = (x * 2).sum()
    assert y.eval({x: np.arange(3.0)}) == 6.0
    assert y.eval({x: np.ones(2)}) == 4.0                       # the compiled function is reused
    w = gencomp.shared(np.ones(2))
    assert (w * 3).sum().eval() == 6.0
    w.set_value(np.zeros(2))
    assert (w + 1).sum().eval() == 2.0
    f = function([x], y, mode="FAST_RUN", profile=False)
    assert f(np.ones(4)) == 8.0


def test_products_and_cumsum():
    from gencomp.gradient import verify_grad, zero_grad

    rng = np.random.default_rng(11)
    a, b = T.tensor3("a"), T.tensor3("b")
    av, bv = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    f = function([a, b], [T.batched_dot(a, b), T.tensordot(a, b[0], axes=1), T.tensordot(a, a, axes=[[0, 1], [0, 1]]),
                          T.tensordot(a, a, axes=3)])
    want = [np.matmul(av, bv), np.tensordot(av, bv[0], axes=1), np.tensordot(av, av, axes=[[0, 1], [0, 1]]),
            np.tensordot(av, av, axes=3)]
    for got, w in zip(f(av, bv), want):
        assert got.shape == w.shape
        np.testing.assert_allclose(got, w, rtol=1e-12)
    verify_grad(lambda x, y: T.tensordot(x, y, axes=[[2], [1]]), [av, bv], rng=rng)
    x = T.dmatrix("x")
    xv = rng.standard_normal((3, 4))
    g = function([x], [T.cumsum(x), T.cumsum(x, axis=-1), T.cumsum(T.cast(x > 0, "int32"), axis=0)])
    for got, w in zip(g(xv), [np.cumsum(xv), np.cumsum(xv, axis=-1), np.cumsum((xv > 0).astype(np.int32), axis=0)]):
        assert got.dtype == w.dtype
        np.testing.assert_allclose(got, w, rtol=1e-12)
    verify_grad(lambda m: T.cumsum(m, axis=0) ** 2, [xv], rng=rng)
    verify_grad(lambda m: T.cumsum(m) ** 2, [xv], rng=rng)
    gz = function([x], T.grad((zero_grad(x) * x).sum(), x))(xv)
    np.testing.assert_allclose(gz, xv)


def test_more_activations():
    x = T.dvector("x")
    xv = np.array([-30.0, -1.0, -1e-9, 0.0, 0.5, 3.0])
    elu, selu, softsign = function([x], [T.nnet.elu(x, 0.7), T.nnet.selu(x), T.nnet.softsign(x)])(xv)
    np.testing.assert_allclose(elu, np.where(xv > 0, xv, 0.7 * np.expm1(xv)), rtol=1e-15)
    np.testing.assert_allclose(selu, 1.0507009873554805 * np.where(xv > 0, xv, 1.6732632423543772 * np.expm1(xv)),
                               rtol=1e-15)
    np.testing.assert_allclose(softsign, xv / (1 + abs(xv)), rtol=1e-15)
    from gencomp.gradient import verify_grad

    verify_grad(lambda a: T.nnet.elu(a) + T.nnet.softsign(a), [np.array([-1.5, -0.3, 0.4, 2.0])],
                rng=np.random.default_rng(0))
