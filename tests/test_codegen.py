"""Generated C: deterministic, warning-free, annotated, and safe from user-supplied names."""

import json
import os
import shlex
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gencomp
import gencomp.tensor as T
from gencomp import function
from gencomp.compile import cc

GRAPH = textwrap.dedent("""
    import gencomp, gencomp.tensor as T
    x, y = T.matrices('x', 'y')
    r = T.row('r')
    f = gencomp.function([x, y, r], [T.exp(-x) * T.sin(y) + r, T.maximum(x, y) // 2], name='det')
    print(f.cache_key)
    print(f.source_path)
""")


@pytest.mark.slow
def test_same_graph_same_bytes_in_every_process(tmp_path):
    outputs = []
    for i in range(2):
        env = dict(os.environ, GENCOMP_CACHE_DIR=str(tmp_path / f"cache{i}"), PYTHONHASHSEED=str(i + 1))
        proc = subprocess.run([sys.executable, "-c", GRAPH], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        key, path = proc.stdout.split()
        with open(path, "rb") as fh:
            outputs.append((key, fh.read()))
    assert outputs[0] == outputs[1]


def _strict_compile(source_path, tmp_path):
    """Recompile an entry's source with its own recorded command plus -Werror."""
    entry = os.path.dirname(source_path)
    with open(os.path.join(entry, "meta.json")) as fh:
        cmd = shlex.split(json.load(fh)["command"])
    cmd = [c for c in cmd if c not in ("-o", "module.so")] + ["-Werror", "-o", str(tmp_path / "strict.so")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=entry)     # module.c (and kernels.c)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int32", "int64", "uint64", "float32",
                                   "float64", "complex64", "complex128"])
def test_generated_source_is_warning_free(dtype, tmp_path):
    x = T.tensor(dtype, shape=(None, None), name="x")
    y = T.tensor(dtype, shape=(1, None), name="y")
    outs = [x + y, T.eq(x, y), x * y]
    if dtype not in ("bool",):
        outs += [x - y, -x]
    if dtype[0] in "iu":
        outs += [x // y, x % y, x ** y, abs(x), T.sgn(x), T.maximum(x, y), T.and_(x, y), ~x]
    if dtype.startswith("float"):
        outs += [T.psi(x), T.tri_gamma(y), T.gammaln(x), T.erf(y)]
        outs += [T.exp(x), T.sigmoid(x), T.softplus(y), x // y, x % y, x / y, T.maximum(x, y),
                 T.switch(x > y, x, 2), T.cast(x, "int32"), T.round(x), T.sgn(x), T.clip(x, -1, 1)]
    if dtype.startswith("complex"):
        outs += [T.exp(x), abs(x), x / y, T.sqrt(x)]
    if dtype != "bool" and not dtype.startswith("complex"):
        outs += [x.sum(axis=1), (x * y).sum(axis=0), x.max(axis=1), x.argmax(axis=0), x.sum()]
    if dtype.startswith("float"):
        outs += [x.mean(axis=0), T.tanh(x).mean()]
    f = function([x, y], outs)
    _strict_compile(f.source_path, tmp_path)


def test_statements_name_their_graph_node():
    x = T.vector("x")
    f = function([x], T.exp(x) + 1)
    lines = [line for line in f.source.splitlines() if "= exp(" in line]
    assert lines and all("/* Elemwise{exp}(x) */" in line for line in lines)
    assert f.source.startswith(f"/* gencomp module {f.cache_key[:12]}")


def test_hostile_names_never_reach_code_unescaped(tmp_path):
    evil = 'x */ #include "/etc/passwd" /* \n int main'
    x = T.vector(evil)
    f = function([x], x * 2, name="fn */ evil(); /*")
    np.testing.assert_array_equal(f([1.0, 2.0]), [2.0, 4.0])
    source = f.source
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)     # everything outside comments
    assert '"/etc/passwd"' not in code and "evil" not in code and "int main" not in code
    includes = [line.strip() for line in code.splitlines() if "#include" in line]
    assert includes == ['#include "gencomp.h"']
    header = open(os.path.join(os.path.dirname(f.source_path), "gencomp.h")).read()
    header_code = re.sub(r"/\*.*?\*/", "", header, flags=re.DOTALL)
    includes = [line for line in header_code.splitlines() if "#include" in line]
    assert includes and all(re.fullmatch(r"#include <[a-z]+\.h>", line.strip()) for line in includes)
    assert "evil" not in header_code
    _strict_compile(f.source_path, tmp_path)


