"""`scan`: Theano's loop over sequences with recurrent states, and its gradient (backpropagation
through time, itself a scan running backwards).

The step function is traced once into an inner graph, compiled like any gencomp function, and
called once per step from a host step; outputs are stacked along a new leading axis. Supported:
sequences (tap 0), outputs_info as initial states (tap -1) or None, non_sequences, n_steps,
go_backwards; outer variables the step reads directly (shared weights) become implicit
non-sequences. Not supported (a clear error): other taps, truncate_gradient, updates returned by
the step function.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .graph import Apply, Constant, FunctionGraph, Op, Variable, ancestors, clone_replace
from .graph.hashing import canonical_lines, sha256_key
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable


class Scan(Op):
    """Runs the inner graph `steps` times. Inputs: n_steps, sequences, initial states, non-sequences.

    `inner_inputs` are the step function's arguments in that order (a sequence's slice, a state's
    previous value, a non-sequence); `inner_outputs` its results, the first `n_states` of them
    being the new states (in the order of the initial states).
    """

    returns_view = False

    def lowering(self, node) -> str:
        return "scan"          # a C loop when its step has a C form (codegen/lower.py), else the host

    def __init__(self, inner_inputs, inner_outputs, n_seqs: int, n_states: int, go_backwards: bool):
        self.inner_inputs, self.inner_outputs = list(inner_inputs), list(inner_outputs)
        self.n_seqs, self.n_states, self.go_backwards = int(n_seqs), int(n_states), bool(go_backwards)
        lines = canonical_lines(FunctionGraph(self.inner_inputs, self.inner_outputs))
        self._key = sha256_key(lines)[:16]
        self._compiled = None

    def signature(self):
        return (f"Scan{{step={self._key}, sequences={self.n_seqs}, states={self.n_states}"
                f"{', backwards' if self.go_backwards else ''}}}")

    def __reduce__(self):
        return Scan, (self.inner_inputs, self.inner_outputs, self.n_seqs, self.n_states, self.go_backwards)

    def make_node(self, n_steps, *inputs):
        n_steps = as_tensor_variable(n_steps)
        inputs = [as_tensor_variable(i) for i in inputs]
        if len(inputs) != len(self.inner_inputs):
            raise TypeError(f"scan: {len(inputs)} inputs for a step of {len(self.inner_inputs)} arguments")
        outs = [TensorType(o.dtype, (False,) + tuple(o.broadcastable)) for o in self.inner_outputs]
        return Apply(self, [n_steps, *inputs], outs)

    def _step(self):
        if self._compiled is None:
            from .config import config
            from .function import function

            device = "cpu" if config.device == "cuda" else None     # the loop runs on the host
            self._compiled = function(self.inner_inputs, self.inner_outputs, on_unused_input="ignore",
                                      device=device)
        return self._compiled

    def perform(self, node, inputs):
        n = int(inputs[0])
        seqs = inputs[1:1 + self.n_seqs]
        states = list(inputs[1 + self.n_seqs:1 + self.n_seqs + self.n_states])
        rest = inputs[1 + self.n_seqs + self.n_states:]
        if n < 0:
            raise ValueError(f"scan: n_steps is {n}")
        for k, s in enumerate(seqs):
            if s.shape[0] < n:
                raise ValueError(f"scan: sequence {k} has {s.shape[0]} entries, fewer than the {n} steps")
        if self.go_backwards:
            seqs = [s[::-1] for s in seqs]
        step = self._step()
        collected = [[] for _ in self.inner_outputs]
        for t in range(n):
            results = step(*[s[t] for s in seqs], *states, *rest)
            results = results if isinstance(results, list) else [results]
            states = results[:self.n_states]
            for k, r in enumerate(results):
                collected[k].append(r)
        outs = []
        for k, (values, var) in enumerate(zip(collected, node.outputs)):
            if values:
                outs.append(np.stack(values).astype(var.dtype, copy=False))
            else:                       # no step: an empty stack of the state's (or a length-0) shape
                like = inputs[1 + self.n_seqs + k].shape if k < self.n_states else (0,) * (var.ndim - 1)
                outs.append(np.zeros((0, *like), dtype=var.dtype))
        return outs

    def grad(self, inputs, output_grads, outputs):
        return _scan_grad(self, inputs, output_grads, outputs)


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


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, truncate_gradient=-1,
         go_backwards=False, mode=None, name=None, profile=False, allow_gc=None, strict=False,
         return_list=False):
    """Theano's scan: `(outputs, updates)`; outputs stacked over the steps (a list when several)."""
    from .tensor import math as tm

    if truncate_gradient not in (-1, None):
        raise NotImplementedError("scan: truncate_gradient is not supported (the gradient is full "
                                  "backpropagation through time); leave it at -1")
    seqs = []
    for s in _as_list(sequences):
        if isinstance(s, dict):
            if list(s.get("taps", [0])) != [0]:
                raise NotImplementedError(f"scan: sequence taps {s['taps']} are not supported, only [0]")
            s = s["input"]
        s = as_tensor_variable(s)
        if s.ndim == 0:
            raise TypeError("scan: a sequence needs a leading dimension to iterate over")
        seqs.append(s)
    infos = _as_list(outputs_info)
    inits = []
    for info in infos:
        if isinstance(info, dict):
            if list(info.get("taps", [-1])) != [-1]:
                raise NotImplementedError(f"scan: output taps {info['taps']} are not supported, only [-1]")
            info = info.get("initial")
        inits.append(None if info is None else as_tensor_variable(info))
    nonseqs = [as_tensor_variable(v) if not isinstance(v, Variable) else v for v in _as_list(non_sequences)]

    seq_in = [_placeholder(s, True, f"{s.name or 'seq'}[t]") for s in seqs]
    state_in = [_placeholder(i, False, f"{i.name or 'state'}[t-1]") for i in inits if i is not None]
    nonseq_in = [_placeholder(v, False, v.name or "non_sequence") for v in nonseqs]
    result = fn(*seq_in, *state_in, *nonseq_in)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
        result, updates = result
        if updates:
            raise NotImplementedError("scan: a step function that returns updates is not supported")
    if isinstance(result, dict):
        raise NotImplementedError("scan: a step function that returns only updates is not supported")
    outs = [as_tensor_variable(o) for o in _as_list(result)]
    if not infos:
        inits = [None] * len(outs)
    if len(outs) != len(inits):
        raise ValueError(f"scan: the step function returns {len(outs)} outputs but outputs_info has "
                         f"{len(inits)} entries")
    # states first: the step's results in the order of the initial states, then the others
    order = [k for k, i in enumerate(inits) if i is not None] + [k for k, i in enumerate(inits) if i is None]
    states = [k for k in order if inits[k] is not None]
    for k, placeholder in zip(states, state_in):
        out = outs[k]
        if out.dtype != placeholder.dtype:
            out = tm.cast(out, placeholder.dtype)
        if out.ndim != placeholder.ndim:
            raise TypeError(f"scan: output {k} is {out.ndim}-d but its initial state is {placeholder.ndim}-d")
        outs[k] = out
    # outer variables the step reads directly become implicit non-sequences
    known = {id(v) for v in (*seq_in, *state_in, *nonseq_in)}
    free = [v for v in ancestors([outs[k] for k in order], blockers=[*seq_in, *state_in, *nonseq_in])
            if v.owner is None and id(v) not in known and not isinstance(v, Constant)]
    free_in = [_placeholder(v, False, v.name or "outer") for v in free]
    inner_outs = clone_replace([outs[k] for k in order], dict(zip(free, free_in))) if free else \
        [outs[k] for k in order]
    inner_outs = [_keep_state_pattern(o, p) for o, p in zip(inner_outs, state_in)] + inner_outs[len(state_in):]
    if n_steps is None:
        if not seqs:
            raise ValueError("scan: give n_steps when there are no sequences")
        from .tensor.shape import shape_i

        n_steps = shape_i(seqs[0], 0)
        for s in seqs[1:]:
            n_steps = tm.minimum(n_steps, shape_i(s, 0))
    n_steps = tm.cast(as_tensor_variable(n_steps), "int64")
    op = Scan([*seq_in, *state_in, *nonseq_in, *free_in], inner_outs, len(seqs), len(state_in),
              go_backwards)
    stacked = op(n_steps, *seqs, *[inits[k] for k in states], *nonseqs, *free)
    stacked = stacked if isinstance(stacked, list) else [stacked]
    by_position = [None] * len(outs)
    for k, var in zip(order, stacked):
        by_position[k] = var
        if name:
            var.name = f"{name}[{k}]" if len(outs) > 1 else name
    results = by_position if (len(by_position) > 1 or return_list) else by_position[0]
    return results, OrderedDict()


