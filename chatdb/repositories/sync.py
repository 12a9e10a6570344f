"""The repositories over a synchronous SQLAlchemy ``Session``.

The statements run on the session's own connection and transaction: whatever
the repository writes is visible to the session at once and kept only when the
caller commits. Pending ORM changes in the session are flushed first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from chatdb.models import ConversationStatus, MessageRole
from chatdb.repositories import operations as ops
from chatdb.repositories.records import ConversationRecord, MessageRecord, NewMessage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


class _SessionRunner:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._transaction: object = None
        self._driver: Any = None

    def _connection(self) -> Any:
        """The psycopg connection of the session's transaction (pending ORM changes flushed)."""
        session = self.session
        session.flush()
        transaction = session.get_transaction()
        if transaction is not None and transaction.is_active:
            if transaction is self._transaction:
                return self._driver
            # SessionTransaction.connections (SQLAlchemy 2.1) never connects by itself.
            held: Any = getattr(transaction, "connections", ())
            if len(held) == 1:
                (connection,) = held
                self._driver = connection.connection.driver_connection
                self._transaction = transaction
                return self._driver
        self._driver = session.connection().connection.driver_connection
        self._transaction = session.get_transaction()
        return self._driver

    def _run(self, operation: ops.Operation[T]) -> T:
        conn = self._connection()
        rows: ops.Rows | None = None
        try:
            while True:
                query = operation.send(rows)  # type: ignore[arg-type]  # the first send() must be None; rows after
                try:
                    with conn.cursor() as cur:
                        cur.execute(query.sql, query.params)
                        rows = cur.fetchall()  # every statement here returns rows
                except Exception as exc:
                    translated = ops.translate_driver_error(exc)
                    if translated is None:
                        raise
                    raise translated from exc
        except StopIteration as done:
            result: T = done.value  # what the operation's generator returned
            return result


class ConversationRepository(_SessionRunner):
    """Conversations: create, read, list a user's recent ones, archive, delete."""

    def create(self, user_id: str) -> ConversationRecord:
        return self._run(ops.create_conversation(user_id))

    def get(self, conversation_id: uuid.UUID | str) -> ConversationRecord:
        return self._run(ops.get_conversation(conversation_id))

    def list_for_user(
        self,
        user_id: str,
        *,
        status: ops.StatusArg = "active",
        limit: int = 50,
        before: ops.CursorArg = None,
    ) -> list[ConversationRecord]:
        return self._run(ops.list_for_user(user_id, status, limit, before))

    def archive(self, conversation_id: uuid.UUID | str) -> ConversationRecord:
        return self._run(ops.set_status(conversation_id, ConversationStatus.ARCHIVED))

    def unarchive(self, conversation_id: uuid.UUID | str) -> ConversationRecord:
        return self._run(ops.set_status(conversation_id, ConversationStatus.ACTIVE))

    def delete(self, conversation_id: uuid.UUID | str) -> None:
        self._run(ops.delete_conversation(conversation_id))


class MessageRepository(_SessionRunner):
    """Messages: add (one or a batch), read history a page at a time, count."""

    def add(
        self,
        conversation_id: uuid.UUID | str,
        user_id: str,
        role: MessageRole | str,
        content: str,
        metadata: dict[str, Any] | None = None,
    ) -> MessageRecord:
        (message,) = self._run(ops.add_messages(conversation_id, user_id, [(role, content, metadata)]))
        return message

    def add_many(
        self,
        conversation_id: uuid.UUID | str,
        user_id: str,
        messages: Iterable[NewMessage | tuple[Any, ...]],
    ) -> list[MessageRecord]:
        return self._run(ops.add_messages(conversation_id, user_id, messages))

    def history(
        self,
        conversation_id: uuid.UUID | str,
        *,
        limit: int = 20,
        before: ops.CursorArg = None,
        after: ops.CursorArg = None,
    ) -> list[MessageRecord]:
        return self._run(ops.history(conversation_id, limit, before, after))

    def count(self, conversation_id: uuid.UUID | str) -> int:
        return self._run(ops.count_messages(conversation_id))
