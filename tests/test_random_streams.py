"""RandomStreams draws Theano 1.0's numbers: checked against the values Theano's tutorial prints and
against numpy RandomStates seeded as Theano's shared_randomstreams seeds them."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gencomp
import gencomp.tensor as T
from gencomp import function
from gencomp.tensor.shared_randomstreams import MRG_RandomStreams, RandomStreams


def theano_rng(seed, k=0):
    """The RandomState of the k-th variable of RandomStreams(seed), as Theano seeds it."""
    master = np.random.RandomState(seed)
    seeds = [int(master.randint(2**30)) for _ in range(k + 1)]
    return np.random.RandomState(seeds[k])


def test_tutorial_copying_random_state_prints_theanos_values():
    # doc/tutorial/examples.txt, "Copying Random State Between Theano Graphs", run unchanged
    class Graph:
        def __init__(self, seed=123):
            self.rng = RandomStreams(seed)
            self.y = self.rng.uniform(size=(1,))

    g1 = Graph(seed=123)
    f1 = function([], g1.y)
    g2 = Graph(seed=987)
    f2 = function([], g2.y)
    np.testing.assert_allclose(f1(), [0.72803009], rtol=1e-7)
    np.testing.assert_allclose(f2(), [0.55056769], rtol=1e-7)

    def copy_random_state(g1, g2):
        if isinstance(g1.rng, MRG_RandomStreams):
            g2.rng.rstate = g1.rng.rstate
        for (su1, su2) in zip(g1.rng.state_updates, g2.rng.state_updates):
            su2[0].set_value(su1[0].get_value())

    copy_random_state(g1, g2)
    np.testing.assert_allclose(f1(), [0.59044123], rtol=1e-7)
    np.testing.assert_allclose(f2(), [0.59044123], rtol=1e-7)
    assert g1.rng.uniform((3,)).rng.get_value().get_state()[1][0] == \
        g2.rng.uniform((3,)).rng.get_value().get_state()[1][0]      # rstate copied the master too


@pytest.mark.parametrize("device", ["cpu", "py"])
def test_brief_example_draws_numpy_randomstate_numbers(device):
    # the values Theano 1.0 printed for the tutorial (recorded by a run of it under Theano)
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u, device=device)
    g = function([], rv_n, device=device)
    ref_u, ref_n = theano_rng(234, 0), theano_rng(234, 1)
    first = f()
    np.testing.assert_array_equal(first, ref_u.uniform(0.0, 1.0, (2, 2)))
    np.testing.assert_allclose(first, [[0.12672381, 0.97091597], [0.13989098, 0.88754825]], rtol=1e-7)
    second = f()                                                            # drawn anew each call
    np.testing.assert_array_equal(second, ref_u.uniform(0.0, 1.0, (2, 2)))
    np.testing.assert_allclose(second, [[0.31971415, 0.47584377], [0.24129163, 0.42046081]], rtol=1e-7)
    normal = g()
    np.testing.assert_array_equal(normal, ref_n.normal(0.0, 1.0, (2, 2)))
    np.testing.assert_allclose(normal, [[0.37328447, -0.65746672], [-0.36302373, -0.97484625]], rtol=1e-7)
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u, device=device)
    np.testing.assert_allclose(nearly_zeros(), np.zeros((2, 2)), atol=1e-15)   # one draw per call


def test_no_default_updates_gives_the_same_numbers():
    # the tutorial's g = function([], rv_n, no_default_updates=True): the generator never moves
    srng = RandomStreams(seed=234)
    rv_u, rv_n = srng.uniform((2, 2)), srng.normal((2, 2))
    g = function([], rv_n, no_default_updates=True)
    theano_g = [[0.37328447, -0.65746672], [-0.36302373, -0.97484625]]
    np.testing.assert_allclose(g(), theano_g, rtol=1e-7)
    np.testing.assert_allclose(g(), theano_g, rtol=1e-7)
    h = function([], rv_n)                       # without it, the generator moves on
    np.testing.assert_allclose(h(), theano_g, rtol=1e-7)
    assert not np.allclose(h(), theano_g)


def test_seeding_one_variable_and_all():
    srng = RandomStreams(seed=234)
    rv_u, rv_n = srng.uniform((2, 2)), srng.normal((2, 2))
    f, g = function([], rv_u), function([], rv_n)
    rng_val = rv_u.rng.get_value(borrow=True)
    rng_val.seed(89234)
    rv_u.rng.set_value(rng_val, borrow=True)
    np.testing.assert_array_equal(f(), np.random.RandomState(89234).uniform(0.0, 1.0, (2, 2)))
    srng.seed(902340)
    np.testing.assert_array_equal(f(), theano_rng(902340, 0).uniform(0.0, 1.0, (2, 2)))
    np.testing.assert_array_equal(g(), theano_rng(902340, 1).normal(0.0, 1.0, (2, 2)))
    srng.seed()                                 # back to the constructor's seed
    np.testing.assert_array_equal(f(), theano_rng(234, 0).uniform(0.0, 1.0, (2, 2)))


def test_sharing_streams_between_functions():
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    f = function([], rv_u)
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    f()
    state_after_v0 = rv_u.rng.get_value().get_state()
    nearly_zeros()                              # advances rv_u's generator too
    v1 = f()
    rng = rv_u.rng.get_value(borrow=True)
    rng.set_state(state_after_v0)
    rv_u.rng.set_value(rng, borrow=True)
    v2, v3 = f(), f()
    assert not np.array_equal(v1, v2)
    np.testing.assert_array_equal(v1, v3)


def test_get_value_copies_and_set_value_checks():
    rv = RandomStreams(5).uniform((3,))
    f = function([], rv)
    copy = rv.rng.get_value()
    expected = copy.uniform(0.0, 1.0, (3,))
    np.testing.assert_array_equal(f(), expected)        # drawing from the copy left the stream alone
    with pytest.raises(TypeError, match="RandomState"):
        rv.rng.set_value(np.random.default_rng(0))
    mine = np.random.RandomState(3)
    rv.rng.set_value(mine)                               # not borrowed: a copy is stored
    f()
    np.testing.assert_array_equal(mine.uniform(0.0, 1.0, (3,)), np.random.RandomState(3).uniform(0.0, 1.0, (3,)))


def test_float32_and_binomial_follow_raw_random():
    srng = RandomStreams(seed=42)
    x = T.fmatrix("x")
    u = srng.uniform(size=x.shape, low=-0.1, high=0.1, dtype="float32")
    b = srng.binomial(size=(3, 4), n=5, p=0.3)
    n = srng.normal((4,), avg=1.5, std=0.25, dtype="float32")
    f = function([x], [u, b, n])
    uv, bv, nv = f(np.zeros((2, 3), np.float32))
    lo, hi = np.float32(-0.1), np.float32(0.1)           # raw_random casts the bounds to the dtype
    np.testing.assert_array_equal(uv, theano_rng(42, 0).uniform(lo, hi, (2, 3)).astype(np.float32))
    assert uv.dtype == np.float32 and bv.dtype == np.int64 and nv.dtype == np.float32
    np.testing.assert_array_equal(bv, theano_rng(42, 1).binomial(5, 0.3, (3, 4)))
    np.testing.assert_array_equal(
        nv, theano_rng(42, 2).normal(np.float32(1.5), np.float32(0.25), (4,)).astype(np.float32))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(0, 3))
def test_any_seed_matches_theanos_seeding(seed, k):
    srng = RandomStreams(seed)
    draws = [srng.uniform((2,), low=-2, high=5) for _ in range(k + 1)]
    values = gencomp.function([], draws, device="py")()
    np.testing.assert_array_equal(values[k], theano_rng(seed, k).uniform(-2.0, 5.0, (2,)))


# ---- the rest of raw_random: random_integers, choice, poisson, permutation, multinomial, shuffle -------

@pytest.mark.parametrize("device", ["cpu", "py"])
def test_other_draws_give_numpys_numbers_call_after_call(device):
    # raw_random's helpers: randint(low, high + 1) per element, choice, poisson, permutation per row,
    # multinomial per row; each variable its own RandomState seeded from the master, as Theano's gen()
    srng = RandomStreams(seed=12)
    draws = [srng.random_integers((2, 3), low=-2, high=4), srng.choice((5,), a=10, replace=False),
             srng.poisson((3,), lam=2.5), srng.permutation((2,), n=5),
             srng.multinomial((2,), n=7, pvals=[0.2, 0.3, 0.5])]
    f = function([], draws, device=device)
    refs = [theano_rng(12, k) for k in range(5)]
    for _ in range(2):                                                 # a new draw at every call
        ri, ch, po, pe, mu = f()
        np.testing.assert_array_equal(ri, np.reshape([refs[0].randint(-2, 5) for _ in range(6)], (2, 3)))
        np.testing.assert_array_equal(ch, refs[1].choice(10, (5,), False, None))
        np.testing.assert_array_equal(po, refs[2].poisson(2.5, (3,)))
        np.testing.assert_array_equal(pe, [refs[3].permutation(5) for _ in range(2)])
        np.testing.assert_array_equal(mu, [refs[4].multinomial(7, [0.2, 0.3, 0.5]) for _ in range(2)])
        assert all(v.dtype == np.int64 for v in (ri, ch, po, pe, mu))
        assert ri.min() >= -2 and ri.max() <= 4 and len(set(ch)) == 5 and (mu.sum(axis=1) == 7).all()
        assert all(sorted(row) == list(range(5)) for row in pe)


def test_random_integers_matches_numpys_random_integers_and_broadcasts_bounds():
    srng = RandomStreams(seed=3)
    low, high = T.lvector("low"), T.lmatrix("high")
    rv = srng.random_integers(size=(2, 3), low=low, high=high, dtype="int32")
    f = function([low, high], rv)
    lo, hi = np.array([0, 10, -5]), np.array([[20], [100]])
    got = f(lo, hi)
    ref = theano_rng(3, 0)
    with pytest.warns(DeprecationWarning):        # numpy's own random_integers: the same numbers
        want = [[ref.random_integers(lo[j], hi[i, 0]) for j in range(3)] for i in range(2)]
    assert got.dtype == np.int32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, want)
    # size None: the broadcast shape of low and high (raw_random's _infer_ndim_bcast)
    auto = srng.random_integers(low=low, high=T.constant(np.full((2, 1), 3)))
    g = function([low], auto)
    ref = theano_rng(3, 1)
    out = g(np.array([1, 2, 3]))
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out, [[ref.randint(k, 4) for k in (1, 2, 3)] for _ in range(2)])


def test_symbolic_sizes_ndim_and_minus_one():
    srng = RandomStreams(seed=5)
    x = T.dmatrix("x")
    p = T.dmatrix("p")
    a = srng.poisson(size=x.shape, lam=x + 1.0)
    b = srng.random_integers(size=(x.shape[0], 2), low=0, high=9)
    c = srng.multinomial(size=(-1,), n=4, pvals=p)          # -1: pvals' number of rows
    d = srng.permutation(size=T.stack([x.shape[1]]), n=3, ndim=1)
    assert (a.ndim, b.ndim, c.ndim, d.ndim) == (2, 2, 2, 2)
    f = function([x, p], [a, b, c, d])
    X, P = np.arange(6.0).reshape(2, 3), np.array([[0.5, 0.5], [0.1, 0.9], [1.0, 0.0]])
    av, bv, cv, dv = f(X, P)
    refs = [theano_rng(5, k) for k in range(4)]
    np.testing.assert_array_equal(av, refs[0].poisson(X + 1.0, (2, 3)))
    np.testing.assert_array_equal(bv, np.reshape([refs[1].randint(0, 10) for _ in range(4)], (2, 2)))
    # raw_random scales a row ending under 5e-5 (here [1, 0]) by 1 - 5e-5 before numpy draws from it
    np.testing.assert_array_equal(cv, [refs[2].multinomial(4, r * ((1 - 5e-5) if r[-1] < 5e-5 else 1)) for r in P])
    np.testing.assert_array_equal(dv, [refs[3].permutation(3) for _ in range(3)])
    with pytest.raises(ValueError, match="ndim=2"):
        srng.poisson(size=(3,), lam=1.0, ndim=2)
    with pytest.raises(TypeError, match="ndim"):
        srng.permutation(size=T.lvector("s"), n=3)          # length unknown: needs ndim


def test_multinomial_size_none_broadcast_n_and_theanos_row_nudge():
    srng = RandomStreams(seed=8)
    pv = T.fmatrix("pv")
    n = T.lvector("n")
    rv = srng.multinomial(n=n, pvals=pv)                      # size None: shape of n and pvals[..., 0]
    f = function([pv, n], rv)
    P = np.array([[0.3, 0.3, 0.4000001], [0.6, 0.4, 0.0]], dtype=np.float32)   # row 0 sums over 1 in float32
    N = np.array([5, 9])
    got = f(P, N)
    ref = theano_rng(8, 0)
    want = []
    for row, k in zip(P, N):
        total = np.sum(row)
        if 1.0 < total < 1.0 + 1e-5 or row[-1] < 5e-5:
            row = row * (1.0 - 5e-5)
        want.append(ref.multinomial(k, row.astype("float64")))
    assert got.shape == (2, 3) and got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got.sum(axis=1), N)
    # a vector pvals with size: size + (len(pvals),)
    vec = srng.multinomial(size=(4, 2), n=3, pvals=[0.25, 0.75], dtype="float64")
    out = function([], vec)()
    assert out.shape == (4, 2, 2) and out.dtype == np.float64 and (out.sum(axis=-1) == 3).all()


def test_choice_variants():
    srng = RandomStreams(seed=21)
    vals = T.dvector("vals")
    c1 = srng.choice(size=(2, 2), a=vals, p=[0.1, 0.2, 0.7], dtype="float64")
    c2 = srng.choice(size=(), a=4)                               # one value, a 0-d result
    r = T.bscalar("r")
    c3 = srng.choice(size=(3,), a=3, replace=r)
    f = function([vals, r], [c1, c2, c3])
    V = np.array([1.5, -2.0, 7.25])
    refs = [theano_rng(21, k) for k in range(3)]
    v1, v2, v3 = f(V, 0)
    np.testing.assert_array_equal(v1, refs[0].choice(V, (2, 2), True, [0.1, 0.2, 0.7]))
    assert v2.shape == () and v2 == refs[1].choice(4, None, True, None)
    np.testing.assert_array_equal(v3, refs[2].choice(3, (3,), False, None))
    assert sorted(v3) == [0, 1, 2]
    # the default dtype is int64, as Theano's: values of a float vector are truncated
    trunc = function([vals], srng.choice(size=(6,), a=vals))(V)
    assert trunc.dtype == np.int64 and set(trunc) <= {1, -2, 7}
    with pytest.raises(ValueError, match="larger"):                      # numpy's own message
        function([], srng.choice(size=(5,), a=3, replace=False))()


def test_permutation_and_shuffle_row_elements():
    srng = RandomStreams(seed=9)
    one = srng.permutation(n=6)                                  # no size: one permutation, a vector
    assert one.ndim == 1
    x3 = T.dtensor3("x3")
    v = T.dvector("v")
    s3, s1 = srng.shuffle_row_elements(x3), srng.shuffle_row_elements(v)
    assert s3.permutation.ndim == 3 and s3.permutation.rng is not None
    f = function([x3, v], [one, s3, s1, s3.permutation])
    X = np.arange(24.0).reshape(2, 3, 4)
    V = np.array([10.0, 20.0, 30.0])
    refs = [theano_rng(9, k) for k in range(3)]
    for _ in range(2):
        o, y3, y1, perm = f(X, V)                 # s3 and s3.permutation are one draw in one call
        np.testing.assert_array_equal(o, refs[0].permutation(6))
        want_perm = np.reshape([refs[1].permutation(4) for _ in range(6)], (2, 3, 4))
        np.testing.assert_array_equal(perm, want_perm)
        np.testing.assert_array_equal(y3, np.take_along_axis(X, want_perm, axis=-1))
        np.testing.assert_array_equal(y1, V[refs[2].permutation(3)])
    with pytest.raises(TypeError, match="one permutation"):
        srng.permutation(n=3, ndim=2)


def test_shuffle_row_elements_numbers_and_gradient():
    srng = RandomStreams(seed=31)
    x = T.dmatrix("x")
    w = T.dvector("w")
    shuffled = srng.shuffle_row_elements(x)
    cost = (shuffled * w).sum()
    gx = T.grad(cost, x)
    f = function([x, w], [shuffled, gx])
    X = np.arange(12.0).reshape(3, 4)
    W = np.array([1.0, 2.0, 3.0, 4.0])
    y, g = f(X, W)
    ref = theano_rng(31, 0)
    perms = [ref.permutation(4) for _ in range(3)]
    np.testing.assert_array_equal(y, [X[i][p] for i, p in enumerate(perms)])
    want_g = np.zeros_like(X)
    for i, p in enumerate(perms):
        want_g[i, p] = W                       # d cost / d x[i, p[j]] = w[j]
    np.testing.assert_array_equal(g, want_g)


def test_new_draws_follow_seed_rng_and_no_default_updates():
    srng = RandomStreams(seed=77)
    rv_p = srng.poisson((4,), lam=3.0)
    rv_m = srng.permutation((2,), n=4)
    f, g = function([], rv_p), function([], rv_m, no_default_updates=True)
    first = g()
    np.testing.assert_array_equal(g(), first)                 # the generator never moves
    ref = theano_rng(77, 1)
    np.testing.assert_array_equal(first, [ref.permutation(4) for _ in range(2)])
    srng.seed(5)
    np.testing.assert_array_equal(f(), theano_rng(5, 0).poisson(3.0, (4,)))
    rv_p.rng.set_value(np.random.RandomState(11))
    np.testing.assert_array_equal(f(), np.random.RandomState(11).poisson(3.0, (4,)))
    assert [u[0] for u in srng.state_updates] == [rv_p.rng, rv_m.rng]
    assert rv_p.update == (rv_p.rng, rv_p)


def test_draws_inside_scan_steps_and_with_other_ops():
    srng = RandomStreams(seed=4)
    h0 = T.dvector("h0")

    def step(h):
        idx = srng.random_integers(size=(3,), low=0, high=2)
        return h + T.cast(idx, "float64") + T.cast(srng.poisson((3,), lam=1.0), "float64")

    hs, updates = gencomp.scan(step, outputs_info=h0, n_steps=4)
    f = function([h0], hs.sum(axis=1) * 2.0 - 1.0, updates=updates)
    ri, po = theano_rng(4, 0), theano_rng(4, 1)
    for _ in range(2):                            # the loop draws anew at every step and every call
        h, want = np.zeros(3), []
        for _ in range(4):
            h = h + np.array([ri.randint(0, 3) for _ in range(3)]) + po.poisson(1.0, (3,))
            want.append(h.sum() * 2.0 - 1.0)
        np.testing.assert_array_equal(f(np.zeros(3)), want)
    # in a compiled function between other ops: an embedding lookup with sampled rows
    table = gencomp.shared(np.arange(20.0).reshape(10, 2), name="table")
    rows = srng.choice(size=(4,), a=10, replace=False)
    mask = srng.multinomial(size=(4,), n=1, pvals=[0.5, 0.5])
    out = T.dot(table[rows], T.constant(np.array([1.0, 10.0]))) * mask[:, 0]
    g = function([], [out, rows, mask])
    o, r, m = g()
    np.testing.assert_array_equal(r, theano_rng(4, 2).choice(10, (4,), False, None))
    np.testing.assert_array_equal(o, (np.arange(20.0).reshape(10, 2)[r] @ [1.0, 10.0]) * m[:, 0])


def test_bad_arguments_raise_clear_errors():
    srng = RandomStreams(seed=1)
    with pytest.raises(TypeError, match="integer"):
        srng.random_integers((2,), low=0.5, high=3)
    with pytest.raises(ValueError, match="more than the size"):
        srng.random_integers((2,), low=np.zeros((2, 2), dtype="int64"), high=3)
    with pytest.raises(ValueError, match="low must not exceed high"):
        function([], srng.random_integers((2,), low=5, high=3))()
    with pytest.raises(TypeError, match="size"):
        srng.choice(a=3)                                      # Theano's choice needs a size too
    with pytest.raises(ValueError, match="scalar or a vector"):
        srng.choice((2,), a=np.ones((2, 2)))
    with pytest.raises(ValueError, match="p must be a vector"):
        srng.choice((2,), a=3, p=np.ones((3, 1)) / 3)
    with pytest.raises(TypeError, match="integer"):
        srng.choice((2,), a=2.5)
    with pytest.raises(TypeError, match="lam"):
        srng.poisson((2,))
    with pytest.raises(ValueError, match="more than the size"):
        srng.poisson((2,), lam=np.ones((2, 2)))
    with pytest.raises(TypeError, match="integer scalar"):
        srng.permutation((2,), n=[3, 4])
    with pytest.raises(TypeError, match="integer"):
        srng.multinomial((2,), n=1.5, pvals=[0.5, 0.5])
    with pytest.raises(ValueError, match="negative"):
        srng.poisson((2, -3), lam=1.0)
    with pytest.raises(TypeError, match="size"):
        srng.poisson("big", lam=1.0)
    pv = T.dmatrix("pv")
    bad = function([pv], srng.multinomial(n=1, pvals=pv))
    with pytest.raises(ValueError, match="negative"):
        bad(np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="sums to"):
        bad(np.array([[0.9, 0.2]]))
    shaped = function([pv], srng.multinomial(size=(3,), n=1, pvals=pv))
    with pytest.raises(ValueError, match="broadcast"):
        shaped(np.full((2, 2), 0.5))
    with pytest.raises(TypeError, match="at least one dimension"):
        srng.shuffle_row_elements(T.dscalar("s"))


def test_mrg_choice_without_replacement_and_multinomial_wo_replacement():
    from gencomp.sandbox.rng_mrg import MRG_RandomStreams as MRG

    srng = MRG(seed=2)
    p = T.dmatrix("p")
    pick = srng.choice(size=2, replace=False, p=p)
    f = function([p], pick)
    P = np.tile([[0.1, 0.2, 0.3, 0.4]], (3000, 1))
    got = f(P)
    assert got.shape == (3000, 2) and got.dtype == np.int64
    assert (got[:, 0] != got[:, 1]).all() and got.min() >= 0 and got.max() <= 3
    np.testing.assert_allclose(np.bincount(got[:, 0], minlength=4) / 3000, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    np.testing.assert_array_equal(function([p], srng.choice(size=1, replace=False, p=p))(
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])), [[1], [0]])
    assert not np.array_equal(f(P), got)                                  # drawn anew at every call
    with pytest.warns(DeprecationWarning):
        wo = srng.multinomial_wo_replacement(n=3, pvals=p)
    out = function([p], wo)(np.full((5, 3), 1 / 3))
    assert all(sorted(r) == [0, 1, 2] for r in out)
    with pytest.raises(NotImplementedError, match="replace=False"):
        srng.choice(size=2, p=p)
    with pytest.raises(TypeError, match="a must be None"):
        srng.choice(size=2, a=3, replace=False, p=p)
    with pytest.raises(TypeError, match="p="):
        srng.choice(size=2, replace=False)
    with pytest.raises(ValueError, match="cannot draw"):
        function([p], srng.choice(size=4, replace=False, p=p))(np.full((2, 3), 1 / 3))
    with pytest.raises(NotImplementedError, match="truncate"):
        srng.normal((2,), truncate=True)


def test_the_same_graph_built_again_finds_its_compiled_module():
    """A graph with random draws built a second time in one process (a notebook cell re-run, a
    second model) differs only in its draws' generators: it loads the module the first compiled."""
    import gencomp
    import gencomp.tensor as T
    from gencomp.tensor.shared_randomstreams import RandomStreams

    def build(seed):
        srng = RandomStreams(seed)
        x = T.dmatrix("x")
        mask = srng.binomial(size=x.shape, p=0.5, dtype="float64")
        return gencomp.function([x], (x * mask).sum() + srng.uniform(size=(2,)).sum())

    x = np.ones((3, 4))
    first, second, again = build(1), build(2), build(1)
    assert second.cache_hit and again.cache_hit and first.source_path == second.source_path
    r1, r2, r1_again = first(x), second(x), again(x)       # each draws from its own generator
    assert r1 == r1_again and r1 != r2
