"""Restore conversations and messages from a jsonl (or jsonl.gz) export, a file or a stream.

The whole input is checked before anything is written, by PostgreSQL itself:
each batch of lines goes through the very conversions and checks the insert
uses (:mod:`chatdb.jobs.queries.lines`), in a transaction that is rolled back, so
what the check accepts the insert accepts. It also checks that the users
exist, that no id appears twice in the file, and how each line stands against
the rows already there: a conversation or message that exists exactly as in
the file is skipped and counted (so an import can be re-run, or resumed after
an interruption); one that exists with different values, a message id that
belongs to another conversation, or a conversation with messages the line
does not have, is a conflict. Any problem stops the import with the line
numbers and nothing written; checking stops at the first
:data:`MAX_REPORTED_PROBLEMS` bad lines. A manifest (beside the file, found
through symlinks, or given) must match the bytes read.

Then the rows are inserted in batches, each its own transaction, keeping ids,
timestamps and metadata exactly. The second read is compared batch by batch
with the first (:mod:`chatdb.jobs.reading`), so only checked bytes are
inserted; a stream is read once, into an anonymous temporary file.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import text

from chatdb.errors import ImportFileError
from chatdb.jobs.line_checks import LineCheck, check_lines, checking_transaction
from chatdb.jobs.reading import (
    MAX_LINE_BYTES,
    BatchMark,
    ExportLines,
    Manifest,
    batches,
    batches_as_checked,
    compare,
    expected_of,
    load_manifest,
    read_manifest,
    source_file,
    spool,
)
from chatdb.jobs.results import job_envelope, rate
from chatdb.jobs.runner import (
    DEFAULT_BATCH_SIZE,
    JobRun,
    JobTimeouts,
    ProgressCallback,
    batch_transaction,
    check_batch_size,
    job_connection,
    job_lock,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection

    from chatdb.db import Database


@dataclass
class ImportResult:
    database: str
    path: str
    dry_run: bool
    manifest_checked: bool = False
    manifest: str | None = None
    conversations: int = 0  # in the file
    messages: int = 0
    inserted_conversations: int = 0
    inserted_messages: int = 0
    existing_conversations: int = 0  # already in the database, identical: skipped
    existing_messages: int = 0
    batches: int = 0
    duration_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return rate(self.inserted_conversations + self.inserted_messages, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            # matched: the file's conversations; changed: inserted; skipped: identical ones already there.
            **job_envelope(
                "import",
                self.database,
                dry_run=self.dry_run,
                matched=self.conversations,
                changed=self.inserted_conversations,
                skipped=self.existing_conversations,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "path": self.path,
            "manifest_checked": self.manifest_checked,
            "manifest": self.manifest,
            "in_file": {"conversations": self.conversations, "messages": self.messages},
            "inserted": {"conversations": self.inserted_conversations, "messages": self.inserted_messages},
            "existing": {"conversations": self.existing_conversations, "messages": self.existing_messages},
        }


def import_conversations(
    db: Database,
    source: Path | BinaryIO,
    *,
    manifest: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ImportResult:
    """Check the whole input, then insert its rows in batches (identical existing rows skipped and counted).

    ``source`` is a path (resolved through symlinks; the manifest beside the
    real file is checked if there is one) or a binary stream such as stdin,
    read once. ``manifest`` names the manifest to check instead.
    """
    check_batch_size(batch_size)
    path = source_file(source) if isinstance(source, Path) else None
    name = str(source) if isinstance(source, Path) else "stdin"
    expected = load_manifest(manifest) if manifest is not None else read_manifest(path) if path else None
    timeouts = JobTimeouts.given(timeouts)
    result = ImportResult(
        database=db.display_url, path=name, dry_run=dry_run, manifest=str(expected.path) if expected else None
    )
    with _readable_twice(source, path) as (first_read, second_read):
        with (
            job_lock(db, "import", wait=wait, writes=not dry_run, progress=progress),
            JobRun("import", progress) as run,
        ):
            run.unchanged = "nothing was imported"
            run.rerun = "run it again to finish (what is already imported is skipped)"
            if dry_run:
                _require_temporary_tables(db)
            lines = ExportLines(first_read, name=name, max_line_bytes=max_line_bytes, copy_to=second_read.copy_to)
            marks = _check_input(db, lines, batch_size, expected, result, run, timeouts)
            if not dry_run:
                _insert(db, second_read.lines(name, max_line_bytes), marks, name, result, run, timeouts)
            run.close(result)
    return result


def _require_temporary_tables(db: Database) -> None:
    """The check keeps the file's ids in a temporary table, which a standby cannot create."""
    from chatdb.topology import require_writable

    with db.translate(), db.engine.connect() as conn:
        require_writable(
            conn,
            "import --dry-run",
            db.display_url,
            why="checks the file with a temporary table (a write, even for a dry run)",
        )


