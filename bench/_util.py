"""Shared helpers for the benchmarks: timing, fresh-process runs, result tables."""
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
# PyTensor 3.x defaults to its Numba backend; the baseline here is its C backend
# (fast_run rewrites + the C virtual machine), which is what Theano users know.
PYTENSOR_MODE = "CVM"


def median(xs):
    return statistics.median(xs)


def fmt_time(s):
    """Seconds -> short human string (ns/us/ms/s)."""
    if s is None:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_ratio(a, b):
    """a/b as '1.23x', or 'n/a'."""
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


# ----------------------------------------------------------------- environments

def fresh_dir(prefix):
    """A new, empty, private (0700) temporary folder."""
    return tempfile.mkdtemp(prefix=f"gcbench-{prefix}-")


def clean(path):
    shutil.rmtree(path, ignore_errors=True)


def pytensor_flags(compiledir=None):
    flags = [f"mode={PYTENSOR_MODE}"]
    if compiledir:
        flags.append(f"compiledir={compiledir}")
    return ",".join(flags)


# BLAS (numpy's OpenBLAS, which gencomp's and PyTensor's products call too) on one
# thread. It reads these at load time, so they go into a child process's environment.
BLAS_ONE_THREAD = {"OPENBLAS_NUM_THREADS": 1, "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1}
# BLAS on one thread but OpenMP (gencomp's loops) free to use every core: numpy's BLAS here
# (scipy-openblas, pthreads) reads OPENBLAS_NUM_THREADS, not OMP_NUM_THREADS.
CORES = os.cpu_count() or 1
BLAS_ONE_THREAD_OPENMP_ALL = {**BLAS_ONE_THREAD, "OMP_NUM_THREADS": CORES}

# gencomp compiled twice, to compare its OpenMP loops with one thread (issue 4).
GENCOMP_1T = "gencomp, openmp=False (1 thread)"
GENCOMP_OMP = "gencomp, openmp=True"
OPENMP_SPEEDUP = 1.6        # issue 4: OpenMP on >= 1.6x faster than one thread, on 2 cores


def gencomp_openmp_pair(gencomp, inputs, outputs, **kw):
    """{GENCOMP_OMP: f, GENCOMP_1T: f}: `gencomp.function(inputs, outputs, **kw)` compiled
    with config.openmp True and False (openmp is part of the cache key: two modules)."""
    fns = {}
    for name, flag in ((GENCOMP_OMP, True), (GENCOMP_1T, False)):
        with gencomp.config.change(openmp=flag):
            fns[name] = gencomp.function(inputs, outputs, **kw)
    return fns


def openmp_threads():
    """How many threads gencomp's OpenMP loops get in this process (as libgomp decides)."""
    n = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(n) if n.isdigit() else CORES


def openmp_target(sec, what, t_omp, t_1t, threads=None):
    """Add issue 4's OpenMP speed-up target (time with openmp False / with it True);
    threads: OpenMP threads where it was timed (default: this process's)."""
    sp = None if not t_omp or not t_1t else t_1t / t_omp
    sec.target(f"{what}: OpenMP on vs openmp=False ({threads or openmp_threads()} threads, "
               f"{CORES} cores)",
               "n/a" if sp is None else f"{sp:.2f}x faster ({fmt_time(t_omp)} vs "
               f"{fmt_time(t_1t)})", f">= {OPENMP_SPEEDUP}x",
               None if sp is None else sp >= OPENMP_SPEEDUP, source="issue 4")


def child_env(**extra):
    """Environment for a child process: repo on PYTHONPATH, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def setup_inprocess(cache_dir=None):
    """Set env for in-process gencomp/PyTensor use (call before importing them)."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    if "GENCOMP_CACHE_DIR" not in os.environ:
        os.environ["GENCOMP_CACHE_DIR"] = cache_dir or fresh_dir("cache")
        atexit.register(clean, os.environ["GENCOMP_CACHE_DIR"])
    os.environ.setdefault("PYTENSOR_FLAGS", pytensor_flags())


def try_import_gencomp():
    """(gencomp module, None) or (None, 'error text') if it does not import."""
    setup_inprocess()
    try:
        import gencomp
        import gencomp.tensor
        gencomp.function, gencomp.config, gencomp.tensor.dvector  # noqa: B018 (API present?)
        return gencomp, None
    except Exception as e:  # the package may be mid-construction
        return None, f"{type(e).__name__}: {e}".splitlines()[0][:200]


# ----------------------------------------------------------------- timing

def run_fresh(code, timeout=300, **env):
    """Run `code` with `python -c` in a fresh process; return the JSON dict it
    prints as its last stdout line. Raises RuntimeError with stderr on failure."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=child_env(**env), cwd=REPO, timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:]
        raise RuntimeError((tail[0] if tail else f"exit {p.returncode}")[:300])
    return json.loads(lines[-1])


def run_worker(module, func, *args, timeout=300, **env):
    """Call `module.func(*args)` (a benchmark script in bench/) in a fresh process
    with `env` added; it prints its JSON result last, as `emit` does."""
    code = (f"import sys; sys.path.insert(0, {BENCH!r}); import {module}; "
            f"{module}.{func}(*{args!r})")
    return run_fresh(code, timeout=timeout, **env)


def emit(result):
    """Print a worker's result (a JSON-able dict) as the last stdout line."""
    print(json.dumps(result), flush=True)


def per_call(fn, number):
    """Seconds per call of fn(), measured with timeit over `number` calls."""
    return timeit.Timer(fn).timeit(number) / number


def interleaved(cands, rounds, number=1, warmup=1):
    """Time each candidate (name -> zero-arg callable) once per round, rotating
    the order every round so drift and noise hit all of them alike.
    Returns name -> list of seconds-per-call (one per round)."""
    names = list(cands)
    for n in names:
        for _ in range(warmup):
            cands[n]()
    out = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            out[n].append(per_call(cands[n], number))
    return out


def interleaved_fresh(snippets, rounds):
    """Like `interleaved` but each candidate is a zero-arg callable returning one
    measurement (seconds), typically via run_fresh. Failures are recorded as
    the error text (a candidate that fails once is not retried)."""
    out = {n: [] for n in snippets}
    errors = {}
    names = list(snippets)
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            if n in errors:
                continue
            try:
                out[n].append(snippets[n]())
            except Exception as e:
                errors[n] = str(e)
    return out, errors


_WORKER = """
import json, sys, time
sys.path.insert(0, {bench!r})
import _util
_util.setup_inprocess()
import {module} as _m
_step, _checks = _m.{factory}(*{args!r})
print(json.dumps({{"ready": True, "checks": _checks}}), flush=True)
for line in sys.stdin:
    n = int(line)
    t = time.perf_counter()
    for _ in range(n):
        _step()
    print(json.dumps({{"t": (time.perf_counter() - t) / max(n, 1)}}), flush=True)
"""


class Worker:
    """A candidate in a process of its own: `module.factory(*args)` (a bench script's function)
    returns (a zero-argument step, JSON-able check values); `time(n)` runs n steps there and
    returns the seconds per step. Libraries that load their own BLAS or thread pools then cannot
    slow each other down through threads left spinning (one process per library, as users run)."""

    def __init__(self, module, factory, *args, **env):
        code = _WORKER.format(bench=BENCH, module=module, factory=factory, args=args)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=child_env(**env), cwd=REPO)
        self.checks = self._reply()["checks"]

    def _reply(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                tail = self.proc.stderr.read().strip().splitlines()[-1:]
                raise RuntimeError((tail[0] if tail else "worker exited")[:300])
            if line.startswith("{"):
                return json.loads(line)

    def time(self, n: int) -> float:
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return self._reply()["t"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def interleaved_workers(workers, rounds, number=1, warmup=1, pause=0.2):
    """`interleaved` for Workers (name -> Worker): rounds rotate the order; between two
    measurements a pause lets the previous process's BLAS / OpenMP threads stop spinning, then a
    few untimed steps wake this one's threads (they sleep after the pause) before it is timed."""
    import time as _time

    names = list(workers)
    for n in names:
        workers[n].time(warmup)
    out = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            _time.sleep(pause)
            workers[n].time(max(1, number // 4))
            out[n].append(workers[n].time(number))
    return out


# ----------------------------------------------------------------- results

class Section:
    """One benchmark's results: a markdown table plus target verdicts."""

    def __init__(self, title, header):
        self.title, self.header = title, header
        self.rows, self.notes, self.targets = [], [], []

    def row(self, *cells):
        self.rows.append([str(c) for c in cells])

    def note(self, text):
        self.notes.append(text)

    def target(self, what, value, limit, met, source=""):
        """met: True/False, or None when it could not be measured; source: where the target
        comes from ("issue 2", "DESIGN.md 5", ...)."""
        verdict = {True: "met", False: "MISSED", None: "not measured"}[met]
        self.targets.append((source, what, value, limit, verdict))

    def markdown(self):
        lines = [f"## {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.targets:
            lines += ["", "| source | target | measured | limit | verdict |", "|---|---|---|---|---|"]
            lines += ["| " + " | ".join(t) + " |" for t in self.targets]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


class Sections:
    """Several sections reported as one benchmark (run.py takes one per script)."""

    def __init__(self, title, parts):
        self.title, self.parts = title, parts
        self.targets = [t for p in parts for t in p.targets]

    def markdown(self):
        return "\n".join(p.markdown() for p in self.parts)


def time_row(name, samples, ref=None):
    """[name, median, min, n, ratio-to-ref] for a list of seconds."""
    if not samples:
        return [name, "n/a", "n/a", "0", "n/a"]
    m = median(samples)
    return [name, fmt_time(m), fmt_time(min(samples)), str(len(samples)), fmt_ratio(m, ref)]


def report_timings(sec, res, ref, err, hits, order=None):
    """Rows of `res` (name -> samples) against `ref`, failures, and the warm runs' cache hits."""
    for n in (order or list(res)):
        sec.row(*time_row(n, res[n], ref))
    for n, e in err.items():
        sec.note(f"{n} failed: `{e}`")
    if hits:
        sec.note(f"gencomp warm runs: {hits.count(True)} cache hits, {hits.count(False)} misses "
                 "(misses are excluded from the timings)")


def main_wrapper(run):
    """Entry point for a standalone script: run, print the markdown section."""
    sec = run()
    print(sec.markdown())
    return sec
