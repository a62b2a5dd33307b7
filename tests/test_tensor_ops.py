"""Tensor ops against numpy, on the C backend and on the numpy reference evaluator (device='py').

Covers reductions (dtypes, axes, keepdims, non-contiguous / broadcast / empty / 0-d
inputs, a fused producer), shape ops, indexing, dot/matmul/outer and the nnet
functions, including their numerical stability at inputs of +-1000.

Each test compiles a few functions with many outputs and calls them on several
arrays (contiguous, Fortran-order, negative strides, step 2) to keep compiles few.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gencomp.tensor as T
from gencomp import function, shared

DEVICES = ("cpu", "py")


# ------------------------------------------------------------------------------------------ helpers

def compile_both(inputs, outputs, **kwargs):
    """{device: Function} for the C backend and the numpy reference evaluator."""
    return {d: function(inputs, outputs, device=d, **kwargs) for d in DEVICES}


def assert_matches(got, want, what="", rtol=None, atol=None):
    """`got` is an ndarray with numpy's dtype and shape, and numpy's values (exact for ints and bools)."""
    want = np.asarray(want)
    assert isinstance(got, np.ndarray), f"{what}: got {type(got).__name__}, expected an ndarray"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, numpy gives {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, numpy gives {want.shape}"
    if want.dtype.kind in "fc":
        single = want.dtype in (np.float32, np.complex64)
        rtol = rtol if rtol is not None else (2e-5 if single else 1e-10)
        atol = atol if atol is not None else (1e-5 if single else 1e-12)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def layouts(a):
    """The same values as C-contiguous, Fortran-order, negative-stride and step-2 arrays."""
    a = np.ascontiguousarray(a)
    yield "contiguous", a
    if a.ndim >= 2:
        yield "fortran", np.asfortranarray(a)
    if a.ndim >= 1:
        neg = np.flip(np.flip(a).copy())
        yield "negative strides", neg
        yield "step 2", np.repeat(a, 2, axis=-1)[..., ::2]


def run_all(fns, args, ref, what=""):
    """Call each device's function on `args` and compare every output with `ref` (a list of arrays)."""
    for device, f in fns.items():
        outs = f(*args)
        outs = outs if isinstance(outs, list) else [outs]
        assert len(outs) == len(ref)
        for k, (got, want) in enumerate(zip(outs, ref)):
            assert_matches(got, want, f"{device} {what} output {k}")


def raises_on_both(fns, exc, args, match=None):
    for device, f in fns.items():
        with pytest.raises(exc, match=match):
            f(*args)


RNG = np.random.default_rng(1234)


def sample(shape, dtype, rng=RNG, lo=-3, hi=3):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        lo = max(lo, 0) if dt.kind == "u" else lo
        return rng.integers(lo, hi + 1, size=shape).astype(dt)
    return rng.uniform(lo, hi, size=shape).astype(dt)


# ---------------------------------------------------------------------------------------- reductions

# Every reducer on every axis form for float64; a smaller grid for the other dtypes (each output is a
# C kernel, and kernels are what a compile costs).
FULL_AXES = [None, 0, 1, -1, (0, 2), (2, 0), (-1, -2), ()]
SMALL_AXES = [None, -1, (2, 0)]
REDUCERS = ["sum", "prod", "mean", "max", "min", "var", "std"]


def _reduction_graph(x, full):
    outs, refs = [], []
    for name in REDUCERS if full else REDUCERS[:5]:
        for axis in FULL_AXES if full else SMALL_AXES:
            outs.append(getattr(T, name)(x, axis=axis))
            refs.append((name, axis, False))
        for axis in ([None, (0, 2), -1] if full else [(2, 0)]):
            outs.append(getattr(T, name)(x, axis=axis, keepdims=True))
            refs.append((name, axis, True))
    if not full:
        outs += [T.var(x, axis=(0, 1)), T.std(x, axis=-1, keepdims=True)]
        refs += [("var", (0, 1), False), ("std", -1, True)]
    for name in ("argmax", "argmin"):
        for axis, keep in ([(None, False), (0, False), (1, True), (-1, False), (None, True)] if full
                           else [(None, False), (1, False), (-1, True)]):
            outs.append(getattr(T, name)(x, axis=axis, keepdims=keep))
            refs.append((name, axis, keep))
    return outs, refs


