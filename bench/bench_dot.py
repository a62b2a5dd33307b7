"""Benchmark 6: `dot(A, B)` of two 1024x1024 float64 matrices, BLAS on one thread."""
import _util as U

N = 1024
ROUNDS = 31
TARGET = 0.9     # gencomp speed / numpy speed, at least


def worker():
    """In a fresh process started with U.BLAS_ONE_THREAD: time every candidate."""
    U.setup_inprocess()
    import numpy as np
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((N, N)), rng.standard_normal((N, N))
    want = np.dot(A, B)
    cands = {"numpy np.dot(A, B)": lambda: np.dot(A, B), "numpy A @ B": lambda: A @ B}
    notes = []
    import pytensor
    import pytensor.tensor as pt
    pa, pb = pt.dmatrices('A', 'B')
    pf = pytensor.function([pa, pb], pt.dot(pa, pb))
    cands["PyTensor C"] = lambda: pf(A, B)
    gencomp, err = U.try_import_gencomp()
    if gencomp is not None:
        try:
            import gencomp.tensor as T
            ga, gb = T.dmatrices('A', 'B')
            gf = gencomp.function([ga, gb], T.dot(ga, gb))
            cands["gencomp T.dot(A, B)"] = lambda: gf(A, B)
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
    if err:
        notes.append(f"gencomp failed: `{err}`")
    for n, fn in list(cands.items()):
        if not np.allclose(fn(), want):
            notes.append(f"WRONG RESULT from {n}")
    U.emit({"res": U.interleaved(cands, ROUNDS, number=1, warmup=1), "notes": notes})


def run():
    sec = U.Section(f"6. `dot(A, B)`, A and B {N}x{N} float64, BLAS on one thread",
                    ["implementation", "median", "min", "runs", "vs numpy np.dot", "GFLOP/s"])
    try:
        r = U.run_worker("bench_dot", "worker", **U.BLAS_ONE_THREAD)
    except Exception as e:
        sec.note(f"benchmark failed: `{e}`")
        sec.target("gencomp speed vs numpy", "n/a", f">= {TARGET}x", None, source="issue 3")
        return sec
    res = r["res"]
    ref = U.median(res["numpy np.dot(A, B)"])
    for n, s in res.items():
        sec.row(*U.time_row(n, s, ref), f"{2 * N ** 3 / U.median(s) / 1e9:.1f}")
    for n in r["notes"]:
        sec.note(n)
    sec.note(f"One product per measurement, {ROUNDS} measurements per row, interleaved, in one "
             f"fresh process with {', '.join(f'{k}=1' for k in U.BLAS_ONE_THREAD)}. gencomp "
             "and numpy call the same OpenBLAS (numpy's); PyTensor's C backend finds no BLAS "
             "to link here (pip install) and falls back to numpy's.")
    g = res.get("gencomp T.dot(A, B)")
    speed = ref / U.median(g) if g else None
    if g:
        sec.note(f"speed relative to numpy from the fastest runs instead of the medians: "
                 f"{min(res['numpy np.dot(A, B)']) / min(g):.3f}x")
    sec.target("gencomp `T.dot` speed relative to numpy `np.dot`",
               "n/a" if speed is None else f"{speed:.3f}x", f">= {TARGET}x",
               None if speed is None else speed >= TARGET, source="issue 3")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
