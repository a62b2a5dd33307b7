"""`scan`: Theano's loop over sequences with recurrent states, and its gradient (backpropagation
through time, itself a scan running backwards).

The step function is traced once into an inner graph; outputs are stacked along a new leading
axis. The op and its gradient are in scan_op.py; a compiled function runs the loop in C.

The `Scan` op itself knows only the simplest loop: tap-0 sequences, tap -1 states, non-sequences,
and optionally a stop condition (`until`). `scan()` rewrites Theano's richer interface into it:
- a sequence with taps [-1, 0, 2] becomes three tap-0 sequences, slices of it (Theano 1.0's
  slicing, which acts as if tap 0 were always among the taps);
- an output with taps such as [-3, -1] becomes a shift register of max(-taps) tap -1 states
  (x_{t-1}, x_{t-2}, x_{t-3}); the stacked values of the extra ones are not returned;
- a shared variable the step updates becomes a state (its initial value the shared variable), and
  `scan` returns the update to its value after the last step;
- non-sequences reach the step as the outer variables themselves (so `T.grad(y[i], x)` inside the
  step sees y's graph), then placeholders replace them in the traced graph;
- `truncate_gradient=k` splits the loop in two scans: the steps before the last k, through which
  no gradient flows, and the last k.

The gradient re-runs the step's graph inside the backward scan: a random draw in the step draws
anew there, so differentiate through such steps only with the draws held constant (as the RBM's
consider_constant does).
"""

from __future__ import annotations

import numbers
from collections import OrderedDict

import numpy as np

from .graph import Constant, MissingInputError, Variable, ancestors, clone_replace
from .scan_op import LeadingLength, Scan, _short_initial
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable


class until:                      # noqa: N801  (Theano's name: theano.scan_module.until)
    """The step function's stop condition: return `until(cond)` after its outputs (and updates) and
    the loop ends after the first step whose scalar `cond` is true (its outputs included)."""

    def __init__(self, condition):
        self.condition = as_tensor_variable(condition)
        if self.condition.ndim != 0:
            raise TypeError(f"until needs a scalar condition, got {self.condition.type}")

class StrictScanError(MissingInputError):
    """scan(strict=True): the step function reads an outer variable not given in non_sequences."""

    def __init__(self, var):
        ValueError.__init__(
            self, f"scan(strict=True): the step function reads {var!r} (type {var.type}), which is not "
                  f"among the non_sequences; pass it in non_sequences (or use strict=False)")
        self.variable = var


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _placeholder(var, drop_first: bool, name: str):
    """The step function's variable for `var` (one entry of it when `drop_first`); with
    config.compute_test_value on, it carries the test value of the first step."""
    bcast = tuple(var.broadcastable[1:] if drop_first else var.broadcastable)
    placeholder = TensorType(var.dtype, bcast)(name)
    from .config import config
    if config.compute_test_value != "off":
        from .graph.testvalue import test_value
        try:
            value = np.asarray(test_value(var))
        except AttributeError:
            return placeholder
        if not drop_first or len(value):
            placeholder.tag.test_value = value[0] if drop_first else value
    return placeholder


def _tap_name(base: str, k: int) -> str:
    return f"{base}[t]" if k == 0 else f"{base}[t{k:+d}]"


def _taps(taps, what: str) -> list:
    taps = _as_list(taps)
    if not taps or any(not isinstance(k, (int, np.integer)) or isinstance(k, bool) for k in taps):
        raise ValueError(f"scan: the taps of {what} must be a non-empty list of ints, got {taps!r}")
    return [int(k) for k in taps]


def _sequence_slices(sequences):
    """(outer tap-0 sequences, the step's slice variables): one per (sequence, tap), in the order
    the step receives them. Cut as Theano 1.0 does, as if tap 0 were among the taps: for taps
    from mintap to maxtap, tap k reads s[k - min(mintap, 0) : len - (max(maxtap, 0) - k)]."""
    outer, inner = [], []
    for i, s in enumerate(_as_list(sequences)):
        taps = [0]
        if isinstance(s, dict):
            if "input" not in s:
                raise ValueError(f"scan: sequence {i} is a dict without 'input'")
            taps = [0] if s.get("taps") is None else _taps(s["taps"], f"sequence {i}")
            s = s["input"]
        s = as_tensor_variable(s)
        if s.ndim == 0:
            raise TypeError("scan: a sequence needs a leading dimension to iterate over")
        lo, hi = min(min(taps), 0), max(max(taps), 0)
        for k in taps:
            start, stop = k - lo, k - hi          # stop <= 0: that many entries cut from the end
            cut = s if (start, stop) == (0, 0) else s[start:stop] if stop else s[start:]
            outer.append(cut)
            inner.append(_placeholder(cut, True, _tap_name(s.name or "seq", k)))
    return outer, inner


