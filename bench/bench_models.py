"""Benchmark 11: training steps of the models Theano users run, gencomp beside PyTensor 3 (C and
Numba backends), each in a process of its own, interleaved (issue 10: one compiled entry point per
function).

Each step is the same graph in both libraries, from the same initial values; the losses of the
first CHECK_STEPS steps must agree (float64 to 1e-8, float32 to 1e-4) before anything is timed.
"""
import _util as U

U.setup_inprocess()
import numpy as np  # noqa: E402

ROUNDS, NUMBER = 9, 20          # measurements per candidate (interleaved), steps per measurement
CHECK_STEPS = 3
PT_C, PT_NUMBA = "PyTensor C (mode=CVM)", "PyTensor Numba (mode=NUMBA)"
# issue 10: gencomp's step time / PyTensor Numba's
TARGETS = {"tutorial MLP 784-500-10, batch 20, float32": 0.6,
           "MLP 784-256-10, batch 128, float64": 0.7,
           "logistic regression, batch 100, float64": 0.6}


def _data(name):
    rng = np.random.default_rng(0)
    if name.startswith("tutorial"):
        f32 = np.float32
        return dict(X=rng.standard_normal((20, 784)).astype(f32), y=rng.integers(0, 10, 20),
                    W1=(rng.standard_normal((784, 500)) * 0.04).astype(f32), b1=np.zeros(500, f32),
                    W2=np.zeros((500, 10), f32), b2=np.zeros(10, f32))
    if name.startswith("MLP"):
        return dict(X=rng.standard_normal((128, 784)), y=rng.integers(0, 10, 128),
                    W1=rng.standard_normal((784, 256)) * np.sqrt(1 / 784), b1=np.zeros(256),
                    W2=rng.standard_normal((256, 10)) * np.sqrt(1 / 256), b2=np.zeros(10))
    return dict(X=rng.standard_normal((100, 784)), y=rng.integers(0, 2, 100).astype(float),
                w=rng.standard_normal(784) * 0.01, b=np.array(0.0))


def build(lib, name, mode=None):
    """(step function (X, y) -> loss, arguments): the step as the tutorials write it."""
    if lib == "gencomp":
        import gencomp as M
        import gencomp.tensor as T
        softmax, kw = T.nnet.softmax, {}
    else:
        import pytensor as M
        import pytensor.tensor as T
        softmax, kw = (lambda z: T.special.softmax(z, axis=-1)), {"mode": mode}
    d = _data(name)
    p = {k: M.shared(v.copy(), name=k) for k, v in d.items() if k not in ("X", "y")}
    if name.startswith("logistic"):
        x, t = T.dmatrix("x"), T.dvector("y")
        p1 = 1 / (1 + T.exp(-T.dot(x, p["w"]) - p["b"]))
        xent = -t * T.log(p1) - (1 - t) * T.log(1 - p1)
        cost = xent.mean() + 0.01 * (p["w"] ** 2).sum()
        lr, outputs = 0.1, [cost, p1 > 0.5]
    else:
        f32 = name.startswith("tutorial")
        x, t = (T.fmatrix("x") if f32 else T.dmatrix("x")), T.lvector("y")
        h = T.tanh(T.dot(x, p["W1"]) + p["b1"])
        probs = softmax(T.dot(h, p["W2"]) + p["b2"])
        cost = -T.mean(T.log(probs)[T.arange(t.shape[0]), t])
        if f32:
            cost = cost + np.float32(1e-4) * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
        lr, outputs = (np.float32(0.01) if f32 else 0.1), [cost]
    grads = M.grad(cost, list(p.values()))
    f = M.function([x, t], outputs, updates=[(v, v - lr * g) for v, g in zip(p.values(), grads)], **kw)
    return (lambda X, y: f(X, y)[0]), (d["X"], d["y"])


def candidate(lib, name, mode=None):
    """For a U.Worker: (one training step on the model's data, the losses of the first CHECK_STEPS)."""
    step, args = build(lib, name, mode)
    losses = [float(step(*args)) for _ in range(CHECK_STEPS)]
    return (lambda: step(*args)), losses


def run():
    sec = U.Section("11. Training steps, gencomp and PyTensor 3 side by side (issue 10)",
                    ["model", "candidate", "median per step", "min", "rounds", "ratio to PyTensor Numba"])
    for name, limit in TARGETS.items():
        cands, losses, err = {}, {}, {}
        for label, lib, mode in (("gencomp", "gencomp", None), (PT_C, "pytensor", "CVM"),
                                 (PT_NUMBA, "pytensor", "NUMBA")):
            try:       # each library in a process of its own (see U.Worker)
                cands[label] = U.Worker("bench_models", "candidate", lib, name, mode)
                losses[label] = cands[label].checks
            except Exception as ex:           # a baseline that does not build is reported, not fatal
                err[label] = f"{type(ex).__name__}: {ex}"
        tol = 1e-4 if name.startswith("tutorial") else 1e-8
        ref = losses.get("gencomp")
        for label, values in losses.items():
            if ref is not None and not np.allclose(values, ref, rtol=tol, atol=tol):
                err[label] = f"losses {values} differ from gencomp's {ref}"
                cands.pop(label).close()
        res = U.interleaved_workers(cands, ROUNDS, number=NUMBER, warmup=5)
        for worker in cands.values():
            worker.close()
        base = U.median(res[PT_NUMBA]) if res.get(PT_NUMBA) else None
        for label in cands:
            sec.row(name, *U.time_row(label, res[label], base))
        for label, e in err.items():
            sec.note(f"{name}, {label} failed: `{e}`")
        if base and "gencomp" in res:
            ratio = U.median(res["gencomp"]) / base
            sec.target(f"{name}: gencomp / PyTensor Numba step time", f"{ratio:.2f}x", f"<= {limit}x",
                       ratio <= limit, "issue 10")
        else:
            sec.target(f"{name}: gencomp / PyTensor Numba step time", "n/a", f"<= {limit}x", None, "issue 10")
    sec.note(f"each candidate in a process of its own (PyTensor's Numba backend calls scipy's OpenBLAS, gencomp "
             f"numpy's: in one process the two thread pools spin against each other), interleaved: {ROUNDS} rounds "
             f"of {NUMBER} steps per candidate; losses of the first {CHECK_STEPS} steps checked against gencomp's; "
             f"BLAS on its default threads")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
