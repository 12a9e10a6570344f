"""Delete archived conversations (and their messages) older than a cutoff.

Without an export, conversations are taken in keyset batches with ``FOR UPDATE
SKIP LOCKED``; each batch deletes its conversations' messages and then the
conversations, in one short transaction.

With an export, the export of exactly the selected rows is written first, read
back and checked (line count, message count, sha256) before anything is
deleted; the deletion then walks the export file itself, batch by batch, and
deletes a conversation only if it is still as exported (same ``updated_at``,
same number of messages, still matching the selection). A conversation that
changed after the export is kept and counted as skipped, so nothing is ever
deleted that the export does not hold.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdb.errors import ChatdbError, ImportFileError, JobRefusedError, UsageError
from chatdb.filters import ConversationFilter
from chatdb.jobs.export import ExportResult, write_export
from chatdb.jobs.files import ExportReader, manifest_path
from chatdb.jobs.runner import (
    DEFAULT_BATCH_SIZE,
    JobRun,
    JobTimeouts,
    ProgressCallback,
    batch_transaction,
    check_batch_size,
    job_connection,
    job_lock,
    job_transaction,
    rate,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database


@dataclass(frozen=True)
class PrunePlan:
    """What a prune would delete, counted under the job lock before anything happens."""

    database: str
    selection: ConversationFilter
    include_active: bool
    conversations: int
    messages: int
    bytes: int | None  # measured for dry runs and confirmations

    @property
    def rows(self) -> int:
        return self.conversations + self.messages

    def as_dict(self) -> dict[str, Any]:
        return {"conversations": self.conversations, "messages": self.messages, "bytes": self.bytes}


@dataclass
class PruneResult:
    plan: PrunePlan
    dry_run: bool
    deleted_conversations: int = 0
    deleted_messages: int = 0
    skipped: int = 0  # in use by the application, or changed since the export: kept
    export: ExportResult | None = None
    export_verified: bool = False
    batches: int = 0
    duration_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return rate(self.deleted_conversations + self.deleted_messages, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": "prune",
            "database": self.plan.database,
            "dry_run": self.dry_run,
            "include_active": self.plan.include_active,
            "selection": self.plan.selection.as_dict(),
            "planned": self.plan.as_dict(),
            "deleted": {"conversations": self.deleted_conversations, "messages": self.deleted_messages},
            "skipped": self.skipped,
            "export": self.export.as_dict() if self.export else None,
            "export_verified": self.export_verified,
            "batches": self.batches,
            "duration_seconds": round(self.duration_seconds, 3),
            "rows_per_second": self.rows_per_second,
        }


def prune_conversations(
    db: Database,
    selection: ConversationFilter,
    *,
    include_active: bool = False,
    export_to: Path | None = None,
    max_rows: int | None = None,
    confirm: Callable[[PrunePlan], bool] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> PruneResult:
    """Delete the conversations matching ``selection`` (archived ones unless ``include_active``).

    ``selection.older_than`` is required. ``max_rows`` refuses (before any
    change) when more conversations plus messages would be deleted;
    ``confirm`` is asked with the plan and must return True for the deletion
    to go ahead; ``export_to`` must not exist yet.
    """
    from chatdb.jobs import queries

    if selection.older_than is None:
        raise UsageError("prune needs a cutoff: --older-than DURATION or --before DATE")
    check_batch_size(batch_size)
    if max_rows is not None and max_rows < 0:
        raise UsageError("--max-rows must be 0 or more")
    if export_to is not None and not dry_run:
        if not export_to.parent.is_dir():
            raise UsageError(f"cannot write {export_to}: directory {export_to.parent} does not exist")
        for existing in (export_to, manifest_path(export_to)):
            if existing.exists():
                raise JobRefusedError(f"{existing} already exists; prune never overwrites an export, choose a new name")
    selection = replace(selection, status="all" if include_active else "archived")
    timeouts = timeouts or JobTimeouts.from_env()

    with job_lock(db, "prune", wait=wait), JobRun("prune", progress) as run:
        run.unchanged = "nothing was deleted"
        with job_transaction(db, timeouts) as conn:
            # Row bytes need a pass over every row: only for a dry run or a person confirming.
            counted = queries.selection_size(conn, selection, size=dry_run or confirm is not None)
        conversations, messages, size = counted
        plan = PrunePlan(
            db.display_url, selection, include_active, conversations, messages,
            size if (dry_run or confirm is not None) else None,
        )
        result = PruneResult(plan=plan, dry_run=dry_run)
        if max_rows is not None and plan.rows > max_rows:
            raise JobRefusedError(
                f"prune would delete {plan.conversations} conversations and {plan.messages} messages "
                f"({plan.rows} rows), more than --max-rows {max_rows}; nothing was deleted"
            )
        if dry_run or plan.conversations == 0:
            result.duration_seconds = run.elapsed
            return result
        if confirm is not None:
            with run.interruptible():  # Ctrl-C at the prompt stops at once
                confirmed = confirm(plan)
            if not confirmed:
                raise ChatdbError("prune cancelled; nothing was deleted")
        if export_to is not None:
            result.export = write_export(
                db, selection, export_to, format="jsonl", batch_size=batch_size, run=run, timeouts=timeouts
            )
            run.unchanged = f"nothing was deleted ({export_to} is a complete export)"
            run.rerun = f"every deleted conversation is in {export_to}; to finish, run it again with a new export file"
            verify_export(export_to, result.export, run)
            result.export_verified = True
            batches = _exported_batches(export_to, selection, batch_size)
            _delete(db, batches, result, run, timeouts, total=result.export.conversations)
            result.skipped = result.export.conversations - result.deleted_conversations
        else:
            _delete(db, _keyset_batches(selection, batch_size), result, run, timeouts,
                    total=plan.conversations)
            with job_transaction(db, timeouts) as conn:
                result.skipped = queries.selection_size(conn, selection, messages=False)[0]
        result.batches = run.batches
        result.duration_seconds = run.elapsed
    return result


def verify_export(path: Path, written: ExportResult, run: JobRun) -> None:
    """Read the export back: every line whole, counts and sha256 as written; else delete nothing."""
    run.start_phase("verify", written.conversations)
    reader = ExportReader(path)
    conversations = messages = 0
    try:
        for number, line in reader:
            run.check_stop()
            try:
                messages += len(json.loads(line)["messages"])
            except (ValueError, KeyError, TypeError):
                raise ImportFileError(f"line {number} is not a conversation") from None
            conversations += 1
            if conversations % 1000 == 0:
                run.done = conversations
                run.report()
    except ImportFileError as exc:
        raise ChatdbError(f"the export {path} does not read back ({exc.message}); nothing was deleted") from None
    problems = []
    if reader.sha256 != written.sha256:
        problems.append("sha256 differs")
    if (conversations, messages) != (written.conversations, written.messages):
        problems.append(
            f"it holds {conversations} conversations and {messages} messages, "
            f"{written.conversations} and {written.messages} were written"
        )
    if problems:
        raise ChatdbError(f"the export {path} does not verify ({'; '.join(problems)}); nothing was deleted")
    run.done = conversations
    run.report()


# A batch source yields callables that, inside a batch transaction, lock and
# return the ids to delete plus how many conversations the batch covered.
BatchStep = Callable[["Connection"], tuple[list[uuid.UUID], int]]


def _keyset_batches(selection: ConversationFilter, batch_size: int) -> Iterator[BatchStep]:
    from chatdb.jobs import queries

    last: list[uuid.UUID | None] = [None]

    def step(conn: Connection) -> tuple[list[uuid.UUID], int]:
        ids = list(conn.execute(queries.lock_batch(selection, last[0], batch_size, for_delete=True)).scalars())
        if ids:
            last[0] = ids[-1]
        return ids, len(ids)

    while True:
        yield step


def _exported_batches(path: Path, selection: ConversationFilter, batch_size: int) -> Iterator[BatchStep]:
    """Batches of (id, updated_at, message count) read from the verified export, in file order."""
    from sqlalchemy import func, select

    from chatdb.jobs.queries import conversations as c
    from chatdb.jobs.queries import id_array
    from chatdb.jobs.queries import messages as m

    def step_for(wanted: dict[uuid.UUID, tuple[datetime, int]]) -> BatchStep:
        def step(conn: Connection) -> tuple[list[uuid.UUID], int]:
            count = select(func.count()).where(m.c.conversation_id == c.c.id).scalar_subquery()
            rows = conn.execute(
                select(c.c.id, c.c.updated_at, count)
                .where(c.c.id == id_array(list(wanted)), *selection.conditions(c))
                .order_by(c.c.id)
                .with_for_update(skip_locked=True, of=c)
            ).all()
            ids = [row[0] for row in rows if wanted[row[0]] == (row[1], int(row[2]))]
            return ids, len(wanted)

        return step

    pending: dict[uuid.UUID, tuple[datetime, int]] = {}
    for _number, line in ExportReader(path):
        item = json.loads(line)
        pending[uuid.UUID(item["id"])] = (datetime.fromisoformat(item["updated_at"]), len(item["messages"]))
        if len(pending) >= batch_size:
            yield step_for(pending)
            pending = {}
    if pending:
        yield step_for(pending)


def _delete(
    db: Database,
    batches: Iterator[BatchStep],
    result: PruneResult,
    run: JobRun,
    timeouts: JobTimeouts,
    *,
    total: int,
) -> None:
    from chatdb.jobs import queries

    run.start_phase("delete", total)
    with job_connection(db) as conn:
        for step in batches:
            with run.batch():
                with batch_transaction(db, conn, timeouts):
                    ids, covered = step(conn)
                    deleted, deleted_messages = queries.delete_conversations(conn, ids)
                if covered:
                    result.deleted_conversations += deleted
                    result.deleted_messages += deleted_messages
                    run.advance(covered)
            if covered == 0:
                break
