"""The C renderer: turns a Plan's kernels into template contexts and renders module.c.j2."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from . import render
from ..tensor.reduce import Reduce
from .lower import Kernel, Plan, ShapeError, compute_dtypes, error_records


@dataclass(frozen=True)
class Check:
    cond: str
    code: int
    comment: str


@dataclass(frozen=True)
class Ptr:
    ctype: str
    name: str
    raw: str
    const: bool
    restrict: bool = True     # False for the two pointers of an in-place store
    comment: str = ""


@dataclass(frozen=True)
class Load:
    ctype: str
    name: str
    expr: str


@dataclass(frozen=True)
class CStmt:
    ctype: str
    name: str
    expr: str
    comment: str


@dataclass(frozen=True)
class Store:
    target: str
    value: str


def comment_text(text: str) -> str:
    """Text safe inside a C block comment: printable ASCII, no comment delimiters."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))
    return clean.replace("*/", "* /").replace("/*", "/ *")


def c_literal(value, dtype: str) -> str:
    """`value` written as a C constant of `dtype`."""
    arr = np.asarray(value).astype(dtype)
    kind = dtypes.kind(dtype)
    if kind == "b":
        return "true" if arr else "false"
    if kind in "iu":
        v = int(arr)
        if dtype == "int64" and v == -2**63:
            return "INT64_MIN"
        suffix = {"int64": "LL", "uint64": "ULL", "uint32": "U"}.get(dtype, "")
        return f"({v}{suffix})" if v < 0 else f"{v}{suffix}"
    if kind == "f":
        return _float_literal(float(arr), dtype == "float32")
    single = dtype == "complex64"
    re, im = _float_literal(float(arr.real), single), _float_literal(float(arr.imag), single)
    return f"{'CMPLXF' if single else 'CMPLX'}({re}, {im})"


def _float_literal(v: float, single: bool) -> str:
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    text = repr(v) + ("f" if single else "")
    return f"({text})" if text.startswith("-") else text


def operand_text(operand, compute_dtype: str) -> str:
    kind, payload, dtype = operand
    if kind == "literal":
        return c_literal(payload, compute_dtype)
    return payload if dtype == compute_dtype else f"({dtypes.ctype(compute_dtype)}){payload}"


def statement(stmt, backend: str = "c") -> CStmt:
    compute = compute_dtypes(stmt)
    texts = [operand_text(o, c) for o, c in zip(stmt.operands, compute)]
    if {dtypes.kind(c) for c in compute} == {"i", "u"}:
        # numpy compares signed with unsigned 64-bit integers exactly: so does a 128-bit compare
        texts = [f"(__int128){t}" for t in texts]
    template = stmt.op.c_expr(dtypes.kind(compute[-1]), backend)
    expr = template.format(*texts, t=dtypes.ctype(compute[-1]))
    if compute[-1] != stmt.out_dtype:
        expr = f"({dtypes.ctype(stmt.out_dtype)})({expr})"
    return CStmt(dtypes.ctype(stmt.out_dtype), stmt.cname, expr, comment_text(stmt.comment))


def _product(terms) -> str:
    return " * ".join(terms) or "1"


def _loop_order(kernel: Kernel) -> list:
    """Loop dims outer to inner: the innermost walks the last dimension of the widest leaf."""
    leaves = sorted(kernel.leaves, key=lambda l: -sum(a is not None for a in l.axes))
    main = leaves[0].axes if leaves else (None,) * kernel.ndim
    return sorted(range(kernel.ndim), key=lambda d: (main[d] is not None, main[d] or 0, d))


