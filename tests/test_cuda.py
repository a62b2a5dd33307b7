"""The CUDA backend (device='cuda').

Wherever nvcc is installed (no GPU needed), every kernel family is rendered and compiled by
nvcc with warnings as errors, for float32 and float64, over the kinds of graphs the C tests
use: every row of the op table with broadcast, transposed and 0-d operands; every reduction
kind over several axis sets, full reductions included, with a fused producer; host steps
(argmax) between kernels. The cache entry must hold a fatbin for the expected architectures,
and calling without PyCUDA or without a device must raise CudaUnavailableError.

Results are compared with numpy in two environments (the `env` fixture):
* 'fake' always runs: tests/_fakecuda.py stands in for PyCUDA and replays each launch
  through the C twin of the kernel, which checks the runtime's host side (argument layout,
  host shape checks, transfers, host steps, launch modes) but nothing on the device;
* 'gpu' runs on the device, and is skipped, with the reason, without PyCUDA or a device.

Scans (the forms tests/test_scan_loop.py uses, an RNN and an LSTM with their BPTT gradients) run
their steps on the GPU, compiled as functions of their own and called from a host loop; host
steps are picked by their family, never by their op's class.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from _fakecuda import Fake
from gencomp import function, shared
from gencomp.compile import cache, nvcc
from gencomp.graph import Apply, Op
from gencomp.runtime_cuda import CudaUnavailableError, elementwise_grid, filter_splits, reduce_geometry
from gencomp.tensor.elemwise import elemwise
from gencomp.tensor.reduce import REDUCTIONS, ArgReduce, Reduce
from gencomp.tensor.signal.pool import pool_2d
from gencomp.tensor.table import ROWS

HAVE_NVCC = shutil.which("nvcc") is not None or os.access("/usr/local/cuda/bin/nvcc", os.X_OK)
pytestmark = pytest.mark.skipif(not HAVE_NVCC, reason="nvcc (the CUDA compiler) is not installed")

FLOATS = ("float32", "float64")
TOL = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-14)}
REDUCE_RTOL = {"float32": 1e-5, "float64": 1e-10}
AXES = [(0,), (2,), (0, 2), (1, 2), (0, 1, 2)]


@pytest.fixture(autouse=True)
def one_arch(monkeypatch):
    """Without a GPU, compile for the newest default architecture only (half the nvcc time);
    test_cache_entry_reused_and_keyed_by_backend_and_arch checks the full default list."""
    archs = nvcc.device_archs()
    if archs == nvcc.DEFAULT_ARCHS:
        monkeypatch.setattr(nvcc, "device_archs", lambda: archs[-1:])


def _apply(row, operands):
    if row.name == "cast":
        return T.cast(operands[0], "int32")
    return elemwise(row.name, *operands)


def _table_outputs(a, b, cond):
    """Every table row defined for the operands' dtype: unary on a, binary on (a, b), ternary (cond, a, b)."""
    outs = []
    for row in ROWS:
        operands = {1: (a,), 2: (a, b), 3: (cond, a, b)}.get(row.arity)
        try:
            outs.append(_apply(row, operands))
        except TypeError:         # no form for this dtype (bitwise ops on floats...): nothing to compile
            continue
    return outs


def elementwise_graph(dtype):
    x = T.tensor(dtype, shape=(None, None), name="x")
    y = T.tensor(dtype, shape=(1, None), name="y")
    c = T.tensor(dtype, shape=(None, 1), name="c")
    s = T.tensor(dtype, shape=(), name="s")
    outs = _table_outputs(x, y, T.gt(x, y))
    outs += [T.exp(x.T) * c.T + s, s * 2 + 1, x * s - y * c]
    return [x, y, c, s], outs


def integer_graph():
    ins, outs = [], []
    for dtype in ("int32", "uint8", "bool"):
        a = T.tensor(dtype, shape=(None, None), name=f"a_{dtype}")
        b = T.tensor(dtype, shape=(1, None), name=f"b_{dtype}")
        ins += [a, b]
        outs += _table_outputs(a, b, T.gt(a, b))
        # reductions: warp shuffles of bool and small integers
        outs += [Reduce("max", (1,))(a), Reduce("sum", (0,))(a), Reduce("min", (0, 1))(a)]
    return ins, outs


def reduction_graph(dtype):
    x = T.tensor(dtype, shape=(None, None, None), name="x")
    outs, refs = [], []
    for kind, row in REDUCTIONS.items():
        for axes in AXES:
            outs.append(Reduce(kind, axes)(x * 2 + 1))
            refs.append(lambda v, row=row, axes=axes: row.ref(v * 2 + 1, axis=axes))
    outs += [Reduce("sum", (0, 1, 2))(x.dimshuffle(2, 0, 1)), Reduce("max", (1,))(x.dimshuffle(2, 0, 1))]
    refs += [lambda v: v.sum(), lambda v: v.transpose(2, 0, 1).max(axis=1)]
    for kind, fn in (("argmax", np.argmax), ("argmin", np.argmin)):
        for axis in (0, 2, None):
            outs.append(ArgReduce(kind, axis)(x * 2 + 1))
            refs.append(lambda v, fn=fn, axis=axis: fn(v * 2 + 1, axis=axis))
    return [x], outs, refs


def host_step_graph(dtype):
    """Host steps (BLAS dot, slicing) between kernels, kernels reading their results and vice versa."""
    x = T.tensor(dtype, shape=(None, None), name="x")
    d = T.dot(x * 2, x.T)
    am = ArgReduce("argmax", 1)(d)
    return [x], [d * 2 + Reduce("max", (1,))(x), Reduce("sum", (0,))(T.exp(d) * 0.5), x[1:] * 2,
                 am, Reduce("sum", (0,))(am)]


# ---------------------------------------------------------------- compiled by nvcc, no GPU needed

def _entry(f) -> Path:
    return Path(f.source_path).parent


def _check_entry(f):
    folder = _entry(f)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["backend"] == "cuda" and meta["files"] == {"source": "module.cu", "module": "module.fatbin"}
    assert meta["compiler_messages"] == "" and "-Werror all-warnings" in meta["command"]
    archs = nvcc.device_archs()
    contents = nvcc.fatbin_contents(folder / "module.fatbin")
    assert sorted(a for kind, a in contents if kind == "cubin") == sorted(archs)
    assert ("ptx", f"compute_{archs[-1][3:]}") in contents
    names = [line.split("void ")[1].split("(")[0] for line in meta["signature"].splitlines()]
    for name in names:
        assert f'extern "C" __global__ void __launch_bounds__(256) {name}(' in f.source
    for kernel in meta["kernels"]:
        if "_reduce_" in kernel or "_argreduce_" in kernel:
            assert f"{kernel}_finish" in names and f"{kernel}_serial" in names
    return meta


