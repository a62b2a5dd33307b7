"""gencomp.sparse (Theano's theano.sparse): values checked against scipy.sparse and numpy, gradients
against dense formulas and finite differences over the stored entries."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sp = pytest.importorskip("scipy.sparse")

import gencomp  # noqa: E402
import gencomp.tensor as T  # noqa: E402
from gencomp import function  # noqa: E402
from gencomp import sparse as S  # noqa: E402


def rand_sparse(shape, density=0.4, fmt="csc", seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal(shape) * (rng.random(shape) < density)
    dense[0, 0] = 1.5                          # never empty
    return getattr(sp, f"{fmt}_matrix")(dense.astype(dtype))


def pattern(m):
    return (m.toarray() != 0).astype(float)


def numeric_grad(f, v, eps=1e-6):
    g = np.zeros_like(v)
    for i in range(v.size):
        d = np.zeros_like(v)
        d.flat[i] = eps
        g.flat[i] = (f(v + d) - f(v - d)) / (2 * eps)
    return g


def check_data_grad(build, m, *others):
    """d cost / d (stored values of m) from T.grad through CSM, against finite differences.

    `build(x, *other_vars)` makes a scalar cost from sparse x (of m's format) and dense others."""
    data, ind, ptr, shape = T.dvector("data"), T.ivector("ind"), T.ivector("ptr"), T.ivector("shape")
    x = S.CSC(data, ind, ptr, shape) if m.format == "csc" else S.CSR(data, ind, ptr, shape)
    other_vars = [T.dmatrix(f"o{k}") if np.ndim(o) == 2 else T.dvector(f"o{k}") if np.ndim(o) == 1
                  else T.dscalar(f"o{k}") for k, o in enumerate(others)]
    cost = build(x, *other_vars)
    f = function([data, ind, ptr, shape, *other_vars], [cost, T.grad(cost, data)])
    args = (m.indices.astype(np.int32), m.indptr.astype(np.int32), np.array(m.shape, np.int32), *others)
    analytic = f(m.data, *args)[1]
    np.testing.assert_allclose(analytic, numeric_grad(lambda d: float(f(d, *args)[0]), m.data.copy()),
                               rtol=1e-6, atol=1e-8)


# ---- types and inputs ---------------------------------------------------------------------------

def test_types_and_input_conversion():
    x = S.csc_matrix("x")
    assert x.type == S.SparseType("csc", gencomp.config.floatX) and x.format == "csc" and x.ndim == 2
    assert S.csr_matrix("y", dtype="float32").dtype == "float32"
    assert S.SparseType("csr", "float32") != S.SparseType("csc", "float32")
    assert pickle.loads(pickle.dumps(x.type)) == x.type
    f = function([x], S.dense_from_sparse(x))
    m = rand_sparse((3, 4), fmt="csr")                     # another format converts, as in Theano
    np.testing.assert_array_equal(f(m), m.toarray())
    np.testing.assert_array_equal(f(sp.csc_matrix(np.eye(2, dtype=np.int32))), np.eye(2))
    with pytest.raises(TypeError, match="expects a scipy.sparse csc_matrix"):
        f("not a matrix")
    with pytest.raises(TypeError, match="dtype float64.*complex128"):
        f(sp.csc_matrix(np.eye(2, dtype=np.complex128)))
    with pytest.raises(TypeError, match="sparse variable"):
        S.dense_from_sparse(T.dmatrix())
    with pytest.raises(TypeError, match="format"):
        S.SparseType("coo")
    f32 = S.csr_matrix("f", "float32")                      # Python numbers are weak, as for tensors
    assert S.structured_mul(f32, 2.5).dtype == "float32" and (f32 * T.dscalar()).dtype == "float64"


def test_import_without_scipy_says_how_to_install():
    code = ("import sys; sys.modules['scipy'] = None; sys.modules['scipy.sparse'] = None\n"
            "import gencomp, gencomp.tensor\n"
            "try:\n    import gencomp.sparse\nexcept ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'gencomp[sparse]'" in out.stdout


def test_theano_sparse_tutorials_run_unchanged():
    # doc/tutorial/sparse.txt, with `theano` -> gencomp (outputs read through dense_from_sparse)
    sparse = S
    x = sparse.csc_matrix(name="x", dtype="int64")
    data, indices, indptr, shape = sparse.csm_properties(x)
    y = sparse.CSR(data, indices, indptr, shape)
    f = function([x], sparse.dense_from_sparse(y))
    a = sp.csc_matrix(np.asarray([[0, 1, 1], [0, 0, 0], [1, 0, 0]]))
    np.testing.assert_array_equal(f(a), [[0, 0, 1], [1, 0, 0], [1, 0, 0]])
    x = sparse.csc_matrix(name="x", dtype="float32")
    y = sparse.structured_add(x, 2)
    assert y.dtype == "float32"
    f = function([x], sparse.dense_from_sparse(y))
    a = sp.csc_matrix(np.asarray([[0, 0, -1], [0, -2, 1], [3, 0, 0]], dtype="float32"))
    np.testing.assert_array_equal(f(a), [[0.0, 0.0, 1.0], [0.0, 0.0, 3.0], [5.0, 0.0, 0.0]])
    x, y = S.csr_matrix("x"), T.matrix("y")                    # the older tutorial: a coo input
    f = function([x, y], S.dot(x, y))
    a = sp.coo_matrix(([1] * 4, (range(4), [0, 1, 1, 0])), dtype=np.float32)
    b = np.array([[10, 11], [12, 13]], dtype=np.float32)
    np.testing.assert_array_equal(f(a, b), a.toarray() @ b)
    assert "float32" in sparse.all_dtypes


# ---- construction -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_csm_properties_and_build(fmt):
    m = rand_sparse((4, 5), fmt=fmt, seed=1)
    x = S.matrix(fmt, "x")
    data, ind, ptr, shape = S.csm_properties(x)
    rebuilt = (S.CSC if fmt == "csc" else S.CSR)(data * 2, ind, ptr, shape)
    f = function([x], [data, ind, ptr, shape, S.dense_from_sparse(rebuilt)])
    d, i, p, s, dense = f(m)
    np.testing.assert_array_equal(d, m.data)
    np.testing.assert_array_equal(i, m.indices)
    np.testing.assert_array_equal(p, m.indptr)
    np.testing.assert_array_equal(s, m.shape)
    assert i.dtype == p.dtype == s.dtype == np.int32
    np.testing.assert_array_equal(dense, 2 * m.toarray())


@pytest.mark.parametrize("device", ["cpu", "py"])
def test_dense_sparse_round_trip_and_transpose(device):
    a = T.dmatrix("a")
    v = np.array([[0.0, 2.0, 0.0], [3.0, 0.0, -1.0]])
    f = function([a], [S.dense_from_sparse(S.csc_from_dense(a)), S.dense_from_sparse(S.csr_from_dense(a).T),
                       S.csm_data(S.csr_from_dense(a))], device=device)
    back, transposed, stored = f(v)
    np.testing.assert_array_equal(back, v)
    np.testing.assert_array_equal(transposed, v.T)
    np.testing.assert_array_equal(stored, sp.csr_matrix(v).data)


# ---- products -----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["cpu", "py"])
def test_products_match_scipy(device):
    m, n = rand_sparse((4, 3), seed=2), rand_sparse((3, 5), fmt="csr", seed=3)
    w = np.random.default_rng(4).standard_normal((3, 2))
    u = np.random.default_rng(5).standard_normal((2, 4))
    x, y, W, U = S.csc_matrix("x"), S.csr_matrix("y"), T.dmatrix("W"), T.dmatrix("U")
    f = function([x, y, W, U], [S.structured_dot(x, W), S.structured_dot(U, x), S.dot(x, W), S.dot(U, x),
                                S.dot(x, y), S.dense_from_sparse(S.true_dot(x, y)),
                                S.dense_from_sparse(S.true_dot(x, W))], device=device)
    sd, ds, d1, d2, d3, t1, t2 = f(m, n, w, u)
    for got, want in [(sd, m @ w), (ds, u @ m), (d1, m @ w), (d2, u @ m), (d3, (m @ n).toarray()),
                      (t1, (m @ n).toarray()), (t2, m @ w)]:
        np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="shapes"):
        f(m, n, np.ones((4, 2)), u)
    with pytest.raises(TypeError, match="at least one sparse"):
        S.dot(W, U)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 6), inner=st.integers(1, 6), cols=st.integers(1, 4),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 1000), fmt=st.sampled_from(["csc", "csr"]))
