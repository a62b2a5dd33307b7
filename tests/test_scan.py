"""gencomp.scan (Theano's scan): forward results against numpy loops, and gradients (backpropagation
through time) against central finite differences, over the basic forms: sequences,
recurrent states, non-sequences and outer variables read directly, n_steps, go_backwards,
outputs that are not fed back, several states. Taps, updates, until, truncate_gradient, strict
and the gradient tutorial's Jacobian and Hessian: tests/test_scan_interface.py."""

from __future__ import annotations

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from gencomp import function, shared
from gencomp.scan import scan


def numeric_grad(fn, a, eps=1e-6):
    out = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i] += eps
        down[i] -= eps
        out[i] = (fn(up) - fn(down)) / (2 * eps)
    return out


def test_theano_tutorial_examples():
    a, k = T.dvector("A"), T.lscalar("k")
    powers, updates = scan(lambda prior, A: prior * A, outputs_info=T.ones_like(a), non_sequences=a, n_steps=k)
    assert len(updates) == 0
    f = function([a, k], [powers, powers[-1]])
    av = np.arange(5.0)
    stacked, last = f(av, 3)
    np.testing.assert_array_equal(stacked, [av, av ** 2, av ** 3])
    np.testing.assert_array_equal(last, av ** 3)
    coef, x = T.dvector("c"), T.dscalar("x")
    terms, _ = gencomp.scan(lambda c, p, x: c * x ** p, sequences=[coef, T.arange(1000)], non_sequences=x)
    assert function([coef, x], terms.sum())(np.array([1.0, 0.0, 2.0]), 3.0) == 19.0   # shortest sequence


def _rnn(go_backwards=False, n_steps=None):
    rng = np.random.default_rng(0)
    w = shared(rng.standard_normal((3, 3)) * 0.5, name="W")
    u = shared(rng.standard_normal((2, 3)), name="U")
    x, h0 = T.dmatrix("X"), T.dvector("h0")

    def step(x_t, h, c):                      # two states (h, a running sum) and one plain output
        h_new = T.tanh(T.dot(x_t, u) + T.dot(h, w))
        return h_new, c + h_new.sum(), (h_new * x_t.sum()).mean()

    (hs, cs, ys), _ = scan(step, sequences=x, outputs_info=[h0, T.constant(0.0), None],
                           go_backwards=go_backwards, n_steps=n_steps)
    cost = (hs ** 2).sum() + cs[-1] * 0.5 + ys.sum()
    return w, u, x, h0, cost, [hs, cs, ys]


def _rnn_numpy(wv, uv, xv, h0v, go_backwards=False, n_steps=None):
    xs = xv[::-1] if go_backwards else xv
    n = len(xs) if n_steps is None else n_steps
    h, c, hs, cs, ys = h0v, 0.0, [], [], []
    for t in range(n):
        h = np.tanh(xs[t] @ uv + h @ wv)
        c = c + h.sum()
        hs.append(h)
        cs.append(c)
        ys.append((h * xs[t].sum()).mean())
    cost = (np.array(hs) ** 2).sum() + cs[-1] * 0.5 + sum(ys)
    return cost, [np.array(hs), np.array(cs), np.array(ys)]


@pytest.mark.parametrize("go_backwards,n_steps", [(False, None), (True, None), (False, 3), (True, 4)])
def test_rnn_forward_and_gradients(go_backwards, n_steps):
    w, u, x, h0, cost, outs = _rnn(go_backwards, n_steps)
    grads = T.grad(cost, [w, u, x, h0])
    f = function([x, h0], [cost, *outs, *grads])
    rng = np.random.default_rng(1)
    xv, h0v = rng.standard_normal((5, 2)), rng.standard_normal(3)
    got = f(xv, h0v)
    wv, uv = w.get_value(), u.get_value()
    want_cost, want_outs = _rnn_numpy(wv, uv, xv, h0v, go_backwards, n_steps)
    assert got[0] == pytest.approx(want_cost, rel=1e-12)
    for g, want in zip(got[1:4], want_outs):
        np.testing.assert_allclose(g, want, rtol=1e-12)
    c = lambda *a: _rnn_numpy(*a, go_backwards, n_steps)[0]      # noqa: E731
    numeric = [numeric_grad(lambda a: c(a, uv, xv, h0v), wv), numeric_grad(lambda a: c(wv, a, xv, h0v), uv),
               numeric_grad(lambda a: c(wv, uv, a, h0v), xv), numeric_grad(lambda a: c(wv, uv, xv, a), h0v)]
    for g, want in zip(got[4:], numeric):
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)


def test_errors_and_unsupported_forms():
    # (taps, truncate_gradient, updates and until are supported now: tests/test_scan_interface.py)
    x = T.dvector("x")
    with pytest.raises(ValueError, match=r"output 0 has taps \[1\]: output taps must be negative"):
        scan(lambda a, b: a + b, sequences=x, outputs_info={"initial": x, "taps": [1]})
    with pytest.raises(ValueError, match="truncate_gradient must be -1"):
        scan(lambda a: a, sequences=x, truncate_gradient=-5)
    with pytest.raises(ValueError, match="n_steps"):
        scan(lambda: T.constant(1.0), outputs_info=None)
    with pytest.raises(ValueError, match="outputs_info"):
        scan(lambda a: [a, a], sequences=x, outputs_info=[None])
    n = T.lscalar("n")
    zs, _ = scan(lambda a: a * 2, sequences=x, n_steps=n)
    g = function([x, n], zs)
    np.testing.assert_array_equal(g(np.arange(4.0), 2), [0.0, 2.0])
    with pytest.raises(ValueError, match="fewer than"):
        g(np.arange(4.0), 6)


def test_scan_graph_is_cached_and_pickles(tmp_path):
    import pickle

    x = T.dvector("x")
    sums, _ = scan(lambda a, s: s + a, sequences=x, outputs_info=T.constant(0.0))
    f = function([x], sums)
    again = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(again(np.arange(4.0)), np.cumsum(np.arange(4.0)))
    # the same program built again gives the same cache key (the step is hashed by structure)
    x2 = T.dvector("x")
    sums2, _ = scan(lambda a, s: s + a, sequences=x2, outputs_info=T.constant(0.0))
    assert function([x2], sums2).cache_key == f.cache_key
