"""Every statement of the maintenance jobs, written once.

This package is where job SQL lives: the statements every job shares are
here; the export line's (:mod:`.lines`), seed's (:mod:`.seed`), the users
table's (:mod:`.users`) and the legal holds' (:mod:`.holds`) have their own modules. Every condition on
``conversations`` comes from :class:`ConversationFilter`, so "which
conversations" means the same thing in every job, and every value is a bound
parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Select, Table, any_, bindparam, delete, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from chatdb.models import Conversation, Message

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# The models' tables as Core tables (SQLAlchemy types __table__ as any FromClause).
conversations = cast(Table, Conversation.__table__)
messages = cast(Table, Message.__table__)


class Selection(Protocol):
    """Which conversations a job works on: :class:`ConversationFilter`, or :class:`UserPrefix`."""

    def conditions(self, table: Any) -> list[Any]: ...


@dataclass(frozen=True)
class UserPrefix:
    """The conversations of users whose id starts with ``prefix`` (seed's demo users)."""

    prefix: str

    def conditions(self, table: Any) -> list[Any]:
        return [func.starts_with(table.c.user_id, self.prefix)]


# For a job's transaction. Its statements are short batches: PostgreSQL's JIT compiler (on by
# default above a cost their estimates pass) takes longer to compile them than they take to
# run. And their arrays of ids or lines are parameters: a generic plan (used for a prepared
# statement after a few runs) cannot see their size and picks nested loops that are quadratic
# in the batch; a custom plan per run costs a millisecond.
BATCH_SETTINGS = "SELECT set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)"

# Settings for the rest of one transaction only (``is_local``): what a transaction-mode
# pooler allows, since a session setting would stay on a server connection others get next.
LOCAL_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', :lock, true)"
LOCAL_TIMEOUTS = "SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :stmt, true)"
# A batch's: the timeouts, and its name in pg_stat_activity ("chatdb prune pid 4242").
BATCH_START = LOCAL_TIMEOUTS + ", set_config('application_name', :name, true)"
# Export lines are rendered in UTC; prune rebuilds them the same way to compare.
UTC = "SELECT set_config('TimeZone', 'UTC', true)"
EXPORT_SETTINGS = (
    "SELECT set_config('TimeZone', 'UTC', true), set_config('jit', 'off', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# Import's checking transaction: the timeouts and the batch settings at once.
CHECK_SETTINGS = (
    LOCAL_TIMEOUTS + ", set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)"
)


def selection_size(
    conn: Connection, selection: Selection, *, messages: bool = True, size: bool = False
) -> tuple[int, int, int]:
    """Exact (conversations, messages, bytes) of the selection; bytes counts both tables' rows."""
    conds = selection.conditions(conversations)
    row_bytes = func.coalesce(func.sum(func.pg_column_size(conversations.table_valued())), 0)
    n_conv, conv_bytes = conn.execute(
        select(func.count(), row_bytes if size else literal(0)).select_from(conversations).where(*conds)
    ).one()
    n_msg = msg_bytes = 0
    if messages:
        m = cast(Table, Message.__table__)  # the parameter "messages" hides the module's table
        ids = select(conversations.c.id).where(*conds)
        msg_row_bytes = func.coalesce(func.sum(func.pg_column_size(m.table_valued())), 0)
        n_msg, msg_bytes = conn.execute(
            select(func.count(), msg_row_bytes if size else literal(0))
            .select_from(m)
            .where(m.c.conversation_id.in_(ids))
        ).one()
    return int(n_conv), int(n_msg), int(conv_bytes) + int(msg_bytes)


def sample(conn: Connection, selection: Selection, limit: int) -> list[tuple[Any, ...]]:
    """A few matching conversations, oldest activity first, for dry runs."""
    c = conversations
    rows = conn.execute(
        select(c.c.id, c.c.user_id, c.c.updated_at)
        .where(*selection.conditions(c))
        .order_by(c.c.updated_at, c.c.id)
        .limit(limit)
    )
    return [tuple(row) for row in rows]


def lock_batch(selection: Selection, after: uuid.UUID | None, limit: int, *, for_delete: bool) -> Select[Any]:
    """The next keyset batch of matching conversation ids, locked, skipping rows others hold.

    A status change takes ``FOR NO KEY UPDATE``, which the application's
    message inserts (``FOR KEY SHARE`` through the foreign key) do not wait
    on; a delete needs ``FOR UPDATE``.
    """
    c = conversations
    query = select(c.c.id).where(*selection.conditions(c))
    if after is not None:
        query = query.where(c.c.id > after)
    return query.order_by(c.c.id).limit(limit).with_for_update(skip_locked=True, key_share=not for_delete)


def id_array(ids: Sequence[uuid.UUID]) -> Any:
    """``ids`` as one ``uuid[]`` parameter, for ``column == any_(...)``.

    One array parameter keeps the statement the same for every batch, where
    ``IN (...)`` would send (and plan) a thousand separate parameters.
    """

    return any_(bindparam("ids", list(ids), type_=ARRAY(UUID(as_uuid=True))))


def delete_conversations(conn: Connection, ids: Sequence[uuid.UUID]) -> tuple[int, int]:
    """Delete these conversations and their messages; return (conversations, messages) deleted."""

    if not ids:
        return 0, 0
    gone_messages = conn.execute(delete(messages).where(messages.c.conversation_id == id_array(ids))).rowcount
    gone = conn.execute(delete(conversations).where(conversations.c.id == id_array(ids))).rowcount
    return int(gone), int(gone_messages)


def message_ids(conn: Connection, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The ids of these conversations' messages (erase reads them, locked, just before deleting them)."""
    if not ids:
        return []
    return list(conn.execute(select(messages.c.id).where(messages.c.conversation_id == id_array(ids))).scalars())


def lock_messages(conn: Connection, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Of these (locked) conversations, the ones all of whose messages this transaction could lock.

    ``FOR UPDATE SKIP LOCKED`` on the messages: a message the application holds
    (``FOR UPDATE``, ``FOR KEY SHARE``, an uncommitted update) is skipped rather
    than waited on, and its conversation is left alone, reported as in use. No
    message can be added to a conversation whose row is locked ``FOR UPDATE``
    (the foreign key check waits on it), so the count that follows is final.
    """
    if not ids:
        return []
    m = messages
    mine = select(m.c.conversation_id).where(m.c.conversation_id == id_array(ids)).with_for_update(skip_locked=True)
    locked = _counts(conn, mine.subquery())
    total = _counts(conn, select(m.c.conversation_id).where(m.c.conversation_id == id_array(ids)).subquery())
    return [i for i in ids if locked.get(i, 0) == total.get(i, 0)]


def _counts(conn: Connection, rows: Any) -> dict[uuid.UUID, int]:
    return {
        k: int(v)
        for k, v in conn.execute(select(rows.c.conversation_id, func.count()).group_by(rows.c.conversation_id))
    }
