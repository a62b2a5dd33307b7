"""Theano 1.0's full scan interface, each feature against a hand-written numpy loop, gradients
against central finite differences: sequence taps, output taps (mit_sot), until, updates returned
by the step (and the RBM Gibbs chain with random draws inside the step), non-sequences passed as
the outer variables (the gradients tutorial's Jacobian and Hessian), truncate_gradient, strict,
the small options, and the errors for bad input."""

from __future__ import annotations

import pickle
from collections import OrderedDict

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from gencomp import function, shared
from gencomp.graph import MissingInputError
from gencomp.scan import scan
from gencomp.scan_op import LeadingLength, Scan
from gencomp.scan_module import until
from gencomp.tensor.shared_randomstreams import RandomStreams
from test_scan import numeric_grad


def _scan_ops(f):
    return [n.op for n in f.fgraph.toposort() if isinstance(n.op, Scan)]


# ---- sequence taps ------------------------------------------------------------------------------

def _taps_numpy(sv, h0, wv, taps, back, n_steps=None):
    """Theano 1.0: the sequence is cut as if tap 0 were among the taps; step i reads s[t + k - lo]."""
    lo, hi = min(min(taps), 0), max(max(taps), 0)
    n = len(sv) - (hi - lo)
    h, hs = h0, []
    for i in range(n if n_steps is None else n_steps):
        t = n - 1 - i if back else i
        h = np.tanh(sum(w * sv[t + k - lo] for w, k in zip(wv, taps)) + 0.5 * h)
        hs.append(h)
    hs = np.array(hs)
    return (hs * np.arange(1, len(hs) + 1)).sum(), hs


@pytest.mark.parametrize("taps,back", [([-1, 0, 1], False), ([-1, 0, 1], True), ([-2, 0], False), ([1], False),
                                       ([-1], False), ([2, -3], True), ([0, 2], False), ([-2, -1], False),
                                       ([3, 1], True)])
def test_sequence_taps_forward_and_gradients(taps, back):
    s, h0, w = T.dvector("s"), T.dscalar("h0"), T.dvector("w")

    def step(*args):
        slices, h, wv = args[:len(taps)], args[len(taps)], args[len(taps) + 1]
        return T.tanh(sum(wv[j] * x for j, x in enumerate(slices)) + 0.5 * h)

    hs, _ = scan(step, sequences=dict(input=s, taps=taps), outputs_info=h0, non_sequences=w, go_backwards=back)
    cost = (hs * T.arange(1, hs.shape[0] + 1)).sum()
    f = function([s, h0, w], [cost, hs, *T.grad(cost, [s, h0, w])])
    rng = np.random.default_rng(3)
    sv, h0v, wv = rng.standard_normal(9), 0.3, rng.standard_normal(len(taps))
    got = f(sv, h0v, wv)
    want_cost, want_hs = _taps_numpy(sv, h0v, wv, taps, back)
    assert len(got[1]) == 9 - (max(max(taps), 0) - min(min(taps), 0))     # the shortened slices decide
    np.testing.assert_allclose(got[1], want_hs, rtol=1e-13)
    assert got[0] == pytest.approx(want_cost, rel=1e-13)
    c = lambda *a: _taps_numpy(*a, taps, back)[0]                        # noqa: E731
    numeric = [numeric_grad(lambda a: c(a, h0v, wv), sv), numeric_grad(lambda a: c(sv, a, wv), np.array(h0v)),
               numeric_grad(lambda a: c(sv, h0v, a), wv)]
    for g, want in zip(got[2:], numeric):
        np.testing.assert_allclose(g, want, rtol=1e-7, atol=1e-8)


