"""`chatdb import`: restore conversations from an export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    BatchSizeOption,
    JsonOption,
    QuietOption,
    WaitOption,
    _completer,
    choice_param,
    dry_run_option,
)
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE

SOURCES = ("chatdb", "chatgpt", "claude", "openwebui")
LONG = ("skip", "split", "truncate")

DryRunOption = Annotated[
    bool, dry_run_option("the result of checking the whole file and the exact counts it would insert")
]


def import_file(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A jsonl or jsonl.gz file written by chatdb export (- reads stdin), or with --from another tool's export.",
        ),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            metavar="MANIFEST",
            help="Check the input against this manifest (default: FILE.manifest.json beside the file, if any).",
            show_default=False,
        ),
    ] = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    source_format: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="TOOL",
            parser=choice_param(SOURCES),
            autocompletion=_completer(SOURCES),
            help="The file's format: chatdb (an export of chatdb, the default), chatgpt, claude or openwebui.",
        ),
    ] = "chatdb",
    owner: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER_ID",
            show_default=False,
            help="With --from chatgpt|claude|openwebui: the app's user who will own the conversations.",
        ),
    ] = None,
    long_user_messages: Annotated[
        str,
        typer.Option(
            "--long-user-messages",
            metavar="HOW",
            parser=choice_param(LONG),
            autocompletion=_completer(LONG),
            help="With --from a tool: user messages over 1,000 characters are skipped (counted), split or truncated.",
        ),
    ] = "skip",
    dry_run: DryRunOption = False,
    wait: WaitOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Restore conversations and messages from an export, exactly (ids, timestamps, metadata).

    The whole file is checked first, by PostgreSQL, and against
    FILE.manifest.json when it is there; a bad line or a conflict with the
    rows already there stops the import with its line number and nothing
    written. Conversations and messages that already exist exactly as in the
    file are skipped and counted, so importing twice is safe.

    With --from chatgpt, claude or openwebui, FILE is that tool's export
    (its conversations.json, the export's .zip, or Open WebUI's chat export)
    and --user names who owns the conversations. Ids are derived from the
    tool's ids, so importing the same or a newer export again adds only what
    is new; system and tool messages and non-text parts are skipped and
    counted.

    Example:

        chatdb import pruned-2026-01.jsonl.gz --dry-run

        chatdb import chatgpt-export.zip --from chatgpt --user 42

        ssh backup cat p.jsonl.gz | chatdb import - --manifest p.jsonl.gz.manifest.json
    """
    import sys

    from chatdb.errors import UsageError
    from chatdb.jobs.importing import import_conversations

    if source_format != "chatdb":
        if owner is None:
            raise UsageError(f"--from {source_format} needs --user: the app's user who will own the conversations")
        if manifest is not None or str(file) == "-":
            raise UsageError(f"--from {source_format} reads a file (not stdin) and has no manifest")
        _import_from_tool(ctx, file, source_format, owner, long_user_messages, dry_run, wait, as_json)
        return
    if owner is not None or long_user_messages != "skip":
        raise UsageError("--user and --long-user-messages go with --from chatgpt, claude or openwebui")
    source = sys.stdin.buffer if str(file) == "-" else file
    db = state(ctx).database()
    with out.JobProgress(quiet=quiet or as_json) as bar:
        result = import_conversations(
            db, source, manifest=manifest, batch_size=batch_size, dry_run=dry_run, wait=wait, progress=bar.callback
        )
    verb = "Would insert" if dry_run else "Inserted"
    out.job_summary(
        result,
        [
            ("Database", result.database),
            ("File", result.path),
            ("Manifest checked", result.manifest if result.manifest_checked else "no (no manifest found)"),
            ("Conversations in file", result.conversations),
            ("Messages in file", result.messages),
            (f"{verb} conversations", result.inserted_conversations),
            (f"{verb} messages", result.inserted_messages),
            ("Already present conversations (skipped)", result.existing_conversations),
            ("Already present messages (skipped)", result.existing_messages),
            ("Batches", result.batches),
            ("Duration", out.seconds(result.duration_seconds)),
            ("Rows/s", out.rate(result.rows_per_second)),
        ],
        as_json=as_json,
        title="import (dry run: nothing written)" if dry_run else "import",
    )


def _import_from_tool(
    ctx: typer.Context,
    file: Path,
    tool: str,
    owner: str,
    long_user_messages: str,
    dry_run: bool,
    wait: float | None,
    as_json: bool,
) -> None:
    from chatdb.jobs.importers import import_export

    result = import_export(
        state(ctx).database(),
        file,
        tool=tool,
        owner=owner,
        long_user_messages=long_user_messages,
        dry_run=dry_run,
        wait=wait,
    )
    verb = "Would insert" if dry_run else "Inserted"
    skipped = ", ".join(f"{n:,} {reason.replace('_', ' ')}" for reason, n in sorted(result.skipped.items()))
    changed = ", ".join(f"{n:,} {how}" for how, n in sorted(result.reshaped.items()))
    out.job_summary(
        result,
        [
            ("Database", result.database),
            ("File", result.path),
            ("From", result.tool),
            ("Owner", result.user),
            ("Conversations in file", result.conversations),
            ("Messages in file", result.messages),
            (f"{verb} conversations", result.inserted_conversations),
            (f"{verb} messages", result.inserted_messages),
            ("Already present conversations (skipped)", result.existing_conversations),
            ("Already present messages (skipped)", result.existing_messages),
            ("Not imported", skipped or "nothing"),
            (f"Long user messages ({result.long_user_messages})", changed or "none split or truncated"),
            ("Duration", out.seconds(result.duration_seconds)),
        ],
        as_json=as_json,
        title="import (dry run: nothing written)" if dry_run else "import",
    )


def register(app: typer.Typer) -> None:
    app.command("import")(import_file)
