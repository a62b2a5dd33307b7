"""Benchmark 13: recurrent training steps (issue 12: scan compiled into the function's module),
gencomp beside PyTensor 3 (C and Numba backends) in one process, interleaved.

Two steps, both float32, sequence 50, batch 32, input 64, hidden 128, SGD on every weight:
- Elman RNN: h_t = tanh(x_t W + h_{t-1} U + b), loss = mean((h_T V - y)^2) on the last state;
- LSTM: the cell of the lisa-lab lstm.py tutorial (input projection of the whole sequence before
  the scan, a mask sequence, one U for the four gates sliced from one product), same loss.
The losses of the first CHECK_STEPS steps must equal a hand-written numpy BPTT (float64) to 1e-4
before anything is timed. Also: cold compile of each step in a fresh process with an empty cache.
PyTensor is a benchmark baseline only.
"""
import _util as U

U.setup_inprocess()
import numpy as np  # noqa: E402

STEPS, BATCH, N_IN, HIDDEN, N_OUT = 50, 32, 64, 128, 8
LR, CHECK_STEPS = np.float32(0.01), 3
ROUNDS, NUMBER = 9, 5
TARGET, COLD_TARGET = 0.7, 1.5     # issue 12: <= 0.7x PyTensor Numba's step; cold compile <= 1.5 s
PT_C, PT_NUMBA = "PyTensor C (mode=CVM)", "PyTensor Numba (mode=NUMBA)"
MODELS = ("Elman RNN", "LSTM")