def test_sequence_taps_with_n_steps_and_the_order_of_the_slices():
    a, b, c, n = T.dvector("a"), T.dvector("b"), T.dvector("c"), T.lscalar("n")
    # the step gets each sequence's slices in the order of its taps, sequence after sequence
    out, _ = scan(lambda a_m1, a_p1, b_t, c_p2: a_m1 + 10 * a_p1 + 100 * b_t + 1000 * c_p2,
                  sequences=[dict(input=a, taps=[-1, 1]), b, dict(input=c, taps=2)])
    f = function([a, b, c], out)
    av, bv, cv = np.arange(8.0), np.arange(6.0) + 0.5, np.arange(9.0) + 0.25
    steps = min(len(av) - 2, len(bv), len(cv) - 2)
    want = [av[t] + 10 * av[t + 2] + 100 * bv[t] + 1000 * cv[t + 2] for t in range(steps)]
    np.testing.assert_array_equal(f(av, bv, cv), want)
    back, _ = scan(lambda x_m2, x_p1: x_m2 - 3 * x_p1, sequences=dict(input=a, taps=[-2, 1]), n_steps=n,
                   go_backwards=True)
    g = function([a, n], back)
    # the slices are 5 long (8 - 3); going backwards, step i reads them at 4 - i
    np.testing.assert_array_equal(g(av, 3), [av[4 - i] - 3 * av[4 - i + 3] for i in range(3)])
    with pytest.raises(ValueError, match="fewer than the 6 steps"):
        g(av, 6)


# ---- output taps --------------------------------------------------------------------------------

def _mitsot_numpy(x0, xs, wv, coef, taps, back=False):
    m = -min(taps)
    buf = list(x0[:m])                     # Theano reads initial[:m]: tap k is initial[m + k] at first
    seq = xs[::-1] if back else xs
    for t in range(len(seq)):
        prev = [buf[m + t + k] for k in taps]
        buf.append(np.tanh(seq[t] + sum(c * p.dot(wv) for c, p in zip(coef, prev))))
    out = np.array(buf[m:])
    return (out * np.linspace(1.0, 2.0, out.size).reshape(out.shape)).sum(), out


@pytest.mark.parametrize("taps,extra,back", [([-2, -1], 0, False), ([-1, -2], 2, False), ([-3, -1], 0, True),
                                             ([-3], 1, False), ([-2], 0, False)])
def test_output_taps_forward_and_gradients(taps, extra, back):
    m = -min(taps)
    coef = [0.7, -0.4, 0.3][:len(taps)]
    x0, xs, w = T.dmatrix("x0"), T.dmatrix("xs"), T.dmatrix("W")

    def step(x_t, *args):
        prev, wv = args[:len(taps)], args[len(taps)]
        return T.tanh(x_t + sum(c * T.dot(p, wv) for c, p in zip(coef, prev)))

    out, _ = scan(step, sequences=xs, outputs_info=dict(initial=x0, taps=taps), non_sequences=w, go_backwards=back)
    weights = T.constant(np.linspace(1.0, 2.0, 5 * 2).reshape(5, 2))
    cost = (out * weights).sum()
    f = function([x0, xs, w], [cost, out, *T.grad(cost, [x0, xs, w])])
    rng = np.random.default_rng(4)
    x0v, xsv, wv = rng.standard_normal((m + extra, 2)), rng.standard_normal((5, 2)), rng.standard_normal((2, 2))
    got = f(x0v, xsv, wv)
    want_cost, want_out = _mitsot_numpy(x0v, xsv, wv, coef, taps, back)
    assert got[1].shape == (5, 2)                       # the new values only, not the initial ones
    np.testing.assert_allclose(got[1], want_out, rtol=1e-13)
    assert got[0] == pytest.approx(want_cost, rel=1e-13)
    c = lambda *a: _mitsot_numpy(*a, coef, taps, back)[0]              # noqa: E731
    numeric = [numeric_grad(lambda a: c(a, xsv, wv), x0v), numeric_grad(lambda a: c(x0v, a, wv), xsv),
               numeric_grad(lambda a: c(x0v, xsv, a), wv)]
    for g, want in zip(got[2:], numeric):
        np.testing.assert_allclose(g, want, rtol=1e-7, atol=1e-8)
    assert not got[2][m:].any()                         # entries past the first m are never read


