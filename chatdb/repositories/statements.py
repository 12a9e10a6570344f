"""Every SQL statement the repositories run, written once.

The sync and async repositories, and the benchmark's raw-psycopg baseline,
execute exactly these strings. Values are always bound parameters
(``%(name)s``, psycopg's style); the only text ever joined into a statement
is one of the constant fragments below, chosen by the kind of cursor given.

Orders are total: history by ``(created_at, id)``, a user's conversations by
``(updated_at, id)`` newest first. Keyset conditions are written as
``created_at <= :at AND (created_at < :at OR id < :id)`` rather than a row
comparison, so that ``created_at`` stays an index condition on
``idx_messages_conversation_created``.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

CursorKind = Literal["none", "id", "position"]

# The plan's columns, in its order: what every statement returns, every export line and CSV holds.
CONVERSATION_FIELDS = ("id", "user_id", "status", "created_at", "updated_at")
MESSAGE_FIELDS = ("id", "conversation_id", "user_id", "role", "content", "metadata", "created_at")
CONVERSATION_COLUMN_LIST = ", ".join(CONVERSATION_FIELDS)
MESSAGE_COLUMN_LIST = ", ".join(MESSAGE_FIELDS)

# Only users that exist get a conversation: the statement inserts nothing
# instead of failing on the foreign key, which would abort the caller's transaction.
CREATE_CONVERSATION = f"""
INSERT INTO conversations (id, user_id)
SELECT %(id)s, users.id FROM users WHERE users.id = %(user_id)s
RETURNING {CONVERSATION_COLUMN_LIST}
"""

GET_CONVERSATION = f"SELECT {CONVERSATION_COLUMN_LIST} FROM conversations WHERE id = %(id)s"

# Archiving is not activity: updated_at is left alone, so "older than" keeps its meaning.
SET_CONVERSATION_STATUS = f"""
UPDATE conversations SET status = %(status)s WHERE id = %(id)s
RETURNING {CONVERSATION_COLUMN_LIST}
"""

DELETE_CONVERSATION = "DELETE FROM conversations WHERE id = %(id)s RETURNING id"

USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s)"

# The plan's pattern 3 in one round trip. The conversation row is locked first
# (the lock an UPDATE takes anyway), so a concurrent archive or add waits, and
# the status and owner seen here are the current ones. Messages go in only if
# the conversation is active and belongs to the user; updated_at moves forward
# to the new messages' created_at and never back, whatever order concurrent
# transactions commit in. The outer join returns the conversation's state even
# when nothing was inserted, so the caller can tell why.
ADD_MESSAGES = f"""
WITH conversation AS (
    SELECT id, user_id, status FROM conversations WHERE id = %(conversation_id)s
    FOR NO KEY UPDATE
), inserted AS (
    INSERT INTO messages (id, conversation_id, user_id, role, content, metadata)
    SELECT new.id, conversation.id, conversation.user_id, new.role, new.content,
           new.metadata::jsonb
    FROM conversation,
         unnest(%(ids)s::uuid[], %(roles)s::text[], %(contents)s::text[], %(metadata)s::text[])
             AS new (id, role, content, metadata)
    WHERE conversation.status = 'active' AND conversation.user_id = %(user_id)s
    RETURNING {MESSAGE_COLUMN_LIST}
), bumped AS (
    UPDATE conversations
    SET updated_at = GREATEST(conversations.updated_at, (SELECT max(created_at) FROM inserted))
    WHERE conversations.id = %(conversation_id)s AND EXISTS (SELECT 1 FROM inserted)
)
SELECT conversation.status, conversation.user_id,
       inserted.id, inserted.conversation_id, inserted.user_id, inserted.role,
       inserted.content, inserted.metadata, inserted.created_at
FROM conversation LEFT JOIN inserted ON true
"""

COUNT_MESSAGES = "SELECT count(*) FROM messages WHERE conversation_id = %(conversation_id)s"

CONVERSATION_EXISTS = "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = %(conversation_id)s)"

# --- history -----------------------------------------------------------------


def _message_anchor(kind: CursorKind, name: str) -> tuple[str, str]:
    """SQL for a cursor's timestamp and id: bound values, or looked up from a message id.

    A message id that is not in this conversation yields NULL, which matches nothing.
    """
    if kind == "position":
        return f"%({name}_at)s::timestamptz", f"%({name})s::uuid"
    lookup = f"FROM messages WHERE id = %({name})s AND conversation_id = %(conversation_id)s"
    return f"(SELECT created_at {lookup})", f"(SELECT id {lookup})"


def _message_bound(kind: CursorKind, name: str, less: bool) -> str:
    if kind == "none":
        return ""
    at, ident = _message_anchor(kind, name)
    op = "<" if less else ">"
    return f"\n  AND created_at {op}= {at} AND (created_at {op} {at} OR id {op} {ident})"


@cache
def history(before: CursorKind, after: CursorKind) -> str:
    """The history page query: newest first without ``after``, oldest first with it."""
    order = "ASC" if after != "none" else "DESC"
    return (
        f"SELECT {MESSAGE_COLUMN_LIST} FROM messages"
        "\nWHERE conversation_id = %(conversation_id)s"
        f"{_message_bound(before, 'before', less=True)}"
        f"{_message_bound(after, 'after', less=False)}"
        f"\nORDER BY created_at {order}, id {order}\nLIMIT %(limit)s"
    )


MESSAGE_IN_CONVERSATION = (
    "SELECT EXISTS (SELECT 1 FROM messages WHERE id = %(id)s AND conversation_id = %(conversation_id)s)"
)

# --- a user's conversations --------------------------------------------------


@cache
def list_for_user(status: Literal["active", "archived", "all"], before: CursorKind) -> str:
    """Recent conversations of one user, newest activity first (the plan's pattern 1)."""
    where = "user_id = %(user_id)s"
    if status != "all":
        where += " AND status = %(status)s"
    if before == "id":
        where += (
            "\n  AND (updated_at, id) < (SELECT updated_at, id FROM conversations"
            " WHERE id = %(before)s AND user_id = %(user_id)s)"
        )
    elif before == "position":
        where += "\n  AND (updated_at, id) < (%(before_at)s::timestamptz, %(before)s::uuid)"
    return (
        f"SELECT {CONVERSATION_COLUMN_LIST} FROM conversations\nWHERE {where}"
        "\nORDER BY updated_at DESC, id DESC\nLIMIT %(limit)s"
    )


CONVERSATION_OF_USER = "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = %(id)s AND user_id = %(user_id)s)"
