"""Claude's data export: ``conversations.json`` (or the export's .zip), each with ``chat_messages``.

A message's ``sender`` is ``human`` or ``assistant``; its text is the ``text``
items of ``content`` when there are any, else its ``text`` field. Other
content items (tool use, tool results, images) are skipped and counted.
"""

from __future__ import annotations

import posixpath
from typing import Any

from chatdb.jobs.importers.source import (
    Problems,
    Skipped,
    SourceConversation,
    SourceMessage,
    iso_time,
    items_of,
    text_of,
)

TOOL = "claude"
SENDERS = {"human": "user", "user": "user", "assistant": "assistant"}


def wanted(name: str) -> bool:
    return posixpath.basename(name) == "conversations.json" or posixpath.basename(name).startswith("conversations")


def parse(documents: list[tuple[str, Any]], problems: Problems, skipped: Skipped) -> list[SourceConversation]:
    found: list[SourceConversation] = []
    for where, item in items_of(documents):
        if not isinstance(item, dict) or not isinstance(item.get("chat_messages"), list):
            problems.add(where, "not a Claude conversation (no chat_messages list)")
            continue
        source_id = text_of(item.get("uuid"))
        if not source_id:
            problems.add(where, "has no uuid")
            continue
        conversation = SourceConversation(
            source_id=source_id,
            title=text_of(item.get("name")),
            created_at=iso_time(item.get("created_at")),
            updated_at=iso_time(item.get("updated_at")),
        )
        for k, message in enumerate(item["chat_messages"], 1):
            if not isinstance(message, dict) or not text_of(message.get("uuid")):
                problems.add(f"{where} message {k}", "not a message with a uuid")
                continue
            role = SENDERS.get(message.get("sender"))  # type: ignore[arg-type]
            if role is None:
                skipped["other_role"] += 1
                continue
            text = _text(message, skipped)
            if text is None:
                continue
            if not text.strip():
                skipped["empty"] += 1
                continue
            conversation.messages.append(
                SourceMessage(
                    source_id=message["uuid"],
                    role=role,
                    text=text,
                    created_at=iso_time(message.get("created_at")),
                )
            )
        found.append(conversation)
    return found


def _text(message: dict[str, Any], skipped: Skipped) -> str | None:
    content = message.get("content")
    if isinstance(content, list) and content:
        texts = [
            c["text"]
            for c in content
            if isinstance(c, dict) and c.get("type") == "text" and isinstance(c.get("text"), str)
        ]
        others = len(content) - len(texts)
        if others:
            skipped["non_text_parts"] += others
        if texts:
            return "\n\n".join(texts)
        if others:
            return None
    return text_of(message.get("text")) or ""