def test_all_kinds_of_arguments_together_in_theanos_order():
    # sequences (their taps), then per output its taps (outputs with None get nothing), then non-sequences
    s, x0, y0, k = T.dvector("s"), T.dvector("x0"), T.dscalar("y0"), T.dscalar("k")
    seen = []

    def step(s_m1, s_p1, x_m3, x_m1, y_m1, kk):
        seen.append([v.name for v in (s_m1, s_p1, x_m3, x_m1, y_m1)] + [kk is k])
        x = 0.5 * x_m1 + 0.25 * x_m3 + s_m1 * s_p1
        return x, x * 2, y_m1 + x * kk

    (xs, doubled, ys), _ = scan(step, sequences=dict(input=s, taps=[-1, 1]),
                                outputs_info=[dict(initial=x0, taps=[-3, -1]), None, y0], non_sequences=k)
    assert seen == [["s[t-1]", "s[t+1]", "x0[t-3]", "x0[t-1]", "y0[t-1]", True]]
    f = function([s, x0, y0, k], [xs, doubled, ys])
    sv, x0v = np.array([1.0, 2.0, -1.0, 0.5, 3.0, 1.5]), np.array([0.1, 0.2, 0.3])
    buf, y, want_x, want_y = list(x0v), 1.5, [], []
    for t in range(4):
        x = 0.5 * buf[-1] + 0.25 * buf[-3] + sv[t] * sv[t + 2]
        buf.append(x)
        y = y + x * 0.75
        want_x.append(x)
        want_y.append(y)
    got = f(sv, x0v, 1.5, 0.75)
    np.testing.assert_allclose(got[0], want_x, rtol=1e-15)
    np.testing.assert_allclose(got[1], 2 * np.array(want_x), rtol=1e-15)
    np.testing.assert_allclose(got[2], want_y, rtol=1e-15)


def test_tap_minus_one_keeps_the_plain_graph():
    x, h0 = T.dmatrix("x"), T.dvector("h0")
    step = lambda x_t, h: T.tanh(x_t + h)                               # noqa: E731
    plain, _ = scan(step, sequences=x, outputs_info=h0)
    as_dict, _ = scan(step, sequences=dict(input=x, taps=[0]), outputs_info=dict(initial=h0, taps=[-1]))
    f, g = function([x, h0], plain), function([x, h0], as_dict)
    assert f.cache_key == g.cache_key
    (op,) = _scan_ops(f)
    assert (op.n_seqs, op.n_states, op.until) == (1, 1, False)
    assert plain.owner.inputs[1] is x and plain.owner.inputs[2] is h0      # no slicing, no register


def test_initial_value_too_short_for_the_taps():
    x0, xs = T.dmatrix("x0"), T.dmatrix("xs")
    step = lambda x_t, a, b: x_t + a + b                                 # noqa: E731
    out, _ = scan(step, sequences=xs, outputs_info=dict(initial=x0, taps=[-3, -1]))
    assert any(isinstance(n.op, LeadingLength) for n in gencomp.graph.toposort([out]))
    f = function([x0, xs], out)
    assert [kind for kind, _ in f._runner.entry.order] == ["segment"]     # the check and the loop in C
    assert f(np.ones((3, 2)), np.ones((2, 2))).shape == (2, 2)
    with pytest.raises(ValueError, match=r"output 0 \(taps \[-3, -1\]\) needs an initial value with at least "
                                         r"3 entries along its first axis .* but it has 2"):
        f(np.ones((2, 2)), np.ones((2, 2)))
    # known at scan() time: a constant, or a broadcastable (length 1) first axis
    with pytest.raises(ValueError, match=r"output 1 \(taps \[-2\]\) needs .* at least 2 entries.* has 1"):
        scan(lambda x_t, a, b: [x_t + a, x_t + b], sequences=xs,
             outputs_info=[x0[0], dict(initial=np.zeros((1, 2)), taps=[-2])])
    with pytest.raises(ValueError, match=r"output 0 \(taps \[-2, -1\]\) needs .* has 1"):
        scan(step, sequences=xs, outputs_info=dict(initial=T.row("r", dtype="float64"), taps=[-2, -1]))
    with pytest.raises(ValueError, match="got a scalar"):
        scan(lambda a, b: a + b, outputs_info=dict(initial=T.dscalar(), taps=[-2, -1]), n_steps=3)