def test_structured_dot_property(rows, inner, cols, density, seed, fmt):
    rng = np.random.default_rng(seed)
    m = getattr(sp, f"{fmt}_matrix")(rng.standard_normal((rows, inner)) * (rng.random((rows, inner)) < density))
    w = rng.standard_normal((inner, cols))
    x, W = S.matrix(fmt, "x", "float64"), T.dmatrix("W")
    out = S.structured_dot(x, W)
    f = function([x, W], [out, T.grad(out.sum(), W), S.dense_from_sparse(T.grad(out.sum(), x))])
    got, gw, gx = f(m, w)
    np.testing.assert_allclose(got, m.toarray() @ w, atol=1e-12)
    np.testing.assert_allclose(gw, m.toarray().T @ np.ones((rows, cols)), atol=1e-12)
    np.testing.assert_allclose(gx, pattern(m) * (np.ones((rows, cols)) @ w.T), atol=1e-12)


# ---- gradients ----------------------------------------------------------------------------------

def test_grad_through_dense_from_sparse_is_structured():
    m = rand_sparse((3, 4), seed=6)
    w = np.random.default_rng(7).standard_normal((3, 4))
    x, W = S.csc_matrix("x", "float64"), T.dmatrix("W")
    cost = (S.dense_from_sparse(x) * W).sum()
    gx, gw = T.grad(cost, [x, W])
    assert gx.type == x.type
    f = function([x, W], [S.dense_from_sparse(gx), gw])
    got_x, got_w = f(m, w)
    np.testing.assert_allclose(got_w, m.toarray())
    np.testing.assert_allclose(got_x, w * pattern(m))        # only where x stores an entry
    check_data_grad(lambda x, W: (S.dense_from_sparse(x) * W).sum(), m, w)


