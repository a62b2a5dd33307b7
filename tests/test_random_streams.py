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