# ---- until --------------------------------------------------------------------------------------

def test_until_stops_after_the_step_where_the_condition_holds():
    x0, limit, n = T.dscalar("x0"), T.dscalar("limit"), T.lscalar("n")

    def step(x, lim):
        new = x * 2
        return new, until(new > lim)

    xs, updates = scan(step, outputs_info=x0, non_sequences=limit, n_steps=n)
    assert len(updates) == 0
    f = function([x0, limit, n], xs)
    np.testing.assert_array_equal(f(1.0, 10.0, 10), [2.0, 4.0, 8.0, 16.0])   # the stopping step included
    np.testing.assert_array_equal(f(1.0, 1e9, 5), [2.0, 4.0, 8.0, 16.0, 32.0])  # never hit: n_steps steps
    np.testing.assert_array_equal(f(1.0, 10.0, 0), np.zeros(0))
    np.testing.assert_array_equal(f(20.0, 10.0, 5), [40.0])
    (op,) = _scan_ops(f)
    assert op.until and "until" in op.signature()
    again = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(again(1.0, 10.0, 10), [2.0, 4.0, 8.0, 16.0])
    # the gradient is refused (as in Theano), only when it is asked for
    with pytest.raises(NotImplementedError, match="until"):
        T.grad(xs.sum(), x0)


def test_until_with_sequences_outputs_and_updates():
    s = T.dvector("s")
    total = shared(0.0, name="total")

    def step(v, acc):        # (outputs, updates, until): a running sum until it passes 5
        new = acc + v
        return [new, v * 2], OrderedDict([(total, total + v)]), until(new > 5)

    (acc, doubled), updates = scan(step, sequences=s, outputs_info=[T.constant(0.0), None])
    f = function([s], [acc, doubled], updates=updates)
    sv = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    got = f(sv)
    np.testing.assert_array_equal(got[0], [1.0, 3.0, 6.0])
    np.testing.assert_array_equal(got[1], [2.0, 4.0, 6.0])
    assert total.get_value() == 6.0                     # the updates of the steps that ran
    # (updates, until): a loop that only updates
    count = shared(np.int64(0), name="count")
    _, upd = scan(lambda: ({count: count + 1}, until(count + 1 >= 4)), n_steps=10)
    g = function([], [], updates=upd)
    g()
    assert count.get_value() == 4
    g()
    assert count.get_value() == 5                       # 5 >= 4 at once: one step


# ---- updates returned by the step ---------------------------------------------------------------

def _updates_numpy(xv, h0, c0, u):
    h, c, hs = h0, c0, []
    for x_t in xv:
        h = np.tanh(x_t * c * u + h)
        c = c + 0.1 * h.sum()
        hs.append(h)
    return (np.array(hs) ** 2).sum(), np.array(hs), c


@pytest.mark.parametrize("as_pairs", [False, True])
def test_updates_of_shared_variables(as_pairs):
    c = shared(0.5, name="c")
    u = shared(np.array([1.0, -2.0]), name="u")
    x, h0 = T.dvector("x"), T.dvector("h0")

    def step(x_t, h):
        new = T.tanh(x_t * c * u + h)                    # reads c as updated by the steps before
        rule = [(c, c + 0.1 * new.sum())]
        return new, (rule if as_pairs else OrderedDict(rule))

    hs, updates = scan(step, sequences=x, outputs_info=h0)
    assert list(updates) == [c]
    cost = (hs ** 2).sum()
    f = function([x, h0], [cost, hs, *T.grad(cost, [x, h0, u])], updates=updates)
    rng = np.random.default_rng(5)
    xv, h0v = rng.standard_normal(4), rng.standard_normal(2)
    got = f(xv, h0v)
    want_cost, want_hs, want_c = _updates_numpy(xv, h0v, 0.5, u.get_value())
    np.testing.assert_allclose(got[1], want_hs, rtol=1e-13)
    assert c.get_value() == pytest.approx(want_c, rel=1e-13)
    assert got[0] == pytest.approx(want_cost, rel=1e-13)
    cost_of = lambda *a: _updates_numpy(*a)[0]                     # noqa: E731
    numeric = [numeric_grad(lambda a: cost_of(a, h0v, 0.5, u.get_value()), xv),
               numeric_grad(lambda a: cost_of(xv, a, 0.5, u.get_value()), h0v),
               numeric_grad(lambda a: cost_of(xv, h0v, 0.5, a), u.get_value())]
    for g, want in zip(got[2:], numeric):
        np.testing.assert_allclose(g, want, rtol=1e-7, atol=1e-8)
    # the next call starts from the updated value; no step leaves it as it was
    second = f(xv, h0v)
    np.testing.assert_allclose(second[1], _updates_numpy(xv, h0v, want_c, u.get_value())[1], rtol=1e-13)
    before = c.get_value()
    f(np.zeros(0), h0v)
    assert c.get_value() == before