@pytest.mark.slow
@pytest.mark.parametrize("dtype", FLOATS)
def test_elementwise_compiles_warning_free(dtype):
    ins, outs = elementwise_graph(dtype)
    f = function(ins, outs, device="cuda")
    _check_entry(f)
    assert f.source.startswith(f"/* gencomp module {f.cache_key[:12]}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_compile_warning_free(dtype):
    ins, outs, _ = reduction_graph(dtype)
    meta = _check_entry(function(ins, outs, device="cuda"))
    assert sum("reduce_" in k for k in meta["kernels"]) == len(outs)
    assert "__shfl_down_sync" in _entry_source(meta)


def _entry_source(meta) -> str:
    return (cache.ensure_root(_cache_dir()) / meta["key"] / "module.cu").read_text()


def _cache_dir():
    import gencomp

    return gencomp.config.cache_dir


@pytest.mark.parametrize("dtype", FLOATS)
def test_host_steps_between_kernels_compile(dtype):
    ins, outs = host_step_graph(dtype)
    meta = _check_entry(function(ins, outs, device="cuda"))
    assert meta["kernels"]


@pytest.mark.slow
def test_integer_and_bool_ops_compile():
    ins, outs = integer_graph()
    _check_entry(function(ins, outs, device="cuda"))


def test_float32_math_stays_single_precision(tmp_path):
    x, y = T.fmatrices("x", "y")
    f = function([x, y], T.exp(x) * T.log(y) + T.tanh(x) / T.sqrt(y) + T.softplus(x), device="cuda")
    ptx = tmp_path / "module.ptx"
    subprocess.run([nvcc.nvcc_path(), "-std=c++17", "-ptx", "-arch=sm_80", "-o", str(ptx), f.source_path],
                   check=True, capture_output=True)
    text = ptx.read_text()
    assert ".f32" in text and ".f64" not in text


def test_cache_entry_reused_and_keyed_by_backend_and_arch(monkeypatch):
    monkeypatch.undo()                  # the real architecture list, not one_arch's
    x = T.fvector("x")
    f1 = function([x], x * 3 + 1, device="cuda")
    f2 = function([x], x * 3 + 1, device="cuda")
    assert f2.cache_hit and f1.cache_key == f2.cache_key and f1.source_path == f2.source_path
    assert function([x], x * 3 + 1).cache_key != f1.cache_key
    assert any(e.key == f1.cache_key and e.backend == "cuda" for e in cache.list_entries(Path(_cache_dir())))
    archs = nvcc.device_archs()
    assert sorted(nvcc.fatbin_contents(_entry(f1) / "module.fatbin")) == sorted(
        [*(("cubin", a) for a in archs), ("ptx", "compute_" + archs[-1][3:])])
    other = ("sm_86",) if archs != ("sm_86",) else ("sm_89",)
    monkeypatch.setattr(nvcc, "device_archs", lambda: other)
    f3 = function([x], x * 3 + 1, device="cuda")
    assert f3.cache_key != f1.cache_key and not f3.cache_hit
    assert sorted(nvcc.fatbin_contents(_entry(f3) / "module.fatbin")) == [
        ("cubin", other[0]), ("ptx", "compute_" + other[0][3:])]


def test_input_names_do_not_collide_with_kernel_locals():
    xs = [T.fmatrix(name) for name in ("acc", "t", "other", "lane", "step", "r", "j")]
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    _check_entry(function(xs, [Reduce("sum", (1,))(total.T), ArgReduce("argmax", None)(total)], device="cuda"))


def test_complex_graphs_are_refused_clearly():
    z = T.zvector("z")
    with pytest.raises(NotImplementedError, match="complex"):
        function([z], z * 2, device="cuda")


def test_missing_nvcc_is_a_clear_error(monkeypatch):
    x = T.fvector("x")
    monkeypatch.setattr(nvcc.shutil, "which", lambda name: None)
    monkeypatch.setattr(nvcc, "_FALLBACK_PATHS", ())
    nvcc.nvcc_path.cache_clear()
    try:
        with pytest.raises(nvcc.NvccNotFoundError, match="nvcc"):
            function([x], x + 1, device="cuda")
    finally:
        monkeypatch.undo()
        nvcc.nvcc_path.cache_clear()


def test_calling_without_pycuda_or_device_raises(monkeypatch):
    x = T.fvector("x")
    f = function([x], x + 1, device="cuda")
    assert "__global__" in f.source
    Fake().install(monkeypatch)
    monkeypatch.setitem(__import__("sys").modules, "pycuda", None)      # as if not installed
    with pytest.raises(CudaUnavailableError, match="PyCUDA"):
        f(np.ones(3, "float32"))
    Fake(devices=0).install(monkeypatch)
    with pytest.raises(CudaUnavailableError, match="no CUDA device"):
        f(np.ones(3, "float32"))


def test_launch_geometry():
    assert elementwise_grid(1, 132) == 1 and elementwise_grid(10**8, 132) == 132 * 32
    assert reduce_geometry(10**6, 8, 132)[0] == "serial"
    assert reduce_geometry(1, 10**8, 132) == ("blocks", 1, 132 * 8)
    assert reduce_geometry(5000, 1000, 132) == ("blocks", 5000, 1)
    mode, blocks, splits = reduce_geometry(3, 5000, 132)
    assert mode == "blocks" and blocks == 3 and 1 < splits <= 5000


# ---------------------------------------------------------------- results against numpy

class Env:
    """Builds device='cuda' functions; with the fake driver, each call replays through the C twin."""

    def __init__(self, fake):
        self.fake = fake

    def function(self, inputs, outputs, **kwargs):
        f = function(inputs, outputs, device="cuda", **kwargs)
        if self.fake is not None:
            self.fake.register(f, function(inputs, outputs, device="cpu", **kwargs))
        return f


@pytest.fixture(params=["fake", "gpu"])
def env(request, monkeypatch):
    if request.param == "gpu":
        from gencomp import runtime_cuda

        try:
            runtime_cuda._init()
        except CudaUnavailableError as exc:
            if os.environ.get("GENCOMP_REQUIRE_GPU"):          # set by bench/cuda_check.sh
                pytest.fail(f"GENCOMP_REQUIRE_GPU is set, but: {exc}")
            pytest.skip(f"GPU runtime test skipped: {exc}")
        return Env(None)
    return Env(Fake().install(monkeypatch))


def _reference(inputs, outputs, args):
    return function(inputs, outputs, device="py")(*args)


def _compare(got, want):
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, w.dtype, g.shape, w.shape)
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, err_msg=f"output {k}", **TOL[g.dtype.name])
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {k}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_elementwise_results(env, dtype):
    ins, outs = elementwise_graph(dtype)
    f = env.function(ins, outs)
    rng = np.random.default_rng(0)
    x = np.asfortranarray(rng.uniform(0.5, 2, (5, 7)).astype(dtype))           # not C-contiguous
    y = np.ones((1, 14), dtype)[:, ::2]
    y[...] = rng.uniform(0.5, 2, (1, 7))
    c, s = rng.uniform(0.5, 2, (5, 1)).astype(dtype), np.array(1.5, dtype)
    _compare(f(x, y, c, s), _reference(ins, outs, (x, y, c, s)))
    empty = [np.zeros((0, 7), dtype), y, np.zeros((0, 1), dtype), s]
    _compare(f(*empty), _reference(ins, outs, empty))


def test_integer_results(env):
    ins, outs = integer_graph()
    f = env.function(ins, outs)
    rng = np.random.default_rng(1)
    args = []
    for v in ins:
        shape = (4, 6) if not v.broadcastable[0] else (1, 6)
        args.append(rng.integers(0, 2, shape).astype(bool) if v.dtype == "bool"
                    else rng.integers(1, 6, shape).astype(v.dtype))
    _compare(f(*args), _reference(ins, outs, args))


@pytest.mark.parametrize("dtype", FLOATS)
def test_reduction_results(env, dtype):
    ins, outs, refs = reduction_graph(dtype)
    f = env.function(ins, outs)
    rng = np.random.default_rng(2)
    for shape in [(3, 5, 2000), (40, 2, 100), (1, 1, 1)]:
        big = np.zeros(shape[:2] + (2 * shape[2],), dtype)
        x = big[:, :, ::2]                                              # not C-contiguous
        x[...] = rng.integers(-8, 9, shape) / 256          # x * 2 + 1 is exact; many ties for argmax
        x[tuple(rng.integers(0, n, 2) for n in shape)] = np.nan          # NaN: propagated, or its position
        got = f(x)
        for k, (g, ref) in enumerate(zip(got, refs)):
            want = np.asarray(ref(x.astype("float64")))
            assert g.shape == want.shape, (k, shape)
            if want.dtype.kind == "i":
                assert g.dtype == np.int64
                np.testing.assert_array_equal(g, want, err_msg=f"output {k}, shape {shape}")
            else:
                assert g.dtype == np.dtype(dtype)
                np.testing.assert_allclose(g, want, rtol=REDUCE_RTOL[dtype], err_msg=f"output {k}, shape {shape}")
    if env.fake is not None:        # every launch mode ran: a thread per result, whole and split blocks
        names = [(n.rsplit("_", 1)[-1], grid[1] > 1) for n, grid in env.fake.launches]
        assert ("serial", False) in names and ("finish", False) in names
        assert any(kind.isdigit() and split for kind, split in names)
        assert any(kind.isdigit() and not split for kind, split in names)


