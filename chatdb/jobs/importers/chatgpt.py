"""ChatGPT's data export: ``conversations.json``, the export's .zip, or a zip of several conversation files.

Each conversation is a tree (``mapping``: node id to ``{message, parent,
children}``) because editing a message or regenerating an answer starts a new
branch; ``current_node`` is the leaf the user last saw. The branch from the
root to ``current_node`` is imported, in order. ``system`` and ``tool``
messages, and parts that are not text (images, code run output), cannot be
stored under the plan's role CHECK and are skipped and counted.
"""

from __future__ import annotations

import posixpath
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

TOOL = "chatgpt"
ROLES = {"user": "user", "assistant": "assistant"}


def wanted(name: str) -> bool:
    """Conversation files: ``conversations.json``, or the split layout's ``conversations-NNN.json`` and the like."""
    base = posixpath.basename(name)
    return base.endswith(".json") and base.startswith("conversations")


def parse(documents: list[tuple[str, Any]], problems: Problems, skipped: Skipped) -> list[SourceConversation]:
    found: dict[str, SourceConversation] = {}
    for where, item in items_of(documents):
        if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
            problems.add(where, "not a ChatGPT conversation (no mapping of messages)")
            continue
        conversation = _conversation(item, where, problems, skipped)
        if conversation is None:
            continue
        earlier = found.get(conversation.source_id)
        # The same conversation in two files of one export: keep the newer copy.
        if earlier is None or (conversation.updated_at or conversation.created_at or _zero()) >= (
            earlier.updated_at or earlier.created_at or _zero()
        ):
            found[conversation.source_id] = conversation
    return list(found.values())


def _zero() -> Any:
    from datetime import UTC, datetime

    return datetime.min.replace(tzinfo=UTC)


def _conversation(item: dict[str, Any], where: str, problems: Problems, skipped: Skipped) -> SourceConversation | None:
    source_id = text_of(item.get("conversation_id")) or text_of(item.get("id"))
    if not source_id:
        problems.add(where, "has no id or conversation_id")
        return None
    mapping: dict[str, Any] = item["mapping"]
    branch = _branch(mapping, item.get("current_node"), where, problems)
    if branch is None:
        return None
    conversation = SourceConversation(
        source_id=source_id,
        title=text_of(item.get("title")),
        created_at=epoch_time(item.get("create_time")),
        updated_at=epoch_time(item.get("update_time")),
    )
    for node_id in branch:
        node = mapping[node_id]
        message = node.get("message") if isinstance(node, dict) else None
        if not isinstance(message, dict):
            continue  # the tree's root carries no message
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        if role not in ROLES:
            skipped[str(role) if role in ("system", "tool") else "other_role"] += 1
            continue
        text = _text(message.get("content"), skipped)
        if text is None:
            continue
        if not text.strip():
            skipped["empty"] += 1
            continue
        conversation.messages.append(
            SourceMessage(
                source_id=text_of(message.get("id")) or node_id,
                role=ROLES[role],
                text=text,
                created_at=epoch_time(message.get("create_time")),
            )
        )
    return conversation


def _branch(mapping: dict[str, Any], current: Any, where: str, problems: Problems) -> list[str] | None:
    """Node ids from the root to ``current_node`` (or, without one, to the last leaf of the first children)."""
    if current is None:
        roots = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("parent")]
        if not roots:
            return []
        current = roots[0]
        while True:
            children = mapping.get(current, {}).get("children") or []
            if not children or children[-1] not in mapping:
                break
            current = children[-1]
    if current not in mapping:
        problems.add(where, f"current_node {str(current)[:60]!r} is not in its mapping")
        return None
    path: list[str] = []
    seen: set[str] = set()
    node: Any = current
    while node is not None:
        if node in seen:
            problems.add(where, f"its message tree has a cycle at {str(node)[:60]!r}")
            return None
        if node not in mapping or not isinstance(mapping[node], dict):
            problems.add(where, f"parent {str(node)[:60]!r} is not in its mapping")
            return None
        seen.add(node)
        path.append(node)
        node = mapping[node].get("parent")
    return path[::-1]


def _text(content: Any, skipped: Skipped) -> str | None:
    """The message's text parts joined; None (counted) when it has no text at all."""
    if not isinstance(content, dict):
        skipped["non_text"] += 1
        return None
    kind = content.get("content_type")
    if kind not in ("text", "multimodal_text"):
        skipped["non_text"] += 1
        return None
    parts = content.get("parts") or []
    texts = [p for p in parts if isinstance(p, str)]
    others = len(parts) - len(texts)
    if others:
        skipped["non_text_parts"] += others
    if not texts and others:
        return None
    return "\n".join(texts)
