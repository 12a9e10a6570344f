"""Read-only reports on conversations: listings, and finding one by a short id.

``chatdb conversations`` and ``chatdb history`` are thin skins over these
functions; anything they show can be had from Python too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, true

from chatdb.errors import (
    AmbiguousError,
    ConversationNotFoundError,
    UsageError,
    UserNotFoundError,
)
from chatdb.filters import ConversationFilter
from chatdb.ids import uuid_prefix_range
from chatdb.migrations import require_tables
from chatdb.repositories.statements import CONVERSATION_FIELDS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

MAX_CANDIDATES = 10


@dataclass(frozen=True)
class ConversationSummary:
    """One conversation with its message count and the time of its newest message."""

    id: uuid.UUID
    user_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    messages: int
    last_message_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user_id": self.user_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "messages": self.messages,
            "last_message_at": self.last_message_at,
        }


# A listing's columns (CSV): the conversation's own, then its message count and newest message.
LISTING_FIELDS = (*CONVERSATION_FIELDS, "messages", "last_message_at")


@dataclass(frozen=True)
class ConversationListing:
    """A page of conversations, newest activity first; ``more`` says whether the limit cut it short."""

    selection: ConversationFilter
    limit: int | None
    conversations: list[ConversationSummary] = field(default_factory=list)
    more: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "filter": self.selection.as_dict(),
            "limit": self.limit,
            "more": self.more,
            "conversations": [c.as_dict() for c in self.conversations],
        }


def _listing_statement(selection: ConversationFilter) -> Any:
    """Conversations matching ``selection`` with their message counts, newest activity first."""

    from chatdb.models import Conversation, Message

    conversations, messages = Conversation.__table__, Message.__table__
    per_conversation = (
        select(
            func.count().label("messages"),
            func.max(messages.c.created_at).label("last_message_at"),
        )
        .where(messages.c.conversation_id == conversations.c.id)
        .lateral("per_conversation")
    )
    return (
        select(
            conversations.c.id,
            conversations.c.user_id,
            conversations.c.status,
            conversations.c.created_at,
            conversations.c.updated_at,
            per_conversation.c.messages,
            per_conversation.c.last_message_at,
        )
        .select_from(conversations.join(per_conversation, true()))
        .where(*selection.conditions(conversations))
        .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
    )


def _summary(row: Any) -> ConversationSummary:
    return ConversationSummary(
        id=row.id,
        user_id=row.user_id,
        status=getattr(row.status, "value", row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        messages=int(row.messages),
        last_message_at=row.last_message_at,
    )


def list_conversations(
    db: Database, selection: ConversationFilter | None = None, *, limit: int | None = 50
) -> ConversationListing:
    """Conversations matching ``selection``, newest activity (``updated_at``) first.

    Each comes with its number of messages and the time of its newest one;
    ``limit=None`` returns them all (see :func:`iter_conversations` to stream
    a large selection instead).
    """
    if limit is not None and limit < 1:
        raise UsageError(f"{{limit}}: must be at least 1, got {limit}", parameters=("limit",))
    selection = selection or ConversationFilter()
    with db.transaction() as conn:
        require_tables(conn, "conversations", "messages")
        selection = resolve_selection(conn, selection)
        statement = _listing_statement(selection)
        if limit is not None:
            # One row more than asked tells whether there are more, without counting them all.
            statement = statement.limit(limit + 1)
        rows = conn.execute(statement).all()
    more = limit is not None and len(rows) > limit
    found = [_summary(row) for row in (rows[:limit] if limit is not None else rows)]
    return ConversationListing(selection=selection, limit=limit, conversations=found, more=more)


def iter_conversations(
    db: Database, selection: ConversationFilter | None = None, *, batch: int = 1000
) -> Iterator[ConversationSummary]:
    """Every conversation matching ``selection``, in listing order, read ``batch`` rows at a time.

    A server-side cursor keeps memory flat however many there are; the
    connection stays open until the iterator is exhausted or closed.
    """
    with db.transaction() as conn:
        require_tables(conn, "conversations", "messages")
        statement = _listing_statement(resolve_selection(conn, selection or ConversationFilter()))
        result = conn.execution_options(yield_per=batch).execute(statement)
        for row in result:
            yield _summary(row)


def conversation_prefix_query(text: str | uuid.UUID) -> Any:
    """The ids of conversations whose id is ``text`` or starts with it, smallest first.

    A range condition on the primary key (``id BETWEEN prefix000… AND prefixfff…``)
    rather than a text match, so the index answers it.
    """

    from chatdb.models import Conversation

    conversations = Conversation.__table__
    raw = str(text).strip()
    try:
        low = high = uuid.UUID(raw) if len(raw) >= 32 else None
    except ValueError:
        low = high = None
    if low is None or high is None:
        low, high = uuid_prefix_range(raw)
    return (
        select(conversations.c.id)
        .where(conversations.c.id >= low, conversations.c.id <= high)
        .order_by(conversations.c.id)
        .limit(MAX_CANDIDATES + 1)
    )


def resolve_conversation_id(conn: Connection, text: str | uuid.UUID) -> uuid.UUID:
    """The id of the one conversation whose id is ``text`` or starts with it (like a short git hash).

    No match raises :class:`ConversationNotFoundError` (exit 1); several raise
    :class:`AmbiguousError` (a usage error, exit 2) naming up to ten candidates.
    """
    raw = str(text).strip()
    rows = conn.execute(conversation_prefix_query(raw)).scalars().all()
    if not rows:
        whole = len(raw.replace("-", "")) >= 32
        raise ConversationNotFoundError(f"no conversation {'has id' if whole else 'id starts with'} {raw!r}")
    if len(rows) > 1:
        shown = ", ".join(str(r) for r in rows[:MAX_CANDIDATES])
        more = " and more" if len(rows) > MAX_CANDIDATES else ""
        raise AmbiguousError(f"conversation prefix {raw!r} is ambiguous; it matches {shown}{more} (give more digits)")
    found: uuid.UUID = rows[0]
    return found


def resolve_selection(conn: Connection | Database, selection: ConversationFilter) -> ConversationFilter:
    """``selection`` with its id prefixes resolved, after checking that what it names exists.

    Every job and listing calls this first: a user or conversation named
    explicitly that does not exist is an error naming it
    (:class:`UserNotFoundError`, :class:`ConversationNotFoundError`, exit 1),
    not a silent "0 matched"; an ambiguous prefix is an :class:`AmbiguousError`.
    """
    if not (selection.user_ids or selection.names_conversations):
        return selection
    if not hasattr(conn, "execute"):
        with conn.transaction() as opened:
            return resolve_selection(opened, selection)
    from dataclasses import replace

    from chatdb.models import Conversation, users

    if selection.user_ids:
        wanted = list(selection.user_ids)
        present = set(conn.execute(select(users.c.id).where(users.c.id.in_(wanted))).scalars())
        missing = [u for u in wanted if u not in present]
        if missing:
            names = ", ".join(repr(u) for u in missing)
            raise UserNotFoundError(
                f"no user {names} in the users table" if len(missing) == 1 else f"no users {names} in the users table"
            )
    ids = list(selection.conversation_ids)
    problems = []
    if ids:
        table = Conversation.__table__
        present_ids = set(conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
        problems += [f"no conversation has id '{i}'" for i in ids if i not in present_ids]
    for prefix in selection.conversation_prefixes:
        try:
            ids.append(resolve_conversation_id(conn, prefix))  # type: ignore[arg-type]  # a Connection here (hasattr above)
        except ConversationNotFoundError as exc:
            problems.append(exc.message)
    if problems:
        raise ConversationNotFoundError("; ".join(problems))
    return replace(selection, conversation_ids=tuple(dict.fromkeys(ids)), conversation_prefixes=())
