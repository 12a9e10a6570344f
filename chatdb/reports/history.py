"""A conversation's transcript, a page at a time: what ``chatdb history`` shows.

The messages come from :class:`~chatdb.repositories.MessageRepository.history`
(keyset pages on ``(created_at, id)``); this module adds finding the
conversation by a short id, knowing whether older or newer messages exist,
and reading every page for ``--all``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from chatdb.migrations import require_tables
from chatdb.reports.conversations import resolve_conversation_id

if TYPE_CHECKING:
    from chatdb.db import Database
    from chatdb.repositories import ConversationRecord, MessageRecord, MessageRepository

# --all reads the transcript in pages of this many messages.
ALL_PAGE_SIZE = 1000


@dataclass(frozen=True)
class HistoryPage:
    """Messages of one conversation, oldest first, and where they sit in the whole transcript."""

    conversation: ConversationRecord
    message_count: int
    messages: list[MessageRecord] = field(default_factory=list)
    limit: int | None = 20
    before: uuid.UUID | None = None
    after: uuid.UUID | None = None
    has_older: bool = False
    has_newer: bool = False

    @property
    def older_cursor(self) -> uuid.UUID | None:
        """The ``before`` that gives the page before this one (None: this is the first)."""
        return self.messages[0].id if self.has_older and self.messages else None

    @property
    def newer_cursor(self) -> uuid.UUID | None:
        """The ``after`` that gives the page after this one (None: this is the last)."""
        return self.messages[-1].id if self.has_newer and self.messages else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversation": {**self.conversation.as_dict(), "messages": self.message_count},
            "messages": [message.as_dict() for message in self.messages],
            "page": {
                "limit": self.limit,
                "before": None if self.before is None else str(self.before),
                "after": None if self.after is None else str(self.after),
                "has_older": self.has_older,
                "has_newer": self.has_newer,
                "older": None if self.older_cursor is None else str(self.older_cursor),
                "newer": None if self.newer_cursor is None else str(self.newer_cursor),
            },
        }


def conversation_history(
    db: Database,
    conversation: str | uuid.UUID,
    *,
    limit: int | None = 20,
    before: str | uuid.UUID | None = None,
    after: str | uuid.UUID | None = None,
) -> HistoryPage:
    """The transcript of ``conversation`` (a full id or a unique prefix of one), oldest first.

    Without cursors: the latest ``limit`` messages. ``before``/``after`` are
    message ids: only messages older than ``before`` (the latest ``limit`` of
    them) or newer than ``after`` (the first ``limit`` of them).
    ``limit=None`` returns every message in range.
    """
    from chatdb.repositories import ConversationRepository, MessageRepository

    before_id, after_id = check_page(limit=limit, before=before, after=after)
    with db.session() as session:
        # One snapshot for the count and every page, even while the app writes.
        conn = session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        require_tables(conn, "conversations", "messages")
        cid = resolve_conversation_id(conn, conversation)
        record = ConversationRepository(session).get(cid)
        messages = MessageRepository(session)
        if limit is None:
            found = list(_every_message(messages, cid, before_id, after_id))
            has_older, has_newer = after_id is not None, before_id is not None
        else:
            # One message more than asked tells whether the range goes on.
            found = messages.history(cid, limit=limit + 1, before=before_id, after=after_id)
            if after_id is None:
                has_older, has_newer = len(found) > limit, before_id is not None
                found = found[-limit:]
            else:
                has_older, has_newer = True, len(found) > limit or before_id is not None
                found = found[:limit]
        count = messages.count(cid)
        if not found and before_id is not None and after_id is not None:
            _check_range(session, before_id, after_id)
    return HistoryPage(
        conversation=record,
        message_count=count,
        messages=found,
        limit=limit,
        before=before_id,
        after=after_id,
        has_older=has_older,
        has_newer=has_newer,
    )


def check_page(
    *, limit: int | None, before: str | uuid.UUID | None, after: str | uuid.UUID | None
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The paging arguments, checked without a connection: the cursors as ids."""
    from chatdb.errors import UsageError
    from chatdb.ids import parse_uuid

    if limit is not None and limit < 1:
        raise UsageError(f"{{limit}}: must be at least 1, got {limit}", parameters=("limit",))
    before_id = None if before is None else parse_uuid(before, "message id", parameter="before")
    after_id = None if after is None else parse_uuid(after, "message id", parameter="after")
    if before_id is not None and before_id == after_id:
        raise UsageError(
            "{before} and {after} name the same message: no message is both older and newer than it",
            parameters=("before", "after"),
        )
    return before_id, after_id


def _check_range(session: Any, before: uuid.UUID, after: uuid.UUID) -> None:
    """Both cursors given: the one for ``after`` must be the older message, or the range is empty."""

    from chatdb.errors import UsageError
    from chatdb.models import Message

    table = Message.__table__
    keys = {
        row.id: (row.created_at, row.id)
        for row in session.execute(select(table.c.id, table.c.created_at).where(table.c.id.in_([before, after])))
    }
    if before in keys and after in keys and keys[after] >= keys[before]:
        raise UsageError(
            "{after} must name an older message than {before}: between them there is nothing to show",
            parameters=("before", "after"),
        )


def _every_message(
    messages: MessageRepository,
    cid: uuid.UUID,
    before: uuid.UUID | None,
    after: uuid.UUID | None,
) -> Iterator[MessageRecord]:
    from chatdb.repositories import Cursor

    cursor: Any = after if after is not None else Cursor(datetime(1, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
    while True:
        page = messages.history(cid, limit=ALL_PAGE_SIZE, before=before, after=cursor)
        yield from page
        if len(page) < ALL_PAGE_SIZE:
            return
        cursor = page[-1].cursor