@dataclass
class _SecondRead:
    source: Path | None
    copy_to: BinaryIO | None

    def lines(self, name: str, max_line_bytes: int) -> ExportLines:
        if self.copy_to is not None:
            self.copy_to.flush()
            self.copy_to.seek(0)
            return ExportLines(self.copy_to, name=name, max_line_bytes=max_line_bytes)
        assert self.source is not None
        return ExportLines(self.source, name=name, max_line_bytes=max_line_bytes)


@contextmanager
def _readable_twice(source: Path | BinaryIO, path: Path | None) -> Iterator[tuple[Path | BinaryIO, _SecondRead]]:
    if path is not None:
        yield path, _SecondRead(path, None)
        return
    with spool() as copy:
        yield source, _SecondRead(None, copy)


def _check_input(
    db: Database,
    lines: ExportLines,
    batch_size: int,
    expected: Manifest | None,
    result: ImportResult,
    run: JobRun,
    timeouts: JobTimeouts,
) -> list[tuple[BatchMark, tuple[int, int]]]:
    """The checking pass: every line, against the database; then the manifest.

    Returns each batch's mark with the rows it will insert (conversations, messages).
    """
    run.start_phase("validate", expected.conversations if expected else None, unit="lines")
    found = LineCheck()
    marks: list[tuple[BatchMark, tuple[int, int]]] = []
    with job_connection(db) as conn, checking_transaction(db, conn, timeouts):
        try:
            for batch, mark in batches(lines, batch_size):
                run.check_stop()
                before = found.new_rows
                check_lines(conn, batch, found)
                after = found.new_rows
                marks.append((mark, (after[0] - before[0], after[1] - before[1])))
                run.done = mark.last
                run.report()
                if found.full:
                    break
        except ImportFileError as exc:
            for number, text in exc.problems or [(lines.lines + 1, exc.message)]:
                found.add_problem(number, text)
    result.conversations, result.messages = found.conversations, found.messages
    result.existing_conversations = found.existing_conversations
    result.existing_messages = found.existing_messages
    if found.problems:
        listed = "; ".join(f"line {n}: {text}" for n, text in found.problems)
        count = f"{found.bad_lines} bad line{'s' if found.bad_lines != 1 else ''}"
        if found.full:
            count = f"stopped checking at {count}"
        more = f" (and {found.bad_lines - len(found.problems)} more)" if found.bad_lines > len(found.problems) else ""
        raise ImportFileError(f"{lines.name}: {count}, nothing was imported: {listed}{more}", found.problems)
    if expected is not None:
        differs = compare(
            expected_of(expected),
            {
                "sha256": lines.sha256,
                "bytes": lines.size,
                "conversations": found.conversations,
                "messages": found.messages,
            },
        )
        if differs:
            raise ImportFileError(
                f"{lines.name} does not match its manifest {expected.path} ({'; '.join(differs)}); nothing was imported"
            )
        result.manifest_checked = True
    result.inserted_conversations = result.conversations - result.existing_conversations
    result.inserted_messages = result.messages - result.existing_messages
    return marks


def _insert(
    db: Database,
    lines: ExportLines,
    marks: list[tuple[BatchMark, tuple[int, int]]],
    name: str,
    result: ImportResult,
    run: JobRun,
    timeouts: JobTimeouts,
) -> None:

    from chatdb.jobs.queries import BATCH_SETTINGS
    from chatdb.jobs.queries.lines import INSERT_LINES, batch_parameters

    run.start_phase("import", result.conversations)
    result.inserted_conversations = result.inserted_messages = 0
    expected = (new for _, new in marks)
    with job_connection(db) as conn:
        for batch in batches_as_checked(lines, [mark for mark, _ in marks], name):
            with run.batch():
                numbers = [n for n, _ in batch]
                texts = [line.decode("utf-8") for _, line in batch]
                with batch_transaction(db, conn, timeouts):
                    conn.execute(text(BATCH_SETTINGS))
                    conversations, messages = conn.execute(text(INSERT_LINES), batch_parameters(numbers, texts)).one()
                    if (conversations, messages) != next(expected):
                        # The application wrote these ids since the check: say what differs, write nothing.
                        raise ImportFileError(
                            f"the database changed after {name} was checked ({_conflict(conn, numbers, texts)}); "
                            f"nothing of lines {numbers[0]} to {numbers[-1]} was written"
                        )
                result.inserted_conversations += int(conversations)
                result.inserted_messages += int(messages)
                run.advance(len(batch))
    result.existing_conversations = result.conversations - result.inserted_conversations
    result.existing_messages = result.messages - result.inserted_messages


def _conflict(conn: Connection, numbers: list[int], texts: list[str]) -> str:
    """What the check says of these lines now (inside the insert's transaction, which is then rolled back)."""

    from chatdb.jobs.queries.lines import CHECK_LINES, CREATE_SEEN, batch_parameters

    conn.execute(text(CREATE_SEEN))
    for number, problem, *_ in conn.execute(text(CHECK_LINES), batch_parameters(numbers, texts)):
        if problem is not None:
            return f"line {number}: {problem}"
    return "rows were added or deleted meanwhile"