def test_empty_reductions(env):
    x = T.fmatrix("x")
    f = env.function([x], [Reduce("sum", (1,))(x), Reduce("mean", (0, 1))(x)])
    total, mean = f(np.zeros((3, 0), "float32"))
    np.testing.assert_array_equal(total, np.zeros(3, "float32"))
    assert np.isnan(mean)
    for op in (Reduce("max", (1,)), ArgReduce("argmin", 1)):
        g = env.function([x], op(x))
        with pytest.raises(ValueError, match="zero-size array"):
            g(np.zeros((3, 0), "float32"))
        with pytest.raises(ValueError, match="zero-size array"):
            g(np.zeros((0, 0), "float32"))
        assert g(np.zeros((0, 4), "float32")).shape == (0,)


@pytest.mark.parametrize("dtype", FLOATS)
def test_host_step_results(env, dtype):
    ins, outs = host_step_graph(dtype)
    f = env.function(ins, outs)
    x = np.random.default_rng(3).uniform(-1, 1, (6, 9)).astype(dtype)
    _compare(f(x), _reference(ins, outs, (x,)))


def test_shape_errors_match_the_cpu_backend(env):
    x, y = T.fmatrix("x"), T.frow("y")
    f, cpu = env.function([x, y], x * y), function([x, y], x * y)
    for args in [(np.ones((2, 3), "f"), np.ones((1, 4), "f")), (np.ones((2, 3), "f"), np.ones((2, 3), "f"))]:
        with pytest.raises((ValueError, TypeError)) as on_cpu:      # a row given 2 rows: TypeError
            cpu(*args)
        with pytest.raises(on_cpu.type) as on_cuda:
            f(*args)
        assert str(on_cuda.value) == str(on_cpu.value)


def test_failing_helper_raises_like_numpy(env):
    """Integer ** negative: the kernel sets its error word; the call raises numpy's ValueError."""
    a, b = T.lvector("a"), T.lvector("b")
    f = env.function([a, b], [a ** b, Reduce("sum", (0,))(a ** b * 2)])
    powers, total = f(np.array([2, 3, 5]), np.array([3, 0, 1]))
    np.testing.assert_array_equal(powers, [8, 1, 5])
    assert total == 28
    with pytest.raises(ValueError, match="negative integer powers"):
        f(np.array([2, 3, 5]), np.array([3, -1, 1]))
    np.testing.assert_array_equal(f(np.array([2]), np.array([2]))[0], [4])     # the flag was reset


def test_shared_variable_updates(env):
    state = shared(np.zeros(4, "float32"), name="state")
    x = T.fvector("x")
    f = env.function([x], state * 2, updates=[(state, state + x)])
    f(np.ones(4, "float32"))
    out = f(np.full(4, 2, "float32"))
    np.testing.assert_array_equal(out, np.full(4, 2, "float32"))
    np.testing.assert_array_equal(state.get_value(), np.full(4, 3, "float32"))


def test_large_full_reduction(env):
    x = T.fvector("x")
    f = env.function([x], [Reduce("sum", (0,))(x), Reduce("max", (0,))(x * 2)])
    v = np.random.default_rng(4).uniform(0, 1, 3_000_001).astype("float32")
    total, top = f(v)
    np.testing.assert_allclose(total, v.astype("float64").sum(), rtol=1e-6)
    assert top == v.max() * 2


def test_benchmark_script_runs(monkeypatch, tmp_path):
    """bench/cuda_check.py end to end on a small size, through the fake driver (figures meaningless)."""
    import importlib.util

    fake = Fake().install(monkeypatch)
    path = Path(__file__).parent.parent / "bench" / "cuda_check.py"
    spec = importlib.util.spec_from_file_location("cuda_check", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def both(inputs, outputs, device):
        f = function(inputs, outputs, device=device)
        if device == "cuda":
            fake.register(f, function(inputs, outputs, device="cpu"))
        return f

    monkeypatch.setattr(bench, "function", both)
    assert bench.main(["--n", "100003", "--reps", "2", "--gemm", "130", "--conv-batch", "2", "--rnn", "4", "3", "6",
                       "--json", str(tmp_path / "r.json")]) == 0
    figures = json.loads((tmp_path / "r.json").read_text())
    assert len(figures["cases"]) == 4 and all(c["correct"] for c in figures["cases"])
    assert figures["gemm"]["correct"] and figures["gemm"]["size"] == 130
    assert figures["conv"]["correct"] and figures["conv"]["shape"] == [2, 20, 12, 12]
    assert figures["rnn"]["correct"] and (figures["rnn"]["steps"], figures["rnn"]["hidden"]) == (4, 6)


def _count_copies(monkeypatch, name="memcpy_htod"):
    """The sizes of the copies `name` (memcpy_htod: to the GPU, memcpy_dtoh: back) makes from now on."""
    from gencomp import runtime_cuda

    runtime_cuda._init()
    drv, sizes = runtime_cuda._STATE["drv"], []
    original = getattr(drv, name)

    def counting(a, b):
        sizes.append((b if name == "memcpy_htod" else a).nbytes)
        return original(a, b)

    monkeypatch.setattr(drv, name, counting)
    return sizes


def test_shared_variables_live_on_the_gpu(env, monkeypatch):
    from gencomp.runtime_cuda import DeviceArray

    w = shared(np.arange(12, dtype="float32").reshape(3, 4), name="w")
    x = T.fmatrix("x")
    f = env.function([x], (w * x).sum(), updates=[(w, w * 2 + x)])
    xv = np.ones((3, 4), "float32")
    f(xv)
    assert type(w._value) is DeviceArray                 # the update stayed on the device
    uploads = _count_copies(monkeypatch)
    assert float(f(xv)) == pytest.approx(float((np.arange(12).reshape(3, 4) * 2 + 1).sum()))
    assert uploads == [xv.nbytes]                        # only x went up; w was already there
    want = (np.arange(12, dtype="float32").reshape(3, 4) * 2 + 1) * 2 + 1
    np.testing.assert_array_equal(w.get_value(), want)   # get_value copies back
    np.testing.assert_array_equal(w.get_value(borrow=True), want)
    w.set_value(np.zeros((3, 4), "float32"))             # set_value copies in: still on the device
    assert type(w._value) is DeviceArray
    f(xv)
    np.testing.assert_array_equal(w.get_value(), np.ones((3, 4), "float32"))
    # a CPU function reads the GPU value, and its own update brings the variable back to the host
    g = function([], w.sum(), updates=[(w, w + 1)])
    assert float(g()) == 12.0
    assert type(w._value) is np.ndarray
    np.testing.assert_array_equal(w.get_value(), np.full((3, 4), 2, "float32"))
    import pickle

    f(xv)
    assert type(w._value) is DeviceArray
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(w)).get_value(), w.get_value())


