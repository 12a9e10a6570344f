"""Export files read back: manifests, and lines read with the sha256 of the bytes on disk.

Writing them (privately, safely, whole) is :mod:`chatdb.jobs.atomic_files`.
The manifest (``FILE.manifest.json``) beside an export records what the file
holds: counts, and the sha256 of the bytes on disk (compressed, for ``.gz``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
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
