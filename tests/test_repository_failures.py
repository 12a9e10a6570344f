"""Failures the repositories cannot check up front: translated, and recoverable by a rollback."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from helpers import TestDatabase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from chatdb import errors
from chatdb.repositories import ConversationRepository, MessageRepository
from chatdb.repositories.operations import translate_driver_error


def test_a_lock_timeout_is_a_database_error_and_a_rollback_recovers(
    migrated_db: TestDatabase,
) -> None:
    migrated_db.sql("INSERT INTO users (id) VALUES ('alice')")
    cid = migrated_db.scalar("INSERT INTO conversations (user_id) VALUES ('alice') RETURNING id")
    with (
        migrated_db.connect() as holder,
        migrated_db.database() as database,
        database.session() as session,
    ):
        holder.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", [cid])
        session.execute(text("SET LOCAL lock_timeout = '100ms'"))
        with pytest.raises(errors.DatabaseError, match="lock timeout"):
            MessageRepository(session).add(cid, "alice", "user", "blocked")
        holder.rollback()
        session.rollback()
        added = MessageRepository(session).add(cid, "alice", "user", "after the rollback")
        session.commit()
    assert migrated_db.sql("SELECT id, content FROM messages") == [(added.id, "after the rollback")]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'user', repeat('x', 1001))",
            errors.MessageTooLongError,
        ),
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'robot', 'hi')",
            errors.InvalidRoleError,
        ),
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'ghost', 'user', 'hi')",
            errors.UserNotFoundError,
        ),
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (gen_random_uuid(), 'alice', 'user', %s::text)",
            errors.ConversationNotFoundError,
        ),
        ("SELECT 1 / (count(*) - count(*)) FROM conversations WHERE id = %s", errors.DatabaseError),
    ],
)
def test_driver_errors_become_chatdb_errors(migrated_db: TestDatabase, statement: str, expected: type) -> None:
    migrated_db.sql("INSERT INTO users (id) VALUES ('alice')")
    cid = migrated_db.scalar("INSERT INTO conversations (user_id) VALUES ('alice') RETURNING id")
    with pytest.raises(psycopg.Error) as caught:
        migrated_db.sql(statement, [str(cid)])
    translated = translate_driver_error(caught.value)
    assert type(translated) is expected
    assert translated.message
    assert translate_driver_error(ValueError("not the driver's")) is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8),
    page=st.integers(min_value=1, max_value=9),
)
def test_any_paging_of_any_history_returns_each_message_once(
    migrated_db: TestDatabase, batches: list[int], page: int
) -> None:
    migrated_db.sql("INSERT INTO users (id) VALUES ('alice') ON CONFLICT DO NOTHING")
    with migrated_db.database() as database, database.session() as session:
        conversations, messages = ConversationRepository(session), MessageRepository(session)
        cid = conversations.create("alice").id
        written: list[uuid.UUID] = []
        for size in batches:  # one transaction per batch: ties inside, distinct times across
            if size % 2:
                written += [messages.add(cid, "alice", "user", str(i)).id for i in range(size)]
            else:
                written += [m.id for m in messages.add_many(cid, "alice", [("assistant", str(i)) for i in range(size)])]
            session.commit()

        backwards: list[uuid.UUID] = []
        before = None
        while chunk := messages.history(cid, limit=page, before=before):
            assert len(chunk) <= page
            backwards = [m.id for m in chunk] + backwards
            before = chunk[0].cursor
        assert backwards == written

        forwards = [written[0]]
        after = written[0]
        while chunk := messages.history(cid, limit=page, after=after):
            forwards += [m.id for m in chunk]
            after = chunk[-1].id
        assert forwards == written
        assert messages.count(cid) == len(written)
