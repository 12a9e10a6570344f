"""`chatdb embedded`: the local PostgreSQL chatdb uses when no URL is configured."""

from __future__ import annotations

import typer

from chatdb.cli import _output as out
from chatdb.cli._options import JsonOption

group = typer.Typer(
    name="embedded",
    help="Show, start or stop the embedded PostgreSQL used when no database URL is configured.",
    no_args_is_help=True,
)


@group.command("status")
def embedded_status(as_json: JsonOption = False) -> None:
    """Show where the embedded server keeps its data, whether it runs, its URL and its user.

    Example:

        chatdb embedded status
    """
    from chatdb import embedded

    report = embedded.status()
    if as_json:
        out.emit_json(report)
        return
    runs_as = report.run_as
    if runs_as == embedded.SYSTEM_USER:
        runs_as += " (PostgreSQL refuses to run as root; the embedded package creates this system user with useradd)"
    out.key_values(
        [
            ("Data directory", report.data_dir),
            ("Initialized", "yes" if report.initialized else "no"),
            ("PostgreSQL", report.version),
            ("Running", f"yes (pid {report.pid})" if report.running else "no"),
            ("URL", report.url or "chosen when it starts"),
            ("Runs as", runs_as),
        ]
    )


@group.command("start")
def embedded_start(as_json: JsonOption = False) -> None:
    """Start the embedded server (commands also start it on demand).

    Example:

        chatdb embedded start
    """
    from chatdb import embedded

    report = embedded.ensure_running()
    if as_json:
        out.emit_json(report, ok=True)
        return
    out.success(f"The embedded PostgreSQL is running (pid {report.pid}).")
    out.info(f"URL: {report.url}")


@group.command("url")
def embedded_url() -> None:
    """Print the embedded server's URL, starting it if needed (psql and chatdb both take it).

    Example:

        psql "$(chatdb embedded url)"
    """
    from chatdb import embedded

    typer.echo(embedded.ensure_running().url)


@group.command("stop")
def embedded_stop() -> None:
    """Stop the embedded server; its data stays in the data directory.

    Example:

        chatdb embedded stop
    """
    from chatdb import embedded

    if embedded.stop():
        out.success("Stopped the embedded PostgreSQL.")
    else:
        out.info("The embedded PostgreSQL was not running.")


def register(app: typer.Typer) -> None:
    app.add_typer(group)
