"""Scans as C loops: the plan of a scan's step function, merged into the plan of the function that
runs it (its arrays numbered after the function's, its kernels renamed), as one ScanStep."""

from __future__ import annotations

from dataclasses import replace

from .lower import HostStep, Kernel, Plan, ScanStep, lower


def step_plan(op) -> Plan:
    """The Plan of a scan's step function (its graph optimized as a function's), kept on the op:
    the step never changes, and every function using the scan lowers it once."""
    plan = getattr(op, "_step_plan", None)
    if plan is None:
        from ..config import config
        from ..graph import FunctionGraph
        from ..rewrite import optimize

        fgraph = FunctionGraph(op.inner_inputs, op.inner_outputs)
        optimize(fgraph, config.optimizer)
        plan = op._step_plan = lower(fgraph)
    return plan


def _loop_ready(plan: Plan) -> bool:
    """A step runs inside a C loop when its plan is one C segment (no host step)."""
    from .entry import plan_entry

    entry = plan_entry(plan)
    return len(entry.order) == 1 and entry.order[0][0] == "segment"


def _shifted_dims(dims, base: int) -> tuple:
    """Lengths ('dim', array, d) or 1 of an array of a step's plan, its arrays numbered from `base`."""
    return tuple(("dim", d[1] + base, d[2]) if isinstance(d, tuple) else d for d in dims)


def _shifted(step, base: int, prefix: str):
    """`step` of a step function's plan, its arrays numbered from `base`, its names under `prefix`."""
    def at(pairs):
        return {k + base: v + base for k, v in pairs.items()}

    if isinstance(step, Kernel):
        return replace(step, leaves=[replace(leaf, arg=leaf.arg + base) for leaf in step.leaves],
                       stores=[(a + base, v) for a, v in step.stores], inplace=at(step.inplace),
                       sources=tuple((s[0] + base, s[1]) if s else None for s in step.sources),
                       name=prefix + step.name[3:])
    moved = dict(inputs=[i + base for i in step.inputs], outputs=[o + base for o in step.outputs],
                 inplace=at(step.inplace))
    if isinstance(step, ScanStep):
        moved.update(steps=[_shifted(s, base, prefix) for s in step.steps], name=prefix + step.name[3:],
                     inner_inputs=[i + base for i in step.inner_inputs],
                     inner_outputs=[o + base for o in step.inner_outputs],
                     out_dims=[_shifted_dims(dims, base) for dims in step.out_dims],
                     consts=[c + base for c in step.consts])
    return replace(step, **moved)


def as_loop(lowering, host: HostStep):
    """Replace the scan's host step (the last of `lowering`'s steps) by a C loop when its step
    function has a C form: the step's arrays join the call's (after them), its kernels are renamed
    gc_scan<k>_..."""
    from .entry import plan_entry

    inner = step_plan(host.node.op)
    if not _loop_ready(inner):
        return
    base, prefix = len(lowering.args), f"gc_scan{lowering.n_loops}_"
    lowering.n_loops += 1
    for a in inner.args:          # the step's inputs and results are rows the loop points
        lowering.args.append(replace(a, role=a.role if a.role in ("const", "temp") else "inner"))
    lowering.constants.extend(inner.constants)
    shapes = plan_entry(inner).shapes
    out_dims = [_shifted_dims(shapes[o], base) for o in inner.output_args]
    lowering.steps[-1] = ScanStep(
        host.node, host.inputs, host.outputs, steps=[_shifted(s, base, prefix) for s in inner.steps],
        name=prefix[:-1], inner_inputs=[base + k for k in range(len(host.node.op.inner_inputs))],
        inner_outputs=[base + o for o in inner.output_args], out_dims=out_dims,
        consts=[base + k for k, a in enumerate(inner.args) if a.role == "const"])
