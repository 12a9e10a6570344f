"""`chatdb archive` and `chatdb unarchive`: set conversations' status in batches."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    AllowFutureOption,
    BatchSizeOption,
    BeforeOption,
    ConversationOption,
    JsonOption,
    OlderThanOption,
    QuietOption,
    SinceOption,
    UserOption,
    WaitOption,
    dry_run_option,
)
from chatdb.cli._output import Column
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE
from chatdb.timeparse import cutoff

DryRunOption = Annotated[
    bool, dry_run_option("the exact counts and the first few matching conversations (oldest first)")
]


def archive(
    ctx: typer.Context,
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
    user: UserOption = None,
    allow_future: AllowFutureOption = False,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    dry_run: DryRunOption = False,
    wait: WaitOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Archive active conversations whose last activity is older than a cutoff.

    Only `status` changes; `updated_at` keeps the last activity. Works in
    short batches that skip conversations the application is writing to (they
    are reported and left for the next run). Running it again is a no-op.

    Example:

        chatdb archive --older-than 90d --dry-run

        chatdb archive --older-than 90d --json
    """
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.archive import archive_conversations

    selection = ConversationFilter.build(
        users=user, older_than=cutoff(older_than, before), since=since, allow_future=allow_future
    )
    db = state(ctx).database()
    with out.JobProgress(quiet=quiet or as_json) as bar:
        result = archive_conversations(
            db, selection, batch_size=batch_size, dry_run=dry_run, wait=wait, progress=bar.callback
        )
    _render(result, as_json)


def unarchive(
    ctx: typer.Context,
    conversation: ConversationOption = None,
    user: UserOption = None,
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
    allow_future: AllowFutureOption = False,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    dry_run: DryRunOption = False,
    wait: WaitOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Make archived conversations active again (given ids, a user's, or by last activity).

    Example:

        chatdb unarchive --conversation 2f1c7a0e-4b7e-4a55-9a43-0c1d1f6b7b10

        chatdb unarchive --user alice --dry-run
    """
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.archive import unarchive_conversations

    selection = ConversationFilter.build(
        users=user,
        conversation_ids=conversation,
        older_than=cutoff(older_than, before),
        since=since,
        allow_future=allow_future,
    )
    db = state(ctx).database()
    with out.JobProgress(quiet=quiet or as_json) as bar:
        result = unarchive_conversations(
            db, selection, batch_size=batch_size, dry_run=dry_run, wait=wait, progress=bar.callback
        )
    _render(result, as_json)


def _render(result: Any, as_json: bool) -> None:
    verb = "archived" if result.job == "archive" else "made active"
    if result.dry_run:
        pairs = [
            ("Database", result.database),
            ("Would be " + verb, result.matched),
            ("Their messages", result.messages),
        ]
        out.job_summary(result, pairs, as_json=as_json, title=f"{result.job} (dry run: nothing changed)")
        if not as_json and result.sample:
            out.screen().line()
            out.table(
                [Column("Conversation", "id"), Column("User", "id"), Column("Last activity", "time")],
                [(s.id, s.user_id, s.updated_at) for s in result.sample],
                title=f"First {len(result.sample)} of {result.matched:,}, oldest activity first",
            )
        return
    pairs = [
        ("Database", result.database),
        ("Matched", result.matched),
        (verb.capitalize(), result.changed),
        ("Skipped (in use, left for the next run)", result.skipped),
        ("Batches", result.batches),
        ("Duration", out.seconds(result.duration_seconds)),
        ("Rows/s", out.rate(result.rows_per_second)),
    ]
    out.job_summary(result, pairs, as_json=as_json, title=result.job)
    if result.skipped and not as_json:
        out.warn(f"{result.skipped:,} conversations were in use and were skipped; run it again to finish")


def register(app: typer.Typer) -> None:
    app.command("archive")(archive)
    app.command("unarchive")(unarchive)
