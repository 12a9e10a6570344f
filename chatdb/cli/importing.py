"""`chatdb import`: restore conversations from an export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import BatchSizeOption, JsonOption, QuietOption, WaitOption, dry_run_option
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE

DryRunOption = Annotated[
    bool, dry_run_option("the result of checking the whole file and the exact counts it would insert")
]


def import_file(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A jsonl or jsonl.gz file written by chatdb export; - reads stdin.")
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

    Example:

        chatdb import pruned-2026-01.jsonl.gz --dry-run

        ssh backup cat p.jsonl.gz | chatdb import - --manifest p.jsonl.gz.manifest.json
    """
    import sys

    from chatdb.jobs.importing import import_conversations

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


def register(app: typer.Typer) -> None:
    app.command("import")(import_file)
