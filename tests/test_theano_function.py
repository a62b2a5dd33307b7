"""Theano 1.0's function-level API as Theano users write it: printing, Function.copy, modes,
test values and the lazy ifelse, checked against numpy and Theano's documented output."""

import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gencomp as theano
import gencomp.tensor as T
from gencomp.printing import Print, debugprint, pp

NUM = r"\d+(\.0)?"          # a constant shows as 2 or 2.0 depending on its dtype


# ---- pp ------------------------------------------------------------------------------------------

def test_pp_of_a_gradient_reads_like_theanos():
    x = T.dscalar("x")
    text = theano.pp(T.grad(x ** 2, x))
    pattern = (rf"\(\(fill\(\(x \*\* {NUM}\), 1\.0\) \* {NUM}\) \* \(x \*\* \({NUM} - {NUM}\)\)\)")
    assert re.fullmatch(pattern, text), text
    assert theano.printing.pprint(T.grad(x ** 2, x)) == text


def test_pp_infix_and_call_forms():
    a, b = T.dvectors("a", "b")
    assert pp(a + b * a) == "(a + (b * a))"
    assert pp(a / b - a ** b) == "((a / b) - (a ** b))"
    assert pp(-a) == "-a"
    assert pp(T.exp(a) + T.tanh(b)) == "(exp(a) + tanh(b))"


# ---- Print ---------------------------------------------------------------------------------------

def test_print_op_prints_when_computed_and_returns_its_input(capsys):
    x = T.dvector()
    printed_x = Print("hello world")(x)
    f = theano.function([x], printed_x * 5)
    assert capsys.readouterr().out == ""                 # nothing at compile time
    np.testing.assert_array_equal(f([1, 2, 3]), [5.0, 10.0, 15.0])
    assert capsys.readouterr().out == f"hello world __str__ = {np.array([1.0, 2.0, 3.0])}\n"
    f([4, 5, 6])
    assert "hello world __str__ = [4. 5. 6.]" in capsys.readouterr().out


