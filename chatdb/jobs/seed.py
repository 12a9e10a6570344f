"""Realistic demo data (:mod:`chatdb.jobs.seed_data` says what it looks like), and its removal: two jobs.

Both run on the job runner like every job that writes: the maintenance lease,
batch transactions with the jobs' timeouts, stop requests at batch bounds.
Every row is generated server-side with ``INSERT … SELECT … generate_series``.
A plan (each conversation's id, owner, status, start, message count and pace)
is computed first in a temporary table; then each batch of whole
conversations is written in one transaction, two batches at a time on their
own connections: an interrupted run leaves only complete conversations.

What seed creates is labelled by its users: their ids start with
:data:`SEED_USER_PREFIX`, and every seeded conversation (and message) belongs
to one of them. :func:`remove_seed` deletes exactly those users, their
conversations and their messages, in batches.
"""

from __future__ import annotations

import contextvars
import random
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from chatdb.errors import ConflictError, UsageError
from chatdb.jobs import queries
from chatdb.jobs.deleting import Deleted, delete_batches, keyset_batches
from chatdb.jobs.demo_users import create_demo_users
from chatdb.jobs.queries import seed as sql
from chatdb.jobs.results import job_envelope, rate
from chatdb.jobs.runner import (
    JobRun,
    JobTimeouts,
    ProgressCallback,
    ProgressUpdate,
    batch_transaction,
    check_batch_size,
    job_connection,
    job_lock,
    job_transaction,
)
from chatdb.jobs.seed_data import (
    ASSISTANT_LINES,
    MODELS,
    TEXT_VARIANTS,
    USER_LINES,
    assistant_length,
    message_texts,
    plan_batches,
    plan_conversations,  # SeedScale is part of this module's API too
    user_length,
)
from chatdb.jobs.seed_data import (
    SeedScale as SeedScale,
)
from chatdb.migrations import require_tables

if TYPE_CHECKING:
    from chatdb.db import Database

SEED_USER_PREFIX = "chatdb-seed-"
SEED_ID_DIGITS = 6
DEFAULT_BATCH_MESSAGES = 50_000
DEFAULT_JOBS = 2  # connections writing batches at once
REMOVE_BATCH_CONVERSATIONS = 2_000
REMOVE_BATCH_USERS = 1_000


@dataclass(frozen=True)
class SeedResult:
    """What a seed run created: the jobs' vocabulary (``changed`` conversations), and seed's own counts."""

    database: str
    user_prefix: str
    users: int  # created by this run (users left by an earlier run are reused)
    conversations: int
    messages: int
    long_conversations: int
    duration_seconds: float
    batches: int = 0
    job: str = "seed"

    @property
    def seconds(self) -> float:
        return self.duration_seconds

    @property
    def rows_per_second(self) -> float:
        return rate(self.conversations, self.duration_seconds)

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.duration_seconds if self.duration_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            # matched and changed: the conversations created (seed works on new rows only).
            **job_envelope(
                self.job,
                self.database,
                dry_run=False,
                matched=self.conversations,
                changed=self.conversations,
                skipped=0,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "user_prefix": self.user_prefix,
            "users": self.users,
            "conversations": self.conversations,
            "messages": self.messages,
            "long_conversations": self.long_conversations,
            # The names of earlier versions, kept for scripts that read them.
            "seconds": round(self.duration_seconds, 3),
            "messages_per_second": round(self.messages_per_second),
        }


