"""Export files on disk: written atomically and privately, read back line by line.

An export is written to a temporary name in the destination's directory with
mode 0600 (chat logs are personal data), fsync'd, and renamed over the final
name only when complete, so a file with the final name is always whole (a
temporary left by a killed writer is deleted by the next export to that name). Its
sha256 is of the bytes on disk (compressed, for ``.gz``). The manifest
(``FILE.manifest.json``) beside it records what the file holds. Reading
exports back is :mod:`chatdb.jobs.reading`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from chatdb.errors import UsageError

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_KIND = "chatdb-export"
GZIP_MAGIC = b"\x1f\x8b"


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


class _HashingWriter:
    """Counts and hashes every byte on its way to the file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class AtomicExportFile:
    """A file that appears under its final name only once complete (``.gz``: compressed)."""

    def __init__(self, path: Path, *, compress: bool | None = None) -> None:
        self.path = path
        directory = path.parent if str(path.parent) else Path(".")
        if not directory.is_dir():
            raise UsageError(f"cannot write {path}: directory {directory} does not exist")
        self.tmp = directory / f".{path.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        self._raw = os.fdopen(fd, "wb", buffering=1 << 20)
        self._hashing = _HashingWriter(self._raw)
        compress = path.name.endswith(".gz") if compress is None else compress
        self._out: Any = (
            gzip.GzipFile(fileobj=self._hashing, mode="wb", compresslevel=6, mtime=0)  # type: ignore[arg-type]
            if compress
            else self._hashing
        )
        self.done = False

    def write(self, data: bytes) -> None:
        self._out.write(data)

    @property
    def sha256(self) -> str:
        return self._hashing.sha256.hexdigest()

    @property
    def size(self) -> int:
        return self._hashing.bytes

    def commit(self) -> None:
        """Flush, fsync, and rename to the final name (then fsync the directory)."""
        if self._out is not self._hashing:
            self._out.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.tmp, self.path)
        _fsync_directory(self.path.parent)
        self.done = True
        remove_stale_temporaries(self.path)

    def abort(self) -> None:
        if self.done:
            return
        try:
            self._raw.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicExportFile:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` left by writers on this host that died (``kill -9``) before renaming.

    A temporary is named ``.NAME.PID.tmp``; one whose process is still running
    (another export in progress) is left alone.
    """
    prefix, suffix = f".{path.name}.", ".tmp"
    directory = path.parent if str(path.parent) else Path(".")
    for leftover in directory.iterdir():
        pid = leftover.name[len(prefix):-len(suffix)]
        if leftover.name.startswith(prefix) and leftover.name.endswith(suffix) and pid.isdigit():
            if int(pid) != os.getpid() and not _process_running(int(pid)):
                leftover.unlink(missing_ok=True)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory if str(directory) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    with AtomicExportFile(path, compress=False) as out:
        out.write((json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
        out.commit()