class _Context:
    """Collects what elementwise.c.j2 / reduce.c.j2 need for one kernel."""

    def __init__(self, plan: Plan, kernel: Kernel, errors: list, backend: str):
        self.plan, self.kernel, self.errors, self.backend = plan, kernel, errors, backend
        self.params, self.pointers, self.checks, self.seen = [], [], [], set()
        self.call = []     # the argument of each parameter in the entry point's call (a[k]: arg k)
        self.hoisted, self.loads_flat, self.loads_nd, self.contiguous = [], [], [], []
        # the same n-d loads with the innermost loop's strides replaced by the item size, and the
        # condition under which they hold: the compiler then vectorizes broadcasts like x + b
        self.inner, self.loads_unit, self.unit_stride = _loop_order(kernel)[-1:], [], []

    def check(self, cond, error, comment):
        if cond not in self.seen:
            self.seen.add(cond)
            self.errors.append(error)
            self.checks.append(Check(cond, len(self.errors), comment_text(comment)))

    def leaves(self):
        kernel, args, nd = self.kernel, self.plan.args, self.kernel.ndim
        first_store = kernel.stores[0][0]
        for arg_index in dict.fromkeys(leaf.arg for leaf in kernel.leaves):
            arg = args[arg_index]
            mine = [leaf for leaf in kernel.leaves if leaf.arg == arg_index]
            mapped = sorted({leaf.axes[d] for leaf in mine for d in range(nd) if leaf.axes[d] is not None})
            ctype = dtypes.ctype(arg.dtype)
            self.params.append(f"const void *{arg.cname}_raw")
            self.params += [f"int64_t {arg.cname}_n{k}" for k in range(len(arg.broadcastable))]
            self.params += [f"int64_t {arg.cname}_s{k}" for k in mapped]
            self.call += [f"a[{arg_index}].data", *(f"a[{arg_index}].n[{k}]" for k in range(len(arg.broadcastable))),
                          *(f"a[{arg_index}].s[{k}]" for k in mapped)]
            self.pointers.append(Ptr(ctype, f"{arg.cname}_data", f"{arg.cname}_raw", True,
                                     arg_index not in kernel.inplace.values(), comment_text(arg.label)))
            for k, bcast in enumerate(arg.broadcastable):
                if bcast:
                    self.check(f"{arg.cname}_n{k} != 1", ShapeError(arg_index, k, None, first_store),
                               f"{arg.label} is broadcastable in dim {k}")
            for leaf in mine:
                self._leaf(leaf, arg, arg_index, ctype, first_store)

    def _leaf(self, leaf, arg, arg_index, ctype, first_store):
        nd = self.kernel.ndim
        for d, k in enumerate(leaf.axes):
            if k is not None:
                self.check(f"{arg.cname}_n{k} != n{d}", ShapeError(arg_index, k, self.kernel.sources[d], first_store),
                           f"{arg.label} dim {k} must match loop dim {d}")
        if all(a is None for a in leaf.axes):
            self.hoisted.append(Load(ctype, leaf.cname, f"{arg.cname}_data[0]"))
            return
        offset = " + ".join(f"i{d} * {arg.cname}_s{k}" for d, k in enumerate(leaf.axes) if k is not None)
        self.loads_flat.append(Load(ctype, leaf.cname, f"{arg.cname}_data[i]"))
        self.loads_nd.append(Load(ctype, leaf.cname, f"GC_AT(const {ctype}, {arg.cname}_data, {offset})"))
        size = np.dtype(arg.dtype).itemsize
        unit = " + ".join(f"i{d} * {size if d in self.inner else f'{arg.cname}_s{k}'}"
                          for d, k in enumerate(leaf.axes) if k is not None)
        self.loads_unit.append(Load(ctype, leaf.cname, f"GC_AT(const {ctype}, {arg.cname}_data, {unit})"))
        self.unit_stride += [f"{arg.cname}_s{k} == {size}" for d, k in enumerate(leaf.axes)
                             if k is not None and d in self.inner]
        for d, k in enumerate(leaf.axes):
            inner = _product([f"n{e}" for e in range(d + 1, nd)])
            stride = f"{size} * {inner}" if inner != "1" else f"{size}"
            self.contiguous.append(f"n{d} == 1" if k is None else f"(n{d} == 1 || {arg.cname}_s{k} == {stride})")

    def common(self, dims_from: str) -> dict:
        nd = self.kernel.ndim
        stmts = [statement(s, self.backend) for s in self.kernel.stmts]
        error_code = 0
        if any("gc_err" in s.expr for s in stmts):       # a helper can fail (integer ** negative)
            self.errors.append(ShapeError(self.kernel.stores[0][0], -2, None, self.kernel.stores[0][0]))
            error_code = len(self.errors)
        return dict(error_code=error_code,
            name=self.kernel.name, params=self.params, call=self.call, ndim=nd,
            dims=[dims_from.format(d=d) for d in range(nd)], checks=self.checks, pointers=self.pointers,
            hoisted=self.hoisted, loads_flat=self.loads_flat, loads_nd=self.loads_nd,
            loads_unit=self.loads_unit,        # one loop dim: the flat path already covers unit strides
            unit_stride=" && ".join(dict.fromkeys(self.unit_stride)) if nd > 1 else "",
            stmts=stmts,
            contiguous=" && ".join(dict.fromkeys(self.contiguous)) or "1",
            extent=_product([f"n{d}" for d in range(nd)]), order=_loop_order(self.kernel),
        )


