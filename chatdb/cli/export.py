"""`chatdb export`: conversations with their messages, to a file or stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    BatchSizeOption,
    BeforeOption,
    ConversationOption,
    JsonOption,
    OlderThanOption,
    QuietOption,
    SinceOption,
    UserOption,
    WaitOption,
)
from chatdb.timeparse import cutoff
from chatdb.errors import UsageError
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE

OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write to FILE (atomically, mode 0600, with FILE.manifest.json); .gz compresses. "
        "Default: stdout.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", metavar="FORMAT",
        help="jsonl (one conversation per line), json or csv (one row per message). "
        "Default: from FILE's name, else jsonl.",
        show_default=False,
    ),
]
StatusOption = Annotated[
    str, typer.Option("--status", metavar="STATUS", help="active, archived or all.")
]


def check_output(path: Path, option: str, *, stdout_hint: bool = False) -> None:
    """Refuse, before any connection, a file option naming something chatdb will not write."""
    from chatdb.errors import DestinationError
    from chatdb.jobs.atomic_files import check_destination

    try:
        check_destination(path)
    except DestinationError as exc:
        hint = f"; use {option} - for stdout" if stdout_hint and "regular file" in exc.reason else ""
        raise UsageError(f"{option} {exc.path}: {exc.reason}{hint}") from None


def removed_line(result) -> str:
    """The one line saying that stale temporaries of killed runs were deleted."""
    n = result.removed_temporaries
    where = Path(result.path).parent if result.path else "the destination directory"
    return f"Removed {n} stale temporary file{'s' if n != 1 else ''} left in {where} by chatdb runs that were killed."


def format_for(output: Path | None, chosen: str | None) -> str:
    if chosen is not None:
        return chosen
    name = output.name.removesuffix(".gz") if output is not None else ""
    for suffix, fmt in ((".jsonl", "jsonl"), (".json", "json"), (".csv", "csv")):
        if name.endswith(suffix):
            return fmt
    return "jsonl"


def export(
    ctx: typer.Context,
    output: OutputOption = None,
    format: FormatOption = None,
    user: UserOption = None,
    status: StatusOption = "all",
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
    conversation: ConversationOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    wait: WaitOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export conversations with their messages (jsonl, json or csv), streamed.

    Every column is kept: ids, timestamps with their offset, metadata as JSON.
    The file appears under its name only when complete; `chatdb import` reads
    jsonl and jsonl.gz back.

    Example:

        chatdb export -o archive-2025.jsonl.gz --status archived --before 2025-01-01

        chatdb export --user alice --format csv > alice.csv
    """
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.export import check_format, export_conversations

    fmt = check_format(format_for(output, format))
    if as_json and output is None:
        raise UsageError("--json needs -o FILE: without it, stdout carries the export itself")
    if output is not None:
        check_output(output, "-o", stdout_hint=True)
    selection = ConversationFilter.build(
        users=user, status=status, older_than=cutoff(older_than, before), since=since,
        conversation_ids=conversation,
    )
    db = state(ctx).database()
    with out.JobProgress(quiet=quiet or as_json) as bar:
        result = export_conversations(
            db, selection, output if output is not None else sys.stdout.buffer,
            format=fmt, batch_size=batch_size, wait=wait, progress=bar.callback,
        )
    if result.removed_temporaries and not as_json:
        out.info(removed_line(result))
    if output is None:
        if not quiet:
            out.info(f"Exported {result.conversations} conversations and {result.messages} messages.")
        return
    out.job_summary(
        result,
        [
            ("Database", result.database),
            ("File", result.path),
            ("Manifest", result.manifest),
            ("Format", result.format),
            ("Conversations", result.conversations),
            ("Messages", result.messages),
            ("Bytes", result.bytes),
            ("SHA-256", result.sha256),
            ("Duration", f"{result.duration_seconds:.2f}s"),
            ("Rows/s", result.rows_per_second),
        ],
        as_json=as_json,
        title="export",
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
