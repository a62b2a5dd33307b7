"""Theano's tensor-level API as Theano users write it: MRG_RandomStreams, truth values, upcast and
reduction dtypes, softmax of a vector, TensorType constructors, grad options / Rop / Lop / join /
specify_shape, and shape inference; every value checked against numpy or finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gencomp as theano
import gencomp.tensor as T
from gencomp.gradient import DisconnectedInputError, DisconnectedType

RNG = np.random.default_rng(1234)


# ---- 1. theano.sandbox.rng_mrg.MRG_RandomStreams -------------------------------------------------

def test_mrg_random_streams_imports_from_theanos_path():
    import gencomp.sandbox.rng_mrg
    from gencomp.sandbox.rng_mrg import MRG_RandomStreams

    assert gencomp.sandbox.rng_mrg.MRG_RandomStreams is MRG_RandomStreams
    assert issubclass(MRG_RandomStreams, T.shared_randomstreams.RandomStreams)


def test_mrg_uniform_normal_binomial_have_their_sizes_dtypes_and_moments():
    from gencomp.sandbox.rng_mrg import MRG_RandomStreams

    srng = MRG_RandomStreams(seed=234)
    n = T.iscalar("n")
    u = srng.uniform(size=(n, 100), low=-1.0, high=3.0, dtype="float32", nstreams=8)
    g = srng.normal((n, 100), avg=2.0, std=0.5)
    b = srng.binomial(size=(n, 100), p=0.3, dtype="int8")
    f = theano.function([n], [u, g, b])
    uv, gv, bv = f(50)
    assert uv.shape == gv.shape == bv.shape == (50, 100)
    assert (uv.dtype, gv.dtype, bv.dtype) == (np.float32, np.float64, np.int8)
    assert uv.min() >= -1 and uv.max() < 3 and abs(uv.mean() - 1.0) < 0.05
    assert abs(gv.mean() - 2.0) < 0.02 and abs(gv.std() - 0.5) < 0.02
    assert set(np.unique(bv)) <= {0, 1} and abs(bv.mean() - 0.3) < 0.02
    assert not np.array_equal(f(50)[0], uv)                  # every call draws anew


def test_mrg_multinomial_draws_one_hot_rows_with_the_given_frequencies():
    from gencomp.sandbox.rng_mrg import MRG_RandomStreams

    srng = MRG_RandomStreams(seed=7)
    p = T.dmatrix("p")
    f = theano.function([p], srng.multinomial(pvals=p, dtype="float64"))
    pvals = np.tile([[0.1, 0.6, 0.3]], (20000, 1))
    draws = f(pvals)
    assert draws.shape == pvals.shape and draws.dtype == np.float64
    np.testing.assert_array_equal(draws.sum(axis=1), 1)
    np.testing.assert_allclose(draws.mean(axis=0), [0.1, 0.6, 0.3], atol=0.015)
    counts = theano.function([p], srng.multinomial(pvals=p, n=3))(pvals)      # Theano 1.0: n draws per row
    assert counts.dtype == np.int64 and np.all(counts.sum(axis=1) == 3)
    np.testing.assert_allclose(counts.mean(axis=0), [0.3, 1.8, 0.9], atol=0.05)
    with pytest.raises(ValueError, match="size"):
        srng.multinomial(size=(3,), pvals=p)


# ---- 2. truth values -----------------------------------------------------------------------------

def test_variables_are_truthy_except_comparisons():
    W = theano.shared(np.zeros((2, 2)), name="W")
    x, y = T.dvectors("x", "y")

    def layer(inp, W=None):
        if not W:                    # Theano's default-argument idiom
            W = theano.shared(np.ones((2, 2)))
        return T.dot(inp, W)

    assert bool(W) and bool(x) and bool(x + y) and bool(T.constant(0.0))
    np.testing.assert_array_equal(theano.function([x], layer(x, W))([1.0, 2.0]), [0.0, 0.0])
    for cond in (x < y, x <= y, x > y, x >= y, T.eq(x, y), T.neq(x, y), T.lt(x, 1)):
        with pytest.raises(TypeError, match="Variables do not support boolean operations"):
            bool(cond)
    with pytest.raises(TypeError, match="boolean operations"):
        x < y < x                    # noqa: B015  (Python's chained comparison calls bool)


# ---- 3. upcast, and dtype / acc_dtype of sum, prod, mean -----------------------------------------

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64", "complex64", "complex128"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=4))
def test_upcast_is_numpys_promotion(dtypes):
    from gencomp.scalar import upcast

    want = np.result_type(*[np.zeros((), d) for d in dtypes]).name
    assert upcast(*dtypes) == want


def test_upcast_examples_and_floatx():
    upcast = theano.scalar.upcast
    assert upcast("int8", "float32") == "float32"
    assert upcast("int32", "float32") == "float64"
    assert upcast("int8", "uint8") == "int16"
    with theano.config.change(floatX="float32"):
        assert upcast("floatX", "int8") == "float32"


INT8 = np.array([[100, 100, -7], [120, 3, 5]], dtype=np.int8)


@pytest.mark.parametrize("kind", ["sum", "prod"])
def test_sum_and_prod_default_dtypes_are_theanos(kind):
    for dtype, want in [("int8", "int64"), ("int32", "int64"), ("uint8", "uint64"), ("bool", "int64"),
                        ("float32", "float32"), ("float64", "float64")]:
        x = T.matrix("x", dtype=dtype)
        assert getattr(T, kind)(x).dtype == want
        assert getattr(x, kind)(axis=0).dtype == want


@pytest.mark.parametrize("kind", ["sum", "prod"])
def test_sum_and_prod_with_dtype_and_acc_dtype_match_numpy(kind):
    x = T.bmatrix("x")
    ref = getattr(np, kind)
    outs = [getattr(T, kind)(x), getattr(T, kind)(x, axis=0, dtype="int8"),
            getattr(x, kind)(axis=1, dtype="float32"), getattr(T, kind)(x, axis=1, acc_dtype="float64"),
            getattr(x, kind)(axis=0, dtype="int16", acc_dtype="int32"),
            getattr(T, kind)(x, axis=1, keepdims=True, acc_dtype="int16")]
    want = [ref(INT8), ref(INT8, axis=0, dtype="int8"), ref(INT8, axis=1, dtype="float32"),
            ref(INT8.astype(np.float64), axis=1).astype(np.int64),
            ref(INT8.astype(np.int32), axis=0).astype(np.int16),
            ref(INT8.astype(np.int16), axis=1, keepdims=True).astype(np.int64)]
    got = theano.function([x], outs)(INT8)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_float32_accumulated_in_float64_keeps_float32_and_gains_precision():
    x = T.fvector("x")
    xv = np.full(10 ** 5, 0.1, dtype=np.float32)
    plain, wide = theano.function([x], [x.sum(), x.sum(acc_dtype="float64")])(xv)
    assert plain.dtype == wide.dtype == np.float32
    exact = np.float32(xv.astype(np.float64).sum())
    assert wide == exact


def test_acc_dtype_that_loses_precision_raises():
    with pytest.raises(TypeError, match="precision would be lost"):
        T.sum(T.dvector("x"), acc_dtype="float32")
    with pytest.raises(TypeError, match="precision would be lost"):
        T.dmatrix("x").prod(acc_dtype="int64")


def test_mean_with_dtype_and_acc_dtype_matches_theanos_definition():
    i, f = T.ivector("i"), T.fvector("f")
    iv = np.array([1, 2, 4, 7], dtype=np.int32)
    fv = np.array([0.5, 1.25, 3.0], dtype=np.float32)
    outs = [T.mean(i), i.mean(dtype="float32"), T.mean(f, acc_dtype="float64"), f.mean(dtype="float64"),
            T.mean(i, acc_dtype="float64")]
    got = theano.function([i, f], outs)(iv, fv)
    want = [np.mean(iv), np.float32(iv.sum()) / np.float32(4), np.float32(fv.astype(np.float64).sum() / 3),
            np.mean(fv, dtype=np.float64), np.mean(iv.astype(np.float64))]
    for g, w in zip(got, want):
        assert g.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-7)


# ---- 4. softmax of a vector ----------------------------------------------------------------------

def _np_softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_of_a_vector_is_a_row_and_of_a_matrix_works_on_the_last_axis():
    v, m = T.dvector("v"), T.dmatrix("m")
    s = T.nnet.softmax(v)
    assert s.ndim == 2 and s.broadcastable == (True, False)
    vv, mv = RNG.standard_normal(5), RNG.standard_normal((3, 4))
    got_v, got_log, got_m = theano.function([v, m], [s, T.nnet.log_softmax(v), T.nnet.softmax(m)])(vv, mv)
    got_first = theano.function([v], s[0, :])(vv)
    np.testing.assert_allclose(got_v, _np_softmax(vv)[None, :], rtol=1e-13)
    np.testing.assert_allclose(got_first, _np_softmax(vv), rtol=1e-13)
    np.testing.assert_allclose(got_log, np.log(_np_softmax(vv))[None, :], rtol=1e-12)
    np.testing.assert_allclose(got_m, _np_softmax(mv), rtol=1e-13)


def test_softmax_rows_of_a_scan_index_like_theano_programs():
    h = T.dmatrix("h")
    out, _ = theano.scan(lambda row: T.nnet.softmax(row), sequences=h)
    hv = RNG.standard_normal((4, 3))
    got = theano.function([h], out[:, 0, :])(hv)
    np.testing.assert_allclose(got, _np_softmax(hv), rtol=1e-13)


# ---- 5. dtype-prefixed constructors are TensorTypes ------------------------------------------------

def test_prefixed_constructors_are_tensor_types():
    x = T.dmatrix("x")
    assert isinstance(T.dmatrix, T.TensorType) and x.type == T.dmatrix and x.name == "x"
    assert T.dmatrix().type == T.dmatrix and T.dmatrix(name="w").name == "w"
    for name, dtype, bcast in [("iscalar", "int32", ()), ("fvector", "float32", (False,)),
                               ("brow", "int8", (True, False)), ("lcol", "int64", (False, True)),
                               ("ztensor3", "complex128", (False,) * 3), ("wtensor4", "int16", (False,) * 4)]:
        t = getattr(T, name)
        assert t == T.TensorType(dtype, bcast) and t(name).dtype == dtype
    a, b = T.dmatrices("a", "b")
    assert a.type == b.type == T.dmatrix and (a.name, b.name) == ("a", "b")
    assert [v.type for v in T.iscalars(3)] == [T.iscalar] * 3


def test_plain_constructors_stay_functions_reading_floatx():
    assert callable(T.matrix) and not isinstance(T.matrix, T.TensorType)
    with theano.config.change(floatX="float32"):
        assert T.matrix("m").type == T.fmatrix and T.scalars("a", "b")[1].type == T.fscalar
    assert T.matrix("m").type == T.dmatrix and T.vector(dtype="int32").type == T.ivector


# ---- 6. grad options, Rop, Lop, join, specify_shape ----------------------------------------------

def test_grad_consider_constant_stops_the_gradient_at_an_expression():
    x = T.dvector("x")
    y = x ** 2
    cost = T.sum(x * y)
    g_full, g_const = T.grad(cost, x), T.grad(cost, x, consider_constant=[y])
    xv = np.array([0.5, -2.0, 3.0])
    full, const = theano.function([x], [g_full, g_const])(xv)
    np.testing.assert_allclose(full, 3 * xv ** 2, rtol=1e-14)
    np.testing.assert_allclose(const, xv ** 2, rtol=1e-14)


def test_grad_known_grads_starts_from_given_gradients():
    x = T.dvector("x")
    W = T.dmatrix("W")
    h = T.tanh(T.dot(W, x))
    gh = T.dvector("gh")
    gx = T.grad(None, x, known_grads={h: gh})
    gW_both = T.grad(T.sum(h), W, known_grads={h: gh})
    Wv, xv, ghv = RNG.standard_normal((3, 2)), RNG.standard_normal(2), RNG.standard_normal(3)
    dh = 1 - np.tanh(Wv @ xv) ** 2
    got_x, got_W = theano.function([W, x, gh], [gx, gW_both])(Wv, xv, ghv)
    np.testing.assert_allclose(got_x, Wv.T @ (ghv * dh), rtol=1e-12)
    np.testing.assert_allclose(got_W, np.outer((ghv + 1) * dh, xv), rtol=1e-12)


def test_grad_disconnected_inputs_and_return_disconnected():
    x, z = T.dvectors("x", "z")
    cost = T.sum(x ** 2)
    with pytest.raises(DisconnectedInputError):
        T.grad(cost, z)
    with pytest.warns(UserWarning, match="does not depend on z"):
        gz = T.grad(cost, z, disconnected_inputs="warn")
    np.testing.assert_array_equal(theano.function([z], gz)([1.0, 2.0]), [0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gx, gz = T.grad(cost, [x, z], disconnected_inputs="ignore")
    assert T.grad(cost, z, disconnected_inputs="ignore", return_disconnected="None") is None
    d = T.grad(cost, [x, z], disconnected_inputs="ignore", return_disconnected="Disconnected")[1]
    assert isinstance(d.type, DisconnectedType)
    with pytest.raises(ValueError, match="disconnected_inputs"):
        T.grad(cost, x, disconnected_inputs="loud")


def _numeric_jacobian(fn, point, eps=1e-6):
    cols = []
    for k in range(point.size):
        step = np.zeros_like(point)
        step.flat[k] = eps
        cols.append(((fn(point + step) - fn(point - step)) / (2 * eps)).ravel())
    return np.stack(cols, axis=1)            # d fn(point).ravel() / d point.ravel()


def test_rop_and_lop_match_finite_difference_jacobians():
    W, V = T.dmatrices("W", "V")
    x = T.dvector("x")
    u = T.dvector("u")
    y = T.tanh(T.dot(W, x)) * T.sum(W)
    Wv, Vv, xv, uv = (RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4)), RNG.standard_normal(4),
                      RNG.standard_normal(3))
    jac = _numeric_jacobian(lambda w: np.tanh(w @ xv) * w.sum(), Wv)      # (3, 12)
    rop, lop = theano.function([W, V, x, u], [theano.Rop(y, W, V), T.Lop(y, W, u)])(Wv, Vv, xv, uv)
    np.testing.assert_allclose(rop, jac @ Vv.ravel(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(lop, (uv @ jac).reshape(3, 4), rtol=1e-6, atol=1e-8)


def test_rop_with_lists_follows_theanos_forms():
    x, v = T.dvectors("x", "v")
    A = T.dmatrix("A")
    f1, f2 = T.exp(x), T.dot(A, x)
    r1, r2 = T.Rop([f1, f2], [x], [v])
    xv, vv, Av = RNG.standard_normal(3), RNG.standard_normal(3), RNG.standard_normal((2, 3))
    g1, g2 = theano.function([x, v, A], [r1, r2])(xv, vv, Av)
    np.testing.assert_allclose(g1, np.exp(xv) * vv, rtol=1e-13)
    np.testing.assert_allclose(g2, Av @ vv, rtol=1e-13)
    assert T.Rop(T.sum(v), x, v, disconnected_outputs="ignore") is not None
    with pytest.raises(DisconnectedInputError):
        T.Rop(T.exp(v), x, v)


def test_specify_shape_and_checked_lengths_pickle():
    import pickle

    from gencomp.tensor.shape import CheckedLength

    x, y = T.dmatrices("x", "y")
    expr = pickle.loads(pickle.dumps(T.specify_shape(x, (2, None)) + 1))
    assert expr.owner.inputs[0].owner.op.given == (True, False)
    op = pickle.loads(pickle.dumps(CheckedLength([(((0, 1), (1, 1)), False)])))
    np.testing.assert_array_equal(theano.function([x, y], op(x, y))(np.ones((2, 3)), np.ones((4, 3))), 3)


def test_join_takes_the_axis_first():
    a, b = T.dmatrices("a", "b")
    av, bv = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 3))
    got0, got1 = theano.function([a, b], [T.join(0, a, b), T.join(1, a.T, b.T)])(av, bv)
    np.testing.assert_array_equal(got0, np.concatenate([av, bv], axis=0))
    np.testing.assert_array_equal(got1, np.concatenate([av.T, bv.T], axis=1))


def test_specify_shape_checks_at_run_time():
    x = T.dmatrix("x")
    n = T.lscalar("n")
    f = theano.function([x, n], T.specify_shape(x, (n, 3)) * 2)
    xv = np.ones((2, 3))
    np.testing.assert_array_equal(f(xv, 2), xv * 2)
    with pytest.raises(ValueError, match=r"specify_shape: x has shape \(2, 3\).*\(4, 3\)"):
        f(xv, 4)
    g = theano.function([x], T.specify_shape(x, (None, 2)))
    with pytest.raises(ValueError, match="specified as"):
        g(xv)
    out = g(np.ones((5, 2)))
    assert out.shape == (5, 2)
    np.testing.assert_allclose(theano.function([x], T.grad(T.sum(T.specify_shape(x, x.shape) ** 2), x))(xv),
                               2 * xv)


# ---- 7. shape inference --------------------------------------------------------------------------

def test_shape_of_a_product_reads_only_the_input_shape():
    x = T.dmatrix("x")
    f = theano.function([x], (x * x).shape)
    text = f.dprint()
    assert "mul" not in text and "Shape" in text
    np.testing.assert_array_equal(f(np.ones((2, 5))), [2, 5])


@pytest.mark.parametrize("build,absent,want", [
    (lambda x, y, W, v: T.dot(T.tanh(x), W).shape, ("tanh", "Dot", "Gemm"), [2, 5]),
    (lambda x, y, W, v: (x.sum(axis=0) + v).shape, ("Reduce", "add"), [3]),
    (lambda x, y, W, v: T.exp(x).dimshuffle(1, "x", 0).shape, ("exp", "DimShuffle{1,x,0}"), [3, 1, 2]),
    (lambda x, y, W, v: T.nnet.softmax(T.exp(x)).shape[1] * 3, ("Softmax", "exp"), 9),
    (lambda x, y, W, v: T.argmax(T.log(x), axis=0).shape, ("log", "ArgReduce"), [3]),
    (lambda x, y, W, v: (x + y).shape, ("add",), [2, 3]),
])
def test_shapes_are_inferred_through_ops(build, absent, want):
    x, y, W = T.dmatrices("x", "y", "W")
    v = T.dvector("v")
    f = theano.function([x, y, W, v], build(x, y, W, v), on_unused_input="ignore")
    text = f.dprint()
    for op in absent:
        assert op not in text, text
    got = f(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 5)), np.ones(3))
    np.testing.assert_array_equal(got, want)


def test_inferred_shapes_still_report_mismatches():
    x, y, W = T.dmatrices("x", "y", "W")
    f = theano.function([x, y], (x + y).shape)
    with pytest.raises(ValueError, match="shape mismatch"):
        f(np.ones((2, 3)), np.ones((2, 4)))
    g = theano.function([x, W], T.dot(x, W).shape)
    with pytest.raises(ValueError, match="W has length 4 in dimension 0"):
        g(np.ones((2, 3)), np.ones((4, 4)))
    r = T.drow("r")
    h = theano.function([x, r], (x * r).shape)               # a broadcastable row stretches
    np.testing.assert_array_equal(h(np.ones((4, 3)), np.ones((1, 3))), [4, 3])
    assert [kind for kind, _ in g._runner.entry.order] == ["segment"]     # the checks run in C


def test_inferred_shape_reads_a_result_computed_anyway_in_c():
    x, y = T.dmatrices("x", "y")
    s = x + y
    f = theano.function([x, y], [s * 2, T.cast(s.shape[0], "float64")])   # s runs anyway: no host check
    assert "CheckedLength" not in f.dprint()
    got = f(np.ones((2, 3)), np.ones((2, 3)))
    np.testing.assert_array_equal(got[0], np.full((2, 3), 4.0))
    assert got[1] == 2


STEPS = ["exp", "transpose", "add_row", "dot", "sum_keep", "mul_self"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(STEPS), min_size=1, max_size=5))
def test_inferred_shapes_match_the_reference_evaluator(steps):
    """Random chains of elementwise ops, transposes, keepdims reductions and dots: the shape computed
    without running them is the shape numpy's reference evaluator gives."""
    x = T.dmatrix("x")
    out = x
    for step in steps:
        if step == "exp":
            out = T.exp(out)
        elif step == "transpose":
            out = out.T
        elif step == "add_row":
            out = out + out.sum(axis=0, keepdims=True)
        elif step == "dot":
            out = T.dot(out, T.ones_like(out.T))
        elif step == "sum_keep":
            out = out.sum(axis=1, keepdims=True)
        else:
            out = out * out
    xv = RNG.standard_normal((2, 3))
    want = theano.function([x], out, device="py")(xv).shape
    f = theano.function([x], out.shape)
    np.testing.assert_array_equal(f(xv), want)
    assert "exp" not in f.dprint() and "Dot" not in f.dprint()


