"""nnet.conv2d and signal.pool.pool_2d (LeNet's building blocks): forward against direct loops over
windows, gradients against finite differences (verify_grad), and a small LeNet-style training step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gencomp
import gencomp.tensor as T
from gencomp.gradient import verify_grad
from gencomp.tensor.signal.pool import max_pool_2d, pool_2d

RNG = np.random.default_rng(0)
XV, WV = RNG.standard_normal((2, 3, 7, 6)), RNG.standard_normal((4, 3, 3, 2))


def loop_conv(x, w, pad, stride, flip, dilation=(1, 1)):
    """The convolution by its definition: a sum over each (dilated) window."""
    w = w[:, :, ::-1, ::-1] if flip else w
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    (fh, fw), (dh, dw) = w.shape[2:], dilation
    eh, ew = dh * (fh - 1) + 1, dw * (fw - 1) + 1
    oh, ow = (xp.shape[2] - eh) // stride[0] + 1, (xp.shape[3] - ew) // stride[1] + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for b, k, i, j in np.ndindex(out.shape):
        r, c = i * stride[0], j * stride[1]
        out[b, k, i, j] = (xp[b, :, r:r + eh:dh, c:c + ew:dw] * w[k]).sum()
    return out


@pytest.mark.parametrize("border_mode,pad", [("valid", (0, 0)), ("full", (2, 1)), ("half", (1, 1)), ((1, 2), (1, 2))])
@pytest.mark.parametrize("subsample", [(1, 1), (2, 3)])
def test_conv2d_forward_and_gradients(border_mode, pad, subsample):
    x, w = T.tensor4("x"), T.tensor4("w")
    for flip in (True, False):
        f = gencomp.function([x, w], T.nnet.conv2d(x, w, border_mode=border_mode, subsample=subsample,
                                                    filter_flip=flip))
        np.testing.assert_allclose(f(XV, WV), loop_conv(XV, WV, pad, subsample, flip), rtol=1e-12, atol=1e-12)
    verify_grad(lambda a, b: T.nnet.conv2d(a, b, border_mode=border_mode, subsample=subsample), [XV, WV],
                rng=np.random.default_rng(1))


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_conv2d_in_c_matches_window_loops_and_numpy_gradients(data):
    """Random geometry: the generated C (im2col + gemm) against the definition, and its gradients
    against the numpy reference's; both dtypes, strided inputs."""
    draw = lambda s: data.draw(s)                                   # noqa: E731
    dtype = draw(st.sampled_from(["float32", "float64"]))
    fh, fw, dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    border = draw(st.sampled_from(["valid", "full", "half", "pair"]))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2))) if border == "pair" else None
    eh, ew = dh * (fh - 1) + 1, dw * (fw - 1) + 1
    pads = {"valid": (0, 0), "full": (eh - 1, ew - 1), "half": (eh // 2, ew // 2), "pair": pad}[border]
    h = draw(st.integers(max(1, eh - 2 * pads[0]), 9))
    w_ = draw(st.integers(max(1, ew - 2 * pads[1]), 9))
    stride, flip = (draw(st.integers(1, 3)), draw(st.integers(1, 3))), draw(st.booleans())
    n, c, k = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    xv = rng.standard_normal((n, c, 2 * h, w_)).astype(dtype)[:, :, ::2]          # a strided view
    wv = rng.standard_normal((k, c, fh, fw)).astype(dtype)
    x, w = T.tensor4("x", dtype=dtype), T.tensor4("w", dtype=dtype)
    y = T.nnet.conv2d(x, w, border_mode=pad if border == "pair" else border, subsample=stride,
                      filter_flip=flip, filter_dilation=(dh, dw))
    cost = (y * y).sum() * 0.5
    outs = [y, *T.grad(cost, [x, w])]
    f, ref = gencomp.function([x, w], outs), gencomp.function([x, w], outs, device="py")
    assert "conv2d(&cv, 0" in f.source and "conv2d(&cv, 1" in f.source and "conv2d(&cv, 2" in f.source
    tol = 2e-4 if dtype == "float32" else 1e-10
    got, want = f(xv, wv), ref(xv, wv)
    np.testing.assert_allclose(got[0], loop_conv(xv.astype(float), wv.astype(float), pads, stride, flip, (dh, dw)),
                               rtol=tol, atol=tol)
    for g, r in zip(got, want):
        assert g.dtype == dtype and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * max(1.0, float(np.abs(r).max(initial=0))))


def test_conv2d_dilation_gradients_by_finite_differences():
    verify_grad(lambda a, b: T.nnet.conv2d(a, b, border_mode="half", filter_dilation=(2, 1)), [XV, WV],
                rng=np.random.default_rng(4))


def test_conv2d_shape_hints_are_checked():
    x, w = T.tensor4("x"), T.tensor4("w")
    with pytest.raises(ValueError, match="channels"):
        T.nnet.conv2d(x, w, input_shape=(2, 3, 7, 6), filter_shape=(4, 2, 3, 3))
    with pytest.raises(ValueError, match="entries"):
        T.nnet.conv2d(x, w, input_shape=(3, 7, 6))
    f = gencomp.function([x, w], T.nnet.conv2d(x, w, input_shape=(None, 3, None, None), filter_shape=(4, 3, 3, 2)))
    np.testing.assert_allclose(f(XV, WV), loop_conv(XV, WV, (0, 0), (1, 1), True), rtol=1e-12)
    # the hints are promises checked in C at call time (no host step), and at function() time for constants
    assert [kind for kind, _ in f._runner.entry.order] == ["segment"]
    with pytest.raises(ValueError, match=r"specified as \(\?, 3, \?, \?\)"):
        f(XV[:, :2], WV[:, :2])
    with pytest.raises(ValueError, match=r"specified as \(4, 3, 3, 2\)"):
        f(XV, WV[:, :, :2])
    with pytest.raises(ValueError, match="specified as"):
        gencomp.function([w], T.nnet.conv2d(T.constant(XV), w, input_shape=(XV.shape[0] + 1, 3, None, None)))


def test_conv2d_errors():
    x, w = T.tensor4("x"), T.tensor4("w")
    f = gencomp.function([x, w], T.nnet.conv2d(x, w))
    with pytest.raises(ValueError, match="channels"):
        f(XV, WV[:, :2])
    with pytest.raises(ValueError, match="larger than"):
        f(XV[:, :, :2], WV)
    assert "conv2d(&cv" in f.source                     # the checks of the C form
    g = gencomp.function([x, w], T.grad(T.nnet.conv2d(x, w).sum(), x))
    with pytest.raises(ValueError, match="channels"):
        g(XV, WV[:, :2])
    with pytest.raises(TypeError, match="4-d"):
        T.nnet.conv2d(T.dmatrix("m"), w)


def loop_pool(x, ws, stride, pad, ignore_border, mode):
    h, w = x.shape[-2] + 2 * pad[0], x.shape[-1] + 2 * pad[1]
    if ignore_border:
        oh, ow = (h - ws[0]) // stride[0] + 1, (w - ws[1]) // stride[1] + 1
    else:
        # Theano's Pool.out_shape: partial windows count, and every window starts inside the image
        oh, ow = (-(-n // s) if s >= k else max(0, -(-(n - k) // s)) + 1 for n, k, s in zip((h, w), ws, stride))
    out = np.zeros((*x.shape[:-2], oh, ow))
    for idx in np.ndindex(out.shape):
        *lead, i, j = idx
        r0, c0 = i * stride[0] - pad[0], j * stride[1] - pad[1]
        rows = [r for r in range(r0, r0 + ws[0]) if 0 <= r < x.shape[-2]]
        cols = [c for c in range(c0, c0 + ws[1]) if 0 <= c < x.shape[-1]]
        window = x[tuple(lead)][np.ix_(rows, cols)]
        if mode == "max":
            out[idx] = window.max()
        elif mode == "sum":
            out[idx] = window.sum()
        elif mode == "average_inc_pad":
            out[idx] = window.sum() / (ws[0] * ws[1])
        else:
            out[idx] = window.mean()
    return out


CASES = [((2, 2), None, (0, 0), True), ((3, 2), None, (0, 0), False), ((3, 3), (2, 2), (1, 1), True),
         ((2, 3), (1, 2), (0, 0), True), ((4, 4), None, (0, 0), False), ((1, 2), (3, 3), (0, 0), False)]


@pytest.mark.parametrize("mode", ["max", "sum", "average_inc_pad", "average_exc_pad"])
@pytest.mark.parametrize("ws,stride,pad,ignore_border", CASES)
def test_pool_2d_forward_and_gradients(mode, ws, stride, pad, ignore_border):
    x = T.tensor4("x")
    f = gencomp.function([x], pool_2d(x, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode))
    assert "pool2d(&pl" in f.source
    want = loop_pool(XV, ws, stride or ws, pad, ignore_border, mode)
    np.testing.assert_allclose(f(XV), want, rtol=1e-12)
    x32 = T.tensor4("x", dtype="float32")
    y32 = pool_2d(x32, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
    f32 = gencomp.function([x32], [y32, T.grad((y32 ** 2).sum(), x32)])
    ref32 = gencomp.function([x32], [y32, T.grad((y32 ** 2).sum(), x32)], device="py")
    xv32 = XV.astype("float32")[:, :, ::-1]                               # a negative-stride view
    for got, ref in zip(f32(xv32), ref32(xv32)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    verify_grad(lambda a: pool_2d(a, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode),
                [XV], rng=np.random.default_rng(2))


def test_max_pool_gradient_goes_to_the_maximum():
    x = T.tensor4("x")
    g = gencomp.function([x], T.grad(max_pool_2d(x, (2, 2), ignore_border=True).sum(), x))
    xv = np.arange(16.0).reshape(1, 1, 4, 4)
    want = np.zeros_like(xv)
    want[0, 0, 1::2, 1::2] = 1
    np.testing.assert_array_equal(g(xv), want)


def test_lenet_style_training_step():
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((8, 1, 8, 8))
    yv = rng.integers(0, 3, 8)
    w1 = gencomp.shared(rng.standard_normal((4, 1, 3, 3)) * 0.3, name="w1")
    w2 = gencomp.shared(rng.standard_normal((4 * 3 * 3, 3)) * 0.3, name="w2")
    x, y = T.tensor4("x"), T.lvector("y")
    h = pool_2d(T.tanh(T.nnet.conv2d(x, w1)), ws=(2, 2), ignore_border=True)     # 8x8 -> 6x6 -> 3x3
    p = T.nnet.softmax(T.dot(h.flatten(2), w2))
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    train = gencomp.function([x, y], loss, updates=[(v, v - 0.2 * g) for v, g in zip((w1, w2), T.grad(loss, [w1, w2]))])
    losses = [float(train(xv, yv)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_max_pool_gradient_of_nan_and_inf_matches_the_reference():
    """g * (x == max) as the numpy reference: a NaN or inf gradient reaches every element of its
    window (NaN * 0), not only the maximum."""
    from gencomp.tensor.signal.pool import pool_2d

    x, g = T.dtensor4("x"), T.dtensor4("g")
    out = pool_2d(x, ws=(2, 2), ignore_border=True)
    dx = T.grad(None, x, known_grads={out: g})
    f, ref = gencomp.function([x, g], dx), gencomp.function([x, g], dx, device="py")
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    G = np.array([[[[np.nan, 1.0], [np.inf, -2.0]]]])
    np.testing.assert_array_equal(f(X, G), ref(X, G))
    assert np.isnan(f(X, G)[0, 0, 0, 0]) and np.isnan(f(X, G)[0, 0, 2, 0])


def test_pool_output_shape_is_theanos():
    """ignore_border=False counts the windows that start inside the image (Theano's Pool.out_shape):
    5 rows, a window of 1 every 3 rows: rows 0 and 3, not a third window past the end."""
    x = T.dtensor4("x")
    for ws, stride, want in [((1, 1), (3, 3), (2, 2)), ((2, 2), (3, 3), (2, 2)), ((3, 3), (2, 2), (2, 2)),
                             ((4, 4), (1, 1), (2, 2)), ((2, 3), (2, 3), (3, 2))]:
        y = pool_2d(x, ws=ws, stride=stride, ignore_border=False)
        X = np.ones((1, 1, 5, 5))
        assert gencomp.function([x], y)(X).shape[2:] == want, (ws, stride)
        assert gencomp.function([x], y, device="py")(X).shape[2:] == want
        assert tuple(gencomp.function([x], y.shape)(X))[2:] == want


def test_max_pool_of_nan_and_inf_matches_the_reference():
    """A NaN in a window is its maximum (as numpy's max), an inf wins over any number."""
    x = T.dtensor4("x")
    y = pool_2d(x, ws=(2, 2), ignore_border=False, stride=(1, 2))
    f, ref = gencomp.function([x], y), gencomp.function([x], y, device="py")
    X = np.arange(20.0).reshape(1, 1, 4, 5)
    X[0, 0, 0, 1], X[0, 0, 2, 4], X[0, 0, 3, 0] = np.nan, np.inf, -np.inf
    np.testing.assert_array_equal(f(X), ref(X))
    assert np.isnan(f(X)[0, 0, 0, 0]) and np.isinf(f(X)[0, 0, 2, 2])


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_pool_2d_matches_the_window_loops(data):
    """Random windows, strides, paddings, borders and modes, float32 and float64, strided inputs:
    forward against the window loops, the gradient against the reference evaluator."""
    draw = data.draw
    dtype = draw(st.sampled_from(["float32", "float64"]))
    mode = draw(st.sampled_from(["max", "sum", "average_inc_pad", "average_exc_pad"]))
    ws = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ignore_border = draw(st.booleans())
    pad = (draw(st.integers(0, ws[0] - 1)), draw(st.integers(0, ws[1] - 1))) if ignore_border else (0, 0)
    h, w = draw(st.integers(ws[0], 8)), draw(st.integers(ws[1], 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    xv = rng.standard_normal((2, 3, h, 2 * w)).astype(dtype)[..., ::2]          # a strided view
    x = T.tensor4("x", dtype=dtype)
    y = pool_2d(x, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
    f = gencomp.function([x], [y, T.grad((y ** 2).sum(), x)])
    ref = gencomp.function([x], [y, T.grad((y ** 2).sum(), x)], device="py")
    tol = 1e-5 if dtype == "float32" else 1e-12
    got = f(xv)
    np.testing.assert_allclose(got[0], loop_pool(xv.astype("float64"), ws, stride, pad, ignore_border, mode),
                               rtol=tol, atol=tol)
    for g, r in zip(got, ref(xv)):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


@pytest.mark.parametrize("border,sub", [("valid", (1, 1)), ("half", (2, 1)), ((1, 2), (2, 2)), ("full", (1, 2))])
def test_conv2d_gradients_as_functions_and_the_transposed_convolution(border, sub):
    """abstract_conv.conv2d_grad_wrt_inputs / _wrt_weights and nnet.conv2d_transpose equal T.grad of
    conv2d (and the reference evaluator); None entries of the shapes come from the other operands."""
    from gencomp.tensor.nnet import abstract_conv

    rng = np.random.default_rng(5)
    x, w, g = T.dtensor4("x"), T.dtensor4("w"), T.dtensor4("g")
    X, W = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    y = T.nnet.conv2d(x, w, border_mode=border, subsample=sub)
    G = rng.standard_normal(gencomp.function([x, w], y)(X, W).shape)
    want = gencomp.function([x, w, g], T.grad(None, [x, w], known_grads={y: g}))(X, W, G)
    outs = [abstract_conv.conv2d_grad_wrt_inputs(g, w, (None, None, 7, 6), border_mode=border, subsample=sub),
            abstract_conv.conv2d_grad_wrt_weights(x, g, (None, None, 3, 2), border_mode=border, subsample=sub),
            T.nnet.conv2d_transpose(g, w, (2, 3, 7, 6), border_mode=border, input_dilation=sub)]
    for f in (gencomp.function([x, w, g], outs, on_unused_input="ignore"),
              gencomp.function([x, w, g], outs, on_unused_input="ignore", device="py")):
        for got, ref in zip(f(X, W, G), [want[0], want[1], want[0]]):
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="input_shape"):
        abstract_conv.conv2d_grad_wrt_inputs(g, w, (None, None, None, 6))


def test_max_pool_2d_same_size():
    """Theano's max_pool_2d_same_size: each patch's maximum kept in place, the rest 0 (a tie keeps
    every maximum, as Theano's MaxPoolGrad)."""
    from gencomp.tensor.signal.pool import max_pool_2d_same_size

    x = T.dtensor4("x")
    X = np.array([[[[1., 5, 2, 0], [3, 4, 8, 1], [9, 0, 1, 1], [9, 2, 1, 7]]]])
    want = np.array([[[[0., 5, 0, 0], [0, 0, 8, 0], [9, 0, 0, 0], [9, 0, 0, 7]]]])
    f = gencomp.function([x], max_pool_2d_same_size(x, (2, 2)))
    np.testing.assert_array_equal(f(X), want)
    Y = np.random.default_rng(6).standard_normal((2, 3, 6, 4))
    np.testing.assert_array_equal(f(Y), gencomp.function([x], max_pool_2d_same_size(x, (2, 2)), device="py")(Y))
