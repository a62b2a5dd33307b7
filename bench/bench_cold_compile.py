"""Benchmark 2: cold `function()` of the logistic in a fresh process, empty cache."""
import _util as U

GENCOMP = """
import glob, json, os, time, numpy as np
import gencomp, gencomp.tensor as T
x = T.matrix('x'); s = 1 / (1 + T.exp(-x))
t = time.perf_counter(); f = gencomp.function([x], s); dt = time.perf_counter() - t
assert np.allclose(f(np.zeros((2, 2))), 0.5)
meta = {}
for p in glob.glob(os.path.join(os.environ['GENCOMP_CACHE_DIR'], '**', 'meta.json'),
                   recursive=True):
    meta = {k: v for k, v in json.load(open(p)).items() if 'sec' in k or 'time' in k}
print(json.dumps({"t": dt, "hit": f.cache_hit, "meta": meta}))
"""
PYTENSOR = """
import json, time, numpy as np
import pytensor, pytensor.tensor as pt
x = pt.matrix('x'); s = 1 / (1 + pt.exp(-x))
t = time.perf_counter(); f = pytensor.function([x], s); dt = time.perf_counter() - t
assert np.allclose(f(np.zeros((2, 2))), 0.5)
print(json.dumps({"t": dt}))
"""
# Another function, compiled first, so PyTensor's own support modules (C VM,
# elemwise helpers) are already in the compiledir and only the logistic is new.
PYTENSOR_PREWARM = """
import json, pytensor, pytensor.tensor as pt
v = pt.vector('v'); pytensor.function([v], pt.exp(v) * 2)
print(json.dumps({}))
"""
ROUNDS = 7
TARGET = 0.3


def run():
    info = {}

    def gencomp_cold():
        d = U.fresh_dir("cold")
        try:
            r = U.run_fresh(GENCOMP, GENCOMP_CACHE_DIR=d)
        finally:
            U.clean(d)
        if r["hit"]:
            raise RuntimeError("cache_hit was True in an empty cache")
        info["meta"] = r["meta"]
        return r["t"]

    def pytensor_cold(prewarm):
        def one():
            d = U.fresh_dir("ptcold")
            try:
                if prewarm:
                    U.run_fresh(PYTENSOR_PREWARM, PYTENSOR_FLAGS=U.pytensor_flags(d))
                return U.run_fresh(PYTENSOR, PYTENSOR_FLAGS=U.pytensor_flags(d))["t"]
            finally:
                U.clean(d)
        return one

    res, err = U.interleaved_fresh({
        "gencomp (empty GENCOMP_CACHE_DIR)": gencomp_cold,
        "PyTensor C (empty compiledir)": pytensor_cold(False),
        "PyTensor C (compiledir holding another function)": pytensor_cold(True),
    }, ROUNDS)
    sec = U.Section("2. Cold `function()` of the logistic `1/(1+exp(-x))`, x a matrix",
                    ["compiler", "median", "min", "runs", "ratio to gencomp"])
    names = list(res)
    ref = U.median(res[names[0]]) if res[names[0]] else None
    for n in names:
        sec.row(*U.time_row(n, res[n], ref))
    for n, e in err.items():
        sec.note(f"{n} failed: `{e}`")
    if info.get("meta"):
        sec.note(f"gencomp meta.json timing fields (last run): `{info['meta']}`")
    sec.note("Time of the `function()` call only, in a fresh process per run "
             "(imports and graph building excluded).")
    sec.target("cold `function()` median", U.fmt_time(ref), "<= 0.3 s",
               None if ref is None else ref <= TARGET, source="issue 2")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