def _numpy_reductions(a, refs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return [getattr(np, name)(a, axis=axis, keepdims=keep) for name, axis, keep in refs]


REDUCTION_FNS = {}


def reduction_fns(dtype):
    if dtype not in REDUCTION_FNS:
        x = T.tensor(dtype, shape=(None, None, None), name="x")
        outs, refs = _reduction_graph(x, full=dtype in ("float64", "int64"))
        REDUCTION_FNS[dtype] = (compile_both([x], outs), refs, x, outs)
    return REDUCTION_FNS[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64", "int8", "uint8", "bool"])
def test_reductions_all_axes_dtypes_layouts(dtype):
    fns, refs, _, outs = reduction_fns(dtype)
    # the result dtypes are numpy's: sum / prod of int32 -> int64, mean of ints -> float64, ...
    probe = _numpy_reductions(np.ones((2, 2, 2), dtype=dtype), refs)
    for out, want, ref in zip(outs, probe, refs):
        assert out.dtype == want.dtype.name, f"{ref}: symbolic dtype {out.dtype}, numpy {want.dtype}"
        assert out.ndim == want.ndim, f"{ref}: symbolic ndim {out.ndim}, numpy {want.ndim}"
    lo, hi = (-2, 2) if dtype not in ("float32", "float64") else (0.5, 1.5)
    base = sample((3, 4, 5), dtype, lo=lo, hi=hi)
    if dtype.startswith("float"):
        base[0, 0, :] *= -1           # negative values for max / min
    for layout, a in layouts(base):
        run_all(fns, [a], _numpy_reductions(base, refs), f"{dtype} {layout}")


def test_reductions_with_ties_return_first_index():
    fns, refs, _, _ = reduction_fns("int64")
    a = np.zeros((3, 4, 5), dtype=np.int64)
    a[:, 1, :] = 1
    a[:, 3, :] = 1
    a[2, :, 2] = -1
    a[2, :, 4] = -1
    for layout, v in layouts(a):
        run_all(fns, [v], _numpy_reductions(a, refs), f"ties {layout}")


def test_reductions_propagate_nan_like_numpy():
    fns, refs, _, _ = reduction_fns("float64")
    a = sample((3, 4, 5), "float64")
    a[1, 2, 3] = np.nan
    a[0, 0, 0] = np.nan
    a[2, 3, 1] = np.inf
    a[2, 0, 4] = -np.inf
    run_all(fns, [a], _numpy_reductions(a, refs), "nan")


def test_reduction_of_0d_input():
    s = T.scalar("s")
    outs = [T.sum(s), T.prod(s), T.mean(s), T.max(s), T.min(s), T.var(s), T.std(s), T.argmax(s), T.argmin(s),
            T.sum(s, keepdims=True), T.sum(s, axis=()), s.max(axis=None, keepdims=True)]
    fns = compile_both([s], outs)
    for v in (2.5, -0.0, np.inf):
        a = np.asarray(v)
        with np.errstate(invalid="ignore"):          # var(inf) is nan, as numpy says
            want = [np.sum(a), np.prod(a), np.mean(a), np.max(a), np.min(a), np.var(a), np.std(a), np.argmax(a),
                    np.argmin(a), np.sum(a, keepdims=True), np.sum(a, axis=()), np.max(a, keepdims=True)]
            run_all(fns, [a], want, f"0-d {v}")
    assert all(o.ndim == 0 for o in outs[:9])


def test_reduction_bad_axis_raises_at_build():
    x = T.matrix("x")
    s = T.scalar("s")
    for bad in (2, -3, (0, 2), (0, 0), (1, -1)):
        with pytest.raises(ValueError):
            T.sum(x, axis=bad)
        with pytest.raises(ValueError):
            T.max(x, axis=bad)
    with pytest.raises(ValueError):
        T.sum(s, axis=0)
    with pytest.raises(ValueError):
        T.argmax(x, axis=2)
    with pytest.raises(TypeError):
        T.argmax(x, axis=(0, 1))
    with pytest.raises(TypeError):
        T.sum(x, axis=0.5)


def test_empty_reductions_with_identity():
    x = T.matrix("x")
    outs = [x.sum(), x.sum(axis=0), x.sum(axis=1), x.prod(), x.prod(axis=0), x.mean(axis=1),
            x.max(axis=1), x.min(axis=1, keepdims=True), x.argmax(axis=1), x.mean(),
            (x * 2).sum(axis=0, keepdims=True)]
    fns = compile_both([x], outs)
    a = np.zeros((0, 4))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = [a.sum(), a.sum(axis=0), a.sum(axis=1), a.prod(), a.prod(axis=0), a.mean(axis=1),
                a.max(axis=1), a.min(axis=1, keepdims=True), a.argmax(axis=1), a.mean(),
                (a * 2).sum(axis=0, keepdims=True)]
    assert want[0] == 0 and want[3] == 1 and np.isnan(want[9])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the reference evaluator warns as numpy does
        run_all(fns, [a], want, "empty (0, 4)")
    # an int sum of nothing is an int64 0
    i = T.ivector("i")
    fi = compile_both([i], [i.sum(), i.prod(), i.mean()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = np.zeros(0, np.int32)
        run_all(fi, [e], [e.sum(), e.prod(), e.mean()], "empty int")


NO_IDENTITY = {
    "max": (lambda x: x.max(), lambda a: a.max()),
    "min0": (lambda x: x.min(axis=0), lambda a: a.min(axis=0)),
    "max01-keep": (lambda x: T.max(x, axis=(0, 1), keepdims=True), lambda a: a.max(axis=(0, 1), keepdims=True)),
    "argmax": (lambda x: x.argmax(), lambda a: a.argmax()),
    "argmin0": (lambda x: x.argmin(axis=0), lambda a: a.argmin(axis=0)),
    "fused-max0": (lambda x: (x * 2).max(axis=0), lambda a: (a * 2).max(axis=0)),
}
EMPTY_SHAPES = {"max0-of-0x0": (0, 0), "min-of-3x0-axis1": (3, 0)}
NO_IDENTITY["max0-of-0x0"] = (lambda x: x.max(axis=0), lambda a: a.max(axis=0))
NO_IDENTITY["min-of-3x0-axis1"] = (lambda x: x.min(axis=1), lambda a: a.min(axis=1))


@pytest.mark.parametrize("case", sorted(NO_IDENTITY))
def test_empty_reductions_without_identity_raise_valueerror(case):
    build, ref = NO_IDENTITY[case]
    x = T.matrix("x")
    fns = compile_both([x], build(x))
    a = np.zeros(EMPTY_SHAPES.get(case, (0, 3)))
    with pytest.raises(ValueError):
        ref(a)                             # numpy raises too
    raises_on_both(fns, ValueError, [a])
    b = sample((2, 3), "float64")          # a non-empty call still works afterwards
    run_all(fns, [b], [ref(b)], case)


def test_reduction_over_transposed_input_and_fused_producer():
    x = T.matrix("x")
    y = T.tensor3("y")
    outs = [x.T.sum(axis=1), x.T.sum(axis=0), (x ** 2).sum(axis=1), (x ** 2).sum(),
            (x.T * 3 + 1).max(axis=0), T.exp(x).mean(axis=0, keepdims=True),
            y.transpose(2, 0, 1).sum(axis=(1, 2)), (y.dimshuffle(1, 2, 0) ** 2).max(axis=-1),
            T.sum(x[::-1, ::2], axis=1), (x - x.mean(axis=1, keepdims=True)).sum(axis=1)]
    fns = compile_both([x, y], outs)
    xa = sample((4, 7), "float64")
    ya = sample((2, 3, 5), "float64")
    for (lx, a), (ly, b) in zip(layouts(xa), layouts(ya)):
        want = [a.T.sum(axis=1), a.T.sum(axis=0), (a ** 2).sum(axis=1), (a ** 2).sum(),
                (a.T * 3 + 1).max(axis=0), np.exp(a).mean(axis=0, keepdims=True),
                b.transpose(2, 0, 1).sum(axis=(1, 2)), (b.transpose(1, 2, 0) ** 2).max(axis=-1),
                a[::-1, ::2].sum(axis=1), (a - a.mean(axis=1, keepdims=True)).sum(axis=1)]
        run_all(fns, [a, b], want, f"{lx}/{ly}")


def test_large_reductions_both_loop_orders():
    x = T.matrix("x")
    f = T.fmatrix("f")
    outs = [x.sum(), x.sum(axis=0), x.sum(axis=1), x.max(axis=0), x.mean(axis=1), f.sum(axis=0), f.sum(),
            (x * x).sum(axis=0)]
    fns = compile_both([x, f], outs)
    a = RNG.uniform(0, 1, (301, 257))
    b = a.astype(np.float32)
    for name, (xa, fa) in {"C": (a, b), "F": (np.asfortranarray(a), np.asfortranarray(b)),
                           "T": (a.T.copy().T, b.T.copy().T)}.items():
        want = [a.sum(), a.sum(axis=0), a.sum(axis=1), a.max(axis=0), a.mean(axis=1),
                b.astype(np.float64).sum(axis=0).astype(np.float32), np.float32(b.astype(np.float64).sum()),
                (a * a).sum(axis=0)]
        for device, fn in fns.items():
            got = fn(xa, fa)
            for k, (g, w) in enumerate(zip(got, want)):
                assert_matches(g, w, f"{device} {name} output {k}", rtol=1e-5 if w.dtype == np.float32 else 1e-10)


def test_integer_reductions_accumulate_in_numpy_dtypes():
    b = T.bvector("b")
    u = T.tensor("uint8", shape=(None,), name="u")
    i = T.ivector("i")
    outs = [b.sum(), u.sum(), u.max(), i.sum(), i.prod(), i.mean(), b.sum(axis=0, keepdims=True), u.prod()]
    fns = compile_both([b, u, i], outs)
    ba = np.full(300, 100, np.int8)
    ua = np.full(300, 250, np.uint8)
    ia = np.array([2 ** 31 - 1] * 4 + [-3], np.int32)
    run_all(fns, [ba, ua, ia], [ba.sum(), ua.sum(), ua.max(), ia.sum(), ia.prod(), ia.mean(),
                                ba.sum(axis=0, keepdims=True), ua.prod()], "wide accumulators")
    assert int(fns["cpu"](ba, ua, ia)[0]) == 30000


def test_reductions_on_broadcastable_inputs():
    r = T.row("r")
    c = T.col("c")
    x = T.matrix("x")
    outs = [r.sum(axis=0), r.sum(axis=1), c.sum(axis=0), c.max(axis=1), (x + r).sum(axis=0),
            (x * c).sum(axis=1), (c * r).max(axis=0), (c - r).mean(), r.sum(axis=0, keepdims=True)]
    assert outs[0].broadcastable == (False,)
    assert outs[1].broadcastable == (True,)
    assert outs[2].broadcastable == (True,)
    assert outs[8].broadcastable == (True, False)
    fns = compile_both([r, c, x], outs)
    ra, ca, xa = sample((1, 5), "float64"), sample((3, 1), "float64"), sample((3, 5), "float64")
    want = [ra.sum(axis=0), ra.sum(axis=1), ca.sum(axis=0), ca.max(axis=1), (xa + ra).sum(axis=0),
            (xa * ca).sum(axis=1), (ca * ra).max(axis=0), (ca - ra).mean(), ra.sum(axis=0, keepdims=True)]
    run_all(fns, [ra, ca, xa], want, "broadcast")
    raises_on_both(fns, TypeError, [sample((2, 5), "float64"), ca, xa])   # a row given 2 rows, as Theano


def test_sum_dtype_argument_and_var_ddof():
    x = T.imatrix("x")
    y = T.matrix("y")
    outs = [x.sum(dtype="int32"), x.sum(axis=0, dtype="float32"), T.var(y, axis=0, ddof=1),
            T.std(y, ddof=1), T.var(y, axis=1, keepdims=True), y.std(axis=(0, 1), keepdims=True)]
    fns = compile_both([x, y], outs)
    xa, ya = sample((4, 3), "int32"), sample((4, 3), "float64")
    want = [xa.sum(dtype="int32"), xa.sum(axis=0, dtype="float32"), ya.var(axis=0, ddof=1), ya.std(ddof=1),
            ya.var(axis=1, keepdims=True), ya.std(axis=(0, 1), keepdims=True)]
    run_all(fns, [xa, ya], want, "dtype/ddof")


_HYP_FNS = {}


def _hyp_fns(ndim, axes, keep):
    key = (ndim, axes, keep)
    if key not in _HYP_FNS:
        x = T.tensor("float64", shape=(None,) * ndim, name="x")
        ident = [x.sum(axis=axes, keepdims=keep), x.prod(axis=axes, keepdims=keep),
                 (x * x).sum(axis=axes, keepdims=keep)]
        noident = [x.max(axis=axes, keepdims=keep), x.min(axis=axes, keepdims=keep)]
        _HYP_FNS[key] = (compile_both([x], ident), compile_both([x], noident))
    return _HYP_FNS[key]


@st.composite
def reduction_cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    axes = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1)))))
    if draw(st.booleans()):
        axes = tuple(a - ndim for a in axes)        # the same axes, counted from the end
    keep = draw(st.booleans())
    layout = draw(st.sampled_from(["contiguous", "fortran", "negative strides", "step 2"]))
    seed = draw(st.integers(0, 2 ** 16))
    return shape, axes, keep, layout, seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reduction_cases())
