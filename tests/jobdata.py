"""Rows with controlled timestamps for the maintenance-job tests, generated server-side."""

from __future__ import annotations

from typing import Any

from helpers import TestDatabase

ROW_QUERY = """
SELECT c.id, c.user_id, c.status, c.created_at, c.updated_at FROM conversations c ORDER BY c.id
"""
MESSAGE_QUERY = """
SELECT m.id, m.conversation_id, m.user_id, m.role, m.content, m.metadata, m.created_at
FROM messages m ORDER BY m.id
"""


def seed(
    db: TestDatabase,
    count: int,
    *,
    user: str = "alice",
    updated: str = "2020-01-01T00:00:00+00:00",
    status: str = "active",
    messages: int = 2,
) -> list[str]:
    """``count`` conversations of ``user`` last active at ``updated``, each with ``messages`` messages.

    Message timestamps are spread before ``updated``; every other message has metadata.
    Returns the new conversation ids.
    """
    db.sql("INSERT INTO users (id) VALUES (%s) ON CONFLICT DO NOTHING", [user])
    rows = db.sql(
        """
        WITH new AS (
            INSERT INTO conversations (user_id, status, created_at, updated_at)
            SELECT %(user)s, %(status)s, %(updated)s::timestamptz - interval '1 day', %(updated)s::timestamptz
            FROM generate_series(1, %(count)s)
            RETURNING id
        ), msgs AS (
            INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at)
            SELECT new.id, %(user)s,
                   CASE WHEN k %% 2 = 1 THEN 'user' ELSE 'assistant' END,
                   'message ' || k || E' with \\\\ "quotes", tabs\\t and\\nnewlines ✓',
                   CASE WHEN k %% 2 = 0 THEN jsonb_build_object('k', k, 'tags', jsonb_build_array('a', 'b'), 'nested', jsonb_build_object('x', null)) END,
                   %(updated)s::timestamptz - interval '1 hour' * (%(messages)s - k) - interval '123456 microseconds'
            FROM new, generate_series(1, %(messages)s) AS k
        )
        SELECT id::text FROM new
        """,
        {"user": user, "status": status, "updated": updated, "count": count, "messages": messages},
    )
    return [row[0] for row in rows]


def snapshot(db: TestDatabase) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of both tables as full tuples, for exact before/after comparisons."""
    return db.sql(ROW_QUERY), db.sql(MESSAGE_QUERY)


def count(db: TestDatabase, where: str = "true", params: Any = None) -> int:
    return int(db.scalar(f"SELECT count(*) FROM conversations WHERE {where}", params))


def hold_lease(db: TestDatabase, *, minutes: int = 10) -> None:
    """A prune on another host holds the maintenance lease (heartbeat now, expiring in ``minutes``)."""
    db.sql(
        """
        INSERT INTO chatdb_job_lease (name, token, job, host, pid, started_at, heartbeat_at, expires_at)
        VALUES ('maintenance', gen_random_uuid(), 'prune', 'batch-7', 4242, now() - interval '1 hour',
                now(), now() + make_interval(mins => %s))
        """,
        [minutes],
    )
