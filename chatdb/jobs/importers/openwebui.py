"""Open WebUI's chat export: a JSON list of chats, each ``{id, title, chat: {history: {messages, currentId}}}``.

Messages form a tree (``parentId``/``childrenIds``) whose shown branch ends at
``history.currentId``; that branch is imported, in order. An export without
a history falls back to the chat's ``messages`` list. Times are seconds since
1970.
"""

from __future__ import annotations

from typing import Any

from chatdb.jobs.importers.source import (
    Problems,
    Skipped,
    SourceConversation,
    SourceMessage,
    epoch_time,
    items_of,
    text_of,
)

TOOL = "openwebui"
ROLES = {"user": "user", "assistant": "assistant"}


def wanted(name: str) -> bool:
    return name.endswith(".json")


def parse(documents: list[tuple[str, Any]], problems: Problems, skipped: Skipped) -> list[SourceConversation]:
    found: list[SourceConversation] = []
    for where, item in items_of(documents, "chat"):
        chat = item.get("chat") if isinstance(item, dict) else None
        if not isinstance(chat, dict):
            problems.add(where, "not an Open WebUI chat (no chat object)")
            continue
        source_id = text_of(item.get("id")) or text_of(chat.get("id"))
        if not source_id:
            problems.add(where, "has no id")
            continue
        messages = _branch(chat, where, problems)
        if messages is None:
            continue
        conversation = SourceConversation(
            source_id=source_id,
            title=text_of(item.get("title")) or text_of(chat.get("title")),
            created_at=epoch_time(item.get("created_at")),
            updated_at=epoch_time(item.get("updated_at")),
        )
        for k, message in enumerate(messages, 1):
            if not isinstance(message, dict) or not text_of(message.get("id")):
                problems.add(f"{where} message {k}", "not a message with an id")
                continue
            role = message.get("role")
            if role not in ROLES:
                skipped[str(role) if role in ("system", "tool") else "other_role"] += 1
                continue
            text = message.get("content")
            if not isinstance(text, str):
                skipped["non_text"] += 1
                continue
            if not text.strip():
                skipped["empty"] += 1
                continue
            conversation.messages.append(
                SourceMessage(
                    source_id=message["id"],
                    role=ROLES[role],
                    text=text,
                    created_at=epoch_time(message.get("timestamp")),
                )
            )
        found.append(conversation)
    return found


def _branch(chat: dict[str, Any], where: str, problems: Problems) -> list[Any] | None:
    history = chat.get("history")
    if not isinstance(history, dict) or not isinstance(history.get("messages"), dict):
        listed = chat.get("messages")
        if isinstance(listed, list):
            return listed
        problems.add(where, "has neither history.messages nor a messages list")
        return None
    tree: dict[str, Any] = history["messages"]
    current = history.get("currentId")
    if current is None:
        return []
    path: list[Any] = []
    seen: set[str] = set()
    while current is not None:
        if current in seen or current not in tree or not isinstance(tree[current], dict):
            problems.add(where, f"message {str(current)[:60]!r} is missing from its history or in a cycle")
            return None
        seen.add(current)
        path.append({"id": current, **tree[current]})
        current = tree[current].get("parentId")
    return path[::-1]