def test_grad_structured_dot_finite_differences():
    m = rand_sparse((4, 3), seed=8, fmt="csr")
    w = np.random.default_rng(9).standard_normal((3, 2))
    proj = np.random.default_rng(10).standard_normal((4, 2))
    check_data_grad(lambda x, W: (S.structured_dot(x, W) * proj).sum(), m, w)
    x, W = S.csr_matrix("x", "float64"), T.dmatrix("W")
    gw = T.grad((S.structured_dot(x, W) * proj).sum(), W)
    np.testing.assert_allclose(function([x, W], gw)(m, w), m.toarray().T @ proj)
    U = T.dmatrix("U")                                      # dense . sparse
    u = np.random.default_rng(11).standard_normal((2, 4))
    proj_u = np.random.default_rng(12).standard_normal((2, 3))
    gu = T.grad((S.structured_dot(U, x) * proj_u).sum(), U)
    np.testing.assert_allclose(function([U, x], gu)(u, m), proj_u @ m.toarray().T)


def test_grad_dot_is_the_full_gradient():
    m = rand_sparse((4, 3), seed=12)
    w = np.random.default_rng(13).standard_normal((3, 2))
    proj = np.random.default_rng(14).standard_normal((4, 2))
    x, W = S.csc_matrix("x", "float64"), T.dmatrix("W")
    gx, gw = T.grad((S.dot(x, W) * proj).sum(), [x, W])
    got_x, got_w = function([x, W], [S.dense_from_sparse(gx), gw])(m, w)
    np.testing.assert_allclose(got_x, proj @ w.T)           # every entry, as the dense product's
    np.testing.assert_allclose(got_w, m.toarray().T @ proj)
    check_data_grad(lambda x, W: (S.dot(x, W) * proj).sum(), m, w)
    y = S.csr_matrix("y", "float64")                        # sparse . sparse
    n = rand_sparse((3, 5), seed=15, fmt="csr")
    proj2 = np.random.default_rng(16).standard_normal((4, 5))
    gx, gy = T.grad((S.dot(x, y) * proj2).sum(), [x, y])
    got_x, got_y = function([x, y], [S.dense_from_sparse(gx), S.dense_from_sparse(gy)])(m, n)
    np.testing.assert_allclose(got_x, proj2 @ n.toarray().T)
    np.testing.assert_allclose(got_y, m.toarray().T @ proj2)


