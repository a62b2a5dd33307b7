"""Small end-to-end Theano programs (the tutorials' idioms, imports changed only), each against numpy:
what running the deeplearning.net tutorials and Theano's documentation pages unchanged found broken."""

from __future__ import annotations

import numpy as np
import pytest

import gencomp as theano
import gencomp.tensor as T
from gencomp import function


def _stable_xent(z, y):
    """The logistic cross-entropy and its gradient in z, finite for any z."""
    z = z.astype("float64")
    with np.errstate(over="ignore"):
        sig = 1 / (1 + np.exp(-z))
    return y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z), sig - y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logistic_written_out_stays_finite(dtype):
    # the Theano tutorial's logistic regression writes the sigmoid out; once exp(-z) is below the
    # float's epsilon, 1 - p is 0 and log(1 - p) = -inf, and its gradient 0 * inf = nan: the
    # tutorial's first training step turned every weight into nan
    z, y = T.vector("z", dtype=dtype), T.vector("y", dtype=dtype)
    p_1 = 1 / (1 + T.exp(-z))
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    f = function([z, y], [xent, T.grad(xent.sum(), z), p_1, 1 - p_1])
    big = 80.0 if dtype == "float32" else 700.0            # |z| where both sigmoids stay normal numbers
    zv = np.array([-big, -60, -40, -5, 0, 5, 40, 60, big] * 2, dtype=dtype)
    yv = np.array([0] * 9 + [1] * 9, dtype=dtype)
    got_xent, got_grad, got_p, got_q = f(zv, yv)
    want_xent, want_grad = _stable_xent(zv, yv)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got_xent, want_xent, rtol=tol)
    np.testing.assert_allclose(got_grad, want_grad, rtol=tol, atol=tol)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(got_p, 1 / (1 + np.exp(-zv.astype("float64"))), rtol=tol)
        np.testing.assert_allclose(got_q, 1 / (1 + np.exp(zv.astype("float64"))), rtol=tol)  # 1 - p, exact


