"""The `gencomp` command line, run as `python -m gencomp` in subprocesses on a private cache."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from gencomp import cli

REPO = Path(__file__).resolve().parent.parent

COMPILE = textwrap.dedent("""
    import sys, gencomp, gencomp.tensor as T
    x = T.dvector('x')
    f = gencomp.function([x], x * 2 + 1, name='double_plus_one')
    print(f.cache_key)
    for k in range(3, 3 + int(sys.argv[1]) - 1):
        print(gencomp.function([x], x * k + 1, name=f'times_{k}_plus_one').cache_key)
""")


@pytest.fixture
def env(tmp_path):
    """Environment for subprocesses: the test's own cache folder, the checkout importable."""
    environ = {k: v for k, v in os.environ.items() if k != "GENCOMP_FLAGS"}
    environ["GENCOMP_CACHE_DIR"] = str(tmp_path / "cache")
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    return environ


def root(env) -> Path:
    return Path(env["GENCOMP_CACHE_DIR"])


def entry_keys(env) -> set:
    return {p.name for p in root(env).iterdir() if p.is_dir() and not p.name.startswith(".")}


def compile_functions(env, count=1) -> list:
    """Keys of `count` real functions compiled in another process (the first: double_plus_one)."""
    proc = subprocess.run([sys.executable, "-c", COMPILE, str(count)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    keys = proc.stdout.split()
    assert len(set(keys)) == count and entry_keys(env) == set(keys)
    return keys


def gencomp(env, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "gencomp", *args], env=env, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def assert_one_line_error(proc, code):
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ---- helpers, in process ---------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [("1024", 1024), ("100K", 100 * 1024), ("500M", 500 * 2**20),
                                        ("2G", 2 * 2**30), ("1.5k", 1536), ("2GiB", 2 * 2**30),
                                        ("0", 0), (" 3 MB ", 3 * 2**20)])
def test_parse_size(text, size):
    assert cli.parse_size(text) == size


@pytest.mark.parametrize("text, seconds", [("45s", 45), ("15m", 900), ("12h", 43200),
                                           ("30d", 30 * 86400), ("2w", 14 * 86400), ("1.5h", 5400)])
def test_parse_age(text, seconds):
    assert cli.parse_age(text) == seconds


@pytest.mark.parametrize("parse, text", [(cli.parse_size, t) for t in ("5X", "-1", "M", "1e3", "")]
                         + [(cli.parse_age, t) for t in ("3", "soon", "-1d", "1y")])
def test_bad_quantities_are_refused(parse, text):
    with pytest.raises(cli.argparse.ArgumentTypeError, match="expected e.g."):
        parse(text)


@pytest.mark.parametrize("size, text", [(0, "0B"), (1023, "1023B"), (1024, "1.0K"),
                                        (12 * 1024, "12K"), (int(3.4 * 2**20), "3.4M"),
                                        (1023.9 * 1024, "1.0M"), (5 * 2**30, "5.0G")])
def test_human_size(size, text):
    assert cli.human_size(size) == text


@pytest.mark.parametrize("seconds, text", [(-2, "0s"), (5.7, "5s"), (180, "3m"),
                                           (2 * 3600 + 5, "2h"), (4 * 86400, "4d"),
                                           (400 * 86400, "400d")])
def test_human_age(seconds, text):
    assert cli.human_age(seconds) == text


def test_main_returns_exit_status_instead_of_exiting(capsys):
    assert cli.main(["--help"]) == 0
    assert "cache" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert cli.main(["cache", "frobnicate"]) == 2


def test_demo_dispatches_to_gencomp_demo(monkeypatch):
    monkeypatch.setitem(sys.modules, "gencomp.demo", types.SimpleNamespace(main=lambda: 3))
    import gencomp

    monkeypatch.setattr(gencomp, "demo", sys.modules["gencomp.demo"], raising=False)
    assert cli.main(["demo"]) == 3


# ---- gencomp cache ... -----------------------------------------------------------------------

def test_dir_prints_the_cache_folder(env):
    proc = gencomp(env, "cache", "dir")
    assert proc.returncode == 0 and proc.stdout.strip() == env["GENCOMP_CACHE_DIR"]


def test_list_empty_cache(env):
    proc = gencomp(env, "cache", "list")
    assert proc.returncode == 0 and "cache is empty" in proc.stdout


def test_list_shows_key_prefix_name_size_and_age(env):
    keys = compile_functions(env, 2)
    proc = gencomp(env, "cache", "list")
    assert proc.returncode == 0, proc.stderr
    header, *rows, total = proc.stdout.strip().splitlines()
    assert header.split() == ["KEY", "NAME", "BACKEND", "SIZE", "AGE"]
    assert {row.split()[0] for row in rows} == {k[:12] for k in keys}
    row = next(r for r in rows if r.startswith(keys[0][:12])).split()
    assert row[1:3] == ["double_plus_one", "c"] and row[3].endswith("K") and row[4].endswith("s")
    assert total.startswith("2 entries") and str(root(env)) in total


def test_show_by_prefix_prints_metadata_then_source(env):
    key, = compile_functions(env)
    proc = gencomp(env, "cache", "show", key[:8])
    assert proc.returncode == 0, proc.stderr
    summary, _, source = proc.stdout.partition("----- module.c -----\n")
    for text in (f"key:         {key}", "name:        double_plus_one", "backend:     c",
                 "created:", "compile:", "command:", "graph:", "Elemwise"):
        assert text in summary
    assert source == (root(env) / key / "module.c").read_text()
    assert "gc_elemwise_0" in source


def test_show_source_only(env):
    key, = compile_functions(env)
    proc = gencomp(env, "cache", "show", "--source-only", key)
    assert proc.returncode == 0 and proc.stdout == (root(env) / key / "module.c").read_text()
    assert "gc_elemwise_0" in proc.stdout and "key:" not in proc.stdout


def test_show_unknown_key_is_one_line_exit_1(env):
    compile_functions(env)
    proc = gencomp(env, "cache", "show", "nosuchkey")
    assert_one_line_error(proc, 1)
    assert "nosuchkey" in proc.stderr and proc.stdout == ""


def test_show_ambiguous_prefix_lists_the_matches(env):
    key, = compile_functions(env)
    twin = key[:8] + ("0" if key[8] != "0" else "1") * 56
    shutil.copytree(root(env) / key, root(env) / twin)
    proc = gencomp(env, "cache", "show", key[:8])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "ambiguous" in proc.stderr and key[:16] in proc.stderr and twin[:16] in proc.stderr


def test_clear_asks_and_deletes_nothing_unless_yes(env):
    keys = compile_functions(env, 2)
    for answer in ("n\n", "", "no\n", "maybe\n"):
        proc = gencomp(env, "cache", "clear", stdin=answer)
        assert proc.returncode == 1 and f"Delete 2 entries in {root(env)}? [y/N]" in proc.stdout
        assert entry_keys(env) == set(keys)
    assert gencomp(env, "cache", "clear").returncode == 1      # no stdin at all
    assert entry_keys(env) == set(keys)
    proc = gencomp(env, "cache", "clear", stdin="y\n")
    assert proc.returncode == 0 and "removed 2 entries" in proc.stdout
    assert entry_keys(env) == set()


def test_clear_yes_does_not_ask(env):
    compile_functions(env)
    proc = gencomp(env, "cache", "clear", "--yes")
    assert proc.returncode == 0 and "[y/N]" not in proc.stdout and "removed 1 entry" in proc.stdout
    assert entry_keys(env) == set() and not (root(env) / ".templates").exists()
    assert "cache is empty" in gencomp(env, "cache", "list").stdout


def test_prune_max_size_zero_removes_everything(env):
    keys = compile_functions(env, 2)
    proc = gencomp(env, "cache", "prune", "--max-size", "0")
    assert proc.returncode == 0, proc.stderr
    assert all(f"removed {k[:12]}" in proc.stdout for k in keys)
    assert "removed 2 entries" in proc.stdout
    assert entry_keys(env) == set()


def test_prune_older_than_keeps_fresh_entries(env):
    old, fresh = compile_functions(env, 2)
    two_days_ago = time.time() - 2 * 86400
    os.utime(root(env) / old, (two_days_ago, two_days_ago))
    proc = gencomp(env, "cache", "prune", "--older-than", "1d")
    assert proc.returncode == 0, proc.stderr
    assert f"removed {old[:12]}" in proc.stdout and "kept 1 entry" in proc.stdout
    assert entry_keys(env) == {fresh}


@pytest.mark.parametrize("args", [["--max-size", "5X"], ["--max-size", "-1G"],
                                  ["--older-than", "3"], ["--older-than", "soon"], []])
def test_prune_bad_values_exit_2(env, args):
    proc = gencomp(env, "cache", "prune", *args)
    assert_one_line_error(proc, 2)
    assert ("--max-size" in proc.stderr) or ("--older-than" in proc.stderr)


@pytest.mark.parametrize("args", [["list"], ["show", "abc"], ["clear", "--yes"],
                                  ["prune", "--max-size", "0"]])
def test_world_writable_cache_folder_is_refused(env, args):
    entry = root(env) / ("ab" * 32)
    os.makedirs(entry)
    os.chmod(root(env), 0o777)
    proc = gencomp(env, "cache", *args)
    assert_one_line_error(proc, 1)
    assert "chmod" in proc.stderr and entry.is_dir()


# ---- gencomp info ----------------------------------------------------------------------------

def test_info_reports_versions_and_compiler(env):
    proc = gencomp(env, "info")
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split(":", 1) for line in proc.stdout.splitlines())
    for name in ("gencomp", "Python", "numpy", "cffi", "jinja2", "cache", "C compiler", "OpenMP",
                 "nvcc", "CUDA device"):
        assert fields[name].strip(), name
    assert os.path.realpath(shutil.which("cc")) in fields["C compiler"]
    assert env["GENCOMP_CACHE_DIR"] in fields["cache"]


def test_info_without_nvcc_or_pycuda(env):
    env["PATH"] = os.path.dirname(os.path.realpath(shutil.which("cc")))   # the compiler, no nvcc
    proc = gencomp(env, "info")
    assert proc.returncode == 0, proc.stderr
    if shutil.which("nvcc", path=env["PATH"]) is None:
        assert "nvcc:        not found" in proc.stdout
    assert "CUDA device: " in proc.stdout
