"""The CUDA renderer: the C renderer's kernel contexts (c.py) plus what the GPU templates add.

Backend differences are data. A kernel gets the same parameters, loads and statements as its
C twin (statements use the op table's `cuda` overrides where a row has them); the templates in
templates/cuda/ add the grid-stride loops, the unflattening of a flat index into loop indices
for strided or broadcast leaves, and block reductions with warp shuffles. The C kernels check
shapes and return an error code; CUDA kernels cannot, so the same checks (the ShapeError list)
run on the host before each launch (gencomp/runtime_cuda.py).

Host steps are chosen by their family (step_family: what each op says of how it lowers), never by
op class: gpu_product, gpu_indexing, gpu_join, gpu_inc, gpu_image and gpu_scan say which ones the
GPU runs and what kernels they need; the runtime then only handles arguments and launches.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import dtypes
from . import render
from ..tensor.reduce import Reduce
from .c import (_accumulator, arg_better, argreduce_context, comment_text, elementwise_context,
                operand_text, reduce_context)
from .lower import HostStep, Plan, compute_dtypes, error_records

BLOCK = 256      # threads per block of every kernel; the runtime launches with it
UNROLL = 4       # loads each thread has in flight in the contiguous paths (memory-level parallelism)
# matrix products: outputs per block (rows, columns), depth of a shared-memory stage, outputs per thread
GEMM = dict(tile_m=64, tile_n=64, tile_k=16, per_thread_m=4, per_thread_n=4)


class CudaUnsupportedError(NotImplementedError):
    """The graph uses something the CUDA backend cannot generate yet (complex numbers)."""


@dataclass(frozen=True)
class CudaModule:
    source: str
    errors: list          # ShapeError by check index, all kernels
    kernels: list         # kernel (step) names, in plan order
    checks: list          # per kernel: [first, end) range into `errors`
    declarations: list    # one line per __global__ function, for meta.json and `gencomp cache show`

    def meta(self) -> dict:
        """What meta.json records of the module besides how it was compiled."""
        return {"signature": "\n".join(self.declarations), "errors": error_records(self.errors),
                "kernels": self.kernels, "checks": self.checks}


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


def _error_param(ctx) -> list:
    """A kernel whose helpers can fail reports the failure's code through one more pointer."""
    ctx.setdefault("error_code", 0)
    return ["int *gc_error"] if ctx["error_code"] else []


def elementwise_cuda_context(plan, kernel, errors) -> dict:
    ctx = elementwise_context(plan, kernel, errors, backend="cuda")
    ctx.update(_launch_fields(), main_params=ctx["params"] + _error_param(ctx),
               unflatten=unflatten(list(range(kernel.ndim)), "o", "gc_rest", _used_dims(kernel)))
    return ctx


def _loop_fields(kernel, ctx, parts, finish) -> dict:
    """Launch constants, parameter lists, and the unflattening of results (j) and elements (t)."""
    axes = kernel.reduce.reduced_axes(kernel.ndim)
    used = _used_dims(kernel)
    kept = [d for d in range(kernel.ndim) if d not in axes]
    out = f"void *{ctx['out'].raw}"
    return dict(_launch_fields(), unflatten_kept=unflatten(kept, "j", "gc_rj", used),
                unflatten_reduced=unflatten(list(axes), "gc_t", "gc_rt", used),
                main_params=[*ctx["params"], *(f"void *{p}" for p in parts), *_error_param(ctx)],
                finish_params=[*(f"const void *{p}" for p in parts), out, "int64_t m", "int64_t splits", *finish],
                serial_params=ctx["params"] + _error_param(ctx))


