"""function(): the DESIGN seed examples, inputs and defaults, shared variables, updates, givens, errors."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gencomp
import gencomp.tensor as T
from gencomp import In, function, shared


def test_logistic_seed():
    x = T.matrix("x")
    s = 1 / (1 + T.exp(-x))
    logistic = function([x], s)
    out = logistic([[0, 1], [-1, -2]])
    data = np.array([[0, 1], [-1, -2]], dtype=float)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-data)), rtol=1e-15)


def test_several_outputs_return_a_list():
    a, b = T.matrices("a", "b")
    f = function([a, b], [a - b, abs(a - b), (a - b) ** 2])
    A, B = np.random.rand(3, 4), np.random.rand(3, 4)
    outs = f(A, B)
    assert isinstance(outs, list) and len(outs) == 3
    for got, want in zip(outs, [A - B, abs(A - B), (A - B) ** 2]):
        np.testing.assert_allclose(got, want, rtol=1e-15)


def test_single_output_in_a_list_returns_a_list():
    x = T.vector("x")
    out = function([x], [x + 1])([1.0, 2.0])
    assert isinstance(out, list) and np.array_equal(out[0], [2.0, 3.0])


def test_in_defaults_and_keyword_names():
    x, y, w = T.scalars("x", "y", "w")
    f = function([x, In(y, value=1), In(w, value=2, name="w_by_name")], (x + y) * w)
    assert f(33) == f(33, 1, 2) == 68
    assert f(33, w_by_name=5) == 170
    assert f(x=33, y=0) == 66
    result = f(33)
    assert isinstance(result, np.ndarray) and result.ndim == 0


def test_shared_accumulator_returns_old_value():
    state = shared(0)
    assert state.dtype == "int64" and state.broadcastable == ()
    inc = T.iscalar("inc")
    acc = function([inc], state, updates=[(state, state + inc)])
    old = acc(1)
    assert old == 0 and old.ndim == 0
    assert state.get_value() == 1
    acc(300)
    assert state.get_value() == 301
    state.set_value(-1)
    assert acc(3) == -1 and state.get_value() == 2


def test_givens_replace_shared_without_touching_it():
    state = shared(0)
    inc = T.iscalar("inc")
    foo = T.scalar(dtype=state.dtype)
    skip = function([inc, foo], state * 2 + inc, givens=[(state, foo)])
    assert skip(1, 3) == 7
    assert state.get_value() == 0
    skip2 = function([inc, foo], state * 2 + inc, givens={state: foo})
    assert skip2(2, 3) == 8


def test_updates_apply_together_and_outputs_see_old_values():
    a, b = shared(1.0, name="a"), shared(10.0, name="b")
    f = function([], [a + b], updates=[(a, b), (b, a)])      # a swap needs simultaneous updates
    assert f()[0] == 11.0
    assert a.get_value() == 10.0 and b.get_value() == 1.0


def test_updates_as_ordered_dict_and_shared_arrays():
    from collections import OrderedDict

    W = shared(np.ones((2, 3)), name="W")
    lr = T.scalar("lr")
    step = function([lr], W * 1, updates=OrderedDict([(W, W - lr)]))
    step(0.5)
    np.testing.assert_array_equal(W.get_value(), np.full((2, 3), 0.5))


def test_outputs_never_alias_inputs_or_shared_values():
    x = T.vector("x")
    s = shared(np.arange(3.0))
    f = function([x], [x, s])
    data = np.arange(3.0)
    out_x, out_s = f(data)
    assert not np.shares_memory(out_x, data)
    assert not np.shares_memory(out_s, s.get_value(borrow=True))
    out_x[:] = 99
    assert data[0] == 0


def test_update_and_output_of_the_same_expression_do_not_alias():
    s = shared(np.zeros(3))
    f = function([], s + 1, updates=[(s, s + 1)])
    out = f()
    assert not np.shares_memory(out, s.get_value(borrow=True))


def test_shared_get_set_copy_semantics():
    value = np.arange(4.0)
    s = shared(value)
    value[0] = 100
    assert s.get_value()[0] == 0                 # shared() copied
    got = s.get_value()
    got[1] = 100
    assert s.get_value()[1] == 1                 # get_value() copied
    s.set_value(np.ones(4))
    assert np.array_equal(s.get_value(), np.ones(4))
    with pytest.raises(TypeError):
        s.set_value(np.ones((2, 2)))


def test_shared_broadcastable_pattern():
    b = shared(np.ones((1, 3)), broadcastable=(True, False))
    m = T.matrix("m")
    f = function([m], m + b)
    np.testing.assert_array_equal(f(np.zeros((2, 3))), np.ones((2, 3)))
    plain = shared(np.ones((1, 3)))
    g = function([m], m + plain)
    with pytest.raises(ValueError, match="broadcastable"):
        g(np.zeros((2, 3)))


def test_broadcastable_input_dimension_is_checked_even_when_only_its_shape_is_read():
    """As Theano's TensorType.filter: a row given two rows is a TypeError, not a wrong shape."""
    x, r = T.dmatrix("x"), T.drow("r")
    f = function([x, r], (x * r).shape)
    assert tuple(f(np.ones((4, 3)), np.ones((1, 3)))) == (4, 3)
    for bad in (np.ones((2, 3)), [[1.0, 2.0, 3.0]] * 2):
        with pytest.raises(TypeError, match="'r'.*dimension 0 is broadcastable"):
            f(np.ones((4, 3)), bad)
    g = function([r], r.shape)
    with pytest.raises(TypeError, match="broadcastable"):
        g(np.ones((3, 3)))