PARALLEL_MIN = 32768      # elements: below this, starting threads costs more than it saves
CHUNK = 16384             # elements per scheduled chunk of a threaded loop (a multiple of 64)
BLOCK, MAX_BLOCKS = 16384, 64    # partial results of a flat reduction (see reduce.c.j2)


def param_names(params: list) -> list:
    """The names of C parameters written as 'type name' or 'type *name'."""
    return [p.rsplit(" ", 1)[-1].lstrip("*") for p in params]


def elementwise_context(plan, kernel, errors, backend="c", parallel=False) -> dict:
    ctx = _Context(plan, kernel, errors, backend)
    ctx.leaves()
    args, nd = plan.args, kernel.ndim
    first = args[kernel.stores[0][0]]
    ctx.params += [f"int64_t {first.cname}_n{d}" for d in range(nd)]
    ctx.call += [f"a[{kernel.stores[0][0]}].n[{d}]" for d in range(nd)]
    stores_flat, stores_nd = [], []
    for out_index, value in kernel.stores:
        arg = args[out_index]
        ctx.params.append(f"void *{arg.cname}_raw")
        ctx.call.append(f"a[{out_index}].data")
        ctx.pointers.append(Ptr(dtypes.ctype(arg.dtype), f"{arg.cname}_data", f"{arg.cname}_raw", False,
                                out_index not in kernel.inplace, comment_text(arg.label)))
        text = operand_text(value, arg.dtype)
        stores_flat.append(Store(f"{arg.cname}_data[{'i' if nd else 0}]", text))
        stores_nd.append(Store(f"{arg.cname}_data[o]", text))
    result = ctx.common(first.cname + "_n{d}")
    outs = ", ".join(args[i].label for i, _ in kernel.stores)
    offset = " + ".join(f"i{d} * {_product([f'n{e}' for e in range(d + 1, nd)])}" for d in range(nd))
    threaded = parallel and not result["error_code"]
    flat_pragma, inner_pragma = "#pragma omp simd", "#pragma omp simd" if nd > 1 else ""
    if result["error_code"]:          # the error flag is written from the loop: no simd, no threads
        flat_pragma = inner_pragma = ""
    result.update(comment=comment_text(f"elementwise loop computing {outs}"), stores_flat=stores_flat,
                  stores_nd=stores_nd, out_offset=offset.replace(" * 1", "") or "0",
                  flat_pragma=flat_pragma, inner_pragma=inner_pragma,
                  tune=f"gc_tune_{kernel.name}" if threaded and nd else "")
    result["chunk_params"] = _used_params(result)
    result["chunk_args"] = param_names(result["chunk_params"])
    return result


def _used_params(result: dict) -> list:
    """The parameters the loop itself reads (not those only the shape checks read), for an
    out-of-line loop that takes no unused parameter (-Wextra)."""
    text = " ".join(map(str, [result["dims"], result["pointers"], result["hoisted"], result["loads_flat"],
                              result["loads_nd"], result["loads_unit"], result["contiguous"],
                              result["unit_stride"], result["stmts"], result["stores_nd"]]))
    used = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))
    return [p for p in result["params"] if param_names([p])[0] in used]


_IDENTITY = {"zero": lambda dt: c_literal(0, dt), "one": lambda dt: c_literal(1, dt),
             "lowest": lambda dt: _extreme(dt, low=True), "highest": lambda dt: _extreme(dt, low=False)}


