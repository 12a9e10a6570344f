"""Erase one user's conversations and messages (a data subject's request), with a receipt.

Erasure is prune's deletion over every conversation of the user, active and
archived, on the same runner (lease, batches, stops, timeouts): with
``export_to``, the export of exactly those rows is written and verified first
and only rows still byte for byte as exported are deleted
(:mod:`chatdb.jobs.prune_export`); without one only if ``no_export`` says so.
Before anything, it is refused if a current legal hold covers any of the
user's conversations, naming the hold. It never deletes the user's row in
``users``: that table is the application's.

When it ends, a receipt is written atomically and privately (0600): the user,
how many rows of each table were deleted and the sha256 of their sorted ids,
what is left, the export's path and sha256, the database (password hidden),
the time and chatdb's version. An interrupted erase leaves whole batches
deleted and the rest untouched; running it again (with ``resume`` and the
same export, or a new export) deletes the rest, and its receipt counts what
that run deleted and what was already gone.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdb.errors import ChatdbError, JobInterrupted, JobRefusedError, UsageError
from chatdb.jobs.deleting import DeletedIds
from chatdb.jobs.results import job_envelope, rate
from chatdb.jobs.runner import (
    DEFAULT_BATCH_SIZE,
    JobRun,
    JobTimeouts,
    ProgressCallback,
    check_batch_size,
    job_lock,
    job_transaction,
)

if TYPE_CHECKING:
    from chatdb.db import Database
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.prune import PrunePlan, PruneResult

RECEIPT_SUFFIX = ".receipt.json"
USERS_ROW_KEPT = "the users row is not deleted: it belongs to the application"


def ids_sha256(ids: Sequence[uuid.UUID]) -> str:
    """sha256 of the ids as lowercase hyphenated text, sorted, one per line (each ending in a newline)."""
    digest = hashlib.sha256()
    for text in sorted(str(i) for i in ids):
        digest.update(text.encode() + b"\n")
    return digest.hexdigest()


@dataclass
class EraseResult:
    user: str
    deletion: PruneResult
    remaining_conversations: int = 0
    remaining_messages: int = 0
    receipt_path: Path | None = None
    receipt: dict[str, Any] = field(default_factory=dict)
    batches: int = 0
    duration_seconds: float = 0.0
    deleted_ids: DeletedIds = field(default_factory=DeletedIds)

    @property
    def complete(self) -> bool:
        return self.remaining_conversations == 0 and self.remaining_messages == 0

    @property
    def rows_per_second(self) -> float:
        d = self.deletion
        return rate(d.deleted_conversations + d.deleted_messages, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        d = self.deletion
        return {
            # matched: the user's conversations planned; changed: deleted; skipped: kept (in use, changed).
            **job_envelope(
                "erase",
                d.plan.database,
                dry_run=False,
                matched=d.plan.conversations,
                changed=d.deleted_conversations,
                skipped=d.skipped,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "user": self.user,
            "resumed": d.resumed,
            "planned": d.plan.as_dict(),
            "deleted": {"conversations": d.deleted_conversations, "messages": d.deleted_messages},
            "skipped": d.skipped,
            "kept": {"in_use": d.in_use, "changed": d.changed},
            "already_deleted": d.already_deleted,
            "remaining": {"conversations": self.remaining_conversations, "messages": self.remaining_messages},
            "complete": self.complete,
            "users_row": USERS_ROW_KEPT,
            "export": d.export.as_dict() if d.export else None,
            "export_verified": d.export_verified,
            "receipt": str(self.receipt_path) if self.receipt_path else None,
        }


def receipt_path_for(export_to: Path | None, receipt: Path | None) -> Path | None:
    """Where the receipt goes: ``receipt``, else beside the export (``FILE.receipt.json``)."""
    if receipt is not None:
        return receipt
    return export_to.with_name(export_to.name + RECEIPT_SUFFIX) if export_to is not None else None


def erase_user(
    db: Database,
    user: str,
    *,
    export_to: Path | None = None,
    no_export: bool = False,
    resume: bool = False,
    receipt: Path | None = None,
    confirm: Callable[[PrunePlan], bool] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> EraseResult:
    """Delete every conversation and message of ``user``, then write the receipt.

    Exactly one of ``export_to`` (the export to write and verify first; with
    ``resume``, the complete export of an interrupted erase to finish) and
    ``no_export`` is required. The receipt goes to ``receipt``, else to
    ``export_to`` + ``.receipt.json``; it must not exist yet. ``confirm`` is
    asked with the plan and must return True for the deletion to go ahead.
    """
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.prune import _check_export_target, _stopped

    if export_to is not None and no_export:
        raise UsageError("{export_to} and {no_export} cannot be used together", parameters=("export_to", "no_export"))
    if export_to is None and not no_export:
        raise UsageError(
            "erase needs {export_to} (a verified export before anything is deleted), or {no_export} said explicitly",
            parameters=("export_to", "no_export"),
        )
    if resume and export_to is None:
        raise UsageError(
            "{resume} needs {export_to}: the export of the erase to finish", parameters=("resume", "export_to")
        )
    receipt_path = receipt_path_for(export_to, receipt)
    if receipt_path is None:
        raise UsageError("{no_export} needs {receipt}: where to write the receipt", parameters=("no_export", "receipt"))
    check_batch_size(batch_size)
    selection = ConversationFilter.build(users=[user], status="all")
    _check_receipt_target(receipt_path)
    if export_to is not None:
        _check_export_target(export_to, resume)
    timeouts = JobTimeouts.given(timeouts)

    with job_lock(db, "erase", wait=wait, progress=progress):
        run = JobRun("erase", progress)
        result: EraseResult | None = None
        try:
            with run:
                try:
                    result = _erase(db, user, selection, export_to, resume, confirm, batch_size, run, timeouts)
                except ChatdbError as exc:
                    exc.cause = exc.message  # before the runner adds to it
                    raise
        except (JobInterrupted, ChatdbError) as exc:
            if export_to is None or isinstance(exc, (UsageError, JobRefusedError)):
                raise
            if exc.refuses_export:
                raise
            raise _stopped(exc, run, export_to) from None
    assert result is not None
    result.receipt_path = receipt_path
    result.receipt = _receipt(db, result, export_to)
    from chatdb.jobs.atomic_files import write_json_atomically

    write_json_atomically(receipt_path, result.receipt)
    return result


def _check_receipt_target(path: Path) -> None:
    from chatdb.errors import DestinationError
    from chatdb.jobs.atomic_files import check_destination

    try:
        check_destination(path, with_manifest=False)
    except DestinationError as exc:
        raise UsageError(f"{{receipt}} {exc.path}: {exc.reason}", parameters=("receipt",)) from None
    if path.exists():
        raise JobRefusedError(
            f"{path} already exists; erase never overwrites a receipt: choose another {{receipt}}",
            parameters=("receipt",),
        )


def _erase(
    db: Database,
    user: str,
    selection: ConversationFilter,
    export_to: Path | None,
    resume: bool,
    confirm: Callable[[PrunePlan], bool] | None,
    batch_size: int,
    run: JobRun,
    timeouts: JobTimeouts,
) -> EraseResult:
    from chatdb.holds import held_back
    from chatdb.jobs import queries
    from chatdb.jobs.prune import _prune
    from chatdb.reports.conversations import resolve_selection

    run.unchanged = "nothing was deleted"
    selection = resolve_selection(db, selection)  # an unknown user is an error, not "0 erased"
    with job_transaction(db, timeouts) as conn:
        held = held_back(conn, selection)
    if held.conversations:
        raise JobRefusedError(
            f"erase of user {user!r} refused: {held.describe()}; nothing was deleted (chatdb hold list shows the holds)"
        )

    def asked(plan: PrunePlan) -> bool:
        assert confirm is not None
        if not confirm(plan):
            raise ChatdbError("erase cancelled; nothing was deleted")
        return True

    record = DeletedIds()
    deletion = _prune(
        db,
        selection,
        True,
        export_to,
        resume,
        None,
        asked if confirm else None,
        batch_size,
        False,
        run,
        timeouts,
        record=record,
    )
    with job_transaction(db, timeouts) as conn:
        left_conversations, left_messages, _ = queries.selection_size(conn, selection)
    return run.close(EraseResult(user, deletion, left_conversations, left_messages, deleted_ids=record))


def _receipt(db: Database, result: EraseResult, export_to: Path | None) -> dict[str, Any]:
    import chatdb
    from chatdb.timeparse import utcnow

    record = result.deleted_ids
    d = result.deletion
    export: dict[str, Any] | None = None
    if export_to is not None:
        sha256: str | None
        size: int | None
        if d.export is not None:
            sha256, size = d.export.sha256, d.export.bytes
        else:  # resumed, or nothing to export
            sha256, size = _manifest_digest(export_to)
        export = {
            "path": str(export_to.resolve()) if sha256 else None,
            "sha256": sha256,
            "bytes": size,
            "verified": d.export_verified,
        }
    finished: datetime = utcnow()
    return {
        "receipt": "chatdb erase",
        "user": result.user,
        "deleted": {
            "conversations": {"count": len(record.conversations), "ids_sha256": ids_sha256(record.conversations)},
            "messages": {"count": len(record.messages), "ids_sha256": ids_sha256(record.messages)},
        },
        "ids_sha256_is": "sha256 of the deleted ids, lowercase and hyphenated, sorted, one per line ending in \\n",
        "already_deleted_conversations": d.already_deleted,
        "remaining": {"conversations": result.remaining_conversations, "messages": result.remaining_messages},
        "complete": result.complete,
        "users_row": USERS_ROW_KEPT,
        "export": export,
        "database": d.plan.database,
        "resumed": d.resumed,
        "finished_at": finished.isoformat(),
        "chatdb_version": chatdb.__version__,
    }


def _manifest_digest(export_to: Path) -> tuple[str | None, int | None]:
    from chatdb.jobs.files import manifest_path
    from chatdb.jobs.reading import expected_of, load_manifest

    manifest = manifest_path(export_to)
    if not manifest.is_file():
        return None, None
    expected = expected_of(load_manifest(manifest))
    return expected["sha256"], expected["bytes"]
