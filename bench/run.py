"""Run every benchmark and write bench/RESULTS.md (usage: python bench/run.py [--only a,b] [--no-write])."""
import argparse
import datetime
import importlib
import os
import platform
import subprocess
import sys

import _util as U

# The user's environment, before the benchmarks set GENCOMP_CACHE_DIR / PYTENSOR_FLAGS.
ENV = {k: os.environ[k] for k in sorted(os.environ)
       if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GENCOMP_", "PYTENSOR_"))}
BENCHES = ["bench_import", "bench_cold_compile", "bench_warm_load", "bench_call_overhead",
           "bench_elementwise", "bench_dot", "bench_reduce", "bench_mlp", "bench_rewrite",
           "bench_threads", "bench_models", "bench_lenet", "bench_rnn", "bench_flags", "bench_rows"]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              cwd=U.REPO).stdout.strip()
    except OSError as e:
        return str(e)


def machine(load_start):
    """Markdown block describing the machine and software versions."""
    import numexpr
    import numpy
    import pytensor
    gencomp, err = U.try_import_gencomp()
    gver = getattr(gencomp, "__version__", "?") if gencomp else f"not importable ({err})"
    commit = sh("git rev-parse --short HEAD 2>/dev/null") or "(no commit)"
    dirty = " + uncommitted changes" if sh("git status --porcelain") else ""
    return "\n".join([
        "## Machine", "", "```", sh("lscpu | head -20"), "```", "",
        f"- Python {platform.python_version()} ({sys.executable}), numpy {numpy.__version__}, "
        f"numexpr {numexpr.__version__}, pytensor {pytensor.__version__} "
        f"(mode={U.PYTENSOR_MODE}: C backend), gencomp {gver}",
        f"- C compiler: {sh('gcc --version | head -1')}",
        f"- repo: {commit}{dirty}",
        f"- load average (1, 5, 15 min) at the start of the run: "
        f"{tuple(round(v, 2) for v in load_start)}, at its end: "
        f"{tuple(round(v, 2) for v in os.getloadavg())} "
        "(other work on this 2-core machine inflates medians; mins are shown too)",
        f"- environment: {ENV or 'no OPENBLAS_/OMP_/MKL_/GENCOMP_/PYTENSOR_ variables set'}",
        ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", help="comma-separated benchmark names, e.g. import,elementwise")
    ap.add_argument("--no-write", action="store_true", help="print only, keep RESULTS.md")
    args = ap.parse_args()
    names, load_start = BENCHES, os.getloadavg()
    if args.only:
        names = [b for b in BENCHES if any(o in b for o in args.only.split(","))]
    sections = []
    for name in names:
        print(f"--- {name}", file=sys.stderr, flush=True)
        sec = importlib.import_module(name).run()
        print(sec.markdown(), flush=True)
        sections.append(sec)
    summary = U.Section("Summary of targets", ["benchmark", "source", "target", "measured",
                                               "limit", "verdict"])
    for sec in sections:
        for t in sec.targets:
            summary.row(sec.title.split(" ", 1)[0].rstrip("."), *t)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = "\n".join([
        "# gencomp benchmark results", "",
        f"Generated {when} by `python bench/run.py"
        + (f" --only {args.only}" if args.only else "") + "` from the repository root. "
        "Medians over interleaved repeats; lower is better; ratios are time / reference.",
        "", machine(load_start), summary.markdown()] + [s.markdown() for s in sections])
    if not args.no_write:
        with open(os.path.join(U.REPO, "bench", "RESULTS.md"), "w") as f:
            f.write(text)
        print("wrote bench/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