def _extreme(dtype: str, low: bool) -> str:
    if dtypes.kind(dtype) == "f":
        return "(-INFINITY)" if low else "INFINITY"
    if dtypes.kind(dtype) == "b":
        return "false" if low else "true"
    info = np.iinfo(dtype)
    return c_literal(info.min if low else info.max, dtype)


def _accumulator(row, dtype: str) -> str:
    """Sums, products and means of float32/complex64 accumulate in double precision."""
    if row.name in ("sum", "prod", "mean"):
        return {"float32": "float64", "complex64": "complex128"}.get(dtype, dtype)
    return dtype


def _reduction_base(plan, kernel, errors, backend):
    """The context shared by reductions: the loop over the input, its result pointer and index."""
    ctx = _Context(plan, kernel, errors, backend)
    ctx.leaves()
    args, nd = plan.args, kernel.ndim
    axes = kernel.reduce.reduced_axes(nd)
    (out_index, value), = kernel.stores
    out = args[out_index]
    kept = [d for d in range(nd) if d not in axes]
    ctx.params += [f"void *{out.cname}_raw"]
    ctx.call.append(f"a[{out_index}].data")
    ptr = Ptr(dtypes.ctype(out.dtype), f"{out.cname}_data", f"{out.cname}_raw", False, True,
              comment_text(out.label))
    ctx.pointers.append(ptr)
    result = ctx.common("")
    # the loop lengths come from the leaves; a loop dim no leaf reads has length 1
    result["dims"] = [f"{args[s[0]].cname}_n{s[1]}" if s else "1" for s in kernel.sources]
    offset = " + ".join(f"i{d} * {_product([f'n{e}' for e in kept if e > d])}" for d in kept)
    result.update(out=ptr, kept_extent=_product([f"n{d}" for d in kept]),
                  reduced_extent=_product([f"n{d}" for d in axes]),
                  out_offset=offset.replace(" * 1", "") or "0")
    return result, value, out, out_index, kept, axes


def _simd_reduction(combine: str, kind: str, result: dict, ctype: str, identity: str) -> tuple:
    """(`omp simd reduction` pragma, the `declare reduction` it needs or "") of an accumulation in
    vector lanes: + and * are OpenMP's own (it lets the compiler reorder the sum); a max or min
    (NaN-propagating for floats) is declared with the row's combine, exact in any order."""
    if kind not in "biuf" or result["error_code"]:
        return "", ""
    op = {"{acc} + {x}": "+", "{acc} * {x}": "*"}.get(combine)
    if op is not None:
        return ("", "") if kind == "b" else (f"#pragma omp simd reduction({op}:s)", "")
    if "?" not in combine:          # | and & of booleans: left sequential
        return "", ""
    declare = (f"#pragma omp declare reduction(gc_combine : {ctype} : omp_out = "
               f"{combine.format(acc='omp_out', x='omp_in')}) initializer(omp_priv = {identity})")
    return "#pragma omp simd reduction(gc_combine:s)", declare


