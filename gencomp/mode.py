"""Compilation modes (Theano's Mode, DebugMode, MonitorMode, NanGuardMode): how function() optimizes and runs.

A mode picks the rewrite set (`optimizer`) and where the graph runs (`linker`: 'py' is the
numpy reference evaluator, anything else the compiled C module), and may wrap the call:
DebugMode runs the compiled module and checks it, node by node, against the reference
evaluator; MonitorMode and NanGuardMode run the optimized graph node by node through the
reference evaluator so that a hook can look at every intermediate value.
"""

from __future__ import annotations

import numpy as np

from .graph import Constant
from .reference import check_broadcast

_OPTIMIZERS = {None: None, "default": None, "fast_run": "fast_run", "FAST_RUN": "fast_run",
               "fast_compile": "fast_compile", "FAST_COMPILE": "fast_compile", "None": "None",
               "o4": "fast_run", "merge": "fast_compile"}


class Mode:
    """Theano's Mode(linker, optimizer): `optimizer` 'fast_run' / 'fast_compile' / None (no
    rewrites) / 'default' (config.optimizer); `linker` 'py' runs the numpy reference evaluator,
    any other value ('c', 'cvm', 'vm', 'c|py') the compiled module."""

    def __init__(self, linker=None, optimizer="default", exclude=()):
        if optimizer not in _OPTIMIZERS and not isinstance(optimizer, str):
            raise ValueError(f"Mode: unknown optimizer {optimizer!r}; use 'fast_run', 'fast_compile' or None")
        self.linker, self.exclude = linker, tuple(exclude)
        self.optimizer = "None" if optimizer is None else _OPTIMIZERS.get(optimizer, optimizer)

    @property
    def device(self):
        return "py" if self.linker == "py" else None

    def excluding(self, *names):
        """This mode without the rewrite rules `names` (gencomp's rule names, see gencomp.rewrite)."""
        return type(self)._with(self, exclude=self.exclude + names)

    def including(self, *names):
        """Theano's tag selection; gencomp's optimizer sets are fixed, so this returns the mode as it is."""
        return self

    def _with(self, **changes):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__, **changes)
        return new

    def wrap(self, function, runner):
        """The callable a Function calls with its argument values (shared values appended)."""
        return runner

    def __repr__(self):
        return f"{type(self).__name__}(linker={self.linker!r}, optimizer={self.optimizer!r})"


FAST_RUN = Mode(optimizer="fast_run")
FAST_COMPILE = Mode(optimizer="fast_compile")


class DebugModeError(AssertionError):
    """DebugMode found a node whose compiled result differs from the numpy reference, or a bad value."""


class DebugMode(Mode):
    """Compile as usual, and on every call check the results against the reference evaluator.

    Each call also runs the optimized graph node by node through the ops' numpy `perform`,
    checking that every node returns a value of its declared type (dtype, rank, broadcastable
    lengths) and leaves its inputs unchanged; the compiled outputs must then match the
    reference ones, and those the reference result of the unoptimized graph. On a mismatch
    each node is compiled alone and run on the reference inputs, to name the first node whose
    compiled form disagrees. Slow, as Theano's DebugMode: for finding bugs.
    """

    def __init__(self, optimizer="fast_run", linker=None, check_py_code=True, rtol=None, atol=None):
        super().__init__(linker=linker, optimizer=optimizer)
        self.rtol, self.atol = rtol, atol

    def wrap(self, function, runner):
        return _DebugRunner(function, runner, self)


class MonitorMode(Mode):
    """Run the optimized graph node by node (numpy reference), calling `pre_func(i, node, fn)`
    before and `post_func(i, node, fn)` after node number i, where `fn.inputs` and `fn.outputs`
    are lists of one-element lists holding the values (outputs are [None] before the node runs)."""

    def __init__(self, pre_func=None, post_func=None, optimizer="default", linker=None):
        super().__init__(linker="py", optimizer=optimizer)
        self.pre_func, self.post_func = pre_func, post_func

    def wrap(self, function, runner):
        return _NodeRunner(function.fgraph, self.pre_func, self.post_func)


