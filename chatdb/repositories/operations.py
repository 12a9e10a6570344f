"""What each repository method does, written once for sync and async.

Every operation is a generator: it checks its arguments, yields a
:class:`Query`, receives the rows, maybe yields a follow-up query (only on
an error path, to say precisely what was wrong), and returns the result.
It never touches a connection itself; :mod:`chatdb.repositories.sync` and
:mod:`chatdb.repositories.asyncio` drive the same generators, one with
``cursor.execute`` and the other with ``await cursor.execute``.

Every error the caller can cause is found before the database could reject
it (checked in Python, or by a statement that writes nothing instead of
failing), so the caller's transaction stays usable after a
:class:`~chatdb.errors.ChatdbError`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from chatdb import ids
from chatdb.errors import (
    ChatdbError,
    ConversationArchivedError,
    ConversationNotFoundError,
    ConversationOwnerError,
    DatabaseError,
    DatabaseUnavailable,
    InvalidRoleError,
    MessageNotFoundError,
    MessageTooLongError,
    UserNotFoundError,
    ValidationError,
)
from chatdb.ids import parse_uuid
from chatdb.models import USER_MESSAGE_MAX_LENGTH, ConversationStatus, MessageRole
from chatdb.repositories import statements as sql
from chatdb.repositories.records import ConversationRecord, Cursor, MessageRecord, NewMessage

T = TypeVar("T")
Rows = list[tuple[Any, ...]]
Operation = Generator["Query", Rows, T]
CursorArg = Cursor | uuid.UUID | str | None
StatusArg = ConversationStatus | Literal["active", "archived", "all"]


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: dict[str, Any]


# --- argument checks -----------------------------------------------------------


def conversation_id_of(value: uuid.UUID | str) -> uuid.UUID:
    return parse_uuid(value, "conversation id")


def user_id_of(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"a user id must be a non-empty string, got {value!r}")
    return value


def role_of(value: MessageRole | str) -> MessageRole:
    try:
        return MessageRole(value)
    except ValueError:
        allowed = ", ".join(role.value for role in MessageRole)
        raise InvalidRoleError(f"unknown message role {value!r}: use {allowed}") from None


def limit_of(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"limit must be a positive whole number, got {value!r}")
    return value


def status_of(value: StatusArg) -> Literal["active", "archived", "all"]:
    if isinstance(value, ConversationStatus):
        return value.value
    if value in ("active", "archived", "all"):
        return value
    raise ValidationError(f"unknown conversation status {value!r}: use active, archived or all")


def metadata_text(value: Mapping[str, Any] | None) -> str | None:
    """The metadata as JSON text for the ``jsonb`` column, or a clear error."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"message metadata must be a mapping (a JSON object), got {type(value).__name__}")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"message metadata cannot be stored as JSON: {exc}") from None
    if "\\u0000" in text:
        raise ValidationError("message metadata cannot contain the NUL character")
    return text


def checked_message(
    role: MessageRole | str, content: str, metadata: Mapping[str, Any] | None
) -> tuple[str, str, str | None]:
    checked_role = role_of(role)
    if not isinstance(content, str):
        raise ValidationError(f"message content must be a string, got {type(content).__name__}")
    if "\x00" in content:
        raise ValidationError("message content cannot contain the NUL character")
    if checked_role is MessageRole.USER and len(content) > USER_MESSAGE_MAX_LENGTH:
        raise MessageTooLongError(
            f"a user message can have at most {USER_MESSAGE_MAX_LENGTH:,} characters; this one has {len(content):,}"
        )
    return checked_role.value, content, metadata_text(metadata)


def cursor_of(value: CursorArg, name: str, what: str) -> tuple[sql.CursorKind, dict[str, Any]]:
    """The kind of a paging cursor and its parameters (``name`` and ``name_at``)."""
    if value is None:
        return "none", {}
    if isinstance(value, Cursor):
        if value.at.tzinfo is None:
            raise ValidationError(f"the {name!r} cursor needs a timestamp with a time zone")
        return "position", {name: value.id, f"{name}_at": value.at}
    return "id", {name: parse_uuid(value, what)}


