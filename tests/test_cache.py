"""The disk cache: keys stable across processes, warm loads, concurrent builds, corrupt entries, permissions."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gencomp
import gencomp.tensor as T
from gencomp import function
from gencomp.compile import cache

SNIPPET = textwrap.dedent("""
    import json, time, numpy as np, gencomp, gencomp.tensor as T
    x, y = T.matrices('x', 'y')
    start = time.perf_counter()
    f = gencomp.function([x, y], T.exp(-x) * T.sin(y) + x * y / (1 + abs(x)), name='fused')
    seconds = time.perf_counter() - start
    out = f(np.arange(6.).reshape(2, 3), np.ones((2, 3)))
    print(json.dumps({"key": f.cache_key, "hit": f.cache_hit, "seconds": seconds,
                      "out": out.tolist(), "source": f.source_path}))
""")


def run_snippet(cache_dir, snippet=SNIPPET):
    env = dict(os.environ, GENCOMP_CACHE_DIR=str(cache_dir))
    proc = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_loads_from_disk(tmp_path):
    first = run_snippet(tmp_path / "c")
    second = run_snippet(tmp_path / "c")
    assert not first["hit"] and second["hit"]
    assert first["key"] == second["key"] and first["out"] == second["out"]
    assert os.path.isfile(second["source"])


@pytest.mark.slow
def test_same_graph_same_key_and_bytes_in_another_process(fresh_cache):
    x, y = T.matrices("x", "y")
    f = function([x, y], T.exp(-x) * T.sin(y) + x * y / (1 + abs(x)), name="fused")
    other = run_snippet(fresh_cache)
    assert other["key"] == f.cache_key and other["hit"]


@pytest.mark.slow
def test_concurrent_processes_build_the_same_new_graph(tmp_path):
    root = tmp_path / "shared-cache"
    env = dict(os.environ, GENCOMP_CACHE_DIR=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", SNIPPET], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["key"] for r in results}) == 1
    assert all(r["out"] == results[0]["out"] for r in results)
    entries = [e for e in root.iterdir() if not e.name.startswith(".")]
    assert len(entries) == 1 and not [e for e in root.iterdir() if e.name.startswith(".tmp")]


def _build(name):
    x = T.vector("x")
    return function([x], T.sqrt(abs(x)) + 1, name=name)


@pytest.mark.parametrize("damage", ["truncate_module", "garbage_meta", "delete_ffi", "empty_folder"])
def test_corrupt_entry_is_detected_and_rebuilt(fresh_cache, damage):
    f = _build("victim")
    entry = fresh_cache / f.cache_key
    if damage == "truncate_module":
        # a new file (new inode), as a crashed writer leaves it: the loaded copy stays mapped
        data = (entry / "module.so").read_bytes()
        (entry / "module.so").unlink()
        (entry / "module.so").write_bytes(data[: len(data) // 3])
    elif damage == "garbage_meta":
        (entry / "meta.json").write_text("{not json")
    elif damage == "delete_ffi":
        (entry / "ffi.py").unlink()
    else:
        for child in entry.iterdir():
            child.unlink()
    gencomp.compile.build._LOADED.clear()       # as a new process would be
    g = _build("victim")
    assert not g.cache_hit and g.cache_key == f.cache_key
    np.testing.assert_allclose(g([4.0, -9.0]), [3.0, 4.0])
    assert cache.read_entry(fresh_cache, f.cache_key) is not None


@pytest.mark.slow
def test_truncated_module_is_rebuilt_by_a_new_process(tmp_path):
    first = run_snippet(tmp_path / "c")
    module = tmp_path / "c" / first["key"] / "module.so"
    module.write_bytes(module.read_bytes()[:100])
    second = run_snippet(tmp_path / "c")
    assert not second["hit"] and second["out"] == first["out"]
    third = run_snippet(tmp_path / "c")
    assert third["hit"]


def test_key_changes_with_graph_types_constants_and_flags(fresh_cache):
    x, xf = T.vector("x"), T.fvector("x")
    keys = {
        function([x], x + 1).cache_key,
        function([x], x + 2).cache_key,
        function([x], x * 1).cache_key,
        function([xf], xf + 1).cache_key,
    }
    with gencomp.config.change(cflags=gencomp.config.cflags + " -fno-tree-vectorize"):
        keys.add(function([x], x + 1).cache_key)
    assert len(keys) == 5


def test_meta_json_records_the_build(fresh_cache):
    f = _build("described")
    meta = json.loads((fresh_cache / f.cache_key / "meta.json").read_text())
    assert meta["name"] == "described" and meta["backend"] == "c"
    assert "gc_run_0" in meta["signature"] and meta["compile_seconds"] > 0
    assert meta["command"].split()[0].endswith(("gcc", "cc", "clang")) or "gcc" in meta["command"]
    assert any("sqrt" in line for line in meta["graph"]) and meta["created"]


def test_cache_folder_is_private(tmp_path):
    root = tmp_path / "new-cache"
    with gencomp.config.change(cache_dir=str(root)):
        _build("private")
    assert (os.stat(root).st_mode & 0o777) == 0o700


def test_world_writable_cache_is_refused(tmp_path):
    root = tmp_path / "open-cache"
    root.mkdir()
    os.chmod(root, 0o777)
    with gencomp.config.change(cache_dir=str(root)):
        with pytest.raises(PermissionError, match="chmod go-w"):
            _build("refused")
    assert list(root.iterdir()) == []


def test_cache_dir_precedence(tmp_path):
    code = "import gencomp; print(gencomp.config.cache_dir)"
    env = dict(os.environ, GENCOMP_CACHE_DIR=str(tmp_path / "a"), GENCOMP_FLAGS=f"cache_dir={tmp_path / 'b'}")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.strip() == str(tmp_path / "a")
    del env["GENCOMP_CACHE_DIR"]
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.strip() == str(tmp_path / "b")


def test_code_fingerprint_follows_the_sources_and_is_remembered(tmp_path, monkeypatch):
    """The fingerprint of gencomp's code (part of every key) is kept in the cache's .fingerprints
    under the files' stamps; an edited source (new size or time) gives a new fingerprint."""
    import shutil

    import gencomp.codegen as codegen

    package = tmp_path / "gencomp"
    shutil.copytree(os.path.dirname(codegen.__file__), package / "codegen")
    (package / "ops.py").write_text("x = 1\n")
    monkeypatch.setattr(codegen, "__file__", str(package / "codegen" / "__init__.py"))
    monkeypatch.setattr(codegen, "templates_dir", lambda: package / "codegen")
    monkeypatch.setattr(gencomp.config, "cache_dir", str(tmp_path / "cache"))
    codegen.code_fingerprint.cache_clear()
    try:
        first = codegen.code_fingerprint()
        assert len(first) == 64 and list((tmp_path / "cache" / ".fingerprints").iterdir())
        codegen.code_fingerprint.cache_clear()
        assert codegen.code_fingerprint() == first               # read back from .fingerprints
        (package / "ops.py").write_text("x = 2  # changed\n")
        codegen.code_fingerprint.cache_clear()
        assert codegen.code_fingerprint() != first
    finally:
        codegen.code_fingerprint.cache_clear()


def test_code_fingerprint_memo_creates_a_private_cache_folder(tmp_path):
    """The first thing to write into a new cache folder may be the code fingerprint's memo: it makes
    the folder as the modules do (0700), not with mkdir's default mode for parents."""
    from gencomp.codegen import code_fingerprint

    root = tmp_path / "fresh-cache"
    with gencomp.config.change(cache_dir=str(root)):
        code_fingerprint.cache_clear()
        try:
            assert len(code_fingerprint()) == 64
        finally:
            code_fingerprint.cache_clear()
    assert (os.stat(root).st_mode & 0o777) == 0o700
    assert (os.stat(root / ".fingerprints").st_mode & 0o777) == 0o700