def test_print_attrs_constants_and_gradient(capsys):
    x = T.dvector("x")
    y = Print("shape of x*x", attrs=("shape", "sum"))(x * x)
    g = theano.function([x], T.grad(y.sum(), x))
    np.testing.assert_allclose(g([1.0, 2.0, 3.0]), [2.0, 4.0, 6.0])       # d(sum x^2)/dx = 2x
    assert capsys.readouterr().out == "shape of x*x shape = (3,)\nshape of x*x sum = 14.0\n"
    # a Print of a constant is not folded away at compile time: it prints on every call
    c = theano.function([], Print("const")(T.constant(np.arange(3.0))))
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(c(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(c(), [0.0, 1.0, 2.0])
    assert capsys.readouterr().out.count("const __str__") == 2


# ---- debugprint ----------------------------------------------------------------------------------

def _theano_test_graph():
    A, B, D, E = T.dmatrices("A", "B", "D", "E")
    C = A + B
    C.name = "C"
    return A, B, D, E, C + (D + E)


def test_debugprint_layout_is_theanos():
    *_, G = _theano_test_graph()
    expected = "\n".join([
        "Elemwise{add} [id A] ''   ",
        " |Elemwise{add} [id B] 'C'   ",
        " | |A [id C]",
        " | |B [id D]",
        " |Elemwise{add} [id E] ''   ",
        "   |D [id F]",
        "   |E [id G]"]) + "\n"
    assert debugprint(G, file="str") == expected
    assert debugprint(G, file="str", ids="int") == expected.replace("[id A]", "[id 0]").replace(
        "[id B]", "[id 1]").replace("[id C]", "[id 2]").replace("[id D]", "[id 3]").replace(
        "[id E]", "[id 4]").replace("[id F]", "[id 5]").replace("[id G]", "[id 6]")
    assert debugprint(G, file="str", ids="CHAR", stop_on_name=True) == "\n".join([
        "Elemwise{add} [id A] ''   ",
        " |Elemwise{add} [id B] 'C'   ",
        " |Elemwise{add} [id C] ''   ",
        "   |D [id D]",
        "   |E [id E]"]) + "\n"
    out = io.StringIO()
    assert debugprint(G, file=out) == out.getvalue()


def test_debugprint_of_a_function_numbers_nodes_in_execution_order():
    A, B, D, E, _ = _theano_test_graph()
    f = theano.function([A, B, D], [A + B, A + B - D], mode="FAST_COMPILE")
    text = debugprint(f, file="str")
    assert text == f.dprint()
    assert text == "\n".join([
        "Elemwise{add} [id A] ''   0",
        " |A [id B]",
        " |B [id C]",
        "Elemwise{sub} [id D] ''   1",
        " |Elemwise{add} [id A] ''   0",        # shown before: no inputs again
        " |D [id E]"]) + "\n"
    many = debugprint(theano.function([A], [A * 2] * 30, mode="FAST_COMPILE"), file="str")
    assert "[id BA]" in debugprint([A + i for i in range(30)], file="str") and "[id A]" in many


# ---- Function.copy, no_default_updates, get_value(return_internal_type) ------------------------

def _accumulator():
    state = theano.shared(0)
    inc = T.iscalar("inc")
    return state, theano.function([inc], state, updates=[(state, state + inc)])


def test_copy_swap_and_delete_updates_as_in_theanos_tutorial():
    state, accumulator = _accumulator()
    accumulator(10)
    assert state.get_value() == 10
    new_state = theano.shared(0)
    new_accumulator = accumulator.copy(swap={state: new_state})
    new_accumulator(100)
    assert new_state.get_value() == 100 and state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    assert null_accumulator(9000) == 10
    assert state.get_value() == 10
    with pytest.raises(TypeError):
        accumulator.copy(swap={state: theano.shared(0.0)})


def test_copy_share_memory():
    state, accumulator = _accumulator()
    accumulator(1)
    private = accumulator.copy(name="private")         # share_memory=False: its own state, now 1
    assert private(5) == 1 and private(5) == 6 and state.get_value() == 1
    assert private.name == "private"
    same = accumulator.copy(share_memory=True)
    same(3)
    assert state.get_value() == 4 and accumulator(0) == 4


def test_no_default_updates_freezes_random_draws():
    from gencomp.tensor.shared_randomstreams import RandomStreams

    srng = RandomStreams(seed=234)
    rv_u, rv_n = srng.uniform((2, 2)), srng.normal((2,))
    f = theano.function([], rv_u)
    g = theano.function([], rv_u, no_default_updates=True)
    h = theano.function([], [rv_u, rv_n], no_default_updates=[rv_n.rng])
    assert not np.array_equal(f(), f())
    first = g()
    np.testing.assert_array_equal(g(), first)
    np.testing.assert_array_equal(f(), first)          # g left the generator where it was
    u1, n1 = h()
    u2, n2 = h()
    np.testing.assert_array_equal(n1, n2)
    assert not np.array_equal(u1, u2)


def test_get_value_return_internal_type():
    s = theano.shared(np.arange(4.0))
    inner = s.get_value(borrow=True, return_internal_type=True)
    assert inner is s.get_value(borrow=True, return_internal_type=True)
    inner[0] = 7.0
    assert s.get_value()[0] == 7.0
    copy = s.get_value(return_internal_type=True)
    assert isinstance(copy, np.ndarray) and copy is not inner
    copy[1] = -1.0
    assert s.get_value()[1] == 1.0


# ---- modes ---------------------------------------------------------------------------------------

def test_mode_names_and_objects_compute_the_same():
    x = T.dvector("x")
    expr = T.log(1 + T.exp(x)) * 2
    v = np.array([-2.0, 0.5, 3.0])
    want = np.log1p(np.exp(v)) * 2
    for mode in ("FAST_RUN", "FAST_COMPILE", "DebugMode", theano.Mode(linker="py", optimizer=None),
                 theano.Mode(optimizer="fast_run"), theano.compile.DebugMode(), theano.compile.mode.FAST_RUN):
        np.testing.assert_allclose(theano.function([x], expr, mode=mode)(v), want, rtol=1e-12)
    assert "log1p" not in theano.function([x], expr, mode=theano.Mode(optimizer=None)).dprint()
    assert theano.function([x], expr, mode=theano.Mode(linker="py")).source is None      # reference evaluator
    without = theano.Mode(optimizer="fast_run").excluding("log1p_expm1")
    assert "log1p" in theano.function([x], T.log(1 + x)).dprint()
    assert "log1p" not in theano.function([x], T.log(1 + x), mode=without).dprint()


def _bad_add():
    """An elementwise op whose C form (a - b) disagrees with its numpy reference (a + b)."""
    from gencomp.tensor.elemwise import Elemwise
    from gencomp.tensor.table import Scalar

    return Elemwise(Scalar("bad_add", 2, np.add, {"iuf": "{0} - {1}"}, np.add))


def test_debugmode_names_the_node_whose_compiled_code_is_wrong():
    v = T.dvector("v")
    y = T.exp(_bad_add()(v, v * 2)).sum()
    plain = theano.function([v], y)
    np.testing.assert_allclose(plain(np.arange(3.0)), np.exp(-np.arange(3.0)).sum())   # silently wrong
    checked = theano.function([v], y, mode="DebugMode")
    with pytest.raises(AssertionError, match=r"node \d+ Elemwise\{bad_add\}.*array\(\[0\., 3\., 6\.\]\)"):
        checked(np.arange(3.0))


def test_functions_with_modes_pickle():
    import pickle

    x = T.dvector("x")
    for mode in ("DebugMode", theano.Mode(linker="py"), "FAST_COMPILE"):
        f = pickle.loads(pickle.dumps(theano.function([x], T.exp(x), mode=mode)))
        assert type(f.mode) is type(theano.compile.mode.get_mode(mode))
        np.testing.assert_allclose(f([0.0, 1.0]), [1.0, np.e])


def test_debugmode_with_updates_checks_and_applies_them():
    W = theano.shared(np.ones(3), "W")
    v = T.dvector("v")
    f = theano.function([v], T.tanh(v * W).sum(), updates=[(W, W * 2 + v)], mode=theano.compile.DebugMode())
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(f(x), np.tanh(x).sum())
    np.testing.assert_allclose(W.get_value(), 2 + x)
    np.testing.assert_allclose(f(x), np.tanh(x * (2 + x)).sum())


@settings(max_examples=15, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-3, 3)))
def test_debugmode_agrees_with_numpy(values):
    x = T.dvector("x")
    f = theano.function([x], [T.sigmoid(x) * x - T.sqr(x).mean(), T.grad(T.sum(T.tanh(x) ** 2), x)],
                        mode="DebugMode")
    out, grad = f(values)
    want = values / (1 + np.exp(-values)) - (values ** 2).mean()
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    t = np.tanh(values)
    np.testing.assert_allclose(grad, 2 * t * (1 - t ** 2), rtol=1e-12, atol=1e-12)


