"""The chatbot's conversations and messages as a library API, sync and async.

``ConversationRepository(session)`` and ``MessageRepository(session)`` work on
a SQLAlchemy ``Session``; ``AsyncConversationRepository`` and
``AsyncMessageRepository`` on an ``AsyncSession``. Both run the same
operations (:mod:`~chatdb.repositories.operations`) and the same SQL
(:mod:`~chatdb.repositories.statements`). The caller owns the transaction:
repositories write inside it and never commit.
"""

from __future__ import annotations

from chatdb.repositories.asyncio import AsyncConversationRepository, AsyncMessageRepository
from chatdb.repositories.records import ConversationRecord, Cursor, MessageRecord, NewMessage
from chatdb.repositories.sync import ConversationRepository, MessageRepository

__all__ = [
    "AsyncConversationRepository",
    "AsyncMessageRepository",
    "ConversationRecord",
    "ConversationRepository",
    "Cursor",
    "MessageRecord",
    "MessageRepository",
    "NewMessage",
]