def test_input_names_appear_in_comments_only():
    a, b = T.vector("learning rate"), T.vector("2nd")
    f = function([a, b], a + b)
    assert "/* input 'learning rate' */" in f.source and "/* input '2nd' */" in f.source
    code = re.sub(r"/\*.*?\*/", "", f.source, flags=re.DOTALL)
    assert "learning" not in code and "2nd" not in code and "in0_data" in code and "in1_data" in code


# Words a name could collide with: C keywords, macros and functions of the headers the prelude
# includes, OpenMP, the generated code's own locals; then comment and string delimiters, unicode.
HOSTILE_WORDS = """int double float return main for while if else void const static struct sizeof
    size_t int64_t uint8_t bool true false NULL EOF INFINITY NAN errno exp expf log tanh sqrt fabs
    creal cimag I complex CMPLX malloc free omp_get_thread_num i j k n m o r s t0 i0 n0 s0 x0 out
    in0 tmp1 out0 const0 gc_b gc_err a f rc lo hi acc part threads p0 o1""".split()
HOSTILE_TEXT = st.text(alphabet=st.sampled_from(list("*/\\n\"'#{}%;( ab_0é∑")), min_size=1, max_size=6)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(names=st.lists(st.one_of(st.sampled_from(HOSTILE_WORDS), HOSTILE_TEXT), min_size=3, max_size=3),
       shared_name=st.one_of(st.sampled_from(HOSTILE_WORDS), HOSTILE_TEXT))
@pytest.mark.slow
def test_hostile_names_always_compile_and_compute(names, shared_name):
    x, y, z = (T.dvector(name) for name in names)
    w = gencomp.shared(np.arange(4.0), name=shared_name)
    f = function([x, y, z], [T.exp(x) * y - z + w, (x * w).sum(), T.dot(x, y)], updates=[(w, w * 2)],
                 name=shared_name)
    X, Y, Z = np.linspace(-1, 1, 4), np.arange(4.0), np.ones(4)
    for step in range(2):
        W = np.arange(4.0) * 2 ** step
        got = f(X, Y, Z)
        np.testing.assert_allclose(got[0], np.exp(X) * Y - Z + W, rtol=1e-12)
        np.testing.assert_allclose(got[1], (X * W).sum(), rtol=1e-12)
        np.testing.assert_allclose(got[2], X @ Y, rtol=1e-12)
    code = re.sub(r"/\*.*?\*/", "", f.source, flags=re.DOTALL)
    assert "é" not in code and "∑" not in code


def test_contiguous_fast_path_and_strided_path_agree():
    x, y = T.matrices("x", "y")
    f = function([x, y], x * 3 - y)
    X, Y = np.random.rand(7, 5), np.random.rand(7, 5)
    np.testing.assert_allclose(f(X, Y), X * 3 - Y)
    np.testing.assert_allclose(f(X[::-1], Y.T.copy().T), X[::-1] * 3 - Y)


@pytest.mark.parametrize("openmp", [False, True])
def test_input_names_never_shadow_the_kernels_own_locals(openmp):
    """A 0-d shared variable named `b` once read the block index of a threaded reduction."""
    names = ["b", "gc_b", "blocks", "len", "start", "part", "threads", "n", "m", "r", "j", "lo", "hi", "s",
             "acc", "best", "i", "i0", "n0", "o", "t0", "k", "f", "a", "rc", "frame", "out", "at", "v", "len_"]
    old = gencomp.config.openmp
    gencomp.config.openmp = openmp
    try:
        xs = [T.dscalar(name) for name in names]
        vec = T.dvector("x")
        shared_b = gencomp.shared(np.array(0.5), name="b")
        total = sum((k + 1) * x for k, x in enumerate(xs))
        f = gencomp.function(xs + [vec], [(vec * total + shared_b).sum(), T.exp(vec) * total - shared_b],
                             updates=[(shared_b, shared_b + 1.0)])
    finally:
        gencomp.config.openmp = old
    rng = np.random.default_rng(7)
    vals = list(rng.standard_normal(len(names)))
    x = rng.standard_normal(40000)
    coef = sum((k + 1) * v for k, v in enumerate(vals))
    for step in range(3):
        total_sum, elem = f(*vals, x)
        b_now = 0.5 + step
        np.testing.assert_allclose(total_sum, (x * coef + b_now).sum(), rtol=1e-10)
        np.testing.assert_allclose(elem, np.exp(x) * coef - b_now, rtol=1e-12)


