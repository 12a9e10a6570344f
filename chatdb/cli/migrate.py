"""`chatdb migrate`: move chatdb's schema to a revision."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption, YesOption
from chatdb.errors import UsageError


def migrate(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(metavar="TARGET", help="Revision to move to: head (default), base, or a revision id."),
    ] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it (for review).")] = False,
    from_revision: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="REVISION",
            help="With --sql: the revision to start from (base, or an id); default is the database's current revision.",
        ),
    ] = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Upgrade (or downgrade) chatdb's tables to a revision.

    With no TARGET, applies every pending migration; running it again is a
    no-op. `base` removes chatdb's own tables (and their rows). Tables that
    belong to the existing application, and its alembic_version, are never
    touched: chatdb records its history in chatdb_alembic_version.

    Example:

        chatdb migrate

        chatdb migrate --sql --from base > chatdb.sql

        chatdb migrate 001 --yes
    """
    from chatdb import migrations

    if from_revision is not None and not sql:
        raise UsageError("--from is only used with --sql")
    app_state = state(ctx)

    if sql:
        start = migrations.resolve_target(from_revision) if from_revision else None
        if from_revision is None:
            start = migrations.current(app_state.database())
        sys.stdout.write(migrations.migration_sql(target, start))
        return

    db = app_state.database()
    wanted = migrations.resolve_target(target)
    planned = migrations.plan(migrations.current(db), wanted)
    if planned.direction == "downgrade" and not yes:
        steps = ", ".join(step.id for step in planned.steps)
        if not sys.stdin.isatty():
            raise UsageError(
                f"downgrading {db.display_url} undoes {steps} and deletes their tables' rows; pass --yes to confirm"
            )
        typer.confirm(
            f"Downgrade {db.display_url} to {wanted or 'base'} (undoes {steps}, deleting their rows)?",
            abort=True,
            err=True,
        )

    result = migrations.migrate(db, target)
    if as_json:
        out.emit_json({"database": db.display_url, **result.as_dict()}, ok=True)
        return
    if result.plan.direction == "none":
        out.info(f"{db.display_url} is already at {result.revision or 'base'}; nothing to do.")
        return
    verb = "Upgraded" if result.plan.direction == "upgrade" else "Downgraded"
    out.success(f"{verb} {db.display_url} from {result.plan.current or 'base'} to {result.revision or 'base'}.")
    for step in result.plan.steps:
        out.info(f"  {step.id}  {step.description}")
    for left in result.remaining:
        out.info(f"Left in place: {left}")


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