class NanGuardMode(MonitorMode):
    """Raise AssertionError naming the node whose output holds a NaN (`nan_is_error`), an infinity
    (`inf_is_error`) or a magnitude above 1e10 (`big_is_error`); function inputs are checked too."""

    BIG = 1e10

    def __init__(self, nan_is_error=None, inf_is_error=None, big_is_error=None, optimizer="default",
                 linker=None):
        # Theano's defaults come from its config (all True)
        flags = (nan_is_error, inf_is_error, big_is_error)
        self.checks = tuple(bool(True if flag is None else flag) for flag in flags)
        super().__init__(post_func=self._guard, optimizer=optimizer)

    def wrap(self, function, runner):
        nodes = _NodeRunner(function.fgraph, None, self._guard)

        def run(values):
            for var, value in zip(function.fgraph.inputs, values):
                self._check(value, f"input {var!r}")
            return nodes(values)
        return run

    def _guard(self, i, node, fn):
        for k, (value,) in enumerate(fn.outputs):
            self._check(value, f"the output {k} of node {i} {node.op} ({node!r})")

    def _check(self, value, where):
        value = np.asarray(value)
        if value.dtype.kind not in "fc" or value.size == 0:
            if value.dtype.kind in "iu" and self.checks[2] and value.size and np.abs(value).max() > self.BIG:
                raise AssertionError(f"NanGuardMode: big value in {where}")
            return
        nan_is_error, inf_is_error, big_is_error = self.checks
        if nan_is_error and np.isnan(value).any():
            raise AssertionError(f"NanGuardMode: NaN in {where}")
        if inf_is_error and np.isinf(value).any():
            raise AssertionError(f"NanGuardMode: Inf in {where}")
        if big_is_error and (np.abs(value[np.isfinite(value)]) > self.BIG).any():
            raise AssertionError(f"NanGuardMode: big value (abs > {self.BIG:g}) in {where}")


def get_mode(mode):
    """The Mode that function(mode=...) names: None, a Mode, or 'FAST_RUN', 'FAST_COMPILE',
    'DebugMode' / 'DEBUG_MODE', 'NanGuardMode', 'Mode', or an optimizer name."""
    if mode is None or isinstance(mode, Mode):
        return mode or Mode()
    if isinstance(mode, type) and issubclass(mode, Mode):
        return mode()
    named = {"FAST_RUN": FAST_RUN, "FAST_COMPILE": FAST_COMPILE, "Mode": Mode()}
    if mode in named:
        return named[mode]
    if mode in ("DebugMode", "DEBUG_MODE"):
        return DebugMode()
    if mode == "NanGuardMode":
        return NanGuardMode()
    if isinstance(mode, str):
        return Mode(optimizer=mode)
    raise TypeError(f"mode must be a Mode or one of 'FAST_RUN', 'FAST_COMPILE', 'DebugMode', got {mode!r}")


