"""The Scan op: the simplest loop (tap-0 sequences, tap -1 states, non-sequences, an optional stop
condition), its numpy reference (`perform`: the compiled step called once per step), and its
gradient, backpropagation through time as a backwards scan. `gencomp.scan.scan` builds it from
Theano's richer interface; a compiled function runs it as a C loop when its step has a C form
(codegen/lower.py ScanStep), and on device='cuda' as a host loop calling its step compiled for the
GPU (step_function; runtime_cuda._Scan)."""

from __future__ import annotations

import numpy as np

from .graph import Apply, FunctionGraph, Op, clone_replace
from .graph.hashing import canonical_lines, sha256_key
from .tensor.type import TensorType
from .tensor.variable import as_tensor_variable


class Scan(Op):
    """Runs the inner graph `steps` times. Inputs: n_steps, sequences, initial states, non-sequences.

    `inner_inputs` are the step function's arguments in that order (a sequence's slice, a state's
    previous value, a non-sequence); `inner_outputs` its results, the first `n_states` of them
    being the new states (in the order of the initial states), and with `until`, a last one: the
    scalar condition that stops the loop after the step where it is true. One stacked output per
    inner output but the condition, as long as the number of steps run; or, for the outputs
    `last_only` marks (set by the scan_save_mem rewrite when the graph reads only their last row),
    that last row alone (no row when no step ran): the loop keeps such a state in a ring of two rows
    instead of a stack as long as the loop.
    """

    returns_view = False

    def lowering(self, node) -> str:
        return "scan"          # a C loop when its step has a C form (codegen/lower.py), else the host

    def __init__(self, inner_inputs, inner_outputs, n_seqs: int, n_states: int, go_backwards: bool,
                 until: bool = False, last_only=()):
        self.inner_inputs, self.inner_outputs = list(inner_inputs), list(inner_outputs)
        self.n_seqs, self.n_states, self.go_backwards = int(n_seqs), int(n_states), bool(go_backwards)
        self.until = bool(until)
        n_stacked = len(self.inner_outputs) - self.until
        self.last_only = tuple(bool(b) for b in last_only) or (False,) * n_stacked
        if len(self.last_only) != n_stacked:
            raise ValueError(f"scan: last_only has {len(self.last_only)} flags for {n_stacked} stacked outputs")
        inner = FunctionGraph(self.inner_inputs, self.inner_outputs)
        self._key = sha256_key(canonical_lines(inner))[:16]
        # a step with a side effect (a random draw, a Print) is never run at compile time
        self.stateful = any(getattr(n.op, "stateful", False) for n in inner.toposort())
        self._compiled = {}     # device -> the step compiled for it (step_function)

    def signature(self):
        last = [k for k, b in enumerate(self.last_only) if b]
        return (f"Scan{{step={self._key}, sequences={self.n_seqs}, states={self.n_states}"
                f"{', backwards' if self.go_backwards else ''}{', until' if self.until else ''}"
                f"{', last_only=' + ','.join(map(str, last)) if last else ''}}}")

    def __reduce__(self):
        return Scan, (self.inner_inputs, self.inner_outputs, self.n_seqs, self.n_states, self.go_backwards,
                      self.until, self.last_only)

    def rebuilt(self, inner_outputs, last_only):
        """The same loop with other step results (the stop condition, if any, stays last) or other
        last_only flags: what the scan rewrites make."""
        return Scan(self.inner_inputs, inner_outputs, self.n_seqs, self.n_states, self.go_backwards, self.until,
                    last_only)

    def ring_rows(self, k: int) -> int:
        """The rows the loop keeps of stacked output k: 0 (all of them), or for a last_only output 1,
        2 for a state (the step reads the previous row while it writes the next)."""
        return (2 if k < self.n_states else 1) if self.last_only[k] else 0

    def make_node(self, n_steps, *inputs):
        n_steps = as_tensor_variable(n_steps)
        inputs = [as_tensor_variable(i) for i in inputs]
        if len(inputs) != len(self.inner_inputs):
            raise TypeError(f"scan: {len(inputs)} inputs for a step of {len(self.inner_inputs)} arguments")
        stacked = self.inner_outputs[:-1] if self.until else self.inner_outputs
        outs = [TensorType(o.dtype, (False,) + tuple(o.broadcastable)) for o in stacked]
        return Apply(self, [n_steps, *inputs], outs)

    def step_function(self, device):
        """The step compiled as a function for `device` (None: config.device), once per op and device.
        On 'cuda' the stacked results stay on the GPU (Out(on_device=True): DeviceArray), and only
        the stop condition comes back to the host (runtime_cuda's loop over the steps calls it)."""
        fn = self._compiled.get(device)
        if fn is None:
            from .function import Out, function

            outs = list(self.inner_outputs)
            if device == "cuda":
                stacked = len(outs) - self.until
                outs = [Out(o, on_device=True) for o in outs[:stacked]] + outs[stacked:]
            fn = self._compiled[device] = function(self.inner_inputs, outs, on_unused_input="ignore",
                                                   device=device)
        return fn

    def _step(self):
        from .config import config

        return self.step_function("cpu" if config.device == "cuda" else None)    # the loop runs on the host

    def check_steps(self, n: int, lengths) -> None:
        """ValueError unless n_steps `n` >= 0 and every sequence (`lengths`: their first axes) is long enough."""
        if n < 0:
            raise ValueError(f"scan: n_steps is {n}")
        for k, length in enumerate(lengths):
            if length < n:
                raise ValueError(f"scan: sequence {k} has {length} entries, fewer than the {n} steps")

    def check_state(self, k: int, new_shape, init_shape, t: int) -> None:
        """ValueError if state k's new value (at step t) does not keep its initial value's shape."""
        if tuple(new_shape) != tuple(init_shape):
            raise ValueError(
                f"scan: state {k} has shape {tuple(new_shape)} at step {t} but its initial value has "
                f"shape {tuple(init_shape)} (the step's new value of {self.inner_inputs[self.n_seqs + k]!r} "
                f"must keep the shape of the initial value)")

    def perform(self, node, inputs):
        n = int(inputs[0])
        ns, nst = self.n_seqs, self.n_states
        seqs = inputs[1:1 + ns]
        inits = inputs[1 + ns:1 + ns + nst]
        rest = inputs[1 + ns + nst:]
        self.check_steps(n, [s.shape[0] for s in seqs])
        if self.go_backwards:
            seqs = [s[::-1] for s in seqs]
        step = self._step()
        n_stacked = len(node.outputs)
        collected = [[] for _ in range(n_stacked)]
        states = list(inits)
        for t in range(n):
            results = step(*[s[t] for s in seqs], *states, *rest)
            results = results if isinstance(results, list) else [results]
            states = results[:nst]
            for k, (new, init) in enumerate(zip(states, inits)):
                self.check_state(k, np.shape(new), np.shape(init), t)
            for k in range(n_stacked):
                if self.last_only[k]:
                    collected[k] = [results[k]]
                else:
                    collected[k].append(results[k])
            if self.until and bool(results[-1]):
                break
        outs = []
        for k, (values, var) in enumerate(zip(collected, node.outputs)):
            if values:
                outs.append(np.stack(values).astype(var.dtype, copy=False))
            else:                       # no step: an empty stack of the state's (or a length-0) shape
                like = inits[k].shape if k < nst else (0,) * (var.ndim - 1)
                outs.append(np.zeros((0, *like), dtype=var.dtype))
        return outs

    def grad(self, inputs, output_grads, outputs):
        if self.until:
            raise NotImplementedError(
                "scan: the gradient of a scan that stops on a condition (until) is not supported, as in "
                "Theano; run it for a fixed number of steps (n_steps) to differentiate it")
        if any(self.last_only):      # only compiled graphs hold these: gradients are taken before
            raise NotImplementedError("scan: no gradient through a scan that keeps only its last rows")
        return _scan_grad(self, inputs, output_grads, outputs)