def test_outputs_left_on_the_device(env):
    from gencomp import Out
    from gencomp.runtime_cuda import DeviceArray

    x = T.fvector("x")
    f = env.function([x], [Out(T.exp(x), on_device=True), x * 2])
    xv = np.linspace(0, 1, 5, dtype="float32")
    on_gpu, on_host = f(xv)
    assert type(on_gpu) is DeviceArray and type(on_host) is np.ndarray
    assert on_gpu.shape == (5,) and on_gpu.dtype == np.float32 and on_gpu.ndim == 1
    np.testing.assert_allclose(on_gpu.get(), np.exp(xv), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(on_gpu), np.exp(xv), rtol=1e-6)
    g = env.function([x], x + 1)                          # takes the device array as it is
    np.testing.assert_allclose(g(on_gpu), np.exp(xv) + 1, rtol=1e-6)
    m = T.fmatrix("m")
    with pytest.raises(TypeError, match="GPU array"):      # wrong rank: refused, not reinterpreted
        env.function([m], m.sum())(on_gpu)
    cpu = function([x], x * 3)                             # a CPU function copies it back
    np.testing.assert_allclose(cpu(on_gpu), np.exp(xv) * 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
def test_products_on_the_gpu(env, dtype):
    """dot (matrix and vector forms, transposed operands) and Gemm run the tiled gemm kernel; the
    transposes are views of GPU memory, and the results feed kernels without leaving the device."""
    x, w, c = (T.matrix(n, dtype=dtype) for n in ("x", "w", "c"))
    v, u = T.vector("v", dtype=dtype), T.vector("u", dtype=dtype)
    outs = [T.tanh(T.dot(x, w) + v), T.dot(x, u), T.dot(u, w), T.dot(u, u), T.dot(x.T, x),
            c - 0.25 * T.dot(x.T, x), T.dot(w.T, x.T).sum(axis=0)]
    f = env.function([x, w, c, v, u], outs)
    rng = np.random.default_rng(5)
    # sizes that are not multiples of the 64 x 64 tiles; one product has an empty dimension
    for m, k, n in ((70, 33, 65), (3, 0, 5), (1, 1, 1)):
        args = [rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype),
                rng.standard_normal((k, k)).astype(dtype), rng.standard_normal(n).astype(dtype),
                rng.standard_normal(k).astype(dtype)]
        _compare(f(*args), _reference([x, w, c, v, u], outs, args))
    if env.fake is not None:
        names = {name for name, _ in env.fake.launches}
        assert f"gc_gemm_{dtype}" in names
    with pytest.raises(ValueError, match="align"):
        f(args[0], rng.standard_normal((k + 1, n)).astype(dtype), *args[2:])


def test_products_source_has_one_gemm_kernel_per_dtype():
    x, y = T.fmatrix("x"), T.dmatrix("y")
    f = function([x, y], [T.dot(x, x.T), T.dot(y, y.T) + 1, T.dot(T.cast(x, "float64"), y)], device="cuda")
    src = f.source
    assert src.count("void __launch_bounds__(256) gc_gemm_float32(") == 1
    assert src.count("void __launch_bounds__(256) gc_gemm_float64(") == 1
    i = T.lmatrix("i")
    assert "void __launch_bounds__(256) gc_gemm" not in function([i], T.dot(i, i), device="cuda").source  # on the host