class _Thunk:
    """What a MonitorMode hook receives as `fn`: the node's input and output storage cells."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = inputs, outputs


class _NodeRunner:
    """The reference evaluator, one node at a time, with hooks around each node."""

    def __init__(self, fgraph, pre_func, post_func):
        self.fgraph, self.nodes = fgraph, fgraph.toposort()
        self.pre_func, self.post_func = pre_func, post_func

    def __call__(self, values):
        env = _reference_values(self.fgraph, self.nodes, values, self.pre_func, self.post_func)
        return [_output(o, env) for o in self.fgraph.outputs]


def _copies(values):
    return [np.array(v, copy=True) for v in values]


def _value(var, env):
    return var.data if isinstance(var, Constant) else env[id(var)]


def _output(var, env):
    return np.array(_value(var, env), dtype=var.dtype, copy=True)


def _reference_values(fgraph, nodes, values, pre_func=None, post_func=None, check=None) -> dict:
    """id(variable) -> value for every variable of `fgraph`, computed node by node with perform."""
    from .tensor.elemwise import Elemwise

    env = {id(v): x for v, x in zip(fgraph.inputs, values)}
    for i, node in enumerate(nodes):
        inputs = [_value(v, env) for v in node.inputs]
        fn = _Thunk([[x] for x in inputs], [[None] for _ in node.outputs])
        if pre_func is not None:
            pre_func(i, node, fn)
        if isinstance(node.op, Elemwise):
            check_broadcast(node, inputs)
        before = [np.array(x, copy=True) for x in inputs] if check else None
        results = node.op.perform(node, inputs)
        if check:
            check(i, node, before, inputs, results)
        for cell, out, value in zip(fn.outputs, node.outputs, results):
            cell[0] = env[id(out)] = value
        if post_func is not None:
            post_func(i, node, fn)
    return env


class _DebugRunner:
    """The compiled runner of a Function, checked on every call (see DebugMode)."""

    def __init__(self, function, runner, mode):
        from .graph import FunctionGraph

        self.function, self.runner, self.mode = function, runner, mode
        self.nodes = function.fgraph.toposort()
        fg = function.fgraph
        self.original = FunctionGraph(fg.inputs, function._targets)     # before any rewrite

    def __call__(self, values):
        fg = self.function.fgraph
        saved = [np.array(v, copy=True) for v in values]        # an in-place update may overwrite them
        env = _reference_values(fg, self.nodes, _copies(saved), check=self._check_node)
        expected = [_output(o, env) for o in fg.outputs]
        results = self.runner(values)
        for k, (got, want) in enumerate(zip(results, expected)):
            if not self._close(np.asarray(got), want):
                raise DebugModeError(self._locate(saved, env, k, got, want))
        original = _reference_values(self.original, self.original.toposort(), _copies(saved))
        for k, out in enumerate(self.original.outputs):
            want = _output(out, original)
            if not self._close(expected[k], want):
                raise DebugModeError(f"DebugMode: the rewrites changed output {k} of "
                                     f"{self.function.name}: the "
                                     f"optimized graph gives {expected[k]!r}, the original graph {want!r}")
        return results

    def _close(self, got, want):
        if got.shape != want.shape or got.dtype != want.dtype:
            return False
        if want.dtype.kind not in "fc":
            return np.array_equal(got, want)
        eps = np.finfo(want.dtype).eps
        rtol = self.mode.rtol if self.mode.rtol is not None else 1e3 * eps
        atol = self.mode.atol if self.mode.atol is not None else 1e3 * eps
        return np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)

    def _check_node(self, i, node, before, inputs, results):
        where = f"DebugMode: node {i} {node.op} ({node!r})"
        for x, y, var in zip(before, inputs, node.inputs):
            if not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True):
                raise DebugModeError(f"{where} changed its input {var!r} in place")
        for out, value in zip(node.outputs, results):
            value = np.asarray(value)
            if value.ndim != out.ndim or value.dtype != np.dtype(out.dtype):
                raise DebugModeError(f"{where} returned a {value.dtype} array of rank {value.ndim} for "
                                     f"its output of type {out.type}")
            if any(b and n != 1 for b, n in zip(out.broadcastable, value.shape)):
                raise DebugModeError(f"{where} returned shape {value.shape} for the broadcastable "
                                     f"type {out.type}")

    def _locate(self, saved, env, k, got, want):
        """The message of a mismatch of output k: the first node that, compiled alone, disagrees
        with its reference on the reference inputs; else the node that computes output k."""
        from .function import function

        for i, node in enumerate(self.nodes):
            free = [v.type() if not isinstance(v, Constant) else v for v in node.inputs]
            outs = node.op.make_node(*free).outputs
            args = [_value(v, env) for v, f in zip(node.inputs, free) if not isinstance(f, Constant)]
            try:
                alone = function([f for f in free if not isinstance(f, Constant)], outs,
                                 on_unused_input="ignore")
                values = alone(*args)
            except Exception:           # noqa: BLE001  (a node that cannot stand alone is skipped)
                continue
            for j, (value, out) in enumerate(zip(values, node.outputs)):
                if not self._close(np.asarray(value), _output(out, env)):
                    return (f"DebugMode: node {i} {node.op} ({node!r}), output {j}: the compiled code gives "
                            f"{value!r}, the numpy reference {_output(out, env)!r}")
        owner = self.function.fgraph.outputs[k].owner
        source = f"{owner.op} ({owner!r})" if owner else "an input"
        return (f"DebugMode: output {k} of {self.function.name} (computed by {source}): the compiled "
                f"code gives {got!r}, the numpy reference {want!r}")