def reduce_cuda_context(plan, kernel, errors) -> dict:
    ctx = reduce_context(plan, kernel, errors, backend="cuda")
    row = kernel.reduce.row
    (out_index, value), = kernel.stores
    out = plan.args[out_index]
    acc_dtype = _accumulator(row, out.dtype)
    acc_ctype, out_ctype = dtypes.ctype(acc_dtype), dtypes.ctype(out.dtype)
    combine = next(expr for kinds, expr in row.combine.items() if dtypes.kind(acc_dtype) in kinds)
    if row.mean:
        finish = f"({out_ctype})(gc_acc / ({acc_ctype})r)"
    elif acc_dtype != out.dtype:
        finish = f"({out_ctype})gc_acc"
    else:
        finish = "gc_acc"
    ctx.update(_loop_fields(kernel, ctx, ["part_raw"], ["int64_t r"]), finish=finish,
               combine_val=combine.format(acc="gc_acc", x=operand_text(value, acc_dtype)),
               combine_other=combine.format(acc="gc_acc", x="gc_other"))
    return ctx


def argreduce_cuda_context(plan, kernel, errors) -> dict:
    ctx = argreduce_context(plan, kernel, errors, backend="cuda")
    dtype, nd = kernel.stores[0][1][2], kernel.ndim
    ctx.update(_loop_fields(kernel, ctx, ["part_raw", "part_index_raw"], []),
               flat=nd > 0 and len(kernel.reduce.reduced_axes(nd)) == nd,
               take=arg_better(kernel.reduce.kind, dtype, "gc_v", "gc_p", "gc_bv", "gc_bp"))
    return ctx


def step_family(step) -> str:
    """A host step's family, as the GPU sees it: the op's `family(node)` where it has one, else its
    `lowering(node)` (codegen/entry.py); 'host': numpy on the host.

    `family` is the form itself, for the few ops whose C lowering also depends on what only the C
    side lacks or limits (no CBLAS: dot, gemm and conv2d run numpy on the host; the C templates
    take 4-d pools and gathers leaving one dimension). The GPU runs those forms regardless."""
    op = step.node.op
    family = getattr(op, "family", None)
    return family(step.node) if family is not None else op.lowering(step.node)


def gpu_product(step, args) -> str | None:
    """The dtype of a product the gemm kernel computes (family 'blas': float vectors and matrices of
    one dtype; batched, integer and mixed-dtype products are 'host'), else None."""
    return args[step.outputs[0]].dtype if step_family(step) == "blas" else None


def gpu_indexing(step, args) -> tuple | None:
    """('take' | 'add', dtype, trailing dims) when an integer-array indexing step (family 'gather':
    x[i, j] with 1-d index arrays on the leading dims, or 'scatter': its inc_subtensor, of floats:
    the kernel adds atomically) runs on the GPU, else None."""
    family = step_family(step)
    if family == "gather":
        kind, first_index = "take", 1
    elif family == "scatter" and not step.node.op.set_instead:
        kind, first_index = "add", 2
    else:
        return None
    x = args[step.inputs[0]]
    if kind == "add" and x.dtype not in ("float32", "float64"):
        return None
    return kind, x.dtype, len(x.broadcastable) - len(step.inputs[first_index:])


def indexing_name(kind: str, dtype: str, position: int) -> str:
    return f"gc_{kind}_{dtype}_{position}"


def gpu_join(step, args) -> tuple | None:
    """(dtype, ndim) when a concatenation (family 'join') runs on the GPU (strided copies into the
    result), else None."""
    out = args[step.outputs[0]]
    if step_family(step) != "join" or not out.broadcastable:
        return None
    return out.dtype, len(out.broadcastable)


def gpu_inc(step, args) -> tuple | None:
    """(dtype, x's ndim, the view's ndim) when inc_subtensor / set_subtensor of a basic index (family
    'inc_subtensor': ints and slices) runs on the GPU: x copied, then y (broadcast) added or written
    into the view of the copy by the strided copy kernels (a 0-d view is seen as 1-d), else None."""
    if step_family(step) != "inc_subtensor":
        return None
    x = args[step.inputs[0]]
    ints = sum(item[0] == "int" for item in step.node.op.spec)
    return (x.dtype, len(x.broadcastable), max(1, len(x.broadcastable) - ints)) if x.broadcastable else None


def gpu_scan(step, args) -> bool | None:
    """True when a scan (family 'scan') runs its step on the GPU: the step compiled as a function of
    its own for device='cuda', called once per step by the runtime's loop (nothing to render here).
    None: a step with side effects (a random draw, a Print) runs as the op's numpy `perform`."""
    return True if step_family(step) == "scan" and not step.node.op.stateful else None


