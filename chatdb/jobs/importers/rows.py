"""From a tool's conversations to chatdb's rows: deterministic ids, timestamps in order, long messages handled.

Ids are UUIDv5 in :data:`NAMESPACE` of the tool's own ids, so importing an
export again, or a newer export holding the same conversations, gives the same
ids, and only what is new is inserted. Each message's ``metadata`` keeps its
source (tool, conversation id, message id, title).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chatdb.jobs.importers.source import Problems, Skipped, SourceConversation
from chatdb.models import USER_MESSAGE_MAX_LENGTH

# chatdb's namespace for ids derived from other tools' ids (fixed forever: changing it changes every id).
NAMESPACE = uuid.UUID("6c1f3f0e-8a4b-5d2e-9c71-0d6e2b8f4a13")
LONG_USER_MESSAGES = ("skip", "split", "truncate")
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class ConversationRow:
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    source_id: str

    def as_json(self, owner: str) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user_id": owner,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class MessageRow:
    id: uuid.UUID
    conversation_id: uuid.UUID
    role: str
    content: str
    metadata: dict[str, Any]
    created_at: datetime

    def as_json(self, owner: str) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "conversation_id": str(self.conversation_id),
            "user_id": owner,
            "role": self.role,
            "content": self.content,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
        }


def conversation_id(tool: str, source_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{tool}:conversation:{source_id}")


def message_id(tool: str, conversation_source_id: str, source_id: str, form: str = "") -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{tool}:message:{conversation_source_id}:{source_id}{form}")


def split_text(text: str, limit: int = USER_MESSAGE_MAX_LENGTH) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, broken after whitespace where there is some near."""
    pieces = []
    while len(text) > limit:
        cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
        cut = cut + 1 if cut >= limit // 2 else limit
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def to_rows(
    tool: str,
    conversations: list[SourceConversation],
    *,
    long_user_messages: str,
    problems: Problems,
    skipped: Skipped,
    reshaped: Counter[str],
) -> Iterator[tuple[ConversationRow, list[MessageRow]]]:
    for conversation in conversations:
        where = f"conversation {conversation.source_id[:60]!r}"
        cid = conversation_id(tool, conversation.source_id)
        start = conversation.created_at or next((m.created_at for m in conversation.messages if m.created_at), None)
        start = start or conversation.updated_at
        if start is None:
            problems.add(where, "has no time for itself or any message")
            continue
        rows: list[MessageRow] = []
        previous: datetime | None = None
        for message in conversation.messages:
            if "\x00" in message.text:
                problems.add(where, f"message {message.source_id[:60]!r} contains a NUL character")
                continue
            moment = message.created_at or (previous + _TICK if previous else start)
            if previous is not None and moment <= previous:
                moment = previous + _TICK  # keep the branch's order: history sorts by time
            source = {
                "tool": tool,
                "conversation_id": conversation.source_id,
                "message_id": message.source_id,
                "title": conversation.title,
            }
            texts: list[tuple[str, str, dict[str, Any]]] = [(message.text, "", {})]
            if message.role == "user" and len(message.text) > USER_MESSAGE_MAX_LENGTH:
                if long_user_messages == "skip":
                    skipped["long_user_message"] += 1
                    continue
                if long_user_messages == "truncate":
                    reshaped["truncated"] += 1
                    texts = [
                        (message.text[:USER_MESSAGE_MAX_LENGTH], ":truncated", {"truncated_from": len(message.text)})
                    ]
                else:
                    reshaped["split"] += 1
                    pieces = split_text(message.text)
                    texts = [
                        (piece, f":part:{k}", {"part": k, "parts": len(pieces)}) for k, piece in enumerate(pieces, 1)
                    ]
            for k, (text, form, extra) in enumerate(texts):
                at = moment + _TICK * k
                rows.append(
                    MessageRow(
                        id=message_id(tool, conversation.source_id, message.source_id, form),
                        conversation_id=cid,
                        role=message.role,
                        content=text,
                        metadata={"source": source, **extra},
                        created_at=at,
                    )
                )
                previous = at
        last = rows[-1].created_at if rows else start
        updated = max(d for d in (conversation.updated_at, last, start) if d is not None)
        yield (
            ConversationRow(cid, min(start, rows[0].created_at) if rows else start, updated, conversation.source_id),
            rows,
        )