def test_reductions_random_shapes_and_axes(case):
    shape, axes, keep, layout, seed = case
    base = np.random.default_rng(seed).uniform(0.5, 1.5, shape)
    arr = dict(layouts(base)).get(layout, base)
    norm = tuple(sorted(a % len(shape) for a in axes))
    ident, noident = _hyp_fns(len(shape), norm, keep)
    # the compiled graph is keyed by normalized axes; build the numpy reference with the drawn ones
    run_all(ident, [arr], [base.sum(axis=axes, keepdims=keep), base.prod(axis=axes, keepdims=keep),
                           (base * base).sum(axis=axes, keepdims=keep)], f"{case}")
    try:
        want = [base.max(axis=axes, keepdims=keep), base.min(axis=axes, keepdims=keep)]
    except ValueError:
        raises_on_both(noident, ValueError, [arr])
    else:
        run_all(noident, [arr], want, f"{case}")


def test_negative_axes_build_the_same_graph():
    x = T.tensor3("x")
    a = sample((2, 3, 4), "float64")
    f = function([x], [T.sum(x, axis=-1), T.sum(x, axis=(-3, -1)), x.max(axis=-2, keepdims=True), x.argmin(-1)])
    run_all({"cpu": f}, [a], [a.sum(-1), a.sum((-3, -1)), a.max(-2, keepdims=True), a.argmin(-1)])