def copy_name(dtype: str, ndim: int, add: bool = False) -> str:
    return f"gc_{'accumulate' if add else 'copy'}_{dtype}_{ndim}"


def _copy_kernels(plan: Plan) -> set:
    """(dtype, ndim, add) of the strided copy kernels of the plan's joins and inc_subtensors."""
    found = set()
    for step in plan.steps:
        join = gpu_join(step, plan.args) if isinstance(step, HostStep) else None
        inc = gpu_inc(step, plan.args) if isinstance(step, HostStep) else None
        if join:
            found.add((*join, False))
        if inc:
            found |= {(inc[0], inc[1], False), (inc[0], inc[2], not step.node.op.set_instead)}
    return found


def gemm_name(dtype: str) -> str:
    return f"gc_gemm_{dtype}"


GEMM_PARAMS = ["int64_t m", "int64_t n", "int64_t k", "{t} alpha", "const void *a_raw", "int64_t a_s0",
               "int64_t a_s1", "const void *b_raw", "int64_t b_s0", "int64_t b_s1", "{t} beta", "void *c_raw",
               "int64_t c_s0", "int64_t c_s1"]


def gpu_image(step, args) -> tuple | None:
    """(kernel family, dtype) when a conv2d / pool_2d step or one of their gradients (families
    'conv2d', 'conv2d_grad', 'pool2d', 'pool2d_grad': float images of one dtype) runs as a GPU
    kernel of templates/cuda/conv.cu.j2, else None."""
    family = step_family(step)
    if family == "conv2d_grad":
        wrt = step.node.op.wrt
        family = f"conv2d_grad_{wrt}" if wrt in ("input", "filters") else None
    if family not in IMAGE_PARAMS:
        return None
    return family, args[step.outputs[0]].dtype


def image_name(family: str, dtype: str) -> str:
    return f"gc_{family}_{dtype}"


def _strided(*arrays) -> list:
    return [p for a in arrays for p in (f"const void *{a}_raw", *(f"int64_t {a}_s{d}" for d in range(4)))]


# the geometry of a convolution and of a pool, in the order the kernels take it (templates/cuda/conv.cu.j2)
CONV_GEOMETRY = ("n", "c", "h", "w", "k", "fh", "fw", "oh", "ow", "ph", "pw", "sh", "sw", "dh", "dw", "flip")
POOL_GEOMETRY = ("n", "c", "h", "w", "oh", "ow", "wh", "ww", "sh", "sw", "ph", "pw", "mode")
_CONV, _POOL = [f"int64_t {v}" for v in CONV_GEOMETRY], [f"int64_t {v}" for v in POOL_GEOMETRY]
IMAGE_PARAMS = {       # family -> kernel parameters: the arrays read (strided), the result, the geometry
    "conv2d": [*_strided("x", "w"), "void *out_raw", *_CONV],
    "conv2d_grad_input": [*_strided("w", "g"), "void *out_raw", *_CONV],
    "conv2d_grad_filters": [*_strided("x", "g"), "void *part_raw", *_CONV, "int64_t splits", "int64_t chunk"],
    "conv2d_grad_filters_finish": ["const void *part_raw", "void *out_raw", "int64_t size", "int64_t splits"],
    "pool2d": [*_strided("x"), "void *out_raw", *_POOL],
    "pool2d_grad": [*_strided("x", "y", "g"), "void *out_raw", *_POOL],
}


def _image_kernels(plan: Plan) -> tuple:
    """The conv.cu.j2 context of the image kernels `plan` uses (per dtype, only the families it has),
    and their (name, params)."""
    used = {found for s in plan.steps if isinstance(s, HostStep) for found in [gpu_image(s, plan.args)] if found}
    types, signatures = [], []
    for dtype in sorted({d for _, d in used}):
        kernels = []
        for family in IMAGE_PARAMS:
            base = family.removesuffix("_finish")
            if (base, dtype) in used:
                name = image_name(base, dtype) + family[len(base):]
                kernels.append(dict(family=family, name=name, params=IMAGE_PARAMS[family]))
                signatures.append((name, IMAGE_PARAMS[family]))
        types.append(dict(ctype=dtypes.ctype(dtype), kernels=kernels))
    return types, signatures


