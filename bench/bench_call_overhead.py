"""Benchmark 4: call overhead of a compiled two-scalar `x + y` (timeit, in-process)."""
import _util as U

U.setup_inprocess()
import numpy as np  # noqa: E402

NUMBER = 20000   # calls per measurement
ROUNDS = 15      # measurements per candidate, interleaved
TARGET = 3e-6


def candidates():
    """name -> zero-arg callable; errors as name -> text."""
    a, b = np.array(1.0), np.array(2.0)
    c, err = {"numpy np.add(a, b), 0-d arrays": lambda: np.add(a, b)}, {}
    gencomp, e = U.try_import_gencomp()
    if gencomp is None:
        err["gencomp"] = e
    else:
        try:
            import gencomp.tensor as T
            x, y = T.dscalars('x', 'y')
            f = gencomp.function([x, y], x + y)
            assert float(f(1.0, 2.0)) == 3.0
            c["gencomp f(1.0, 2.0)"] = lambda: f(1.0, 2.0)
            c["gencomp f(a, b), 0-d arrays"] = lambda: f(a, b)
        except Exception as ex:
            err["gencomp"] = f"{type(ex).__name__}: {ex}"
    import pytensor
    import pytensor.tensor as pt
    px, py = pt.dscalars('x', 'y')
    g = pytensor.function([px, py], px + py)
    g2 = pytensor.function([px, py], px + py)
    g2.trust_input = True
    assert float(g(1.0, 2.0)) == 3.0 and float(g2(a, b)) == 3.0
    c["PyTensor C g(1.0, 2.0)"] = lambda: g(1.0, 2.0)
    c["PyTensor C trust_input g(a, b)"] = lambda: g2(a, b)
    return c, err


def run():
    cands, err = candidates()
    res = U.interleaved(cands, ROUNDS, number=NUMBER, warmup=NUMBER // 10)
    sec = U.Section("4. Call overhead of `function([x, y], x + y)`, two float64 scalars",
                    ["call", "median per call", "min", "rounds", "ratio to numpy 0-d add"])
    ref = U.median(res["numpy np.add(a, b), 0-d arrays"])
    for n in cands:
        sec.row(*U.time_row(n, res[n], ref))
    for n, e in err.items():
        sec.note(f"{n} failed: `{e}`")
    sec.note(f"timeit, {NUMBER} calls per measurement, {ROUNDS} measurements per "
             "candidate interleaved; median of the measurements.")
    g = res.get("gencomp f(1.0, 2.0)")
    med = U.median(g) if g else None
    sec.target("gencomp `f(1.0, 2.0)` median", U.fmt_time(med), "<= 3 us",
               None if med is None else med <= TARGET, source="issue 2")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
