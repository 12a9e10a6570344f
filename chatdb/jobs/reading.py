"""Export files read back: lines with a length cap, batches with digests, manifests checked strictly.

Import and prune read an export twice: once to check every line, once to use
it. What is used must be what was checked, so the first read records a
sha256 per batch (:class:`BatchMark`: a few bytes per batch, whatever the
file's size) and the second read compares each batch with it before using it.
A stream (stdin) cannot be read twice: its bytes are copied, as read, to an
anonymous temporary file (already unlinked, mode 0600) that the second read
uses.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from chatdb.errors import ImportFileError, UsageError
from chatdb.jobs.files import GZIP_MAGIC, MANIFEST_KIND, manifest_path

# One line is one conversation with all its messages. PostgreSQL holds at most 1 GB in one
# value, and import sends each line to it as one; a quarter of that leaves room for the
# batch around it and for the JSON escapes, and is far above any conversation people write.
MAX_LINE_BYTES = 256 * 1024 * 1024
# A batch ends at this many bytes even before it has batch_size lines.
MAX_BATCH_BYTES = 32 * 1024 * 1024
MANIFEST_VERSIONS = (1, 2)  # the versions this chatdb reads; it writes the last
_CHUNK = 1 << 20


def source_file(path: Path) -> Path:
    """``path`` resolved (through symlinks) to a regular file, or a :class:`UsageError` saying what it is."""
    try:
        real = path.resolve(strict=True)
        mode = real.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"cannot read {path}: it is a directory; give an export file")
    if not stat.S_ISREG(mode):
        kind = (
            "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a named pipe"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a file"
        )
        raise UsageError(f"cannot read {path}: it is {kind}, not a regular file (a stream is read from stdin)")
    return real


class _Tee:
    """A raw stream that hashes (and optionally copies) every byte read from it."""

    def __init__(self, raw: BinaryIO, head: bytes, copy_to: BinaryIO | None) -> None:
        self.raw, self.head, self.copy_to = raw, head, copy_to
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
        else:
            data = self.raw.read(size if size and size > 0 else _CHUNK)
        self.sha256.update(data)
        self.bytes += len(data)
        if self.copy_to is not None:
            self.copy_to.write(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


class ExportLines:
    """The lines of an export (gzip recognised by its magic bytes), each at most ``max_line_bytes``.

    Iterating yields ``(line number, line bytes)`` once; afterwards
    :attr:`sha256` and :attr:`size` describe the bytes read (compressed, for a
    gzip file) and :attr:`lines` counts the lines. A line longer than the cap
    is refused as soon as the cap is passed, without reading the rest of it. A
    truncated or corrupt gzip stream, or a last line without its newline, is
    an :class:`ImportFileError`. ``copy_to`` receives every raw byte read.
    """

    def __init__(
        self,
        source: Path | BinaryIO,
        *,
        name: str | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        copy_to: BinaryIO | None = None,
    ) -> None:
        self.source = source
        self.name = name or str(source)
        self.max_line_bytes = max_line_bytes
        self.copy_to = copy_to
        self.sha256 = ""
        self.size = 0
        self.lines = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        if isinstance(self.source, Path):
            try:
                raw: BinaryIO = open(self.source, "rb")
            except OSError as exc:
                raise UsageError(f"cannot read {self.name}: {exc.strerror}") from None
        else:
            raw = self.source
        try:
            head = raw.read(2)
            tee = _Tee(raw, head, self.copy_to)
            stream: Any = gzip.GzipFile(fileobj=cast("IO[bytes]", tee), mode="rb") if head == GZIP_MAGIC else tee
            yield from self._split(stream)
            while tee.read(_CHUNK):  # the rest of the raw bytes (gzip trailer), for the digest
                pass
            self.sha256, self.size = tee.sha256.hexdigest(), tee.bytes
        except OSError as exc:
            if isinstance(exc, gzip.BadGzipFile):
                raise self._corrupt(exc) from None
            raise UsageError(f"cannot read {self.name}: {exc.strerror or exc}") from None
        except (EOFError, zlib.error) as exc:
            raise self._corrupt(exc) from None
        finally:
            if isinstance(self.source, Path):
                raw.close()

    def _split(self, stream: Any) -> Iterator[tuple[int, bytes]]:
        pending: list[bytes] = []
        pending_size = 0
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            parts = chunk.split(b"\n")
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                if pending_size + len(part) > self.max_line_bytes:
                    self._too_long()
                if last:
                    if part:
                        pending.append(part)
                        pending_size += len(part)
                    continue
                if pending:
                    pending.append(part)
                    part = b"".join(pending)
                    pending, pending_size = [], 0
                self.lines += 1
                yield self.lines, part
        if pending:
            raise ImportFileError(
                f"{self.name}: line {self.lines + 1} has no end of line: the file is truncated",
                [(self.lines + 1, "no end of line (truncated)")],
            )

    def _too_long(self) -> None:
        number = self.lines + 1
        problem = f"longer than {self.max_line_bytes} bytes, the longest line import reads"
        raise ImportFileError(f"{self.name}: line {number} is {problem}; nothing was imported", [(number, problem)])

    def _corrupt(self, exc: BaseException) -> ImportFileError:
        return ImportFileError(
            f"{self.name}: compressed data is truncated or corrupt after line {self.lines} ({exc})",
            [(self.lines + 1, "truncated or corrupt compressed data")],
        )


@dataclass(frozen=True)
class BatchMark:
    """Where a batch lies in the file, and the sha256 of its lines as they were checked."""

    first: int
    last: int
    sha256: str


def batches(
    lines: Iterable[tuple[int, bytes]], batch_size: int, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[tuple[list[tuple[int, bytes]], BatchMark]]:
    """Consecutive batches of at most ``batch_size`` lines (and about ``max_bytes``), with their marks."""
    batch: list[tuple[int, bytes]] = []
    size = 0
    digest = hashlib.sha256()
    for number, line in lines:
        batch.append((number, line))
        digest.update(line)
        digest.update(b"\n")
        size += len(line) + 1
        if len(batch) >= batch_size or size >= max_bytes:
            yield batch, BatchMark(batch[0][0], number, digest.hexdigest())
            batch, size, digest = [], 0, hashlib.sha256()
    if batch:
        yield batch, BatchMark(batch[0][0], batch[-1][0], digest.hexdigest())


def batches_as_checked(
    lines: Iterable[tuple[int, bytes]], marks: list[BatchMark], name: str
) -> Iterator[list[tuple[int, bytes]]]:
    """The second read, cut where the first was, each batch verified against its mark before it is yielded."""
    iterator = iter(lines)
    for mark in marks:
        batch: list[tuple[int, bytes]] = []
        digest = hashlib.sha256()
        for number, line in iterator:
            batch.append((number, line))
            digest.update(line)
            digest.update(b"\n")
            if number == mark.last:
                break
        if not batch or batch[0][0] != mark.first or batch[-1][0] != mark.last or digest.hexdigest() != mark.sha256:
            raise ImportFileError(
                f"{name} changed after it was checked: lines {mark.first} to {mark.last} now differ "
                "from what was checked; nothing from them was used"
            )
        yield batch
    if next(iterator, None) is not None:
        raise ImportFileError(
            f"{name} changed after it was checked: it has lines after line {marks[-1].last if marks else 0}"
        )


def spool() -> BinaryIO:
    """An anonymous private temporary file for a stream's bytes (gone when closed, or when chatdb dies)."""
    import tempfile

    return tempfile.TemporaryFile(prefix=".chatdb-import-")