# --- conversations ---------------------------------------------------------------


def create_conversation(user_id: str) -> Operation[ConversationRecord]:
    user = user_id_of(user_id)
    rows = yield Query(sql.CREATE_CONVERSATION, {"id": ids.uuid7(), "user_id": user})
    if not rows:
        raise UserNotFoundError(f"user {user!r} not found")
    return ConversationRecord.from_row(rows[0])


def get_conversation(conversation_id: uuid.UUID | str) -> Operation[ConversationRecord]:
    cid = conversation_id_of(conversation_id)
    rows = yield Query(sql.GET_CONVERSATION, {"id": cid})
    return ConversationRecord.from_row(_one(rows, cid))


def set_status(conversation_id: uuid.UUID | str, status: ConversationStatus) -> Operation[ConversationRecord]:
    cid = conversation_id_of(conversation_id)
    rows = yield Query(sql.SET_CONVERSATION_STATUS, {"id": cid, "status": status.value})
    return ConversationRecord.from_row(_one(rows, cid))


def delete_conversation(conversation_id: uuid.UUID | str) -> Operation[None]:
    cid = conversation_id_of(conversation_id)
    rows = yield Query(sql.DELETE_CONVERSATION, {"id": cid})
    _one(rows, cid)


def list_for_user(
    user_id: str, status: StatusArg, limit: int, before: CursorArg
) -> Operation[list[ConversationRecord]]:
    user = user_id_of(user_id)
    chosen = status_of(status)
    kind, params = cursor_of(before, "before", "conversation id")
    params.update(user_id=user, status=chosen, limit=limit_of(limit))
    rows = yield Query(sql.list_for_user(chosen, kind), params)
    if not rows:
        # Nothing found: say so if the user or the cursor's conversation does not exist.
        ((known,),) = yield Query(sql.USER_EXISTS, {"user_id": user})
        if not known:
            raise UserNotFoundError(f"user {user!r} not found")
        if kind == "id":
            ((found,),) = yield Query(sql.CONVERSATION_OF_USER, {"id": params["before"], "user_id": user})
            if not found:
                raise ConversationNotFoundError(
                    f"conversation {params['before']} (the 'before' cursor) not found for user {user!r}"
                )
    return [ConversationRecord.from_row(row) for row in rows]


def _one(rows: Rows, cid: uuid.UUID) -> tuple[Any, ...]:
    if not rows:
        raise ConversationNotFoundError(f"conversation {cid} not found")
    return rows[0]


# --- messages ---------------------------------------------------------------------


def add_messages(
    conversation_id: uuid.UUID | str,
    user_id: str,
    messages: Iterable[NewMessage | tuple[Any, ...]],
) -> Operation[list[MessageRecord]]:
    cid = conversation_id_of(conversation_id)
    user = user_id_of(user_id)
    checked = [checked_message(*_fields(message)) for message in messages]
    # Made in order, so (created_at, id) is the order the messages were given in.
    new_ids = [ids.uuid7() for _ in checked]
    rows = yield Query(
        sql.ADD_MESSAGES,
        {
            "conversation_id": cid,
            "user_id": user,
            "ids": new_ids,
            "roles": [role for role, _, _ in checked],
            "contents": [content for _, content, _ in checked],
            "metadata": [meta for _, _, meta in checked],
        },
    )
    if not rows:
        raise ConversationNotFoundError(f"conversation {cid} not found")
    status, owner = rows[0][0], rows[0][1]
    if status != ConversationStatus.ACTIVE.value:
        raise ConversationArchivedError(f"conversation {cid} is archived; unarchive it before adding messages")
    if owner != user:
        ((known,),) = yield Query(sql.USER_EXISTS, {"user_id": user})
        if not known:
            raise UserNotFoundError(f"user {user!r} not found")
        raise ConversationOwnerError(f"conversation {cid} belongs to another user, not {user!r}")
    if not checked:
        return []
    by_id = {row[2]: MessageRecord.from_row(row[2:]) for row in rows}
    return [by_id[new_id] for new_id in new_ids]


