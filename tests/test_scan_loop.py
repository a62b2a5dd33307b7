"""scan as a C loop inside the function's module: the same numbers as the numpy reference evaluator
(device='py', which runs the step from Python), forward and backward loops, stacked outputs whose
lengths C finds, states, nested scans, errors raised with the reference's messages, threads."""

from __future__ import annotations

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from gencomp import function, shared
from _threads import in_threads


def _loops(f) -> int:
    """How many scans of `f` run as C loops."""
    from gencomp.codegen.lower import ScanStep

    return sum(isinstance(s, ScanStep) for s in f._runner.plan.steps)


def _both(inputs, outputs, **kw):
    return function(inputs, outputs, **kw), function(inputs, outputs, device="py", **kw)


def _close(got, want, rtol=1e-12):
    for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_rnn_forward_and_bptt_run_as_loops(go_backwards):
    rng = np.random.default_rng(0)
    w = shared(rng.standard_normal((4, 4)) * 0.4, name="W")
    u = shared(rng.standard_normal((3, 4)), name="U")
    x, h0, n = T.dtensor3("x"), T.dmatrix("h0"), T.lscalar("n")

    def step(x_t, h, total):
        h_new = T.tanh(T.dot(x_t, u) + T.dot(h, w))
        return h_new, total + h_new.sum(axis=1), (h_new[:, 1:] ** 2).sum()

    (hs, totals, extra), _ = gencomp.scan(step, sequences=x, outputs_info=[h0, T.zeros((x.shape[1],)), None],
                                          n_steps=n, go_backwards=go_backwards)
    cost = (hs[-1] ** 2).sum() + totals.sum() * 0.1 + extra.sum()
    outs = [cost, hs, totals, extra, *T.grad(cost, [w, u, x, h0])]
    f, ref = _both([x, h0, n], outs)
    assert _loops(f) == 2                               # the forward scan and its gradient
    for steps in (5, 3, 1):
        X, H0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 4))
        _close(f(X, H0, steps), ref(X, H0, steps))
    g, ref = _both([x, h0, n], [hs, totals, extra])   # no step at all
    X, H0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 4))
    _close(g(X, H0, 0), ref(X, H0, 0))


def test_results_whose_lengths_c_finds_and_several_dtypes():
    """A step result sliced from a product (its lengths known only once computed) is copied into
    its stack; an integer state and a float32 output live beside it."""
    x = T.fmatrix("x")

    def step(row, count, acc):
        prod = T.outer(row, row)[1:, ::2]
        return count + 1, acc + prod, prod.sum()

    (counts, accs, sums), _ = gencomp.scan(
        step, sequences=x, outputs_info=[T.constant(np.int32(0)), T.zeros((x.shape[1] - 1, (x.shape[1] + 1) // 2),
                                                                          dtype="float32"), None])
    f, ref = _both([x], [counts, accs, sums])
    assert _loops(f) == 1
    X = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    got, want = f(X), ref(X)
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32
    _close(got, want, rtol=1e-6)


def test_nested_scans():
    m = T.dmatrix("m")

    def row_cumsum(row):
        sums, _ = gencomp.scan(lambda v, s: s + v, sequences=row, outputs_info=T.constant(0.0))
        return sums

    out, _ = gencomp.scan(row_cumsum, sequences=m)
    f = function([m], [out, T.grad(out.sum() * 1.5, m)])
    M = np.random.default_rng(2).standard_normal((4, 5))
    got = f(M)
    np.testing.assert_allclose(got[0], np.cumsum(M, axis=1), rtol=1e-13)
    np.testing.assert_allclose(got[1], 1.5 * np.arange(5, 0, -1) * np.ones((4, 1)), rtol=1e-13)


def test_errors_raise_the_reference_messages():
    x, n = T.dvector("x"), T.lscalar("n")
    doubled, _ = gencomp.scan(lambda a: a * 2, sequences=x, n_steps=n)
    f = function([x, n], doubled)
    assert _loops(f) == 1
    np.testing.assert_array_equal(f(np.arange(4.0), 2), [0.0, 2.0])
    with pytest.raises(ValueError, match="fewer than"):
        f(np.arange(4.0), 6)
    with pytest.raises(ValueError, match="n_steps"):
        f(np.arange(4.0), -1)
    # a state that changes shape from step to step
    v = T.dvector("v")
    grown, _ = gencomp.scan(lambda s: T.concatenate([s, s]), outputs_info=v, n_steps=2)
    g = function([v], grown)
    with pytest.raises(ValueError):
        g(np.ones(2))


def test_steps_that_need_python_still_run():
    """A random draw inside the step has no C form: the scan then runs its step from Python."""
    from gencomp.tensor.shared_randomstreams import RandomStreams

    srng = RandomStreams(3)
    v = T.dmatrix("v")
    samples, _ = gencomp.scan(lambda s: srng.binomial(size=s.shape, n=1, p=T.nnet.sigmoid(s), dtype="float64"),
                              outputs_info=v, n_steps=3)
    f = function([v], samples)
    assert _loops(f) == 0
    out = f(np.zeros((2, 3)))
    assert out.shape == (3, 2, 3) and set(np.unique(out)) <= {0.0, 1.0}


def test_loops_in_threads():
    x = T.dmatrix("x")
    hs, _ = gencomp.scan(lambda r, h: T.tanh(r + h * 0.5), sequences=x, outputs_info=T.zeros((x.shape[1],)))
    f = function([x], hs.sum(axis=0))
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((int(rng.integers(0, 30)), 7)) for _ in range(16)]
    wants = [f(X) for X in inputs]

    def work(k):
        for r in range(10):
            X, want = inputs[(k + r) % 16], wants[(k + r) % 16]
            np.testing.assert_array_equal(f(X), want)

    in_threads(work, 4)


