"""The CUDA renderer: the C renderer's kernel contexts (c.py) plus what the GPU templates add.

Backend differences are data. A kernel gets the same parameters, loads and statements as its
C twin (statements use the op table's `cuda` overrides where a row has them); the templates in
templates/cuda/ add the grid-stride loops, the unflattening of a flat index into loop indices
for strided or broadcast leaves, and block reductions with warp shuffles. The C kernels check
shapes and return an error code; CUDA kernels cannot, so the same checks (the ShapeError list)
run on the host before each launch (gencomp/runtime_cuda.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import dtypes
from . import render
from .c import _accumulator, comment_text, elementwise_context, operand_text, reduce_context
from .lower import Plan, compute_dtypes

BLOCK = 256      # threads per block of every kernel; the runtime launches with it
UNROLL = 4       # loads each thread has in flight in the contiguous paths (memory-level parallelism)


class CudaUnsupportedError(NotImplementedError):
    """The graph uses something the CUDA backend cannot generate yet (complex numbers)."""


@dataclass(frozen=True)
class CudaModule:
    source: str
    errors: list          # ShapeError by check index, all kernels
    kernels: list         # kernel (step) names, in plan order
    checks: list          # per kernel: [first, end) range into `errors`
    declarations: list    # one line per __global__ function, for meta.json and `gencomp cache show`


def _check_supported(plan: Plan) -> None:
    complex_args = [a.label for a in plan.args if dtypes.is_complex(a.dtype)]
    stmts = [s for k in plan.kernels for s in k.stmts if any(dtypes.is_complex(d) for d in compute_dtypes(s))]
    if complex_args or stmts:
        what = ", ".join(complex_args) if complex_args else stmts[0].comment
        raise CudaUnsupportedError(f"device='cuda' does not support complex numbers yet ({what}); "
                                   f"use device='cpu' for this function")


def unflatten(dims, index: str, rest: str, used) -> list:
    """C statements giving the loop indices i<d> (d in `used`) from the row-major flat `index` over `dims`."""
    needed = [d for d in dims if d in used]
    if not needed:
        return []
    lines = [f"int64_t {rest} = {index};"]
    inner_to_outer = list(reversed(dims))
    outermost_needed = needed[0]
    for d in inner_to_outer:
        last = d == dims[0]
        if d in used:
            lines.append(f"const int64_t i{d} = {rest};" if last else f"const int64_t i{d} = {rest} % n{d};")
        if d == outermost_needed:
            break
        lines.append(f"{rest} /= n{d};")
    return lines


def _used_dims(kernel) -> set:
    return {d for leaf in kernel.leaves for d, a in enumerate(leaf.axes) if a is not None}


def _launch_fields() -> dict:
    return dict(block=BLOCK, warps=BLOCK // 32, unroll=UNROLL)


def elementwise_cuda_context(plan, kernel, errors) -> dict:
    ctx = elementwise_context(plan, kernel, errors, backend="cuda")
    ctx.update(_launch_fields(),
               unflatten=unflatten(list(range(kernel.ndim)), "o", "rest", _used_dims(kernel)))
    return ctx


def reduce_cuda_context(plan, kernel, errors) -> dict:
    ctx = reduce_context(plan, kernel, errors, backend="cuda")
    row, axes = kernel.reduce.row, kernel.reduce.axes
    (out_index, value), = kernel.stores
    out = plan.args[out_index]
    acc_dtype = _accumulator(row, out.dtype)
    acc_ctype, out_ctype = dtypes.ctype(acc_dtype), dtypes.ctype(out.dtype)
    combine = next(expr for kinds, expr in row.combine.items() if dtypes.kind(acc_dtype) in kinds)
    if row.mean:
        finish = f"({out_ctype})(acc / ({acc_ctype})r)"
    elif acc_dtype != out.dtype:
        finish = f"({out_ctype})acc"
    else:
        finish = "acc"
    used = _used_dims(kernel)
    kept = [d for d in range(kernel.ndim) if d not in axes]
    ctx.update(_launch_fields(), finish=finish,
               combine_val=combine.format(acc="acc", x=operand_text(value, acc_dtype)),
               combine_other=combine.format(acc="acc", x="other"),
               unflatten_kept=unflatten(kept, "j", "rj", used),
               unflatten_reduced=unflatten(list(axes), "t", "rt", used))
    return ctx


def render_module(plan: Plan, key: str, name: str, graph_lines: list) -> CudaModule:
    """The .cu source of `plan` and what the runtime needs to launch and check its kernels."""
    _check_supported(plan)
    errors, texts, checks, decls = [], [], [], []
    for kernel in plan.kernels:
        first = len(errors)
        if kernel.reduce is None:
            ctx = elementwise_cuda_context(plan, kernel, errors)
            texts.append(render("cuda/elementwise.cu.j2", k=ctx).rstrip("\n"))
            signatures = [(ctx["name"], ctx["params"])]
        else:
            ctx = reduce_cuda_context(plan, kernel, errors)
            texts.append(render("cuda/reduce.cu.j2", k=ctx).rstrip("\n"))
            texts.append(render("cuda/reduce_serial.cu.j2", k=ctx).rstrip("\n"))
            out_raw = ctx["out"].raw
            signatures = [(ctx["name"], [*ctx["params"], "void *part_raw"]),
                          (ctx["name"] + "_finish", ["const void *part_raw", f"void *{out_raw}", "int64_t m",
                                                     "int64_t splits", "int64_t r"]),
                          (ctx["name"] + "_serial", ctx["params"])]
        checks.append([first, len(errors)])
        decls += [f'extern "C" __global__ void {n}({", ".join(p)});' for n, p in signatures]
    source = render("cuda/module.cu.j2", key12=key[:12], name=comment_text(name),
                    graph_lines=[comment_text(line) for line in graph_lines], kernels=texts)
    return CudaModule(source, errors, [k.name for k in plan.kernels], checks, decls)