def test_monitor_mode_hooks_see_every_node(capsys):
    x = T.dscalar("x")
    seen = []

    def inspect_inputs(i, node, fn):
        assert all(out == [None] for out in fn.outputs)
        print(i, node, "input(s) value(s):", [inp[0] for inp in fn.inputs], end="")

    def inspect_outputs(i, node, fn):
        seen.append((i, node, [o[0] for o in fn.outputs]))
        print(" output(s) value(s):", [out[0] for out in fn.outputs])

    f = theano.function([x], [5 * x + T.exp(x)],
                        mode=theano.compile.MonitorMode(pre_func=inspect_inputs, post_func=inspect_outputs))
    (result,) = f(3)
    assert result == pytest.approx(15 + np.exp(3))
    assert [i for i, _, _ in seen] == list(range(len(f.maker.fgraph.toposort())))
    assert seen[-1][2][0] == pytest.approx(result)
    assert capsys.readouterr().out.count("output(s) value(s)") == len(seen)


def test_monitor_mode_detects_nan_as_in_theanos_faq(capsys):
    def detect_nan(i, node, fn):
        for output in fn.outputs:
            if np.isnan(output[0]).any():
                print("*** NaN detected ***")
                theano.printing.debugprint(node)
                break

    x = T.dscalar("x")
    f = theano.function([x], [T.log(x) * x], mode=theano.compile.MonitorMode(post_func=detect_nan))
    f(0)                  # log(0) * 0 = -inf * 0 = nan
    out = capsys.readouterr().out
    assert "*** NaN detected ***" in out and "Elemwise{mul} [id A]" in out


