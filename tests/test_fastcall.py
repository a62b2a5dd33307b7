"""The C call path (gencomp/compile/fastcall.c): same results and errors as the Python path."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gencomp
import gencomp.tensor as T
from gencomp import function
from _threads import in_threads


@pytest.fixture(autouse=True, scope="module")
def fastcall_built():
    """Build the extension in this session's cache first (functions made while it builds take the
    Python path until it is there)."""
    from pathlib import Path

    from gencomp.compile import fastcall
    assert fastcall.load(Path(gencomp.config.cache_dir), gencomp.config.cc) is not None


def python_path(f):
    """The same function with its C call path switched off."""
    f_slow = f.__class__.__new__(f.__class__)
    f_slow.__dict__.update(f.__dict__)
    f_slow._fast = None
    return f_slow


def test_simple_functions_take_the_c_path_and_agree():
    x, y = T.dscalars("x", "y")
    f = function([x, y], x + y)
    assert f._fast is not None
    out = f(1.0, 2.0)
    assert type(out) is np.ndarray and out.shape == () and out == 3.0
    assert f(np.array(1.5), 2.0) == 3.5 and f(1, 2) == 3.0 and f(x=1.0, y=2.0) == 3.0


@settings(max_examples=25, deadline=None)
@given(dtype=st.sampled_from(["float64", "float32", "int64", "int32", "bool"]),
       rows=st.integers(0, 5), cols=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_c_path_equals_python_path(dtype, rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = T.tensor(dtype, shape=(None, None), name="x")
    r = T.tensor(dtype, shape=(1, None), name="r")
    s = T.scalar("s", dtype=dtype)
    outs = [x * s + r, T.maximum(x, r).sum(axis=0), T.eq(x, s)] if dtype != "bool" else [x & r, T.eq(x, s)]
    f = function([x, r, s], outs + [x + np.ones(cols, dtype)] if dtype != "bool" else outs)
    assert f._fast is not None
    X = (rng.standard_normal((rows, cols)) * 10).astype(dtype)
    R = (rng.standard_normal((1, cols)) * 10).astype(dtype)
    S = np.asarray(rng.standard_normal() * 10).astype(dtype)
    fast, slow = f(X, R, S), python_path(f)(X, R, S)
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    strided = f(np.asarray(X.T.copy().T), R, S)            # Fortran order: another stride pattern
    for a, b in zip(strided, slow):
        np.testing.assert_array_equal(a, b)


def test_c_path_falls_back_for_errors_and_conversions():
    x, y = T.dvectors("x", "y")
    f = function([x, y], x * y)
    assert f._fast is not None
    with pytest.raises(ValueError, match="shape mismatch"):
        f(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="'x'"):
        f(np.ones(3, np.complex128), np.ones(3))
    with pytest.raises(TypeError):
        f(np.ones(3))
    np.testing.assert_array_equal(f([1, 2], [3, 4]), [3.0, 8.0])               # lists: converted
    np.testing.assert_array_equal(f(np.ones(2, np.float32), np.ones(2)), [1.0, 1.0])   # safe cast
    i = T.lscalar("i")
    g = function([i], i * 2)
    assert g(5) == 10 and g(True) == 2
    with pytest.raises(TypeError):
        g(2**64)                      # does not fit an int64: the C path leaves it to the converter


def test_outputs_are_new_arrays_and_never_inputs():
    x = T.dvector("x")
    f = function([x], [x, x * 1, x + 0])
    v = np.arange(3.0)
    outs = f(v)
    assert all(o is not v and not np.shares_memory(o, v) for o in outs)
    assert not np.shares_memory(outs[0], outs[1])


def test_a_function_made_while_the_extension_builds_takes_the_c_path_later(tmp_path):
    x, y = T.dscalars("x", "y")
    with gencomp.config.change(cache_dir=str(tmp_path / "cache")):
        f = function([x, y], x * y + 1)
    for _ in range(5000):
        assert f(2.0, 3.0) == 7.0
        if f._fast is not None:
            break
        threading.Event().wait(0.002)
    assert f._fast is not None and f(2.0, 3.0) == 7.0


def test_functions_with_updates_or_borrowed_outputs_keep_the_python_path():
    w = gencomp.shared(np.ones(3))
    x = T.dvector("x")
    assert function([x], x * 2, updates=[(w, w + 1)])._fast is None
    assert function([x], gencomp.Out(x * 2, borrow=True))._fast is None


def test_shared_variables_are_read_at_each_call():
    W = gencomp.shared(np.random.default_rng(0).standard_normal((5, 3)), name="W")
    b = gencomp.shared(np.zeros(3), name="b")
    x = T.dmatrix("x")
    f = function([x], [T.dot(x, W) + b, T.nnet.softmax(T.dot(x, W) + b).argmax(axis=1)])
    assert f._fast is not None
    X = np.random.default_rng(1).standard_normal((4, 5))
    for shape in ((5, 3), (5, 3), (5, 6)):
        W.set_value(np.random.default_rng(shape[1]).standard_normal(shape))
        b.set_value(np.arange(shape[1], dtype=float))
        z, k = f(X)
        np.testing.assert_allclose(z, X @ W.get_value() + b.get_value(), rtol=1e-12)
        np.testing.assert_array_equal(k, np.argmax(z, axis=1))
    bump = function([], [], updates=[(b, b + 1)])          # an update of a variable f reads
    bump()
    np.testing.assert_allclose(f(X)[0], X @ W.get_value() + b.get_value(), rtol=1e-12)
    W.set_value(np.ones((4, 6)))                            # no longer fits x: the Python path raises
    with pytest.raises(ValueError):
        f(X)


def test_c_path_from_many_threads():
    x = T.dmatrix("x")
    f = function([x], T.tanh(x) * 2 + x.sum(axis=0))
    assert f._fast is not None
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((int(rng.integers(1, 50)), 7)) for _ in range(16)]
    wants = [python_path(f)(v) for v in inputs]

    def work(k):
        for r in range(40):
            j = (k + r) % len(inputs)
            np.testing.assert_array_equal(f(inputs[j]), wants[j])

    in_threads(work, 6)


def test_shared_variables_and_constants_together():
    """Constants' rows come after the shared variables' in the plan (they were once looked up as if
    the shared variables were not there)."""
    W, V = gencomp.shared(np.ones(3), name="W"), gencomp.shared(np.full(3, 2.0), name="V")
    x = T.dvector("x")
    f = function([x], [x * W + V * np.array([1.0, 2.0, 3.0]), T.dot(x, np.arange(3.0))])
    assert f._fast is not None
    got = f(np.array([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(got[0], [3.0, 4.0, 8.0])
    assert got[1] == 4.0
