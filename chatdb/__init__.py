"""chatdb: the schema, migrations, repositories and admin CLI of a chatbot's conversation store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from chatdb.repositories import (
        AsyncConversationRepository,
        AsyncMessageRepository,
        ConversationRecord,
        ConversationRepository,
        Cursor,
        MessageRecord,
        MessageRepository,
        NewMessage,
    )

_REPOSITORY_NAMES = frozenset(
    {
        "AsyncConversationRepository",
        "AsyncMessageRepository",
        "ConversationRecord",
        "ConversationRepository",
        "Cursor",
        "MessageRecord",
        "MessageRepository",
        "NewMessage",
    }
)


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `import chatdb` (and `chatdb --help`) stays light.
    if name in _REPOSITORY_NAMES:
        from chatdb import repositories

        return getattr(repositories, name)
    raise AttributeError(f"module 'chatdb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_REPOSITORY_NAMES})
