"""The content-addressed compile cache on disk: one folder per key, published atomically.

An entry is `<root>/<key>/` holding the generated source, the compiled module, the
cffi declaration module and `meta.json` (which records the module's SHA-256, so a
truncated or altered module is detected and rebuilt). Entries are built in a
private temporary folder and renamed into place; there is no lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

META = "meta.json"


class CacheDirError(PermissionError):
    """The cache folder is unsafe to load code from (or cannot be created)."""


def ensure_root(path, owned_default: bool = False) -> Path:
    """The cache folder, created private (0700); refused if another user can write to it.

    `owned_default`: the checkout's own cache/ (made by git under the user's umask),
    which gencomp may make private itself rather than refuse.
    """
    root = Path(path)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            os.chmod(root, 0o700)
        except OSError as exc:
            raise CacheDirError(f"cannot create the gencomp cache folder {root}: {exc}; set "
                                f"GENCOMP_CACHE_DIR or gencomp.config.cache_dir to a writable folder") from None
        st = os.stat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise CacheDirError(f"gencomp cache path {root} is not a folder")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheDirError(f"gencomp cache folder {root} belongs to another user (uid {st.st_uid}); "
                            f"nothing in it is loaded. Use a folder of your own: set GENCOMP_CACHE_DIR "
                            f"or gencomp.config.cache_dir")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and owned_default:
        os.chmod(root, stat.S_IMODE(st.st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))
        st = os.stat(root)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(f"gencomp cache folder {root} can be written by other users "
                            f"(mode {stat.S_IMODE(st.st_mode):o}); nothing in it is loaded. Fix it with "
                            f"`chmod go-w {root}` or choose another folder with GENCOMP_CACHE_DIR")
    return root


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@dataclass
class Entry:
    key: str
    path: Path
    meta: dict

    def file(self, role: str) -> Path:
        return self.path / self.meta["files"][role]


def read_entry(root: Path, key: str) -> Entry | None:
    """The valid entry for `key`, or None; an entry that is corrupt is removed."""
    path = root / key
    meta_path = path / META
    if not meta_path.is_file():
        if path.exists():
            discard(root, key)
        return None
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        entry = Entry(key, path, meta)
        if meta["key"] != key or file_sha256(entry.file("module")) != meta["module_sha256"]:
            raise ValueError("module checksum mismatch")
        for role in meta["files"]:
            if not entry.file(role).is_file():
                raise ValueError(f"missing {role}")
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        discard(root, key)
        return None


def discard(root: Path, key: str) -> None:
    """Remove an entry: renamed away first, so no reader ever sees it half-deleted."""
    trash = root / f".trash-{key[:16]}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(root / key, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def publish(root: Path, key: str, build) -> Entry:
    """Build an entry with `build(folder) -> meta` in a temporary folder, then rename it into place.

    If another process published the same key first, its entry is used and ours dropped.
    """
    tmp = root / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.mkdir(tmp, 0o700)
    try:
        meta = build(tmp)
        meta["key"] = key
        meta["module_sha256"] = file_sha256(tmp / meta["files"]["module"])
        with open(tmp / META, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        for attempt in range(3):
            try:
                os.rename(tmp, root / key)
                return Entry(key, root / key, meta)
            except OSError:
                existing = read_entry(root, key)       # removes it if corrupt, then we retry
                if existing is not None:
                    return existing
        raise OSError(f"could not publish cache entry {key} in {root}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---- inspection and cleanup, used by the CLI -------------------------------------------------

@dataclass
class EntryInfo:
    key: str
    path: Path
    name: str
    backend: str
    size: int
    mtime: float
    valid: bool


def _folder_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def list_entries(root: Path) -> list[EntryInfo]:
    """Every entry folder under `root` (newest first); temporary and trash folders are skipped."""
    if not root.is_dir():
        return []
    result = []
    for child in root.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        meta = {}
        try:
            with open(child / META, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            pass
        try:
            mtime = child.stat().st_mtime
        except FileNotFoundError:          # removed by another process meanwhile
            continue
        result.append(EntryInfo(child.name, child, str(meta.get("name", "?")), str(meta.get("backend", "?")),
                                _folder_size(child), mtime, bool(meta)))
    result.sort(key=lambda e: (-e.mtime, e.key))
    return result


def find(root: Path, prefix: str) -> list[EntryInfo]:
    return [e for e in list_entries(root) if e.key.startswith(prefix)]


def remove_all(root: Path) -> int:
    count = 0
    for entry in list_entries(root):
        discard(root, entry.key)
        count += 1
    for child in root.iterdir() if root.is_dir() else ():
        try:
            stale = time.time() - child.stat().st_mtime > 3600
        except FileNotFoundError:
            continue
        if child.name.startswith((".tmp-", ".trash-")) and stale:
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith((".fastcall-", ".templates", ".fingerprints")):   # gencomp's extension,
            shutil.rmtree(child, ignore_errors=True)     # compiled templates, fingerprints: rebuilt when needed
    return count


def prune(root: Path, max_size: int | None = None, older_than: float | None = None) -> list[str]:
    """Remove entries older than `older_than` seconds, then the oldest until the total fits `max_size`."""
    removed, now = [], time.time()
    entries = list_entries(root)
    kept = []
    for e in entries:
        if older_than is not None and now - e.mtime > older_than:
            discard(root, e.key)
            removed.append(e.key)
        else:
            kept.append(e)
    if max_size is not None:
        total = sum(e.size for e in kept)
        for e in sorted(kept, key=lambda e: e.mtime):
            if total <= max_size:
                break
            discard(root, e.key)
            removed.append(e.key)
            total -= e.size
    return removed


def touch(entry: Entry) -> None:
    """Mark an entry as used now (prune removes the least recently used first)."""
    try:
        os.utime(entry.path)
    except OSError:
        pass
