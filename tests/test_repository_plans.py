"""The repositories' queries use the plan's indexes (checked with EXPLAIN)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from helpers import TestDatabase

from chatdb.repositories import statements as sql

CONVERSATION = "00000000-0000-7000-8000-000000000001"


@pytest.fixture(scope="module")
def seeded(pg_server, migrated_template):
    from helpers import new_database

    gen = new_database(pg_server, template=migrated_template)
    db = next(gen)
    try:
        yield _seed(db)
    finally:
        gen.close()


def _seed(db: TestDatabase) -> TestDatabase:
    db.sql("INSERT INTO users (id) SELECT 'user' || i FROM generate_series(1, 200) i")
    db.sql(
        "INSERT INTO conversations (id, user_id, status) SELECT"
        " CASE WHEN i = 1 THEN %s::uuid ELSE gen_random_uuid() END, 'user' || (i %% 200 + 1),"
        " CASE WHEN i %% 4 = 0 THEN 'archived' ELSE 'active' END FROM generate_series(1, 4000) i",
        [CONVERSATION],
    )
    db.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content, created_at)"
        " SELECT c.id, c.user_id, 'user', 'hello', now() - g * interval '1 second'"
        " FROM conversations c, generate_series(1, 10) g"
    )
    db.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content, created_at)"
        " SELECT %s, 'user2', 'assistant', 'long', now() - g * interval '1 minute'"
        " FROM generate_series(1, 5000) g",
        [CONVERSATION],
    )
    db.sql("ANALYZE")
    return db


def plan(db: TestDatabase, query: str, params: dict) -> str:
    with db.connect() as conn:
        conn.execute("SET enable_seqscan = off")
        # Plan for the values given, as a prepared statement would after a few runs.
        conn.execute("SET plan_cache_mode = force_custom_plan")
        cur = psycopg_client_cursor(conn)
        cur.execute("EXPLAIN (FORMAT JSON) " + query, params)
        return json.dumps(cur.fetchone()[0])


def psycopg_client_cursor(conn):
    import psycopg

    return psycopg.ClientCursor(conn)


def some_message(db: TestDatabase) -> tuple:
    return db.sql(
        "SELECT id, created_at FROM messages WHERE conversation_id = %s LIMIT 1 OFFSET 2500",
        [CONVERSATION],
    )[0]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("none", "none"),
        ("id", "none"),
        ("position", "none"),
        ("none", "id"),
        ("none", "position"),
        ("id", "id"),
    ],
)
def test_history_uses_the_conversation_created_index(seeded: TestDatabase, before: str, after: str) -> None:
    mid, at = some_message(seeded)
    params = {
        "conversation_id": CONVERSATION,
        "limit": 20,
        "before": mid,
        "before_at": at,
        "after": mid,
        "after_at": at,
    }
    found = plan(seeded, sql.history(before, after), params)
    assert "idx_messages_conversation_created" in found
    assert '"Node Type": "Seq Scan"' not in found


@pytest.mark.parametrize("before", ["none", "id", "position"])
def test_list_for_user_uses_the_user_status_index(seeded: TestDatabase, before: str) -> None:
    params = {
        "user_id": "user7",
        "status": "active",
        "limit": 50,
        "before": CONVERSATION,
        "before_at": datetime.now(UTC),
    }
    found = plan(seeded, sql.list_for_user("active", before), params)
    assert "idx_conversations_user_status" in found
    everything = plan(seeded, sql.list_for_user("all", before), params)
    assert "idx_conversations_user_id" in everything or "idx_conversations_user_status" in everything
    assert '"Node Type": "Seq Scan"' not in found + everything


def test_count_uses_an_index_on_conversation_id(seeded: TestDatabase) -> None:
    found = plan(seeded, sql.COUNT_MESSAGES, {"conversation_id": CONVERSATION})
    assert "idx_messages_conversation" in found