@dataclass
class SeedRemoval:
    """What ``seed --remove`` deleted (or, with ``dry_run``, would delete)."""

    database: str
    user_prefix: str
    dry_run: bool = False
    matched: int = 0  # seeded conversations when the run started
    users: int = 0
    conversations: int = 0  # deleted (counted, on a dry run)
    messages: int = 0
    skipped: int = 0  # seeded conversations the application held: left for the next run
    batches: int = 0
    duration_seconds: float = 0.0
    job: str = "seed --remove"

    @property
    def seconds(self) -> float:
        return self.duration_seconds

    @property
    def rows_per_second(self) -> float:
        return 0.0 if self.dry_run else rate(self.conversations, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            **job_envelope(
                self.job,
                self.database,
                dry_run=self.dry_run,
                matched=self.matched,
                changed=0 if self.dry_run else self.conversations,
                skipped=self.skipped,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "user_prefix": self.user_prefix,
            "users": self.users,
            "conversations": self.conversations,
            "messages": self.messages,
            "seconds": round(self.duration_seconds, 3),
        }


def seed_user_ids(count: int) -> list[str]:
    """The ids of demo users 1…count: ``chatdb-seed-000001``, … (the same width whatever the count).

    A fixed width makes every run name the same users, so a later run reuses
    the users an earlier one created.
    """
    return [f"{SEED_USER_PREFIX}{n:0{SEED_ID_DIGITS}d}" for n in range(1, count + 1)]


def seed(
    db: Database,
    scale: SeedScale,
    *,
    force: bool = False,
    batch_messages: int = DEFAULT_BATCH_MESSAGES,
    jobs: int = DEFAULT_JOBS,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> SeedResult:
    """Create ``scale`` users, conversations and messages of demo data, as a job on the runner.

    Holds the maintenance lease (waiting up to ``wait`` seconds for it), and
    runs every statement with the jobs' lock and statement timeouts. Refuses
    (:class:`ConflictError`) when ``conversations`` already holds rows, unless
    ``force``. Users are created first (reusing any left by an earlier run);
    then each batch of about ``batch_messages`` messages is one batch
    transaction holding whole conversations, ``jobs`` batches at a time on
    their own connections. ``progress`` gets a :class:`ProgressUpdate`
    counting messages. A stop request lets the batches in flight commit and
    starts no new one; :class:`JobInterrupted` says what was kept.
    """

    if batch_messages < 1:
        raise UsageError(f"the batch size must be at least 1, got {batch_messages}")
    timeouts = JobTimeouts.given(timeouts)
    rng = random.Random()
    user_texts = message_texts(USER_LINES, user_length, TEXT_VARIANTS, rng)
    assistant_texts = message_texts(ASSISTANT_LINES, assistant_length, TEXT_VARIANTS, rng)
    long_count = scale.long_conversations
    users = 0
    done = {"conversations": 0, "messages": 0}

    def outcome() -> str:
        # Batches commit whole conversations: what an interruption keeps is exactly what was counted.
        return (
            f"kept {done['conversations']} complete conversations with {done['messages']} messages "
            f"and {users} new demo users; 'chatdb seed --remove' deletes them"
        )

    # Refused at once, before waiting for the lease: the check needs no lock.
    with job_transaction(db, timeouts) as conn:
        require_tables(conn, "users", "conversations", "messages")
        if not force and conn.execute(text(sql.CONVERSATIONS_EXIST)).scalar_one():
            raise ConflictError(
                f"{db.display_url} already holds conversations; seed adds demo data only to an "
                "empty database unless you pass {force}",
                parameters=("force",),
            )
    with job_lock(db, "seed", wait=wait, progress=progress), JobRun("seed") as run:
        run.outcome = outcome
        run.check_stop()
        user_ids = seed_user_ids(scale.users)
        with job_transaction(db, timeouts) as conn:
            users = create_demo_users(conn, user_ids)
        run.check_stop()
        with job_transaction(db, timeouts) as conn:
            plan = plan_conversations(conn, scale, user_ids)
        run.start_phase("seed", scale.conversations)
        params = {
            "user_texts": user_texts,
            "user_count": len(user_texts),
            "assistant_texts": assistant_texts,
            "assistant_count": len(assistant_texts),
            "models": list(MODELS),
            "model_count": len(MODELS),
        }
        stop = threading.Event()
        lock = threading.Lock()
        pending = iter(plan_batches(plan, batch_messages))

        def worker() -> None:
            # Each worker takes the next batch and writes it in one batch transaction of the runner.
            with job_connection(db) as conn:
                while not (stop.is_set() or run.stopping):
                    with lock:
                        batch = next(pending, None)
                    if batch is None:
                        return
                    with run.batch():
                        with batch_transaction(db, conn, timeouts):
                            # The planner cannot estimate generate_series per row; JIT compiling
                            # for its guess costs more than the batch itself.
                            conn.execute(text(queries.BATCH_SETTINGS))
                            conn.execute(text(sql.INSERT_CONVERSATIONS), batch.params())
                            conn.execute(text(sql.INSERT_MESSAGES), {**params, **batch.params()})
                        with lock:
                            done["conversations"] += len(batch.ids)
                            done["messages"] += sum(batch.counts)
                            run.advance(len(batch.ids))
                            if progress:
                                progress(ProgressUpdate("messages", done["messages"], scale.messages))

        _run_workers(worker, max(1, jobs), stop)
        run.check_stop()
        with db.translate(), db.engine.connect() as conn:
            for statement in sql.ANALYZE:
                conn.execute(text(statement))
            conn.commit()
        run.finished(outcome())
    return SeedResult(
        database=db.display_url,
        user_prefix=SEED_USER_PREFIX,
        users=users,
        conversations=done["conversations"],
        messages=done["messages"],
        long_conversations=long_count,
        duration_seconds=run.elapsed,
        batches=run.batches,
    )


def _run_workers(worker: Callable[[], None], count: int, stop: threading.Event) -> None:
    """``count`` threads running ``worker``; after the first failure the others stop at their next batch.

    Each thread runs in a copy of this one's context, so its batches see the
    lease this job holds (:func:`chatdb.jobs.lease.held`).
    """
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(contextvars.copy_context().run, worker) for _ in range(count)]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()  # after a failure: batches in flight finish (or roll back), no new one starts
            wait(futures)
    for future in futures:
        future.result()  # the first failure, if any


def remove_seed(
    db: Database,
    *,
    dry_run: bool = False,
    batch_size: int = REMOVE_BATCH_CONVERSATIONS,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> SeedRemoval:
    """Delete what :func:`seed` created: users whose id starts with the seed prefix, with
    their conversations and messages, as a job on the runner.

    Conversations go with their messages in batches, by the same delete as
    prune (``FOR UPDATE SKIP LOCKED``: a conversation the application holds is
    left, counted in ``skipped``); then the seeded users' messages in other
    conversations (those the application holds are skipped), then the users
    that no longer own a conversation or a message.
    Re-running after an interruption finishes the job. ``progress`` gets a
    :class:`ProgressUpdate` counting conversations. ``dry_run`` only counts.
    """

    check_batch_size(batch_size)
    timeouts = JobTimeouts.given(timeouts)
    job = "seed --remove"
    seeded = queries.UserPrefix(SEED_USER_PREFIX)
    result = SeedRemoval(db.display_url, SEED_USER_PREFIX, dry_run=dry_run)
    with job_lock(db, job, wait=wait, writes=not dry_run, progress=progress), JobRun(job, progress) as run:
        with job_transaction(db, timeouts) as conn:
            require_tables(conn, "users")
            user_ids = list(conn.execute(text(sql.SEED_USERS), {"prefix": SEED_USER_PREFIX}).scalars())
            result.matched = queries.selection_size(conn, seeded, messages=False)[0]
            if dry_run:
                result.users, result.conversations = len(user_ids), result.matched
                result.messages = int(conn.execute(text(sql.SEEDED_MESSAGES), {"users": user_ids}).scalar_one())
        if dry_run:
            return run.close(result)
        run.unchanged = "nothing was deleted"
        deleted = Deleted()
        run.outcome = lambda: (
            f"removed {deleted.conversations} of {result.matched} seeded conversations and "
            f"{result.users} of {len(user_ids)} users; run 'chatdb seed --remove' again to finish"
        )
        delete_batches(db, keyset_batches(seeded, batch_size), run, timeouts, total=result.matched, deleted=deleted)
        result.conversations, result.messages = deleted.conversations, deleted.messages
        with job_connection(db) as conn:
            with run.batch(), batch_transaction(db, conn, timeouts):
                # Messages a seeded user left in someone else's conversation go with the user.
                stray = {"users": user_ids, "prefix": SEED_USER_PREFIX}
                result.messages += conn.execute(text(sql.DELETE_STRAY_MESSAGES), stray).rowcount
            # messages.user_id has no index, so deleting a user makes its foreign key's
            # cascade scan messages once per user: vacuum first so the dead seeded rows
            # are not scanned again for every user.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(sql.VACUUM_MESSAGES))
            conn.commit()
            conn.execution_options(isolation_level=conn.default_isolation_level)
            for at in range(0, len(user_ids), REMOVE_BATCH_USERS):
                with run.batch(), batch_transaction(db, conn, timeouts):
                    result.users += conn.execute(
                        text(sql.DELETE_SEED_USERS), {"users": user_ids[at : at + REMOVE_BATCH_USERS]}
                    ).rowcount
        with job_transaction(db, timeouts) as conn:
            result.skipped = queries.selection_size(conn, seeded, messages=False)[0]
        run.finished(f"removed all {result.conversations} seeded conversations and {result.users} users")
        run.close(result)
    return result