def _fields(message: NewMessage | tuple[Any, ...]) -> tuple[Any, Any, Any]:
    if isinstance(message, NewMessage):
        return message.role, message.content, message.metadata
    if isinstance(message, tuple) and len(message) in (2, 3):
        return (*message, None) if len(message) == 2 else message
    raise ValidationError(f"each message must be a NewMessage or a (role, content[, metadata]) tuple, got {message!r}")


def history(
    conversation_id: uuid.UUID | str, limit: int, before: CursorArg, after: CursorArg
) -> Operation[list[MessageRecord]]:
    cid = conversation_id_of(conversation_id)
    before_kind, params = cursor_of(before, "before", "message id")
    after_kind, after_params = cursor_of(after, "after", "message id")
    params.update(after_params, conversation_id=cid, limit=limit_of(limit))
    rows = yield Query(sql.history(before_kind, after_kind), params)
    if not rows:
        yield from _check_history_anchors(cid, params, before_kind, after_kind)
    found = [MessageRecord.from_row(row) for row in rows]
    if after_kind == "none":
        found.reverse()  # fetched newest first; returned oldest first
    return found


def _check_history_anchors(
    cid: uuid.UUID, params: dict[str, Any], before: sql.CursorKind, after: sql.CursorKind
) -> Operation[None]:
    yield from _require_conversation(cid)
    for name, kind in (("before", before), ("after", after)):
        if kind == "id":
            ((found,),) = yield Query(sql.MESSAGE_IN_CONVERSATION, {"id": params[name], "conversation_id": cid})
            if not found:
                raise MessageNotFoundError(
                    f"message {params[name]} (the {name!r} cursor) not found in conversation {cid}"
                )


def count_messages(conversation_id: uuid.UUID | str) -> Operation[int]:
    cid = conversation_id_of(conversation_id)
    ((count,),) = yield Query(sql.COUNT_MESSAGES, {"conversation_id": cid})
    if count == 0:
        yield from _require_conversation(cid)
    return int(count)


def _require_conversation(cid: uuid.UUID) -> Operation[None]:
    ((exists,),) = yield Query(sql.CONVERSATION_EXISTS, {"conversation_id": cid})
    if not exists:
        raise ConversationNotFoundError(f"conversation {cid} not found")


# --- driver errors ------------------------------------------------------------------

_CONSTRAINT_ERRORS: dict[str, type[ChatdbError]] = {
    "chk_user_message_length": MessageTooLongError,
    "messages_role_check": InvalidRoleError,
    "conversations_user_id_fkey": UserNotFoundError,
    "messages_user_id_fkey": UserNotFoundError,
    "messages_conversation_id_fkey": ConversationNotFoundError,
}


def translate_driver_error(exc: Exception) -> ChatdbError | None:
    """chatdb's error for a psycopg error raised by one of these statements (None: not psycopg's).

    Only reached when a row changed between the checks and the write (a user
    deleted meanwhile, say); the transaction is then aborted and must be rolled back.
    """
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return None
    diag = getattr(exc, "diag", None)
    detail = (getattr(diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
    if isinstance(exc, psycopg.errors.IntegrityError):
        kind = _CONSTRAINT_ERRORS.get(getattr(diag, "constraint_name", None) or "", ValidationError)
        return kind(f"{detail} (roll back the transaction before going on)")
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
        return DatabaseUnavailable(f"lost the connection to the database: {detail}")
    from chatdb.db import server_condition

    return server_condition(exc) or DatabaseError(f"database error: {detail}")
