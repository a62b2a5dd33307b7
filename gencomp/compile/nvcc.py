"""The CUDA compiler driver: a generated .cu to a fatbin with nvcc, stored in the same disk cache as C.

The fatbin holds machine code (cubin) for the present GPU's architecture, or, when this
machine has no GPU, for a fixed list of architectures, plus PTX of the newest one so that
later GPUs can JIT it. nvcc's version and the architectures are part of the cache key.
Nothing here needs a GPU or PyCUDA: a function can be compiled on a machine without either.
"""

from __future__ import annotations

import datetime
import functools
import os
import shlex
import shutil
import struct
import subprocess
import time
from pathlib import Path

from ..config import checkout_cache_dir
from ..graph.hashing import sha256_key
from . import cache

DEFAULT_ARCHS = ("sm_80", "sm_90")       # A100, H100/H200: used when no GPU is visible
# Warnings are gencomp bugs: generated sources must compile cleanly, so any warning fails the build.
# No FMA contraction (as the C backend): a * b + c rounds twice, as numpy computes it.
NVCC_FLAGS = ("-std=c++17", "-O3", "-fmad=false", "-Werror", "all-warnings", "--threads", "0")
_FALLBACK_PATHS = ("/usr/local/cuda/bin/nvcc",)

_LOADED: dict = {}        # (cache root, key) -> entry: one read of meta.json per process


class NvccNotFoundError(RuntimeError):
    """nvcc (the CUDA compiler) is not installed: device='cuda' cannot compile."""


class NvccError(RuntimeError):
    """nvcc rejected a generated source, or warned about it (a gencomp bug: please report it)."""


@functools.lru_cache(maxsize=None)
def nvcc_path() -> str:
    found = shutil.which("nvcc") or next((p for p in _FALLBACK_PATHS if os.access(p, os.X_OK)), None)
    if found is None:
        raise NvccNotFoundError("device='cuda' needs nvcc, the CUDA compiler, which is not on PATH (nor in "
                                "/usr/local/cuda/bin); install the CUDA toolkit or use device='cpu'")
    return os.path.realpath(found)


@functools.lru_cache(maxsize=None)
def nvcc_version(path: str | None = None) -> str:
    """The release line of `nvcc --version`, e.g. 'Cuda compilation tools, release 13.0, V13.0.88'."""
    proc = subprocess.run([path or nvcc_path(), "--version"], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if "release" in line]
    return lines[-1].strip() if lines else (proc.stdout.strip().splitlines() or ["unknown"])[-1]


@functools.lru_cache(maxsize=None)
def device_archs() -> tuple:
    """sm_XY of each visible GPU (through nvidia-smi), else DEFAULT_ARCHS."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return DEFAULT_ARCHS
    try:
        proc = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_ARCHS
    caps = sorted({line.strip().replace(".", "") for line in proc.stdout.splitlines() if line.strip()})
    if proc.returncode != 0 or not caps or not all(c.isdigit() for c in caps):
        return DEFAULT_ARCHS
    return tuple(f"sm_{c}" for c in caps)


def command(archs, source: str, output: str) -> list[str]:
    """nvcc's command line: a cubin per architecture and PTX of the newest; names relative to the entry."""
    cmd = [nvcc_path(), *NVCC_FLAGS, "-fatbin"]
    for arch in archs:
        cmd += ["-gencode", f"arch=compute_{arch[3:]},code={arch}"]
    cmd += ["-gencode", f"arch=compute_{archs[-1][3:]},code=compute_{archs[-1][3:]}"]
    return cmd + ["-o", output, source]


def cache_key(parts: list) -> str:
    """The key of a CUDA module: `parts` (gencomp's code fingerprint, the canonical graph) and nvcc."""
    path = nvcc_path()
    return sha256_key(["backend=cuda", f"nvcc={path} {nvcc_version(path)}",
                       f"archs={','.join(device_archs())}", f"nvccflags={shlex.join(NVCC_FLAGS)}", *parts])


def build_cuda(key_parts: list, snapshot, render):
    """(entry, cache_hit) of a CUDA module, compiling it only when the cache lacks it.

    `render(key)` gives (source text, meta {...} to store); it is called on a cache miss only."""
    key = cache_key(key_parts)
    root = cache.ensure_root(snapshot.cache_dir, owned_default=snapshot.cache_dir == checkout_cache_dir())
    loaded = _LOADED.get((str(root), key))
    if loaded is not None and (loaded.path / cache.META).is_file():
        return loaded, True
    entry = cache.read_entry(root, key)
    hit = entry is not None
    if entry is None:
        entry = cache.publish(root, key, functools.partial(
            _build_entry, key=key, render=render))
    else:
        cache.touch(entry)
    _LOADED[(str(root), key)] = entry
    return entry, hit


def compile_fatbin(cmd: list[str], folder: Path) -> tuple:
    """Run nvcc in `folder`: (seconds, stderr). NvccError with nvcc's message on any error or warning."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    if proc.returncode != 0:
        raise NvccError(f"nvcc failed on {folder / cmd[-1]} ({shlex.join(cmd)}):\n{proc.stderr.strip()}")
    return time.perf_counter() - start, proc.stderr.strip()


def _build_entry(folder: Path, key, render) -> dict:
    source, meta = render(key)
    (folder / "module.cu").write_text(source, encoding="utf-8")
    archs = device_archs()
    cmd = command(archs, "module.cu", "module.fatbin")
    seconds, stderr = compile_fatbin(cmd, folder)
    return {
        **meta,
        "backend": "cuda",
        "command": shlex.join(cmd),
        "nvcc": nvcc_version(cmd[0]),
        "archs": list(archs),
        "compiler_messages": stderr,
        "compile_seconds": round(seconds, 4),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": {"source": "module.cu", "module": "module.fatbin"},
    }


def fatbin_contents(path) -> list:
    """[(kind, arch)] of the images in a fatbin: kind 'cubin' or 'ptx', arch e.g. 'sm_90' / 'compute_90'."""
    data = Path(path).read_bytes()
    magic, _, header, size = struct.unpack_from("<IHHQ", data, 0)
    if magic != 0xBA55ED50:
        raise ValueError(f"{path} is not a CUDA fatbin")
    result, offset = [], header
    while offset < header + size:
        kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, offset)
        arch = struct.unpack_from("<I", data, offset + 0x1C)[0]
        result.append(("ptx", f"compute_{arch}") if kind == 1 else ("cubin", f"sm_{arch}"))
        offset += entry_header + payload
    return result