def test_lstm_cell_step_and_gradient_compile_warning_free(tmp_path):
    """The lisa-lab LSTM cell (gates sliced from one product, a mask): both loops in C, the numbers of
    the reference evaluator, and its source clean under -Wall -Wextra -Werror."""
    from test_codegen import _strict_compile

    rng = np.random.default_rng(5)
    hidden = 3
    U = shared(rng.standard_normal((hidden, 4 * hidden)) * 0.5, name="U")
    m, below, h0 = T.dmatrix("m"), T.dtensor3("below"), T.dmatrix("h0")

    def step(m_, x_, h_, c_):
        pre = T.dot(h_, U) + x_
        i, f, o = (T.nnet.sigmoid(pre[:, k * hidden:(k + 1) * hidden]) for k in range(3))
        c = f * c_ + i * T.tanh(pre[:, 3 * hidden:])
        c = m_[:, None] * c + (1. - m_)[:, None] * c_
        h = m_[:, None] * (o * T.tanh(c)) + (1. - m_)[:, None] * h_
        return h, c

    (hs, cs), _ = gencomp.scan(step, sequences=[m, below], outputs_info=[h0, h0])
    cost = (hs[-1] ** 2).sum() + cs.mean()
    outs = [cost, *T.grad(cost, [U, below, h0])]
    f, ref = _both([m, below, h0], outs)
    assert _loops(f) == 2
    M = (rng.random((6, 2)) > 0.3).astype(float)
    B, H0 = rng.standard_normal((6, 2, 4 * hidden)), rng.standard_normal((2, hidden))
    _close(f(M, B, H0), ref(M, B, H0))
    _strict_compile(f.source_path, tmp_path)


def test_until_stops_the_c_loop():
    from gencomp.scan_module import until

    x, lim = T.dvector("x"), T.dscalar("lim")

    def step(a, s):
        new = s + a
        return [new, new * 2], until(new > lim)

    (sums, doubled), _ = gencomp.scan(step, sequences=x, outputs_info=[T.constant(0.0), None])
    f, ref = _both([x, lim], [sums, doubled])
    assert _loops(f) == 1
    for bound in (3.0, 100.0, -1.0):
        X = np.arange(6.0)
        got, want = f(X, bound), ref(X, bound)
        _close(got, want)
        stop = next((k for k, v in enumerate(np.cumsum(X)) if v > bound), len(X) - 1)
        np.testing.assert_array_equal(got[0], np.cumsum(X)[:stop + 1])