class _Output:
    """One entry of outputs_info: `taps` (None: not fed back), and for a fed-back output its
    register: the outer initial values and step variables of x_{t-1}, ..., x_{t-m}."""

    def __init__(self, index, info):
        self.index, self.taps, self.initial = index, None, None
        if isinstance(info, dict):
            if info.get("return_steps") is not None:
                raise ValueError("scan: return_steps is deprecated (as in Theano): select the entries "
                                 "you need from the output instead")
            initial, taps = info.get("initial"), info.get("taps")
            if initial is None and taps is not None:
                raise ValueError(f"scan: output {index} has taps {taps!r} but no initial value; give "
                                 f"'initial' to use slices of an output")
            info = initial
            if initial is not None:
                self.taps = [-1] if taps is None else _taps(taps, f"output {index}")
        elif info is not None:
            self.taps = [-1]
        if info is None:
            return
        self.initial = as_tensor_variable(info)
        if any(k >= 0 for k in self.taps):
            raise ValueError(f"scan: output {index} has taps {self.taps}: output taps must be negative "
                             f"(a step cannot read outputs of the present or future steps)")
        self._register()

    def _register(self):
        init, taps = self.initial, self.taps
        if taps == [-1]:            # the plain state: the initial value itself
            self.outer = [init]
            self.inner = [_placeholder(init, False, f"{init.name or 'state'}[t-1]")]
            return
        m = -min(taps)
        what = f"output {self.index} (taps {taps})"
        if init.ndim == 0:
            raise ValueError(f"scan: {what} needs an initial value with a leading axis of at least {m} "
                             f"entries, got a scalar")
        known = np.shape(init.data)[0] if isinstance(init, Constant) else 1 if init.broadcastable[0] else None
        if known is not None and known < m:
            raise ValueError(_short_initial(what, m, known))
        if known is None:
            init = LeadingLength(m, what)(init)
        # Theano's buffer is initial[:m]: tap k reads initial[m + k] at the first step
        self.outer = [init[m - j] for j in range(1, m + 1)]
        base = self.initial.name or "state"
        self.inner = [_placeholder(v, False, _tap_name(base, -j)) for j, v in enumerate(self.outer, 1)]

    def step_args(self) -> list:
        """The step function's arguments for this output, in the order of its taps."""
        return [self.inner[-k - 1] for k in self.taps] if self.taps else []


def _step_results(result):
    """(condition, outputs, updates) from what the step function returned, in the forms Theano's
    get_updates_and_outputs accepts: outputs, updates, (outputs, updates), (outputs, until),
    (updates, until), (outputs, updates, until)."""
    def is_output(x):
        return isinstance(x, (Variable, numbers.Number, np.ndarray, np.generic))

    def is_outputs(x):
        return is_output(x) or (isinstance(x, (list, tuple)) and all(is_output(e) for e in x))

    def is_updates(x):
        return isinstance(x, dict) or (isinstance(x, (list, tuple)) and
                                       all(isinstance(e, (list, tuple)) and len(e) == 2 for e in x))

    if is_outputs(result):
        return None, _as_list(result), OrderedDict()
    if is_updates(result):
        return None, [], OrderedDict(result)
    error = (f"scan: cannot parse what the step function returned ({result!r}); return the outputs, "
             f"then the updates (a dict or list of pairs), then an until(condition), each optional")
    if not isinstance(result, (list, tuple)) or len(result) not in (2, 3):
        raise ValueError(error)
    result = list(result)
    if len(result) == 2:
        first, second = result
        if is_outputs(first) and is_updates(second):
            return None, _as_list(first), OrderedDict(second)
        if is_outputs(first) and isinstance(second, until):
            return second.condition, _as_list(first), OrderedDict()
        if is_updates(first) and isinstance(second, until):
            return second.condition, [], OrderedDict(first)
        if is_updates(first) and is_outputs(second):
            raise ValueError("scan: the step function returned (updates, outputs); return the outputs "
                             "first, then the updates, then the until condition (as Theano requires)")
        raise ValueError(error)
    if is_outputs(result[0]) and is_updates(result[1]) and isinstance(result[2], until):
        return result[2].condition, _as_list(result[0]), OrderedDict(result[1])
    raise ValueError(error)


def _shared_updates(updates):
    """[(shared variable, new value, step variable)] for the updates the step returned; a random
    stream's generator (which draws advance in place) needs none and is left out."""
    from .sharedvar import SharedVariable
    from .tensor import math as tm
    from .tensor.shared_randomstreams import RandomStateSharedVariable

    result = []
    for var, new in updates.items():
        if isinstance(var, RandomStateSharedVariable):
            continue
        if not isinstance(var, SharedVariable):
            raise TypeError(f"scan: the step function returned an update of {var!r}, which is not a shared "
                            f"variable")
        new = as_tensor_variable(new)
        if new.ndim != var.ndim:
            raise TypeError(f"scan: the update of shared variable {var!r} is {new.ndim}-d, the variable "
                            f"{var.ndim}-d")
        if new.dtype != var.dtype:
            new = tm.cast(new, var.dtype)
        result.append((var, new, _placeholder(var, False, f"{var.name or 'shared'}[t-1]")))
    return result