def test_nanguard_mode_names_the_node():
    from gencomp.compile.nanguardmode import NanGuardMode

    x = T.dvector("x")
    guard = NanGuardMode(nan_is_error=True, inf_is_error=True, big_is_error=True)
    f = theano.function([x], T.log(x).sum(), mode=guard)
    assert f(np.array([1.0, np.e])) == pytest.approx(1.0)
    with pytest.raises(AssertionError, match=r"NaN .*Elemwise\{log\}"):
        f(np.array([-1.0]))
    with pytest.raises(AssertionError, match=r"Inf .*Elemwise\{log\}"):
        f(np.array([0.0]))
    big = theano.function([x], T.exp(x), mode=guard)
    with pytest.raises(AssertionError, match="big value"):
        big(np.array([30.0]))
    lenient = theano.function([x], T.log(x), mode=NanGuardMode(nan_is_error=False, inf_is_error=False))
    assert np.isnan(lenient(np.array([-1.0]))).all()


# ---- test values ---------------------------------------------------------------------------------

def test_compute_test_value_raises_at_the_bad_line():
    with theano.config.change(compute_test_value="raise"):
        x = T.dmatrix("x")
        x.tag.test_value = np.random.RandomState(0).rand(5, 10)
        y = T.dmatrix("y")
        y.tag.test_value = np.ones((4, 10))
        h = T.tanh(T.dot(x, x.T)) + 1
        np.testing.assert_allclose(h.tag.test_value, np.tanh(x.tag.test_value @ x.tag.test_value.T) + 1)
        assert h.get_test_value().shape == (5, 5)
        with pytest.raises(ValueError) as info:
            T.dot(x, y)                               # (5, 10) . (4, 10): fails here, not in function()
        assert any("test value" in note for note in info.value.__notes__)
        with pytest.raises(ValueError, match="broadcastable|shape mismatch"):
            x + y
        W = theano.shared(np.ones((10, 3)), "W")
        assert T.dot(x, W).tag.test_value.shape == (5, 3)          # shared variables use their value
        with pytest.raises(ValueError, match="no test value"):
            T.dvector("v") * 2
        f = theano.function([x], h)                   # compiling is unaffected
        np.testing.assert_allclose(f(x.tag.test_value), h.tag.test_value)


def test_compute_test_value_warn_ignore_off_and_flags():
    from gencomp.config import Config

    v = T.dvector("v")
    with theano.config.change(compute_test_value="warn"):
        with pytest.warns(UserWarning, match="no test value"):
            w = v * 2
        assert not hasattr(w.tag, "test_value")
    with theano.config.change(compute_test_value="ignore"):
        assert not hasattr((v * 2).tag, "test_value")
        v.tag.test_value = [1.0, 2.0]
        np.testing.assert_array_equal((v * 2).tag.test_value, [2.0, 4.0])
    assert theano.config.compute_test_value == "off"
    assert not hasattr((v * 3).tag, "test_value")
    with pytest.raises(TypeError):
        T.ivector("i").tag.test_value = np.array([1.5])           # checked against the type
    assert Config(environ={"GENCOMP_FLAGS": "compute_test_value=raise"}).compute_test_value == "raise"
    with pytest.raises(ValueError):
        theano.config.compute_test_value = "sometimes"


