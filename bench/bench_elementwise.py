"""Benchmark 5: fused elementwise expressions on 10^7 float64, vs numpy/numexpr/PyTensor."""
import _util as U

U.setup_inprocess()
import numpy as np  # noqa: E402

N = 10 ** 7
ROUNDS = 11
EXPRS = {  # name (also the numexpr text) -> builder over (x, y, module)
    "exp(-x)*sin(y) + x*y/(1+abs(x))":
        lambda x, y, m: m.exp(-x) * m.sin(y) + x * y / (1 + abs(x)),
    "2*x + y*y - 1": lambda x, y, m: 2 * x + y * y - 1,
}
# Only this one is bandwidth-bound; exp and sin make the other compute-bound on one core.
MEMORY_BOUND = {"2*x + y*y - 1"}


def candidates(x, y):
    """(groups: expr -> {name: callable}, refs: {name: callable}, notes)."""
    import numexpr as ne
    import pytensor
    import pytensor.tensor as pt
    ne.set_num_threads(1)
    notes, groups = [], {}
    gencomp, gerr = U.try_import_gencomp()
    if gencomp is not None:
        notes.append(f"gencomp config.openmp = {getattr(gencomp.config, 'openmp', '?')}, "
                     f"cflags = `{getattr(gencomp.config, 'cflags', '?')}`")
    px, py = pt.dvectors('x', 'y')
    for name, build in EXPRS.items():
        want = build(x, y, np)
        g = {"numpy": lambda b=build: b(x, y, np),
             "numexpr (1 thread)": lambda t=name: ne.evaluate(t, {"x": x, "y": y})}
        pf = pytensor.function([px, py], build(px, py, pt))
        g["PyTensor C"] = lambda pf=pf: pf(x, y)
        if gencomp is not None:
            try:
                import gencomp.tensor as T
                gx, gy = T.dvectors('x', 'y')
                gf = gencomp.function([gx, gy], build(gx, gy, T))
                g["gencomp"] = lambda gf=gf: gf(x, y)
            except Exception as e:
                gerr = f"{type(e).__name__}: {e}"
        for n, fn in g.items():
            if not np.allclose(fn(), want):
                notes.append(f"WRONG RESULT from {n} on `{name}`")
        groups[name] = g
    if gerr:
        notes.append(f"gencomp failed: `{gerr}`")
    z = np.empty_like(x)
    big = np.random.default_rng(1).random(3 * N // 2)  # 120 MB: same bytes as 2 in + 1 out
    big_dst = np.empty_like(big)
    refs = {"np.add(x, y, out=z) (preallocated)": lambda: np.add(x, y, out=z),
            "np.add(x, y) (allocating)": lambda: np.add(x, y),
            "np.copyto, 1.5e7 float64 (same 240 MB moved)": lambda: np.copyto(big_dst, big),
            "np.copyto, 1e7 float64 (160 MB moved)": lambda: np.copyto(z, x)}
    return groups, refs, notes


def run():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(N), rng.standard_normal(N)
    groups, refs, notes = candidates(x, y)
    flat = {(e, n): fn for e, g in groups.items() for n, fn in g.items()}
    flat.update({("ref", n): fn for n, fn in refs.items()})
    res = U.interleaved(flat, ROUNDS, number=1, warmup=1)
    copy_ref = U.median(res[("ref", "np.copyto, 1.5e7 float64 (same 240 MB moved)")])
    sec = U.Section(f"5. Fused elementwise on {N:.0e} float64 vectors x, y",
                    ["expression", "implementation", "median", "min", "vs numpy",
                     "vs same-bytes copyto"])
    for e, g in groups.items():
        npm = U.median(res[(e, "numpy")])
        for n in g:
            s = res[(e, n)]
            sec.row(f"`{e}`", n, U.fmt_time(U.median(s)), U.fmt_time(min(s)),
                    U.fmt_ratio(U.median(s), npm), U.fmt_ratio(U.median(s), copy_ref))
    for n in refs:
        s = res[("ref", n)]
        sec.row("reference", n, U.fmt_time(U.median(s)), U.fmt_time(min(s)), "",
                U.fmt_ratio(U.median(s), copy_ref))
    for n in notes:
        sec.note(n)
    sec.note(f"One call per measurement, {ROUNDS} measurements per row, all rows interleaved; "
             "outputs are freshly allocated by every implementation except the `out=`/copyto "
             "references.")
    for e, g in groups.items():
        if "gencomp" not in g:
            sec.target(f"`{e}`: gencomp faster than numpy, PyTensor, numexpr",
                       "n/a", "ratio < 1", None)
            continue
        gm = U.median(res[(e, "gencomp")])
        others = {n: U.median(res[(e, n)]) for n in g if n != "gencomp"}
        sec.target(f"`{e}`: gencomp faster than " + ", ".join(others),
                   U.fmt_time(gm) + " vs " + ", ".join(U.fmt_time(v) for v in others.values()),
                   "faster than each", all(gm < v for v in others.values()))
        if e in MEMORY_BOUND:
            sec.target(f"`{e}`: within 1.5x of same-bytes copyto (DESIGN.md 5)",
                       U.fmt_ratio(gm, copy_ref), "<= 1.5x", gm <= 1.5 * copy_ref)
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