@pytest.mark.parametrize("openmp, limit", [(False, 90), (True, 120)])
def test_seed_logistic_module_fits_on_a_screen(openmp, limit):
    x = T.matrix("x")
    with gencomp.config.change(openmp=openmp):
        f = function([x], 1 / (1 + T.exp(-x)))
    assert len(f.source.splitlines()) <= limit
    assert "static inline" not in f.source        # no helper it does not call


def test_module_carries_only_the_helpers_it_calls(tmp_path):
    i, j = T.lvectors("i", "j")
    v = T.dvector("v")
    f = function([i, j, v], [i // j, T.tanh(v)])
    defined = set(re.findall(r"static inline \w+ (gc_\w+)\(", f.source))
    assert defined == {"gc_floordiv_i64", "gc_mod_i64", "gc_tanh_f64", "gc_tanh_f32"}
    np.testing.assert_array_equal(f([7, -7], [2, 2], [0.5, 1.0])[0], [3, -4])
    _strict_compile(f.source_path, tmp_path)


def test_large_modules_compile_as_two_translation_units(tmp_path):
    """Kernels beyond SPLIT_LINES go half to kernels.c, compiled beside module.c on another core;
    the thread settings and the results are the same as in one file."""
    xs = [T.dmatrix(f"x{k}") for k in range(14)]
    outs = [T.tanh(x * 2) - T.exp(-abs(x)) * k for k, x in enumerate(xs)] + [xs[0].sum(axis=0), xs[1].max(axis=1)]
    f = function(xs, outs)
    folder = os.path.dirname(f.source_path)
    assert os.path.isfile(os.path.join(folder, "kernels.c"))
    kernels = open(os.path.join(folder, "kernels.c")).read()
    assert "#define GC_SECONDARY" in kernels and "gc_elemwise_" in kernels
    values = list(np.random.default_rng(2).standard_normal((14, 300, 200)))
    want = [np.tanh(v * 2) - np.exp(-abs(v)) * k for k, v in enumerate(values)]
    want += [values[0].sum(axis=0), values[1].max(axis=1)]
    f._runner.lib.gc_set_threads(2, 0)          # the team on every large loop, in both units
    for got, w in zip(f(*values), want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)
    _strict_compile(f.source_path, tmp_path)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_row_reductions_reduce_each_row_in_vector_lanes(dtype):
    """A sum, product, max or min whose innermost loop walks the reduced axis accumulates each row in
    vector lanes (omp simd reduction; max and min as a declared reduction that keeps NaN), then
    combines the row with its result: numpy's values (integers exactly), for contiguous and
    transposed inputs, rows longer and shorter than a vector."""
    x = T.matrix("x", dtype=dtype)
    value = T.exp(x * 0.01) if dtype.startswith("float") else x * 3
    f = gencomp.function([x], [value.sum(axis=1), value.prod(axis=1), value.mean(axis=-1)])
    g = gencomp.function([x], [value.max(axis=1), value.min(axis=-1), value.max()])
    assert "this row's partial result" in f.source and "declare reduction" in g.source
    rng = np.random.default_rng(7)
    for shape in [(3, 1000), (5, 3), (2, 0)]:
        a = (rng.standard_normal(shape) * 10).astype(dtype) if dtype.startswith("float") else \
            rng.integers(-3, 4, size=shape).astype(dtype)
        for arr in (a, np.ascontiguousarray(a.T).T):
            want = np.exp(arr * 0.01) if dtype.startswith("float") else arr * 3
            got = f(arr)
            rtol = 1e-5 if dtype == "float32" else 1e-12
            np.testing.assert_allclose(got[0], want.sum(axis=1), rtol=rtol)
            np.testing.assert_allclose(got[1], want.prod(axis=1), rtol=rtol * 10)
            if shape[1]:
                got += g(arr)
                np.testing.assert_allclose(got[2], want.mean(axis=-1), rtol=rtol)
                np.testing.assert_allclose(got[3], want.max(axis=1), rtol=rtol)    # exp's last bit
                np.testing.assert_allclose(got[4], want.min(axis=-1), rtol=rtol)
                np.testing.assert_allclose(got[5], want.max(), rtol=rtol)
        if dtype.startswith("float") and shape[1] > 1:       # a NaN anywhere in a row is its max and min
            a[1, shape[1] // 2] = np.nan
            got = [None] * 3 + g(a)
            assert np.isnan(got[3][1]) and np.isnan(got[4][1]) and np.isnan(got[5])
            assert not np.isnan(got[3][0]) and not np.isnan(got[4][0])