def test_mlp_training_on_the_gpu_matches_the_cpu(env):
    """The MLP step of the examples: shared parameters stay on the device, products, softmax
    kernels and the crossentropy's indexing (host) agree with the CPU over several steps."""
    rng = np.random.default_rng(6)
    xv, yv = rng.standard_normal((20, 12)), rng.integers(0, 3, 20)

    def build(device):
        p = {"W1": shared(rng_params["W1"].copy()), "b1": shared(np.zeros(8)),
             "W2": shared(rng_params["W2"].copy()), "b2": shared(np.zeros(3))}
        x, y = T.dmatrix("x"), T.lvector("y")
        h = T.tanh(T.dot(x, p["W1"]) + p["b1"])
        probs = T.nnet.softmax(T.dot(h, p["W2"]) + p["b2"])
        loss = T.nnet.categorical_crossentropy(probs, y).mean()
        grads = T.grad(loss, list(p.values()))
        upd = [(q, q - 0.5 * g) for q, g in zip(p.values(), grads)]
        maker = env.function if device == "cuda" else function
        return maker([x, y], loss, updates=upd), p

    rng_params = {"W1": rng.standard_normal((12, 8)) * 0.3, "W2": rng.standard_normal((8, 3)) * 0.3}
    gpu, gp = build("cuda")
    cpu, cp = build("cpu")
    for _ in range(4):
        np.testing.assert_allclose(float(gpu(xv, yv)), float(cpu(xv, yv)), rtol=1e-10)
    for name in gp:
        np.testing.assert_allclose(gp[name].get_value(), cp[name].get_value(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", FLOATS)
def test_basic_indexing_and_reshapes_are_gpu_views(env, dtype, monkeypatch):
    """Slices (negative steps included), integer indices, transposes and reshapes of GPU arrays
    are views of device memory; kernels, products and outputs read them through their strides."""
    x = T.matrix("x", dtype=dtype)
    e = T.exp(x)                                       # lives on the GPU: the views below are of it
    outs = [e[1:, ::-2] * 2, e[2], e[:, -1].sum(), T.dot(e[::2].T, e[::2]), e.T[1:3],
            e.reshape((-1,))[::3] + 1, e.flatten()[5]]
    f = env.function([x], outs)
    xv = np.random.default_rng(7).uniform(-1, 1, (6, 5)).astype(dtype)
    f(xv)                                              # the first call also uploads the constants
    uploads, downloads = _count_copies(monkeypatch), _count_copies(monkeypatch, "memcpy_dtoh")
    _compare(f(xv), _reference([x], outs, [xv]))
    assert len(uploads) == 1 and len(downloads) == len(outs)      # x up, each output down: no host trips
    with pytest.raises(IndexError, match="out of bounds"):
        f(xv[:2])


@pytest.mark.parametrize("dtype", FLOATS)
def test_integer_array_indexing_on_the_gpu(env, dtype):
    """x[i, j] (gather) and inc_subtensor(x[i, j], y) (scatter-add: repeated indices accumulate)
    run as GPU kernels; indices are checked as numpy checks them."""
    x, y = T.tensor3("x", dtype=dtype), T.matrix("y", dtype=dtype)
    i, j = T.lvector("i"), T.ivector("j")
    outs = [T.exp(x[i, j]), x[i], T.inc_subtensor(x[i, j], y), T.inc_subtensor(x[i], 1.5),
            T.cast(x, "int64")[i, j] * 2]
    f = env.function([x, y, i, j], outs)
    rng = np.random.default_rng(8)
    xv = rng.uniform(-1, 1, (4, 5, 3)).astype(dtype)
    iv, jv = np.array([0, 3, -1, 3, 0]), np.array([4, -5, 2, 4, 0], dtype=np.int32)   # repeated (3, 4)
    yv = rng.uniform(-1, 1, (5, 3)).astype(dtype)
    _compare(f(xv, yv, iv, jv), _reference([x, y, i, j], outs, [xv, yv, iv, jv]))
    if env.fake is not None:
        names = {name.rsplit("_", 1)[0] for name, _ in env.fake.launches}
        assert {f"gc_take_{dtype}", f"gc_add_{dtype}", "gc_take_int64"} <= names, names
    with pytest.raises(IndexError, match="out of bounds for axis 1 with size 5"):
        f(xv, yv, iv, np.array([0, 1, 5, 0, 0], dtype=np.int32))
    empty = [xv, yv[:0], iv[:0], jv[:0]]
    _compare(f(*empty), _reference([x, y, i, j], outs, empty))


@pytest.mark.parametrize("dtype", FLOATS)
def test_concatenate_on_the_gpu(env, dtype, monkeypatch):
    """concatenate/stack copy each (possibly strided) input into its slice of the result on the GPU."""
    x, y = T.matrix("x", dtype=dtype), T.matrix("y", dtype=dtype)
    ex = T.exp(x)
    outs = [T.concatenate([ex, ex.T[:, :2] * 2], axis=0), T.concatenate([ex, y], axis=1) + 1,
            T.stack([ex[0], ex[1]]), T.concatenate([ex[::-1], ex], axis=0).sum(axis=0)]
    f = env.function([x, y], outs)
    rng = np.random.default_rng(12)
    xv, yv = rng.uniform(-1, 1, (2, 2)).astype(dtype), rng.uniform(-1, 1, (2, 3)).astype(dtype)
    f(xv, yv)
    downloads = _count_copies(monkeypatch, "memcpy_dtoh")
    _compare(f(xv, yv), _reference([x, y], outs, [xv, yv]))
    assert len(downloads) == len(outs)                    # nothing came back to the host midway
    with pytest.raises(ValueError, match="concatenate"):
        f(xv, yv[:1])


@pytest.mark.parametrize("dtype", FLOATS)
def test_inc_and_set_subtensor_on_the_gpu(env, dtype, monkeypatch):
    """inc_subtensor / set_subtensor of ints and slices (negative steps, a broadcast y, one element)
    copy x and write y into the view of the copy on the GPU; errors are numpy's, as on the CPU."""
    x, y, v = T.matrix("x", dtype=dtype), T.matrix("y", dtype=dtype), T.vector("v", dtype=dtype)
    i = T.lscalar("i")
    ex = T.exp(x)
    outs = [T.inc_subtensor(ex[1:, ::-2], y), T.set_subtensor(ex.T[1:3], 0.5) * 2,
            T.inc_subtensor(ex[i], v), T.set_subtensor(ex[i, -1], v[0]), T.inc_subtensor(x[:, 1:], v[1:])]
    f = env.function([x, y, v, i], outs)
    rng = np.random.default_rng(17)
    xv, yv, vv = (rng.uniform(-1, 1, shape).astype(dtype) for shape in ((4, 5), (3, 3), (5,)))
    args = [xv, yv, vv, 2]
    f(*args)
    downloads = _count_copies(monkeypatch, "memcpy_dtoh")
    _compare(f(*args), _reference([x, y, v, i], outs, args))
    assert len(downloads) == len(outs)                    # nothing came back to the host midway
    if env.fake is not None:
        names = {name for name, _ in env.fake.launches}
        assert {f"gc_accumulate_{dtype}_2", f"gc_copy_{dtype}_2", f"gc_accumulate_{dtype}_1",
                f"gc_copy_{dtype}_1"} <= names, names
    cpu = function([x, y, v, i], outs)
    for bad, error in [([xv, yv, vv, 7], IndexError), ([xv, yv[:2], vv, 2], ValueError)]:
        with pytest.raises(error) as on_cpu:
            cpu(*bad)
        with pytest.raises(error) as on_cuda:
            f(*bad)
        assert str(on_cuda.value) == str(on_cpu.value)


# ---------------------------------------------------------------- conv2d and pool_2d (templates/cuda/conv.cu.j2)

# (border_mode, subsample, filter_flip, filter_dilation): every border mode, strides, both flips, dilation
CONV_FORMS = [("valid", (1, 1), True, (1, 1)), ("full", (2, 3), False, (1, 1)), ("half", (1, 2), True, (2, 1)),
              ((1, 2), (2, 2), False, (2, 2)), ((0, 3), (3, 1), True, (1, 1))]
# (ws, stride, pad, ignore_border), each in every mode
POOL_FORMS = [((2, 2), None, (0, 0), True), ((3, 2), None, (0, 0), False), ((3, 3), (2, 2), (1, 1), True),
              ((2, 3), (1, 2), (0, 0), True), ((4, 4), None, (0, 0), False), ((3, 2), (2, 1), (2, 1), True)]
POOL_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")
IMAGE_TOL = {"float32": 1e-4, "float64": 1e-10}


def conv_graph(dtype):
    """Every CONV_FORM with its two gradients (of a cost that weighs each output element differently)."""
    x, w = T.tensor4("x", dtype=dtype), T.tensor4("w", dtype=dtype)
    outs = []
    for border, subsample, flip, dilation in CONV_FORMS:
        y = T.nnet.conv2d(x, w, border_mode=border, subsample=subsample, filter_flip=flip, filter_dilation=dilation)
        outs += [y, *T.grad((y * y).sum() * 0.5, [x, w])]
    return [x, w], outs


def pool_graph(dtype):
    """Every POOL_FORM in every mode, with its gradient."""
    x = T.tensor4("x", dtype=dtype)
    outs = []
    for ws, stride, pad, ignore_border in POOL_FORMS:
        for mode in POOL_MODES:
            y = pool_2d(x, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
            outs += [y, T.grad((y * y).sum(), x)]
    return [x], outs


def _image_kernels(f) -> list:
    """The conv2d / pool_2d kernels defined in a device='cuda' function's module."""
    marker = 'extern "C" __global__ void __launch_bounds__(256) '
    names = [line[len(marker):].split("(")[0] for line in f.source.splitlines() if line.startswith(marker)]
    return sorted(name for name in names if name.startswith(("gc_conv2d", "gc_pool2d")))


def test_conv_and_pool_compile_warning_free():
    """Every conv2d and pool_2d form, forward and backward, both dtypes in one module: each image
    kernel is rendered once per dtype, and nvcc compiles the module with warnings as errors."""
    ins, outs = [], []
    for dtype in FLOATS:
        for graph in (conv_graph, pool_graph):
            i, o = graph(dtype)
            ins, outs = ins + i, outs + o
    f = function(ins, outs, device="cuda")
    meta = _check_entry(f)
    want = sorted(f"gc_{family}_{dtype}{finish}" for dtype in FLOATS
                  for family, finish in [("conv2d", ""), ("conv2d_grad_input", ""), ("conv2d_grad_filters", ""),
                                         ("conv2d_grad_filters", "_finish"), ("pool2d", ""), ("pool2d_grad", "")])
    assert _image_kernels(f) == want
    assert sum(f"void {name}(" in meta["signature"] for name in want) == len(want)


def test_image_kernels_only_for_what_the_plan_uses():
    x = T.ftensor4("x")
    assert _image_kernels(function([x], pool_2d(x, ws=(2, 2), ignore_border=True), device="cuda")) == \
        ["gc_pool2d_float32"]
    d, w = T.dtensor4("d"), T.dtensor4("w")
    y = T.nnet.conv2d(d, w)
    assert _image_kernels(function([d, w], [y, T.grad(y.sum(), w)], device="cuda")) == \
        ["gc_conv2d_float64", "gc_conv2d_grad_filters_float64", "gc_conv2d_grad_filters_float64_finish"]
    i = T.itensor4("i")                                # an integer pool stays a host step
    assert _image_kernels(function([i], pool_2d(i, ws=(2, 2), ignore_border=True), device="cuda")) == []


@pytest.mark.slow
def test_image_kernels_source_is_deterministic(tmp_path):
    """Same graph, same bytes: another process (another hash seed) renders the same module."""
    script = (
        "import hashlib, sys\n"
        "sys.path.insert(0, %r)\n"
        "import test_cuda\n"
        "from gencomp import function\n"
        "ins, outs = [], []\n"
        "for dtype in ('float64', 'float32'):\n"
        "    for graph in (test_cuda.pool_graph, test_cuda.conv_graph):\n"
        "        i, o = graph(dtype)\n"
        "        ins, outs = ins + i, outs + o\n"
        "print(hashlib.sha256(function(ins, outs, device='cuda').source.encode()).hexdigest())\n"
    ) % str(Path(__file__).parent)
    digests = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, GENCOMP_CACHE_DIR=str(tmp_path / seed))
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        digests.add(proc.stdout.strip())
    assert len(digests) == 1


def test_filter_gradient_splits():
    assert filter_splits(10**6, 4000, 132) == (1, 4000)               # enough filter elements: one pass
    splits, chunk = filter_splits(72, 4000, 132)                      # few: the rows split across threads
    assert splits > 1 and splits * chunk >= 4000 > (splits - 1) * chunk
    assert filter_splits(72, 0, 132) == (1, 1) and filter_splits(72, 3, 132) == (3, 1)


def _image_launches(env, dtype) -> dict:
    counts = {}
    for name, _ in env.fake.launches:
        if name.startswith(("gc_conv2d", "gc_pool2d")) and dtype in name:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _compare_images(got, want, dtype):
    tol = IMAGE_TOL[dtype]
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype == np.dtype(dtype) and g.shape == w.shape, (k, g.dtype, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * max(1.0, float(np.nanmax(np.abs(w), initial=0))),
                                   err_msg=f"output {k}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_conv2d_results(env, dtype):
    """Every CONV_FORM and both its gradients on the GPU against numpy's perform, with a strided input."""
    ins, outs = conv_graph(dtype)
    f = env.function(ins, outs)
    rng = np.random.default_rng(9)
    xv = rng.standard_normal((3, 2, 18, 8)).astype(dtype)[:, :, ::2]            # not C-contiguous
    wv = rng.standard_normal((4, 2, 3, 2)).astype(dtype)
    _compare_images(f(xv, wv), _reference(ins, outs, [xv, wv]), dtype)
    if env.fake is not None:           # every step ran its kernel (none fell back to numpy)
        n = len(CONV_FORMS)
        assert _image_launches(env, dtype) == {f"gc_conv2d_{dtype}": n, f"gc_conv2d_grad_input_{dtype}": n,
                                               f"gc_conv2d_grad_filters_{dtype}": n,
                                               f"gc_conv2d_grad_filters_{dtype}_finish": n}
    empty = [xv[:0], wv]                                                         # no images
    _compare_images(f(*empty), _reference(ins, outs, empty), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_pool_results(env, dtype):
    """Every POOL_FORM in every mode and its gradient on the GPU against numpy's perform: ties in the
    windows (a max passes the gradient to every element equal to it), a NaN, a strided input."""
    ins, outs = pool_graph(dtype)
    f = env.function(ins, outs)
    rng = np.random.default_rng(10)
    xv = (rng.integers(-3, 4, (2, 3, 7, 18)) / 4).astype(dtype)[..., ::-2]     # many ties; a negative stride
    xv[1, 2, 3, 4] = np.nan
    _compare_images(f(xv), _reference(ins, outs, [xv]), dtype)
    if env.fake is not None:
        n = len(POOL_FORMS) * len(POOL_MODES)
        assert _image_launches(env, dtype) == {f"gc_pool2d_{dtype}": n, f"gc_pool2d_grad_{dtype}": n}


def test_pool_of_other_ranks_and_views(env):
    """pool_2d pools the last two dims of any tensor: 2-d, 3-d, 5-d, and a transposed GPU array (a view)."""
    x = T.tensor3("x")
    e = T.exp(x)                                     # on the GPU: the dimshuffles below are views of it
    five = e.reshape((2, 1, 3, 4, 5))
    tilted = e.dimshuffle(1, 0, 2).dimshuffle("x", 0, 1, 2)
    outs = []
    for v in (e[0], e, five, tilted, e.dimshuffle(0, "x", 2, 1)):
        y = pool_2d(v, ws=(2, 3), ignore_border=False, mode="average_exc_pad")
        outs += [y, T.grad((y * y).sum(), x)]
    f = env.function([x], outs)
    xv = np.random.default_rng(11).uniform(-1, 1, (6, 4, 5))
    _compare(f(xv), _reference([x], outs, [xv]))
    if env.fake is not None:
        assert _image_launches(env, "float64") == {"gc_pool2d_float64": 5, "gc_pool2d_grad_float64": 5}


def test_large_images_loop_over_the_grid(env):
    """More result elements than threads in the grid: each thread takes several (grid-stride loops)."""
    if env.fake is not None:
        env.fake.sm_count = 1                        # 32 blocks of 256 threads at most
    x, w = T.ftensor4("x"), T.ftensor4("w")
    y = T.nnet.conv2d(x, w, border_mode="half")
    p = pool_2d(y, ws=(2, 2), ignore_border=True, mode="max")
    outs = [p, *T.grad((p * p).sum(), [x, w])]
    f = env.function([x, w], outs)
    rng = np.random.default_rng(12)
    xv, wv = rng.standard_normal((3, 2, 40, 41)).astype("float32"), rng.standard_normal((3, 2, 3, 3)).astype("float32")
    _compare_images(f(xv, wv), _reference([x, w], outs, [xv, wv]), "float32")
    if env.fake is not None:
        assert max(grid[0] for _, grid in env.fake.launches) == 32


def test_conv_and_pool_errors_match_the_cpu_backend(env):
    """Shapes the ops refuse raise the op's own error before any launch, as on the CPU."""
    x, w = T.dtensor4("x"), T.dtensor4("w")
    y = T.nnet.conv2d(x, w)
    outs = [y, *T.grad(y.sum(), [x, w])]
    f, cpu = env.function([x, w], outs), function([x, w], outs)
    rng = np.random.default_rng(13)
    xv, wv = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    _compare(f(xv, wv), cpu(xv, wv))
    for bad, match in [((xv, wv[:, :2]), "channels"), ((xv[:, :, :2], wv), "larger than")]:
        before = len(env.fake.launches) if env.fake is not None else 0
        with pytest.raises(ValueError, match=match) as on_cpu:
            cpu(*bad)
        with pytest.raises(ValueError, match=match) as on_cuda:
            f(*bad)
        assert str(on_cuda.value) == str(on_cpu.value)
        if env.fake is not None:
            assert len(env.fake.launches) == before


def test_lenet_training_on_the_gpu_matches_the_cpu(env):
    """A LeNet-style step (conv2d, tanh, max pool, dense softmax layer): the filters stay on the
    device, and losses and parameters agree with the CPU over several steps."""
    rng = np.random.default_rng(14)
    xv, yv = rng.standard_normal((8, 1, 10, 10)), rng.integers(0, 3, 8)
    start = {"w1": rng.standard_normal((4, 1, 3, 3)) * 0.3, "w2": rng.standard_normal((4 * 4 * 4, 3)) * 0.3}

    def build(maker):
        p = {name: shared(v.copy(), name=name) for name, v in start.items()}
        x, y = T.dtensor4("x"), T.lvector("y")
        h = pool_2d(T.tanh(T.nnet.conv2d(x, p["w1"])), ws=(2, 2), ignore_border=True)     # 10 -> 8 -> 4
        probs = T.nnet.softmax(T.dot(h.flatten(2), p["w2"]))
        loss = T.nnet.categorical_crossentropy(probs, y).mean()
        grads = T.grad(loss, list(p.values()))
        return maker([x, y], loss, updates=[(q, q - 0.2 * g) for q, g in zip(p.values(), grads)]), p

    gpu, gp = build(env.function)
    cpu, cp = build(function)
    for _ in range(3):
        np.testing.assert_allclose(float(gpu(xv, yv)), float(cpu(xv, yv)), rtol=1e-10)
    for name in gp:
        np.testing.assert_allclose(gp[name].get_value(), cp[name].get_value(), rtol=1e-9, atol=1e-12)
    from gencomp.runtime_cuda import DeviceArray

    assert type(gp["w1"]._value) is DeviceArray


def test_conv_shape_hints_are_checked_on_the_gpu(env, monkeypatch):
    """conv2d's input_shape / filter_shape hints (specify_shape) check shapes on the host without
    bringing a GPU array back: the first layer's output feeds the second on the device."""
    x, w1, w2 = T.dtensor4("x"), T.dtensor4("w1"), T.dtensor4("w2")
    h = T.tanh(T.nnet.conv2d(x, w1))
    y = T.nnet.conv2d(h, w2, input_shape=(None, 4, 6, 6), filter_shape=(2, 4, 3, 3))
    f, cpu = env.function([x, w1, w2], y), function([x, w1, w2], y)
    rng = np.random.default_rng(15)
    args = [rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 4, 3, 3))]
    f(*args)
    downloads = _count_copies(monkeypatch, "memcpy_dtoh")
    _compare([f(*args)], [cpu(*args)])
    assert len(downloads) == 1                                  # the result only
    bad = [args[0][:, :, :7], *args[1:]]
    with pytest.raises(ValueError, match="specify_shape") as on_cpu:
        cpu(*bad)
    with pytest.raises(ValueError, match="specify_shape") as on_cuda:
        f(*bad)
    assert str(on_cuda.value) == str(on_cpu.value)


# ---------------------------------------------------------------- scan: the step on the GPU, called from a host loop

SCAN_TOL = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


def _scan_steps(f) -> tuple:
    """(scans whose step runs on the GPU, scans run as numpy perform) of f's runtime steps."""
    from gencomp.codegen.lower import HostStep
    from gencomp.runtime_cuda import _Scan

    scans = [s for s in f._runner.plan.steps if isinstance(s, HostStep) and s.node.op.lowering(s.node) == "scan"]
    on_gpu = [s for s in f._runner.steps if isinstance(s, _Scan) and s.fn is not None]
    return len(on_gpu), len(scans) - len(on_gpu)


def _close(got, want, dtype="float64"):
    got, want = (v if isinstance(v, list) else [v] for v in (got, want))
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype, (k, g.shape, np.shape(w), g.dtype)
        np.testing.assert_allclose(g, w, err_msg=f"output {k}", **SCAN_TOL[dtype])


def rnn_graph(go_backwards, dtype="float64", seed=0):
    """tests/test_scan_loop.py's RNN: two states (one of them a sum), an output not fed back, and the
    gradient (BPTT: a backwards scan) of a cost of all three with respect to weights, inputs, h0."""
    rng = np.random.default_rng(seed)
    w = shared((rng.standard_normal((4, 4)) * 0.4).astype(dtype), name="W")
    u = shared(rng.standard_normal((3, 4)).astype(dtype), name="U")
    x, h0, n = T.tensor3("x", dtype=dtype), T.matrix("h0", dtype=dtype), T.lscalar("n")

    def step(x_t, h, total):
        h_new = T.tanh(T.dot(x_t, u) + T.dot(h, w))
        return h_new, total + h_new.sum(axis=1), (h_new[:, 1:] ** 2).sum()

    (hs, totals, extra), _ = gencomp.scan(step, sequences=x, outputs_info=[h0, T.zeros((x.shape[1],), dtype=dtype),
                                                                           None],
                                          n_steps=n, go_backwards=go_backwards)
    cost = (hs[-1] ** 2).sum() + totals.sum() * 0.1 + extra.sum()
    return [x, h0, n], [hs, totals, extra], [cost, *T.grad(cost, [w, u, x, h0])]


@pytest.mark.parametrize("go_backwards", [False, True])
def test_scan_rnn_forward_and_bptt_steps_on_the_gpu(env, go_backwards, monkeypatch):
    """The forward scan and its gradient's backwards scan both run their steps on the GPU (products,
    kernels, views, inc_subtensor); the numbers are the numpy reference's (device='py'), for several
    n_steps and none. Neither loop brings anything back to the host: the transfers of a call do
    not depend on the number of steps."""
    ins, forward, grads = rnn_graph(go_backwards)
    f = env.function(ins, forward + grads)
    ref = function(ins, forward + grads, device="py")
    rng = np.random.default_rng(1)
    X, H0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 4))
    counts = []
    for steps in (5, 3, 1):
        uploads, downloads = _count_copies(monkeypatch), _count_copies(monkeypatch, "memcpy_dtoh")
        _close(f(X, H0, steps), ref(X, H0, steps))
        counts.append((len(uploads), len(downloads)))
    assert counts[1] == counts[2] and counts[1][1] == len(forward + grads), counts     # the first call: constants
    assert _scan_steps(f) == (2, 0)
    g = env.function(ins, forward)
    _close(g(X, H0, 0), function(ins, forward, device="py")(X, H0, 0))       # no step: empty stacks
    if env.fake is not None:
        names = {name for name, _ in env.fake.launches}
        assert "gc_gemm_float64" in names and any(n.startswith("gc_reduce_") for n in names)


