"""GPU benchmark of the CUDA backend: fused elementwise kernels and a sum on 10^8 float32 elements,
the tiled gemm kernel on two 4096 x 4096 float32 matrices (GFLOP/s; not a target), a LeNet
layer (conv2d, max pool and their gradients; ms per step, checked against numpy; not a target), and
an Elman RNN over a sequence with its BPTT gradient: two scans whose steps run on the GPU, called
once per step from a host loop (ms per call, wall clock, beside the CPU backend's C loops; checked
against numpy; not a target).

Times are taken on the device (CUDA events around `--reps` launches, after a warm-up) and
compared with the device-to-device copy bandwidth measured the same way (cuMemcpyDtoD).
Bandwidth counts the bytes a kernel must move: inputs read plus outputs written; a copy
reads and writes each byte once. Run by bench/cuda_check.sh on a machine with a GPU; prints
a Markdown table for bench/RESULTS.md and writes the figures as JSON to --json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import gencomp
import gencomp.tensor as T
from gencomp import function
from gencomp.runtime_cuda import DeviceArray, _init
from gencomp.tensor.reduce import Reduce
from gencomp.tensor.signal.pool import pool_2d


def device_ms(drv, action, reps: int) -> float:
    """Milliseconds per call of `action`, by CUDA events around `reps` calls after two warm-ups."""
    for _ in range(2):
        action()
    start, end = drv.Event(), drv.Event()
    start.record()
    for _ in range(reps):
        action()
    end.record()
    end.synchronize()
    return start.time_till(end) / reps


def copy_gbps(drv, n: int, reps: int) -> float:
    src, dst = DeviceArray((n,), np.float32), DeviceArray((n,), np.float32)
    nbytes = n * 4
    ms = device_ms(drv, lambda: drv.memcpy_dtod(dst.alloc, src.alloc, nbytes), reps)
    return 2 * nbytes / ms / 1e6


def kernel_ms(drv, f, arrays, reps: int, sm_count: int):
    """(ms per launch of f's kernel steps on device-resident `arrays`, the values after the last run)."""
    runner = f._runner
    if runner.steps is None:
        runner._prepare()
    launches = [s for s in runner.steps if hasattr(s, "run")]        # kernels and GPU products
    assert len(launches) == len(runner.steps), "benchmark functions must run on the device only"
    vals = list(arrays) + list(runner.rest)

    def action():
        for launch in launches:
            launch.run(vals, sm_count)

    return device_ms(drv, action, reps), vals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**8, help="elements per array (default 1e8)")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--gemm", type=int, default=4096, help="size of the square matrices of the dot case")
    parser.add_argument("--conv-batch", type=int, default=256, help="images per batch of the conv2d case")
    parser.add_argument("--rnn", type=int, nargs=3, default=(100, 64, 256), metavar=("STEPS", "BATCH", "HIDDEN"),
                        help="the RNN case: steps, batch and hidden size (default 100 64 256)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    state = _init()
    drv, sm_count = state["drv"], state["sm_count"]
    device = drv.Context.get_device()
    name = device.name()
    n = args.n
    rng = np.random.default_rng(0)
    hx = rng.uniform(-4, 4, n).astype(np.float32)
    hy = rng.uniform(-4, 4, n).astype(np.float32)
    dx, dy = DeviceArray.from_host(hx), DeviceArray.from_host(hy)
    copy = copy_gbps(drv, n, args.reps)
    x, y = T.fvector("x"), T.fvector("y")
    cases = [
        ("sigmoid(x) (1 in, 1 out)", function([x], 1 / (1 + T.exp(-x)), device="cuda"), [dx], 8),
        ("x * y + exp(-x) * 0.5 - y (2 in, 1 out)",
         function([x, y], x * y + T.exp(-x) * 0.5 - y, device="cuda"), [dx, dy], 12),
        ("sum(x) (1 in)", function([x], Reduce("sum", (0,))(x), device="cuda"), [dx], 4),
        ("max(abs(x)) (1 in)", function([x], Reduce("max", (0,))(abs(x)), device="cuda"), [dx], 4),
    ]
    rows, ok = [], True
    for label, f, arrays, bytes_per_element in cases:
        ms, vals = kernel_ms(drv, f, arrays, args.reps, sm_count)
        gbps = bytes_per_element * n / ms / 1e6
        out = vals[f._runner.output_args[0]].get()
        check = _check(label, out, hx, hy)
        ok &= check
        rows.append(dict(case=label, ms=round(ms, 4), gbps=round(gbps, 1),
                         pct_copy=round(100 * gbps / copy, 1), correct=check))
    print(f"\n{name} (compute {'.'.join(map(str, device.compute_capability()))}, {sm_count} SMs), "
          f"n = {n:.3g} float32, {args.reps} reps, device-side timing (CUDA events)")
    print(f"device-to-device copy: {copy:.1f} GB/s (read + write)\n")
    print("| case | ms | GB/s | % of copy | matches numpy |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        matches = "yes" if r["correct"] else "NO"
        print(f"| {r['case']} | {r['ms']:.3f} | {r['gbps']:.1f} | {r['pct_copy']:.1f} | {matches} |")
    target = rows[0]["pct_copy"] >= 70 and rows[1]["pct_copy"] >= 70
    print(f"\ntarget (fused elementwise >= 70 % of copy bandwidth): {'met' if target else 'NOT met'}")
    gemm = _gemm_case(drv, args.gemm, max(3, args.reps // 4), sm_count, rng)
    ok &= gemm["correct"]
    print(f"\ndot of two {args.gemm} x {args.gemm} float32 matrices (gc_gemm_float32): {gemm['ms']:.3f} ms, "
          f"{gemm['gflops']:.0f} GFLOP/s, matches numpy on sampled rows: {'yes' if gemm['correct'] else 'NO'}")
    conv = _conv_case(drv, args.conv_batch, max(3, args.reps // 4), sm_count, rng)
    ok &= conv["correct"]
    print(f"\nLeNet layer, {conv['shape']} float32 images (*) {conv['filters']} filters, then a 2 x 2 max "
          f"pool; forward and both gradients: {conv['ms']:.3f} ms, matches numpy: "
          f"{'yes' if conv['correct'] else 'NO'}")
    rnn = _rnn_case(*args.rnn, max(3, args.reps // 4), rng)
    ok &= rnn["correct"]
    print(f"\nElman RNN, {rnn['steps']} steps of a {rnn['batch']} x {rnn['hidden']} float32 state, forward and BPTT "
          f"gradient (two scans, their steps on the GPU): {rnn['ms']:.1f} ms per call (CPU backend: "
          f"{rnn['cpu_ms']:.1f} ms), matches numpy: {'yes' if rnn['correct'] else 'NO'}")
    if args.json:
        with open(args.json, "w") as fh:
            figures = dict(device=name, n=n, reps=args.reps, copy_gbps=round(copy, 1), cases=rows, gemm=gemm,
                           conv=conv, rnn=rnn)
            json.dump(figures, fh, indent=1)
    return 0 if ok else 1


def _gemm_case(drv, size: int, reps: int, sm_count: int, rng) -> dict:
    a_host = rng.standard_normal((size, size)).astype(np.float32)
    b_host = rng.standard_normal((size, size)).astype(np.float32)
    a, b = T.fmatrix("a"), T.fmatrix("b")
    f = function([a, b], T.dot(a, b), device="cuda")
    ms, vals = kernel_ms(drv, f, [DeviceArray.from_host(a_host), DeviceArray.from_host(b_host)], reps, sm_count)
    out = vals[f._runner.output_args[0]].get()
    rows = rng.choice(size, 8, replace=False)
    want = a_host[rows].astype(np.float64) @ b_host.astype(np.float64)
    correct = bool(np.allclose(out[rows], want, rtol=1e-3, atol=1e-3 * np.sqrt(size)))
    return dict(size=size, ms=round(ms, 4), gflops=round(2 * size**3 / ms / 1e6, 1), correct=correct)


def _conv_case(drv, batch: int, reps: int, sm_count: int, rng) -> dict:
    """LeNet's second layer (20 channels of 12 x 12 images, 50 filters of 5 x 5) and a max pool, with the
    gradients of 0.5 * sum(pool ** 2) with respect to the images and the filters."""
    shape, filters = (batch, 20, 12, 12), (50, 20, 5, 5)
    x_host = rng.standard_normal(shape).astype(np.float32)
    w_host = (rng.standard_normal(filters) * 0.1).astype(np.float32)
    x, w = T.ftensor4("x"), T.ftensor4("w")
    pooled = pool_2d(T.nnet.conv2d(x, w), ws=(2, 2), ignore_border=True)
    outs = [pooled, *T.grad((pooled * pooled).sum() * 0.5, [x, w])]
    f = function([x, w], outs, device="cuda")
    ms, vals = kernel_ms(drv, f, [DeviceArray.from_host(x_host), DeviceArray.from_host(w_host)], reps, sm_count)
    got = [vals[i].get() for i in f._runner.output_args]
    want = gencomp.function([x, w], outs, device="py")(x_host, w_host)
    correct = all(bool(np.allclose(g, r, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(r).max()))))
                  for g, r in zip(got, want))
    return dict(shape=list(shape), filters=list(filters), ms=round(ms, 4), correct=correct)


def _rnn_case(steps: int, batch: int, hidden: int, reps: int, rng) -> dict:
    """h_t = tanh(x_t W + h_{t-1} U + b) over `steps` steps, and the gradient of a cost of every h_t
    with respect to W, U, b and h0 (backpropagation through time: a scan running backwards). Both
    loops call their step, compiled for the GPU, once per step from the host: wall-clock ms per call,
    beside the same function on the CPU backend (its loops in C)."""
    n_in = max(1, hidden // 2)
    x, h0 = T.ftensor3("x"), T.fmatrix("h0")
    params = [T.fmatrix("W"), T.fmatrix("U"), T.fvector("b")]
    w, u, b = params
    hs, _ = gencomp.scan(lambda x_t, h: T.tanh(T.dot(x_t, w) + T.dot(h, u) + b), sequences=x, outputs_info=h0)
    cost = (hs * hs).mean() + hs[-1].sum()
    outs = [cost, *T.grad(cost, [w, u, b, h0])]
    values = [rng.standard_normal((steps, batch, n_in)).astype(np.float32),
              (rng.standard_normal((batch, hidden)) * 0.1).astype(np.float32),
              (rng.standard_normal((n_in, hidden)) / np.sqrt(n_in)).astype(np.float32),
              (rng.standard_normal((hidden, hidden)) * 0.9 / np.sqrt(hidden)).astype(np.float32),
              (rng.standard_normal(hidden) * 0.1).astype(np.float32)]
    timings, results = {}, {}
    for device in ("cuda", "cpu"):
        f = function([x, h0, *params], outs, device=device)
        args = [DeviceArray.from_host(v) for v in values] if device == "cuda" else values
        results[device] = f(*args)                      # compiles the step functions; a warm-up
        start = time.perf_counter()
        for _ in range(reps):
            f(*args)
        timings[device] = (time.perf_counter() - start) / reps * 1e3
    want = gencomp.function([x, h0, *params], outs, device="py")(*values)
    correct = all(bool(np.allclose(g, r, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(r).max()))))
                  for g, r in zip(results["cuda"], want))
    return dict(steps=steps, batch=batch, hidden=hidden, ms=round(timings["cuda"], 3),
                cpu_ms=round(timings["cpu"], 3), correct=correct)


def _check(label: str, out: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> bool:
    """The benchmark's result against numpy (float64), on a sample for the elementwise cases."""
    x64, y64 = hx.astype(np.float64), hy.astype(np.float64)
    if label.startswith("sigmoid"):
        want = 1 / (1 + np.exp(-x64))
    elif label.startswith("x * y"):
        want = x64 * y64 + np.exp(-x64) * 0.5 - y64
    elif label.startswith("sum"):
        return bool(np.isclose(out, x64.sum(), rtol=1e-6))
    else:
        return bool(out == np.abs(hx).max())
    return bool(np.allclose(out, want, rtol=1e-5, atol=1e-5))


if __name__ == "__main__":
    sys.exit(main())