# ---- lazy ifelse ---------------------------------------------------------------------------------

def test_ifelse_computes_only_the_chosen_branch(capsys):
    from gencomp.ifelse import ifelse

    a, b = T.dscalars("a", "b")
    x, y = T.dmatrices("x", "y")
    then = Print("then branch")(T.mean(x)).sum()
    other = Print("else branch")(T.mean(y)).sum()
    f = theano.function([a, b, x, y], ifelse(T.lt(a, b), then, other))
    assert capsys.readouterr().out == ""
    xv, yv = np.full((3, 3), 2.0), np.full((3, 3), 5.0)
    assert f(1, 2, xv, yv) == 2.0
    out = capsys.readouterr().out
    assert "then branch" in out and "else branch" not in out
    assert f(2, 1, xv, yv) == 5.0
    out = capsys.readouterr().out
    assert "else branch" in out and "then branch" not in out
    # a branch with a side effect is not folded at compile time, even on constants only
    k = theano.function([], ifelse(T.constant(1), Print("folded?")(T.constant(3.0)), T.constant(4.0)))
    assert capsys.readouterr().out == ""
    assert k() == 3.0 and "folded?" in capsys.readouterr().out
    # a wrong shape in the branch not taken is never computed
    g = theano.function([a, x, y], ifelse(T.gt(a, 0), x.sum(), T.dot(x, y).sum()))
    assert g(1, np.ones((2, 3)), np.ones((2, 3))) == 6.0
    with pytest.raises(ValueError):
        g(0, np.ones((2, 3)), np.ones((2, 3)))


def test_ifelse_with_shared_variables_lists_and_pickling():
    import pickle

    from gencomp.ifelse import ifelse

    W = theano.shared(np.arange(3.0), "W")
    c = T.iscalar("c")
    v = T.dvector("v")
    first, second = ifelse(T.eq(c, 0), [W * v, v.sum()], [W + v, (v * 2).max()])
    f = theano.function([c, v], [first, second], updates=[(W, W + 1)])
    vv = np.array([1.0, -2.0, 4.0])
    out = f(0, vv)
    np.testing.assert_array_equal(out[0], np.arange(3.0) * vv)
    assert out[1] == vv.sum()
    out = f(1, vv)                                    # W is now arange + 1
    np.testing.assert_array_equal(out[0], np.arange(3.0) + 1 + vv)
    assert out[1] == 8.0
    g = pickle.loads(pickle.dumps(theano.function([c, v], first)))
    np.testing.assert_array_equal(g(0, vv), W.get_value() * vv)


@settings(max_examples=12, deadline=None)
@given(hnp.arrays(np.float64, 4, elements=st.floats(-2, 2)), st.booleans())
def test_ifelse_gradient_matches_finite_differences(values, choice):
    from gencomp.ifelse import ifelse

    c = T.bscalar("c")
    x = T.dvector("x")
    W = theano.shared(np.linspace(-1, 1, 4), "W")
    cost = ifelse(c, T.sum(T.tanh(x * W) ** 2), T.sum(T.exp(x / 3)) + T.sum(W))
    gx, gW = T.grad(cost, [x, W])
    f = theano.function([c, x], [cost, gx, gW])
    val, got_x, got_W = f(int(choice), values)
    w = W.get_value()

    def numeric(xv, wv):
        return np.sum(np.tanh(xv * wv) ** 2) if choice else np.sum(np.exp(xv / 3)) + np.sum(wv)

    assert val == pytest.approx(numeric(values, w), rel=1e-12)
    eps = 1e-6
    for got, wrt_x in ((got_x, True), (got_W, False)):
        fd = np.empty(4)
        for k in range(4):
            step = np.zeros(4)
            step[k] = eps
            args_p = (values + step, w) if wrt_x else (values, w + step)
            args_m = (values - step, w) if wrt_x else (values, w - step)
            fd[k] = (numeric(*args_p) - numeric(*args_m)) / (2 * eps)
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-7)
