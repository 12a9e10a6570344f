"""Deleting conversations with their messages, batch by batch, leaving alone what the application holds.

prune and ``seed --remove`` both delete this way. Each batch is one short
transaction on the job's runner: the next keyset batch of matching
conversations is locked ``FOR UPDATE SKIP LOCKED``, then their messages too
(:func:`~chatdb.jobs.queries.lock_messages`), and only the conversations all
of whose rows it could lock are deleted, with their messages. A conversation
the application holds is kept for the next run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import text

from chatdb.jobs.runner import JobRun, JobTimeouts, batch_transaction, job_connection

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database
    from chatdb.jobs.queries import Selection

# One batch's work inside its transaction: the ids to delete, and how many conversations it covered.
BatchStep = Callable[["Connection"], tuple[list[uuid.UUID], int]]


@dataclass
class Deleted:
    """What the batches deleted so far (kept up to date, so a stopped run's count is true)."""

    conversations: int = 0
    messages: int = 0


@dataclass
class DeletedIds:
    """The ids the batches deleted (erase's receipt), each batch's added once its transaction committed."""

    conversations: list[uuid.UUID] = field(default_factory=list)
    messages: list[uuid.UUID] = field(default_factory=list)

    def staged(self, conn: Connection, ids: list[uuid.UUID]) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """Read, in the deleting transaction, the messages about to go with ``ids``.

        The conversations and all their messages are locked by then, and no
        message can be added to a conversation whose row is locked, so these
        are exactly the rows the batch deletes.
        """
        from chatdb.jobs import queries

        return list(ids), queries.message_ids(conn, ids)

    def add(self, batch: tuple[list[uuid.UUID], list[uuid.UUID]]) -> None:
        self.conversations += batch[0]
        self.messages += batch[1]


def keyset_batches(selection: Selection, batch_size: int) -> Iterator[BatchStep]:
    """Batches over the matching conversations' primary key, skipping rows others hold."""
    from chatdb.jobs import queries

    last: list[uuid.UUID | None] = [None]

    def step(conn: Connection) -> tuple[list[uuid.UUID], int]:
        conn.execute(text(queries.BATCH_SETTINGS))
        ids = list(conn.execute(queries.lock_batch(selection, last[0], batch_size, for_delete=True)).scalars())
        if ids:
            last[0] = ids[-1]
        return queries.lock_messages(conn, ids), len(ids)

    while True:
        yield step


def delete_batches(
    db: Database,
    batches: Iterator[BatchStep],
    run: JobRun,
    timeouts: JobTimeouts,
    *,
    total: int,
    deleted: Deleted | None = None,
    record: DeletedIds | None = None,
) -> Deleted:
    """Run ``batches`` as the ``delete`` phase of ``run``, one transaction each, until one covers nothing."""
    from chatdb.jobs import queries

    deleted = deleted if deleted is not None else Deleted()
    run.start_phase("delete", total)
    with job_connection(db) as conn:
        for step in batches:
            with run.batch():
                with batch_transaction(db, conn, timeouts):
                    ids, covered = step(conn)
                    staged = record.staged(conn, ids) if record is not None else None
                    conversations, messages = queries.delete_conversations(conn, ids)
                if record is not None and staged is not None:
                    record.add(staged)  # only once the batch's transaction committed
                if covered:
                    deleted.conversations += conversations
                    deleted.messages += messages
                    run.advance(covered)
            if covered == 0:
                break
    return deleted
