"""Delete archived conversations (and their messages) older than a cutoff.

Without an export, conversations are taken in keyset batches with ``FOR UPDATE
SKIP LOCKED``, and their messages too; each batch deletes the conversations
all of whose rows it could lock, in one short transaction. A conversation the
application holds (its row or any of its messages) is kept and counted as
skipped.

With an export, the export of exactly the selected rows is written first, then
read back whole and checked before anything is deleted: its sha256, size and
counts as written, and every line through import's own check
(:func:`chatdb.jobs.line_checks.check_lines`), so nothing is deleted that
``chatdb import`` would refuse to restore. The deletion then walks the file
again, batch by batch (each batch compared with the sha256 it had when it was
checked), and deletes a conversation only if, in the deleting transaction and
with its rows locked, PostgreSQL rebuilds from the current rows exactly the
bytes of its line (:func:`chatdb.jobs.queries.lines.line_digests`). Any change after
the export (content, metadata, a timestamp, a status or user, a message added
or deleted) keeps the conversation, counted as changed. ``resume`` finishes an
interrupted run from its own export: the file is checked against its manifest
and the same rule applies, so only rows still byte-identical are deleted.

A conversation that a current legal hold covers (:mod:`chatdb.holds`) is never
selected: the statements that count, export, select and lock each batch leave
it out, and the plan says how many were held back and by which hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdb.errors import ChatdbError, JobInterrupted, JobRefusedError, UsageError
from chatdb.filters import ConversationFilter
from chatdb.holds import HeldBack, held_back
from chatdb.jobs.deleting import BatchStep, Deleted, DeletedIds, delete_batches, keyset_batches
from chatdb.jobs.export import ExportResult, write_export
from chatdb.jobs.files import manifest_path
from chatdb.jobs.prune_export import exported_batches, verify_export
from chatdb.jobs.reading import expected_of, load_manifest
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
from chatdb.reports.conversations import resolve_selection

if TYPE_CHECKING:
    from chatdb.db import Database


@dataclass(frozen=True)
class PrunePlan:
    """What a prune would delete, counted under the job lock before anything happens."""

    database: str
    selection: ConversationFilter
    include_active: bool
    conversations: int
    messages: int
    bytes: int | None  # measured for dry runs and confirmations
    held: HeldBack = HeldBack()  # matching, but a current hold covers them: not counted above

    @property
    def rows(self) -> int:
        return self.conversations + self.messages

    def as_dict(self) -> dict[str, Any]:
        return {"conversations": self.conversations, "messages": self.messages, "bytes": self.bytes}


@dataclass
class PruneResult:
    plan: PrunePlan
    dry_run: bool
    resumed: bool = False
    deleted_conversations: int = 0
    deleted_messages: int = 0
    in_use: int = 0  # the application held a row: kept
    changed: int = 0  # differs from the export (or no longer matches): kept
    already_deleted: int = 0  # in the export but gone (an earlier run, or the application, deleted it)
    export: ExportResult | None = None
    export_verified: bool = False
    batches: int = 0
    duration_seconds: float = 0.0

    @property
    def skipped(self) -> int:
        """Conversations kept: in use by the application, or changed since the export."""
        return self.in_use + self.changed

    @property
    def rows_per_second(self) -> float:
        return rate(self.deleted_conversations + self.deleted_messages, self.duration_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            # matched: planned conversations; changed: deleted; skipped: kept (in use, or changed since the export).
            **job_envelope(
                "prune",
                self.plan.database,
                dry_run=self.dry_run,
                matched=self.plan.conversations,
                changed=self.deleted_conversations,
                skipped=self.skipped,
                batches=self.batches,
                duration_seconds=self.duration_seconds,
                rows_per_second=self.rows_per_second,
            ),
            "resumed": self.resumed,
            "include_active": self.plan.include_active,
            "selection": self.plan.selection.as_dict(),
            "planned": self.plan.as_dict(),
            "deleted": {"conversations": self.deleted_conversations, "messages": self.deleted_messages},
            "kept": {"in_use": self.in_use, "changed": self.changed},
            "already_deleted": self.already_deleted,
            "held_back": self.plan.held.as_dict(),
            "export": self.export.as_dict() if self.export else None,
            "export_verified": self.export_verified,
        }


def prune_conversations(
    db: Database,
    selection: ConversationFilter,
    *,
    include_active: bool = False,
    export_to: Path | None = None,
    resume: bool = False,
    max_rows: int | None = None,
    confirm: Callable[[PrunePlan], bool] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    wait: float | None = None,
    progress: ProgressCallback | None = None,
    timeouts: JobTimeouts | None = None,
) -> PruneResult:
    """Delete the conversations matching ``selection`` (archived ones unless ``include_active``).

    ``selection.older_than`` is required. ``max_rows`` refuses (before any
    change) when more conversations plus messages would be deleted;
    ``confirm`` is asked with the plan and must return True for the deletion
    to go ahead. ``export_to`` must not exist yet, unless ``resume``: then it
    is the export (with its manifest) of an earlier, unfinished prune, whose
    rows still as exported are deleted.
    """
    if selection.older_than is None:
        raise UsageError("prune needs a cutoff ({older_than})", parameters=("older_than",))
    check_batch_size(batch_size)
    if max_rows is not None and max_rows < 0:
        raise UsageError(f"{{max_rows}} must be 0 or more, got {max_rows}", parameters=("max_rows",))
    if resume and export_to is None:
        raise UsageError(
            "{resume} needs {export_to}: the export of the prune to finish", parameters=("resume", "export_to")
        )
    if export_to is not None and not dry_run:
        _check_export_target(export_to, resume)
    selection = replace(selection, status="all" if include_active else "archived")
    timeouts = JobTimeouts.given(timeouts)

    with job_lock(db, "prune", wait=wait, writes=not dry_run, progress=progress):
        run = JobRun("prune", progress)
        result: PruneResult | None = None
        try:
            with run:
                try:
                    result = _prune(
                        db,
                        selection,
                        include_active,
                        export_to,
                        resume,
                        max_rows,
                        confirm,
                        batch_size,
                        dry_run,
                        run,
                        timeouts,
                    )
                except ChatdbError as exc:
                    exc.cause = exc.message  # before the runner adds to it
                    raise
        except (JobInterrupted, ChatdbError) as exc:
            if export_to is None or dry_run or isinstance(exc, (UsageError, JobRefusedError)):
                raise
            if exc.refuses_export:
                raise
            raise _stopped(exc, run, export_to) from None
    assert result is not None
    return result


def _check_export_target(export_to: Path, resume: bool) -> None:
    if not export_to.parent.is_dir():
        raise UsageError(f"cannot write {export_to}: directory {export_to.parent} does not exist")
    if resume:
        for needed in (export_to, manifest_path(export_to)):
            if not needed.is_file():
                raise JobRefusedError(
                    f"cannot resume from {export_to}: {needed} does not exist (only a complete, "
                    "verified export can be resumed; nothing was deleted)"
                )
        return
    for existing in (export_to, manifest_path(export_to)):
        if existing.exists():
            raise JobRefusedError(
                f"{existing} already exists; prune never overwrites an export: choose a new name, "
                "or finish the prune that wrote it with {resume}",
                parameters=("resume",),
            )


def _prune(
    db: Database,
    selection: ConversationFilter,
    include_active: bool,
    export_to: Path | None,
    resume: bool,
    max_rows: int | None,
    confirm: Callable[[PrunePlan], bool] | None,
    batch_size: int,
    dry_run: bool,
    run: JobRun,
    timeouts: JobTimeouts,
    *,
    record: DeletedIds | None = None,
) -> PruneResult:
    """The prune itself, inside its lease and ``run`` (erase runs it too, with ``record``)."""
    from chatdb.jobs import queries

    run.unchanged = "nothing was deleted"
    selection = replace(resolve_selection(db, selection), unheld=True)
    with job_transaction(db, timeouts) as conn:
        # Row bytes need a pass over every row: only for a dry run or a person confirming.
        measure = dry_run or confirm is not None
        conversations, messages, size = queries.selection_size(conn, selection, size=measure)
        held = held_back(conn, selection)
    plan = PrunePlan(
        db.display_url, selection, include_active, conversations, messages, size if measure else None, held
    )
    result = PruneResult(plan=plan, dry_run=dry_run, resumed=resume)
    if max_rows is not None and plan.rows > max_rows:
        raise JobRefusedError(
            f"prune would delete {plan.conversations} conversations and {plan.messages} messages "
            f"({plan.rows} rows), more than {{max_rows}} {max_rows}; nothing was deleted",
            parameters=("max_rows",),
        )
    if dry_run or (plan.conversations == 0 and not resume):
        return run.close(result)
    if confirm is not None:
        with run.interruptible():  # Ctrl-C at the prompt stops at once
            confirmed = confirm(plan)
        if not confirmed:
            raise ChatdbError("prune cancelled; nothing was deleted")
    if export_to is None:
        _delete(
            db, keyset_batches(selection, batch_size), result, run, timeouts, total=plan.conversations, record=record
        )
        with job_transaction(db, timeouts) as conn:
            result.in_use = queries.selection_size(conn, selection, messages=False)[0]
    else:
        if resume:
            expected = expected_of(load_manifest(manifest_path(export_to)))
        else:
            result.export = write_export(
                db, selection, export_to, format="jsonl", batch_size=batch_size, run=run, timeouts=timeouts
            )
            expected = {
                "sha256": result.export.sha256,
                "bytes": result.export.bytes,
                "conversations": result.export.conversations,
                "messages": result.export.messages,
            }
        marks = verify_export(
            db, export_to, expected, batch_size, run, timeouts, source="its manifest" if resume else "what was written"
        )
        result.export_verified = True
        steps = exported_batches(export_to, marks, selection, result)
        _delete(db, steps, result, run, timeouts, total=expected["conversations"], record=record)
    return run.close(result)


def _delete(
    db: Database,
    batches: Iterator[BatchStep],
    result: PruneResult,
    run: JobRun,
    timeouts: JobTimeouts,
    *,
    total: int,
    record: DeletedIds | None = None,
) -> None:
    deleted = Deleted()
    try:
        delete_batches(db, batches, run, timeouts, total=total, deleted=deleted, record=record)
    finally:
        result.deleted_conversations += deleted.conversations
        result.deleted_messages += deleted.messages


def _stopped(exc: ChatdbError, run: JobRun, export_to: Path) -> ChatdbError:
    """What is true after a prune with an export stopped, and how to finish it.

    The message names the library's ``resume``; the command line replaces that
    with the exact command (``exc.resume_from`` says it can be resumed).
    """
    interrupted = isinstance(exc, JobInterrupted)
    cause = "interrupted" if interrupted else (exc.cause or exc.message)
    if run.phase == run.job:  # before any export or deletion (prune's or erase's): the message says it all
        return exc
    if run.phase == "export":
        exc.reword(f"{cause} while exporting: nothing was deleted and no export was kept; run the {run.job} again")
        return exc
    done = run.done if run.phase == "delete" else 0
    of = f" of {run.total}" if run.total is not None else ""
    where = (
        # Verifying comes before any deletion: this run deleted nothing (a resumed one may follow others that did).
        f"while verifying the export {export_to}: nothing was deleted in this run"
        if run.phase == "verify"
        else (f"after deleting what was still as exported of {done}{of} conversations of the export {export_to}")
    )
    exc.stopped = f"{cause} {where}"
    exc.resume_from = export_to
    exc.reword(
        f"{exc.stopped}; the export is complete: finish with {{resume}} (the same selection and {{export_to}})",
        parameters=("resume", "export_to"),
    )
    return exc
