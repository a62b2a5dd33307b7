"""Benchmark 10: gencomp's loop threads beside numpy's BLAS threads and a busy neighbour (issue 9).

Every workload runs in fresh processes, in the user's default environment (numpy's BLAS on
all its threads), under three configurations: the default, `openmp=False` (one thread), and
OpenMP with the team forced on every loop above the threshold (the adaptive choice off, as
before issue 9). Then the same again while a busy loop (`while True: pass`) runs beside it.
The default must stay within 5 % of the better of the other two.
"""
import os
import subprocess
import sys

import _util as U

ROUNDS = 5                  # fresh processes per (workload, configuration, neighbour): 3 decide busy cells by noise
WARM_CALLS, SECONDS = 30, 0.6   # calls before timing (the loops settle their choice), timing span
WITHIN = 1.05               # issue 9: default <= 1.05x the better of one thread and the team
DEFAULT, ONE, TEAM = "default", "openmp=False (1 thread)", "openmp=True, team always"
CONFIGS = {DEFAULT: {}, ONE: {"GENCOMP_FLAGS": "openmp=False"}, TEAM: {}}


def _elementwise(text):
    def build(gencomp, T, rng):
        import bench_elementwise
        x, y = rng.standard_normal(10 ** 7), rng.standard_normal(10 ** 7)
        gx, gy = T.dvectors("x", "y")
        f = gencomp.function([gx, gy], bench_elementwise.EXPRS[text](gx, gy, T))
        return f, (x, y)
    return build


def _reduction(gencomp, T, rng):
    x = rng.standard_normal(10 ** 7)
    gx = T.dvector("x")
    return gencomp.function([gx], (gx ** 2).sum()), (x,)


def _dot(gencomp, T, rng):
    a, b = rng.standard_normal((1024, 1024)), rng.standard_normal((1024, 1024))
    ga, gb = T.dmatrices("A", "B")
    return gencomp.function([ga, gb], T.dot(ga, gb)), (a, b)


def _mlp_big(gencomp, T, rng):
    import bench_mlp
    X, y, params = bench_mlp.problem()
    inputs, loss, updates = bench_mlp.gencomp_graph(params)
    return gencomp.function(inputs, loss, updates=updates), (X, y)


def _mlp_tutorial(gencomp, T, rng):
    """The deep-learning tutorial's MLP: 784-500-10, batch 20, float32, L2 term, SGD."""
    import numpy as np
    f32 = np.float32
    X = rng.standard_normal((20, 784)).astype(f32)
    y = rng.integers(0, 10, 20)
    x, t = T.fmatrix("x"), T.lvector("y")
    W1 = gencomp.shared((rng.standard_normal((784, 500)) * 0.04).astype(f32), name="W1")
    b1 = gencomp.shared(np.zeros(500, f32), name="b1")
    W2 = gencomp.shared(np.zeros((500, 10), f32), name="W2")
    b2 = gencomp.shared(np.zeros(10, f32), name="b2")
    h = T.tanh(T.dot(x, W1) + b1)
    p = T.nnet.softmax(T.dot(h, W2) + b2)
    cost = -T.mean(T.log(p)[T.arange(t.shape[0]), t]) + f32(1e-4) * ((W1 ** 2).sum() + (W2 ** 2).sum())
    params = [W1, b1, W2, b2]
    updates = [(v, v - f32(0.01) * g) for v, g in zip(params, T.grad(cost, params))]
    return gencomp.function([x, t], cost, updates=updates), (X, y)


