"""Do gencomp calls from several Python threads run at once? (issue 15; a check, not part of run.py)

Each call below is a ~40 ms single-threaded C loop (`config.openmp=False`). For each pair of
calls made together on two threads it prints
  wall ratio = wall time of both threads' loops / wall time of one thread's loop alone
               (~1x: the calls ran in parallel; ~2x: they were serialised)
  cpu/wall   = process CPU seconds / wall seconds while both run (~2 parallel, ~1 serialised)
Both need a second idle core: on a loaded machine they drift towards 2x / 1 for every row, the
controls included (a pure-Python loop holds the GIL: 2x; numpy's sin into a preallocated buffer
releases it: 1x). Expected: different functions, one function, and readers of one shared
variable run in parallel (cffi releases the GIL during the call and gencomp holds no global
lock); two calls that update the SAME shared variable run one after the other, by design (each
holds the variable's lock from reading it to storing the new value); updates of different
variables run in parallel.

    python bench/check_parallel_calls.py
"""
import os
import tempfile
import threading
import time

os.environ.setdefault("GENCOMP_CACHE_DIR", tempfile.mkdtemp(prefix="gencomp-bench-"))

import numpy as np  # noqa: E402

import gencomp  # noqa: E402
import gencomp.tensor as T  # noqa: E402
from gencomp import function, shared  # noqa: E402

N = 3_000_000
REPS = 4          # calls per thread
TRIES = 5         # best of


def _work(x):
    return T.sum(T.sin(x) * T.exp(-x * x) + T.cos(x))


def build():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(N) for _ in range(3))
    with gencomp.config.change(openmp=False):
        x, y = T.vectors("x", "y")
        f1 = function([x], _work(x))
        f2 = function([y], _work(y) + 1)                      # another module
        w, u = shared(rng.standard_normal(N), name="w"), shared(rng.standard_normal(N), name="u")
        reader = function([], _work(w))
        bump_w = function([], _work(w), updates=[(w, w + 1.0)])
        bump_w2 = function([], _work(w) * 2, updates=[(w, w - 1.0)])
        bump_u = function([], _work(u), updates=[(u, u + 1.0)])
    assert f1.cache_key != f2.cache_key
    out = [np.empty(N), np.empty(N)]

    def py_loop():
        s = 0
        for i in range(1_500_000):
            s += i
        return s

    return [
        ("2 different functions", (lambda: f1(a), lambda: f2(b))),
        ("1 function, 2 threads", (lambda: f1(a), lambda: f1(c))),
        ("1 reader of a shared variable", (reader, reader)),
        ("updates of 2 different variables", (bump_w, bump_u)),
        ("updates of the same variable", (bump_w, bump_w2)),
        ("control: numpy sin (no GIL)", (lambda: np.sin(a, out=out[0]), lambda: np.sin(b, out=out[1]))),
        ("control: pure Python (GIL)", (py_loop, py_loop)),
    ]


def _loop(fn):
    for _ in range(REPS):
        fn()


def _both(pair):
    threads = [threading.Thread(target=_loop, args=(fn,)) for fn in pair]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure(pair):
    alone, wall, cpu = 1e9, 1e9, 0.0
    for _ in range(TRIES):
        t = time.perf_counter()
        _loop(pair[0])
        alone = min(alone, time.perf_counter() - t)
        t, c = time.perf_counter(), time.process_time()
        _both(pair)
        w = time.perf_counter() - t
        wall, cpu = min(wall, w), max(cpu, (time.process_time() - c) / w)
    return alone / REPS, wall / alone, cpu


def main():
    print(f"cpus: {len(os.sched_getaffinity(0))}   load average: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for label, pair in build():
        one, ratio, cpu = measure(pair)
        print(f"{label:34s} one call {one * 1e3:5.1f} ms   wall ratio {ratio:.2f}x   cpu/wall {cpu:.2f}")


if __name__ == "__main__":
    main()