def test_updates_only_and_the_rbm_pattern_of_adding_an_update():
    n = T.lscalar("n")
    acc = shared(np.zeros(2), name="acc")
    _, updates = scan(lambda: OrderedDict([(acc, acc * 2 + 1)]), n_steps=n)
    f = function([n], [], updates=updates)
    f(3)
    np.testing.assert_array_equal(acc.get_value(), [7.0, 7.0])
    f(0)
    np.testing.assert_array_equal(acc.get_value(), [7.0, 7.0])
    with pytest.raises(TypeError, match="not a shared variable"):
        scan(lambda h: (h, {T.dscalar("z"): h}), outputs_info=T.dscalar("h"), n_steps=2)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_rbm_gibbs_chain_draws_theanos_numbers():
    # deeplearning.net's rbm.py: a Gibbs chain in scan, a binomial draw per step, the persistent chain
    # updated through scan's updates, and the CD gradient with consider_constant
    rng = np.random.default_rng(6)
    n_vis, n_hid, batch, k, seed = 5, 3, 4, 3, 1234
    W = shared(rng.standard_normal((n_vis, n_hid)) * 0.5, name="W")
    hbias, vbias = shared(np.zeros(n_hid) + 0.1, name="hbias"), shared(np.zeros(n_vis) - 0.1, name="vbias")
    persistent = shared((rng.random((batch, n_vis)) > 0.5).astype("float64"), name="persistent")
    theano_rng = RandomStreams(seed)
    v_in = T.dmatrix("v_in")

    def sample_h_given_v(v0):
        pre = T.dot(v0, W) + hbias
        mean = T.nnet.sigmoid(pre)
        return [pre, mean, theano_rng.binomial(size=mean.shape, n=1, p=mean, dtype="float64")]

    def sample_v_given_h(h0):
        pre = T.dot(h0, W.T) + vbias
        mean = T.nnet.sigmoid(pre)
        return [pre, mean, theano_rng.binomial(size=mean.shape, n=1, p=mean, dtype="float64")]

    def gibbs_vhv(v0_sample):
        pre_h1, h1_mean, h1_sample = sample_h_given_v(v0_sample)
        pre_v1, v1_mean, v1_sample = sample_v_given_h(h1_sample)
        return [pre_h1, h1_mean, h1_sample, pre_v1, v1_mean, v1_sample]

    def free_energy(v):
        return -T.dot(v, vbias) - T.sum(T.log(1 + T.exp(T.dot(v, W) + hbias)), axis=1)

    (_, _, h_samples, _, v_means, v_samples), updates = scan(
        gibbs_vhv, outputs_info=[None, None, None, None, None, persistent], n_steps=k)
    chain_end = v_samples[-1]
    cost = T.mean(free_energy(v_in)) - T.mean(free_energy(chain_end))
    gW = T.grad(cost, W, consider_constant=[chain_end])
    updates[persistent] = chain_end
    f = function([v_in], [v_means, h_samples, v_samples, gW], updates=updates)
    master = np.random.RandomState(seed)                 # the generators RandomStreams gives the draws
    rng_h, rng_v = (np.random.RandomState(int(master.randint(2**30))) for _ in range(2))
    vin = (rng.random((batch, n_vis)) > 0.5).astype("float64")
    Wv, hb, vb = W.get_value(), hbias.get_value(), vbias.get_value()
    for _ in range(2):                                   # the second call continues the chain
        v = persistent.get_value()
        want_means, want_h, want_v = [], [], []
        for _ in range(k):
            hm = _sigmoid(v @ Wv + hb)
            h = rng_h.binomial(1, hm, hm.shape).astype("float64")
            vm = _sigmoid(h @ Wv.T + vb)
            v = rng_v.binomial(1, vm, vm.shape).astype("float64")
            want_means.append(vm)
            want_h.append(h)
            want_v.append(v)
        got = f(vin)
        np.testing.assert_allclose(got[0], want_means, rtol=1e-13)
        np.testing.assert_array_equal(got[1], want_h)
        np.testing.assert_array_equal(got[2], want_v)
        np.testing.assert_array_equal(persistent.get_value(), v)
        want_gW = (-vin.T @ _sigmoid(vin @ Wv + hb) + v.T @ _sigmoid(v @ Wv + hb)) / batch
        np.testing.assert_allclose(got[3], want_gW, rtol=1e-12, atol=1e-14)


