"""`chatdb prune`: delete old archived conversations, optionally exporting them first."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    AllowFutureOption,
    BatchSizeOption,
    BeforeOption,
    JsonOption,
    OlderThanOption,
    QuietOption,
    SinceOption,
    UserOption,
    WaitOption,
    YesOption,
    count_param,
    dry_run_option,
)
from chatdb.errors import UsageError
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE
from chatdb.timeparse import cutoff

DryRunOption = Annotated[
    bool, dry_run_option("the exact number of conversations and messages that would go, and their size")
]


def prune(
    ctx: typer.Context,
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
    user: UserOption = None,
    include_active: Annotated[
        bool,
        typer.Option("--include-active", help="Delete matching active conversations too, not only archived ones."),
    ] = False,
    export_to: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="FILE",
            help="First write (and verify) a jsonl export of exactly the rows to delete; "
            ".gz compresses. FILE must not exist (unless --resume).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish an interrupted prune from its own --export FILE: check FILE against its manifest, "
            "then delete the rows still exactly as exported.",
        ),
    ] = False,
    max_rows: Annotated[
        int | None,
        typer.Option(
            "--max-rows",
            metavar="N",
            parser=count_param(0),
            help="Refuse, deleting nothing, if more than N rows (conversations + messages) would go.",
            show_default=False,
        ),
    ] = None,
    allow_future: AllowFutureOption = False,
    yes: YesOption = False,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    dry_run: DryRunOption = False,
    wait: WaitOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete archived conversations (and their messages) older than a cutoff.

    Asks for confirmation on a terminal; needs --yes otherwise. With --export,
    the rows are exported and the file verified (as chatdb import would read
    it) before anything is deleted, and only conversations whose rows are still
    byte for byte as exported are deleted.

    Example:

        chatdb prune --older-than 1y --dry-run

        chatdb prune --older-than 1y --export pruned-2026-01.jsonl.gz --max-rows 5000000 --yes

        chatdb prune --before 2025-01-01T00:00:00Z --export pruned.jsonl.gz --resume --yes
    """
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.prune import prune_conversations

    selection = ConversationFilter.build(
        users=user, older_than=cutoff(older_than, before), since=since, allow_future=allow_future
    )
    if selection.older_than is None:
        raise UsageError("prune needs a cutoff: --older-than DURATION or --before DATE")
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if resume and export_to is None:
        raise UsageError("--resume needs --export FILE: the export of the prune to finish")
    if not (dry_run or yes or interactive):
        raise UsageError("prune deletes rows and stdin is not a terminal; pass --yes to confirm (or --dry-run)")
    if export_to is not None and not dry_run:
        from chatdb.cli.export import check_output

        check_output(export_to, "--export")
    db = state(ctx).database()
    if include_active:
        out.warn("--include-active: ACTIVE conversations older than the cutoff will be deleted too")

    with out.JobProgress(quiet=quiet or as_json) as bar, finishing(selection, include_active):

        def confirm(plan: Any) -> bool:  # a PrunePlan
            # Asked from inside the job: the progress bar must not draw over the question.
            with bar.suspended():
                return typer.confirm(
                    f"Delete {plan.conversations:,} conversations and {plan.messages:,} messages "
                    f"({out.human_bytes(plan.bytes)} of rows) from {plan.database}?",
                    err=True,
                )

        result = prune_conversations(
            db,
            selection,
            include_active=include_active,
            export_to=export_to,
            resume=resume,
            max_rows=max_rows,
            confirm=None if yes else confirm,
            batch_size=batch_size,
            dry_run=dry_run,
            wait=wait,
            progress=bar.callback,
        )
    if result.export is not None and result.export.removed_temporaries and not as_json:
        from chatdb.cli.export import removed_line

        out.info(removed_line(result.export))
    plan = result.plan
    pairs = [
        ("Database", plan.database),
        ("Cutoff (last activity before)", plan.selection.older_than),
        ("Statuses", "active and archived" if plan.include_active else "archived"),
        ("Matching conversations", plan.conversations),
        ("Their messages", plan.messages),
        ("Row bytes", out.human_bytes(plan.bytes) if plan.bytes is not None else "not measured (see --dry-run)"),
        ("Held back by a legal hold", plan.held.conversations),
    ]
    if plan.held.conversations and not as_json:
        out.warn(plan.held.describe() + " (chatdb hold list)")
    if dry_run:
        out.job_summary(result, pairs, as_json=as_json, title="prune (dry run: nothing deleted)")
        return
    if result.export is not None:
        pairs += [
            ("Export", result.export.path),
            ("Export SHA-256", result.export.sha256),
            ("Export verified", "yes" if result.export_verified else "no"),
        ]
    pairs += [
        ("Deleted conversations", result.deleted_conversations),
        ("Deleted messages", result.deleted_messages),
        ("Kept: in use by the application", result.in_use),
        ("Kept: changed since the export", result.changed),
        ("Already deleted (not in the database)", result.already_deleted),
        ("Batches", result.batches),
        ("Duration", out.seconds(result.duration_seconds)),
        ("Rows/s", out.rate(result.rows_per_second)),
    ]
    out.job_summary(result, pairs, as_json=as_json, title="prune")
    if result.skipped and not as_json:
        out.warn(f"{result.skipped:,} conversations were in use or changed and were kept")


@contextmanager
def finishing(selection: Any, include_active: bool) -> Iterator[None]:  # a ConversationFilter
    """An unfinished prune with an export ends with the exact command that finishes it."""
    from chatdb.errors import ChatdbError

    try:
        yield
    except ChatdbError as exc:
        export = exc.resume_from
        if export is None:
            raise
        words = ["chatdb", "prune", "--before", selection.older_than.isoformat()]
        if selection.since is not None:
            words += ["--since", selection.since.isoformat()]
        for user in selection.user_ids:
            words += ["--user", user]
        if include_active:
            words.append("--include-active")
        words += ["--export", str(export), "--resume", "--yes"]
        exc.reword(f"{exc.stopped}; the export is complete, finish with: {shlex.join(words)}", parameters=())
        raise


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)
