"""The statements that keep held conversations from being deleted, written once.

A hold covers a conversation when it names the conversation's user or the
conversation itself, and is current while its ``until`` is null or later than
the transaction's ``now()``. Every deleting statement carries
:func:`not_held` in the same ``WHERE`` that selects and locks its batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, or_, select

from chatdb.models import Message, holds

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement


def current() -> ColumnElement[bool]:
    """The hold has not expired (no ``until``, or one later than now)."""
    return or_(holds.c.until.is_(None), holds.c.until > func.now())


def covers(table: Any) -> ColumnElement[bool]:
    """The hold names the user or the conversation of a row of ``table`` (conversations or an alias)."""
    return or_(holds.c.user_id == table.c.user_id, holds.c.conversation_id == table.c.id)


def not_held(table: Any) -> ColumnElement[bool]:
    """No current hold covers the conversation."""
    return ~exists(select(holds.c.id).where(covers(table), current()))


def held_counts(conn: Connection, table: Any, conditions: list[Any]) -> tuple[int, int]:
    """(conversations, messages) matching ``conditions`` that a current hold covers."""
    held = select(table.c.id).where(*conditions, ~not_held(table))
    n_conv = conn.execute(select(func.count()).select_from(held.subquery())).scalar_one()
    m = Message.__table__
    n_msg = conn.execute(select(func.count()).select_from(m).where(m.c.conversation_id.in_(held))).scalar_one()
    return int(n_conv), int(n_msg)


def holds_covering(conn: Connection, table: Any, conditions: list[Any]) -> list[tuple[Any, ...]]:
    """Each current hold covering a conversation matching ``conditions``, with how many it covers.

    Rows of (id, user_id, conversation_id, reason, until, conversations), by hold id.
    """
    h = holds
    return [
        tuple(row)
        for row in conn.execute(
            select(h.c.id, h.c.user_id, h.c.conversation_id, h.c.reason, h.c.until, func.count(table.c.id))
            .select_from(table.join(h, covers(table)))
            .where(*conditions, current())
            .group_by(h.c.id)
            .order_by(h.c.id)
        )
    ]