def test_random_draws_in_a_step_over_constants_are_drawn_at_every_call():
    from gencomp.sandbox.rng_mrg import MRG_RandomStreams

    srng = MRG_RandomStreams(7)
    noise, _ = scan(lambda h: h + srng.uniform(size=(3,)), outputs_info=T.constant(np.zeros(3)), n_steps=4)
    f = function([], noise)               # every input is a constant: the loop must not be folded
    first, second = f(), f()
    assert first.shape == (4, 3) and not np.array_equal(first, second)
    steps = np.diff(np.vstack([np.zeros(3), first]), axis=0)
    assert ((steps > 0) & (steps < 1)).all() and len(np.unique(steps)) == 12


# ---- non-sequences: the outer variables themselves ----------------------------------------------

def test_gradients_tutorial_jacobian_and_hessian():
    x = T.dvector("x")
    y = x ** 2
    J, updates = scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]), non_sequences=[y, x])
    f = function([x], J, updates=updates)
    np.testing.assert_array_equal(f(np.array([4.0, 4.0])), [[8.0, 0.0], [0.0, 8.0]])     # the tutorial's
    cost = y.sum()
    gy = T.grad(cost, x)
    H, updates = scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]), non_sequences=[gy, x])
    np.testing.assert_array_equal(function([x], H, updates=updates)(np.array([4.0, 4.0])), [[2.0, 0.0], [0.0, 2.0]])