def test_tensortype_broadcastable_and_shape():
    rowtype = T.TensorType("float64", (True, False))
    r = rowtype("r")
    assert r.broadcastable == (True, False) and r.type == T.TensorType("float64", shape=(1, None))
    c = T.tensor("float32", shape=(None, 1), name="c")
    assert c.dtype == "float32" and c.broadcastable == (False, True)
    f = function([r, c], r + c)
    out = f(np.ones((1, 3)), np.full((4, 1), 2, dtype=np.float32))
    assert out.shape == (4, 3) and out.dtype == np.float64


def test_floatx_from_config():
    with gencomp.config.change(floatX="float32"):
        x = T.matrix("x")
        assert x.dtype == "float32"
        assert (x * 2.5).dtype == "float32"
    assert T.matrix().dtype == "float64"


def test_constructors_and_plurals():
    assert T.iscalar().dtype == "int32" and T.fvector().dtype == "float32"
    assert T.dmatrix().dtype == "float64" and T.ltensor3().ndim == 3
    assert T.btensor4().dtype == "int8" and T.wvector().dtype == "int16"
    assert T.cmatrix().dtype == "complex64" and T.zscalar().dtype == "complex128"
    a, b = T.iscalars("a", "b")
    assert (a.name, b.name, a.dtype) == ("a", "b", "int32")
    assert [v.name for v in T.matrices("p", "q")] == ["p", "q"]
    assert T.row().broadcastable == (True, False) and T.col().broadcastable == (False, True)
    assert T.tensor5().ndim == 5


def test_python_and_list_inputs_convert_when_they_fit():
    x = T.ivector("x")
    f = function([x], x * 2)
    assert f([1, 2, 3]).dtype == np.int32
    with pytest.raises(TypeError, match="'x'"):
        f([1.5, 2.0])                            # a float does not fit int32
    with pytest.raises(TypeError, match="int32"):
        f(np.array([1, 2], dtype=np.int64))      # int64 -> int32 is not a safe cast
    g = function([x], x * 2, allow_input_downcast=True)
    np.testing.assert_array_equal(g(np.array([1, 2], dtype=np.int64)), [2, 4])
    y = T.fvector("y")
    h = function([y], y + 0.1)
    assert h([0.5, 1.0]).dtype == np.float32     # these python floats are exact in float32


# (dtype, ndim, value, fits): a list or Python number converts only when every value fits exactly
EXACTNESS = [
    ("float32", 1, [1, 2, 16777216], True), ("float32", 1, [1, 2, 16777217], False),   # 2**24 + 1
    ("float32", 1, [0.5, -0.25, 2.0 ** 127], True), ("float32", 1, [0.1], False),
    ("float32", 1, [float("nan"), float("inf"), -float("inf")], True), ("float32", 1, [1e300], False),
    ("float32", 1, [2 ** 70], True), ("float32", 1, [2 ** 64 + 1], False),
    ("float64", 0, 2 ** 53, True), ("float64", 0, 2 ** 53 + 1, False), ("float64", 0, 1 + 0j, True),
    ("float64", 0, 1 + 1j, False), ("float64", 0, 2 ** 63, True), ("float64", 1, [2 ** 64 + 1], False),
    ("int32", 0, 2.0, True), ("int32", 0, 1.5, False), ("int32", 0, 2 ** 31, False), ("int32", 0, -2 ** 31, True),
    ("int8", 0, 300, False), ("int8", 0, -128, True), ("int8", 1, [127, 128], False), ("int8", 0, True, True),
    ("int64", 0, 2 ** 63, False), ("int64", 0, 2 ** 63 - 1, True), ("int64", 0, float(2 ** 63), False),
    ("int64", 0, -2.0 ** 63, True), ("int64", 0, float("nan"), False), ("int64", 0, float("inf"), False),
    ("uint8", 0, -1, False), ("uint8", 0, 255, True), ("uint8", 1, [0, 256], False),
    ("bool", 1, [0, 1, True], True), ("bool", 0, 2, False), ("bool", 0, 0.5, False),
    ("complex64", 0, 16777217, False), ("complex64", 1, [1 + 2j, 0.5j], True), ("complex64", 0, 0.1j, False),
]