def _logistic(gencomp, T, rng):
    """Theano's logistic regression tutorial step, batch 100 (784 features)."""
    X, y = rng.standard_normal((100, 784)), rng.integers(0, 2, 100).astype(float)
    x, t = T.dmatrix("x"), T.dvector("y")
    w = gencomp.shared(rng.standard_normal(784) * 0.01, name="w")
    b = gencomp.shared(0.0, name="b")
    p1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -t * T.log(p1) - (1 - t) * T.log(1 - p1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    f = gencomp.function([x, t], [p1 > 0.5, xent], updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
    return f, (X, y)


WORKLOADS = {
    "elementwise exp(-x)*sin(y) + x*y/(1+abs(x)), 1e7": _elementwise("exp(-x)*sin(y) + x*y/(1+abs(x))"),
    "elementwise 2*x + y*y - 1, 1e7": _elementwise("2*x + y*y - 1"),
    "reduction (x**2).sum(), 1e7": _reduction,
    "dot 1024x1024": _dot,
    "MLP 784-256-10 step, batch 128, float64": _mlp_big,
    "MLP 784-500-10 step, batch 20, float32 (tutorial)": _mlp_tutorial,
    "logistic regression step, batch 100 (tutorial)": _logistic,
}


def worker(workload, config):
    """In a fresh process: build one workload, settle, time it; emit median and min seconds."""
    U.setup_inprocess()
    import time

    import numpy as np
    gencomp, err = U.try_import_gencomp()
    if gencomp is None:
        raise RuntimeError(err)
    import gencomp.tensor as T
    f, args = WORKLOADS[workload](gencomp, T, np.random.default_rng(0))
    if config == TEAM:
        f._runner.lib.gc_set_threads(gencomp.config.threads, 0)
    for _ in range(WARM_CALLS):
        f(*args)
    t = time.perf_counter()
    f(*args)
    reps = max(1, int(0.02 / (time.perf_counter() - t)))
    samples, end = [], time.perf_counter() + SECONDS
    while time.perf_counter() < end or len(samples) < 5:
        t = time.perf_counter()
        for _ in range(reps):
            f(*args)
        samples.append((time.perf_counter() - t) / reps)
    U.emit({"median": U.median(samples), "min": min(samples)})


def _measure(rounds):
    """{workload: {config: [(median, min) per process]}}, processes interleaved."""
    out = {w: {c: [] for c in CONFIGS} for w in WORKLOADS}
    names = list(CONFIGS)
    for r in range(rounds):
        for w in WORKLOADS:
            for c in names[r % 3:] + names[:r % 3]:
                res = U.run_worker("bench_threads", "worker", w, c, **CONFIGS[c])
                out[w][c].append((res["median"], res["min"]))
    return out


def _section(title, results, busy):
    sec = U.Section(title, ["workload", DEFAULT, ONE, TEAM, "default / better of the two"])
    for w, by_config in results.items():
        med = {c: U.median([m for m, _ in v]) for c, v in by_config.items()}
        low = {c: min(lo for _, lo in v) for c, v in by_config.items()}
        best = min(med[ONE], med[TEAM])
        ratio = med[DEFAULT] / best
        sec.row(w, *(f"{U.fmt_time(med[c])} (min {U.fmt_time(low[c])})" for c in CONFIGS),
                f"{ratio:.2f}x")
        sec.target(f"{w}{', busy neighbour' if busy else ''}: default vs the better configuration",
                   f"{ratio:.2f}x", f"<= {WITHIN}x", ratio <= WITHIN, source="issue 9")
    sec.note(f"medians of {ROUNDS} fresh processes per cell (each: {WARM_CALLS} calls to settle, then "
             f"~{SECONDS} s of timed calls, its median taken), interleaved; numpy's BLAS and OpenMP "
             f"on their default thread counts; {U.CORES} cores")
    return sec


def run():
    quiet = _section("10. Threads beside BLAS (issue 9): idle machine", _measure(ROUNDS), False)
    busy_loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _section("10b. Threads beside BLAS (issue 9): one busy process beside it",
                        _measure(ROUNDS), True)
    finally:
        busy_loop.kill()
        busy_loop.wait()
    quiet.note(f"OpenMP wait policy in these processes: {_wait_policy()}")
    return U.Sections("10. Threads beside BLAS", [quiet, busy])


def _wait_policy():
    code = ("import gencomp, gencomp.tensor as T; from gencomp.compile import cc; x = T.dvector('x'); "
            "gencomp.function([x], x * 2); print(cc.load_openmp_runtime())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=U.child_env(), cwd=U.REPO)
    return (p.stdout.strip() or p.stderr.strip()[-200:]) or "?"


if __name__ == "__main__":
    ROUNDS = int(os.environ.get("GCBENCH_ROUNDS", ROUNDS))
    U.main_wrapper(run)