def test_logistic_regression_tutorial_trains():
    rng = np.random.RandomState(0)
    N, feats = 50, 784
    D = (rng.randn(N, feats), rng.randint(size=N, low=0, high=2))
    x, y = T.dmatrix("x"), T.dvector("y")
    w = theano.shared(rng.randn(feats), name="w")
    b = theano.shared(0., name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = function([x, y], [prediction, xent], updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
    w0 = w.get_value()
    zv = D[0] @ w0
    assert np.abs(zv).max() > 40                      # saturated: 1 - p rounds to 0 in float64
    pred, err = train(D[0], D[1])
    want_xent, dz = _stable_xent(zv, D[1])
    np.testing.assert_allclose(err, want_xent, rtol=1e-12)
    np.testing.assert_allclose(w.get_value(), w0 - 0.1 * (D[0].T @ dz / N + 0.02 * w0), rtol=1e-12)
    for _ in range(20):
        train(D[0], D[1])
    assert np.isfinite(w.get_value()).all()


def test_types_print_as_in_theano():
    # the tutorial prints x.type: TensorType(float64, scalar)
    assert str(T.dscalar) == repr(T.dscalar) == "TensorType(float64, scalar)"
    assert T.dscalar("x").type is T.dscalar
    assert [str(t) for t in (T.fvector, T.imatrix, T.drow, T.dcol, T.dtensor3)] == [
        "TensorType(float32, vector)", "TensorType(int32, matrix)", "TensorType(float64, row)",
        "TensorType(float64, col)", "TensorType(float64, 3D)"]
    assert str(T.TensorType("float64", (False, True, False))) == "TensorType(float64, (False, True, False))"


def test_rop_of_a_product_uses_every_input():
    # gradients.txt: W is an input of the R-op (Theano evaluates the other inputs at zeros)
    W, V, x = T.dmatrix("W"), T.dmatrix("V"), T.dvector("x")
    JV = T.Rop(T.dot(x, W), W, V)
    f = function([W, V, x], JV)
    np.testing.assert_array_equal(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2., 2.])
    with pytest.raises(ValueError):                 # and W's shape is still checked against x's
        f(np.ones((3, 2)), [[2, 2], [2, 2]], [0, 1])
    # the result keeps the type of f
    r = T.drow("r")
    assert T.Rop(T.dot(r, W), W, V).type == T.drow
    v = T.dvector("v")
    np.testing.assert_array_equal(function([v, x], T.Lop(T.dot(x, W), W, v))([2, 2], [0, 1]),
                                  [[0, 0], [2, 2]])


def test_shape_vectors_have_a_length():
    # x.reshape(y.shape), T.alloc(0, *x.shape), rows, cols = x.shape: Theano's get_vector_length
    x, y = T.dmatrix("x"), T.dmatrix("y")
    rows, cols = x.shape
    outs = [x.reshape(y.shape), T.reshape(x, y.shape), T.alloc(0., *x.shape), x.reshape(x.shape[::-1]),
            x.reshape(T.concatenate([x.shape[:1], [-1]])), T.ones_like(y).reshape(T.cast(x.shape, "int32")),
            T.zeros(x.shape[::-1]), rows * 10 + cols]
    f = function([x, y], outs)
    xv, yv = np.arange(6.).reshape(2, 3), np.zeros((3, 2))
    got = f(xv, yv)
    assert [g.shape for g in got[:7]] == [(3, 2), (3, 2), (2, 3), (3, 2), (2, 3), (2, 3), (3, 2)]
    np.testing.assert_array_equal(got[0], xv.reshape(3, 2))
    assert got[7] == 23
    assert [T.get_vector_length(v) for v in (x.shape, x.shape[1:], T.stack([rows, cols, 1]), [1, 2])] == [2, 1, 3, 2]
    n = T.lvector("n")
    with pytest.raises(ValueError, match="ndim="):
        x.reshape(n)
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(n)
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(x)


def test_gradient_clipping_and_scaling():
    # theano.gradient.grad_clip (recurrent networks clip what flows back through time) and grad_scale
    import pickle

    a = T.dvector("a")
    y = theano.gradient.grad_clip(a * 10, -1, 1)
    z = theano.gradient.grad_scale(a ** 2, 0.5)
    c = theano.gradient.consider_constant(a ** 2)
    cost = (y * [1., -3., 0.5]).sum() + z.sum() + (c * a).sum()
    f = function([a], [y, T.grad(cost, a)])
    got_y, got_g = f([1., 2., 3.])
    np.testing.assert_array_equal(got_y, [10., 20., 30.])
    # clip(g) * 10 from y, 0.5 * 2a from z, a**2 (held constant) from c * a
    np.testing.assert_allclose(got_g, np.array([10., -10., 5.]) + np.array([1., 2., 3.]) + np.array([1., 4., 9.]))
    assert pickle.loads(pickle.dumps(y.owner.op)) == y.owner.op and str(y.owner.op) == "GradClip{-1.0,1.0}"
    with pytest.raises(ValueError, match="lower bound"):
        theano.gradient.grad_clip(a, 1, -1)


def test_theano_dot():
    # theano.dot (the scan documentation's Gibbs step calls it), dense and sparse
    a, b = T.dmatrix("a"), T.dvector("b")
    av, bv = np.arange(6.).reshape(2, 3), np.array([1., 2., 3.])
    np.testing.assert_array_equal(function([a, b], theano.dot(a, b))(av, bv), av @ bv)
    sp = pytest.importorskip("scipy.sparse")
    from gencomp import sparse

    s = sparse.csr_matrix("s", dtype="float64")
    m = sp.csr_matrix(np.array([[0., 2.], [1., 0.], [0., 0.]]))
    np.testing.assert_array_equal(function([s, a], theano.dot(s, a))(m, av), m @ av)


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 4, 5)), ((4,), (2, 4, 5)), ((3, 4), (2, 4, 5)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (3, 2, 4, 5))])
def test_dot_beyond_two_dimensions_is_numpy_dot(shapes):
    # T.dot is numpy.dot (and Theano's): the last axis of a with the second-to-last of b, not matmul
    sa, sb = shapes
    a = T.tensor("float64", shape=(None,) * len(sa), name="a")
    b = T.tensor("float64", shape=(None,) * len(sb), name="b")
    rng = np.random.RandomState(0)
    av, bv = rng.rand(*sa), rng.rand(*sb)
    want = np.dot(av, bv)
    wv = rng.rand(*want.shape)
    out = T.dot(a, b)
    ga, gb = T.grad((out * wv).sum(), [a, b])
    got, gav, gbv = function([a, b], [out, ga, gb])(av, bv)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    for value, grad, other in ((av, gav, lambda d: (np.dot(av + d, bv) * wv).sum()),
                               (bv, gbv, lambda d: (np.dot(av, bv + d) * wv).sum())):
        base = other(0)
        for i in range(value.size):          # the cost is linear: one step gives each entry exactly
            step = np.zeros(value.size)
            step[i] = 1.0
            np.testing.assert_allclose(grad.reshape(-1)[i], other(step.reshape(value.shape)) - base, rtol=1e-9)