# ------------------------------------------------------------------------------------------ shape ops

def test_dimshuffle_and_transpose():
    x = T.tensor3("x")
    r = T.row("r")
    outs = [x.dimshuffle(2, 0, 1), x.dimshuffle("x", 0, "x", 1, 2), x.T, x.transpose(1, 0, 2),
            T.transpose(x, (0, 2, 1)), T.transpose(x, (-1, 0, 1)), r.dimshuffle(1), r.dimshuffle(1, "x"),
            r.T, x.dimshuffle((1, 2, 0)) * 2, x.transpose()]
    assert outs[1].broadcastable == (True, False, True, False, False)
    assert outs[6].broadcastable == (False,)
    assert outs[8].broadcastable == (False, True)
    fns = compile_both([x, r], outs)
    for (lx, a), (_, b) in zip(layouts(sample((2, 3, 4), "float64")), layouts(sample((1, 5), "float64"))):
        want = [a.transpose(2, 0, 1), a[None, :, None], a.T, a.transpose(1, 0, 2), a.transpose(0, 2, 1),
                a.transpose(2, 0, 1), b[0], b[0][:, None], b.T, a.transpose(1, 2, 0) * 2, a.T]
        run_all(fns, [a, b], want, lx)
    m = T.matrix("m")
    with pytest.raises((ValueError, TypeError)):
        m.dimshuffle(1)                    # dropping a dimension that is not broadcastable
    with pytest.raises(ValueError):
        T.transpose(x, (0, 0, 1))


def test_reshape_and_flatten():
    x = T.matrix("x")
    y = T.tensor3("y")
    n = T.lscalar("n")
    outs = [x.reshape((3, 4)), x.reshape((-1,)), x.reshape((2, -1)), x.reshape((n, -1)),
            x.reshape(y.shape, ndim=3), x.flatten(), y.flatten(2), y.flatten(), T.reshape(x, (12, 1)),
            T.flatten(x.T), x.T.reshape((4, 3)), x.reshape([-1, 6])]
    assert outs[8].broadcastable == (False, True)
    fns = compile_both([x, y, n], outs)
    for (lx, a), (_, b) in zip(layouts(sample((6, 2), "float64")), layouts(sample((2, 3, 2), "float64"))):
        want = [a.reshape((3, 4)), a.reshape(-1), a.reshape((2, -1)), a.reshape((4, -1)), a.reshape(b.shape),
                a.flatten(), b.reshape(2, -1), b.flatten(), a.reshape(12, 1), a.T.flatten(),
                a.T.reshape(4, 3), a.reshape(-1, 6)]
        run_all(fns, [a, b, 4], want, lx)
    # a bad reshape is a ValueError (sizes that do not divide, a wrong -1)
    raises_on_both(fns, ValueError, [sample((5, 2), "float64"), sample((2, 3, 2), "float64"), 4])
    raises_on_both(fns, ValueError, [sample((6, 2), "float64"), sample((2, 3, 2), "float64"), 5])
    with pytest.raises(ValueError, match="one unknown dimension"):
        x.reshape((-1, -1))                   # a constant shape: at graph-build time


def test_reshape_empty_and_0d():
    x = T.matrix("x")
    s = T.scalar("s")
    fns = compile_both([x, s], [x.reshape((-1, 5)), x.flatten(), s.reshape((1, 1)), s.flatten()])
    a = np.zeros((0, 5))
    run_all(fns, [a, 3.0], [a.reshape(-1, 5), a.flatten(), np.full((1, 1), 3.0), np.array([3.0])], "empty")


BAD_SHAPES = [(-1, -1), (-1, 2, -1), (-2, 3), (3, -2), (-6,), (2, -3, -1)]


@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_reshape_to_a_constant_bad_shape_raises_at_build(shape):
    """Lengths are >= 0, and one entry may be -1. numpy raises for two -1s; it takes any other
    negative length as the -1 too (undocumented, numpy/numpy#27024): gencomp raises for it, so a
    length computed wrongly is an error rather than a silent -1."""
    a = np.arange(12.0)
    if shape.count(-1) > 1:
        with pytest.raises(ValueError):
            a.reshape(shape)                  # numpy: "can only specify one unknown dimension"
    x = T.vector("x")
    n = T.lscalar("n")
    for build in (lambda: x.reshape(shape), lambda: T.reshape(x, np.array(shape)),
                  lambda: T.reshape(x, T.constant(np.array(shape, dtype="int64")), ndim=len(shape)),
                  lambda: x.reshape((n,) + shape)):           # some entries symbolic
        with pytest.raises(ValueError, match=r"reshape: (negative length|the new shape .* has \d entries -1)"):
            build()