def test_grad_true_dot():
    m = rand_sparse((4, 3), seed=17)
    w = np.random.default_rng(18).standard_normal((3, 2))
    x, W = S.csc_matrix("x", "float64"), T.dmatrix("W")
    cost = S.sp_sum(S.true_dot(x, W) * 3.0)
    gx, gw = T.grad(cost, [x, W])
    assert gw.type == W.type                                # grad_preserves_dense
    got_x, got_w = function([x, W], [S.dense_from_sparse(gx), gw])(m, w)
    np.testing.assert_allclose(got_w, 3 * m.toarray().T @ np.ones((4, 2)))
    # the gradient is sparse: entries where true_dot's result stores nothing get none
    np.testing.assert_allclose(got_x, 3 * np.ones((4, 2)) @ w.T)
    check_data_grad(lambda x, W: S.sp_sum(S.true_dot(x, W)), m, w)


@pytest.mark.parametrize("op, fn", [(S.structured_add, np.add), (S.structured_mul, np.multiply)])
@pytest.mark.parametrize("ydim", [0, 1, 2])
def test_structured_add_mul(op, fn, ydim):
    m = rand_sparse((3, 4), seed=19, fmt="csr")
    yv = np.random.default_rng(20).standard_normal((3, 4)[2 - ydim:] if ydim else ())
    x = S.csr_matrix("x", "float64")
    y = [T.dscalar, T.dvector, T.dmatrix][ydim]("y")
    out = op(x, y)
    assert out.format == "csr"
    f = function([x, y], [S.dense_from_sparse(out), T.grad(S.sp_sum(out * 1.0), y)])
    dense, gy = f(m, yv)
    spread = np.broadcast_to(yv, (3, 4))
    np.testing.assert_allclose(dense, pattern(m) * fn(m.toarray(), spread))   # stored entries only
    weights = pattern(m) if fn is np.add else m.toarray()
    want = weights.sum() if ydim == 0 else weights.sum(axis=0) if ydim == 1 else weights
    np.testing.assert_allclose(gy, want)
    proj = np.random.default_rng(21).standard_normal((3, 4))
    check_data_grad(lambda x, y: (S.dense_from_sparse(op(x, y)) * proj).sum(), m, yv)


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("sparse_grad", [False, True])
def test_sp_sum(axis, sparse_grad):
    m = rand_sparse((3, 5), seed=22)
    x = S.csc_matrix("x", "float64")
    total = S.sp_sum(x, axis=axis, sparse_grad=sparse_grad)
    proj = np.random.default_rng(23).standard_normal(() if axis is None else (5,) if axis == 0 else (3,))
    gx = T.grad((total * proj).sum(), x)
    got, grad = function([x], [total, S.dense_from_sparse(gx)])(m)
    np.testing.assert_allclose(got, m.toarray().sum(axis=axis))
    full = np.broadcast_to(proj if axis is None else proj[None, :] if axis == 0 else proj[:, None], (3, 5))
    np.testing.assert_allclose(grad, full * pattern(m) if sparse_grad else full)
    check_data_grad(lambda x: (S.sp_sum(x, axis=axis, sparse_grad=sparse_grad) * proj).sum(), m)


