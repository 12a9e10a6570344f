"""Which conversations a command or job is about, said once for all of them.

``chatdb conversations``, ``export``, ``archive`` and ``prune`` all select
conversations by user, status, last activity and id; :class:`ConversationFilter`
holds those choices and turns them into SQL conditions on ``conversations``.
All values are bound parameters, never text pasted into SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from chatdb.errors import InvalidIdError, UsageError
from chatdb.models import ConversationStatus

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

StatusChoice = Literal["active", "archived", "all"]


def parse_uuid(value: str | uuid.UUID, what: str = "conversation id") -> uuid.UUID:
    """A UUID from a string, or an :class:`InvalidIdError` that says which value was wrong."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError):
        raise InvalidIdError(f"malformed {what} {str(value)!r}: expected a UUID") from None


@dataclass(frozen=True)
class ConversationFilter:
    """Conversations to act on; every field narrows the selection (None = no limit).

    ``older_than`` and ``since`` compare with ``updated_at`` (last activity):
    ``updated_at < older_than`` and ``updated_at >= since``.
    """

    user_ids: tuple[str, ...] = ()
    status: StatusChoice = "all"
    older_than: datetime | None = None
    since: datetime | None = None
    conversation_ids: tuple[uuid.UUID, ...] = field(default=())

    @classmethod
    def build(
        cls,
        *,
        users: Iterable[str] | None = None,
        status: str = "all",
        older_than: datetime | None = None,
        since: datetime | None = None,
        conversation_ids: Sequence[str | uuid.UUID] | None = None,
    ) -> ConversationFilter:
        if status not in ("active", "archived", "all"):
            raise UsageError(f"unknown status {status!r}: use active, archived or all")
        for moment, name in ((older_than, "older-than"), (since, "since")):
            if moment is not None and moment.tzinfo is None:
                raise UsageError(f"--{name} needs a time zone")
        if older_than is not None and since is not None and since >= older_than:
            raise UsageError("--since must be earlier than the --older-than/--before cutoff")
        if any(not u.strip() for u in users or ()):
            # Dropping it would widen the selection to every user, which archive and prune must never do.
            raise UsageError("--user cannot be empty")
        if any("\x00" in u for u in users or ()):
            # PostgreSQL text cannot hold NUL, so no user id has one: a usage error, not a database error.
            raise UsageError("--user cannot contain the NUL character")
        return cls(
            user_ids=tuple(dict.fromkeys(users or ())),
            status=status,  # type: ignore[arg-type]
            older_than=older_than,
            since=since,
            conversation_ids=tuple(dict.fromkeys(parse_uuid(c) for c in (conversation_ids or ()))),
        )

    def conditions(self, table: Any) -> list[ColumnElement[bool]]:
        """SQL conditions on ``table`` (the conversations table or an alias of it)."""
        found: list[ColumnElement[bool]] = []
        if self.user_ids:
            found.append(table.c.user_id.in_(self.user_ids))
        if self.status != "all":
            found.append(table.c.status == ConversationStatus(self.status).value)
        if self.older_than is not None:
            found.append(table.c.updated_at < self.older_than)
        if self.since is not None:
            found.append(table.c.updated_at >= self.since)
        if self.conversation_ids:
            found.append(table.c.id.in_(self.conversation_ids))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": list(self.user_ids),
            "status": self.status,
            "older_than": self.older_than,
            "since": self.since,
            "conversations": [str(c) for c in self.conversation_ids],
        }