def test_older_theano_import_paths_of_the_tutorials():
    """convolutional_mlp.py of the deep-learning tutorials, before and after Theano 0.9."""
    from gencomp.compile.mode import DebugMode, Mode  # noqa: F401
    from gencomp.tensor.nnet import conv
    from gencomp.tensor.signal import downsample, pool

    x, w = T.tensor4("x"), T.tensor4("w")
    old = downsample.max_pool_2d(conv.conv2d(input=x, filters=w, filter_shape=(2, 1, 3, 3),
                                             image_shape=(1, 1, 6, 6)), ds=(2, 2), ignore_border=True)
    new = pool.pool_2d(T.nnet.conv2d(input=x, filters=w, filter_shape=(2, 1, 3, 3), input_shape=(1, 1, 6, 6)),
                       ws=(2, 2), ignore_border=True)
    f = theano.function([x, w], [old, new])
    xv, wv = np.random.default_rng(0).standard_normal((1, 1, 6, 6)), np.random.default_rng(1).standard_normal((2, 1, 3, 3))
    a, b = f(xv, wv)
    want = np.array([[[[max(sum(xv[0, 0, r + i, c + j] * wv[k, 0, 2 - i, 2 - j] for i in range(3) for j in range(3))
                            for r in range(2 * p, 2 * p + 2) for c in range(2 * q, 2 * q + 2))
                        for q in range(2)] for p in range(2)] for k in range(2)]])
    np.testing.assert_allclose(a, want, rtol=1e-12)
    np.testing.assert_array_equal(a, b)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 5), shift=st.integers(-7, 7), reps=st.integers(1, 3),
       axis=st.sampled_from([0, 1, -1, None]))