_RESHAPE_FNS: dict = {}


def _symbolic_reshapes():
    """x.reshape((n, m)) and x.reshape(v, ndim=2), the shape known only at call time."""
    if not _RESHAPE_FNS:
        x, n, m, v = T.vector("x"), T.lscalar("n"), T.lscalar("m"), T.lvector("v")
        _RESHAPE_FNS["scalars"] = compile_both([x, n, m], x.reshape((n, m)))
        _RESHAPE_FNS["vector"] = compile_both([x, v], x.reshape(v, ndim=2))
    return _RESHAPE_FNS


@settings(max_examples=25, deadline=None)
@given(size=st.sampled_from([0, 1, 6, 12]), n=st.integers(-3, 7), m=st.integers(-3, 7))
def test_reshape_to_a_symbolic_shape_checks_it_at_call_time(size, n, m):
    """The same rule when the lengths come at call time: a ValueError where numpy raises, and
    for a negative length other than one -1; numpy's result otherwise."""
    a = np.arange(float(size))
    try:
        want = None if n < -1 or m < -1 else a.reshape((n, m))
    except ValueError:
        want = None
    for kind, fns in _symbolic_reshapes().items():
        args = [a, n, m] if kind == "scalars" else [a, np.array([n, m])]
        if want is None:
            raises_on_both(fns, ValueError, args, match="reshape")
        else:
            run_all(fns, args, [want], f"{kind} ({n}, {m})")


def test_concatenate_and_stack():
    a, b = T.matrices("a", "b")
    v, w = T.vectors("v", "w")
    i = T.imatrix("i")
    outs = [T.concatenate([a, b]), T.concatenate([a, b], axis=1), T.concatenate([a, b, a], axis=-1),
            T.concatenate([a, i]), T.stack([v, w]), T.stack([v, w], axis=1), T.stack([v, w, v], axis=-1),
            T.stack([a, b], axis=1), T.concatenate([v, w, v])]
    assert outs[3].dtype == "float64"
    fns = compile_both([a, b, v, w, i], outs)
    for (la, A), (_, B), (_, V), (_, W), (_, I) in zip(*(layouts(sample(s, d)) for s, d in [
            ((2, 3), "float64"), ((2, 3), "float64"), ((4,), "float64"), ((4,), "float64"),
            ((2, 3), "int32")])):
        want = [np.concatenate([A, B]), np.concatenate([A, B], 1), np.concatenate([A, B, A], -1),
                np.concatenate([A, I]), np.stack([V, W]), np.stack([V, W], 1), np.stack([V, W, V], -1),
                np.stack([A, B], 1), np.concatenate([V, W, V])]
        run_all(fns, [A, B, V, W, I], want, la)
    # mismatched lengths in a joined dimension: ValueError
    raises_on_both(fns, ValueError, [sample((2, 3), "float64"), sample((2, 4), "float64"),
                                     sample(4, "float64"), sample(4, "float64"), sample((2, 3), "int32")])
    # empty pieces
    fe = compile_both([a, b], T.concatenate([a, b]))
    run_all(fe, [np.zeros((0, 3)), np.ones((2, 3))], [np.ones((2, 3))])


def test_concatenate_dtype_promotion_follows_numpy():
    f32 = T.fvector("f32")
    i8 = T.bvector("i8")
    i32 = T.ivector("i32")
    outs = [T.concatenate([f32, i8]), T.concatenate([f32, i32]), T.concatenate([i8, i32])]
    want_dtypes = [np.concatenate([np.zeros(1, "float32"), np.zeros(1, "int8")]).dtype,
                   np.concatenate([np.zeros(1, "float32"), np.zeros(1, "int32")]).dtype,
                   np.concatenate([np.zeros(1, "int8"), np.zeros(1, "int32")]).dtype]
    assert [o.dtype for o in outs] == [d.name for d in want_dtypes]
    fns = compile_both([f32, i8, i32], outs)
    A, B, C = sample(3, "float32"), sample(2, "int8"), sample(2, "int32")
    run_all(fns, [A, B, C], [np.concatenate([A, B]), np.concatenate([A, C]), np.concatenate([B, C])])


def test_arange_fill_like_shape_alloc():
    n = T.lscalar("n")
    start, stop, step = T.lscalars("start", "stop", "step")
    x = T.matrix("x")
    i = T.imatrix("i")
    lo = T.scalar("lo")
    outs = [T.arange(n), T.arange(start, stop, step), T.arange(lo, 2.0, 0.25), T.zeros_like(x), T.ones_like(i),
            T.zeros_like(x, dtype="int32"), T.ones_like(x, dtype="float32"), T.fill(x, 7.5), x.shape,
            x.shape[1], T.shape(i)[0] * 2, T.alloc(0.5, n, 3), T.arange(n, dtype="float32"), x.size]
    fns = compile_both([n, start, stop, step, x, i, lo], outs)
    xa, ia = sample((3, 4), "float64"), sample((2, 5), "int32")
    for args in [(5, 10, -3, -4, -1.0), (0, 2, 2, 1, 1.75), (3, 0, 7, 3, 0.3)]:
        nv, a0, a1, a2, lov = args
        want = [np.arange(nv), np.arange(a0, a1, a2), np.arange(lov, 2.0, 0.25), np.zeros_like(xa),
                np.ones_like(ia), np.zeros_like(xa, dtype="int32"), np.ones_like(xa, dtype="float32"),
                np.full_like(xa, 7.5), np.array(xa.shape), np.array(4), np.array(4), np.full((nv, 3), 0.5),
                np.arange(nv, dtype="float32"), np.array(xa.size)]
        run_all(fns, [nv, a0, a1, a2, xa, ia, lov], want, f"{args}")
    raises_on_both(fns, ValueError, [2, 0, 5, 0, xa, ia, 0.0])      # arange step 0