def test_elman_rnn_with_embeddings_and_vector_softmax():
    # rnnslu: embeddings through negative indices (contextwin pads with -1), T.nnet.softmax of a
    # vector giving a (1, n) row inside scan (read back as s[:, 0, :]), OrderedDict updates
    from collections import OrderedDict

    rng = np.random.RandomState(0)
    ne, de, cs, nh, nc = 6, 3, 3, 4, 2
    emb = theano.shared(0.2 * rng.uniform(-1, 1, (ne + 1, de)), name="emb")
    wx = theano.shared(0.2 * rng.uniform(-1, 1, (de * cs, nh)), name="wx")
    wh = theano.shared(0.2 * rng.uniform(-1, 1, (nh, nh)), name="wh")
    w = theano.shared(0.2 * rng.uniform(-1, 1, (nh, nc)), name="w")
    h0 = theano.shared(np.zeros(nh), name="h0")
    params = [emb, wx, wh, w, h0]
    idxs = T.imatrix()
    x = emb[idxs].reshape((idxs.shape[0], de * cs))
    y_sentence = T.ivector("y_sentence")

    def recurrence(x_t, h_tm1):
        h_t = T.nnet.sigmoid(T.dot(x_t, wx) + T.dot(h_tm1, wh))
        s_t = T.nnet.softmax(T.dot(h_t, w))
        return [h_t, s_t]

    [h, s], _ = theano.scan(fn=recurrence, sequences=x, outputs_info=[h0, None], n_steps=x.shape[0])
    p_y = s[:, 0, :]
    nll = -T.mean(T.log(p_y)[T.arange(x.shape[0]), y_sentence])
    grads = T.grad(nll, params)
    lr = T.scalar("lr")
    train = function([idxs, y_sentence, lr], nll, updates=OrderedDict((p, p - lr * g) for p, g in zip(params, grads)))
    words = [np.asarray(c, dtype="int32") for c in ([-1, 0, 1], [0, 1, 5], [1, 5, -1])]
    labels = [0, 1, 1]
    values = [p.get_value() for p in params]
    e, a, b_, c, hh = values
    hcur, want = hh, 0.0
    for t, win in enumerate(words):
        hcur = 1 / (1 + np.exp(-(e[win].reshape(-1) @ a + hcur @ b_)))
        z = hcur @ c
        want -= (z - np.logaddexp.reduce(z))[labels[t]] / 3
    ref = function([idxs, y_sentence], grads, device="py")(words, labels)
    np.testing.assert_allclose(train(words, labels, 0.1), want, rtol=1e-12)
    for p, v, g in zip(params, values, ref):
        np.testing.assert_allclose(p.get_value(), v - 0.1 * g, rtol=1e-10, atol=1e-14)


def _tanh_loop():
    x = T.dvector("x")
    W = theano.shared(np.random.RandomState(0).randn(3, 3), name="W")
    h, _ = theano.scan(lambda h_tm1: T.tanh(T.dot(h_tm1, W)), outputs_info=x, n_steps=3)
    g = function([x], h[-1])
    x0 = np.array([0.1, -0.2, 0.3])
    J = np.array([(g(x0 + 1e-6 * e) - g(x0 - 1e-6 * e)) / 2e-6 for e in np.eye(3)]).T
    return x, h[-1], x0, J


