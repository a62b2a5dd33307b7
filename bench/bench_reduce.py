"""Benchmark 7: the reduction `(x**2).sum()` over 10^7 float64, BLAS on one thread;
gencomp with OpenMP on (every core) and off."""
import _util as U

N = 10 ** 7
ROUNDS = 11
PYTENSOR_RATIO = 0.5     # issue 4: gencomp's time (one thread) <= 0.5x PyTensor C's


def worker():
    """In a fresh process started with U.BLAS_ONE_THREAD_OPENMP_ALL: time every candidate."""
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
            for n, gf in U.gencomp_openmp_pair(gencomp, [gx], (gx ** 2).sum()).items():
                cands[n] = lambda gf=gf: gf(x)
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
        r = U.run_worker("bench_reduce", "worker", **U.BLAS_ONE_THREAD_OPENMP_ALL)
    except Exception as e:
        sec.note(f"benchmark failed: `{e}`")
        sec.target("gencomp no slower than numpy", "n/a", "ratio <= 1", None, source="issue 3")
        return sec
    res = r["res"]
    ref = U.median(res["numpy (x**2).sum()"])
    for n, s in res.items():
        sec.row(*U.time_row(("reference: " if n in r["refs"] else "") + n, s, ref))
    for n in r["notes"]:
        sec.note(n)
    sec.note(f"One call per measurement, {ROUNDS} measurements per row, interleaved, in one "
             f"fresh process with "
             f"{', '.join(f'{k}={v}' for k, v in U.BLAS_ONE_THREAD_OPENMP_ALL.items())}: "
             "`np.dot(x, x)` (OpenBLAS, pthreads) runs on one thread, numexpr is set to one, "
             "PyTensor C's openmp flag is off, and gencomp's OpenMP loops may use every core "
             f"(`{U.GENCOMP_OMP}`) or are compiled without OpenMP (`{U.GENCOMP_1T}`).")
    g = {n: U.median(res[n]) if res.get(n) else None for n in (U.GENCOMP_1T, U.GENCOMP_OMP)}
    one, pm = g[U.GENCOMP_1T], U.median(res["PyTensor C"])
    sec.target(f"`(x**2).sum()`: {U.GENCOMP_1T} no slower than numpy",
               "n/a" if one is None else f"{U.fmt_time(one)} vs {U.fmt_time(ref)} "
               f"({U.fmt_ratio(one, ref)})", "ratio <= 1", None if one is None else one <= ref,
               source="issue 3")
    sec.target(f"`(x**2).sum()`: {U.GENCOMP_1T} time / PyTensor C's",
               "n/a" if one is None else f"{U.fmt_ratio(one, pm)} ({U.fmt_time(one)} vs "
               f"{U.fmt_time(pm)})", f"<= {PYTENSOR_RATIO}x",
               None if one is None else one <= PYTENSOR_RATIO * pm, source="issue 4")
    U.openmp_target(sec, "`(x**2).sum()`", g[U.GENCOMP_OMP], one,
                    threads=U.BLAS_ONE_THREAD_OPENMP_ALL["OMP_NUM_THREADS"])
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
