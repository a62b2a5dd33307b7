"""`gencomp demo`: compile the DESIGN seed examples, check them against numpy, show source and timings."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

_WARM_SNIPPET = """
import time, gencomp.tensor as T, gencomp
x = T.matrix('x')
t = time.perf_counter()
f = gencomp.function([x], 1 / (1 + T.exp(-x)), name='logistic')
print(time.perf_counter() - t, f.cache_hit)
"""


def _check(label, got, expected):
    ok = np.allclose(got, expected)
    print(f"  {'ok ' if ok else 'BAD'} {label}: {np.asarray(got).tolist()}")
    return ok


def main() -> int:
    import gencomp
    import gencomp.tensor as T
    from gencomp import In, function, shared

    print(f"gencomp {gencomp.__version__}; cache: {gencomp.config.cache_dir}")
    ok = True
    x = T.matrix("x")
    start = time.perf_counter()
    logistic = function([x], 1 / (1 + T.exp(-x)), name="logistic")
    first = time.perf_counter() - start
    data = np.array([[0, 1], [-1, -2]], dtype=float)
    ok &= _check("logistic", logistic([[0, 1], [-1, -2]]), 1 / (1 + np.exp(-data)))

    a, b = T.matrices("a", "b")
    diff = function([a, b], [a - b, abs(a - b), (a - b) ** 2], name="diff")
    outs = diff([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    d = np.array([[1, 0], [-1, -2]], dtype=float)
    ok &= all(_check(n, o, e) for n, o, e in zip(("a - b", "abs(a - b)", "(a - b)**2"), outs, (d, abs(d), d**2)))

    xs, y, w = T.scalars("x", "y", "w")
    dflt = function([xs, In(y, value=1), In(w, value=2, name="w_by_name")], (xs + y) * w, name="defaults")
    ok &= _check("defaults f(33), f(33, w_by_name=5)", [dflt(33), dflt(33, w_by_name=5)], [68, 170])

    state = shared(0)
    inc = T.iscalar("inc")
    acc = function([inc], state, updates=[(state, state + inc)], name="accumulator")
    old = acc(1)
    ok &= _check("accumulator: old value, new value", [old, state.get_value()], [0, 1])
    foo = T.scalar(dtype=state.dtype)
    skip = function([inc, foo], state * 2 + inc, givens=[(state, foo)], name="givens")
    ok &= _check("givens skip(1, 3)", skip(1, 3), 7)

    print(f"\ngenerated C of the logistic function: {logistic.source_path}")
    print(f"first function() in this process: {first * 1e3:.1f} ms "
          f"({'loaded from the cache' if logistic.cache_hit else 'compiled'})")
    proc = subprocess.run([sys.executable, "-c", _WARM_SNIPPET], capture_output=True, text=True)
    if proc.returncode == 0:
        seconds, hit = proc.stdout.split()
        print(f"function() in a new process: {float(seconds) * 1e3:.1f} ms (cache hit: {hit})")
    else:
        print(proc.stderr, file=sys.stderr)
        ok = False
    print("all results match numpy" if ok else "SOME RESULTS DIFFER FROM NUMPY")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