def _ring_rows(f) -> list:
    """The last_only flags of the scans of `f`'s optimized graph."""
    from gencomp.scan_op import Scan

    return [n.op.last_only for n in f.maker.fgraph.toposort() if isinstance(n.op, Scan)]


@pytest.mark.parametrize("go_backwards", [False, True])
def test_a_scan_read_only_for_its_last_row_keeps_a_ring_of_rows(go_backwards):
    """x[-1] / x[-1:] of a state, of an output that is not fed back and of the hidden rows of a state
    with taps: the loop keeps two rows (states) or one (other outputs), not a stack per step;
    the same numbers as the reference for 0 to 7 steps (0 steps: the reference's IndexError)."""
    rng = np.random.default_rng(4)
    x, a0, b0, n = T.dmatrix("x"), T.dvector("a0"), T.dvector("b0"), T.lscalar("n")

    def step(row, a, b2, b1):
        new_a = T.tanh(a * 0.9 + row)
        return new_a, b1 * 0.5 + b2 * 0.25 + new_a.sum(), (new_a * row).sum()

    (a, b, s), _ = gencomp.scan(step, sequences=x, n_steps=n, go_backwards=go_backwards,
                                outputs_info=[a0, dict(initial=b0, taps=[-2, -1]), None])
    outs = [a[-1], b[-1:], s[-1], a[-1].sum() + s[-1:].sum()]
    f, ref = _both([x, a0, b0, n], outs)
    assert _loops(f) == 1 and "% 2" in f.source
    assert _ring_rows(f) and all(all(flags) for flags in _ring_rows(f)), _ring_rows(f)
    X, A0, B0 = rng.standard_normal((7, 3)), rng.standard_normal(3), rng.standard_normal(2)
    for steps in range(1, 8):
        _close(f(X, A0, B0, steps), ref(X, A0, B0, steps))
    with pytest.raises(IndexError, match="out of bounds"):
        f(X, A0, B0, 0)


def test_a_ring_is_not_used_where_more_rows_are_read():
    x = T.dvector("x")
    s, _ = gencomp.scan(lambda v, acc: acc + v, sequences=x, outputs_info=T.constant(0.0))
    for out in ([s[-1], s[0]], [s[-1], s.sum()], [s[-2]], [s]):
        f = function([x], out)
        assert _ring_rows(f) == [(False,)], out
        np.testing.assert_allclose(f(np.arange(1.0, 5.0))[0], function([x], out, device="py")(np.arange(1.0, 5.0))[0])


def test_a_long_loop_returning_its_last_state_needs_two_states_of_memory():
    """10**6 steps of a 1000-element state: a stack of every step would be 8 GB."""
    v, n = T.dvector("v"), T.lscalar("n")
    last = gencomp.scan(lambda s: s * 0.5 + 1.0, outputs_info=v, n_steps=n)[0][-1]
    f = function([v, n], last)
    np.testing.assert_allclose(f(np.zeros(1000), 10**6), np.full(1000, 2.0))
    np.testing.assert_allclose(f(np.zeros(3), 2), [1.5] * 3)


def test_a_ring_with_until_and_with_a_step_run_from_python():
    from gencomp.scan_module import until
    from gencomp.tensor.shared_randomstreams import RandomStreams

    v = T.dscalar("v")
    seq, _ = gencomp.scan(lambda s: (s * 2, until(s * 2 > 50)), outputs_info=v, n_steps=100)
    f = function([v], seq[-1])
    assert _ring_rows(f) == [(True,)]
    assert f(1.0) == 64.0 and f(100.0) == 200.0
    srng = RandomStreams(3)
    m = T.dmatrix("m")
    draws, _ = gencomp.scan(lambda s: s + srng.uniform(size=s.shape), outputs_info=m, n_steps=4)
    g = function([m], [draws[-1]])
    assert _loops(g) == 0 and _ring_rows(g) == [(True,)]
    (got,) = g(np.zeros((2, 3)))
    assert got.shape == (2, 3) and np.all((got > 0) & (got < 4))