def reduce_context(plan, kernel, errors, backend="c", parallel=False) -> dict:
    result, value, out, out_index, kept, axes = _reduction_base(plan, kernel, errors, backend)
    row, ptr = kernel.reduce.row, result["out"]
    acc_dtype = _accumulator(row, out.dtype)
    workspace = acc_dtype != out.dtype
    acc_name = "acc" if workspace else ptr.name
    kind = dtypes.kind(acc_dtype)
    combine = next(expr for kinds, expr in row.combine.items() if kind in kinds)
    val = operand_text(value, acc_dtype)
    if row.nonempty:
        errors.append(ShapeError(out_index, -1, None, out_index))
    finish = None
    if row.mean:
        finish = f"({ptr.ctype})({acc_name}[j] / ({dtypes.ctype(acc_dtype)})r)"
    elif workspace:
        finish = f"({ptr.ctype})acc[j]"
    identity = _IDENTITY[row.identity](acc_dtype)
    simd_pragma, simd_declare = _simd_reduction(combine, kind, result, dtypes.ctype(acc_dtype), identity)
    result.update(
        comment=comment_text(f"{row.name} over axes {list(axes)} computing {out.label}"),
        kind=row.name, acc_ctype=dtypes.ctype(acc_dtype), acc_name=acc_name, identity=identity,
        combine_flat=combine.format(acc="s", x=val), simd_pragma=simd_pragma, simd_declare=simd_declare,
        combine_parts=combine.format(acc=f"{acc_name}[0]", x="part[gc_b]"), block=BLOCK, max_blocks=MAX_BLOCKS,
        combine_nd=combine.format(acc=f"{acc_name}[j]", x=val),
        tune=f"gc_tune_{kernel.name}" if parallel and not result["error_code"] and not kept
        and kernel.ndim > 0 else "",
        empty_code=len(errors) if row.nonempty else 0, mean=row.mean, workspace=workspace,
        flat=len(kept) == 0 and kernel.ndim > 0, finish=finish,
        inner_pragma="#pragma omp simd" if result["order"] and result["order"][-1] in kept
        and not result["error_code"] else "",
    )
    # the innermost loop walks a reduced dim: a reduction with lanes (simd_pragma) then reduces that row in vector lanes
    # (s, as a flat reduction's block) before adding it to its result, instead of one long chain of
    # dependent additions that also keeps exp, log... out of vector registers
    result["row_combine"] = (combine.format(acc=f"{acc_name}[j]", x="s")
                             if result["simd_pragma"] and result["order"] and result["order"][-1] in axes else "")
    return result


def arg_better(kind: str, dtype: str, v: str, p: str, best: str, best_p: str) -> str:
    """C condition: value `v` at position `p` beats `best` at `best_p` for argmax/argmin, as numpy
    decides (ties go to the first position, the first NaN wins); a total order, so any grouping works."""
    cmp = ">" if kind == "argmax" else "<"
    ordered = f"({v} {cmp} {best} || ({v} == {best} && {p} < {best_p}))"
    if dtypes.kind(dtype) == "f":          # the first NaN wins, as in numpy
        return f"(({v} != {v}) ? ({best} == {best} || {p} < {best_p}) : ({best} == {best} && {ordered}))"
    return ordered


def argreduce_context(plan, kernel, errors, backend="c") -> dict:
    result, value, out, out_index, kept, axes = _reduction_base(plan, kernel, errors, backend)
    op, dtype = kernel.reduce, value[2]
    errors.append(ShapeError(out_index, -1, None, out_index))
    # numpy's position: along the axis, or in the C-order flattening of the whole input
    index = " + ".join(f"i{d} * {_product([f'n{e}' for e in axes if e > d])}" for d in axes)
    better = arg_better(op.kind, dtype, "v", "p", "best[j]", f"{result['out'].name}[j]")
    result.update(comment=comment_text(f"{op.kind} over axes {list(axes)} computing {out.label}"),
                  kind=op.kind, value_ctype=dtypes.ctype(dtype), value=operand_text(value, dtype),
                  index=index.replace(" * 1", "") or "0", better=better, empty_code=len(errors))
    return result