def _declarations(signatures) -> list:
    return [f'extern "C" __global__ void {n}({", ".join(p)});' for n, p in signatures]


def render_module(plan: Plan, key: str, name: str, graph_lines: list) -> CudaModule:
    """The .cu source of `plan` and what the runtime needs to launch and check its kernels."""
    _check_supported(plan)
    errors, texts, checks, decls = [], [], [], []
    for kernel in plan.kernels:
        first = len(errors)
        if kernel.reduce is None:
            ctx = elementwise_cuda_context(plan, kernel, errors)
            texts.append(render("cuda/elementwise.cu.j2", k=ctx).rstrip("\n"))
            signatures = [(ctx["name"], ctx["main_params"])]
        else:
            family = "reduce" if isinstance(kernel.reduce, Reduce) else "argreduce"
            context = reduce_cuda_context if family == "reduce" else argreduce_cuda_context
            ctx = context(plan, kernel, errors)
            texts.append(render(f"cuda/{family}.cu.j2", k=ctx).rstrip("\n"))
            texts.append(render(f"cuda/{family}_serial.cu.j2", k=ctx).rstrip("\n"))
            signatures = [(ctx["name"], ctx["main_params"]), (ctx["name"] + "_finish", ctx["finish_params"]),
                          (ctx["name"] + "_serial", ctx["serial_params"])]
        checks.append([first, len(errors)])
        decls += _declarations(signatures)
    for position, step in enumerate(plan.steps):
        found = gpu_indexing(step, plan.args) if isinstance(step, HostStep) else None
        if found:
            kind, dtype, trailing = found
            name = indexing_name(kind, dtype, position)
            texts.append(render("cuda/indexing.cu.j2", g=dict(name=name, ctype=dtypes.ctype(dtype), kind=kind,
                                                              trailing=trailing, block=BLOCK)).rstrip("\n"))
            params = [f"{'const ' if kind == 'take' else ''}void *x_raw"]
            params += [p for d in range(trailing) for p in (f"int64_t n{d}", f"int64_t s{d}")]
            params += ["const void *offsets_raw", "int64_t rows"]
            params += ["void *out_raw"] if kind == "take" else \
                ["const void *y_raw", "int64_t ys_row", *(f"int64_t ys{d}" for d in range(trailing))]
            decls += _declarations([(name, params)])
    for dtype, ndim, add in sorted(_copy_kernels(plan)):
        name = copy_name(dtype, ndim, add)
        texts.append(render("cuda/copy.cu.j2", g=dict(name=name, ctype=dtypes.ctype(dtype), ndim=ndim, add=add,
                                                      block=BLOCK)).rstrip("\n"))
        decls += _declarations([(name, ["const void *src_raw", "void *dst_raw",
                                        *(p for d in range(ndim) for p in (f"int64_t n{d}", f"int64_t ss{d}",
                                                                           f"int64_t ds{d}"))])])
    for dtype in sorted({d for s in plan.steps if isinstance(s, HostStep) for d in [gpu_product(s, plan.args)] if d}):
        ctype = dtypes.ctype(dtype)
        texts.append(render("cuda/gemm.cu.j2", g=dict(GEMM, name=gemm_name(dtype), ctype=ctype,
                                                      block=BLOCK)).rstrip("\n"))
        decls += _declarations([(gemm_name(dtype), [p.format(t=ctype) for p in GEMM_PARAMS])])
    image_types, signatures = _image_kernels(plan)
    if image_types:
        texts.append(render("cuda/conv.cu.j2", g=dict(block=BLOCK, types=image_types)).rstrip("\n"))
        decls += _declarations(signatures)
    source = render("cuda/module.cu.j2", key12=key[:12], name=comment_text(name),
                    graph_lines=[comment_text(line) for line in graph_lines], kernels=texts)
    return CudaModule(source, errors, [k.name for k in plan.kernels], checks, decls)
