"""Benchmark: what the C compiler's optimization level costs and buys on whole training steps.

For the LeNet-5, Elman and LSTM steps of bench_lenet.py / bench_rnn.py: cold function() in a fresh
process with an empty cache, and the median step once compiled, at the default flags (-O2) and with
-O2 replaced by -O3; runs interleaved, each in a process of its own.
"""
import _util as U

from gencomp.config import _DEFAULT_CFLAGS

CODE = """
import json, statistics, sys, time
sys.path.insert(0, 'bench')
MODEL = {model!r}
if MODEL == 'LeNet-5':
    import bench_lenet as B
    X, y, params = B.problem()
    t = time.perf_counter(); step = B.gencomp_step(params); cold = time.perf_counter() - t
    call = lambda: step(X, y)
else:
    import bench_rnn as B
    X, y, mask, params = B.problem(MODEL)
    t = time.perf_counter(); step = B.build('gencomp', MODEL, params); cold = time.perf_counter() - t
    call = lambda: step(X, y, mask)
for _ in range(3):
    call()
times = []
for _ in range(15):
    t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
print(json.dumps({{"cold": cold, "step": statistics.median(times)}}))
"""
MODELS = ("LeNet-5", "Elman RNN", "LSTM")
FLAGS = {"-O2 (default)": _DEFAULT_CFLAGS, "-O3": _DEFAULT_CFLAGS.replace("-O2", "-O3")}
ROUNDS = 3


def run():
    sec = U.Section("Compile flags: -O2 (the default) and -O3 on whole training steps",
                    ["model", "flags", "cold function() (median)", "min", "step (median of medians)", "runs"])
    for model in MODELS:
        res = {label: [] for label in FLAGS}
        for _ in range(ROUNDS):
            for label, flags in FLAGS.items():
                d = U.fresh_dir("flags")
                try:
                    res[label].append(U.run_fresh(CODE.format(model=model), GENCOMP_CACHE_DIR=d,
                                                  GENCOMP_FLAGS=f"cflags={flags}"))
                finally:
                    U.clean(d)
        for label, runs in res.items():
            colds, steps = [r["cold"] for r in runs], [r["step"] for r in runs]
            sec.row(model, label, U.fmt_time(U.median(colds)), U.fmt_time(min(colds)), U.fmt_time(U.median(steps)),
                    str(len(runs)))
    sec.note("each run a fresh process with an empty compile cache; `cd bench && python bench_flags.py`")
    return sec


if __name__ == "__main__":
    U.main_wrapper(run)
