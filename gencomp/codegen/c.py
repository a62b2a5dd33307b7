"""The C renderer: turns a Plan into the template context of module.c.j2 and renders it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from . import render
from .lower import Plan, ShapeError, compute_dtypes


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
    """Text safe inside a C block comment: printable ASCII, no comment terminator."""
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
    return f"({text})" if v < 0 or text.startswith("-") else text


def operand_text(operand, compute_dtype: str) -> str:
    kind, payload, dtype = operand
    if kind == "literal":
        return c_literal(payload, compute_dtype)
    return payload if dtype == compute_dtype else f"({dtypes.ctype(compute_dtype)}){payload}"


def statement(stmt, backend: str = "c") -> CStmt:
    compute = compute_dtypes(stmt)
    texts = [operand_text(o, c) for o, c in zip(stmt.operands, compute)]
    template = stmt.op.c_expr(dtypes.kind(compute[-1]), backend)
    expr = template.format(*texts, t=dtypes.ctype(compute[-1]))
    if compute[-1] != stmt.out_dtype:
        expr = f"({dtypes.ctype(stmt.out_dtype)})({expr})"
    return CStmt(dtypes.ctype(stmt.out_dtype), stmt.cname, expr, comment_text(stmt.comment))


def value_text(operand, dtype: str) -> str:
    return operand_text(operand, dtype)


def _loop_extent(ndim: int, start: int) -> str:
    return " * ".join(f"n{d}" for d in range(start, ndim)) or "1"


def kernel_context(plan: Plan, index: int, kernel, checks: list, errors: list, backend="c") -> dict:
    """Everything elementwise.c.j2 needs for one kernel; appends its shape checks to `errors`."""
    args, nd = plan.args, kernel.ndim
    first_out = plan.args[kernel.stores[0][0]]
    params, pointers, check_list, seen_checks = [], [], [], set()
    hoisted, loads_flat, loads_nd, contiguous = [], [], [], []
    for arg_index in dict.fromkeys(leaf.arg for leaf in kernel.leaves):
        arg = args[arg_index]
        leaves = [leaf for leaf in kernel.leaves if leaf.arg == arg_index]
        mapped = sorted({leaf.axes[d] for leaf in leaves for d in range(nd) if leaf.axes[d] is not None})
        params.append(f"const void *{arg.cname}_raw")
        params += [f"int64_t {arg.cname}_n{k}" for k in range(len(arg.broadcastable))]
        params += [f"int64_t {arg.cname}_s{k}" for k in mapped]
        pointers.append(Ptr(dtypes.ctype(arg.dtype), f"{arg.cname}_data", f"{arg.cname}_raw", True))
        for k, bcast in enumerate(arg.broadcastable):
            if bcast:
                _add_check(check_list, seen_checks, errors, f"{arg.cname}_n{k} != 1",
                           ShapeError(arg_index, k, None, kernel.stores[0][0]),
                           f"{arg.label} is broadcastable in dim {k}")
        for leaf in leaves:
            for d, k in enumerate(leaf.axes):
                if k is not None:
                    _add_check(check_list, seen_checks, errors, f"{arg.cname}_n{k} != n{d}",
                               ShapeError(arg_index, k, kernel.sources[d], kernel.stores[0][0]),
                               f"{arg.label} dim {k} must match loop dim {d}")
            ctype = dtypes.ctype(arg.dtype)
            if all(a is None for a in leaf.axes):
                hoisted.append(Load(ctype, leaf.cname, f"{arg.cname}_data[0]"))
                continue
            offset = " + ".join(f"i{d} * {arg.cname}_s{k}" for d, k in enumerate(leaf.axes) if k is not None)
            loads_flat.append(Load(ctype, leaf.cname, f"{arg.cname}_data[i]"))
            loads_nd.append(Load(ctype, leaf.cname, f"GC_AT(const {ctype}, {arg.cname}_data, {offset})"))
            size = np.dtype(arg.dtype).itemsize
            for d, k in enumerate(leaf.axes):
                inner = _loop_extent(nd, d + 1)
                contiguous.append(f"n{d} == 1" if k is None else
                                  f"(n{d} == 1 || {arg.cname}_s{k} == {size} * {inner})".replace(" * 1)", ")"))
    params += [f"int64_t {first_out.cname}_n{d}" for d in range(nd)]
    stores_flat, stores_nd = [], []
    for out_index, value in kernel.stores:
        arg = args[out_index]
        params.append(f"void *{arg.cname}_raw")
        pointers.append(Ptr(dtypes.ctype(arg.dtype), f"{arg.cname}_data", f"{arg.cname}_raw", False))
        text = value_text(value, arg.dtype)
        stores_flat.append(Store(f"{arg.cname}_data[{'i' if nd else 0}]", text))
        stores_nd.append(Store(f"{arg.cname}_data[o]", text))
    outs = ", ".join(args[i].label for i, _ in kernel.stores)
    checks.extend(check_list)
    return dict(
        name=f"gc_elemwise_{index}", comment=comment_text(f"elementwise loop computing {outs}"),
        params=params, ndim=nd, dims=[f"{first_out.cname}_n{d}" for d in range(nd)],
        checks=check_list, pointers=pointers, hoisted=hoisted, loads_flat=loads_flat,
        loads_nd=loads_nd, stmts=[statement(s, backend) for s in kernel.stmts],
        stores_flat=stores_flat, stores_nd=stores_nd,
        contiguous=" && ".join(dict.fromkeys(contiguous)) or "1", extent=_loop_extent(nd, 0),
    )


def _add_check(check_list, seen, errors, cond, error, comment):
    if cond in seen:
        return
    seen.add(cond)
    errors.append(error)
    check_list.append(Check(cond, len(errors), comment_text(comment)))


def entry_params(plan: Plan) -> list:
    params = []
    for arg in plan.args:
        nd = len(arg.broadcastable)
        if arg.role == "output":
            params.append(f"void *{arg.cname}_raw")
            params += [f"int64_t {arg.cname}_n{k}" for k in range(nd)]
        else:
            params.append(f"const void *{arg.cname}_raw")
            params += [f"int64_t {arg.cname}_n{k}" for k in range(nd)]
            params += [f"int64_t {arg.cname}_s{k}" for k in range(nd)]
    return params


def render_module(plan: Plan, key: str, name: str, graph_lines: list) -> tuple:
    """(C source, cdef declaration of gc_main, list of ShapeError by check code - 1)."""
    errors, checks, kernels, calls = [], [], [], []
    used = set()
    for i, kernel in enumerate(plan.kernels):
        ctx = kernel_context(plan, i, kernel, checks, errors)
        kernels.append(render("c/elementwise.c.j2", k=ctx).rstrip("\n"))
        names = [p.rsplit(" ", 1)[1].lstrip("*") for p in ctx["params"]]
        used.update(names)
        calls.append(dict(kernel=ctx["name"], args=names))
    params = entry_params(plan)
    unused = [p.rsplit(" ", 1)[1].lstrip("*") for p in params if p.rsplit(" ", 1)[1].lstrip("*") not in used]
    entry = dict(params=params, unused=unused, calls=calls)
    source = render("c/module.c.j2", key12=key[:12], name=comment_text(name),
                    graph_lines=[comment_text(line) for line in graph_lines],
                    kernels=kernels, entry=entry)
    cdef = "int gc_main(" + ", ".join(params) + ");"
    return source, cdef, errors
