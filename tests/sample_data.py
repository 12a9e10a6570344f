"""A small, fully known data set for the reporting commands' tests.

Timestamps are fixed, so every count and order a test expects follows from
this file; tests still check the command's output against the database.
"""

from __future__ import annotations

from helpers import TestDatabase

ALICE_ACTIVE = "aaaa1111-0000-4000-8000-000000000001"
ALICE_ARCHIVED = "aaaa2222-0000-4000-8000-000000000002"
BOB_ACTIVE = "bbbb1111-0000-4000-8000-000000000003"
CAROL_OLD = "cccc1111-0000-4000-8000-000000000004"

CONVERSATIONS = [
    # id, user, status, created_at, updated_at
    (ALICE_ACTIVE, "alice", "active", "2025-01-01T09:00:00Z", "2025-03-01T12:00:00Z"),
    (ALICE_ARCHIVED, "alice", "archived", "2024-01-01T09:00:00Z", "2024-02-01T12:00:00Z"),
    (BOB_ACTIVE, "bob", "active", "2025-05-01T09:00:00Z", "2025-06-01T12:00:00Z"),
    (CAROL_OLD, "carol", "archived", "2023-01-01T09:00:00Z", "2023-01-02T12:00:00Z"),
]


def seed(db: TestDatabase, *, messages_in_alice_active: int = 5) -> None:
    """Users alice, bob, carol, dave (no conversations); four conversations; a few messages.

    ``ALICE_ACTIVE`` gets ``messages_in_alice_active`` messages alternating user and
    assistant, one minute apart from 2025-01-01 10:00 UTC, each with metadata
    ``{"n": i}``; ``BOB_ACTIVE`` gets two messages with the same ``created_at``.
    """
    db.sql("INSERT INTO users (id) VALUES ('alice'), ('bob'), ('carol'), ('dave') ON CONFLICT DO NOTHING")
    with db.connect() as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO conversations (id, user_id, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
                CONVERSATIONS,
            )
            cur.execute(
                "INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at) "
                "SELECT %s, 'alice', CASE WHEN i %% 2 = 1 THEN 'user' ELSE 'assistant' END, "
                "'message ' || i, jsonb_build_object('n', i), "
                "timestamptz '2025-01-01T10:00:00Z' + (i - 1) * interval '1 minute' "
                "FROM generate_series(1, %s) AS i",
                (ALICE_ACTIVE, messages_in_alice_active),
            )
            cur.execute(
                "INSERT INTO messages (conversation_id, user_id, role, content, created_at) VALUES "
                "(%s, 'bob', 'user', 'same time one', '2025-06-01T12:00:00Z'), "
                "(%s, 'bob', 'assistant', 'same time two', '2025-06-01T12:00:00Z')",
                (BOB_ACTIVE, BOB_ACTIVE),
            )
        conn.commit()
