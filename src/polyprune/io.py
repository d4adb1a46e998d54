"""Atomic outputs: a failed or killed job leaves nothing that looks finished."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from polyprune.errors import DataError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def _temp_sibling(path: Path) -> Path:
    """A fresh temporary name beside `path`, after removing those of earlier attempts (a killed
    job cannot clean up after itself; Snakemake runs one job per output at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _publish(tmp: Path) -> None:
    """Give `tmp` (a file or a tree) the umask's permissions: some writers (safetensors) create
    files readable by their owner only, which a shared cluster file system must not get."""
    for p in [tmp, *tmp.rglob("*")] if tmp.is_dir() else [tmp]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~UMASK)


@contextmanager
def atomic_file(path: str | Path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        _publish(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a fresh temporary directory beside `path`; it replaces `path` only on success."""
    path = Path(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        _publish(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def read_json(path: str | Path, what: str = "JSON file"):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable {what} ({e})") from e


def file_digest(path: str | Path, full_limit: int | None = None) -> str:
    """sha256 of a file, or of every file under a directory (with their relative paths). Files
    above `full_limit` bytes are identified by their size and first and last MiB."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        size = f.stat().st_size
        with open(f, "rb") as fh:
            if full_limit is not None and size > full_limit:
                h.update(str(size).encode() + fh.read(1 << 20))
                fh.seek(-(1 << 20), 2)
                h.update(fh.read())
                continue
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()