@pytest.mark.parametrize("dtype, ndim, value, fits", EXACTNESS)
def test_lists_and_python_numbers_convert_only_when_exact(dtype, ndim, value, fits):
    """Theano's TensorType.filter: a list or Python number that the input's dtype cannot hold
    exactly is a TypeError naming the input and its dtype; allow_input_downcast (or In(x,
    allow_downcast=True)) converts it as numpy.asarray(value, dtype) does."""
    x = T.tensor(dtype, shape=(None,) * ndim, name="x")
    strict, loose, per_input = (function([x], x, device="py"),
                                function([x], x, device="py", allow_input_downcast=True),
                                function([In(x, allow_downcast=True)], x, device="py"))
    if fits:
        for f in (strict, loose, per_input):
            got = f(value)
            assert got.dtype == dtype and got.shape == np.shape(value)
            assert _same_numbers(got, value)
        return
    with pytest.raises(TypeError, match=rf"input 'x' of dtype {dtype} cannot hold"):
        strict(value)
    try:
        with np.errstate(all="ignore"):
            numpy_says = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):          # numpy refuses too: so does gencomp
        for f in (loose, per_input):
            with pytest.raises(TypeError, match="input 'x'"):
                f(value)
        return
    for f in (loose, per_input):
        got = f(value)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, numpy_says)


def test_inexact_values_raise_on_the_c_backend_too():
    x = T.fvector("x")
    f = function([x], x * 2)
    with pytest.raises(TypeError, match=r"'x' of dtype float32 cannot hold \[1, 2, 16777217\] exactly"):
        f([1, 2, 16777217])
    np.testing.assert_array_equal(f([1, 2, 16777216]), np.array([2, 4, 2 ** 25], dtype=np.float32))
    g = function([x], x * 2, allow_input_downcast=True)
    np.testing.assert_array_equal(g([1, 2, 16777217]), np.array([1, 2, 16777217], dtype=np.float32) * 2)
    i, b = T.iscalar("i"), T.bscalar("b")
    h = function([i, In(b, allow_downcast=True)], i + b)
    with pytest.raises(TypeError, match="'i' of dtype int32"):
        h(1.5, 1)
    assert h(2, 3.75) == 5                       # only b may downcast: 3.75 -> 3
    with pytest.raises(TypeError, match="'b' of dtype int8 cannot hold 300"):
        h(2, 300)                                # numpy refuses it too (out of bounds)


def test_python_float_for_a_floatx_input_rounds_unless_downcast_is_false():
    """Theano's special case ("float given for floatX: ok"): with allow_input_downcast left at
    None, a Python float given for a floatX (float32) input is rounded to it; a list is not, nor
    a numpy float64, nor an input of another dtype, nor allow_input_downcast=False."""
    with gencomp.config.change(floatX="float32"):
        x, v = T.scalar("x"), T.vector("v")
        f = function([x], x * 2)
        strict = function([x], x * 2, allow_input_downcast=False)
        per_input = function([In(x, allow_downcast=False)], x * 2)
        g = function([v], v * 2)
    assert f(0.1) == np.float32(0.1) * 2 and f(0.1).dtype == np.float32
    assert f(1e38) == np.float32(1e38) * 2
    with pytest.raises(TypeError, match=r"'x' of dtype float32 cannot hold 1e\+300"):
        f(1e300)                                  # not a rounding: the value overflows to inf
    for fn in (strict, per_input):
        with pytest.raises(TypeError, match="'x' of dtype float32 cannot hold 0.1 exactly"):
            fn(0.1)
        assert fn(0.5) == 1.0
    with pytest.raises(TypeError, match=r"'v' of dtype float32 cannot hold \[0.1\] exactly"):
        g([0.1])
    with pytest.raises(TypeError, match="float64"):
        f(np.float64(0.1))                        # a numpy scalar follows numpy's 'safe' rule
    y = T.fscalar("y")                            # floatX is float64 here: no special case
    with pytest.raises(TypeError, match="'y' of dtype float32"):
        function([y], y * 2)(0.1)


