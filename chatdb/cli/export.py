"""`chatdb export`: conversations with their messages, to a file or stdout."""

from __future__ import annotations

import sys
from pathlib import Path
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
    StatusOption,
    UserOption,
    WaitOption,
)
from chatdb.errors import UsageError
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE
from chatdb.timeparse import cutoff

OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write to FILE (atomically, mode 0600, with FILE.manifest.json); .gz compresses. - or no -o: stdout.",
        show_default=False,
    ),
]
ManifestOption = Annotated[
    Path | None,
    typer.Option(
        "--manifest",
        metavar="FILE",
        help="With stdout output: also write the manifest (counts, SHA-256 of the bytes written) to FILE.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="jsonl (one conversation per line), json or csv (one row per message). "
        "Default: from FILE's name, else jsonl.",
        show_default=False,
    ),
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


def removed_line(result: Any) -> str:  # an ExportResult or PruneResult
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
    manifest: ManifestOption = None,
    format: FormatOption = None,
    user: UserOption = None,
    status: StatusOption = "all",
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
    allow_future: AllowFutureOption = False,
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

    target = _output_path(output)
    fmt = check_format(format_for(target, format))
    if as_json and target is None:
        raise UsageError("--json needs -o FILE: without it, stdout carries the export itself")
    if manifest is not None and target is not None:
        raise UsageError(f"--manifest is for stdout output: the manifest of -o FILE is {target}.manifest.json")
    if manifest is not None and (str(manifest).strip() == "" or manifest.is_dir()):
        raise UsageError("--manifest needs a file name")
    if target is not None:
        check_output(target, "-o", stdout_hint=True)
    if manifest is not None:
        check_output(manifest, "--manifest")
    selection = ConversationFilter.build(
        users=user,
        status=status,
        older_than=cutoff(older_than, before),
        since=since,
        conversation_ids=conversation,
        allow_future=allow_future,
    )
    db = state(ctx).database()
    with out.JobProgress(quiet=quiet or as_json) as bar:
        result = export_conversations(
            db,
            selection,
            target if target is not None else sys.stdout.buffer,
            format=fmt,
            batch_size=batch_size,
            wait=wait,
            progress=bar.callback,
        )
    if result.removed_temporaries and not as_json:
        out.info(removed_line(result))
    if target is None:
        if manifest is not None:
            from chatdb.jobs.atomic_files import write_json_atomically

            write_json_atomically(manifest, result.manifest_data())
        if not quiet:
            out.info(
                f"Exported {result.conversations:,} conversations and {result.messages:,} messages"
                f" ({out.human_bytes(result.bytes)}, SHA-256 {result.sha256})."
                if result.sha256
                else f"Exported {result.conversations:,} conversations and {result.messages:,} messages."
            )
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
            ("Size", out.human_bytes(result.bytes)),
            ("SHA-256", result.sha256),
            ("Duration", out.seconds(result.duration_seconds)),
            ("Rows/s", out.rate(result.rows_per_second)),
        ],
        as_json=as_json,
        title="export",
    )


def _output_path(output: str | None) -> Path | None:
    """``-o FILE`` as a path; None for stdout (no ``-o``, or ``-o -``)."""
    if output is None or output == "-":
        return None
    if not output.strip():
        raise UsageError("--output: needs a file name, or - for stdout")
    return Path(output)  # what it may name is the library's check (check_destination)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