# -------------------------------------------------------------------------------------------- indexing

def test_basic_slicing():
    x = T.matrix("x")
    i, j, k = T.lscalars("i", "j", "k")
    outs = [x[1], x[-1], x[1:3], x[::-1], x[::-2, 1:], x[:, -1], x[1:-1:2, ::-3], x[None, 1], x[..., 0],
            x[i], x[i:j], x[::k], x[i, j], x[:, i:j:k], x[-i], x[1:, None, ::2], x[5:9], x[::-1].T]
    fns = compile_both([x, i, j, k], outs)
    for la, a in layouts(sample((5, 6), "float64")):
        for iv, jv, kv in [(1, 4, 2), (0, -1, -1), (3, 1, -2), (-2, 5, 3)]:
            want = [a[1], a[-1], a[1:3], a[::-1], a[::-2, 1:], a[:, -1], a[1:-1:2, ::-3], a[None, 1], a[..., 0],
                    a[iv], a[iv:jv], a[::kv], a[iv, jv], a[:, iv:jv:kv], a[-iv], a[1:, None, ::2], a[5:9],
                    a[::-1].T]
            run_all(fns, [a, iv, jv, kv], want, f"{la} i={iv} j={jv} k={kv}")


def test_index_out_of_bounds_raises_indexerror():
    x = T.matrix("x")
    i = T.lscalar("i")
    const = compile_both([x], x[5])
    raises_on_both(const, IndexError, [sample((3, 2), "float64")])
    sym = compile_both([x, i], x[1, i])
    raises_on_both(sym, IndexError, [sample((3, 2), "float64"), 2])
    raises_on_both(sym, IndexError, [sample((3, 2), "float64"), -3])
    adv = compile_both([x], x[[0, 3]])
    raises_on_both(adv, IndexError, [sample((3, 2), "float64")])
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises(TypeError):
        x[x > 0]                     # boolean masks are not supported: a clear TypeError
    with pytest.raises(TypeError):
        x[T.vector("fv")]            # float indices


def test_advanced_integer_indexing():
    p = T.matrix("p")
    y = T.lvector("y")
    iy = T.ivector("iy")
    n = T.lscalar("n")
    outs = [p[T.arange(n), y], p[T.arange(p.shape[0]), iy], p[[2, 0, 2]], p[y], p[y, 1:], p[1:, y], p[:, y],
            p[[-1, 0]], p[y, y]]
    fns = compile_both([p, y, iy, n], outs)
    for la, a in layouts(sample((4, 4), "float64")):
        yv = np.array([3, 0, 0, -1])
        want = [a[np.arange(4), yv], a[np.arange(4), yv.astype(np.int32)], a[[2, 0, 2]], a[yv], a[yv, 1:],
                a[1:, yv], a[:, yv], a[[-1, 0]], a[yv, yv]]
        run_all(fns, [a, yv, yv.astype(np.int32), 4], want, la)


def test_set_and_inc_subtensor():
    x = T.matrix("x")
    v = T.vector("v")
    idx = T.lvector("idx")
    i = T.lscalar("i")
    s = T.scalar("s")
    outs = [T.set_subtensor(x[1:3], 0.0), T.set_subtensor(x[::-1, 0], v), T.inc_subtensor(x[i], v),
            T.inc_subtensor(x[idx], v), T.inc_subtensor(x[idx, 1], s), T.set_subtensor(x[:, 1:], 2 * x[:, :-1]),
            T.inc_subtensor(x[T.arange(4), idx], 1.0), T.set_subtensor(x[idx[:2], 0], s),
            T.inc_subtensor(x[-1, ::-2], s)]
    fns = compile_both([x, v, idx, i, s], outs)
    base = sample((4, 4), "float64")
    vv = sample(4, "float64")
    iv = np.array([0, 2, 2, -1])               # repeated index: increments add up
    for la, a in layouts(base):
        a_before = a.copy()
        want = []
        r = base.copy(); r[1:3] = 0.0; want.append(r)                               # noqa: E702
        r = base.copy(); r[::-1, 0] = vv; want.append(r)                            # noqa: E702
        r = base.copy(); r[2] += vv; want.append(r)                                 # noqa: E702
        r = base.copy(); np.add.at(r, iv, vv); want.append(r)                       # noqa: E702
        r = base.copy(); np.add.at(r, (iv, 1), 0.5); want.append(r)                 # noqa: E702
        r = base.copy(); r[:, 1:] = 2 * base[:, :-1]; want.append(r)                # noqa: E702
        r = base.copy(); np.add.at(r, (np.arange(4), iv), 1.0); want.append(r)      # noqa: E702
        r = base.copy(); r[iv[:2], 0] = 0.5; want.append(r)                         # noqa: E702
        r = base.copy(); r[-1, ::-2] += 0.5; want.append(r)                         # noqa: E702
        run_all(fns, [a, vv, iv, 2, 0.5], want, la)
        np.testing.assert_array_equal(a, a_before, err_msg="set/inc_subtensor modified its input")
    with pytest.raises(TypeError):
        T.set_subtensor(x + 1, 0.0)
    # a value that does not fit the indexed part: ValueError
    raises_on_both(compile_both([x, v], T.set_subtensor(x[1:3], v)), ValueError,
                   [base, sample(3, "float64")])


def test_outputs_do_not_alias_inputs():
    x = T.matrix("x")
    outs = [x[1:], x.T, x.reshape((-1,)), x[::-1], x.dimshuffle("x", 0, 1), x.flatten(), x[0], x[:, 1]]
    fns = compile_both([x], outs)
    a = sample((3, 4), "float64")
    for device, f in fns.items():
        for k, out in enumerate(f(a)):
            assert not np.shares_memory(out, a), f"{device}: output {k} is a view of the input"
    w = shared(sample((3, 4), "float64"), name="w")
    fw = compile_both([], [w.T, w[1:], w.reshape((12,))])
    for device, f in fw.items():
        for k, out in enumerate(f()):
            assert not np.shares_memory(out, w.get_value(borrow=True)), f"{device}: output {k} aliases w"


