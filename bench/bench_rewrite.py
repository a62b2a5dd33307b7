"""Benchmark 9: rewriting a 10,000-node elementwise graph (`gencomp.rewrite.optimize`,
'fast_run'), with the rules that fired and the nodes left; PyTensor's FAST_RUN rewriter on
the same graph for scale."""
import _util as U

NODES = 10_000
ROUNDS = 5                  # optimize() runs, each on a fresh FunctionGraph copy of the graph
TARGET = 1.0                # issue 4: rewriting a 10,000-node graph in under 1 s
PYTENSOR, PYTENSOR_TIMEOUT = True, 300       # PyTensor's rewrite of the same graph, once
# One cycle of the chain: float64 x through 6 nodes, int64 k through 5 (11 nodes per cycle).
FLOAT_STEPS = {"x * 1.0001": lambda e, T: e * 1.0001, "x + -0.0": lambda e, T: e + -0.0,
               "tanh(x)": lambda e, T: T.tanh(e), "-(-x)": lambda e, T: -(-e),
               "x ** 2": lambda e, T: e ** 2}
INT_STEPS = {"k * 3": lambda i: i * 3, "k * 5": lambda i: i * 5, "k + 2": lambda i: i + 2,
             "k + 7": lambda i: i + 7, "k * 1": lambda i: i * 1}
CYCLE = 11
DESCRIPTION = (f"a chain repeating `{'`, `'.join(FLOAT_STEPS)}` on a float64 vector x and "
               f"`{'`, `'.join(INT_STEPS)}` on an int64 vector k, output `x + k`")


