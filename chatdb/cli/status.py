"""`chatdb status`: where the schema stands and how many rows chatdb's tables hold."""

from __future__ import annotations

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption
from chatdb.cli._output import Column


def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the current and newest revision, pending migrations, and row counts.

    Example:

        chatdb status --json
    """
    from chatdb.reports.status import schema_status

    report = schema_status(state(ctx).database())
    if as_json:
        out.emit_json(report)
        return
    out.key_values(
        [
            ("Database", report.database),
            ("Server", f"PostgreSQL {report.server_version}"),
            ("Current revision", report.current or "base (chatdb not installed)"),
            ("Newest revision", report.head),
            ("Up to date", "yes" if report.up_to_date else "no"),
        ]
    )
    if report.pending:
        out.screen().line()
        out.table(
            [Column("Pending", "id"), Column("Description", "text")],
            [(rev.id, rev.description) for rev in report.pending],
            title="Pending migrations (run: chatdb migrate)",
        )
    out.screen().line()
    out.table(
        [Column("Table", "id"), Column("Rows", "number")],
        [(t.name, t.rows if t.exists else "missing") for t in report.tables],
    )


def register(app: typer.Typer) -> None:
    app.command("status")(status)