@pytest.mark.parametrize("dtype", ["int32", "bool", "float32"])
def test_shape_and_index_ops_keep_dtype_and_handle_empty(dtype):
    x = T.tensor(dtype, shape=(None, None), name="x")
    y = T.tensor(dtype, shape=(None, None), name="y")
    idx = T.lvector("idx")
    outs = [x.T, x[::-1, 1:], x.reshape((-1,)), T.concatenate([x, y], axis=1), T.stack([x, y]), x[idx],
            x.dimshuffle(1, "x", 0), T.set_subtensor(x[0], y[1]), x[1:1], x.flatten(), T.zeros_like(x), x.shape]
    fns = compile_both([x, y, idx], outs)
    for la, a in layouts(sample((3, 4), dtype)):
        b = sample((3, 4), dtype)
        for iv in (np.array([2, 0, -1]), np.zeros(0, np.int64)):
            r = a.copy()
            r[0] = b[1]
            want = [a.T, a[::-1, 1:], a.reshape(-1), np.concatenate([a, b], 1), np.stack([a, b]), a[iv],
                    a.T[:, None, :], r, a[1:1], a.flatten(), np.zeros_like(a), np.array(a.shape)]
            run_all(fns, [a, b, iv], want, f"{dtype} {la} idx={iv}")
    e = np.zeros((0, 4), dtype)
    ef = compile_both([x, y], [x.T, x[::-1, 1:], x.reshape((-1, 2)), T.concatenate([x, y]), x.dimshuffle(1, 0, "x")])
    run_all(ef, [e, e], [e.T, e[::-1, 1:], e.reshape(-1, 2), np.concatenate([e, e]), e.T[:, :, None]], "empty")


# --------------------------------------------------------------------------------- dot / matmul / outer

def test_dot_every_vector_matrix_combination():
    v, w, u = T.vectors("v", "w", "u")
    a, b = T.matrices("a", "b")
    s = T.scalar("s")
    outs = [T.dot(v, w), T.dot(a, v), T.dot(u, a), T.dot(a, b), v.dot(w), a.dot(b), a @ b, a @ v, u @ a, v @ w,
            T.matmul(a, b), T.outer(u, v), T.dot(b.T, a.T), T.dot(s, a), T.dot(v, s), a.T @ a, T.dot(b.T, v)]
    fns = compile_both([v, w, u, a, b, s], outs)
    rng = np.random.default_rng(5)
    shapes = [(3,), (3,), (2,), (2, 3), (3, 4)]
    for (la, V), (_, W), (_, U), (_, A), (_, B) in zip(*(layouts(rng.standard_normal(sh)) for sh in shapes)):
        want = [V @ W, A @ V, U @ A, A @ B, V @ W, A @ B, A @ B, A @ V, U @ A, V @ W, A @ B, np.outer(U, V),
                B.T @ A.T, 1.5 * A, V * 1.5, A.T @ A, B.T @ V]
        run_all(fns, [V, W, U, A, B, 1.5], want, la)
    bad = [rng.standard_normal(sh) for sh in shapes]
    bad[1] = rng.standard_normal(4)                      # v . w with lengths 3 and 4
    raises_on_both(fns, ValueError, bad + [1.0])


def test_dot_shapes_dtypes_and_empty():
    a = T.matrix("a")
    b = T.matrix("b")
    f32 = T.fmatrix("f32")
    i32 = T.imatrix("i32")
    i64 = T.lmatrix("i64")
    r = T.row("r")
    outs = [T.dot(a, b), T.dot(f32, f32), T.dot(i32, i32), T.dot(i32, i64), T.dot(f32, a), T.dot(i32, f32),
            T.dot(r, a)]
    assert outs[6].broadcastable == (True, False)
    fns = compile_both([a, b, f32, i32, i64, r], outs)
    A, B = np.ones((3, 0)), np.ones((0, 2))
    F, I, L, R = sample((3, 3), "float32"), sample((3, 3), "int32"), sample((3, 3), "int64"), sample((1, 3), "float64")
    Af = sample((3, 3), "float64")
    # an empty inner dimension gives zeros
    run_all({d: function([a, b], T.dot(a, b), device=d) for d in DEVICES}, [A, B], [np.zeros((3, 2))], "empty")
    # mixed dtypes give numpy's result dtype: float32 @ float32 stays float32, int32 @ int32 is int32
    want = [Af @ Af, F @ F, I @ I, np.dot(I, L), np.dot(F, Af), np.dot(I, F), R @ Af]
    run_all(fns, [Af, Af, F, I, L, R], want, "dtypes")
    with pytest.raises(TypeError):
        T.dot(T.bmatrix("bm") > 0, a)         # boolean operands
    from gencomp.tensor.blas import Dot
    with pytest.raises(TypeError):
        Dot()(T.tensor3("t"), a)              # Dot itself takes vectors and matrices only


def test_batched_matmul():
    x, y = T.tensor3s("x", "y")
    m = T.matrix("m")
    v, u = T.vectors("v", "u")
    q = T.tensor4("q")
    outs = [x @ y, T.matmul(x, m), m @ x, x @ v, u @ x, T.dot(x, m), q @ x, T.matmul(x, x.transpose(0, 2, 1))]
    fns = compile_both([x, y, m, v, u, q], outs)
    rng = np.random.default_rng(9)
    shapes = [(2, 3, 4), (2, 4, 5), (4, 3), (4,), (3,), (3, 2, 5, 3)]
    for (lx, X), (_, Y), (_, M), (_, V), (_, U), (_, Q) in zip(*(layouts(rng.standard_normal(s)) for s in shapes)):
        want = [X @ Y, X @ M, M @ X, X @ V, U @ X, X @ M, Q @ X, X @ X.transpose(0, 2, 1)]
        run_all(fns, [X, Y, M, V, U, Q], want, lx)
    bad = [rng.standard_normal(s) for s in shapes]
    bad[1] = rng.standard_normal((2, 3, 5))               # inner dimensions 4 and 3
    raises_on_both(fns, ValueError, bad)
    raises_on_both(compile_both([x, y], x @ y), ValueError, [rng.standard_normal((2, 3, 4)),
                                                             rng.standard_normal((3, 4, 2))])   # batch 2 vs 3


