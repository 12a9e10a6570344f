"""Export conversations with their messages: jsonl (default), json or csv, streamed.

Memory stays flat whatever the size: conversations are read in keyset batches
over the primary key, all inside one read-only REPEATABLE READ transaction so
the file is one consistent snapshot, and PostgreSQL itself builds each jsonl
line (:func:`chatdb.jobs.queries.lines.line_select`), so every timestamp PostgreSQL
can store (BC, years past 9999, infinity) is written as its JSON output
gives it, in UTC with microseconds, and ``metadata`` as the JSON it is.

jsonl: one conversation per line, ``{"id", "user_id", "status", "created_at",
"updated_at", "messages": [{"id", "conversation_id", "user_id", "role",
"content", "metadata", "created_at"}, ...]}``, messages oldest first; a
message whose metadata is the JSON value ``null`` (not SQL ``NULL``) also has
``"metadata_is_json_null": true`` (manifest_version 2).
json: the same objects in one array. csv: one row per message with its
conversation's columns (a conversation without messages gets one row with
empty message columns; metadata as JSON text, so SQL NULL is empty and JSON
null is ``null``).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from sqlalchemy import text

import chatdb
from chatdb.errors import ReplicationConflictError, UsageError
from chatdb.filters import ConversationFilter
from chatdb.jobs.atomic_files import ExportFiles, check_destination
from chatdb.jobs.files import MANIFEST_KIND, manifest_path
from chatdb.jobs.reading import MANIFEST_VERSIONS
from chatdb.jobs.results import job_envelope, rate
from chatdb.jobs.runner import (
    DEFAULT_BATCH_SIZE,
    JobRun,
    JobTimeouts,
    ProgressCallback,
    check_batch_size,
    job_lock,
    set_timeouts,
)
from chatdb.reports.conversations import resolve_selection

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

ExportFormat = Literal["jsonl", "json", "csv"]
FORMATS = ("jsonl", "json", "csv")
CSV_COLUMNS = (
    "conversation_id",
    "user_id",
    "status",
    "conversation_created_at",
    "conversation_updated_at",
    "message_id",
    "message_user_id",
    "role",
    "content",
    "metadata",
    "message_created_at",
)


@dataclass
class ExportResult:
    database: str
    selection: ConversationFilter
    format: str
    path: str | None  # None: written to a stream (stdout)
    manifest: str | None
    conversations: int = 0
    messages: int = 0
    bytes: int = 0
    sha256: str | None = None
    batches: int = 0
    duration_seconds: float = 0.0
    created_at: datetime | None = None
    removed_temporaries: int = 0  # stale temporaries of killed runs deleted from the destination's directory

    @property
    def rows_per_second(self) -> float:
        return rate(self.conversations + self.messages, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            # An export changes no row: changed counts the conversations it wrote out.
            **job_envelope(
                "export",
                self.database,
                dry_run=False,
                matched=self.conversations,
                changed=self.conversations,
                skipped=0,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "selection": self.selection.as_dict(),
            "format": self.format,
            "path": self.path,
            "manifest": self.manifest,
            "conversations": self.conversations,
            "messages": self.messages,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "removed_temporaries": self.removed_temporaries,
        }

    def manifest_data(self) -> dict[str, Any]:
        from chatdb.serialize import to_jsonable

        return {
            "kind": MANIFEST_KIND,
            "manifest_version": MANIFEST_VERSIONS[-1],
            "file": Path(self.path or "").name,
            "format": self.format,
            "compressed": bool(self.path and self.path.endswith(".gz")),
            "conversations": self.conversations,
            "messages": self.messages,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "selection": to_jsonable(self.selection.as_dict()),
            "database": self.database,
            "chatdb_version": chatdb.__version__,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def check_format(format: str) -> str:
    if format not in FORMATS:
        raise UsageError(f"unknown export format {format!r}: use jsonl, json or csv")
    return format


def export_conversations(
    db: Database,
    selection: ConversationFilter,
    output: Path | BinaryIO,
    *,
    format: str = "jsonl",
    batch_size: int = DEFAULT_BATCH_SIZE,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> ExportResult:
    """Write the selected conversations to ``output`` (a path, or a binary stream such as stdout).

    To a path: written atomically with mode 0600 (``.gz`` compressed) and a
    manifest ``PATH.manifest.json`` with counts and the file's sha256; a path
    that exists and is not a regular file is refused (:class:`DestinationError`).
    ``wait`` is accepted like every job's but unused: an export takes no lock.
    """
    check_format(format)
    check_batch_size(batch_size)
    if isinstance(output, Path):
        check_destination(output)
    try:
        # An export changes nothing, so it takes no lease: it runs beside other jobs and on a standby.
        with job_lock(db, "export", writes=False), JobRun("export", progress) as run:
            run.rerun = "run it again"  # an export keeps nothing: a re-run starts over
            selection = resolve_selection(db, selection)
            result = write_export(
                db,
                selection,
                output,
                format=format,
                batch_size=batch_size,
                run=run,
                timeouts=JobTimeouts.given(timeouts),
            )
            # A stop request from here on comes too late to change anything: say so.
            run.finished(f"{output} and its manifest are complete" if result.path else "the output is complete")
            return result
    except ReplicationConflictError:
        written = "no file was written" if isinstance(output, Path) else "what was written is incomplete"
        raise ReplicationConflictError(
            "the standby cancelled the export to replay changes from the primary (a replication "
            f"conflict); {written}. Run it again (a smaller selection finishes sooner), run it "
            "on the primary, or give the standby hot_standby_feedback = on or a longer "
            "max_standby_streaming_delay"
        ) from None


def write_export(
    db: Database,
    selection: ConversationFilter,
    output: Path | BinaryIO,
    *,
    format: str,
    batch_size: int,
    run: JobRun,
    timeouts: JobTimeouts,
) -> ExportResult:
    """The export itself, for callers that already hold the job lock (prune)."""
    from chatdb.timeparse import utcnow

    to_file = isinstance(output, Path)
    result = ExportResult(
        database=db.display_url,
        selection=selection,
        format=format,
        path=str(output) if to_file else None,
        manifest=str(manifest_path(output)) if isinstance(output, Path) else None,
        created_at=utcnow(),
    )
    sink: Any = ExportFiles(output) if isinstance(output, Path) else _StreamSink(output)
    written = f"nothing was written under {output}" if to_file else "what reached the output stream is incomplete"
    run.unchanged = written if run.job == "export" else f"{written} and {run.unchanged}"
    if to_file:
        result.removed_temporaries = sink.removed_temporaries
    try:
        with _snapshot(db, timeouts) as conn:
            from chatdb.jobs import queries
            from chatdb.jobs.queries import lines

            total = queries.selection_size(conn, selection, messages=False)[0]
            run.start_phase("export", total)
            writer = _WRITERS[format](sink)
            last: uuid.UUID | None = None
            while True:
                rows = conn.execute(lines.export_batch(format, selection, last, batch_size)).all()
                if not rows:
                    break
                conversations, messages = writer.write_batch(rows)
                last = rows[-1][0]
                result.conversations += conversations
                result.messages += messages
                run.advance(conversations)
            writer.finish()
        if to_file:

            def manifest() -> dict[str, Any]:
                result.sha256, result.bytes = sink.sha256, sink.size
                return result.manifest_data()

            sink.complete(manifest)
            run.check_stop()  # the last point where stopping leaves nothing behind
            sink.publish()
        else:
            sink.flush()
            result.bytes, result.sha256 = sink.size, sink.sha256
    except BaseException:
        if to_file:
            sink.abort()
        raise
    result.batches, result.duration_seconds = run.batches, run.elapsed
    return result


class _StreamSink:
    def __init__(self, stream: BinaryIO) -> None:
        import hashlib

        self.stream = stream
        self.size = 0
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self._hash.update(data)
        self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


def _snapshot(db: Database, timeouts: JobTimeouts) -> AbstractContextManager[Connection]:
    """One read-only REPEATABLE READ transaction, timestamps rendered in UTC, with the job's timeouts."""
    from contextlib import contextmanager

    from chatdb.jobs import queries

    @contextmanager
    def opened() -> Iterator[Connection]:
        with db.translate(), db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                conn.execute(text(queries.EXPORT_SETTINGS))
                set_timeouts(conn, timeouts)  # waits for a table lock no longer than every other job
                yield conn

    return opened()