def _truncation(truncate_gradient):
    if truncate_gradient is None or truncate_gradient == -1:
        return None
    if not isinstance(truncate_gradient, (int, np.integer)) or isinstance(truncate_gradient, bool) \
            or truncate_gradient < 0:
        raise ValueError(f"scan: truncate_gradient must be -1 (full backpropagation through time) or a "
                         f"number of steps >= 0, got {truncate_gradient!r}")
    return int(truncate_gradient)


def _n_steps(n_steps, seqs):
    from .tensor import math as tm
    from .tensor.shape import shape_i

    if n_steps is None:
        if not seqs:
            raise ValueError("scan: give n_steps when there are no sequences")
        n_steps = shape_i(seqs[0], 0)
        for s in seqs[1:]:
            n_steps = tm.minimum(n_steps, shape_i(s, 0))
    n_steps = as_tensor_variable(n_steps)
    if n_steps.ndim != 0 or not n_steps.dtype.startswith(("int", "uint")):
        raise ValueError(f"scan: n_steps must be an integer scalar, got {n_steps.type}")
    return tm.cast(n_steps, "int64")


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, truncate_gradient=-1,
         go_backwards=False, mode=None, name=None, profile=False, allow_gc=None, strict=False,
         return_list=False):
    """Theano's scan: `(outputs, updates)`; outputs stacked over the steps (a list when several,
    None when the step returns only updates), updates the shared variables' values after the last
    step (pass them to function(updates=...)).

    Theano 1.0's semantics throughout. The step receives, in this order: each sequence's slices in
    the order of its taps (`dict(input=s, taps=[-1, 1])`: s[t-1], s[t+1]; a sequence is cut as if
    tap 0 were among its taps, so taps [2] read s[2:] and taps [-1] s[:-1]), then each fed-back
    output's previous values in the order of its taps (`dict(initial=x0, taps=[-3, -1])`: x0
    needs >= 3 entries along its first axis, x0[0] is x[-3], x0[2] is x[-1]; entries past the
    first 3 are not read; the output holds the new values only), then the non-sequences (the
    outer variables themselves). It returns outputs, `(outputs, updates)`, `(outputs, until)`,
    `(updates, until)` or `(outputs, updates, until)`. With `until(cond)` the loop stops after the
    first step where cond is true (that step included); n_steps is the most steps it runs.

    `truncate_gradient=k`: the gradient flows through the last k steps only (the forward is
    unchanged); the gradients of sequence entries read before them are zero, and the initial
    state gets a gradient only when the k steps reach back to it (k >= the number of steps).
    `strict=True`: an outer variable the step reads without getting it from non_sequences is an
    error (StrictScanError, a MissingInputError). `mode`, `profile` and `allow_gc` are accepted
    and ignored (the step compiles as the function does).
    """
    from .tensor import math as tm

    truncate = _truncation(truncate_gradient)
    seq_outer, seq_in = _sequence_slices(sequences)
    infos = [_Output(i, info) for i, info in enumerate(_as_list(outputs_info))]
    nonseqs = [as_tensor_variable(v) if not isinstance(v, Variable) else v for v in _as_list(non_sequences)]
    fed = [o for o in infos if o.taps]
    nonseq_in = [_placeholder(v, False, v.name or "non_sequence") for v in nonseqs]
    # the step reads the non-sequences themselves (a constant's placeholder: its value cannot fold
    # into the step graph then, which keeps the graph of a constant argument what it always was)
    given = [p if isinstance(v, Constant) else v for v, p in zip(nonseqs, nonseq_in)]
    condition, outs, updates = _step_results(fn(*seq_in, *[a for o in fed for a in o.step_args()], *given))
    outs = [as_tensor_variable(o) for o in outs]
    if not infos:
        infos = [_Output(i, None) for i in range(len(outs))]
    if len(outs) != len(infos):
        raise ValueError(f"scan: the step function returns {len(outs)} outputs but outputs_info has "
                         f"{len(infos)} entries (give None for an output that is not fed back)")
    # the op's states: each fed-back output's register (x_{t-1} gets the new value, x_{t-j} the old
    # x_{t-j+1}), then the shared variables the step updates; then the outputs not fed back
    state_outer, state_in, new_states = [], [], []
    for o in fed:
        out = outs[o.index]
        if out.dtype != o.inner[0].dtype:
            out = tm.cast(out, o.inner[0].dtype)
        if out.ndim != o.inner[0].ndim:
            raise TypeError(f"scan: output {o.index} is {out.ndim}-d but its initial state is "
                            f"{o.inner[0].ndim}-d")
        state_outer += o.outer
        state_in += o.inner
        new_states += [out] + o.inner[:-1]
    shared = _shared_updates(updates)
    for var, new, placeholder in shared:
        state_outer.append(var)
        state_in.append(placeholder)
        new_states.append(new)
    plain = [outs[o.index] for o in infos if not o.taps]
    replace = dict(zip(nonseqs, nonseq_in))
    replace.update((var, placeholder) for var, _, placeholder in shared)    # an update wins
    traced = new_states + plain + ([condition] if condition is not None else [])
    inner_outs = clone_replace(traced, replace)
    # outer variables the step reads directly become implicit non-sequences
    known = {id(v) for v in (*seq_in, *state_in, *nonseq_in)}
    free = [v for v in ancestors(inner_outs, blockers=[*seq_in, *state_in, *nonseq_in])
            if v.owner is None and id(v) not in known and not isinstance(v, Constant)]
    if strict and free:
        raise StrictScanError(free[0])
    free_in = [_placeholder(v, False, v.name or "outer") for v in free]
    if free:
        inner_outs = clone_replace(inner_outs, dict(zip(free, free_in)))
    inner_outs = [_keep_state_pattern(o, p) for o, p in zip(inner_outs, state_in)] + inner_outs[len(state_in):]
    n_steps = _n_steps(n_steps, seq_outer)
    inner_in = [*seq_in, *state_in, *nonseq_in, *free_in]
    others = [*nonseqs, *free]
    if truncate is None or condition is not None:     # a while loop has no gradient to truncate
        op = Scan(inner_in, inner_outs, len(seq_in), len(state_in), go_backwards, condition is not None)
        stacked = op(n_steps, *seq_outer, *state_outer, *others)
        stacked = stacked if isinstance(stacked, list) else [stacked]
    else:
        stacked = _truncated(inner_in, inner_outs, len(seq_in), len(state_in), go_backwards, truncate,
                             n_steps, seq_outer, state_outer, others)
    return _results(stacked, infos, fed, shared, name, return_list)


