"""Benchmark: reductions along the last axis (a row at a time) of a 1000x1000 float32 matrix, one
thread: sum(exp(x), axis=1), max(x, axis=1) and softmax, gencomp beside numpy and PyTensor C."""
import _util as U

ROUNDS = 15


def worker():
    """In a fresh process with one BLAS / OpenMP thread: time every candidate."""
    U.setup_inprocess()
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    import gencomp
    import gencomp.tensor as T

    gencomp.config.threads = 1
    X = np.random.default_rng(0).standard_normal((1000, 1000)).astype("float32")

    def np_softmax():
        e = np.exp(X - X.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    gx, px = T.fmatrix("x"), pt.fmatrix("x")
    cases = {"sum(exp(x), axis=1)": (T.sum(T.exp(gx), axis=1), pt.sum(pt.exp(px), axis=1),
                                     lambda: np.exp(X).sum(axis=1)),
             "max(x, axis=1)": (T.max(gx, axis=1), pt.max(px, axis=1), lambda: X.max(axis=1)),
             "softmax(x)": (T.nnet.softmax(gx), pt.special.softmax(px, axis=1), np_softmax)}
    out, notes = {}, []
    for name, (g, p, ref) in cases.items():
        gf, pf = gencomp.function([gx], g), pytensor.function([px], p)
        want = ref()
        for label, fn in (("gencomp", lambda: gf(X)), ("PyTensor C", lambda: pf(X))):
            if not np.allclose(fn(), want, rtol=1e-5, atol=1e-6):
                notes.append(f"WRONG RESULT from {label} for {name}")
        out[name] = U.interleaved({"gencomp": lambda: gf(X), "numpy": ref, "PyTensor C": lambda: pf(X)},
                                  ROUNDS, number=3, warmup=2)
    U.emit({"res": out, "notes": notes})


def run():
    sec = U.Section("Reductions along the last axis, 1000x1000 float32, one thread",
                    ["expression", "implementation", "median", "min", "rounds", "vs numpy"])
    r = U.run_worker("bench_rows", "worker", **U.BLAS_ONE_THREAD)
    for name, res in r["res"].items():
        ref = U.median(res["numpy"])
        for label, samples in res.items():
            sec.row(name, *U.time_row(label, samples, ref))
    for n in r["notes"]:
        sec.note(n)
    sec.note("`cd bench && python bench_rows.py`; gencomp with config.threads = 1, BLAS and OpenMP on one thread")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
