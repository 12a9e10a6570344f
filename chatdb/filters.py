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
from chatdb.ids import parse_uuid, uuid_prefix_range
from chatdb.models import ConversationStatus

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

StatusChoice = Literal["active", "archived", "all"]


def _conversation_ref(value: str | uuid.UUID) -> uuid.UUID | str:
    """A whole conversation id, or the hex digits of a short prefix of one (checked, not looked up)."""
    if isinstance(value, uuid.UUID):
        return value
    raw = str(value).strip()
    if len(raw.replace("-", "")) >= 32:
        return parse_uuid(raw, parameter="conversation_ids")
    try:
        uuid_prefix_range(raw)
    except InvalidIdError as exc:
        raise InvalidIdError("{conversation_ids}: " + exc.message, parameters=("conversation_ids",)) from None
    return raw.lower().replace("-", "")


@dataclass(frozen=True)
class ConversationFilter:
    """Conversations to act on; every field narrows the selection (None = no limit).

    ``older_than`` and ``since`` compare with ``updated_at`` (last activity):
    ``updated_at < older_than`` and ``updated_at >= since``. Conversations may
    be named by a short prefix of their id (``conversation_prefixes``, as
    ``chatdb history`` accepts); :func:`chatdb.reports.conversations.resolve_selection` turns
    those into ids and checks that every named user and conversation exists.
    """

    user_ids: tuple[str, ...] = ()
    status: StatusChoice = "all"
    older_than: datetime | None = None
    since: datetime | None = None
    conversation_ids: tuple[uuid.UUID, ...] = field(default=())
    conversation_prefixes: tuple[str, ...] = field(default=())
    # Leave out conversations a current legal hold covers (chatdb.holds): what deleting jobs select.
    unheld: bool = False

    @classmethod
    def build(
        cls,
        *,
        users: Iterable[str] | None = None,
        status: str = "all",
        older_than: datetime | None = None,
        since: datetime | None = None,
        conversation_ids: Sequence[str | uuid.UUID] | None = None,
        allow_future: bool = False,
        now: datetime | None = None,
    ) -> ConversationFilter:
        """Check every choice; a cutoff later than ``now`` is refused unless ``allow_future``."""
        if status not in ("active", "archived", "all"):
            raise UsageError(f"{{status}}: must be active, archived or all, got {status!r}", parameters=("status",))
        for moment, name in ((older_than, "older_than"), (since, "since")):
            if moment is not None and moment.tzinfo is None:
                raise UsageError(f"{{{name}}}: {moment} has no time zone", parameters=(name,))
        if older_than is not None and since is not None and since >= older_than:
            raise UsageError("{since}: must be earlier than the cutoff", parameters=("since",))
        if older_than is not None and not allow_future:
            from chatdb.timeparse import utcnow

            if older_than > (now or utcnow()):
                raise UsageError(
                    f"the cutoff {older_than.isoformat(sep=' ', timespec='seconds')} is in the future, so every "
                    "conversation's last activity is before it; pass {allow_future} if that is meant",
                    parameters=("allow_future",),
                )
        if any(not u.strip() for u in users or ()):
            # Dropping it would widen the selection to every user, which archive and prune must never do.
            raise UsageError("{users}: an empty user id would select every user", parameters=("users",))
        if any("\x00" in u for u in users or ()):
            # PostgreSQL text cannot hold NUL, so no user id has one: a usage error, not a database error.
            raise UsageError("{users}: a user id cannot contain the NUL character", parameters=("users",))
        refs = [_conversation_ref(c) for c in conversation_ids or ()]
        return cls(
            user_ids=tuple(dict.fromkeys(users or ())),
            status=status,  # type: ignore[arg-type]  # checked against StatusChoice's values above
            older_than=older_than,
            since=since,
            conversation_ids=tuple(dict.fromkeys(r for r in refs if isinstance(r, uuid.UUID))),
            conversation_prefixes=tuple(dict.fromkeys(r for r in refs if isinstance(r, str))),
        )

    @property
    def names_conversations(self) -> bool:
        return bool(self.conversation_ids or self.conversation_prefixes)

    def conditions(self, table: Any) -> list[ColumnElement[bool]]:
        """SQL conditions on ``table`` (the conversations table or an alias of it)."""
        if self.conversation_prefixes:
            # A prefix may match several conversations: resolve_selection says which one is meant first.
            raise ValueError(
                "resolve the conversation id prefixes first (chatdb.reports.conversations.resolve_selection)"
            )
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
        if self.unheld:
            from chatdb.jobs.queries.holds import not_held

            found.append(not_held(table))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": list(self.user_ids),
            "status": self.status,
            "older_than": self.older_than,
            "since": self.since,
            "conversations": [str(c) for c in self.conversation_ids] + list(self.conversation_prefixes),
        }
