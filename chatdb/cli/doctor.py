"""`chatdb doctor`: check the connection, the server and the schema, each pass/warn/fail."""

from __future__ import annotations

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption
from chatdb.cli._output import Column
from chatdb.errors import ChecksFailedError


def doctor(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check that chatdb can work with the database, and say what is wrong if not.

    Checks the connection, the server version (13 or newer), that the
    migrations are at the newest revision, the application's users table,
    and the live tables against chatdb's models: columns, keys, CHECK
    constraints and indexes. Each check passes, warns or fails; any failure
    makes the exit code 1.

    Example:

        chatdb doctor

        chatdb doctor --json | jq '.checks[] | select(.status != "pass")'
    """
    from chatdb.reports.doctor import diagnose

    report = diagnose(state(ctx).database())
    if as_json:
        out.emit_json(report)
    else:
        rows = [
            (check.status.upper(), check.name, "\n".join([check.detail, *(f"- {p}" for p in check.problems)]))
            for check in report.checks
        ]
        out.table(
            [Column("Result"), Column("Check", "id"), Column("Detail", "text")],
            rows,
            title=report.database,
            transcript=True,
        )
    failed = [check.name for check in report.checks if check.status == "fail"]
    if failed:
        raise ChecksFailedError(f"{len(failed)} check(s) failed: {', '.join(failed)}")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
