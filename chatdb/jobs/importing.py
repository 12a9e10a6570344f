"""Restore conversations and messages from a jsonl (or jsonl.gz) export.

The whole file is checked before anything is written: every line must be a
conversation exactly as ``chatdb export`` writes it (ids, timestamps with an
offset, roles and statuses the schema allows, messages that belong to their
conversation), its users must exist, and if a manifest lies beside the file its
sha256 and counts must match. Any bad line stops the import with the line
numbers and nothing written. Then rows are inserted in batches, each its own
transaction, keeping their ids, timestamps and metadata exactly; rows whose id
already exists are skipped and counted, so an import can be re-run (or resumed
after an interruption) safely.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdb.errors import ImportFileError, UsageError
from chatdb.jobs.export import CONVERSATION_FIELDS, MESSAGE_FIELDS
from chatdb.jobs.files import ExportReader, read_manifest
from chatdb.jobs.runner import (
    DEFAULT_BATCH_SIZE,
    JobRun,
    JobTimeouts,
    ProgressCallback,
    batch_transaction,
    check_batch_size,
    job_connection,
    job_lock,
    job_transaction,
    rate,
)
from chatdb.models import USER_MESSAGE_MAX_LENGTH, ConversationStatus, MessageRole

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

MAX_REPORTED_PROBLEMS = 10
_STATUSES = {s.value for s in ConversationStatus}
_ROLES = {r.value for r in MessageRole}


@dataclass
class ImportResult:
    database: str
    path: str
    dry_run: bool
    manifest_checked: bool = False
    conversations: int = 0  # in the file
    messages: int = 0
    inserted_conversations: int = 0
    inserted_messages: int = 0
    existing_conversations: int = 0  # already in the database: skipped
    existing_messages: int = 0
    batches: int = 0
    duration_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return rate(self.inserted_conversations + self.inserted_messages, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": "import",
            "database": self.database,
            "path": self.path,
            "dry_run": self.dry_run,
            "manifest_checked": self.manifest_checked,
            "in_file": {"conversations": self.conversations, "messages": self.messages},
            "inserted": {"conversations": self.inserted_conversations, "messages": self.inserted_messages},
            "existing": {"conversations": self.existing_conversations, "messages": self.existing_messages},
            "batches": self.batches,
            "duration_seconds": round(self.duration_seconds, 3),
            "rows_per_second": self.rows_per_second,
        }


class LineProblem(ValueError):
    pass


def parse_line(raw: bytes) -> dict[str, Any]:
    """One exported conversation, checked field by field; :class:`LineProblem` says what is wrong."""
    try:
        item = json.loads(raw)
    except ValueError as exc:
        raise LineProblem(f"not valid JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise LineProblem("not a JSON object (import reads jsonl: one conversation per line)")
    _fields(item, (*CONVERSATION_FIELDS, "messages"), "conversation")
    conversation_id = _uuid(item["id"], "id")
    _text(item["user_id"], "user_id", 255)
    if item["status"] not in _STATUSES:
        raise LineProblem(f"status {item['status']!r} is not active or archived")
    _timestamp(item["created_at"], "created_at")
    _timestamp(item["updated_at"], "updated_at")
    if not isinstance(item["messages"], list):
        raise LineProblem("messages is not a list")
    for index, message in enumerate(item["messages"], 1):
        where = f"message {index}"
        if not isinstance(message, dict):
            raise LineProblem(f"{where} is not an object")
        _fields(message, MESSAGE_FIELDS, where)
        _uuid(message["id"], f"{where} id")
        if _uuid(message["conversation_id"], f"{where} conversation_id") != conversation_id:
            raise LineProblem(f"{where} belongs to another conversation")
        _text(message["user_id"], f"{where} user_id", 255)
        if message["role"] not in _ROLES:
            raise LineProblem(f"{where} role {message['role']!r} is not user or assistant")
        if not isinstance(message["content"], str):
            raise LineProblem(f"{where} content is not text")
        if message["role"] == "user" and len(message["content"]) > USER_MESSAGE_MAX_LENGTH:
            raise LineProblem(f"{where} is a user message longer than {USER_MESSAGE_MAX_LENGTH} characters")
        _timestamp(message["created_at"], f"{where} created_at")
    return item


def _fields(item: dict[str, Any], expected: tuple[str, ...], what: str) -> None:
    missing = [f for f in expected if f not in item]
    if missing:
        raise LineProblem(f"{what} lacks {', '.join(missing)}")
    extra = sorted(set(item) - set(expected))
    if extra:
        raise LineProblem(f"{what} has unknown fields {', '.join(extra)}")


def _uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise LineProblem(f"{what} {value!r} is not a UUID") from None


def _text(value: Any, what: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise LineProblem(f"{what} must be text of 1 to {limit} characters")


def _timestamp(value: Any, what: str) -> None:
    try:
        moment = datetime.fromisoformat(value)
    except (ValueError, TypeError):
        raise LineProblem(f"{what} {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise LineProblem(f"{what} {value!r} has no UTC offset")


def import_conversations(
    db: Database,
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> ImportResult:
    """Check the whole file, then insert its rows in batches (existing ids skipped and counted)."""
    check_batch_size(batch_size)
    try:
        readable = path.is_file()
    except OSError as exc:  # a name too long for the file system, for example
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not readable:
        raise UsageError(f"cannot read {path}: no such file")
    timeouts = timeouts or JobTimeouts.from_env()
    result = ImportResult(database=db.display_url, path=str(path), dry_run=dry_run)
    with job_lock(db, "import", wait=wait), JobRun("import", progress) as run:
        run.unchanged = "nothing was imported"
        run.rerun = "run it again to finish (what is already imported is skipped)"
        _check_file(db, path, batch_size, result, run, timeouts)
        if not dry_run:
            run.start_phase("import", result.conversations)
            with job_connection(db) as conn:
                for chunk in _chunks(path, batch_size):
                    with run.batch():
                        with batch_transaction(db, conn, timeouts):
                            conversations, messages = _insert(conn, chunk)
                        result.inserted_conversations += conversations
                        result.inserted_messages += messages
                        run.advance(len(chunk))
            result.existing_conversations = result.conversations - result.inserted_conversations
            result.existing_messages = result.messages - result.inserted_messages
        result.batches = run.batches
        result.duration_seconds = run.elapsed
    return result


def _chunks(path: Path, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for number, line in ExportReader(path):
        chunk.append((number, json.loads(line)))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_file(
    db: Database, path: Path, batch_size: int, result: ImportResult, run: JobRun, timeouts: JobTimeouts
) -> None:
    """The validation pass: every line, the users, the manifest; counts existing rows on a dry run."""
    run.start_phase("validate", None, unit="lines")
    problems: list[tuple[int, str]] = []
    bad_lines = 0
    reader = ExportReader(path)
    chunk: list[tuple[int, dict[str, Any]]] = []

    def check_chunk() -> None:
        nonlocal bad_lines
        with job_transaction(db, timeouts) as conn:
            for number, user in _missing_users(conn, chunk):
                bad_lines += 1
                if len(problems) < MAX_REPORTED_PROBLEMS:
                    problems.append((number, f"user {user!r} does not exist (restore the user first)"))
            if result.dry_run and not bad_lines:
                conversations, messages = _existing(conn, chunk)
                result.existing_conversations += conversations
                result.existing_messages += messages
        chunk.clear()

    try:
        for number, line in reader:
            run.check_stop()
            try:
                item = parse_line(line)
            except LineProblem as exc:
                bad_lines += 1
                if len(problems) < MAX_REPORTED_PROBLEMS:
                    problems.append((number, str(exc)))
                continue
            result.conversations += 1
            result.messages += len(item["messages"])
            chunk.append((number, item))
            if len(chunk) >= batch_size:
                check_chunk()
                run.done = result.conversations
                run.report()
        if chunk:
            check_chunk()
    except ImportFileError as exc:
        problems.extend(exc.problems)
        bad_lines += 1
        if not reader.lines:
            reader.lines = exc.problems[0][0] if exc.problems else 0
    if reader.lines == 0 and not problems:
        raise ImportFileError(f"{path} is empty: nothing to import")
    if problems:
        listed = "; ".join(f"line {n}: {text}" for n, text in problems)
        more = f" (and {bad_lines - len(problems)} more)" if bad_lines > len(problems) else ""
        raise ImportFileError(
            f"{path}: {bad_lines} bad line{'s' if bad_lines != 1 else ''}, nothing was imported: {listed}{more}",
            problems,
        )
    manifest = read_manifest(path)
    if manifest is not None:
        found = {"sha256": reader.sha256, "conversations": result.conversations, "messages": result.messages}
        differs = [f"{k} {manifest.get(k)!r} in the manifest, {v!r} in the file" for k, v in found.items() if manifest.get(k) != v]
        if differs:
            raise ImportFileError(f"{path} does not match its manifest ({'; '.join(differs)}); nothing was imported")
        result.manifest_checked = True
    if result.dry_run:
        result.inserted_conversations = result.conversations - result.existing_conversations
        result.inserted_messages = result.messages - result.existing_messages


def _missing_users(conn: Connection, chunk: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, str]]:
    from sqlalchemy import select

    from chatdb.models import users

    wanted = {item["user_id"] for _, item in chunk} | {m["user_id"] for _, item in chunk for m in item["messages"]}
    present = set(conn.execute(select(users.c.id).where(users.c.id.in_(list(wanted)))).scalars())
    missing = []
    for number, item in chunk:
        for user in [item["user_id"], *(m["user_id"] for m in item["messages"])]:
            if user not in present:
                missing.append((number, user))
                break
    return missing


def _existing(conn: Connection, chunk: list[tuple[int, dict[str, Any]]]) -> tuple[int, int]:
    from sqlalchemy import func, select

    from chatdb.jobs.queries import conversations as c
    from chatdb.jobs.queries import messages as m

    conversation_ids = [uuid.UUID(item["id"]) for _, item in chunk]
    message_ids = [uuid.UUID(msg["id"]) for _, item in chunk for msg in item["messages"]]
    conversations = conn.execute(select(func.count()).where(c.c.id.in_(conversation_ids))).scalar_one()
    messages = conn.execute(select(func.count()).where(m.c.id.in_(message_ids))).scalar_one() if message_ids else 0
    return int(conversations), int(messages)


_INSERT_CONVERSATIONS = """
INSERT INTO conversations (id, user_id, status, created_at, updated_at)
SELECT id, user_id, status, created_at, updated_at
FROM json_populate_recordset(CAST(NULL AS conversations), CAST(:rows AS json))
ON CONFLICT (id) DO NOTHING
"""
_INSERT_MESSAGES = """
INSERT INTO messages (id, conversation_id, user_id, role, content, metadata, created_at)
SELECT id, conversation_id, user_id, role, content, metadata, created_at
FROM json_populate_recordset(CAST(NULL AS messages), CAST(:rows AS json))
ON CONFLICT (id) DO NOTHING
"""


def _insert(conn: Connection, chunk: list[tuple[int, dict[str, Any]]]) -> tuple[int, int]:
    """Insert one batch (PostgreSQL reads the timestamps and metadata from the JSON as given)."""
    from sqlalchemy import text

    heads = [{f: item[f] for f in CONVERSATION_FIELDS} for _, item in chunk]
    bodies = [message for _, item in chunk for message in item["messages"]]
    conversations = conn.execute(text(_INSERT_CONVERSATIONS), {"rows": json.dumps(heads)}).rowcount
    messages = conn.execute(text(_INSERT_MESSAGES), {"rows": json.dumps(bodies)}).rowcount if bodies else 0
    return int(conversations), int(messages)