def test_scan_rnn_in_float32_with_outputs_left_on_the_device(env):
    """float32 throughout; the sequence is a GPU array (another function's Out(on_device=True)
    result) and the stacked states stay on the device too."""
    from gencomp import Out
    from gencomp.runtime_cuda import DeviceArray

    ins, forward, _ = rnn_graph(False, "float32")
    x = ins[0]
    make = env.function([x], Out(x * 2, on_device=True))
    f = env.function(ins, [Out(forward[0], on_device=True), *forward[1:]])
    ref = function(ins, forward, device="py")
    rng = np.random.default_rng(2)
    X, H0 = rng.standard_normal((6, 3, 3)).astype("float32"), rng.standard_normal((3, 4)).astype("float32")
    got = f(make(X), H0, 6)
    assert type(got[0]) is DeviceArray
    _close([got[0].get(), *got[1:]], ref(X * 2, H0, 6), "float32")


def test_scan_step_results_of_several_dtypes_and_lengths_known_at_run_time(env):
    """A step result sliced from a product (its lengths known only once computed), an integer state
    and a float32 accumulator, as in tests/test_scan_loop.py."""
    x = T.fmatrix("x")

    def step(row, count, acc):
        prod = T.outer(row, row)[1:, ::2]
        return count + 1, acc + prod, prod.sum()

    (counts, accs, sums), _ = gencomp.scan(
        step, sequences=x, outputs_info=[T.constant(np.int32(0)), T.zeros((x.shape[1] - 1, (x.shape[1] + 1) // 2),
                                                                          dtype="float32"), None])
    f = env.function([x], [counts, accs, sums])
    X = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
    got, want = f(X), function([x], [counts, accs, sums], device="py")(X)
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32
    np.testing.assert_array_equal(got[0], want[0])
    _close(got[1:], want[1:], "float32")
    assert _scan_steps(f) == (1, 0)


def test_scan_read_only_for_its_last_rows_keeps_a_ring_on_the_gpu(env):
    """x[-1] of a state and of an output not fed back (scan_save_mem): rings of two and one rows
    on the device, the last row's view returned; 0 steps raises the reference's IndexError."""
    x, h0, n = T.dmatrix("x"), T.dvector("h0"), T.lscalar("n")
    (h, s), _ = gencomp.scan(lambda row, h: [T.tanh(h * 0.5 + row), (row * h).sum()], sequences=x,
                             outputs_info=[h0, None], n_steps=n)
    f, ref = env.function([x, h0, n], [h[-1], s[-1:]]), function([x, h0, n], [h[-1], s[-1:]], device="py")
    X, H0 = np.random.default_rng(4).standard_normal((5, 3)), np.ones(3)
    for steps in (1, 2, 5):
        _close(f(X, H0, steps), ref(X, H0, steps))
    with pytest.raises(IndexError):
        f(X, H0, 0)


def test_nested_scans_on_the_gpu(env):
    """A scan inside the step of a scan, and the gradient: each step function runs its own loop."""
    m = T.dmatrix("m")

    def row_cumsum(row):
        sums, _ = gencomp.scan(lambda v, s: s + v, sequences=row, outputs_info=T.constant(0.0))
        return sums

    out, _ = gencomp.scan(row_cumsum, sequences=m)
    f = env.function([m], [out, T.grad(out.sum() * 1.5, m)])
    M = np.random.default_rng(4).standard_normal((4, 5))
    got = f(M)
    _close(got, [np.cumsum(M, axis=1), 1.5 * np.arange(5, 0, -1) * np.ones((4, 1))])
    assert _scan_steps(f)[1] == 0


def test_scan_until_on_the_gpu(env):
    """until: the condition comes back to the host after each step and stops the loop there; the
    stacks are as long as the steps run."""
    from gencomp.scan_module import until

    x, lim = T.dvector("x"), T.dscalar("lim")

    def step(a, s):
        new = s + a
        return [new, new * 2], until(new > lim)

    (sums, doubled), _ = gencomp.scan(step, sequences=x, outputs_info=[T.constant(0.0), None])
    f, ref = env.function([x, lim], [sums, doubled]), function([x, lim], [sums, doubled], device="py")
    X = np.arange(6.0)
    for bound in (3.0, 100.0, -1.0):
        got = f(X, bound)
        _close(got, ref(X, bound))
        stop = next((k for k, v in enumerate(np.cumsum(X)) if v > bound), len(X) - 1)
        np.testing.assert_array_equal(got[0], np.cumsum(X)[:stop + 1])
    assert _scan_steps(f) == (1, 0)


def test_scan_errors_match_the_cpu_backend(env):
    """n_steps checks and a state that changes shape raise Scan.perform's messages, as on the CPU."""
    x, n = T.dvector("x"), T.lscalar("n")
    doubled, _ = gencomp.scan(lambda a: a * 2, sequences=x, n_steps=n)
    f, cpu = env.function([x, n], doubled), function([x, n], doubled)
    np.testing.assert_array_equal(f(np.arange(4.0), 2), [0.0, 2.0])
    v = T.dvector("v")
    grown, _ = gencomp.scan(lambda s: T.concatenate([s, s]), outputs_info=v, n_steps=2)
    g, g_cpu = env.function([v], grown), function([v], grown)
    for fn, fn_cpu, args, match in [(f, cpu, (np.arange(4.0), 6), "fewer than the 6 steps"),
                                    (f, cpu, (np.arange(4.0), -1), "n_steps is -1"),
                                    (g, g_cpu, (np.ones(2),), r"state 0 has shape \(4,\) at step 0")]:
        with pytest.raises(ValueError, match=match) as on_cpu:
            fn_cpu(*args)
        with pytest.raises(ValueError, match=match) as on_cuda:
            fn(*args)
        assert str(on_cuda.value) == str(on_cpu.value)


def test_scan_step_with_a_random_draw_runs_on_the_host(env):
    """A step with side effects (a random draw) keeps the numpy path: the step compiled for the CPU."""
    from gencomp.tensor.shared_randomstreams import RandomStreams

    srng = RandomStreams(3)
    v = T.dmatrix("v")
    samples, _ = gencomp.scan(lambda s: srng.binomial(size=s.shape, n=1, p=T.nnet.sigmoid(s), dtype="float64"),
                              outputs_info=v, n_steps=3)
    f = env.function([v], samples * 2)
    out = f(np.zeros((2, 3)))
    assert out.shape == (3, 2, 3) and set(np.unique(out)) <= {0.0, 2.0}
    assert _scan_steps(f) == (0, 1)


def test_lstm_cell_steps_on_the_gpu(env):
    """The lisa-lab LSTM cell (gates sliced from one product, a mask) and its gradient."""
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
    f = env.function([m, below, h0], outs)
    M = (rng.random((6, 2)) > 0.3).astype(float)
    B, H0 = rng.standard_normal((6, 2, 4 * hidden)), rng.standard_normal((2, hidden))
    _close(f(M, B, H0), function([m, below, h0], outs, device="py")(M, B, H0))
    assert _scan_steps(f) == (2, 0)


def test_scan_taps_and_updates_on_the_gpu(env):
    """Sequence taps and output taps (slices and a checked initial value around the loop), a shared
    variable the step updates (a state), go_backwards over a sequence longer than n_steps."""
    s, x0, k, n = T.dvector("s"), T.dvector("x0"), T.dscalar("k"), T.lscalar("n")
    count = shared(np.float64(0.0), name="count")

    def step(s_m1, s_p1, x_m3, x_m1, kk):
        return 0.5 * x_m1 + 0.25 * x_m3 + s_m1 * s_p1 * kk, {count: count + 1}

    xs, upd = gencomp.scan(step, sequences=dict(input=s, taps=[-1, 1]),
                           outputs_info=dict(initial=x0, taps=[-3, -1]), non_sequences=k, n_steps=n,
                           go_backwards=True)
    outs = [xs, T.grad(xs.sum(), [s, x0, k])[0]]
    f = env.function([s, x0, k, n], outs, updates=upd)
    ref = function([s, x0, k, n], outs, device="py")
    sv, x0v = np.array([1.0, 2.0, -1.0, 0.5, 3.0, 1.5, 0.25]), np.array([0.1, 0.2, 0.3])
    _close(f(sv, x0v, 0.75, 4), ref(sv, x0v, 0.75, 4))
    assert float(np.asarray(count.get_value())) == 4.0
    with pytest.raises(ValueError, match="needs an initial value with at least 3 entries"):
        f(sv, x0v[:2], 0.75, 4)
    assert _scan_steps(f)[1] == 0


# ---------------------------------------------------------------- host steps follow their family (issue 10)

class _Times(Op):
    """dot under another name: not a Dot, and numpy's on the CPU (lowering 'host'), but its family
    says it is a product, which the GPU runs with its gemm kernel."""

    def make_node(self, x, y):
        return Apply(self, [x, y], [T.dot(x, y).type])

    def perform(self, node, inputs):
        return [np.dot(*inputs)]

    def signature(self):
        return "Times"

    def family(self, node):
        return "blas"


def test_host_steps_run_by_family_not_by_op_class(env, monkeypatch):
    """The GPU picks a host step's form from its family alone: an op of any class that says 'blas'
    runs the gemm kernel; without CBLAS (the C backend then runs dot and conv2d as numpy: their
    lowering is 'host') the GPU still runs dot, conv2d and its gradient as kernels."""
    from gencomp.tensor import blas

    x, w = T.dmatrix("x"), T.dmatrix("w")
    f = env.function([x, w], _Times()(x, w) * 2)
    rng = np.random.default_rng(16)
    xv, wv = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    _compare([f(xv, wv)], [xv @ wv * 2])
    assert "gc_gemm_float64" in f.source
    monkeypatch.setattr(blas, "_cblas", lambda: False)
    i, k = T.dtensor4("i"), T.dtensor4("k")
    y = T.nnet.conv2d(i, k)
    outs = [T.dot(x, w), y, T.grad((y * y).sum(), k)]
    assert {o.owner.op.lowering(o.owner) for o in outs[:2]} == {"host"}
    g = env.function([x, w, i, k], outs)
    assert "gc_gemm_float64(" in g.source and "gc_conv2d_float64(" in g.source \
        and "gc_conv2d_grad_filters_float64(" in g.source
    iv, kv = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 2, 2))
    _compare(g(xv, wv, iv, kv), _reference([x, w, i, k], outs, [xv, wv, iv, kv]))
    if env.fake is not None:
        names = {name for name, _ in env.fake.launches}
        assert {"gc_gemm_float64", "gc_conv2d_float64", "gc_conv2d_grad_filters_float64"} <= names
