"""Benchmark 1: `import gencomp` time in a fresh process after numpy is imported."""
import _util as U

SNIPPET = """
import json, sys, time, numpy
before = set(sys.modules)
t = time.perf_counter()
import {mod}
dt = time.perf_counter() - t
{check}
new = sorted({{m.split('.')[0] for m in set(sys.modules) - before}})
print(json.dumps({{"t": dt, "new": new}}))
"""
CANDIDATES = {
    "gencomp": "gencomp",
    "gencomp + gencomp.tensor": "gencomp, gencomp.tensor",
    "numexpr": "numexpr",
    "pytensor": "pytensor",
}
ROUNDS = 7
TARGET = 0.150


def run():
    cache = U.fresh_dir("import")
    extra = {}

    def job(mod):
        def one():
            check = "gencomp.function  # a real package, not a bare folder" \
                if mod.startswith("gencomp") else ""
            r = U.run_fresh(SNIPPET.format(mod=mod, check=check), GENCOMP_CACHE_DIR=cache,
                            PYTENSOR_FLAGS=U.pytensor_flags())
            extra[mod] = r["new"]
            return r["t"]
        return one

    res, err = U.interleaved_fresh({n: job(m) for n, m in CANDIDATES.items()}, ROUNDS)
    U.clean(cache)
    sec = U.Section("1. `import gencomp` (fresh process, numpy already imported)",
                    ["module", "median", "min", "runs", "ratio to gencomp"])
    ref = U.median(res["gencomp"]) if res["gencomp"] else None
    for name in CANDIDATES:
        sec.row(*U.time_row(name, res[name], ref))
    for name, e in err.items():
        sec.note(f"{name} failed: `{e}`")
    if "gencomp" in extra:
        third = [m for m in extra["gencomp"] if not m.startswith("_") and m != "gencomp"]
        sec.note("top-level modules first imported by `import gencomp`: "
                 + (", ".join(third) or "(none besides stdlib internals)"))
    med = ref
    sec.target("`import gencomp` median", U.fmt_time(med), "<= 150 ms",
               None if med is None else med <= TARGET, source="issue 2")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