class LeadingLength(Op):
    """`x` itself, after checking at run time that its first axis has at least `need` entries (an
    initial value that must cover an output's taps)."""

    returns_view = True

    def __init__(self, need: int, what: str):
        self.need, self.what = int(need), str(what)

    def signature(self):
        return f"LeadingLength{{>={self.need}, {self.what}}}"

    def __reduce__(self):
        return LeadingLength, (self.need, self.what)

    def lowering(self, node) -> str:
        return "leading_length"     # x's row itself, after the check

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        x = inputs[0]
        if x.shape[0] < self.need:
            raise ValueError(_short_initial(self.what, self.need, x.shape[0]))
        return [x]

    def grad(self, inputs, output_grads, outputs):
        return [output_grads[0]]


def _short_initial(what: str, need: int, length) -> str:
    return (f"scan: {what} needs an initial value with at least {need} entries along its first axis "
            f"(entry k is the value at step k - {need}), but it has {length}")


def _scan_grad(op, inputs, output_grads, outputs):
    """Backpropagation through time as a backwards scan over the forward's steps.

    Step t computed outs = f(x_t, h_{t-1}, w). Going back, the carried gradient c of h_t plus the
    output gradient at t form the cotangent of outs; its vector-Jacobian product gives the
    gradients of x_t (stacked), of h_{t-1} (carried on) and of w (summed).
    """
    from . import gradient
    from .scan import scan as _scan
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
    rest_in = op.inner_inputs[ns + nst:]

    def back_step(*args):
        it = iter(args)
        xs = [next(it) for _ in range(ns)]
        hs = [next(it) for _ in range(nst)]
        gs = [next(it) for _ in range(len(outputs))]
        carries = [next(it) for _ in range(nst)]
        sums = [next(it) for _ in float_rest]
        ws = [next(it) for _ in rest]
        # differentiated with respect to the step's own placeholders of the non-sequences (two of
        # them may be the same outer variable), then those read the outer variables
        outs = clone_replace(op.inner_outputs, dict(zip(op.inner_inputs[:ns + nst], [*xs, *hs])))
        cotangents = [g + c for g, c in zip(gs[:nst], carries)] + list(gs[nst:])
        cost = None
        for o, cot in zip(outs, cotangents):
            if o.dtype not in ("float32", "float64"):
                continue
            term = (o * cot).sum()      # its gradient in the step's inputs is the product with cot;
            # in cot it is o: the gradient of this backwards scan (a Hessian-vector product, the
            # R-operator) flows on through the cotangents it carries
            cost = term if cost is None else cost + term
        wrt = [xs[k] for k in float_seqs] + list(hs) + [rest_in[k] for k in float_rest]
        if cost is None:
            grads = [tm.zeros_like(w) for w in wrt]
        else:
            grads = gradient.grad(cost, wrt, disconnected_inputs="ignore")
        grads = clone_replace(grads, dict(zip(rest_in, ws)))
        dxs = grads[:len(float_seqs)]
        dhs = grads[len(float_seqs):len(float_seqs) + nst]
        dws = grads[len(float_seqs) + nst:]
        new_sums = [s + d for s, d in zip(sums, dws)]
        return [*[tm.cast(d, h.dtype) for d, h in zip(dhs, hs)], *new_sums, *dxs]

    n_back = len(inits) + len(float_rest)
    back, _ = _scan(back_step, sequences=[*iter_seqs, *prev, *grads_out],
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
    # the values after the last backward step: the sum of the last entry, zeros when no step ran
    result += [tm.cast(c[-1:].sum(axis=0), c.dtype) for c in carried]
    for k, v in enumerate(rest):
        last = summed[float_rest.index(k)][-1:].sum(axis=0) if k in float_rest else None
        result.append(None if last is None else tm.cast(last, v.dtype))
    return result