@dataclass(frozen=True)
class Manifest:
    """The fields of ``FILE.manifest.json`` that import and prune rely on, checked."""

    path: Path
    version: int
    format: str
    conversations: int
    messages: int
    bytes: int
    sha256: str
    data: dict[str, Any]


def read_manifest(path: Path) -> Manifest | None:
    """The manifest beside ``path`` (a regular file, already resolved), or None if there is none."""
    where = manifest_path(path)
    try:
        if not where.exists():
            return None
    except OSError as exc:  # a name too long for the file system, for example
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return load_manifest(where)


def load_manifest(where: Path) -> Manifest:
    """A manifest file, with every field import relies on present and of the right type."""
    try:
        real = source_file(where)
        data: dict[str, Any] = json.loads(real.read_bytes())
    except UsageError as exc:
        raise ImportFileError(f"cannot read the manifest {where}: {exc.message.split(': ', 1)[-1]}") from None
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"the manifest {where} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise ImportFileError(f"{where} is not a chatdb export manifest (its kind is not {MANIFEST_KIND!r})")
    version: Any = data.get("manifest_version")
    if not _whole(version):
        raise ImportFileError(f"the manifest {where} has no valid manifest_version")
    if version not in MANIFEST_VERSIONS:
        newest = MANIFEST_VERSIONS[-1]
        raise ImportFileError(
            f"the manifest {where} is manifest_version {version}, which this chatdb does not read "
            f"(it reads versions 1 to {newest}){'; upgrade chatdb' if version > newest else ''}"
        )
    problems = [
        f"{field} is missing or not a whole number"
        for field in ("conversations", "messages", "bytes")
        if not _whole(data.get(field)) or data[field] < 0
    ]
    sha: Any = data.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(ch in "0123456789abcdef" for ch in sha)):
        problems.append("sha256 is missing or not 64 hex digits")
    if not isinstance(data.get("format"), str):
        problems.append("format is missing")
    if problems:
        raise ImportFileError(f"the manifest {where} cannot be used: {'; '.join(problems)}")
    if data["format"] != "jsonl":
        raise ImportFileError(f"the manifest {where} describes a {data['format']} export; import reads jsonl")
    return Manifest(where, version, data["format"], data["conversations"], data["messages"], data["bytes"], sha, data)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def expected_of(manifest: Manifest) -> dict[str, Any]:
    return {
        "sha256": manifest.sha256,
        "bytes": manifest.bytes,
        "conversations": manifest.conversations,
        "messages": manifest.messages,
    }


def compare(expected: dict[str, Any], found: dict[str, Any], source: str = "the manifest") -> list[str]:
    """What differs between ``found`` (sha256, bytes, conversations, messages) and ``expected``."""
    return [
        f"{key} {expected[key]!r} in {source}, {value!r} in the file"
        for key, value in found.items()
        if expected[key] != value
    ]
