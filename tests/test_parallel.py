"""OpenMP (config.openmp, config.threads): threads change no result; and Python threads calling
compiled functions at once (the last tests).

Loops above PARALLEL_MIN elements may run on several threads when gencomp.config.openmp is on
(threads.h.j2 times one thread against the team and keeps the faster; these tests force the
team with `_team`); the generated source has '#pragma omp parallel' only then. Elementwise
arithmetic must be bit-identical with and without threads. Transcendental functions use
libmvec's vector forms (within 4 ulp of the scalar C library) where the loop vectorizes: below
the threshold both settings run the same single-threaded vector loop (identical bits); above
it they are compared in ulps. Full reductions add fixed blocks in order: identical bits. The
environment variables of the OpenMP runtime (OMP_NUM_THREADS, OMP_THREAD_LIMIT) must not
change a result either: those runs happen in subprocesses.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gencomp
import gencomp.tensor as T
from gencomp import function, shared
from gencomp.codegen.c import PARALLEL_MIN
from gencomp.compile.cc import supports_openmp
from _threads import in_threads

LARGE = PARALLEL_MIN * 3 + 12345          # > the threading threshold, odd, not a multiple of 8
SIZES = {"large": LARGE, "small": 1001, "threshold": PARALLEL_MIN, "tiny": 7}
HAS_OPENMP = supports_openmp(gencomp.config.cc)

_FUNCTIONS: dict = {}


def _x_y():
    return T.vectors("x", "y")


# name -> (inputs maker, outputs maker, comparison)
GRAPHS = {
    "arith": (_x_y, lambda x, y: [(2 * x + y * y - 1) / (1 + abs(x)), x * y - x / (y * y + 1),
                                  T.maximum(x, y) - T.minimum(x, -y), T.switch(x > y, x * 3, y - 0.5)], "exact"),
    # one C library call per output, so that ulps measure the function and not a cancellation
    "transcendental": (_x_y, lambda x, y: [T.exp(x), T.sin(y), T.log1p(abs(y)), T.tanh(x), T.cos(x),
                                           T.expm1(y), T.log(abs(x))], "ulp"),
    "reductions": (_x_y, lambda x, y: [T.sum(x ** 2), T.sum(T.exp(x * 0.01) * y), T.mean(x * y),
                                       T.sum(abs(x)), T.prod(1 + y * 1e-6)], "rounding"),
    "extrema": (_x_y, lambda x, y: [T.max(x * y), T.min(x - y), T.max(x)], "exact"),
}


def compiled(name, openmp, dtype="float64"):
    key = (name, openmp, dtype)
    if key not in _FUNCTIONS:
        make_inputs, make_outputs, _ = GRAPHS[name]
        inputs = [T.vector(v.name, dtype=dtype) for v in make_inputs()]
        with gencomp.config.change(openmp=openmp):
            _FUNCTIONS[key] = _team(function(inputs, make_outputs(*inputs)))
    return _FUNCTIONS[key]


def _team(f, threads=2):
    """f with its loops above PARALLEL_MIN forced onto `threads` threads (the adaptive choice
    of threads.h.j2 off), so that the threaded path is tested on any machine."""
    set_threads = getattr(f._runner.lib, "gc_set_threads", None)
    if set_threads is not None:
        set_threads(threads, 0)
    return f


def _values(n, dtype, seed=0, special=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    y = (rng.standard_normal(n) * 2).astype(dtype)
    if n > 10 and special:
        x[:6] = [0.0, -0.0, np.inf, -np.inf, 1e300 if dtype == "float64" else 1e30, -1.5]
        y[:6] = [-0.0, 2.0, 1.0, np.nan, -2.0, 0.0]
    return x, y


def _ulps(a, b):
    a, b = np.asarray(a), np.asarray(b)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(all="ignore"):
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64)) / np.spacing(np.abs(a).astype(a.dtype)).astype(np.float64)
    diff = np.where((a == b) | both_nan, 0, diff)
    return np.nan_to_num(diff, nan=np.inf)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_openmp_on_and_off_agree(name, size, dtype):
    n = SIZES[size]
    mode = GRAPHS[name][2]
    # reductions see finite data (a nan or inf would make every result nan or inf)
    x, y = _values(n, dtype, special=name not in ("reductions", "extrema"))
    with np.errstate(all="ignore"):
        on = compiled(name, True, dtype)(x, y)
        again = compiled(name, True, dtype)(x, y)
        off = compiled(name, False, dtype)(x, y)
    for k, (a, a2, b) in enumerate(zip(on, again, off)):
        assert a.shape == b.shape and a.dtype == b.dtype
        # threads split the work the same way on every call: results are deterministic
        np.testing.assert_array_equal(a, a2, err_msg=f"{name} output {k}: two calls differ")
        if mode == "exact":
            np.testing.assert_array_equal(a, b, err_msg=f"{name} output {k}: openmp on != off")
            assert np.array_equal(np.signbit(a), np.signbit(b))
        elif mode == "ulp" and n < PARALLEL_MIN:
            # one thread either way, and the same vectorized loop: the same bits. (Regression: the
            # unmodified `if (n >= PARALLEL_MIN)` of `#pragma omp parallel for simd` also applies
            # to `simd` (OpenMP 5), so below the threshold the loop ran scalar C library calls,
            # not libmvec's vector forms -- different bits, and exp+sin on 30,000 doubles 10x slower.)
            differ = int(np.sum(_ulps(a, b) > 0))
            assert differ == 0, f"{name} output {k}: {differ} of {n} elements differ between openmp on and off"
        elif mode == "ulp":
            # threads split the loop: an element at a chunk edge may take the scalar C library call
            # instead of the vector one (libmvec: within 4 ulp of it)
            worst = _ulps(a, b).max()
            assert worst <= 4, f"{name} output {k}: openmp on and off differ by {worst} ulp"
        else:
            # a full reduction sums blocks whose edges depend only on n, in order: the same bits
            np.testing.assert_array_equal(a, b, err_msg=f"{name} output {k}: openmp on != off")


def test_openmp_reductions_are_correct():
    """Both settings against an exact reference (math.fsum) on data that makes the order matter."""
    x = T.vector("x")
    n = LARGE
    v = np.random.default_rng(1).standard_normal(n) * 1e3
    v[::97] = 1e12
    exact = math.fsum(v.tolist())
    scale = math.fsum(np.abs(v).tolist())
    for openmp in (True, False):
        with gencomp.config.change(openmp=openmp):
            f = _team(function([x], [T.sum(x), T.max(x), T.sum(x, axis=0, keepdims=True)]))
        total, top, kept = f(v)
        assert abs(float(total) - exact) <= 1e-15 * scale * 8, (openmp, total, exact)
        assert top == v.max()
        assert abs(float(kept[0]) - exact) <= 1e-15 * scale * 8
        ones = f(np.ones(n))
        assert ones[0] == n and ones[2][0] == n
        w = np.ones(n)
        w[n - 5] = np.nan                    # in the last thread's share
        assert all(np.isnan(r).all() for r in f(w))
        w[n - 5] = np.inf
        assert f(w)[0] == np.inf and f(w)[1] == np.inf


def test_openmp_on_and_off_agree_on_strided_and_broadcast_matrices():
    m = T.matrix("m")
    r = T.row("r")
    a = np.random.default_rng(2).standard_normal((400, 300))
    b = np.random.default_rng(3).standard_normal((1, 400))
    results = {}
    for openmp in (True, False):
        with gencomp.config.change(openmp=openmp):
            f = _team(function([m, r], [m * 2 + r - m * m, T.sum(m, axis=0), T.max(m * r, axis=1),
                                        T.sum(m * m)]))
        results[openmp] = f(a.T, b)               # a transposed (strided) view: the n-d loop nest
    expected = [a.T * 2 + b - a.T * a.T, a.T.sum(axis=0), (a.T * b).max(axis=1), (a.T * a.T).sum()]
    for k, (on, off, ref) in enumerate(zip(results[True], results[False], expected)):
        np.testing.assert_array_equal(on, off, err_msg=f"output {k}")   # blocks do not depend on threads
        np.testing.assert_allclose(on, ref, rtol=1e-12, err_msg=f"output {k}")


def test_source_has_omp_parallel_only_when_openmp_is_on():
    x, y = _x_y()
    sources = {}
    for openmp in (True, False):
        with gencomp.config.change(openmp=openmp):
            f = function([x, y], [x * y + 1, T.sum(x * y)])
        with open(os.path.join(os.path.dirname(f.source_path), "gencomp.h")) as header:
            sources[openmp] = f.source + header.read()      # module.c and the runtime it includes
    assert ("#pragma omp parallel" in sources[True]) == HAS_OPENMP
    assert "#pragma omp parallel" not in sources[False]
    assert "<omp.h>" not in sources[False]
    assert "#pragma omp simd" in sources[False]        # vectorized loops either way
    assert str(PARALLEL_MIN) in sources[True] or not HAS_OPENMP


def test_openmp_flag_is_part_of_the_cache_key():
    x = T.vector("x")
    keys = set()
    for openmp in (True, False):
        with gencomp.config.change(openmp=openmp):
            keys.add(function([x], x * 5 + 2).cache_key)
    assert len(keys) == 2


_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import gencomp, gencomp.tensor as T
    x, y = T.vectors("x", "y")
    n = int(sys.argv[1])
    rng = np.random.default_rng(7)
    xv, yv = rng.standard_normal(n), rng.standard_normal(n)
    f = gencomp.function([x, y], [T.sum(x), T.sum(x * y), T.max(x), (2 * x + y * y - 1) / (1 + abs(x))])
    total, dot, top, ew = f(xv, yv)
    ones = gencomp.function([x], T.sum(x))(np.ones(n))
    print(json.dumps({"sum": float(total), "dot": float(dot), "max": float(top), "ones": float(ones),
                      "ew": float(np.sum(ew != (2 * xv + yv * yv - 1) / (1 + np.abs(xv))))}))
""")


