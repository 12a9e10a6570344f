"""What every importer reads and gives: export files (JSON, a .zip, a directory), and conversations in one shape.

An importer turns one tool's export into :class:`SourceConversation` values:
the branch of messages that tool showed, in order, each with the source's own
ids, and a count of what it had to leave out (:class:`Skipped`). Problems with
the input are collected (:class:`Problems`), so one run names every bad
conversation, up to a limit, before anything is written.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatdb.errors import ImportFileError, UsageError

MAX_REPORTED_PROBLEMS = 10
# A member of a zip is read whole; refuse one that would not fit a sane amount of memory.
MAX_MEMBER_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class SourceMessage:
    source_id: str
    role: str  # user or assistant: an importer skips the rest
    text: str
    created_at: datetime | None


@dataclass
class SourceConversation:
    source_id: str
    title: str | None
    created_at: datetime | None
    updated_at: datetime | None
    messages: list[SourceMessage] = field(default_factory=list)


class Skipped(Counter[str]):
    """Messages (or parts) left out, by reason: ``system``, ``tool``, ``non_text``, ``empty``, …"""


@dataclass
class Problems:
    found: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, where: str, text: str) -> None:
        self.count += 1
        if len(self.found) < MAX_REPORTED_PROBLEMS:
            self.found.append(f"{where}: {text}")

    def raise_any(self, name: str) -> None:
        if not self.count:
            return
        more = f" (and {self.count - len(self.found)} more)" if self.count > len(self.found) else ""
        raise ImportFileError(
            f"{name}: {self.count} problem{'s' if self.count != 1 else ''}, nothing was imported: "
            + "; ".join(self.found)
            + more,
            [(0, p) for p in self.found],
        )


def read_documents(path: Path, wanted: Any) -> list[tuple[str, Any]]:
    """``(name, parsed JSON)`` of the export's files: ``path`` itself, or the members of a zip or directory.

    ``wanted(name)`` says which member names hold conversations (others, such
    as an export's ``user.json``, are not read).
    """
    if not path.exists():
        raise UsageError(f"cannot read {path}: no such file")
    if path.is_dir():
        members = sorted(p for p in path.rglob("*.json") if wanted(p.relative_to(path).as_posix()))
        if not members:
            raise ImportFileError(f"{path}: no conversation files in this directory")
        return [(str(p), _parse(p.read_bytes(), str(p))) for p in members]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if not n.endswith("/") and wanted(n))
            if not names:
                raise ImportFileError(f"{path}: the zip holds no conversation files")
            found = []
            for name in names:
                if archive.getinfo(name).file_size > MAX_MEMBER_BYTES:
                    raise ImportFileError(f"{path}: {name} is larger than {MAX_MEMBER_BYTES:,} bytes")
                found.append((f"{path}:{name}", _parse(archive.read(name), f"{path}:{name}")))
            return found
    return [(str(path), _parse(path.read_bytes(), str(path)))]


def items_of(documents: list[tuple[str, Any]], noun: str = "conversation") -> Iterator[tuple[str, Any]]:
    """Each item of each document (a list of them, or one), with where it is: "FILE conversation N"."""
    for name, document in documents:
        items = document if isinstance(document, list) else [document]
        for position, item in enumerate(items, 1):
            yield f"{name} {noun} {position}", item


def _parse(raw: bytes, name: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{name}: not UTF-8 text (byte {exc.start + 1})") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def epoch_time(value: Any) -> datetime | None:
    """A time given as seconds (or milliseconds) since 1970, as many exports write it; None if absent."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value) / 1000 if value > 1e11 else float(value)  # milliseconds past 5138 AD in seconds
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset (``Z`` included); None if absent or without a zone."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None
