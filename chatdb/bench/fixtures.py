"""The benchmark's own rows and its view of the server: limits, table sizes, a read sample."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import text

from chatdb.bench.report import ServerLimits

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

PREFILLED_MESSAGES = 10  # in each of the benchmark's own conversations

OWN_CONVERSATIONS = "SELECT id FROM conversations WHERE user_id = :user"
DELETE_USER = "DELETE FROM users WHERE id = :user"


def server_limits(conn: Connection) -> ServerLimits:
    row = conn.execute(
        text(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
            " + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int"
        )
    ).one()
    return ServerLimits(row[0], row[1], row[2])


def table_sizes(conn: Connection) -> tuple[int, int]:
    found: dict[str, int] = dict(
        conn.execute(
            text(
                "SELECT relname, greatest(reltuples, 0)::bigint FROM pg_class "
                "WHERE oid IN (to_regclass('conversations'), to_regclass('messages'))"
            )
        ).all()
    )
    return int(found.get("conversations", 0)), int(found.get("messages", 0))


def sample(conn: Connection, size: int, estimated: int) -> list[tuple[uuid.UUID, str]]:
    """Up to ``size`` existing conversations, chosen at random (cheaply on big tables)."""

    if estimated > 20 * size:
        percent = min(100.0, 300.0 * size / estimated)
        rows = conn.execute(
            text("SELECT id, user_id FROM conversations TABLESAMPLE SYSTEM (:percent) LIMIT :size"),
            {"percent": percent, "size": size},
        ).all()
        if len(rows) >= size // 2:
            return [(r[0], r[1]) for r in rows]
    rows = conn.execute(
        text("SELECT id, user_id FROM conversations ORDER BY random() LIMIT :size"), {"size": size}
    ).all()
    return [(r[0], r[1]) for r in rows]


def create_own_rows(conn: Connection, user_id: str, count: int) -> list[uuid.UUID]:
    from chatdb import ids

    conversation_ids = [ids.uuid7() for _ in range(count)]
    conn.execute(
        text("INSERT INTO conversations (id, user_id) SELECT c, :user FROM unnest(CAST(:ids AS uuid[])) AS c"),
        {"user": user_id, "ids": conversation_ids},
    )
    conn.execute(
        text(
            "INSERT INTO messages (conversation_id, user_id, role, content, created_at) "
            "SELECT c, :user, CASE WHEN k % 2 = 0 THEN 'user' ELSE 'assistant' END, "
            "'An earlier message of this conversation.', now() - make_interval(mins => :n - k) "
            "FROM unnest(CAST(:ids AS uuid[])) AS c, generate_series(0, :n - 1) AS k"
        ),
        {"user": user_id, "ids": conversation_ids, "n": PREFILLED_MESSAGES},
    )
    return conversation_ids


def remove_own_rows(db: Database, user_id: str) -> dict[str, int]:
    """Delete the benchmark's user with its conversations and messages (the jobs' delete)."""

    from chatdb.jobs.queries import LOCAL_LOCK_TIMEOUT, delete_conversations
    from chatdb.jobs.runner import JobTimeouts

    with db.transaction() as conn:
        # Fail fast, like every job, rather than wait on a lock someone holds on these rows.
        conn.execute(text(LOCAL_LOCK_TIMEOUT), {"lock": JobTimeouts.from_env().lock})
        ids = list(conn.execute(text(OWN_CONVERSATIONS), {"user": user_id}).scalars())
        conversations, messages = delete_conversations(conn, ids)
        users = conn.execute(text(DELETE_USER), {"user": user_id}).rowcount
    return {"users": users, "conversations": conversations, "messages": messages}
