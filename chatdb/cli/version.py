"""`chatdb version`: chatdb's version, and the server's and the schema's when a database is reachable."""

from __future__ import annotations

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption


def version(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show chatdb's version, the server's version and the schema revision of the database.

    `chatdb --version` prints chatdb's own version without connecting.

    Example:

        chatdb version --json
    """
    import platform

    import chatdb
    from chatdb import migrations

    db = state(ctx).database()
    server = db.server_version()
    revision = migrations.current(db)
    report = {
        "chatdb": chatdb.__version__,
        "python": platform.python_version(),
        "database": db.display_url,
        "server_version": server,
        "schema_revision": revision,
        "schema_head": migrations.head(),
    }
    if as_json:
        out.emit_json(report)
        return
    out.key_values(
        [
            ("chatdb", chatdb.__version__),
            ("Python", report["python"]),
            ("Database", report["database"]),
            ("Server", f"PostgreSQL {server}"),
            ("Schema revision", f"{revision or 'base (chatdb not installed)'} (newest: {report['schema_head']})"),
        ]
    )


def register(app: typer.Typer) -> None:
    app.command("version")(version)
