"""Legal holds: conversations that no chatdb job deletes while the hold is current.

A hold names one user (every conversation of theirs, present and future) or
one conversation, with a reason and optionally an ``until``; it is current
while ``until`` is null or later than now. ``prune`` and ``erase`` leave held
conversations alone, in the same statement that selects and locks each batch
(:mod:`chatdb.jobs.queries.holds`), and say how many they held back and by
which hold; ``archive`` may still archive them.

Adding a hold locks the conversations it covers (``FOR KEY SHARE``) before
its row is written: a deleting batch that holds them first finishes before
the hold is written (and what it deleted is gone before the hold existed);
one that comes later skips them, and sees the hold from its next statement.
"""

from __future__ import annotations

import getpass
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatdb.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database
    from chatdb.filters import ConversationFilter


class HoldNotFoundError(NotFoundError):
    """No hold has that id."""


@dataclass(frozen=True)
class Hold:
    id: int
    user_id: str | None
    conversation_id: uuid.UUID | None
    reason: str
    created_at: datetime | None
    until: datetime | None
    created_by: str | None
    current: bool = True

    @property
    def target(self) -> str:
        return f"user {self.user_id}" if self.user_id is not None else f"conversation {self.conversation_id}"

    def describe(self) -> str:
        """``hold 3 (user alice: litigation 2026-17)``: how jobs name the hold that held rows back."""
        return f"hold {self.id} ({self.target}: {self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user_id,
            "conversation": str(self.conversation_id) if self.conversation_id else None,
            "reason": self.reason,
            "created_at": self.created_at,
            "until": self.until,
            "created_by": self.created_by,
            "current": self.current,
        }


@dataclass(frozen=True)
class HeldBack:
    """The conversations a job left because a current hold covers them."""

    conversations: int = 0
    messages: int = 0
    # Each hold with the number of selected conversations it covers (one may be covered by several).
    holds: tuple[tuple[Hold, int], ...] = field(default=())

    def describe(self) -> str:
        """``2 conversations held back by hold 3 (user alice: ...)``, or "" when nothing was."""
        if not self.conversations:
            return ""
        by = ", ".join(hold.describe() for hold, _ in self.holds)
        noun = "conversation" if self.conversations == 1 else "conversations"
        return f"{self.conversations:,} {noun} held back by {by}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "messages": self.messages,
            "holds": [{**hold.as_dict(), "covers": covered} for hold, covered in self.holds],
        }


@dataclass(frozen=True)
class HoldList:
    database: str
    holds: list[Hold]

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "holds": [h.as_dict() for h in self.holds]}


def held_back(conn: Connection, selection: ConversationFilter) -> HeldBack:
    """What current holds keep of ``selection`` (its ``unheld`` ignored), read in ``conn``'s transaction."""
    from dataclasses import replace

    from chatdb.jobs.queries import holds as hold_queries
    from chatdb.models import Conversation

    table = Conversation.__table__
    conditions = replace(selection, unheld=False).conditions(table)
    conversations, messages = hold_queries.held_counts(conn, table, conditions)
    if not conversations:
        return HeldBack()
    found = tuple(
        (
            Hold(
                id=int(hid),
                user_id=user,
                conversation_id=conv,
                reason=reason,
                created_at=None,
                until=until,
                created_by=None,
            ),
            int(covered),
        )
        for hid, user, conv, reason, until, covered in hold_queries.holds_covering(conn, table, conditions)
    )
    return HeldBack(conversations, messages, found)


def _creator() -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        who = "unknown"
    return f"{who}@{socket.gethostname()}"[:255]


def add_hold(
    db: Database,
    *,
    user: str | None = None,
    conversation: str | uuid.UUID | None = None,
    reason: str,
    until: datetime | None = None,
) -> Hold:
    """Hold ``user``'s conversations, or one ``conversation`` (an id or a unique prefix), from deletion.

    The user or conversation must exist; ``until`` (aware) must be in the future.
    """
    from sqlalchemy import insert, select

    from chatdb.filters import ConversationFilter
    from chatdb.jobs.runner import JobTimeouts, set_timeouts
    from chatdb.migrations import require_current_schema
    from chatdb.models import Conversation, holds
    from chatdb.reports.conversations import resolve_selection
    from chatdb.timeparse import utcnow
    from chatdb.topology import require_writable

    if (user is None) == (conversation is None):
        raise UsageError("a hold is on one {user} or one {conversation}", parameters=("user", "conversation"))
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("{reason}: a hold needs a reason", parameters=("reason",))
    if until is not None:
        if until.tzinfo is None:
            raise UsageError(f"{{until}}: {until} has no time zone", parameters=("until",))
        if until <= utcnow():
            raise UsageError(f"{{until}}: {until.isoformat()} is not in the future", parameters=("until",))
    selection = ConversationFilter.build(
        users=[user] if user is not None else None,
        conversation_ids=[conversation] if conversation is not None else None,
    )
    c = Conversation.__table__
    with db.transaction() as conn:
        require_current_schema(conn)
        require_writable(conn, "hold add", db.display_url)
        set_timeouts(conn, JobTimeouts.from_env())
        selection = resolve_selection(conn, selection)
        if user is not None:
            # Every conversation of theirs: a batch deleting them finishes first. (Not the users row:
            # locking it needs UPDATE on the application's table, which chatdb's roles never have.)
            conn.execute(select(c.c.id).where(c.c.user_id == user).with_for_update(key_share=True, read=True))
            values: dict[str, Any] = {"user_id": user}
        else:
            (conversation_id,) = selection.conversation_ids
            locked = conn.execute(
                select(c.c.id).where(c.c.id == conversation_id).with_for_update(key_share=True, read=True)
            ).scalar()
            if locked is None:
                from chatdb.errors import ConversationNotFoundError

                raise ConversationNotFoundError(f"no conversation has id '{conversation_id}' (it was just deleted)")
            values = {"conversation_id": conversation_id}
        row = conn.execute(
            insert(holds).values(**values, reason=reason, until=until, created_by=_creator()).returning(*holds.c)
        ).one()
    return _hold(row, current=True)


def _hold(row: Any, *, current: bool) -> Hold:
    return Hold(
        id=int(row.id),
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        reason=row.reason,
        created_at=row.created_at,
        until=row.until,
        created_by=row.created_by,
        current=current,
    )


def list_holds(db: Database) -> HoldList:
    """Every hold, current and expired, by id."""
    from sqlalchemy import select

    from chatdb.jobs.queries.holds import current
    from chatdb.migrations import require_current_schema
    from chatdb.models import holds

    with db.transaction() as conn:
        require_current_schema(conn)
        rows = conn.execute(select(*holds.c, current().label("is_current")).order_by(holds.c.id)).all()
    return HoldList(db.display_url, [_hold(row, current=bool(row.is_current)) for row in rows])


def remove_hold(db: Database, hold_id: int) -> Hold:
    """Delete the hold ``hold_id``; what it covered may be deleted from then on."""
    from sqlalchemy import delete

    from chatdb.migrations import require_current_schema
    from chatdb.models import holds
    from chatdb.topology import require_writable

    with db.transaction() as conn:
        require_current_schema(conn)
        require_writable(conn, "hold remove", db.display_url)
        row = conn.execute(delete(holds).where(holds.c.id == hold_id).returning(*holds.c)).one_or_none()
    if row is None:
        raise HoldNotFoundError(f"no hold has id {hold_id} (see chatdb hold list)")
    return _hold(row, current=False)