def test_operators_and_accumulated_gradients():
    a, b = rand_sparse((3, 3), seed=24), rand_sparse((3, 3), seed=25)
    d = np.random.default_rng(26).standard_normal((3, 3))
    x, y, D = S.csc_matrix("x", "float64"), S.csc_matrix("y", "float64"), T.dmatrix("D")
    f = function([x, y, D], [S.dense_from_sparse(x + y), S.dense_from_sparse(x * y), x + D,
                             S.dense_from_sparse(x * D), S.dense_from_sparse(-x)])
    s, p, sd, md, neg = f(a, b, d)
    np.testing.assert_allclose(s, a.toarray() + b.toarray())
    np.testing.assert_allclose(p, a.toarray() * b.toarray())
    np.testing.assert_allclose(sd, a.toarray() + d)
    np.testing.assert_allclose(md, a.toarray() * d)
    np.testing.assert_allclose(neg, -a.toarray())
    # x used twice: its gradients (both sparse) are summed; x * y's is the full one (y), as
    # Theano's MulSS, dense_from_sparse's the structured one
    cost = S.sp_sum(x * y) + (S.dense_from_sparse(x) * D).sum()
    gx = function([x, y, D], S.dense_from_sparse(T.grad(cost, x)))(a, b, d)
    np.testing.assert_allclose(gx, b.toarray() + d * pattern(a))


# ---- shared sparse variables --------------------------------------------------------------------

def test_shared_sparse_matrix():
    m = rand_sparse((4, 3), seed=27, fmt="csr")
    s = S.shared(m, "s")
    assert s.type == S.SparseType("csr", "float64") and s.name == "s"
    W = T.dmatrix("W")
    w = np.ones((3, 2))
    f = function([W], S.structured_dot(s, W))
    np.testing.assert_allclose(f(w), m @ w)
    got = s.get_value()
    got.data[:] = 0                                          # a copy: the stored value is untouched
    np.testing.assert_allclose(f(w), m @ w)
    s.set_value(2 * m)
    np.testing.assert_allclose(f(w), 2 * m @ w)
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_allclose(g(w), 2 * m @ w)
    with pytest.raises(TypeError, match="scipy.sparse"):
        S.shared(np.eye(2))


def test_sparse_outputs():
    m = rand_sparse((3, 4), seed=28)
    x = S.csc_matrix("x", "float64")
    f = function([x], [x.T, S.structured_mul(x, 2.0)])
    t, doubled = f(m)
    assert sp.issparse(t) and t.format == "csr"
    np.testing.assert_array_equal(t.toarray(), m.toarray().T)
    np.testing.assert_array_equal(doubled.toarray(), 2 * m.toarray())


def test_sparse_shared_update():
    m = rand_sparse((3, 4), seed=29)
    s = S.shared(m, "s")
    step = function([], [], updates=[(s, S.structured_mul(s, 0.5))])
    step()
    np.testing.assert_allclose(s.get_value().toarray(), 0.5 * m.toarray())


def test_sparse_inputs_returned_as_outputs_are_copies():
    m = rand_sparse((3, 4), seed=29)
    x = S.csr_matrix("x", "float64")
    for device in ("cpu", "py"):
        f = function([x], [x, S.dense_from_sparse(x)], device=device)
        same, dense = f(m)
        assert sp.issparse(same) and same is not m and same.format == "csr"
        np.testing.assert_array_equal(same.toarray(), m.toarray())
        np.testing.assert_array_equal(dense, m.toarray())


def test_gencomp_shared_dispatches_on_scipy_and_random_state():
    import gencomp
    s = gencomp.shared(rand_sparse((2, 3), seed=30), name="s")
    assert isinstance(s.type, S.SparseType)
    rng = np.random.RandomState(5)
    r = gencomp.shared(rng)
    assert r.get_value().randint(1000) == np.random.RandomState(5).randint(1000)
