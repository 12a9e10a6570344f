"""Export files on disk: written atomically and privately, read back line by line.

An export is written to a temporary name in the destination's directory with
mode 0600 (chat logs are personal data), fsync'd, and renamed over the final
name only when complete, so a file with the final name is always whole (a
temporary left by a killed writer is deleted by the next export to that name). Its
sha256 is of the bytes on disk (compressed, for ``.gz``). The manifest
(``FILE.manifest.json``) beside it records what the file holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from chatdb.errors import ImportFileError, UsageError

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


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest beside ``path``, or None if there is none."""
    where = manifest_path(path)
    try:
        if not where.exists():
            return None
    except OSError as exc:  # a name too long for the file system, for example
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(where.read_text())
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"cannot read the manifest {where}: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise ImportFileError(f"{where} is not a chatdb export manifest")
    return data


class _HashingReader:
    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass
class ExportReader:
    """Reads an export file's lines (gzip by its magic bytes), hashing the bytes on disk.

    Iterating yields ``(line_number, line_bytes)``; afterwards :attr:`sha256`
    and :attr:`size` describe the whole file. A truncated or corrupt gzip
    stream, or a last line without its newline, is an :class:`ImportFileError`.
    """

    path: Path

    def __post_init__(self) -> None:
        self.sha256 = ""
        self.size = 0
        self.lines = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror}") from None
        with raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            hashing = _HashingReader(raw)
            stream: Any = gzip.GzipFile(fileobj=hashing, mode="rb") if compressed else hashing  # type: ignore[arg-type]
            number = 0
            try:
                pending = b""
                while True:
                    chunk = stream.read(1 << 20)
                    if not chunk:
                        break
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        number += 1
                        yield number, line
                if pending:
                    raise ImportFileError(
                        f"{self.path}: line {number + 1} has no end of line: the file is truncated",
                        [(number + 1, "no end of line (truncated)")],
                    )
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise ImportFileError(
                    f"{self.path}: compressed data is truncated or corrupt after line {number} ({exc})",
                    [(number + 1, "truncated or corrupt compressed data")],
                ) from None
            hashing.drain()
            self.sha256 = hashing.sha256.hexdigest()
            self.size = hashing.bytes
            self.lines = number
