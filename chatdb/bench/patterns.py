"""The plan's three query patterns, each through chatdb's repositories and through raw psycopg.

Through chatdb, an operation is what an application request does: check a
session out of the pool, call the repository, commit a write, return the
connection. Through raw psycopg it is the floor: the repositories' very
statements (:mod:`chatdb.repositories.statements`) on one open connection in
autocommit mode, so reads are one round trip and the add is one atomic
statement.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from chatdb.config import Settings
    from chatdb.db import Database

PATTERNS = ("history", "recent", "add")
HISTORY_LIMIT = 20  # the plan's pattern 2
RECENT_LIMIT = 50  # the plan's pattern 1

_USER_TEXT = "Could you explain that again with a short example? I am not sure I follow the last step."
_ASSISTANT_TEXT = (
    "Of course. Take the list [3, 1, 2]: sorting it compares pairs and swaps them until every "
    "element is no larger than the next, which gives [1, 2, 3]. The same idea works for words."
)
_METADATA = {"model": "bench", "prompt_tokens": 420, "completion_tokens": 48, "latency_ms": 900}


def message_for(turn: int) -> tuple[str, str, dict[str, Any] | None]:
    """The role, content and metadata of the ``turn``-th message a client adds."""
    if turn % 2 == 0:
        return "user", _USER_TEXT, None
    return "assistant", _ASSISTANT_TEXT, _METADATA


class ChatdbPatterns:
    """The patterns through :mod:`chatdb.repositories`, one pooled session each."""

    def __init__(self, db: Database) -> None:
        from chatdb.repositories import ConversationRepository, MessageRepository

        self.db = db
        self._conversations = ConversationRepository
        self._messages = MessageRepository

    def history(self, conversation_id: uuid.UUID) -> int:
        with self.db.session() as session:
            return len(self._messages(session).history(conversation_id, limit=HISTORY_LIMIT))

    def recent(self, user_id: str) -> int:
        with self.db.session() as session:
            return len(self._conversations(session).list_for_user(user_id, limit=RECENT_LIMIT))

    def add(self, conversation_id: uuid.UUID, user_id: str, turn: int) -> None:
        role, content, metadata = message_for(turn)
        with self.db.session() as session:
            self._messages(session).add(conversation_id, user_id, role, content, metadata)
            session.commit()


def libpq_url(url: str) -> str:
    """The libpq form of a chatdb URL (``postgresql+psycopg://`` becomes ``postgresql://``)."""
    return "postgresql://" + url.split("://", 1)[1]


def raw_connect(settings: Settings) -> psycopg.Connection:
    """A psycopg connection with chatdb's connection settings (timeout, prepared statements)."""
    import psycopg

    options: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": settings.connect_timeout,
        "application_name": f"{settings.application_name}-bench",
    }
    if not settings.use_prepared_statements:
        options["prepare_threshold"] = None
    from psycopg.types.json import set_json_loads

    from chatdb.db import read_json

    conn = psycopg.connect(libpq_url(settings.url), **options)
    set_json_loads(read_json, conn)  # what chatdb's engines read JSON with
    return conn


class RawPatterns:
    """The same statements through raw psycopg on one connection: the floor."""

    def __init__(self, conn: psycopg.Connection) -> None:
        from chatdb import ids
        from chatdb.repositories import statements

        self.conn = conn
        self._uuid7 = ids.uuid7
        self._history = statements.history("none", "none")
        self._recent = statements.list_for_user("active", "none")
        self._add = statements.ADD_MESSAGES

    def history(self, conversation_id: uuid.UUID) -> int:
        rows = self.conn.execute(self._history, {"conversation_id": conversation_id, "limit": HISTORY_LIMIT}).fetchall()
        rows.reverse()
        return len(rows)

    def recent(self, user_id: str) -> int:
        return len(
            self.conn.execute(self._recent, {"user_id": user_id, "status": "active", "limit": RECENT_LIMIT}).fetchall()
        )

    def add(self, conversation_id: uuid.UUID, user_id: str, turn: int) -> None:
        role, content, metadata = message_for(turn)
        self.conn.execute(
            self._add,
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "ids": [self._uuid7()],
                "roles": [role],
                "contents": [content],
                "metadata": [None if metadata is None else json.dumps(metadata)],
            },
        ).fetchall()


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    """One pattern name, drawn with the given weights."""
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]