# --------------------------------------------------------------------------------------------- nnet

def np_softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(a, axis=-1):
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


def np_softplus(a):
    return np.logaddexp(0, a)


def np_sigmoid(a):
    return np.where(a >= 0, 1 / (1 + np.exp(-np.abs(a))), np.exp(-np.abs(a)) / (1 + np.exp(-np.abs(a))))


EXTREME = np.array([[1000.0, -1000.0, 0.0, 1.0],
                    [-1000.0, -1000.0, -1000.0, -999.0],
                    [1000.0, 1000.0, 999.0, -1000.0],
                    [0.5, -0.25, 2.0, 3.0]])


def test_nnet_functions_match_numpy_and_are_stable():
    x = T.matrix("x")
    v = T.vector("v")
    y = T.lvector("y")
    t = T.matrix("t")
    onehot = T.matrix("onehot")
    outs = [T.nnet.softmax(x), T.softmax(x), T.nnet.log_softmax(x), T.nnet.softmax(x, axis=0),
            T.log_softmax(x, axis=0), T.nnet.softmax(v), T.nnet.relu(x), T.nnet.relu(x, alpha=0.1), T.relu(x),
            T.nnet.sigmoid(x), T.sigmoid(x), T.nnet.softplus(x), T.softplus(x),
            T.nnet.categorical_crossentropy(T.nnet.softmax(x), y),
            T.nnet.categorical_crossentropy(T.nnet.softmax(x), onehot),
            T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t),
            T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean()]
    fns = compile_both([x, v, y, t, onehot], outs)
    yv = np.array([0, 3, 2, 1])
    oh = np.eye(4)[yv]
    tv = np.array([[1.0, 0.0, 0.3, 1.0]] * 4)
    for la, a in layouts(EXTREME):
        va = a[2].copy()
        lsm = np_log_softmax(EXTREME)
        bce = tv * np_softplus(-EXTREME) + (1 - tv) * np_softplus(EXTREME)
        want = [np_softmax(EXTREME), np_softmax(EXTREME), lsm, np_softmax(EXTREME, 0),
                np_log_softmax(EXTREME, 0), np_softmax(va)[None, :], np.maximum(EXTREME, 0),
                np.where(EXTREME > 0, EXTREME, 0.1 * EXTREME), np.maximum(EXTREME, 0),
                np_sigmoid(EXTREME), np_sigmoid(EXTREME), np_softplus(EXTREME), np_softplus(EXTREME),
                -lsm[np.arange(4), yv], -(oh * lsm).sum(-1), bce, -lsm[np.arange(4), yv].mean()]
        for device, f in fns.items():
            got = f(a, va, yv, tv, oh)
            for k, (g, w) in enumerate(zip(got, want)):
                assert np.all(np.isfinite(g)), f"{device} {la}: output {k} is not finite: {g}"
                assert_matches(g, w, f"{device} {la} nnet output {k}", rtol=1e-12)
    # spot values: softmax of [1000, -1000, 0, 1] is one-hot; cross-entropy of the wrong class is ~2000
    got = fns["cpu"](EXTREME, EXTREME[0], yv, tv, oh)
    np.testing.assert_allclose(got[0][0], [1, 0, 0, 0], atol=1e-300)
    np.testing.assert_allclose(got[13][1], np.log1p(3 * np.exp(-1.0)), rtol=1e-12)
    np.testing.assert_allclose(got[13][2], 1.0 + np.log(2 + np.exp(-1.0)), rtol=1e-12)


def test_nnet_float32_and_plain_probabilities():
    x = T.fmatrix("x")
    p = T.matrix("p")
    y = T.ivector("y")
    t = T.matrix("t")
    outs = [T.nnet.softmax(x), T.nnet.log_softmax(x), T.nnet.sigmoid(x), T.nnet.softplus(x), T.nnet.relu(x),
            T.nnet.categorical_crossentropy(p, y), T.nnet.categorical_crossentropy(p, t),
            T.nnet.binary_crossentropy(p, t)]
    assert [o.dtype for o in outs[:5]] == ["float32"] * 5
    fns = compile_both([x, p, y, t], outs)
    xa = EXTREME.astype(np.float32)
    pa = np_softmax(sample((4, 3), "float64"))
    ya = np.array([0, 2, 1, 1], dtype=np.int32)
    ta = np.eye(3)[ya]
    want = [np_softmax(xa), np_log_softmax(xa), np_sigmoid(xa), np_softplus(xa), np.maximum(xa, 0),
            -np.log(pa[np.arange(4), ya]), -(ta * np.log(pa)).sum(-1),
            -(ta * np.log(pa) + (1 - ta) * np.log(1 - pa))]
    for device, f in fns.items():
        for k, (g, w) in enumerate(zip(f(xa, pa, ya, ta), want)):
            assert np.all(np.isfinite(g)), f"{device}: output {k} not finite"
            assert_matches(g, w.astype(g.dtype) if k < 5 else w, f"{device} output {k}", rtol=1e-5, atol=1e-6)


def test_softmax_on_0_size_and_single_column():
    x = T.matrix("x")
    fns = compile_both([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)])
    run_all(fns, [np.zeros((0, 3))], [np.zeros((0, 3)), np.zeros((0, 3))], "empty rows")
    a = np.array([[1000.0], [-1000.0]])
    run_all(fns, [a], [np.ones((2, 1)), np.zeros((2, 1))], "single column")