def _results(stacked, infos, fed, shared, name, return_list):
    """(the user's outputs in the order of outputs_info, the updates of the shared variables)."""
    by_position, position = [None] * len(infos), 0
    for o in fed:
        by_position[o.index] = stacked[position]        # the stack of x_t; the register's others are hidden
        position += len(o.inner)
    new_values = OrderedDict()
    for var, _, _ in shared:
        new_values[var] = _last_or(stacked[position], var)
        position += 1
    for o in infos:
        if not o.taps:
            by_position[o.index] = stacked[position]
            position += 1
    if name:
        for k, var in enumerate(by_position):
            var.name = f"{name}[{k}]" if len(by_position) > 1 else name
    if return_list or len(by_position) > 1:
        return by_position, new_values
    return (by_position[0] if by_position else None), new_values     # None: only updates, as Theano


def _truncated(inner_in, inner_outs, n_seqs, n_states, go_backwards, k, n_steps, seqs, inits, others):
    """The stacked outputs of a scan whose gradient flows through its last `k` steps only (Theano's
    truncate_gradient): a first scan runs the steps before those, behind disconnected_grad, and a
    second one the last k steps from where the first stopped."""
    from .tensor import math as tm

    op = Scan(inner_in, inner_outs, n_seqs, n_states, False)
    seqs = [s[::-1] for s in seqs] if go_backwards else seqs
    n_first = tm.maximum(n_steps - k, 0)
    first = op(n_first, *seqs, *inits, *others)
    first = [tm.disconnected_grad(f) for f in (first if isinstance(first, list) else [first])]
    starts = [_keep_state_pattern(_last_or(f, i), i) for f, i in zip(first[:n_states], inits)]
    last = op(n_steps - n_first, *[s[n_first:] for s in seqs], *starts, *others)
    last = last if isinstance(last, list) else [last]
    return [tm.concatenate([f, s], axis=0) for f, s in zip(first, last)]


def _last_or(stacked, initial):
    """stacked[-1], or `initial` when the loop ran no step: the last of [initial, *stacked[-1:]]
    (ops that lower to C; only one entry of the stack is copied)."""
    from .tensor import math as tm

    return tm.concatenate([tm.shape_padleft(initial), stacked[-1:]], axis=0)[-1]


def _keep_state_pattern(out, placeholder):
    """A new state typed like the previous one (a broadcastable state stays broadcastable)."""
    from .tensor.shape import rebroadcast

    return rebroadcast(out, placeholder.broadcastable) if out.broadcastable != placeholder.broadcastable else out