def chain(tensor_module):
    """(inputs, output): the benchmark graph in gencomp.tensor or pytensor.tensor (both
    spell dvector, lvector, tanh and the operators alike)."""
    T = tensor_module
    x, k = T.dvector("x"), T.lvector("k")
    e, i = x, k
    for _ in range((NODES - 1) // CYCLE):
        for step in FLOAT_STEPS.values():
            e = step(e, T)
        for step in INT_STEPS.values():
            i = step(i)
    return [x, k], e + i


def op_counts(nodes):
    """'op: count, ...' over Apply nodes, most frequent first."""
    counts = {}
    for n in nodes:
        counts[str(n.op)] = counts.get(str(n.op), 0) + 1
    return ", ".join(f"`{op}` {c}" for op, c in sorted(counts.items(), key=lambda kv: -kv[1]))


def worker():
    """In a fresh process: build the graph once, then copy it and rewrite it ROUNDS times."""
    import time
    U.setup_inprocess()
    import gencomp.tensor as T
    from gencomp.codegen.lower import lower
    from gencomp.graph.fg import FunctionGraph
    from gencomp.rewrite import optimize
    t = time.perf_counter()
    inputs, out = chain(T)
    t_build = time.perf_counter() - t
    times = {"FunctionGraph(inputs, [out]) (copies the graph)": [],
             "optimize(fgraph, 'fast_run')": [], "optimize(fgraph, 'fast_compile') (merge)": [],
             "lower(fgraph) after fast_run (fusion into kernels)": []}
    names = list(times)
    fired, before, after, kernels = None, None, None, None
    for _ in range(ROUNDS):
        for mode, key in (("fast_run", names[1]), ("fast_compile", names[2])):
            t = time.perf_counter()
            fg = FunctionGraph(inputs, [out])
            times[names[0]].append(time.perf_counter() - t)
            before = len(fg.toposort())
            t = time.perf_counter()
            f = optimize(fg, mode)
            times[key].append(time.perf_counter() - t)
            if mode == "fast_run":
                if fired not in (None, f):
                    raise RuntimeError(f"rules fired differently between runs: {fired} vs {f}")
                fired, nodes = f, fg.toposort()
                after, ops = len(nodes), op_counts(nodes)
                t = time.perf_counter()
                plan = lower(fg)
                times[names[3]].append(time.perf_counter() - t)
                kernels = len(getattr(plan, "kernels", ()) or ())
    U.emit({"times": times, "build": t_build, "before": before, "after": after, "ops": ops,
            "fired": fired, "kernels": kernels, "profile": profile(inputs, out)})


def profile(inputs, out, top=8):
    """The functions where one optimize('fast_run') spends its time (cProfile, tottime)."""
    import cProfile
    import io
    import pstats
    from gencomp.graph.fg import FunctionGraph
    from gencomp.rewrite import optimize
    fg = FunctionGraph(inputs, [out])
    prof = cProfile.Profile()
    prof.runcall(optimize, fg, "fast_run")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    rows = [ln for ln in buf.getvalue().splitlines() if ln.strip()[:1].isdigit()]
    return [ln.strip() for ln in rows if "/" in ln or "{" in ln][:top]


def pytensor_worker():
    """In a fresh process: PyTensor's FAST_RUN rewriter (which also fuses) on the same graph."""
    import time
    import warnings
    U.setup_inprocess()
    import pytensor.tensor as pt
    from pytensor.compile.mode import get_mode
    from pytensor.graph.fg import FunctionGraph
    inputs, out = chain(pt)
    fg = FunctionGraph(inputs, [out], clone=True)
    before = len(fg.apply_nodes)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        get_mode("FAST_RUN").optimizer.rewrite(fg)
    U.emit({"t": time.perf_counter() - t, "before": before, "after": len(fg.apply_nodes)})


def run():
    sec = U.Section(f"9. Rewriting a {NODES:,}-node elementwise graph",
                    ["step", "median", "min", "runs", "ratio to optimize fast_run"])
    try:
        r = U.run_worker("bench_rewrite", "worker", timeout=600)
    except Exception as e:
        sec.note(f"benchmark failed: `{e}`")
        sec.target(f"`optimize(fgraph, 'fast_run')` on {NODES:,} nodes", "n/a",
                   f"< {TARGET:g} s", None, source="issue 4")
        return sec
    key = "optimize(fgraph, 'fast_run')"
    ref = U.median(r["times"][key])
    for n, s in r["times"].items():
        sec.row(*U.time_row(n, s, ref))
    pt_err = None
    if PYTENSOR:
        try:
            p = U.run_worker("bench_rewrite", "pytensor_worker", timeout=PYTENSOR_TIMEOUT)
            sec.row(f"PyTensor: FAST_RUN rewriter on the same graph ({p['before']:,} nodes "
                    f"-> {p['after']:,}; includes its fusion)", U.fmt_time(p["t"]),
                    U.fmt_time(p["t"]), "1", U.fmt_ratio(p["t"], ref))
        except Exception as e:
            pt_err = str(e)
    sec.note(f"Graph: {DESCRIPTION}; {r['before']:,} nodes (built in "
             f"{U.fmt_time(r['build'])}, not counted).")
    sec.note(f"After `fast_run`: {r['after']:,} nodes: {r['ops']}; `lower` makes "
             f"{r['kernels']} kernel(s) of them.")
    sec.note("Rules that fired (count): " + ", ".join(
        f"`{n}` {c}" for n, c in sorted(r["fired"].items(), key=lambda kv: -kv[1])))
    sec.note("Where one `optimize(fgraph, 'fast_run')` spends its time (cProfile, by own "
             "time; ncalls, tottime, percall, cumtime, percall, function): "
             + "; ".join(f"`{ln}`" for ln in r["profile"]))
    if pt_err:
        sec.note(f"PyTensor's rewrite failed or timed out: `{pt_err}`")
    sec.note(f"Each run copies the user's graph into a fresh FunctionGraph and rewrites it in "
             f"place; {ROUNDS} runs per row, in one fresh process; PyTensor once, in another.")
    sec.target(f"`optimize(fgraph, 'fast_run')` on {r['before']:,} nodes", U.fmt_time(ref),
               f"< {TARGET:g} s", ref < TARGET, source="issue 4")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
