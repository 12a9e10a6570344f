"""What the repositories return: plain, immutable records of rows.

They are not ORM instances on purpose. A record carries no session, so it can
be returned from an async request handler, cached or serialised without lazy
loads or "detached instance" errors; and building one costs about as much as
the tuple the driver returns. (Loading ORM instances made a history page about
three times slower than raw psycopg on a local server; named tuples keep the
repository within a few percent of it, see docs/benchmarks.md.)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from chatdb.models import ConversationStatus, MessageRole


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a keyset-ordered listing: the sort timestamp and the id.

    For history the timestamp is the message's ``created_at``; for a user's
    conversations it is the conversation's ``updated_at``. A cursor keeps its
    place even if the row it came from is deleted or changes later.
    """

    at: datetime
    id: uuid.UUID


_STATUSES = {status.value: status for status in ConversationStatus}
_ROLES = {role.value: role for role in MessageRole}


class ConversationRecord(NamedTuple):
    """One conversation row."""

    id: uuid.UUID
    user_id: str
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ConversationRecord:
        return cls(row[0], row[1], _STATUSES[row[2]], row[3], row[4])

    @property
    def cursor(self) -> Cursor:
        """Where this conversation sits in :meth:`list_for_user` order (``updated_at``, ``id``)."""
        return Cursor(self.updated_at, self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user_id": self.user_id,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class MessageRecord(NamedTuple):
    """One message row (``metadata`` is the ``metadata`` column, a dict or None)."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: str
    role: MessageRole
    content: str
    metadata: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> MessageRecord:
        return cls(row[0], row[1], row[2], _ROLES[row[3]], row[4], row[5], row[6])

    @property
    def cursor(self) -> Cursor:
        """Where this message sits in history order (``created_at``, ``id``)."""
        return Cursor(self.created_at, self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "conversation_id": str(self.conversation_id),
            "user_id": self.user_id,
            "role": self.role.value,
            "content": self.content,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message for :meth:`MessageRepository.add_many`."""

    role: MessageRole | str
    content: str
    metadata: dict[str, Any] | None = None