def test_rop_through_scan():
    x, out, x0, J = _tanh_loop()
    v = T.dvector("v")
    v0 = np.array([1., 2., -1.])
    np.testing.assert_allclose(function([x, v], T.Rop(out, x, v))(x0, v0), J @ v0, rtol=1e-6)


def test_hessian_vector_product_through_scan():
    x, out, x0, J = _tanh_loop()
    v = T.dvector("v")
    v0 = np.array([1., 2., -1.])
    vJ = T.grad((out * v).sum(), x)                 # v^T J(x), then its derivative in x along w
    w0 = np.array([0.5, 1., 2.])
    got = function([x, v], T.grad((vJ * w0).sum(), x))(x0, v0)
    f_vJ = function([x, v], vJ)
    want = np.array([(f_vJ(x0 + 1e-6 * e, v0) - f_vJ(x0 - 1e-6 * e, v0)) / 2e-6 @ w0 for e in np.eye(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5)


class DoubleOp(theano.Op):
    """extending_theano.txt's first op, with a factor to show __props__."""
    __props__ = ("factor",)

    def __init__(self, factor=2):
        self.factor = factor

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return theano.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        x = inputs[0]
        z = output_storage[0]
        z[0] = x * self.factor

    def grad(self, inputs, output_grads):
        return [output_grads[0] * self.factor]


class DoubleOpTyped(theano.Op):
    itypes = [T.dmatrix]
    otypes = [T.dmatrix]

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0] * 2


def test_ops_written_in_python():
    # extending_theano.txt: theano.Op with Theano's perform(node, inputs, output_storage)
    from gencomp.compile.ops import as_op      # theano.compile.ops.as_op

    x = T.matrix("x")
    inp = np.random.RandomState(0).rand(5, 4)
    y = DoubleOp()(x)
    f = function([x], [y, T.grad(y.sum(), x)])
    out, g = f(inp)
    np.testing.assert_array_equal(out, inp * 2)
    np.testing.assert_array_equal(g, np.full_like(inp, 2))
    np.testing.assert_array_equal(function([x], y, device="py")(inp), inp * 2)
    assert DoubleOp() == DoubleOp() and DoubleOp(3) != DoubleOp() and str(DoubleOp(3)) == "DoubleOp{factor=3}"
    assert DoubleOpTyped() != DoubleOpTyped()           # no __props__: each instance is its own op
    xd = T.dmatrix("xd")
    np.testing.assert_array_equal(function([xd], DoubleOpTyped()(xd) + 1)(inp), inp * 2 + 1)
    with pytest.raises(TypeError, match="must be of type"):
        DoubleOpTyped()(T.fmatrix())

    @as_op(itypes=[T.dmatrix, T.dmatrix], otypes=[T.dmatrix])
    def numpy_dot(a, b):
        return np.dot(a, b)

    a, b = T.dmatrices("a", "b")
    np.testing.assert_allclose(function([a, b], numpy_dot(a, b))(inp, inp.T), inp @ inp.T)
    with pytest.raises(NotImplementedError, match="no gradient"):
        T.grad(numpy_dot(a, b).sum(), a)


def test_split_gof_and_logsoftmax_names():
    """T.split (lengths checked against x), theano.gof.Op / Apply, nnet.logsoftmax (Theano 0.9)."""
    x, s = T.dmatrix("x"), T.lvector("s")
    a, b, c = T.split(x, s, 3, axis=1)
    f = function([x, s], [a, b, c, T.grad(a.sum() * 2 + (c ** 2).sum(), x)])
    X = np.arange(12.0).reshape(2, 6)
    got = f(X, np.array([1, 2, 3]))
    for part, want in zip(got[:3], np.split(X, [1, 3], axis=1)):
        np.testing.assert_array_equal(part, want)
    np.testing.assert_array_equal(got[3], np.hstack([np.full((2, 1), 2.0), np.zeros((2, 2)), 2 * X[:, 3:]]))
    with pytest.raises(ValueError):
        f(X, np.array([1, 2, 2]))                # the lengths do not add up to 6
    with pytest.raises(ValueError, match="n_splits"):
        T.split(x, [1, 2], 3)
    assert theano.gof.Op is theano.Op and theano.gof.Apply is theano.Apply
    m = T.dmatrix("m")
    M = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    np.testing.assert_allclose(function([m], T.nnet.logsoftmax(m))(M),
                               M - np.log(np.exp(M).sum(axis=1, keepdims=True)), rtol=1e-12)


def test_theano_module_paths_import():
    """The files Theano programs import names from: nnet's conv, abstract_conv, nnet, sigm and bn,
    tensor.basic / var / sharedvar, compile.sharedvalue, compile.ops, gof."""
    import importlib

    for path, names in [("gencomp.tensor.nnet.conv", ["conv2d"]), ("gencomp.tensor.nnet.abstract_conv",
                        ["conv2d_grad_wrt_inputs", "conv2d_grad_wrt_weights"]),
                        ("gencomp.tensor.nnet.nnet", ["softmax", "categorical_crossentropy"]),
                        ("gencomp.tensor.nnet.sigm", ["sigmoid", "hard_sigmoid", "softplus"]),
                        ("gencomp.tensor.nnet.bn", ["batch_normalization"]),
                        ("gencomp.tensor.basic", ["as_tensor_variable", "dmatrix", "dot", "concatenate"]),
                        ("gencomp.tensor.var", ["TensorVariable", "TensorConstant"]),
                        ("gencomp.tensor.sharedvar", ["TensorSharedVariable"]),
                        ("gencomp.compile.sharedvalue", ["shared", "SharedVariable"]),
                        ("gencomp.compile.ops", ["as_op"]), ("gencomp.gof", ["Op", "Apply", "Variable"])]:
        module = importlib.import_module(path)
        for name in names:
            assert hasattr(module, name), (path, name)
    assert isinstance(theano.shared(np.zeros(2)), theano.tensor.sharedvar.TensorSharedVariable)
    assert isinstance(T.dmatrix("m"), theano.tensor.var.TensorVariable)


def _loop_neibs(x, shape, step, pad):
    rows = []
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for r in range(0, xp.shape[2] - shape[0] + 1, step[0]):
                for q in range(0, xp.shape[3] - shape[1] + 1, step[1]):
                    rows.append(xp[b, c, r:r + shape[0], q:q + shape[1]].ravel())
    return np.array(rows)


@pytest.mark.parametrize("shape,step,mode,pad", [((2, 3), None, "valid", (0, 0)), ((3, 3), (1, 2), "ignore_borders", (0, 0)),
                                                 ((2, 2), (1, 1), "half", (1, 1)), ((3, 2), (2, 1), "full", (2, 1))])
def test_images2neibs_and_neibs2images(shape, step, mode, pad):
    """theano.tensor.nnet.neighbours: patches as rows against window loops, neibs2images inverts
    non-overlapping patches, the gradient by finite differences; bad geometry is a ValueError."""
    from gencomp.gradient import verify_grad
    from gencomp.tensor.nnet.neighbours import images2neibs, neibs2images

    x = T.dtensor4("x")
    X = np.random.default_rng(3).standard_normal((2, 3, 4, 6))
    got = function([x], images2neibs(x, shape, step, mode=mode))(X)
    np.testing.assert_array_equal(got, _loop_neibs(X, shape, step or shape, pad))
    verify_grad(lambda a: T.nnet.images2neibs(a, shape, step, mode=mode), [X[:1, :2]], rng=np.random.default_rng(4))
    if mode == "valid":
        back = function([x], neibs2images(images2neibs(x, shape), shape, x.shape))(X)
        np.testing.assert_array_equal(back, X)
        with pytest.raises(ValueError, match="multiple of the step"):
            function([x], images2neibs(x, (3, 3)))(X)
