"""The repository layer, sync and async, against a real database.

Every test runs twice (``repos`` is parametrised over the sync and async
repositories) and checks the database itself afterwards.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from helpers import TestDatabase
from repo_harness import Repos, open_repos

import chatdb
from chatdb import errors
from chatdb.models import ConversationStatus, MessageRole
from chatdb.repositories import Cursor, NewMessage


@pytest.fixture(params=["sync", "async"])
def repos(request: pytest.FixtureRequest, migrated_db: TestDatabase) -> Iterator[Repos]:
    migrated_db.sql("INSERT INTO users (id) VALUES ('alice'), ('bob')")
    with open_repos(request.param, migrated_db) as found:
        yield found


@pytest.fixture
def db(migrated_db: TestDatabase) -> TestDatabase:
    return migrated_db


def message_rows(db: TestDatabase, conversation_id: uuid.UUID) -> list[tuple]:
    return db.sql(
        "SELECT id, role, content, metadata, user_id FROM messages WHERE conversation_id = %s ORDER BY created_at, id",
        [conversation_id],
    )


# --- conversations -------------------------------------------------------------------


def test_create_and_get_a_conversation(repos: Repos, db: TestDatabase) -> None:
    created = repos.conversations.create("alice")
    repos.commit()
    assert created.user_id == "alice"
    assert created.status is ConversationStatus.ACTIVE
    assert created.created_at == created.updated_at
    assert db.sql("SELECT user_id, status, updated_at FROM conversations WHERE id = %s", [created.id]) == [
        ("alice", "active", created.updated_at)
    ]
    assert repos.conversations.get(created.id) == created
    assert repos.conversations.get(str(created.id)) == created
    assert created.as_dict()["id"] == str(created.id)


def test_unknown_and_malformed_conversation_ids(repos: Repos) -> None:
    missing = uuid.uuid4()
    for call in (
        lambda: repos.conversations.get(missing),
        lambda: repos.conversations.archive(missing),
        lambda: repos.conversations.unarchive(missing),
        lambda: repos.conversations.delete(missing),
        lambda: repos.messages.history(missing),
        lambda: repos.messages.count(missing),
        lambda: repos.messages.add(missing, "alice", "user", "hi"),
    ):
        with pytest.raises(errors.ConversationNotFoundError, match=str(missing)):
            call()
    with pytest.raises(errors.InvalidIdError, match="not-a-uuid") as caught:
        repos.conversations.get("not-a-uuid")
    assert isinstance(caught.value, errors.UsageError)
    with pytest.raises(errors.InvalidIdError):
        repos.messages.add("12345", "alice", "user", "hi")


def test_create_for_an_unknown_user_leaves_the_transaction_usable(repos: Repos, db: TestDatabase) -> None:
    with pytest.raises(errors.UserNotFoundError, match="'mallory'"):
        repos.conversations.create("mallory")
    kept = repos.conversations.create("alice")
    repos.commit()
    assert db.sql("SELECT id FROM conversations") == [(kept.id,)]


def test_archive_and_unarchive_keep_last_activity(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    repos.commit()
    archived = repos.conversations.archive(conversation.id)
    assert archived.status is ConversationStatus.ARCHIVED
    assert repos.conversations.archive(conversation.id).status is ConversationStatus.ARCHIVED
    repos.commit()
    assert db.sql("SELECT status, updated_at FROM conversations") == [("archived", conversation.updated_at)]
    restored = repos.conversations.unarchive(str(conversation.id))
    repos.commit()
    assert restored.status is ConversationStatus.ACTIVE
    assert db.sql("SELECT status, updated_at FROM conversations") == [("active", conversation.updated_at)]


def test_delete_removes_the_conversation_and_its_messages_only(repos: Repos, db: TestDatabase) -> None:
    doomed = repos.conversations.create("alice")
    kept = repos.conversations.create("alice")
    repos.messages.add_many(doomed.id, "alice", [("user", "a"), ("assistant", "b")])
    repos.messages.add(kept.id, "alice", "user", "stays")
    repos.commit()
    repos.conversations.delete(doomed.id)
    repos.commit()
    assert db.sql("SELECT id FROM conversations") == [(kept.id,)]
    assert db.sql("SELECT conversation_id, content FROM messages") == [(kept.id, "stays")]
    with pytest.raises(errors.ConversationNotFoundError):
        repos.conversations.get(doomed.id)


def test_nothing_is_kept_without_a_commit(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    repos.messages.add(conversation.id, "alice", "user", "draft")
    assert repos.messages.count(conversation.id) == 1  # visible inside the transaction
    repos.rollback()
    assert db.scalar("SELECT count(*) FROM conversations") == 0
    assert db.scalar("SELECT count(*) FROM messages") == 0


def test_pending_orm_changes_are_flushed_before_the_repository_reads(repos: Repos) -> None:
    from chatdb.models import Conversation

    repos.conversations.list_for_user("alice")  # the repository has seen this transaction
    repos.orm_session.add(Conversation(user_id="alice"))
    assert len(repos.conversations.list_for_user("alice")) == 1
    repos.rollback()
    assert repos.conversations.list_for_user("alice") == []


# --- a user's conversations -------------------------------------------------------------


def test_list_for_user_is_newest_activity_first_and_filters_status(repos: Repos) -> None:
    first, second, third = (repos.conversations.create("alice") for _ in range(3))
    other = repos.conversations.create("bob")
    repos.commit()
    repos.messages.add(first.id, "alice", "user", "bump")  # first becomes the most recent
    repos.conversations.archive(second.id)
    repos.commit()

    assert [c.id for c in repos.conversations.list_for_user("alice")] == [first.id, third.id]
    assert [c.id for c in repos.conversations.list_for_user("alice", status="archived")] == [second.id]
    assert [c.id for c in repos.conversations.list_for_user("alice", status=ConversationStatus.ARCHIVED)] == [second.id]
    assert [c.id for c in repos.conversations.list_for_user("alice", status="all")] == [
        first.id,
        third.id,
        second.id,
    ]
    assert [c.id for c in repos.conversations.list_for_user("alice", limit=1)] == [first.id]
    assert [c.id for c in repos.conversations.list_for_user("bob")] == [other.id]


def test_list_for_user_errors(repos: Repos) -> None:
    assert repos.conversations.list_for_user("bob") == []  # a user with no conversations
    with pytest.raises(errors.UserNotFoundError, match="'nobody'"):
        repos.conversations.list_for_user("nobody")
    with pytest.raises(errors.ValidationError, match="status"):
        repos.conversations.list_for_user("alice", status="deleted")
    with pytest.raises(errors.ValidationError, match="limit"):
        repos.conversations.list_for_user("alice", limit=0)
    foreign = repos.conversations.create("bob")
    with pytest.raises(errors.ConversationNotFoundError, match="'before' cursor"):
        repos.conversations.list_for_user("alice", before=foreign.id)


def test_paging_through_a_users_conversations_returns_each_once(repos: Repos) -> None:
    # Created in one transaction: all share updated_at, so only the id orders them.
    made = [repos.conversations.create("alice").id for _ in range(23)]
    repos.commit()
    made += [repos.conversations.create("alice").id for _ in range(4)]
    repos.commit()
    expected = list(reversed(made))  # newest first

    for make_cursor in (lambda c: c.id, lambda c: str(c.id), lambda c: c.cursor):
        seen: list[uuid.UUID] = []
        before = None
        while True:
            page = repos.conversations.list_for_user("alice", limit=5, before=before)
            if not page:
                break
            seen += [c.id for c in page]
            before = make_cursor(page[-1])
        assert seen == expected


# --- messages ----------------------------------------------------------------------------


def test_add_stores_the_message_and_bumps_the_conversation(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    repos.commit()
    message = repos.messages.add(str(conversation.id), "alice", MessageRole.USER, "hello", {"tokens": 3})
    reply = repos.messages.add(conversation.id, "alice", "assistant", "hi there")
    repos.commit()
    assert message.role is MessageRole.USER and reply.role is MessageRole.ASSISTANT
    assert message.metadata == {"tokens": 3} and reply.metadata is None
    assert message_rows(db, conversation.id) == [
        (message.id, "user", "hello", {"tokens": 3}, "alice"),
        (reply.id, "assistant", "hi there", None, "alice"),
    ]
    newest = db.scalar("SELECT max(created_at) FROM messages")
    assert newest == reply.created_at
    assert db.scalar("SELECT updated_at FROM conversations") == newest > conversation.updated_at
    assert message.as_dict()["metadata"] == {"tokens": 3}


def test_add_many_inserts_a_batch_in_order(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    batch = [
        ("user", "one"),
        NewMessage(MessageRole.ASSISTANT, "two", {"model": "m"}),
        ("user", "three", None),
        NewMessage("assistant", "four"),
    ]
    added = repos.messages.add_many(conversation.id, "alice", batch)
    repos.commit()
    assert [m.content for m in added] == ["one", "two", "three", "four"]
    assert [row[2] for row in message_rows(db, conversation.id)] == ["one", "two", "three", "four"]
    assert len({m.created_at for m in added}) == 1
    assert db.scalar("SELECT updated_at FROM conversations") == added[0].created_at
    assert repos.messages.add_many(conversation.id, "alice", []) == []
    with pytest.raises(errors.ValidationError, match="NewMessage"):
        repos.messages.add_many(conversation.id, "alice", ["just text"])
    with pytest.raises(errors.MessageTooLongError):
        repos.messages.add_many(conversation.id, "alice", [("user", "ok"), ("user", "x" * 1001)])
    repos.commit()
    assert repos.messages.count(conversation.id) == 4  # a rejected batch writes nothing


def test_history_is_insertion_order_even_with_equal_timestamps(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    contents = [f"message {i}" for i in range(30)]
    for i, content in enumerate(contents):
        repos.messages.add(conversation.id, "alice", "user" if i % 2 == 0 else "assistant", content)
    repos.commit()
    assert db.scalar("SELECT count(DISTINCT created_at) FROM messages") == 1  # all tied
    assert [m.content for m in repos.messages.history(conversation.id, limit=100)] == contents
    assert [m.content for m in repos.messages.history(conversation.id)] == contents[-20:]
    assert [m.content for m in repos.messages.history(conversation.id, limit=3)] == contents[-3:]


def _fill(repos: Repos, conversation_id: uuid.UUID, count: int) -> list[str]:
    """Messages in several transactions, several per transaction (so with ties)."""
    contents = []
    for i in range(count):
        contents.append(f"m{i:03}")
        repos.messages.add(conversation_id, "alice", "user", contents[-1])
        if i % 7 == 6:
            repos.commit()
    repos.commit()
    return contents


def test_walking_history_pages_returns_every_message_once(repos: Repos) -> None:
    conversation = repos.conversations.create("alice")
    contents = _fill(repos, conversation.id, 57)

    for make_cursor in (lambda m: m.id, lambda m: str(m.id), lambda m: m.cursor):
        seen: list[str] = []
        before = None
        while page := repos.messages.history(conversation.id, limit=10, before=before):
            assert [m.content for m in page] == sorted(m.content for m in page)  # oldest first
            seen = [m.content for m in page] + seen
            before = make_cursor(page[0])
        assert seen == contents

        oldest = repos.messages.history(
            conversation.id,
            limit=1,
            before=make_cursor(repos.messages.history(conversation.id, limit=57)[0]),
        )
        assert oldest == []
        first = repos.messages.history(conversation.id, limit=57)[0]
        forward = [first.content]
        after = make_cursor(first)
        while page := repos.messages.history(conversation.id, limit=10, after=after):
            forward += [m.content for m in page]
            after = make_cursor(page[-1])
        assert forward == contents


def test_history_between_two_cursors(repos: Repos) -> None:
    conversation = repos.conversations.create("alice")
    contents = _fill(repos, conversation.id, 20)
    everything = repos.messages.history(conversation.id, limit=20)
    window = repos.messages.history(conversation.id, after=everything[4].id, before=everything[15].id, limit=3)
    assert [m.content for m in window] == contents[5:8]


def test_history_and_count_of_an_empty_conversation(repos: Repos) -> None:
    conversation = repos.conversations.create("alice")
    assert repos.messages.history(conversation.id) == []
    assert repos.messages.count(conversation.id) == 0


def test_history_cursor_must_be_a_message_of_that_conversation(repos: Repos) -> None:
    one = repos.conversations.create("alice")
    two = repos.conversations.create("alice")
    elsewhere = repos.messages.add(two.id, "alice", "user", "elsewhere")
    repos.messages.add(one.id, "alice", "user", "here")
    for cursor in ({"before": elsewhere.id}, {"after": elsewhere.id}, {"before": uuid.uuid4()}):
        with pytest.raises(errors.MessageNotFoundError, match="cursor"):
            repos.messages.history(one.id, **cursor)
    with pytest.raises(errors.InvalidIdError, match="message id"):
        repos.messages.history(one.id, before="yesterday")
    with pytest.raises(errors.ValidationError, match="limit"):
        repos.messages.history(one.id, limit=-1)


def test_count(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    other = repos.conversations.create("alice")
    repos.messages.add_many(conversation.id, "alice", [("user", str(i)) for i in range(12)])
    repos.messages.add(other.id, "alice", "user", "x")
    repos.commit()
    assert repos.messages.count(conversation.id) == 12
    assert repos.messages.count(str(other.id)) == 1


# --- domain errors ------------------------------------------------------------------------


def test_message_rules_are_checked_and_the_transaction_stays_usable(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    repos.commit()
    cid = conversation.id
    cases = [
        (
            lambda: repos.messages.add(cid, "alice", "user", "x" * 1001),
            errors.MessageTooLongError,
            "1,001",
        ),
        (
            lambda: repos.messages.add(cid, "alice", "system", "hi"),
            errors.InvalidRoleError,
            "'system'",
        ),
        (lambda: repos.messages.add(cid, "alice", None, "hi"), errors.InvalidRoleError, "None"),
        (
            lambda: repos.messages.add(cid, "mallory", "user", "hi"),
            errors.UserNotFoundError,
            "'mallory'",
        ),
        (
            lambda: repos.messages.add(cid, "bob", "user", "hi"),
            errors.ConversationOwnerError,
            "another user",
        ),
        (lambda: repos.messages.add(cid, "", "user", "hi"), errors.ValidationError, "user id"),
        (lambda: repos.messages.add(cid, "alice", "user", "a\x00b"), errors.ValidationError, "NUL"),
        (lambda: repos.messages.add(cid, "alice", "user", 42), errors.ValidationError, "string"),
        (
            lambda: repos.messages.add(cid, "alice", "user", "hi", {"when": object()}),
            errors.ValidationError,
            "JSON",
        ),
        (
            lambda: repos.messages.add(cid, "alice", "user", "hi", ["a", "list"]),
            errors.ValidationError,
            "mapping",
        ),
        (
            lambda: repos.messages.add(cid, "alice", "user", "hi", {"x": float("nan")}),
            errors.ValidationError,
            "JSON",
        ),
    ]
    for call, kind, fragment in cases:
        with pytest.raises(kind, match=fragment):
            call()
    # Every rule above was caught before the database could abort the transaction.
    kept = [
        repos.messages.add(cid, "alice", "user", "x" * 1000),
        repos.messages.add(cid, "alice", "assistant", "y" * 5000),
    ]
    repos.commit()
    assert [row[0] for row in message_rows(db, cid)] == [m.id for m in kept]


def test_adding_to_an_archived_conversation_is_refused(repos: Repos, db: TestDatabase) -> None:
    conversation = repos.conversations.create("alice")
    repos.conversations.archive(conversation.id)
    repos.commit()
    with pytest.raises(errors.ConversationArchivedError, match="unarchive") as caught:
        repos.messages.add(conversation.id, "alice", "user", "hello?")
    assert caught.value.exit_code == errors.EXIT_FAILURE
    repos.conversations.unarchive(conversation.id)
    repos.messages.add(conversation.id, "alice", "user", "hello again")
    repos.commit()
    assert [row[2] for row in message_rows(db, conversation.id)] == ["hello again"]
    assert db.scalar("SELECT status FROM conversations") == "active"


# --- the schema itself ----------------------------------------------------------------------


def test_deleting_a_user_removes_their_conversations_and_messages(repos: Repos, db: TestDatabase) -> None:
    mine = repos.conversations.create("alice")
    theirs = repos.conversations.create("bob")
    repos.messages.add_many(mine.id, "alice", [("user", "a"), ("assistant", "b")])
    repos.messages.add(theirs.id, "bob", "user", "c")
    repos.commit()
    db.sql("DELETE FROM users WHERE id = 'alice'")
    assert db.sql("SELECT id FROM conversations") == [(theirs.id,)]
    assert db.sql("SELECT content FROM messages") == [("c",)]


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'user', repeat('x', 1001))",
            "chk_user_message_length",
        ),
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'system', 'hi')",
            "messages_role_check",
        ),
        ("UPDATE conversations SET status = 'deleted' WHERE id = %s", "conversations_status_check"),
        (
            "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'nobody', 'user', 'hi')",
            "messages_user_id_fkey",
        ),
    ],
)
def test_constraints_hold_when_the_repository_is_bypassed(db: TestDatabase, statement: str, constraint: str) -> None:
    db.sql("INSERT INTO users (id) VALUES ('alice')")
    cid = db.scalar("INSERT INTO conversations (user_id) VALUES ('alice') RETURNING id")
    with pytest.raises(psycopg.errors.IntegrityError) as caught:
        db.sql(statement, [cid])
    assert caught.value.diag.constraint_name == constraint
    assert db.scalar("SELECT count(*) FROM messages") == 0
    assert db.scalar("SELECT status FROM conversations") == "active"


def test_a_long_assistant_message_is_allowed_by_the_schema(db: TestDatabase) -> None:
    db.sql("INSERT INTO users (id) VALUES ('alice')")
    cid = db.scalar("INSERT INTO conversations (user_id) VALUES ('alice') RETURNING id")
    db.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'assistant', repeat('x', 5000))",
        [cid],
    )
    assert db.scalar("SELECT length(content) FROM messages") == 5000


# --- the API's shape ---------------------------------------------------------------------------


def test_sync_and_async_repositories_offer_the_same_methods() -> None:
    from chatdb import repositories as r

    for sync_cls, async_cls in (
        (r.ConversationRepository, r.AsyncConversationRepository),
        (r.MessageRepository, r.AsyncMessageRepository),
    ):
        public = {n for n in dir(sync_cls) if not n.startswith("_")}
        assert public == {n for n in dir(async_cls) if not n.startswith("_")}
        for name in public:
            assert inspect.iscoroutinefunction(getattr(async_cls, name)), name
            assert inspect.signature(getattr(sync_cls, name)) == inspect.signature(getattr(async_cls, name))
    assert {n for n in dir(r.MessageRepository) if not n.startswith("_")} == {
        "add",
        "add_many",
        "history",
        "count",
    }


def test_chatdb_exports_the_repositories_lazily() -> None:
    from chatdb import repositories

    assert chatdb.ConversationRepository is repositories.ConversationRepository
    assert chatdb.AsyncMessageRepository is repositories.AsyncMessageRepository
    assert "MessageRepository" in dir(chatdb)
    with pytest.raises(AttributeError):
        chatdb.NoSuchThing
    code = "import sys, chatdb; print('sqlalchemy' in sys.modules, 'chatdb.repositories' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cursor_needs_a_time_zone(repos: Repos) -> None:
    from datetime import datetime

    conversation = repos.conversations.create("alice")
    with pytest.raises(errors.ValidationError, match="time zone"):
        repos.messages.history(conversation.id, before=Cursor(datetime(2026, 1, 1), uuid.uuid4()))


def test_history_pages_are_exact_whatever_ties_lie_at_their_edges(repos: Repos, db: TestDatabase) -> None:
    """Runs of 1 to 8 equal timestamps, so a tie meets every page edge at every limit and cursor."""
    conversation = repos.conversations.create("alice")
    repos.commit()
    db.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content, created_at)"
        " SELECT %s, 'alice', 'user', 'm' || run || '.' || k,"
        " timestamptz '2026-01-01' + run * interval '1 second'"
        " FROM generate_series(1, 8) run, generate_series(1, run) k",
        [conversation.id],
    )
    rows = db.sql("SELECT id, created_at FROM messages WHERE conversation_id = %s", [conversation.id])
    order = [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]))]  # oldest first, ties by id
    for limit in range(1, 12):
        assert [m.id for m in repos.messages.history(conversation.id, limit=limit)] == order[-limit:]
        for at in range(len(order)):
            before = [m.id for m in repos.messages.history(conversation.id, limit=limit, before=order[at])]
            assert before == order[max(0, at - limit) : at], (limit, at)
            after = [m.id for m in repos.messages.history(conversation.id, limit=limit, after=order[at])]
            assert after == order[at + 1 : at + 1 + limit], (limit, at)