def _keep_state_pattern(out, placeholder):
    """A new state typed like the previous one (a broadcastable state stays broadcastable)."""
    from .tensor.shape import rebroadcast

    return rebroadcast(out, placeholder.broadcastable) if out.broadcastable != placeholder.broadcastable else out


def _scan_grad(op, inputs, output_grads, outputs):
    """Backpropagation through time as a backwards scan over the forward's steps.

    Step t computed outs = f(x_t, h_{t-1}, w). Going back, the carried gradient c of h_t plus the
    output gradient at t form the cotangent of outs; its vector-Jacobian product gives the
    gradients of x_t (stacked), of h_{t-1} (carried on) and of w (summed).
    """
    from . import gradient
    from .tensor import math as tm
    from .tensor.subtensor import set_subtensor

    n_steps, args = inputs[0], inputs[1:]
    ns, nst = op.n_seqs, op.n_states
    seqs, inits, rest = args[:ns], args[ns:ns + nst], args[ns + nst:]
    iter_seqs = [s[::-1] if op.go_backwards else s for s in seqs]
    iter_seqs = [s[:n_steps] for s in iter_seqs]
    grads_out = [g if g is not None else tm.zeros_like(o) for g, o in zip(output_grads, outputs)]
    # the state each step read: the initial one, then the states of the steps before
    prev = [tm.concatenate([tm.shape_padleft(init), out[:-1]], axis=0) for init, out in zip(inits, outputs[:nst])]
    float_rest = [k for k, v in enumerate(rest) if v.dtype in ("float32", "float64")]
    float_seqs = [k for k, v in enumerate(seqs) if v.dtype in ("float32", "float64")]

    def back_step(*args):
        it = iter(args)
        xs = [next(it) for _ in range(ns)]
        hs = [next(it) for _ in range(nst)]
        gs = [next(it) for _ in range(len(outputs))]
        carries = [next(it) for _ in range(nst)]
        sums = [next(it) for _ in float_rest]
        ws = [next(it) for _ in rest]
        outs = clone_replace(op.inner_outputs, dict(zip(op.inner_inputs, [*xs, *hs, *ws])))
        cotangents = [g + c for g, c in zip(gs[:nst], carries)] + list(gs[nst:])
        cost = None
        for o, cot in zip(outs, cotangents):
            if o.dtype not in ("float32", "float64"):
                continue
            term = (o * tm.disconnected_grad(cot)).sum()      # its gradient is the product with cot
            cost = term if cost is None else cost + term
        wrt = [xs[k] for k in float_seqs] + list(hs) + [ws[k] for k in float_rest]
        if cost is None:
            grads = [tm.zeros_like(w) for w in wrt]
        else:
            grads = gradient.grad(cost, wrt, disconnected_inputs="ignore")
        dxs = grads[:len(float_seqs)]
        dhs = grads[len(float_seqs):len(float_seqs) + nst]
        dws = grads[len(float_seqs) + nst:]
        new_sums = [s + d for s, d in zip(sums, dws)]
        return [*[tm.cast(d, h.dtype) for d, h in zip(dhs, hs)], *new_sums, *dxs]

    n_back = len(inits) + len(float_rest)
    back, _ = scan(back_step, sequences=[*iter_seqs, *prev, *grads_out],
                   outputs_info=[*[tm.zeros_like(i) for i in inits], *[tm.zeros_like(rest[k]) for k in float_rest],
                                 *[None for _ in float_seqs]],
                   non_sequences=list(rest), n_steps=n_steps, go_backwards=True, return_list=True)
    carried, summed, dxs = back[:len(inits)], back[len(inits):n_back], back[n_back:]
    result = [None]                                   # n_steps
    for k, s in enumerate(seqs):
        if k not in float_seqs:
            result.append(None)
            continue
        d_iter = dxs[float_seqs.index(k)][::-1]       # the backwards scan stacked them last step first
        full = set_subtensor(tm.zeros_like(s)[:n_steps], d_iter)
        result.append(full[::-1] if op.go_backwards else full)
    result += [c[-1] for c in carried]
    for k, v in enumerate(rest):
        result.append(summed[float_rest.index(k)][-1] if k in float_rest else None)
    return result