def render_module(plan: Plan, key: str, name: str, graph_lines: list, parallel: bool = False) -> tuple:
    """(files {name: text}: module.c and the gencomp.h it includes, cdef declarations of its entry
    points, meta {...} for meta.json: name, graph, checks by code - 1, entry point names).

    `parallel`: the module is compiled with OpenMP, so large loops use threads.
    """
    from .entry import entry_context, plan_entry

    errors, kernels, calls, protos = [], [], {}, []
    # a scan's step runs its kernels once per step on one step's (small) arrays: on one thread,
    # and without the thread team's code, which would double what the compiler has to build
    in_loops = {k.name for k in plan.kernels if k.name.startswith("gc_scan")}
    for kernel in plan.kernels:
        threads = parallel and kernel.name not in in_loops
        if kernel.reduce is None:
            ctx = elementwise_context(plan, kernel, errors, parallel=threads)
            text = render("c/elementwise.c.j2", k=ctx)
        elif isinstance(kernel.reduce, Reduce):
            ctx = reduce_context(plan, kernel, errors, parallel=threads)
            text = render("c/reduce.c.j2", k=ctx)
        else:
            ctx = argreduce_context(plan, kernel, errors)
            text = render("c/argreduce.c.j2", k=ctx)
        kernels.append(text.rstrip("\n"))
        calls[ctx["name"]] = ctx["call"]
        protos.append(f"int {ctx['name']}({', '.join(ctx['params'])});")
    entry = plan_entry(plan)
    ectx = entry_context(plan, entry, calls, errors, comment_text)
    decls = ["void *gc_frame_new(void);", "void gc_frame_free(void *frame);",
             "int64_t *gc_frame_table(void *frame);"]
    decls += [f"int {seg['name']}({', '.join(['void *f'] + seg['params'][1:])});" for seg in ectx["segments"]]
    decls += [f"int {seg['body']}(void *f);" for seg in ectx["segments"]]
    if parallel:
        decls.append("void gc_set_threads(int threads, int adaptive);")
    if ectx["blas_types"]:
        decls.append("void gc_set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv, void *sdot, "
                     "void *ddot, int ilp64);")
    first, second = _split(kernels, lambda: _primary_lines(ectx))
    context = dict(key12=key[:12], name=comment_text(name), openmp=parallel, parallel_min=PARALLEL_MIN,
                   chunk=CHUNK, **ectx, graph_lines=[comment_text(line) for line in graph_lines],
                   kernels=[kernels[k] for k in first], used=_helpers_called([kernels[k] for k in first]),
                   kernel_protos=[protos[k] for k in second])
    files = {"module.c": _tidy(render("c/module.c.j2", **context)), "gencomp.h": render("c/runtime.h.j2", **context)}
    if second:
        files["kernels.c"] = render("c/kernels.c.j2", **dict(context, kernels=[kernels[k] for k in second],
                                                              used=_helpers_called([kernels[k] for k in second])))
    meta = {"name": name, "graph": graph_lines, "errors": error_records(errors),
            "entry_points": [seg["name"] for seg in ectx["segments"]]}
    return files, "\n".join(decls), meta


def _tidy(text: str) -> str:
    """No blank line inside a step of an entry point: a blank line only before a comment or a
    declaration (the templates' macros end some lines twice)."""
    return re.sub(r"\n\n(?=[ \t]+(?!/\*)\S)", "\n", text)


SPLIT_LINES = 800        # kernel lines above which a module compiles as two translation units


def _primary_lines(ectx: dict) -> int:
    """Lines only module.c compiles: its entry points and the BLAS / image code of gencomp.h."""
    lines = render("c/entry.c.j2", **ectx).count("\n")
    lines += render("c/blas.h.j2", **ectx).count("\n") if ectx["blas_types"] else 0
    return lines + (render("c/conv.h.j2", **ectx).count("\n") if ectx["conv_types"] or ectx["pool_types"] else 0)


def _split(kernels: list, primary_lines) -> tuple:
    """(kernel indices for module.c, for kernels.c): a large module's kernels in two parts of about
    equal size, counting module.c's own lines (`primary_lines()`, asked only for a large module),
    so that two compilers build it on two cores; a small module stays one file."""
    sizes = [k.count("\n") + 1 for k in kernels]
    if sum(sizes) <= SPLIT_LINES:
        return list(range(len(kernels))), []
    first, second, lines = [], [], [primary_lines(), 0]
    for index in sorted(range(len(kernels)), key=lambda k: (-sizes[k], k)):   # largest first, greedily
        side = 0 if lines[0] <= lines[1] else 1
        (first, second)[side].append(index)
        lines[side] += sizes[index]
    return sorted(first), sorted(second)


def _helpers_called(kernels: list) -> set:
    """The gc_* helpers of helpers.h.j2 that the kernels call, with those they call in turn."""
    used = set(re.findall(r"\bgc_[a-z0-9_]+(?=\()", "\n".join(kernels)))
    if "gc_pow_i64" in used:
        used.add("gc_pow_u64")
    if "gc_cpow" in used:
        used |= {"gc_cmul", "gc_cdiv"}
    return used
