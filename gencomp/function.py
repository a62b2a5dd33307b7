"""function(), In and the compiled callable: inputs, outputs, updates and givens, as in Theano."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .codegen import key_parts
from .codegen.lower import lower
from .compile import fastcall
from .compile.build import build_c
from .config import config
from .graph import Constant, FunctionGraph, Variable, clone_replace, toposort
from .printing import flat_lines, theano_lines
from .reference import PyRunner
from .rewrite import optimize
from .runtime import CRunner
from .sharedvar import SharedVariable, shared  # noqa: F401  (gencomp.function.shared)
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable, is_weak


class UnusedInputError(ValueError):
    """An input given to function() does not influence any output or update."""


class In:
    """An input with options: a default `value`, and the keyword `name` it can be passed by."""

    def __init__(self, variable, name=None, value=None, strict=False, allow_downcast=None,
                 mutable=False, borrow=False):
        if not isinstance(variable, Variable):
            raise TypeError(f"In() wraps a symbolic variable, got {variable!r}")
        self.variable = variable
        self.name = name if name is not None else variable.name
        self.value = value
        self.strict = strict
        self.allow_downcast = allow_downcast

    def __repr__(self):
        return f"In({self.variable!r}, name={self.name!r}, value={self.value!r})"


class Out:
    """An output with options: `borrow=True` lets the function return the same buffer on every call.

    A borrowed output is overwritten by the next call (no allocation per call), as Theano's
    Out(borrow=True); by default every output is a fresh array that aliases nothing.
    `on_device=True` (device='cuda'): the output stays in GPU memory and is returned as a
    gencomp.runtime_cuda.DeviceArray (`.get()` copies it to numpy; another device='cuda'
    function takes it as an input without a copy). Elsewhere it is a numpy array as usual.
    """

    def __init__(self, variable, borrow=False, on_device=False):
        self.variable, self.borrow, self.on_device = variable, bool(borrow), bool(on_device)


def function(inputs, outputs=None, updates=(), givens=(), name=None, device=None,
             on_unused_input=None, allow_input_downcast=None, mode=None, profile=None,
             no_default_updates=False, accept_inplace=False, rebuild_strict=True):
    """Compile a callable computing `outputs` from `inputs` (and applying `updates` after each call).

    `mode`: None (config.mode), a gencomp.Mode (Mode, DebugMode, MonitorMode, NanGuardMode) or Theano's
    names 'FAST_RUN', 'FAST_COMPILE', 'DebugMode' (see gencomp.mode). `on_unused_input`: 'raise',
    'warn' or 'ignore' (None: config.on_unused_input). `profile`, `accept_inplace` and
    `rebuild_strict` are accepted and ignored, so ported calls run unchanged.

    `no_default_updates`: True, or a list of random variables (or their `rng`): those draws do
    not advance their generator, so every call draws the same numbers, as in Theano where the
    generator's default update is then not applied.

    `allow_input_downcast`: True converts arguments that lose precision (ndarrays under numpy's
    'same_kind' rule, lists and Python numbers as numpy.asarray(value, dtype)); False accepts only
    exact conversions; None (the default) is False except that a Python float given for a floatX
    input is rounded to it, as in Theano. `In(x, allow_downcast=...)` overrides it for one input."""
    from .mode import get_mode

    mode = get_mode(config.mode if mode is None else mode)
    on_unused_input = config.on_unused_input if on_unused_input is None else on_unused_input
    if config.warn_float64 != "ignore":
        _warn_float64(outputs, updates, config.warn_float64)
    snapshot = config.snapshot(device=device or mode.device, optimizer=mode.optimizer)
    if snapshot.device not in ("cpu", "py", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'py', got {device!r}")
    if on_unused_input not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
    return Function(inputs, outputs, updates, givens, name, snapshot, on_unused_input,
                    None if allow_input_downcast is None else bool(allow_input_downcast),
                    mode, no_default_updates)


def _pairs(value, what):
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.items())
    try:
        pairs = [tuple(p) for p in value]
    except TypeError:
        raise TypeError(f"{what} must be a dict or a list of (variable, value) pairs, got {value!r}") from None
    if any(len(p) != 2 for p in pairs):
        raise TypeError(f"{what} must be a dict or a list of (variable, value) pairs")
    return pairs


def _as_variable(value):
    """A graph variable: symbolic variables of other types (sparse matrices) pass as they are."""
    if isinstance(value, Variable) and not isinstance(value.type, TensorType):
        return value
    return as_tensor_variable(value)


def _update_value(var, expr):
    if not isinstance(var, SharedVariable):
        raise TypeError(f"updates must change shared variables; {var!r} is not one")
    if not isinstance(var.type, TensorType) or (isinstance(expr, Variable) and not isinstance(expr.type, TensorType)):
        if not isinstance(expr, Variable) or expr.type != var.type:
            raise TypeError(f"the update of shared variable {var.name or var!r} has type "
                            f"{getattr(expr, 'type', type(expr).__name__)}, but the variable has type {var.type}")
        return expr
    expr = as_tensor_variable(expr)
    if is_weak(expr) or (isinstance(expr, Constant) and expr.dtype != var.dtype
                         and np.can_cast(expr.data, var.dtype, "same_kind")):
        from .tensor.math import cast
        expr = cast(as_tensor_variable(np.asarray(expr.data, dtype=var.dtype)), var.dtype)
    ok = (expr.dtype == var.dtype and expr.ndim == var.ndim
          and all(e or not v for e, v in zip(expr.broadcastable, var.broadcastable)))
    if not ok:
        raise TypeError(f"the update of shared variable {var.name or var!r} has type {expr.type}, but the "
                        f"variable has type {var.type}; an update must keep the shared variable's type "
                        f"(use T.cast(expr, {var.dtype!r}) or fix the expression)")
    return expr


def _given_value(var, value):
    value = as_tensor_variable(value)
    if value.ndim != var.ndim or value.dtype != var.dtype:
        raise TypeError(f"givens: {var!r} of type {var.type} cannot be replaced by {value!r} of type {value.type}")
    return value


class Function:
    """A compiled function. Call it with positional or keyword arguments; outputs are new arrays."""

    def __init__(self, inputs, outputs, updates, givens, name, snapshot, on_unused_input, allow_downcast,
                 mode=None, no_default_updates=False):
        self._spec = (inputs, outputs, updates, givens, name, snapshot, on_unused_input, allow_downcast,
                      mode, no_default_updates)
        if mode is None:
            from .mode import Mode

            mode = Mode()
        self.mode = mode
        self.maker = self           # Theano's f.maker.fgraph / f.maker.mode read the same attributes
        self.name = name or "function"
        self.inputs = self._inputs(inputs)
        self._single = outputs is not None and not isinstance(outputs, (list, tuple))
        out_list = [] if outputs is None else [outputs] if self._single else list(outputs)
        self._borrowed = [k for k, o in enumerate(out_list) if isinstance(o, Out) and o.borrow]
        self._on_device = [k for k, o in enumerate(out_list) if isinstance(o, Out) and o.on_device]
        out_vars = [_as_variable(o.variable if isinstance(o, Out) else o) for o in out_list]
        update_pairs = [(v, _update_value(v, e)) for v, e in _pairs(updates, "updates")]
        if len({id(v) for v, _ in update_pairs}) != len(update_pairs):
            raise ValueError("a shared variable appears twice in updates")
        given = {v: _given_value(v, g) for v, g in _pairs(givens, "givens")}
        targets = out_vars + [e for _, e in update_pairs]
        if given:
            targets = clone_replace(targets, given)
        explicit = [i.variable for i in self.inputs]
        self._shared = self._implicit_inputs(targets, explicit)
        self._check_unused(targets, explicit, on_unused_input)
        self._targets = targets                  # before the rewrites (DebugMode compares with them)
        self.fgraph = FunctionGraph(explicit + self._shared, targets)
        optimize(self.fgraph, snapshot.optimizer, exclude=mode.exclude)
        self._updated = [v for v, _ in update_pairs]
        self._n_outputs = len(out_vars)
        # threads: the locks a call with updates holds (of every shared variable it reads or
        # updates, in their global order), and the variables it may update in place
        touched = {id(v): v for v in self._shared + self._updated}
        self._locks = tuple(v._lock for v in sorted(touched.values(), key=lambda v: v._order))
        first = len(self.inputs)
        self._inplace_vars = ([self._shared[p - first] for p in self._inplace_updates().values()]
                              if snapshot.device == "cpu" else [])
        self._converters = [_converter(i.variable.type, i.name or f"input {k}",
                                       allow_downcast if i.allow_downcast is None else bool(i.allow_downcast),
                                       snapshot.device == "cuda", snapshot.floatX)
                            for k, i in enumerate(self.inputs)]
        self._host_shared = snapshot.device != "cuda"     # GPU-resident values are copied back
        self._positions = {i.name: k for k, i in enumerate(self.inputs) if i.name}
        self.source_path = self.cache_key = None      # set by the backends that generate source
        self.cache_hit = False
        built = self._build(snapshot)
        self._runner = mode.wrap(self, built)
        self._frozen = _frozen_generators(self.fgraph, no_default_updates)
        if self._frozen:
            self._runner = _keeping_states(self._runner, self._frozen)
        self._fast = self._fast_pending = None   # the C call path (functions that update nothing)
        if self._runner is built and isinstance(built, CRunner) and not (self._updated or self._borrowed):
            self._fast_pending = (built, Path(self.source_path).parent.parent)
            module = fastcall.load(self._fast_pending[1], snapshot.cc, wait=False)
            if module is not None:
                self._fast = self._fast_path(module)

    def _fast_path(self, module):
        """The C call path through the fastcall extension `module` (None: it could not be built)."""
        runner, _ = self._fast_pending
        self._fast_pending = None
        return runner.fast_caller(module, len(self.inputs), self._single, self._shared) if module is not None else None

    @staticmethod
    def _inputs(inputs):
        if isinstance(inputs, (Variable, In)):
            raise TypeError("function() takes a list of inputs, e.g. function([x], y)")
        result, seen = [], set()
        for item in inputs:
            spec = item if isinstance(item, In) else In(as_input(item))
            var = spec.variable
            if isinstance(var, SharedVariable):
                raise TypeError(f"shared variable {var!r} cannot be an explicit input: functions read "
                                f"it implicitly (use givens to substitute it)")
            if isinstance(var, Constant):
                raise TypeError(f"constant {var!r} cannot be a function input")
            if id(var) in seen:
                raise ValueError(f"input {var!r} is given twice")
            seen.add(id(var))
            result.append(spec)
        return result

    @staticmethod
    def _implicit_inputs(targets, explicit):
        known = {id(v) for v in explicit}
        found, seen = [], set()

        def visit(var):
            if isinstance(var, SharedVariable) and id(var) not in known and id(var) not in seen:
                seen.add(id(var))
                found.append(var)

        for node in toposort(targets, blockers=explicit):
            for inp in node.inputs:
                visit(inp)
        for t in targets:
            visit(t)
        return found

    @staticmethod
    def _check_unused(targets, explicit, policy):
        if policy == "ignore":
            return
        used = {id(i) for node in toposort(targets, blockers=explicit) for i in node.inputs}
        used |= {id(t) for t in targets}
        for var in explicit:
            if id(var) not in used:
                msg = (f"input {_quoted(var)} is not used to compute any output or update; remove it, or "
                       f"pass on_unused_input='warn' or 'ignore' to function()")
                if policy == "raise":
                    raise UnusedInputError(msg)
                warnings.warn(msg, stacklevel=4)

    def _build(self, snapshot):
        if snapshot.device == "py":
            return PyRunner(self.fgraph)
        if snapshot.device == "cuda":
            return self._build_cuda(snapshot)
        plan = lower(self.fgraph, self._inplace_updates())

        def render(key, parallel):          # only on a cache miss
            from .codegen.c import render_module
            return render_module(plan, key, self.name, flat_lines(self.fgraph), parallel=parallel)

        entry, ffi, lib, hit = build_c(key_parts(self.fgraph), snapshot, render)
        self.cache_key, self.cache_hit = entry.key, hit
        self.source_path = str(entry.file("source"))
        set_threads = getattr(lib, "gc_set_threads", None)     # only in modules built with OpenMP
        if set_threads is not None:
            set_threads(snapshot.threads, 1)
        return CRunner(plan, ffi, lib, entry.meta["errors"], entry.meta["entry_points"],
                       self._borrowed)

    def _inplace_updates(self) -> dict:
        """{output position: input position} of the updates that replace a shared variable the
        graph reads: its kernel may write the new value into the old buffer (as Theano does; a
        value taken with get_value(borrow=True) may then change)."""
        first = len(self.inputs)
        positions = {id(v): first + k for k, v in enumerate(self._shared)}
        return {self._n_outputs + k: positions[id(v)] for k, v in enumerate(self._updated) if id(v) in positions}

    def _build_cuda(self, snapshot):
        """Render and nvcc-compile (no GPU needed); PyCUDA and a device are needed only to call."""
        from .codegen.cuda import render_module
        from .compile.nvcc import build_cuda
        from .runtime_cuda import CudaRunner

        plan = lower(self.fgraph, loops=False)      # scans run their steps from the host

        def render(key):
            module = render_module(plan, key, self.name, flat_lines(self.fgraph))
            return module.source, {"name": self.name, "graph": flat_lines(self.fgraph), **module.meta()}

        entry, hit = build_cuda(key_parts(self.fgraph), snapshot, render)
        self.cache_key, self.cache_hit = entry.key, hit
        self.source_path = str(entry.file("source"))
        # updates stay in GPU memory (the shared variable then lives there), as do Out(on_device)
        keep = self._on_device + [self._n_outputs + k for k in range(len(self._updated))]
        return CudaRunner(plan, entry, keep)

    @property
    def source(self):
        """The generated source text (read from `source_path`), or None for device='py'."""
        if self.source_path is None:
            return None
        with open(self.source_path, encoding="utf-8") as f:
            return f.read()

    def dprint(self, **options) -> str:
        """The optimized graph as text in Theano's debugprint layout (the options are debugprint's:
        depth, print_type, ids, stop_on_name); each node line ends with its execution position."""
        return theano_lines(self.fgraph.outputs, order=self.fgraph.toposort(), stop=self.fgraph.inputs,
                            **options)

    def _bind(self, args, kwargs):
        n = len(self.inputs)
        if len(args) > n:
            raise TypeError(f"{self.name} takes at most {n} arguments, got {len(args)}")
        values = list(args) + [_MISSING] * (n - len(args))
        for key, value in kwargs.items():
            if key not in self._positions:
                raise TypeError(f"{self.name} got an unknown keyword argument {key!r}; "
                                f"inputs are named {sorted(self._positions)}")
            pos = self._positions[key]
            if values[pos] is not _MISSING:
                raise TypeError(f"{self.name} got multiple values for input {key!r}")
            values[pos] = value
        for pos, value in enumerate(values):
            if value is _MISSING:
                default = self.inputs[pos].value
                if default is None:
                    raise TypeError(f"{self.name} is missing a value for input "
                                    f"{self.inputs[pos].name or pos!r} (no default)")
                values[pos] = default
        return values

    def __call__(self, *args, **kwargs):
        fast = self._fast
        if fast is not None:        # exact arguments, and no failed check: done in C
            result = fast(*args, **kwargs)
            if result is not NotImplemented:
                return result
        elif self._fast_pending is not None:      # its extension was being built: is it there now?
            module = fastcall.loaded(self._fast_pending[1])
            if module is not False:
                self._fast = self._fast_path(module)
        if kwargs or len(args) != len(self._converters):
            args = self._bind(args, kwargs)
        values = [convert(value) for convert, value in zip(self._converters, args)]
        results = self._runner(values) if not self._locks else self._call_shared(values)
        if self._single:
            return results[0]
        return results[:self._n_outputs]

    def _call_shared(self, values):
        """A call that reads or updates shared variables, safe from several threads at once.

        A call with updates holds the locks of all its shared variables: calls that update a
        variable run one at a time, and each sees the values that the one before it left (the
        results are those of some serial order of the calls). A call without updates takes no
        lock, so that many threads read the same parameters in parallel; if an update wrote one
        of its variables in place meanwhile (its `_version` moved), it runs again with the locks.
        """
        n_args = len(values)
        if not self._updated:
            shared = self._shared
            before = [var._version for var in shared]
            for version in before:
                if version & 1:
                    break                  # an update is writing it in place now: wait for it
            else:
                results = self._runner(self._with_shared(values))
                if [var._version for var in shared] == before:
                    return results
                del values[n_args:]
        locks, inplace = self._locks, self._inplace_vars
        for lock in locks:
            lock.acquire()
        try:
            for var in inplace:
                var._version += 1          # odd: this call may write the value in place
            try:
                results = self._runner(self._with_shared(values))
                for k, var in enumerate(self._updated):
                    var._value = results[self._n_outputs + k]
            finally:
                for var in inplace:
                    var._version += 1
        finally:
            for lock in locks:
                lock.release()
        return results

    def _with_shared(self, values: list) -> list:
        """`values` with the shared variables' values appended (host copies of GPU values where
        the function runs on the host)."""
        host = self._host_shared
        for var in self._shared:
            value = var._value
            values.append(var.host_value() if host and type(value) is not np.ndarray else value)
        return values

    def __reduce__(self):
        return _rebuild_function, self._spec

    def copy(self, share_memory=False, swap=None, delete_updates=False, name=None, profile=None):
        """A new Function computing the same thing (Theano 1.0's Function.copy).

        `share_memory=False`: the copy reads and updates its own copies of the shared variables
        (with the values they hold now); True: the same shared variables. `swap`: {shared
        variable of this function: shared variable of the same type to use instead}.
        `delete_updates=True`: the copy applies no updates. `name`: the copy's name."""
        inputs, outputs, updates, givens, old_name, snapshot, unused, downcast, mode, frozen = self._spec
        swap = dict(swap or {})
        for old, new in swap.items():
            if not isinstance(old, SharedVariable) or not isinstance(new, SharedVariable):
                raise TypeError(f"Function.copy: swap maps shared variables to shared variables, "
                                f"got {old!r}: {new!r}")
            if old.type != new.type:
                raise TypeError(f"Function.copy: cannot swap {old!r} of type {old.type} for {new!r} "
                                f"of type {new.type}")
        by_id = {id(old): new for old, new in swap.items()}
        mapping = {}
        for var in self._shared + self._updated:
            if id(var) in mapping:
                continue
            if id(var) in by_id:
                mapping[id(var)] = by_id[id(var)]
            elif not share_memory:
                mapping[id(var)] = shared(var.host_value(), name=var.name, broadcastable=var.broadcastable)
            else:
                mapping[id(var)] = var
        unknown = [v for v in swap if id(v) not in mapping]
        if unknown:
            raise ValueError(f"Function.copy: swap names {unknown!r}, which {self.name} does not use")
        replace = {var: mapping[id(var)] for var in self._shared + self._updated}

        def moved(value):
            if isinstance(value, Out):
                return Out(moved(value.variable), value.borrow, value.on_device)
            return clone_replace([as_tensor_variable(value)], replace)[0] if replace else value

        out_list = None if outputs is None else moved(outputs) if not isinstance(outputs, (list, tuple)) \
            else [moved(o) for o in outputs]
        new_updates = [] if delete_updates else \
            [(mapping.get(id(v), v), moved(e)) for v, e in _pairs(updates, "updates")]
        new_givens = [(mapping.get(id(k), k), moved(v)) for k, v in _pairs(givens, "givens")]
        return Function(inputs, out_list, new_updates, new_givens, name or old_name, snapshot, "ignore",
                        downcast, mode, frozen)

    def __repr__(self):
        return f"<gencomp.Function {self.name}: {len(self.inputs)} inputs, {self._n_outputs} outputs>"


def _warn_float64(outputs, updates, action: str) -> None:
    """config.warn_float64 ('warn', 'raise' or 'pdb', which raises here): a float64 variable the
    function would compute, as Theano's flag reports it for float32 programs."""
    from .graph import ancestors

    outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    pairs = list(updates.items()) if hasattr(updates, "items") else list(updates or ())
    roots = [getattr(o, "variable", o) for o in outs if o is not None] + [new for _, new in pairs]
    found = next((v for v in ancestors([r for r in roots if hasattr(r, "owner")])
                  if getattr(getattr(v, "type", None), "dtype", None) == "float64"), None)
    if found is None:
        return
    what = f"the result of {found.owner.op}" if found.owner is not None and found.name is None else repr(found)
    message = f"{what} is float64 in a function's graph (config.warn_float64 = {action!r})"
    if action == "warn":
        import warnings

        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        raise TypeError(message)


def _converter(type_, label: str, allow_downcast, device_arrays: bool = False, floatX=None):
    """The argument check of one input: a fast path for the common exact cases, else TensorType.filter.

    `allow_downcast`: None, False or True (see function()). `device_arrays`: a GPU array (an
    Out(on_device=True) result) passes as it is when its dtype and rank match; elsewhere it is
    copied to the host like any array-like."""
    dtype, ndim, filter_ = type_.numpy_dtype, type_.ndim, type_.filter

    def slow(value, label, allow_downcast):
        from .runtime_cuda import DeviceArray

        if device_arrays and type(value) is DeviceArray:
            if value.dtype != dtype or len(value.shape) != ndim or \
                    any(b and n != 1 for b, n in zip(type_.broadcastable, value.shape)):
                raise TypeError(f"input {label!r} expects a {type_} array, got a GPU array of dtype "
                                f"{value.dtype} and shape {value.shape}")
            return value
        return filter_(value, label, allow_downcast, floatX)
    native = {"float64": float, "int64": int, "bool": bool}.get(type_.dtype) if ndim == 0 else None

    broadcast = any(type_.broadcastable)

    def convert(value):
        kind = type(value)
        if kind is np.ndarray:
            if value.dtype is dtype and value.ndim == ndim and value.flags.aligned:
                if broadcast:
                    type_.check_broadcast(value.shape, label)
                return value
        elif kind is native:
            arr = np.array(value)
            if arr.dtype is dtype:
                return arr
        return slow(value, label, allow_downcast)

    return convert


def _rebuild_function(inputs, outputs, updates, givens, name, snapshot, on_unused_input, allow_downcast,
                      mode=None, no_default_updates=False):
    return Function(inputs, outputs, updates, givens, name, snapshot, on_unused_input, allow_downcast,
                    mode, no_default_updates)


def _frozen_generators(fgraph, no_default_updates) -> list:
    """The generators (rv.rng) of the random draws in `fgraph` that no_default_updates freezes."""
    if no_default_updates is False or no_default_updates is None:
        return []
    chosen = None if no_default_updates is True else \
        {id(getattr(v, "rng", v)) for v in no_default_updates}
    found = {}
    for node in fgraph.toposort():
        rng = getattr(getattr(node.op, "stream", None), "rng", None)
        if rng is not None and (chosen is None or id(rng) in chosen):
            found[id(rng)] = rng
    return list(found.values())


def _keeping_states(runner, generators):
    """`runner`, restoring the state of `generators` after each call (their draws do not advance)."""
    def run(values):
        states = [g.get_value(borrow=True).get_state() for g in generators]
        try:
            return runner(values)
        finally:
            for g, state in zip(generators, states):
                g.get_value(borrow=True).set_state(state)
    return run


_MISSING = object()


def _quoted(var) -> str:
    return repr(var.name) if var.name else repr(var)


def as_input(var):
    if not isinstance(var, Variable):
        raise TypeError(f"function inputs must be symbolic variables, got {var!r}")
    return var
