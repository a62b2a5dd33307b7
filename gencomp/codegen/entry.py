"""The entry points of a compiled function: its Plan as C segments that run every step in order.

A segment is one exported C function (gc_run_0, gc_run_1, ...): it takes the arrays that
Python holds (inputs, constants, results of host steps) and the outputs Python allocated, then
runs its steps as one commented call each: kernels, BLAS products, views, shape reads. Only a
node whose op has no C form (`Op.lowering` gives 'host') ends a segment: Python runs its numpy
`perform` and calls the next segment. Every array of a call has a row in a frame (gc_frame):
data pointer, lengths, byte strides; temporaries keep their buffers in the frame from call to call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from .lower import Kernel, Plan, ScanStep


@dataclass(frozen=True)
class NodeCheck:
    """A failed check of an op run inside the entry point (e.g. dot's alignment): the runtime
    raises the op's own message by running its `perform` on the arrays of step `step`."""

    step: int


@dataclass
class Segment:
    name: str
    steps: list = field(default_factory=list)     # indices into plan.steps
    passed: list = field(default_factory=list)    # args Python passes (first read here, held by Python)
    allocated: list = field(default_factory=list)  # outputs written here, allocated by Python
    copied: list = field(default_factory=list)     # outputs whose lengths C finds: Python copies them

    @property
    def body(self) -> str:
        """The exported function running the steps on a frame whose rows the caller filled."""
        return self.name.replace("gc_run_", "gc_body_")


@dataclass
class Entry:
    """What the runtime needs: the segments and host steps in order, and every shape Python computes."""

    order: list          # ('segment', Segment) or ('host', step index), in run order
    shapes: dict         # arg -> tuple of dims: ('dim', arg, d) of an array Python holds, 1, or
                         # None (known only once C computed it: arange)
    wrapped: set         # args computed in C that a host step reads (Python views them in the frame)
    maxnd: int           # dimensions of a frame row (C's GC_MAXND; Python reads rows of 1 + 2 * maxnd)


def lowering(step) -> str:
    """The step family: 'kernel', 'scan' (a C loop), or the node's `Op.lowering` ('host' when it
    has no C form, or is a scan whose step has none)."""
    if isinstance(step, Kernel):
        return "kernel"
    if isinstance(step, ScanStep):
        return "scan"
    family = step.node.op.lowering(step.node)
    return "host" if family == "scan" else family


def plan_entry(plan: Plan) -> Entry:
    order, shapes, held, segment, wrapped, passed = [], {}, set(), None, set(), set()
    for k, a in enumerate(plan.args):
        if a.role in ("input", "const"):
            held.add(k)
            shapes[k] = tuple(("dim", k, d) for d in range(len(a.broadcastable)))
    for index, step in enumerate(plan.steps):
        family = lowering(step)
        if family == "host":
            segment = None
            wrapped |= {i for i in step.inputs if i not in held}
            for out in step.outputs:
                held.add(out)
                shapes[out] = tuple(("dim", out, d) for d in range(len(plan.args[out].broadcastable)))
            order.append(("host", index))
            continue
        if segment is None:
            segment = Segment(f"gc_run_{sum(1 for kind, _ in order if kind == 'segment')}")
            order.append(("segment", segment))
        segment.steps.append(index)
        reads = {leaf.arg for leaf in step.leaves} if isinstance(step, Kernel) else set(step.inputs)
        if isinstance(step, ScanStep):
            reads |= set(step.consts)
        for arg in sorted(reads & held - passed):      # its frame row stays set for later segments
            segment.passed.append(arg)
            passed.add(arg)
        for out in _written(step):
            shapes[out] = _shape(plan, step, family, out, shapes)
            if plan.args[out].role == "output":
                (segment.allocated if None not in shapes[out] else segment.copied).append(out)
    for kind, seg in order:
        if kind == "segment":
            seg.passed.sort()
    return Entry(order, shapes, wrapped, max([1] + [len(a.broadcastable) for a in plan.args]))


def _written(step) -> list:
    return [a for a, _ in step.stores] if isinstance(step, Kernel) else list(step.outputs)


def _shape(plan, step, family, out, shapes) -> tuple:
    """The lengths of `out` as Python computes them before the segment (the C code sets the same)."""
    def dim(arg, d):
        return shapes[arg][d]

    if family == "kernel":
        return tuple(dim(*step.sources[d]) if step.sources[d] is not None else 1 for d in step.out_dims())
    x = step.inputs
    if family == "dimshuffle":
        return tuple(1 if d == "x" else dim(x[0], d) for d in step.node.op.new_order)
    if family in ("rebroadcast", "specify_shape", "leading_length"):
        return shapes[x[0]]
    if family in ("shape_i", "checked_length"):
        return ()
    if family == "blas":
        if len(x) == 3:                       # Gemm: C + alpha * dot(A, B)
            return dim(x[1], 0), dim(x[2], 1)
        nd = [len(plan.args[i].broadcastable) for i in x]
        return ((dim(x[0], 0),) if nd[0] == 2 else ()) + ((dim(x[1], 1),) if nd[1] == 2 else ())
    if family == "arange":
        return (None,)
    if family == "scan":                       # the number of steps is a value: C finds the lengths
        return (None,) * len(plan.args[out].broadcastable)
    if family == "gather":                     # (length of the index vectors, dimension left)
        vectors, x_nd = x[1:], len(plan.args[x[0]].broadcastable)
        first = dim(vectors[0], 0) if len(vectors) == 1 else None
        return (first,) + ((dim(x[0], x_nd - 1),) if x_nd > len(vectors) else ())
    if family in ("scatter", "inc_subtensor"):
        return shapes[x[0]]
    if family in ("shape", "reshape", "alloc"):      # lengths read from values: C finds them
        return (None,) * len(plan.args[out].broadcastable)
    if family == "join":
        axis = step.node.op.axis
        return tuple(None if d == axis else dim(x[0], d) for d in range(len(plan.args[out].broadcastable)))
    if family == "subtensor":                  # a dimension sliced whole keeps its length
        spec, x_nd = step.node.op.spec, len(plan.args[x[0]].broadcastable)
        return tuple([dim(x[0], d) if item[1:] == (None, None, None) else None
                      for d, item in enumerate(spec) if item[0] == "slice"]
                     + [dim(x[0], d) for d in range(len(spec), x_nd)])
    if family == "conv2d":                     # rows and columns: C computes them
        return dim(x[0], 0), dim(x[1], 0), None, None
    if family == "pool2d":
        return dim(x[0], 0), dim(x[0], 1), None, None
    if family == "conv2d_grad":
        return shapes[x[0]] if step.node.op.wrt == "input" else shapes[x[1]]
    if family == "pool2d_grad":
        return shapes[x[0]]
    raise ValueError(f"no C form for step family {family!r}")


# ---------------------------------------------------------------- rendering (templates/c/entry.c.j2)

def entry_context(plan: Plan, entry: Entry, kernel_calls: dict, errors: list, comment) -> dict:
    """The context of entry.c.j2. `kernel_calls`: kernel name -> its call's argument list."""
    segments, bodies = [], []       # bodies: the step functions of scan loops, innermost first
    for kind, seg in entry.order:
        if kind != "segment":
            continue
        params, sets = ["gc_frame *f"], []
        for arg in seg.passed:
            nd = len(plan.args[arg].broadcastable)
            params += [f"const void *p{arg}", *(f"int64_t p{arg}_n{d}" for d in range(nd)),
                       *(f"int64_t p{arg}_s{d}" for d in range(nd))]
            sets.append(dict(arg=arg, nd=nd, label=comment(plan.args[arg].label)))
        params += [f"void *o{arg}" for arg in seg.allocated]
        steps = [_step_context(plan, index, plan.steps[index], seg, kernel_calls, errors, comment, bodies)
                 for index in seg.steps]
        segments.append(dict(name=seg.name, body=seg.body, params=params,
                             sets=sets, steps=steps, allocated=seg.allocated,
                             labels={arg: comment(plan.args[arg].label) for arg in seg.allocated}))
    every = [s for part in (*segments, *bodies) for s in part["steps"]]

    def types(*families):
        return sorted({s["ctype"] for s in every if s["family"] in families})

    conv_types, pool_types = types("conv2d", "conv2d_grad"), types("pool2d", "pool2d_grad")
    blas_types = sorted(set(types("blas")) | set(conv_types))      # convolutions call gemm
    places = [p for s in every for p in s.get("places", [s.get("place")]) if p]
    helpers = {"given" if p["given"] else "temp" if p["alias"] is None else "reuse" for p in places}
    if "reuse" in helpers:
        helpers.add("temp")
    if helpers:
        helpers.add("contiguous")
    if any(s["family"] in ("scatter", "inc_subtensor") or s["family"] == "scan" and not
           all(o["direct"] for o in s["outs"]) for s in every):
        helpers.add("copy")
    if any(s.get("slices") for s in every):
        helpers.add("slice")
    updates = sorted({(s["dtype"], dtypes.ctype(s["dtype"])) for s in every
                      if s["family"] in ("inc_subtensor", "alloc", "join")})
    if any(s["family"] == "reshape" for s in every):
        helpers |= {"contiguous", "temp", "copy"}
    return dict(segments=segments, bodies=bodies, nargs=max(1, len(plan.args)), helpers=sorted(helpers),
                update_types=updates,
                maxnd=entry.maxnd, blas_types=blas_types, conv_types=conv_types, pool_types=pool_types)


def _place(plan, out, step_inplace, seg) -> dict:
    """Where the result `out` goes: a Python-allocated output, another temp's buffer, or the frame's."""
    arg = plan.args[out]
    return dict(arg=out, nd=len(arg.broadcastable), item=np.dtype(arg.dtype).itemsize,
                given=out in seg.allocated, alias=step_inplace.get(out) if arg.role == "temp" else None)


_IMAGES = ("conv2d", "conv2d_grad", "pool2d", "pool2d_grad")
_PLACED = ("shape_i", "checked_length", "shape", "blas", "arange", "gather", "scatter", "inc_subtensor", "alloc", "join",
           *_IMAGES)                                                                # they allocate their result
_CHECKED = ("checked_length", "blas", "rebroadcast", "specify_shape", "leading_length", "arange", "gather", "scatter", "subtensor", "inc_subtensor", "reshape",
            "alloc", "join", *_IMAGES)                                              # ... check their inputs


def _step_comment(plan, out, what, reads) -> str:
    """a[7] = gc_elemwise_0(a[3], a[6]): intermediate Elemwise{tanh}"""
    return f"a[{out}] = {what}({', '.join(f'a[{i}]' for i in reads)}): {plan.args[out].label}"


def _step_context(plan, index, step, seg, kernel_calls, errors, comment, bodies) -> dict:
    family = lowering(step)
    if family == "scan":
        return _loop_context(plan, index, step, kernel_calls, errors, comment, bodies)
    if family == "kernel":
        dims = [step.sources[d] for d in step.out_dims()]
        places = [_place(plan, a, step.inplace, seg) for a, _ in step.stores]
        reads = list(dict.fromkeys(leaf.arg for leaf in step.leaves))
        text = "; ".join(_step_comment(plan, a, step.name, reads) for a, _ in step.stores)
        return dict(family=family, comment=comment(text), places=places,
                    dims=[f"a[{s[0]}].n[{s[1]}]" if s else "1" for s in dims],
                    call=f"{step.name}({', '.join(kernel_calls[step.name])})")
    node, x, (out,) = step.node, step.inputs, step.outputs
    ctx = dict(family=family, comment=comment(_step_comment(plan, out, str(node.op), x)), x=x, out=out,
               place=_place(plan, out, step.inplace, seg) if family in _PLACED else None)
    if family in _CHECKED:
        errors.append(NodeCheck(index))
        ctx["code"] = len(errors)
    if family == "dimshuffle":
        ctx["dims"] = [("x", None) if d == "x" else (x[0], d) for d in node.op.new_order]
    elif family == "rebroadcast":
        ctx["ones"] = [d for d, b in enumerate(node.op.pattern) if b and not plan.args[x[0]].broadcastable[d]]
    elif family == "shape_i":
        ctx["axes"] = list(node.op.axes)
    elif family == "checked_length":
        ctx["groups"] = [([(x[i], d) for i, d in pairs], one) for pairs, one in node.op.groups]
    elif family == "leading_length":
        ctx["need"] = node.op.need
    elif family == "specify_shape":
        entries = iter(x[1:])
        ctx["checks"] = [(d, next(entries), dtypes.ctype(plan.args[x[1 + k]].dtype))
                         for k, d in enumerate(d for d, g in enumerate(node.op.given) if g)]
    elif family == "arange":
        ctx.update(ctype=dtypes.ctype(plan.args[out].dtype), bounds=[(i, dtypes.ctype(plan.args[i].dtype)) for i in x])
    elif family in ("gather", "scatter"):
        vectors = x[1:] if family == "gather" else x[2:]
        x_nd = len(plan.args[x[0]].broadcastable)
        ctx.update(ctype=dtypes.ctype(plan.args[out].dtype), src=x[0], rest=x_nd > len(vectors), k=len(vectors),
                   vectors=[(j, dtypes.ctype(plan.args[j].dtype)) for j in vectors], x_nd=x_nd)
        if family == "scatter":
            y_nd = len(plan.args[x[1]].broadcastable)
            target = ["len"] + (["a[%d].n[%d]" % (x[0], x_nd - 1)] if ctx["rest"] else [])
            # y's dimensions line up with (index length, dimension left) from the right
            ctx.update(y=x[1], set=node.op.set_instead, item=np.dtype(plan.args[out].dtype).itemsize,
                       y_dims=list(zip(range(y_nd), target[len(target) - y_nd:])),
                       y_stride_i="ys0" if y_nd == len(target) else "0",
                       y_stride_r=f"ys{y_nd - 1}" if ctx["rest"] and y_nd >= 1 else "0")
    elif family in ("subtensor", "inc_subtensor"):
        ctx.update(_view_context(plan, node.op.spec, x[0], x[1:] if family == "subtensor" else x[2:]))
        if family == "inc_subtensor":
            y_nd, dtype = len(plan.args[x[1]].broadcastable), plan.args[out].dtype
            ctx.update(y=x[1], set=int(node.op.set_instead), item=np.dtype(dtype).itemsize, dtype=dtype,
                       lead=ctx["v_nd"] - y_nd, x_nd=len(plan.args[out].broadcastable))
    elif family in ("shape", "reshape", "alloc", "join"):
        dtype = plan.args[out].dtype
        ctx.update(nd=len(plan.args[out].broadcastable), x_nd=len(plan.args[x[0]].broadcastable), dtype=dtype,
                   item=np.dtype(dtype).itemsize)
        if family == "reshape":
            ctx["shape_ctype"] = dtypes.ctype(plan.args[x[1]].dtype)
        elif family == "alloc":
            ctx.update(lengths=[(j, dtypes.ctype(plan.args[j].dtype)) for j in x[1:]], lead=ctx["nd"] - ctx["x_nd"])
        elif family == "join":
            ctx["axis"] = node.op.axis
    elif family in _IMAGES:
        op = node.op.conv if family == "conv2d_grad" else node.op.pool if family == "pool2d_grad" else node.op
        ctx.update(ctype=dtypes.ctype(plan.args[out].dtype), p=op.c_params(),
                   which=0 if family == "conv2d" else 1 if getattr(node.op, "wrt", "") == "input" else 2)
        ctx["fn"] = "gc_" + ("s" if ctx["ctype"] == "float" else "d") + family.replace("_grad", "")
    elif family == "blas":
        ctype = dtypes.ctype(plan.args[out].dtype)
        nd = [len(plan.args[i].broadcastable) for i in x]
        if len(x) == 3:                    # Gemm
            ctx.update(gemm=True, alpha=repr(node.op.alpha), beta=repr(node.op.beta),
                       c_bcast=list(plan.args[x[0]].broadcastable), a_nd=2, b_nd=2, a=x[1], b=x[2])
        else:
            ctx.update(gemm=False, alpha="1.0", beta="0.0", a_nd=nd[0], b_nd=nd[1], a=x[0], b=x[1])
        ctx.update(ctype=ctype, fn="gc_product_" + ("s" if ctype == "float" else "d"),
                   dims=([f"a[{ctx['a']}].n[0]"] if ctx["a_nd"] == 2 else [])
                   + ([f"a[{ctx['b']}].n[1]"] if ctx["b_nd"] == 2 else []))
    return ctx


def _loop_context(plan, index, step, kernel_calls, errors, comment, bodies) -> dict:
    """A scan as a C loop: its step function's body (added to `bodies`), and what the loop sets
    before each step (the sequences' slices, the states) and after it (the new states)."""
    op, x, ii = step.node.op, step.inputs, step.inner_inputs
    ns, nst = op.n_seqs, op.n_states
    until = step.inner_outputs[-1] if len(step.inner_outputs) > len(step.outputs) else None
    stacked = step.inner_outputs[:len(step.outputs)]
    direct = [row for k, row in enumerate(stacked) if None not in step.out_dims[k]]
    inner = Segment(f"{step.name}_step", allocated=direct)   # these results go straight into the stacks
    steps = [_step_context(plan, index, s, inner, kernel_calls, errors, comment, bodies) for s in step.steps]
    bodies.append(dict(body=inner.name, steps=steps,
                       comment=comment(f"the step function of {op}, run by {step.name}'s loop")))
    errors.append(NodeCheck(index))        # any failure inside: the node's perform explains it

    def nd(arg):
        return len(plan.args[arg].broadcastable)

    outs = []
    for k, (out, row) in enumerate(zip(step.outputs, stacked)):
        dims = [f"a[{d[1]}].n[{d[2]}]" if isinstance(d, tuple) else str(d) for d in step.out_dims[k]]
        outs.append(dict(arg=out, inner=row, nd=nd(row), dims=dims, init=x[1 + ns + k] if k < nst else None,
                         direct=row in direct, ring=op.ring_rows(k),
                         place=dict(arg=out, nd=nd(out), item=np.dtype(plan.args[out].dtype).itemsize,
                                    given=False, alias=None)))
    fixed = [dict(inner=ii[k], outer=x[1 + k]) for k in range(ns, len(ii))]   # first states, non-sequences
    return dict(family="scan", comment=comment(_step_comment(plan, step.outputs[0], str(op), x)), code=len(errors),
                n=x[0], body=inner.name, backwards=op.go_backwards, outs=outs, fixed=fixed,
                places=[o["place"] for o in outs],
                seqs=[dict(outer=x[1 + k], inner=ii[k], nd=nd(ii[k])) for k in range(ns)],
                states=[dict(inner=ii[ns + k], out=step.outputs[k], nd=nd(ii[ns + k]), ring=op.ring_rows(k))
                        for k in range(nst)],
                until=until, until_ctype=dtypes.ctype(plan.args[until].dtype) if until is not None else None)


def _view_context(plan, spec, x, index_args) -> dict:
    """How the view x[spec] (ints and slices) is computed in C: one item per dimension of x."""
    def bound(entry, default):
        """(C flag 'given', C value) of a slice bound or index: a literal or a scalar input."""
        if entry is None:
            return "0", default
        if isinstance(entry, tuple):
            arg = index_args[entry[1]]
            return "1", f"(int64_t)*(const {dtypes.ctype(plan.args[arg].dtype)} *)a[{arg}].data"
        return "1", str(max(-2**62, min(2**62, int(entry))))

    items, out = [], 0
    for d, item in enumerate(spec):
        if item[0] == "int":
            items.append(dict(kind="int", dim=d, value=bound(item[1], "0")[1]))
            continue
        start, stop = bound(item[1], "0"), bound(item[2], "0")
        items.append(dict(kind="slice", dim=d, out=out, start=", ".join(start), stop=", ".join(stop),
                          step=bound(item[3], "1")[1]))
        out += 1
    for d in range(len(spec), len(plan.args[x].broadcastable)):
        items.append(dict(kind="keep", dim=d, out=out))
        out += 1
    return dict(parts=items, v_nd=out, ints=any(i["kind"] == "int" for i in items),
                slices=any(i["kind"] == "slice" for i in items))
