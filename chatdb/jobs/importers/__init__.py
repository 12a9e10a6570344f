"""Importing conversations from other chat tools' exports: ChatGPT, Claude, Open WebUI.

Each tool has a module that reads its export into one shape
(:mod:`~chatdb.jobs.importers.source`); :mod:`~chatdb.jobs.importers.rows`
turns that into chatdb's rows with ids derived from the tool's ids. The whole
input is read and checked before the database is touched; then, holding the
maintenance lease, one transaction checks the rows already there (a
conversation imported for another user is a conflict) and inserts only what
is missing. Any problem writes nothing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdb.errors import ImportFileError, UsageError, UserNotFoundError
from chatdb.jobs.importers import chatgpt, claude, openwebui
from chatdb.jobs.importers.rows import LONG_USER_MESSAGES, ConversationRow, MessageRow, to_rows
from chatdb.jobs.importers.source import Problems, Skipped, read_documents

if TYPE_CHECKING:
    from chatdb.db import Database

TOOLS = {module.TOOL: module for module in (chatgpt, claude, openwebui)}
# Rows sent in one statement (one transaction holds them all).
CHUNK = 2000


@dataclass
class ToolImportResult:
    database: str
    path: str
    tool: str
    user: str
    dry_run: bool
    long_user_messages: str
    conversations: int = 0  # in the export (those with something to import)
    messages: int = 0
    inserted_conversations: int = 0
    inserted_messages: int = 0
    existing_conversations: int = 0
    existing_messages: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    reshaped: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": "import",
            "from": self.tool,
            "database": self.database,
            "path": self.path,
            "user": self.user,
            "dry_run": self.dry_run,
            "long_user_messages": self.long_user_messages,
            "in_file": {"conversations": self.conversations, "messages": self.messages},
            "inserted": {"conversations": self.inserted_conversations, "messages": self.inserted_messages},
            "existing": {"conversations": self.existing_conversations, "messages": self.existing_messages},
            "skipped": dict(sorted(self.skipped.items())),
            "long_user_messages_changed": dict(sorted(self.reshaped.items())),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def read_export(
    path: Path, tool: str, *, long_user_messages: str = "skip"
) -> tuple[list[tuple[ConversationRow, list[MessageRow]]], Skipped, Counter[str]]:
    """The rows an export gives, every problem found first (an :class:`ImportFileError` naming them)."""
    if tool not in TOOLS:
        raise UsageError(
            f"{{source_format}}: must be one of {', '.join(TOOLS)}, got {tool!r}", parameters=("source_format",)
        )
    if long_user_messages not in LONG_USER_MESSAGES:
        raise UsageError(
            f"{{long_user_messages}}: must be skip, split or truncate, got {long_user_messages!r}",
            parameters=("long_user_messages",),
        )
    module = TOOLS[tool]
    problems, skipped, reshaped = Problems(), Skipped(), Counter[str]()
    documents = read_documents(path, module.wanted)
    conversations = module.parse(documents, problems, skipped)
    rows = list(
        to_rows(
            tool,
            conversations,
            long_user_messages=long_user_messages,
            problems=problems,
            skipped=skipped,
            reshaped=reshaped,
        )
    )
    problems.raise_any(str(path))
    return rows, skipped, reshaped


def import_export(
    db: Database,
    path: Path,
    *,
    tool: str,
    owner: str,
    long_user_messages: str = "skip",
    dry_run: bool = False,
    wait: float | None = None,
) -> ToolImportResult:
    """Import ``tool``'s export at ``path`` as conversations of the app's user ``owner``; only what is new is added."""
    from sqlalchemy import text

    from chatdb.jobs import lease as leases
    from chatdb.jobs.queries import importers as sql
    from chatdb.jobs.runner import JobTimeouts, job_lock, set_timeouts

    started = time.monotonic()
    if not owner.strip() or "\x00" in owner:
        raise UsageError("{owner}: give the id of the app's user who will own the conversations", parameters=("owner",))
    rows, skipped, reshaped = read_export(path, tool, long_user_messages=long_user_messages)
    result = ToolImportResult(
        database=db.display_url,
        path=str(path),
        tool=tool,
        user=owner,
        dry_run=dry_run,
        long_user_messages=long_user_messages,
        skipped=dict(skipped),
        reshaped=dict(reshaped),
    )
    conversations = [c for c, _ in rows]
    messages = [m for _, ms in rows for m in ms]
    result.conversations, result.messages = len(conversations), len(messages)
    timeouts = JobTimeouts.from_env()
    with job_lock(db, "import", wait=wait, writes=not dry_run), db.transaction() as conn:
        set_timeouts(conn, timeouts)
        lease = leases.held(db)
        if lease is not None:
            lease.check(conn)
        if conn.execute(text(sql.USER_EXISTS), {"u": owner}).first() is None:
            raise UserNotFoundError(f"user {owner!r} does not exist (the app's user who will own the conversations)")
        owners: dict[Any, str] = dict(
            conn.execute(text(sql.EXISTING_CONVERSATIONS), {"ids": [c.id for c in conversations]}).all()
        )
        others = [(c, owners[c.id]) for c in conversations if c.id in owners and owners[c.id] != owner]
        if others:
            first, who = others[0]
            raise ImportFileError(
                f"{path}: {len(others)} conversation(s) were imported before for another user (source "
                f"{first.source_id!r} as {first.id}, owned by {who!r}); nothing was imported"
            )
        placed: dict[Any, Any] = dict(
            conn.execute(text(sql.EXISTING_MESSAGES), {"ids": [m.id for m in messages]}).all()
        )
        misplaced = [m for m in messages if m.id in placed and placed[m.id] != m.conversation_id]
        if misplaced:
            raise ImportFileError(
                f"{path}: message {misplaced[0].id} already belongs to conversation "
                f"{placed[misplaced[0].id]}; nothing was imported"
            )
        result.existing_conversations = len(owners)
        result.existing_messages = len(placed)
        if not dry_run:
            for start in range(0, len(conversations), CHUNK):
                chunk = [c.as_json(owner) for c in conversations[start : start + CHUNK]]
                result.inserted_conversations += int(
                    conn.execute(text(sql.INSERT_CONVERSATIONS), {"rows": json.dumps(chunk)}).scalar_one()
                )
            for start in range(0, len(messages), CHUNK):
                chunk = [m.as_json(owner) for m in messages[start : start + CHUNK]]
                inserted, _ = conn.execute(text(sql.INSERT_MESSAGES), {"rows": json.dumps(chunk)}).one()
                result.inserted_messages += int(inserted)
            if (result.inserted_conversations, result.inserted_messages) != (
                result.conversations - result.existing_conversations,
                result.messages - result.existing_messages,
            ):
                raise ImportFileError(f"{path}: rows were added meanwhile; nothing was imported (run it again)")
        else:
            result.inserted_conversations = result.conversations - result.existing_conversations
            result.inserted_messages = result.messages - result.existing_messages
    result.duration_seconds = time.monotonic() - started
    return result