def test_extra_ops_against_numpy(rows, cols, shift, reps, axis):
    x, v, s = T.dmatrix("x"), T.dvector("v"), T.lscalar("s")
    outs = [T.roll(x, s, axis), T.tile(x, (reps, 1)), T.tile(v, reps), T.repeat(x, reps, axis=axis),
            T.diag(v), T.diag(x), T.trace(x), T.diff(x, 1, -1 if axis is None else axis),
            T.extra_ops.cumsum(x, axis)]
    f = theano.function([x, v, s], outs)
    X = np.random.default_rng(rows * 10 + cols).standard_normal((rows, cols))
    V = X[0]
    want = [np.roll(X, shift, axis), np.tile(X, (reps, 1)), np.tile(V, reps), np.repeat(X, reps, axis=axis),
            np.diag(V), np.diag(X), np.trace(X), np.diff(X, 1, -1 if axis is None else axis), np.cumsum(X, axis)]
    for got, w in zip(f(X, V, shift), want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)


def test_extra_ops_gradients_and_one_hot():
    from gencomp.gradient import verify_grad
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 4))
    for fn in (lambda a: T.roll(a, 3, 1) * T.arange(4), lambda a: T.tile(a, (2, 1)) ** 2,
               lambda a: T.repeat(a, 2, axis=1) ** 3, lambda a: T.trace(a) * T.diag(a),
               lambda a: T.diff(a) ** 2):
        verify_grad(fn, [X], rng=np.random.default_rng(6))
    y = T.lvector("y")
    hot = theano.function([y], T.extra_ops.to_one_hot(y, 5))([4, 0, 2])
    np.testing.assert_array_equal(hot, np.eye(5)[[4, 0, 2]])
    with pytest.raises(TypeError):
        T.repeat(T.dvector("v"), T.lscalar("n"))