def test_jacobian_and_hessian_of_a_nonlinear_function():
    x = T.dvector("x")
    A = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]])
    y = T.tanh(T.dot(T.constant(A), x)) * x[0]
    J, _ = scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]), non_sequences=[y, x])
    cost = T.sum(T.exp(T.dot(T.constant(A), x) * 0.5)) + x[1] * x[2] ** 3
    gy = T.grad(cost, x)
    H, _ = scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]), non_sequences=[gy, x])
    f = function([x], [J, H, T.jacobian(y, x), T.hessian(cost, x)])
    xv = np.array([0.4, -0.3, 0.8])
    got = f(xv)
    y_np = lambda v: np.tanh(A @ v) * v[0]                                   # noqa: E731
    grad_np = lambda v: 0.5 * A.T @ np.exp(A @ v * 0.5) + np.array([0.0, v[2] ** 3, 3 * v[1] * v[2] ** 2])  # noqa
    want_J = np.array([numeric_grad(lambda v: y_np(v)[i], xv) for i in range(2)])
    want_H = np.array([numeric_grad(lambda v: grad_np(v)[i], xv) for i in range(3)])
    np.testing.assert_allclose(got[0], want_J, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(got[1], want_H, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(got[0], got[2], rtol=1e-14)
    np.testing.assert_allclose(got[1], got[3], rtol=1e-14)


def test_non_sequences_reach_the_step_as_given_and_can_repeat():
    x, w = T.dvector("x"), T.dscalar("w")
    received = []

    def step(a, w1, w2, k):
        received.extend([w1, w2, k])
        return a * w1 + w2 * k

    out, _ = scan(step, sequences=x, non_sequences=[w, w, 2.0])
    assert received[0] is w and received[1] is w and isinstance(received[2], T.TensorVariable)
    cost = out.sum()
    f = function([x, w], [out, T.grad(cost, w)])
    got = f(np.array([1.0, 2.0, 3.0]), 0.5)
    np.testing.assert_allclose(got[0], [1.5, 2.0, 2.5])
    assert got[1] == pytest.approx(6.0 + 3 * 2.0)           # both w's counted once each


# ---- truncate_gradient --------------------------------------------------------------------------

def _rnn_numpy(xv, h0, u, w, cw, k=None):
    """Forward, and backpropagation through the last k steps only (all of them when k is None):
    the gradients of the earlier x entries are zero, and h0 gets one only when the window reaches it."""
    hs, h = [], h0
    for x_t in xv:
        h = np.tanh(x_t * u + h * w)
        hs.append(h)
    n = len(xv)
    first = 0 if k is None else max(n - k, 0)
    dx, du, dw, carry = np.zeros(n), 0.0, 0.0, 0.0
    for t in range(n - 1, first - 1, -1):
        dpre = (cw[t] + carry) * (1 - hs[t] ** 2)
        prev = hs[t - 1] if t else h0
        dx[t], du, dw, carry = dpre * u, du + dpre * xv[t], dw + dpre * prev, dpre * w
    return np.array(hs), dx, (carry if first == 0 else 0.0), du, dw


@pytest.mark.parametrize("k,back", [(2, False), (3, True), (0, False), (6, False), (10, True)])
def test_truncate_gradient(k, back):
    x, h0, u, w = T.dvector("x"), T.dscalar("h0"), T.dscalar("u"), T.dscalar("w")
    hs, _ = scan(lambda x_t, h, u, w: T.tanh(x_t * u + h * w), sequences=x, outputs_info=h0,
                 non_sequences=[u, w], truncate_gradient=k, go_backwards=back)
    cw = np.linspace(0.5, 1.5, 6)
    cost = (hs * T.constant(cw)).sum()
    f = function([x, h0, u, w], [hs, *T.grad(cost, [x, h0, u, w])])
    xv, h0v, uv, wv = np.array([0.3, -0.2, 0.5, 0.1, -0.4, 0.6]), 0.2, 0.9, 0.8
    got = f(xv, h0v, uv, wv)
    want = _rnn_numpy(xv[::-1] if back else xv, h0v, uv, wv, cw, k)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-15)   # the forward is not truncated
    np.testing.assert_allclose(got[1], want[1][::-1] if back else want[1], rtol=1e-12, atol=1e-15)
    for g, wnt in zip(got[2:], want[2:]):
        assert g == pytest.approx(wnt, rel=1e-12, abs=1e-15)
    if k >= 6:                 # a window covering every step is the full gradient
        full = numeric_grad(lambda a: (_rnn_numpy(a[::-1] if back else a, h0v, uv, wv, cw)[0] * cw).sum(), xv)
        np.testing.assert_allclose(got[1], full, rtol=1e-7, atol=1e-9)
    else:
        assert not got[2] and got[1][::-1 if back else 1][:6 - k].tolist() == [0.0] * (6 - k)


def test_truncate_gradient_with_output_taps_and_updates():
    x, x0 = T.dvector("x"), T.dvector("x0")
    c = shared(1.0, name="c")
    out, updates = scan(lambda x_t, a, b: (a * 0.5 + b * 0.25 + x_t * c, {c: c * 1.5}), sequences=x,
                        outputs_info=dict(initial=x0, taps=[-2, -1]), truncate_gradient=2)
    f = function([x, x0], [out, *T.grad(out.sum(), [x, x0])], updates=updates)
    xv, x0v = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, -0.5])
    buf, cv = list(x0v), 1.0
    for t in range(4):
        buf.append(buf[-2] * 0.5 + buf[-1] * 0.25 + xv[t] * cv)
        cv *= 1.5
    got = f(xv, x0v)
    np.testing.assert_allclose(got[0], buf[2:], rtol=1e-15)
    assert c.get_value() == pytest.approx(cv)
    # the last two steps only: d out[3]/d x[3] = c3; d (out[2] + out[3]) / d x[2] = c2 (1 + 0.25)
    np.testing.assert_allclose(got[1], [0.0, 0.0, 1.5 ** 2 * 1.25, 1.5 ** 3], rtol=1e-15)
    np.testing.assert_array_equal(got[2], [0.0, 0.0])


