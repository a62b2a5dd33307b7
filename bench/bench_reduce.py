"""Benchmark 7: the reduction `(x**2).sum()` over 10^7 float64, BLAS on one thread."""
import _util as U

N = 10 ** 7
ROUNDS = 11
PYTENSOR_RATIO = 0.5     # issue 4's later goal: gencomp time <= 0.5x PyTensor's (not a target yet)


def worker():
    """In a fresh process started with U.BLAS_ONE_THREAD: time every candidate."""
    U.setup_inprocess()
    import numexpr as ne
    import numpy as np
    ne.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal(N)
    want = float(np.sum(x * x))
    cands = {"numpy (x**2).sum()": lambda: (x ** 2).sum(),
             "numexpr sum(x**2) (1 thread)": lambda: ne.evaluate("sum(x**2)", {"x": x})}
    refs = {"np.dot(x, x) (BLAS ddot)": lambda: np.dot(x, x),
            "x.sum() (reads the same 80 MB, no square)": lambda: x.sum()}
    notes = []
    import pytensor
    import pytensor.tensor as pt
    px = pt.dvector('x')
    pf = pytensor.function([px], (px ** 2).sum())
    cands["PyTensor C"] = lambda: pf(x)
    gencomp, err = U.try_import_gencomp()
    if gencomp is not None:
        try:
            import gencomp.tensor as T
            gx = T.dvector('x')
            gf = gencomp.function([gx], (gx ** 2).sum())
            cands["gencomp"] = lambda: gf(x)
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
    if err:
        notes.append(f"gencomp failed: `{err}`")
    for n, fn in {**cands, "np.dot(x, x) (BLAS ddot)": refs["np.dot(x, x) (BLAS ddot)"]}.items():
        if not np.isclose(float(fn()), want, rtol=1e-9):
            notes.append(f"WRONG RESULT from {n}: {float(fn())!r} vs {want!r}")
    res = U.interleaved({**cands, **refs}, ROUNDS, number=1, warmup=1)
    U.emit({"res": res, "refs": list(refs), "notes": notes})


def run():
    sec = U.Section(f"7. Reduction `(x**2).sum()` over {N:.0e} float64",
                    ["implementation", "median", "min", "runs", "vs numpy"])
    try:
        r = U.run_worker("bench_reduce", "worker", **U.BLAS_ONE_THREAD)
    except Exception as e:
        sec.note(f"benchmark failed: `{e}`")
        sec.target("gencomp no slower than numpy", "n/a", "ratio <= 1", None)
        return sec
    res = r["res"]
    ref = U.median(res["numpy (x**2).sum()"])
    for n, s in res.items():
        sec.row(*U.time_row(("reference: " if n in r["refs"] else "") + n, s, ref))
    for n in r["notes"]:
        sec.note(n)
    g = res.get("gencomp")
    gm = U.median(g) if g else None
    if gm is not None:
        pm = U.median(res["PyTensor C"])
        sec.note(f"gencomp / PyTensor C = {U.fmt_ratio(gm, pm)} (issue 4 later asks for "
                 f"<= {PYTENSOR_RATIO}x; not a target of this suite yet).")
    sec.note(f"One call per measurement, {ROUNDS} measurements per row, interleaved, in one "
             f"fresh process with {', '.join(f'{k}=1' for k in U.BLAS_ONE_THREAD)} "
             "(so `np.dot(x, x)` is single-threaded like the others).")
    sec.target("gencomp `(x**2).sum()` no slower than numpy",
               "n/a" if gm is None else f"{U.fmt_time(gm)} vs {U.fmt_time(ref)} "
               f"({U.fmt_ratio(gm, ref)})", "ratio <= 1", None if gm is None else gm <= ref)
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