def _child(env_overrides, n=LARGE):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OMP_DYNAMIC", "OMP_NESTED", "OMP_MAX_ACTIVE_LEVELS"):
        env.pop(k, None)
    env.update(env_overrides)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(n)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAS_OPENMP, reason="the C compiler has no OpenMP")
def test_results_do_not_depend_on_the_openmp_environment():
    """Regression: the full-reduction kernel sizes its partial sums by omp_get_max_threads() but
    the team may be smaller (OMP_THREAD_LIMIT=1, OMP_DYNAMIC=true, nested regions): the missing
    threads' slices are skipped and their uninitialized partials added -- sum(ones(100000)) gave
    50000 under OMP_THREAD_LIMIT=1."""
    rng = np.random.default_rng(7)
    xv, yv = rng.standard_normal(LARGE), rng.standard_normal(LARGE)
    exact = {"sum": math.fsum(xv.tolist()), "dot": math.fsum((xv * yv).tolist()), "max": float(xv.max()),
             "ones": float(LARGE), "ew": 0.0}
    scale = {"sum": math.fsum(np.abs(xv).tolist()), "dot": math.fsum(np.abs(xv * yv).tolist())}
    for env in ({"OMP_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "3"},
                {"OMP_NUM_THREADS": "2", "OMP_THREAD_LIMIT": "1"}):
        got = _child(env)
        for key, value in exact.items():
            tol = 8e-16 * scale[key] * 8 if key in scale else 0.0
            assert abs(got[key] - value) <= tol, f"{env}: {key} = {got[key]}, expected {value}"


@pytest.mark.skipif(not HAS_OPENMP, reason="the compiler has no OpenMP")
def test_adaptive_choice_keeps_results_whatever_it_picks():
    """The default (each loop times one thread against the team and keeps the faster, trying the
    other again later) must not change a bit of any result, call after call."""
    x, y = _x_y()
    outputs = lambda x, y: [(2 * x + y * y - 1) / (1 + abs(x)), T.sum(x * y), T.exp(x) * 0.5]
    with gencomp.config.change(threads=2):
        adaptive = function([x, y], outputs(x, y))
    with gencomp.config.change(openmp=False):
        serial = function([x, y], outputs(x, y))
    xv, yv = _values(LARGE, "float64", special=False)
    want = serial(xv, yv)
    for _ in range(40):                     # enough calls to measure both ways and try again
        for a, b in zip(adaptive(xv, yv), want):
            np.testing.assert_array_equal(a, b)


def test_threads_flag_is_checked_and_not_part_of_the_cache_key():
    assert gencomp.config.threads == len(os.sched_getaffinity(0))
    for bad, error in ((0, ValueError), (-2, ValueError), ("many", ValueError), (True, TypeError),
                       (2.5, TypeError)):
        with pytest.raises(error, match="config.threads"):
            gencomp.config.threads = bad
    x = T.vector("x")
    keys = set()
    for threads in (1, "3"):
        with gencomp.config.change(threads=threads):
            assert gencomp.config.threads == int(threads)
            f = function([x], x * 7 - 2)
            keys.add(f.cache_key)
            np.testing.assert_array_equal(f(np.arange(LARGE, dtype=x.dtype)),
                                          np.arange(LARGE, dtype=x.dtype) * 7 - 2)
    assert len(keys) == 1


_WAIT_CHILD = textwrap.dedent("""
    import json, os
    import gencomp, gencomp.tensor as T
    from gencomp.compile import cc
    x = T.vector("x")
    gencomp.function([x], x * 2)
    maps = open("/proc/self/maps").read()
    print(json.dumps({"state": cc.load_openmp_runtime(), "env": os.environ.get("OMP_WAIT_POLICY"),
                      "libgomp": "libgomp" in maps}))
""")


@pytest.mark.skipif(not HAS_OPENMP, reason="the compiler has no OpenMP")
@pytest.mark.parametrize("user_policy", [None, "active"])
def test_openmp_wait_policy_is_set_for_libgomp_only(user_policy, tmp_path):
    """gencomp loads libgomp with OMP_WAIT_POLICY=passive and removes the variable again; a
    policy the user chose is left alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["GENCOMP_CACHE_DIR"] = str(tmp_path)
    if user_policy:
        env["OMP_WAIT_POLICY"] = user_policy
    out = subprocess.run([sys.executable, "-c", _WAIT_CHILD], env=env, capture_output=True,
                         text=True, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["libgomp"]
    if user_policy:
        assert got["env"] == user_policy and "user" in got["state"]
    else:
        assert got["env"] is None and "passive" in got["state"]


# ------------------------------------------------------------ Python threads calling one function
#
# Each thread calls a compiled function on a frame of temporaries of its own (CRunner.local) and
# cffi releases the GIL during the C call, so calls from several Python threads run at once.
# (That calls of different functions do not serialise is a timing matter, checked by
# bench/check_parallel_calls.py rather than here.)



_ONE: dict = {}


def _one_function():
    """Temporaries (a BLAS product feeding a fused kernel), reductions, a dot, no updates."""
    if not _ONE:
        x, w = T.matrices("x", "w")
        v = T.vector("v")
        h = T.tanh(T.dot(x, w) + v)
        _ONE["f"] = function([x, w, v], [h.sum(axis=1) * 2, T.max(abs(x) - 1, axis=0), (h * h).mean(),
                                         T.dot(h.T, x), T.exp(x * 0.1).sum() + T.sum(v)])
    return _ONE["f"]


def _numpy_one(x, w, v):
    h = np.tanh(x @ w + v)
    return [h.sum(axis=1) * 2, (np.abs(x) - 1).max(axis=0), (h * h).mean(), h.T @ x,
            np.exp(x * 0.1).sum() + v.sum()]


@settings(max_examples=25, deadline=None)
@given(cases=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 12), st.integers(1, 12),
                                st.integers(0, 2 ** 32 - 1)), min_size=2, max_size=6))
def test_one_function_called_from_many_threads_gives_every_call_its_own_result(cases):
    f = _one_function()
    args = []
    for n, k, m, seed in cases:
        rng = np.random.default_rng(seed)
        args.append((rng.standard_normal((n, k)), rng.standard_normal((k, m)), rng.standard_normal(m)))
    serial = [f(*a) for a in args]
    for a, got in zip(args, serial):
        for g, want in zip(got, _numpy_one(*a)):
            np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)

    def work(k):
        for r in range(4):                      # each thread walks the cases in its own order
            for j in range(len(args)):
                index = (j * (k + 1) + r) % len(args)
                for g, want in zip(f(*args[index]), serial[index]):
                    np.testing.assert_array_equal(g, want)    # the serial call's very bits

    in_threads(work, 6)


def test_updates_from_threads_give_the_results_of_some_serial_order():
    """What calls with updates promise from several threads: a call holds the locks of its shared
    variables from reading their values to storing the new ones, so the calls of one or several
    functions updating a variable give the results of SOME serial order of those calls (which
    one is up to the scheduler): no update is lost, no call sees a half-updated value -- though
    the update is computed in place, into the old value's buffer -- and the final value is that
    of the serial order. A function that only reads the variable takes no lock (readers run in
    parallel) but never returns a torn value either: if an in-place update raced it, it runs
    again. get_value() copies are never torn."""
    n = 100_000
    state = shared(np.zeros(n), name="state")
    step = T.lscalar("step")
    bump = function([step], [state, T.sum(state)], updates=[(state, state + step)])
    double = function([], state, updates=[(state, state + 2.0)])
    read = function([], [state[0], state[n - 1], T.sum(state)])
    buffer = state.get_value(borrow=True)
    bump(0)
    assert state.get_value(borrow=True) is buffer     # the update runs in place: the racy case
    seen, reads, copies = [], [], []                    # (old value, step), reader's values, copies

    def work(k):
        if k < 3:
            for _ in range(30):
                old, total = bump(1)
                seen.append((old, 1))
                assert total == old.sum()
        elif k == 3:
            for _ in range(20):
                seen.append((double(), 2))
        else:
            for _ in range(40):
                reads.append(read())
                copies.append(state.get_value())

    in_threads(work, 5)
    olds = []
    for old, inc in seen:
        assert np.all(old == old[0]), "a call saw a half-updated value"
        olds.append((float(old[0]), inc))
    olds.sort()
    value = 0.0
    for old, inc in olds:                 # sorted by the value each call saw: a serial order
        assert old == value, f"calls saw {[o for o, _ in olds]}: an update was lost"
        value += inc
    assert value == 3 * 30 + 2 * 20
    np.testing.assert_array_equal(state.get_value(), np.full(n, value))
    states = {o for o, _ in olds} | {value}
    for first, last, total in reads:
        assert first == last and total == n * first and float(first) in states, "a read was torn"
    for copy in copies:
        assert np.all(copy == copy[0]) and float(copy[0]) in states, "get_value() was torn"


def test_borrowed_outputs_are_per_thread():
    """Out(borrow=True) reuses one buffer from call to call, but never another thread's."""
    from gencomp import Out

    x = T.dvector("x")
    f = function([x], Out(T.exp(x) * 2, borrow=True))

    def work(k):
        v = np.full(5000, float(k))
        want = f(v).copy()
        for _ in range(150):
            np.testing.assert_array_equal(f(v), want)

    in_threads(work, 4)
    first = f(np.ones(3))
    assert f(np.zeros(3)) is first             # one thread: the same buffer again