# ---- strict, the small options, errors ----------------------------------------------------------

def test_strict_needs_every_outer_variable_in_non_sequences():
    W = shared(np.eye(2) * 2, name="W")
    x, b = T.dmatrix("x"), T.dvector("b")
    with pytest.raises(MissingInputError, match=r"strict=True.*reads W .*non_sequences"):
        scan(lambda r: T.dot(r, W), sequences=x, strict=True)
    with pytest.raises(MissingInputError, match="reads b"):
        scan(lambda r, w: T.dot(r, w) + b, sequences=x, non_sequences=W, strict=True)
    out, _ = scan(lambda r, w, bb: T.dot(r, w) + bb, sequences=x, non_sequences=[W, b], strict=True)
    np.testing.assert_array_equal(function([x, b], out)(np.ones((2, 2)), np.array([1.0, 0.0])), [[3.0, 2.0]] * 2)


def test_small_options():
    x, n = T.dvector("x"), T.lscalar("n")
    out, updates = scan(lambda a: a * 2, sequences=[x], n_steps=n, return_list=True, name="doubled", mode="FAST_RUN",
                        profile=True, allow_gc=False)
    assert isinstance(out, list) and len(out) == 1 and out[0].name == "doubled" and updates == {}
    (a, b), _ = gencomp.scan(lambda v, s: [v + s, v], sequences=x, outputs_info=[T.constant(0.0), None],
                             name="pair")
    assert (a.name, b.name) == ("pair[0]", "pair[1]")
    f = function([x, n], [out[0], a, b])
    got = f(np.array([1.0, 2.0, 3.0]), 2)
    np.testing.assert_array_equal(got[0], [2.0, 4.0])
    np.testing.assert_array_equal(got[1], [1.0, 3.0, 6.0])
    assert gencomp.scan_module.until is until and gencomp.scan_module.scan is gencomp.scan


def test_bad_input_gives_clear_errors():
    x, h0 = T.dvector("x"), T.dvector("h0")
    grows, _ = scan(lambda h: T.concatenate([h, h[:1]]), outputs_info=h0, n_steps=3)
    with pytest.raises(ValueError, match=r"state 0 has shape \(3,\) at step 0 but its initial value has shape "
                                         r"\(2,\).*h0\[t-1\]"):
        function([h0], grows)(np.zeros(2))
    with pytest.raises(ValueError, match=r"returned \(updates, outputs\)"):
        scan(lambda a: ({}, a), sequences=x)
    with pytest.raises(ValueError, match="cannot parse"):
        scan(lambda a: "text", sequences=x)
    with pytest.raises(ValueError, match="cannot parse"):
        scan(lambda a: (a, until(a > 0), {}), sequences=x)
    with pytest.raises(ValueError, match="no initial value"):
        scan(lambda a: a, sequences=x, outputs_info=dict(taps=[-1]))
    with pytest.raises(ValueError, match="return_steps"):
        scan(lambda a, h: a + h, sequences=x, outputs_info=dict(initial=T.dscalar(), return_steps=2))
    with pytest.raises(ValueError, match="taps of sequence 0 must be a non-empty list of ints"):
        scan(lambda a: a, sequences=dict(input=x, taps=[]))
    with pytest.raises(ValueError, match="n_steps must be an integer"):
        scan(lambda a: a, sequences=x, n_steps=T.dscalar())
    with pytest.raises(TypeError, match="until needs a scalar condition"):
        until(x > 0)
