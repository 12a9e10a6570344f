"""Archive conversations whose last activity is older than a cutoff, and undo it.

Archiving changes only ``status`` (``updated_at`` keeps the last activity, so
a later prune still sees how old a conversation is). Rows are taken in keyset
batches over the primary key with ``FOR NO KEY UPDATE SKIP LOCKED``: a
conversation the application is writing to is skipped and left for the next
run, and the application's message inserts (which only need ``FOR KEY SHARE``)
are never blocked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from chatdb.errors import UsageError
from chatdb.filters import ConversationFilter
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
    job_transaction,
)
from chatdb.reports.conversations import resolve_selection

if TYPE_CHECKING:
    from chatdb.db import Database

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class SampleConversation:
    id: uuid.UUID
    user_id: str
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "user_id": self.user_id, "updated_at": self.updated_at.isoformat()}


@dataclass
class StatusChangeResult:
    """What an archive or unarchive run did (or, with ``dry_run``, would do)."""

    job: str
    database: str
    selection: ConversationFilter
    dry_run: bool
    matched: int = 0  # conversations that matched when the run started
    messages: int | None = None  # their messages (counted on a dry run)
    changed: int = 0  # conversations whose status this run changed
    skipped: int = 0  # still matching at the end: held by the application, left for the next run
    batches: int = 0
    duration_seconds: float = 0.0
    sample: list[SampleConversation] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return rate(self.changed, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            **job_envelope(
                self.job,
                self.database,
                dry_run=self.dry_run,
                matched=self.matched,
                changed=self.changed,
                skipped=self.skipped,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "selection": self.selection.as_dict(),
            "messages": self.messages,
            "sample": [s.as_dict() for s in self.sample],
        }


def archive_conversations(
    db: Database,
    selection: ConversationFilter,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> StatusChangeResult:
    """Mark active conversations matching ``selection`` as archived, batch by batch.

    ``selection.older_than`` (the cutoff, fixed by the caller before the run)
    is required, so a bare call never archives everything.
    """
    if selection.older_than is None:
        raise UsageError("archive needs a cutoff ({older_than})", parameters=("older_than",))
    return _change_status(
        db,
        "archive",
        replace(selection, status="active"),
        "archived",
        batch_size=batch_size,
        dry_run=dry_run,
        wait=wait,
        progress=progress,
        timeouts=timeouts,
    )


def unarchive_conversations(
    db: Database,
    selection: ConversationFilter,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> StatusChangeResult:
    """Make archived conversations matching ``selection`` active again (``updated_at`` unchanged)."""
    if not (selection.names_conversations or selection.user_ids or selection.older_than or selection.since):
        raise UsageError(
            "say which conversations to unarchive: {conversation_ids}, {users}, or a time filter",
            parameters=("conversation_ids", "users"),
        )
    return _change_status(
        db,
        "unarchive",
        replace(selection, status="archived"),
        "active",
        batch_size=batch_size,
        dry_run=dry_run,
        wait=wait,
        progress=progress,
        timeouts=timeouts,
    )


def _change_status(
    db: Database,
    job: str,
    selection: ConversationFilter,
    new_status: str,
    *,
    batch_size: int,
    dry_run: bool,
    wait: float | None,
    progress: ProgressCallback | None,
    timeouts: JobTimeouts | None,
) -> StatusChangeResult:

    from chatdb.jobs import queries

    check_batch_size(batch_size)
    timeouts = JobTimeouts.given(timeouts)
    table = queries.conversations
    result = StatusChangeResult(job=job, database=db.display_url, selection=selection, dry_run=dry_run)
    with job_lock(db, job, wait=wait, writes=not dry_run, progress=progress), JobRun(job, progress) as run:
        result.selection = selection = resolve_selection(db, selection)
        with job_transaction(db, timeouts) as conn:
            # Messages and a sample are for the dry run's report; a real run only needs the total.
            matched, messages, _ = queries.selection_size(conn, selection, messages=dry_run)
            result.matched, result.messages = matched, messages if dry_run else None
            if dry_run:
                result.sample = [SampleConversation(*row) for row in queries.sample(conn, selection, SAMPLE_SIZE)]
        if not dry_run:
            run.start_phase(job, result.matched)
            last: uuid.UUID | None = None
            with job_connection(db) as conn:
                while True:
                    with run.batch():
                        with batch_transaction(db, conn, timeouts):
                            batch = queries.lock_batch(selection, last, batch_size, for_delete=False).cte("batch")
                            ids = (
                                conn.execute(
                                    update(table)
                                    .where(table.c.id == batch.c.id)
                                    .values(status=new_status)
                                    .returning(table.c.id)
                                )
                                .scalars()
                                .all()
                            )
                        if ids:
                            last = max(ids)
                            result.changed += len(ids)
                            run.advance(len(ids))
                    if not ids:
                        break
            with job_transaction(db, timeouts) as conn:
                result.skipped = queries.selection_size(conn, selection, messages=False)[0]
        run.close(result)
    return result
