"""Realistic demo data, generated inside PostgreSQL, and its removal.

:func:`seed` fills a database with users, conversations and messages that
look like a chatbot's: conversations of very different lengths (a few very
long ones), roles alternating user/assistant, user messages within the
1,000-character limit, assistant messages with the metadata a model call
leaves (model, token counts, latency), activity spread over two years, some
conversations archived.

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

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatdb.jobs.demo_users import create_demo_users
from chatdb.errors import ConflictError, UsageError
from chatdb.jobs.queries import seed as sql
from chatdb.jobs.runner import JobRun, JobTimeouts, ProgressCallback, ProgressUpdate
from chatdb.jobs.seed_data import (
    ACTIVITY_DAYS,
    ARCHIVED_SHARE,
    ASSISTANT_LINES,
    LONG_CONVERSATION_SHARE,
    MODELS,
    TEXT_VARIANTS,
    USER_LINES,
    SeedScale,
    assistant_length,
    message_texts,
    user_length,
)
from chatdb.migrations import require_current_schema, require_tables
from chatdb.topology import require_writable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

SEED_USER_PREFIX = "chatdb-seed-"
SEED_ID_DIGITS = 6
DEFAULT_BATCH_MESSAGES = 50_000
DEFAULT_JOBS = 2  # connections writing batches at once
REMOVE_BATCH_CONVERSATIONS = 2_000
REMOVE_BATCH_USERS = 1_000


@dataclass(frozen=True)
class SeedResult:
    database: str
    user_prefix: str
    users: int  # created by this run (users left by an earlier run are reused)
    conversations: int
    messages: int
    long_conversations: int
    seconds: float

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "user_prefix": self.user_prefix,
            "users": self.users,
            "conversations": self.conversations,
            "messages": self.messages,
            "long_conversations": self.long_conversations,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.messages_per_second),
        }


@dataclass(frozen=True)
class SeedRemoval:
    database: str
    user_prefix: str
    users: int
    conversations: int
    messages: int
    seconds: float
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "user_prefix": self.user_prefix,
            "dry_run": self.dry_run,
            "users": self.users,
            "conversations": self.conversations,
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
        }


def seed_user_ids(count: int) -> list[str]:
    """The ids of demo users 1…count: ``chatdb-seed-000001``, … (the same width whatever the count).

    A fixed width makes every run name the same users, so a later run reuses
    the users an earlier one created.
    """
    return [f"{SEED_USER_PREFIX}{n:0{SEED_ID_DIGITS}d}" for n in range(1, count + 1)]


@dataclass
class _Batch:
    ids: list[Any]
    users: list[str]
    statuses: list[str]
    counts: list[int]
    gaps: list[float]
    starts: list[Any]

    def params(self) -> dict[str, Any]:
        return {
            "ids": self.ids, "users": self.users, "statuses": self.statuses,
            "counts": self.counts, "gaps": self.gaps, "starts": self.starts,
        }


def _batches(rows: list[Any], batch_messages: int) -> list[_Batch]:
    """Whole conversations, grouped into batches of about ``batch_messages`` messages."""
    found: list[_Batch] = []
    current: _Batch | None = None
    size = 0
    for row in rows:
        if current is None or (size + row.messages > batch_messages and current.ids):
            current = _Batch([], [], [], [], [], [])
            found.append(current)
            size = 0
        current.ids.append(row.id)
        current.users.append(row.user_id)
        current.statuses.append(row.status)
        current.counts.append(row.messages)
        current.gaps.append(row.gap)
        current.starts.append(row.started)
        size += row.messages
    return found


def _conversations_exist(conn: Connection) -> bool:
    from sqlalchemy import text

    return bool(conn.execute(text(sql.CONVERSATIONS_EXIST)).scalar_one())


def seed(
    db: Database,
    scale: SeedScale,
    *,
    force: bool = False,
    batch_messages: int = DEFAULT_BATCH_MESSAGES,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressCallback | None = None,
) -> SeedResult:
    """Create ``scale`` users, conversations and messages of demo data.

    Refuses (:class:`ConflictError`) when ``conversations`` already holds
    rows, unless ``force``. Users are created first (reusing any left by an
    earlier run); then each batch of about ``batch_messages`` messages is one
    transaction holding whole conversations, ``jobs`` batches at a time on
    their own connections. ``progress`` gets a :class:`ProgressUpdate` counting messages. On
    Ctrl-C the batches in flight finish and commit, no new one starts, and
    :class:`JobInterrupted` says what was kept.
    """
    from sqlalchemy import text

    if batch_messages < 1:
        raise UsageError(f"the batch size must be at least 1, got {batch_messages}")
    started = time.monotonic()
    rng = random.Random()
    user_texts = message_texts(USER_LINES, user_length, TEXT_VARIANTS, rng)
    assistant_texts = message_texts(ASSISTANT_LINES, assistant_length, TEXT_VARIANTS, rng)
    long_count = scale.long_conversations
    prefix = SEED_USER_PREFIX
    lock_timeout = JobTimeouts.from_env().lock
    users = 0
    done = {"conversations": 0, "messages": 0}

    def outcome() -> str:
        # Batches commit whole conversations: what an interruption keeps is exactly what was counted.
        return (
            f"kept {done['conversations']} complete conversations with {done['messages']} messages "
            f"and {users} new demo users; 'chatdb seed --remove' deletes them"
        )

    with JobRun("seed") as run:
        run.outcome = outcome
        with db.translate(), db.engine.connect() as conn:
            with conn.begin():
                _set_lock_timeout(conn, lock_timeout)
                require_tables(conn, "users", "conversations", "messages")
                require_current_schema(conn)
                require_writable(conn, "seed", db.display_url)
                if not force and _conversations_exist(conn):
                    raise ConflictError(
                        f"{db.display_url} already holds conversations; seed adds demo data only to an "
                        "empty database unless you pass --force"
                    )
            run.check_stop()
            user_ids = seed_user_ids(scale.users)
            with conn.begin():
                _set_lock_timeout(conn, lock_timeout)
                users = create_demo_users(conn, user_ids)
            run.check_stop()
            with conn.begin():
                conn.execute(text(sql.PLAN))
                conn.execute(
                    text(sql.FILL_PLAN),
                    {
                        "user_ids": user_ids,
                        "archived": ARCHIVED_SHARE,
                        "conversations": scale.conversations,
                        "long_every": scale.conversations // long_count if long_count else 0,
                        "long_count": long_count,
                    },
                )
                if long_count:
                    conn.execute(
                        text(sql.LONG_WEIGHTS), {"share": LONG_CONVERSATION_SHARE, "long_count": long_count}
                    )
                base = 2 if scale.messages >= 2 * scale.conversations else 1
                conn.execute(
                    text(sql.COUNTS), {"base": base, "extra": scale.messages - base * scale.conversations}
                )
                conn.execute(text(sql.START), {"days": ACTIVITY_DAYS})
                plan = conn.execute(
                    text(sql.READ_PLAN)
                ).all()
                conn.execute(text(sql.DROP_PLAN))
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
        pending = iter(_batches(plan, batch_messages))

        def worker() -> None:
            # Each worker takes the next batch and writes it in one transaction.
            with db.translate(), db.engine.connect() as conn:
                while not (stop.is_set() or run.stopping):
                    with lock:
                        batch = next(pending, None)
                    if batch is None:
                        return
                    with run.batch():
                        with conn.begin():
                            _set_lock_timeout(conn, lock_timeout)
                            # The planner cannot estimate generate_series per row; JIT compiling
                            # for its guess costs more than the batch itself.
                            conn.execute(text("SET LOCAL jit = off"))
                            conn.execute(text(sql.INSERT_CONVERSATIONS), batch.params())
                            conn.execute(text(sql.INSERT_MESSAGES), {**params, **batch.params()})
                            run.check_stop()  # a second stop request rolls the batch back
                        with lock:
                            done["conversations"] += len(batch.ids)
                            done["messages"] += sum(batch.counts)
                            run.advance(len(batch.ids))
                            if progress:
                                progress(ProgressUpdate("messages", done["messages"], scale.messages))

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(worker) for _ in range(max(1, jobs))]
            try:
                for future in futures:
                    while True:
                        try:
                            future.result(timeout=0.2)
                            break
                        except FuturesTimeout:
                            continue
            finally:
                stop.set()  # after a failure or a stop request: batches in flight finish (or roll back)
                wait(futures)
        run.check_stop()
        with db.translate(), db.engine.connect() as conn:
            for statement in sql.ANALYZE:
                conn.execute(text(statement))
            conn.commit()
        run.finished(outcome())
    done_conversations, done_messages = done["conversations"], done["messages"]
    return SeedResult(
        database=db.display_url,
        user_prefix=prefix,
        users=users,
        conversations=done_conversations,
        messages=done_messages,
        long_conversations=long_count,
        seconds=time.monotonic() - started,
    )


def _set_lock_timeout(conn: Connection, lock_timeout: str) -> None:
    """Wait for a table lock no longer than every maintenance job does (for this transaction only)."""
    from sqlalchemy import text

    conn.execute(text("SELECT set_config('lock_timeout', :lock, true)"), {"lock": lock_timeout})


def _existing_seed_users(conn: Connection, prefix: str) -> list[str]:
    from sqlalchemy import text

    return list(
        conn.execute(
            text(sql.SEED_USERS), {"prefix": prefix}
        ).scalars()
    )


def remove_seed(
    db: Database,
    *,
    dry_run: bool = False,
    batch_conversations: int = REMOVE_BATCH_CONVERSATIONS,
    progress: ProgressCallback | None = None,
) -> SeedRemoval:
    """Delete what :func:`seed` created: users whose id starts with the seed prefix, with
    their conversations and messages.

    Conversations go in batches, each with its messages in one transaction,
    then the users; re-running after an interruption finishes the job.
    ``progress`` gets a :class:`ProgressUpdate` counting conversations. ``dry_run`` only counts.
    """
    from sqlalchemy import text

    started = time.monotonic()
    prefix = SEED_USER_PREFIX
    lock_timeout = JobTimeouts.from_env().lock
    with db.translate(), db.engine.connect() as conn:
        with conn.begin():
            _set_lock_timeout(conn, lock_timeout)
            require_tables(conn, "users", "conversations", "messages")
            require_current_schema(conn)
            if not dry_run:
                require_writable(conn, "seed --remove", db.display_url)
            user_ids = _existing_seed_users(conn, prefix)
            total = int(
                conn.execute(
                    text("SELECT count(*) FROM conversations WHERE user_id = ANY(:users)"),
                    {"users": user_ids},
                ).scalar_one()
            )
        if dry_run:
            with conn.begin():
                messages = int(
                    conn.execute(
                        text("SELECT count(*) FROM messages WHERE user_id = ANY(:users)"), {"users": user_ids}
                    ).scalar_one()
                )
            return SeedRemoval(db.display_url, prefix, len(user_ids), total, messages,
                               time.monotonic() - started, dry_run=True)
        conversations = messages = users = 0
        with JobRun("seed --remove") as run:
            run.outcome = lambda: (
                f"removed {conversations} of {total} seeded conversations and "
                f"{users} of {len(user_ids)} users; run 'chatdb seed --remove' again to finish"
            )
            run.start_phase(run.job, total)
            while True:
                with run.batch():
                    with conn.begin():
                        _set_lock_timeout(conn, lock_timeout)
                        ids = conn.execute(
                            text("SELECT id FROM conversations WHERE user_id = ANY(:users) LIMIT :batch FOR UPDATE"),
                            {"users": user_ids, "batch": batch_conversations},
                        ).scalars().all()
                        gone = (
                            conn.execute(
                                text("DELETE FROM messages WHERE conversation_id = ANY(:ids)"), {"ids": ids}
                            ).rowcount,
                            conn.execute(text("DELETE FROM conversations WHERE id = ANY(:ids)"), {"ids": ids}).rowcount,
                        ) if ids else (0, 0)
                        run.check_stop()  # a second stop request rolls the batch back
                    messages += gone[0]
                    conversations += gone[1]
                    if ids:
                        run.advance(gone[1])
                if not ids:
                    break
                if progress:
                    progress(ProgressUpdate("conversations", conversations, total))
            with run.batch(), conn.begin():
                _set_lock_timeout(conn, lock_timeout)
                # Messages a seeded user left in someone else's conversation go with the user.
                messages += conn.execute(
                    text("DELETE FROM messages WHERE user_id = ANY(:users)"), {"users": user_ids}
                ).rowcount
            # messages.user_id has no index, so deleting a user makes its foreign key's
            # cascade scan messages once per user: vacuum first so the dead seeded rows
            # are not scanned again for every user.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM messages"))
            conn.commit()
            conn.execution_options(isolation_level=conn.default_isolation_level)
            for at in range(0, len(user_ids), REMOVE_BATCH_USERS):
                with run.batch(), conn.begin():
                    _set_lock_timeout(conn, lock_timeout)
                    users += conn.execute(
                        text("DELETE FROM users WHERE id = ANY(:users)"),
                        {"users": user_ids[at:at + REMOVE_BATCH_USERS]},
                    ).rowcount
            run.finished(f"removed all {conversations} seeded conversations and {users} users")
    return SeedRemoval(db.display_url, prefix, users, conversations, messages, time.monotonic() - started)