class _JsonLinesWriter:
    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def write_batch(self, rows: list[Any]) -> tuple[int, int]:
        self.sink.write("".join(f"{row[1]}\n" for row in rows).encode())
        return len(rows), sum(int(row[2]) for row in rows)

    def finish(self) -> None:
        pass


class _JsonArrayWriter(_JsonLinesWriter):
    def __init__(self, sink: Any) -> None:
        super().__init__(sink)
        self.first = True

    def write_batch(self, rows: list[Any]) -> tuple[int, int]:
        head = "[\n" if self.first else ",\n"
        self.first = False
        self.sink.write((head + ",\n".join(row[1] for row in rows)).encode())
        return len(rows), sum(int(row[2]) for row in rows)

    def finish(self) -> None:
        self.sink.write(b"[]\n" if self.first else b"\n]\n")


class _CsvWriter:
    def __init__(self, sink: Any) -> None:
        self.sink = sink
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(CSV_COLUMNS)
        self.sink.write(buffer.getvalue().encode())

    def write_batch(self, rows: list[Any]) -> tuple[int, int]:
        self.sink.write("".join(row[1] for row in rows).encode())
        return len(rows), sum(int(row[2]) for row in rows)

    def finish(self) -> None:
        pass


_WRITERS: dict[str, Callable[[Any], Any]] = {
    "jsonl": _JsonLinesWriter,
    "json": _JsonArrayWriter,
    "csv": _CsvWriter,
}