def _values_for(dtype):
    """Lists of numbers. numpy makes the array first: a list mixing ints and floats, or ints
    below 0 and above 2**63 - 1, is a float64 array there (its big ints rounded, as numpy.array
    does), so the int lists are those numpy keeps as ints (int64, uint64, or Python ints)."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    edges = [0, 1, -1, 2 ** 24, 2 ** 24 + 1, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63]
    if info is not None:
        edges += [int(info.min), int(info.max), int(info.min) - 1, int(info.max) + 1]
    ints = st.one_of(st.sampled_from(edges), st.integers(-2 ** 70, 2 ** 70), st.integers(-300, 300))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.floats(-1e6, 1e6).map(lambda f: float(np.float32(f))),  # exact in float32
                       st.integers(-2 ** 60, 2 ** 60).map(float), st.sampled_from([0.5, 0.1, -0.0, 1e300]))
    int_lists = st.lists(ints, min_size=1, max_size=5).filter(lambda v: np.asarray(v).dtype.kind in "iuO")
    return st.one_of(int_lists, st.lists(floats, min_size=1, max_size=5))


CONVERSION_DTYPES = ["float32", "float64", "int8", "int32", "int64", "uint8", "bool", "complex64"]
_IDENTITY: dict = {}


def _identity(dtype, downcast):
    key = (dtype, downcast)
    if key not in _IDENTITY:
        x = T.tensor(dtype, shape=(None,), name="x")
        _IDENTITY[key] = function([x], x, device="py", allow_input_downcast=downcast)
    return _IDENTITY[key]


def _same_numbers(arr, value) -> bool:
    """Every element of `arr` equals the Python number in `value` (NaN matching NaN)."""
    items = value if isinstance(value, list) else [value]
    return all(a == b or (a != a and b != b) for a, b in zip(np.atleast_1d(arr).tolist(), items, strict=True))


def _exact_reference(value, dtype) -> bool:
    """Each number converted alone, compared with the Python number (Python compares exactly)."""
    for item in value:
        try:
            with np.errstate(all="ignore"):
                back = np.asarray(item).astype(dtype).item()
        except (OverflowError, TypeError, ValueError):
            return False
        if not (back == item or (back != back and item != item)):
            return False
    return True


@settings(max_examples=25, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(CONVERSION_DTYPES))
def test_list_conversion_is_exact_or_a_type_error(data, dtype):
    value = data.draw(_values_for(dtype), label="value")
    exact = _exact_reference(value, dtype)
    strict, loose = _identity(dtype, None), _identity(dtype, True)
    if exact:
        got = strict(value)
        assert got.dtype == dtype and _same_numbers(got, value)
        np.testing.assert_array_equal(loose(value), got)
        return
    with pytest.raises(TypeError, match=f"input 'x' of dtype {dtype}"):
        strict(value)
    try:
        with np.errstate(all="ignore"):
            want = np.asarray(value, dtype=dtype)
    except (OverflowError, TypeError, ValueError):
        with pytest.raises(TypeError, match="input 'x'"):
            loose(value)
        return
    np.testing.assert_array_equal(loose(value), want)


@pytest.mark.parametrize("call, error, words", [
    (lambda f: f(), TypeError, "missing"),
    (lambda f: f(np.ones((2, 2)), np.ones((2, 2)), 3), TypeError, "at most 2"),
    (lambda f: f(np.ones((2, 2)), zz=1), TypeError, "unknown keyword"),
    (lambda f: f(np.ones(2), np.ones((2, 2))), TypeError, "'x'"),
    (lambda f: f(np.ones((2, 2)), np.ones((3, 2))), ValueError, "shape mismatch"),
    (lambda f: f(np.ones((2, 2), dtype=np.complex128), np.ones((2, 2))), TypeError, "complex128"),
    (lambda f: f(np.ones((2, 2)), "text"), TypeError, "'y'"),
])
def test_bad_calls_raise_clear_errors(call, error, words):
    x, y = T.matrices("x", "y")
    f = function([x, y], x + y)
    with pytest.raises(error, match=words):
        call(f)


def test_length_one_dimension_does_not_stretch_unless_broadcastable():
    x, y = T.matrices("x", "y")
    f = function([x, y], x + y)
    with pytest.raises(ValueError) as info:
        f(np.ones((1, 3)), np.ones((2, 3)))
    message = str(info.value)
    assert "'x'" in message and "(1, 3)" in message and "(2, 3)" in message and "T.row" in message


def test_unused_input_policy():
    x, y = T.vectors("x", "y")
    with pytest.raises(gencomp.UnusedInputError, match="'y'"):
        function([x, y], x * 2)
    with pytest.warns(UserWarning):
        function([x, y], x * 2, on_unused_input="warn")
    f = function([x, y], x * 2, on_unused_input="ignore")
    np.testing.assert_array_equal(f([1.0], [5.0]), [2.0])


def test_update_type_must_match():
    s = shared(np.zeros(3, dtype=np.float32), name="s")
    x = T.dvector("x")
    with pytest.raises(TypeError, match="float32"):
        function([x], [], updates=[(s, s + x)])
    with pytest.raises(TypeError, match="shared"):
        function([x], [], updates=[(x, x + 1)])
    c = shared(0, name="c")
    function([], [], updates=[(c, 5)])()         # a python constant takes the variable's dtype
    assert c.get_value() == 5


def test_missing_input_is_reported():
    x, y = T.vectors("x", "y")
    with pytest.raises(ValueError, match="y"):
        function([x], x + y)


def test_function_without_outputs_returns_empty_list():
    s = shared(1)
    f = function([], updates=[(s, s * 2)])
    assert f() == []
    assert s.get_value() == 2


def test_constant_and_input_outputs():
    x = T.vector("x")
    f = function([x], [x, T.constant(3.0), x * 0 + T.constant(np.arange(2.0))])
    a, b, c = f([1.0, 2.0])
    np.testing.assert_array_equal(a, [1.0, 2.0])
    assert b == 3.0 and b.ndim == 0
    np.testing.assert_array_equal(c, [0.0, 1.0])


def test_reference_device_matches_c():
    x, y = T.matrices("x", "y")
    expr = T.exp(-x) * T.sin(y) + x * y / (1 + abs(x))
    f_c, f_py = function([x, y], expr), function([x, y], expr, device="py")
    X, Y = np.random.randn(5, 7), np.random.randn(5, 7)
    np.testing.assert_allclose(f_c(X, Y), f_py(X, Y), rtol=1e-13)
    assert f_py.source is None


def test_non_contiguous_and_broadcast_inputs():
    x, y = T.matrix("x"), T.vector("y")
    f = function([x, y], x * y + 1)
    X = np.random.randn(6, 8)
    for view in (X.T, X[::2, ::-3], X[:, :1], np.asfortranarray(X)):
        Y = np.random.randn(view.shape[1])
        np.testing.assert_allclose(f(view, Y), view * Y + 1, rtol=1e-15)
    empty = f(np.zeros((0, 4)), np.zeros(4))
    assert empty.shape == (0, 4)


def test_source_on_disk_and_dprint():
    x = T.matrix("x")
    f = function([x], T.tanh(x) * 2, name="doubled_tanh")
    assert f.source_path.endswith(".c")
    with open(f.source_path) as fh:
        assert fh.read() == f.source
    assert "gc_elemwise_0" in f.source and "tanh" in f.source and f.cache_key[:12] in f.source
    text = f.dprint()
    assert "tanh" in text and "x" in text
    shown = gencomp.printing.debugprint(f, file=open("/dev/null", "w"))
    assert shown == text


def test_pickled_function_and_graph_reload(tmp_path):
    W = shared(np.arange(3.0), name="W")
    x = T.vector("x")
    y = x * W + 1
    f = function([x], y, updates=[(W, W * 2)])
    blob = pickle.dumps((W, y, f))
    W2, y2, f2 = pickle.loads(blob)
    np.testing.assert_array_equal(f2([1.0, 1.0, 1.0]), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(W2.get_value(), [0.0, 2.0, 4.0])
    assert W.get_value()[1] == 1.0               # the original is independent
    x2 = y2.owner.inputs[0].owner.inputs[0]
    g = function([x2], y2)
    assert g([1.0, 1.0, 1.0])[2] == 5.0
