"""`chatdb erase`: delete every conversation and message of one user, with a receipt."""

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
from chatdb.cli._options import BatchSizeOption, JsonOption, QuietOption, WaitOption, YesOption
from chatdb.errors import UsageError
from chatdb.jobs.runner import DEFAULT_BATCH_SIZE


def erase(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", metavar="USER_ID", help="The user whose conversations and messages to erase.", show_default=False
        ),
    ] = None,
    export_to: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="FILE",
            help="First write (and verify) a jsonl export of the user's rows; .gz compresses. "
            "FILE must not exist (unless --resume).",
            show_default=False,
        ),
    ] = None,
    no_export: Annotated[
        bool, typer.Option("--no-export", help="Erase without an export (never the default).")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Finish an interrupted erase from its own --export FILE."),
    ] = False,
    receipt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            metavar="PATH",
            help="Where to write the receipt (default: the export's name + .receipt.json).",
            show_default=False,
        ),
    ] = None,
    yes: YesOption = False,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    wait: WaitOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a user's conversations and messages (active ones too), with a receipt.

    Refused if a legal hold covers any of them. With --export, the rows are
    exported and the file verified before anything is deleted, and only rows
    still byte for byte as exported are deleted. The receipt (JSON, mode 0600)
    says what was deleted: counts and sha256 of the ids per table, the
    export's sha256, the database and the time. The users row is the
    application's and is not deleted. Asks on a terminal; needs --yes otherwise.

    Example:

        chatdb erase --user u-123 --export erase-u-123.jsonl.gz --yes

        chatdb erase --user u-123 --no-export --receipt erase-u-123.receipt.json --yes
    """
    from chatdb.jobs.erase import erase_user

    if user is None:
        raise UsageError("erase needs --user USER_ID")
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if not (yes or interactive):
        raise UsageError("erase deletes rows and stdin is not a terminal; pass --yes to confirm")
    if export_to is not None and not resume:
        from chatdb.cli.export import check_output

        check_output(export_to, "--export")
    db = state(ctx).database()

    with out.JobProgress(quiet=quiet or as_json) as bar, finishing(user, receipt):

        def confirm(plan: Any) -> bool:  # a PrunePlan
            with bar.suspended():
                return typer.confirm(
                    f"Erase user {user}: delete {plan.conversations:,} conversations and {plan.messages:,} "
                    f"messages from {plan.database}?",
                    err=True,
                )

        result = erase_user(
            db,
            user,
            export_to=export_to,
            no_export=no_export,
            resume=resume,
            receipt=receipt,
            confirm=None if yes else confirm,
            batch_size=batch_size,
            wait=wait,
            progress=bar.callback,
        )
    d = result.deletion
    pairs = [
        ("Database", d.plan.database),
        ("User", result.user),
        ("Deleted conversations", d.deleted_conversations),
        ("Deleted messages", d.deleted_messages),
    ]
    if d.export is not None or resume:
        pairs += [("Export", export_to), ("Export verified", "yes" if d.export_verified else "no")]
    pairs += [
        ("Kept: in use by the application", d.in_use),
        ("Kept: changed since the export", d.changed),
        ("Remaining conversations", result.remaining_conversations),
        ("Receipt", result.receipt_path),
        ("Users row", "not deleted (it belongs to the application)"),
        ("Duration", out.seconds(result.duration_seconds)),
    ]
    out.job_summary(result, pairs, as_json=as_json, title="erase")
    if not result.complete and not as_json:
        out.warn(
            f"{result.remaining_conversations:,} conversations of {result.user} are left (in use, changed or "
            "held while erase ran); run erase again"
        )


@contextmanager
def finishing(user: str, receipt: Path | None) -> Iterator[None]:
    """An unfinished erase with an export ends with the exact command that finishes it."""
    from chatdb.errors import ChatdbError

    try:
        yield
    except ChatdbError as exc:
        export = exc.resume_from
        if export is None:
            raise
        words = ["chatdb", "erase", "--user", user, "--export", str(export), "--resume"]
        if receipt is not None:
            words += ["--receipt", str(receipt)]
        exc.reword(
            f"{exc.stopped}; the export is complete, finish with: {shlex.join([*words, '--yes'])}", parameters=()
        )
        raise


def register(app: typer.Typer) -> None:
    app.command("erase")(erase)