def problem(model, seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    X = rng.standard_normal((STEPS, BATCH, N_IN)).astype(f32)
    y = rng.standard_normal((BATCH, N_OUT)).astype(f32)
    gates = 4 if model == "LSTM" else 1
    params = {"W": (rng.standard_normal((N_IN, gates * HIDDEN)) / np.sqrt(N_IN)).astype(f32),
              "U": (rng.standard_normal((HIDDEN, gates * HIDDEN)) / np.sqrt(HIDDEN)).astype(f32),
              "b": np.zeros(gates * HIDDEN, f32),
              "V": (rng.standard_normal((HIDDEN, N_OUT)) / np.sqrt(HIDDEN)).astype(f32)}
    mask = np.ones((STEPS, BATCH), f32)
    mask[STEPS - 10:, : BATCH // 4] = 0          # a quarter of the sequences are shorter
    return X, y, mask, params


def build(lib, model, params, mode=None):
    """The training step as the tutorials write it, in gencomp or PyTensor: f(X, y, mask) -> loss."""
    if lib == "gencomp":
        import gencomp as M
        import gencomp.tensor as T
        sigmoid, kw = T.nnet.sigmoid, {}
    else:
        import pytensor as M
        import pytensor.tensor as T
        sigmoid, kw = T.sigmoid, {"mode": mode}
    p = {k: M.shared(v.copy(), name=k) for k, v in params.items()}
    x, t, m = T.ftensor3("x"), T.fmatrix("y"), T.fmatrix("mask")
    h0 = T.zeros((x.shape[1], HIDDEN), dtype="float32")
    if model == "Elman RNN":
        def step(x_t, h):
            return T.tanh(T.dot(x_t, p["W"]) + T.dot(h, p["U"]) + p["b"])

        hs, _ = M.scan(step, sequences=x, outputs_info=h0)
        last = hs[-1]
    else:
        def _slice(v, n):
            return v[:, n * HIDDEN:(n + 1) * HIDDEN]

        def step(m_, x_, h_, c_):
            preact = T.dot(h_, p["U"]) + x_
            i = sigmoid(_slice(preact, 0))
            f = sigmoid(_slice(preact, 1))
            o = sigmoid(_slice(preact, 2))
            c = T.tanh(_slice(preact, 3))
            c = f * c_ + i * c
            c = m_[:, None] * c + (1. - m_)[:, None] * c_
            h = o * T.tanh(c)
            h = m_[:, None] * h + (1. - m_)[:, None] * h_
            return h, c

        below = T.dot(x.reshape((x.shape[0] * x.shape[1], N_IN)), p["W"]) + p["b"]
        below = below.reshape((x.shape[0], x.shape[1], 4 * HIDDEN))
        (hs, _), _ = M.scan(step, sequences=[m, below], outputs_info=[h0, h0])
        last = hs[-1]
    cost = ((T.dot(last, p["V"]) - t) ** 2).mean()
    grads = M.grad(cost, list(p.values()))
    f = M.function([x, t, m], cost, updates=[(v, v - LR * g) for v, g in zip(p.values(), grads)],
                   on_unused_input="ignore", **kw)
    return lambda X, y, mask: f(X, y, mask)


def candidate(lib, model, mode=None):
    """For a Worker: (one training step on the problem's data, the losses of the first CHECK_STEPS)."""
    X, y, mask, params = problem(model)
    step = build(lib, model, params, mode)
    losses = [float(step(X, y, mask)) for _ in range(CHECK_STEPS)]
    return (lambda: step(X, y, mask)), losses


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_losses(model, params, X, y, mask, steps):
    """The same steps in plain numpy, float64, with backpropagation through time by hand."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    X, y, mask = X.astype(np.float64), y.astype(np.float64), mask.astype(np.float64)
    H, losses = HIDDEN, []
    for _ in range(steps):
        h = np.zeros((BATCH, H))
        if model == "Elman RNN":
            hs = [h]
            for x_t in X:
                h = np.tanh(x_t @ p["W"] + h @ p["U"] + p["b"])
                hs.append(h)
        else:
            c = np.zeros((BATCH, H))
            below = X @ p["W"] + p["b"]
            cache = []
            for m_, x_ in zip(mask, below):
                pre = h @ p["U"] + x_
                i, f, o, g = _sigmoid(pre[:, :H]), _sigmoid(pre[:, H:2 * H]), _sigmoid(pre[:, 2 * H:3 * H]), \
                    np.tanh(pre[:, 3 * H:])
                c_new = f * c + i * g
                c_new = m_[:, None] * c_new + (1 - m_)[:, None] * c
                tc = np.tanh(c_new)
                h_new = m_[:, None] * (o * tc) + (1 - m_)[:, None] * h
                cache.append((h, c, i, f, o, g, tc, m_[:, None]))
                h, c = h_new, c_new
        err = h @ p["V"] - y
        losses.append((err ** 2).mean())
        d_out = 2 * err / err.size
        grads = {"V": h.T @ d_out}
        dh = d_out @ p["V"].T
        grads.update(W=np.zeros_like(p["W"]), U=np.zeros_like(p["U"]), b=np.zeros_like(p["b"]))
        if model == "Elman RNN":
            for k in range(STEPS, 0, -1):
                da = dh * (1 - hs[k] ** 2)
                grads["W"] += X[k - 1].T @ da
                grads["U"] += hs[k - 1].T @ da
                grads["b"] += da.sum(0)
                dh = da @ p["U"].T
        else:
            dc = np.zeros((BATCH, H))
            dbelow = np.zeros_like(below)
            for k in range(STEPS - 1, -1, -1):
                h_prev, c_prev, i, f, o, g, tc, m_ = cache[k]
                do = dh * m_ * tc
                dcn = dh * m_ * o * (1 - tc ** 2) + dc
                dc_prev = dcn * (1 - m_) + dcn * m_ * f
                dh_prev = dh * (1 - m_)
                dpre = np.concatenate([dcn * m_ * g * i * (1 - i), dcn * m_ * c_prev * f * (1 - f),
                                       do * o * (1 - o), dcn * m_ * i * (1 - g ** 2)], axis=1)
                grads["U"] += h_prev.T @ dpre
                dh = dh_prev + dpre @ p["U"].T
                dc = dc_prev
                dbelow[k] = dpre
            flat = dbelow.reshape(-1, 4 * H)
            grads["W"] = X.reshape(-1, N_IN).T @ flat
            grads["b"] = flat.sum(0)
        p = {k: p[k] - float(LR) * grads[k] for k in p}
    return losses


COLD = """
import json, sys, time
sys.path.insert(0, 'bench')
import bench_rnn as B
X, y, mask, params = B.problem(MODEL)
t = time.perf_counter(); step = B.build("gencomp", MODEL, params); dt = time.perf_counter() - t
step(X, y, mask)
print(json.dumps({"t": dt}))
"""


def run():
    sec = U.Section("13. Recurrent training steps (scan), gencomp and PyTensor 3 side by side (issue 12)",
                    ["model", "candidate", "median per step", "min", "rounds", "ratio to PyTensor Numba"])
    for model in MODELS:
        X, y, mask, params = problem(model)
        want = numpy_losses(model, params, X, y, mask, CHECK_STEPS)
        cands, err = {}, {}
        for label, lib, mode in (("gencomp", "gencomp", None), (PT_C, "pytensor", "CVM"),
                                 (PT_NUMBA, "pytensor", "NUMBA")):
            try:       # each library in a process of its own (see U.Worker)
                worker = U.Worker("bench_rnn", "candidate", lib, model, mode)
                if not np.allclose(worker.checks, want, rtol=1e-4, atol=1e-4):
                    worker.close()
                    raise AssertionError(f"losses {worker.checks} differ from numpy's {want}")
                cands[label] = worker
            except Exception as ex:           # a baseline that does not build is reported, not fatal
                err[label] = f"{type(ex).__name__}: {str(ex)[:300]}"
        res = U.interleaved_workers(cands, ROUNDS, number=NUMBER, warmup=2)
        for worker in cands.values():
            worker.close()
        base = U.median(res[PT_NUMBA]) if res.get(PT_NUMBA) else None
        for label in cands:
            sec.row(model, *U.time_row(label, res[label], base))
        for label, e in err.items():
            sec.note(f"{model}, {label} failed: `{e}`")
        ratio = U.median(res["gencomp"]) / base if base and "gencomp" in res else None
        sec.target(f"{model} step: gencomp / PyTensor Numba", f"{ratio:.2f}x" if ratio else "n/a",
                   f"<= {TARGET}x", ratio <= TARGET if ratio else None, "issue 12")
        cold = [U.run_fresh(COLD.replace("MODEL", repr(model)), GENCOMP_CACHE_DIR=U.fresh_dir("rnncold"))["t"]
                for _ in range(3)]
        sec.target(f"{model} step: cold function() in a fresh process", U.fmt_time(U.median(cold)),
                   f"<= {COLD_TARGET} s", U.median(cold) <= COLD_TARGET, "issue 12")
    sec.note(f"losses of the first {CHECK_STEPS} steps equal a numpy BPTT's to 1e-4; each candidate in a process "
             f"of its own (PyTensor's Numba backend calls scipy's OpenBLAS, gencomp numpy's: in one process the "
             f"two thread pools spin against each other on 2 cores), interleaved: {ROUNDS} rounds of {NUMBER} "
             f"steps; BLAS on its default threads")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
