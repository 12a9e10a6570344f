"""`chatdb hold add | list | remove`: legal holds, which no chatdb job deletes past."""

from __future__ import annotations

from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption, count_param, instant_param

group = typer.Typer(
    name="hold",
    help="Add, list or remove legal holds: held conversations are never deleted (prune, erase).",
    no_args_is_help=True,
)


@group.command("add")
def hold_add(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", metavar="USER_ID", help="Hold every conversation of this user, now and later.", show_default=False
        ),
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation", metavar="ID", help="Hold this conversation: an id or a unique prefix.", show_default=False
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why (a case or ticket number): shown wherever rows are held back.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        object | None,
        typer.Option(
            "--until",
            metavar="DATE",
            parser=instant_param,
            help="The hold ends at this date/timestamp (default: until removed).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Hold a user's conversations, or one conversation, from deletion.

    Exactly one of --user and --conversation, which must exist. While the hold
    is current (no --until, or --until still ahead), prune and erase leave the
    held conversations alone and say so; archive may still archive them.

    Example:

        chatdb hold add --user u-123 --reason "litigation 2026-17"

        chatdb hold add --conversation 0197a3f2 --reason "ticket 4411" --until 2027-01-01
    """
    from chatdb.errors import UsageError
    from chatdb.holds import add_hold

    if reason is None:
        raise UsageError("hold add needs --reason TEXT")
    db = state(ctx).database()
    hold = add_hold(db, user=user, conversation=conversation, reason=reason, until=until)  # type: ignore[arg-type]
    if as_json:
        out.emit_json({"database": db.display_url, "hold": hold.as_dict()})
        return
    out.success(
        f"Added {hold.describe()} on {db.display_url}"
        + (f", until {hold.until.isoformat(sep=' ')}." if hold.until else ".")
    )


@group.command("list")
def hold_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every hold, current and expired.

    Example:

        chatdb hold list

        chatdb hold list --json
    """
    from chatdb.holds import list_holds

    db = state(ctx).database()
    found = list_holds(db)
    if as_json:
        out.emit_json(found.as_dict())
        return
    if not found.holds:
        out.info(f"No holds on {db.display_url}.")
        return
    out.table(
        ["Id", "On", "Reason", "Until", "Current", "Created", "By"],
        (
            [h.id, h.target, h.reason, h.until, "yes" if h.current else "expired", h.created_at, h.created_by]
            for h in found.holds
        ),
        title=f"holds on {db.display_url}",
    )


@group.command("remove")
def hold_remove(
    ctx: typer.Context,
    hold_id: Annotated[
        int, typer.Argument(metavar="HOLD_ID", parser=count_param(1), help="The hold's id (chatdb hold list).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Remove a hold: what it covered may be deleted from then on.

    Example:

        chatdb hold remove 3
    """
    from chatdb.holds import remove_hold

    db = state(ctx).database()
    hold = remove_hold(db, hold_id)
    if as_json:
        out.emit_json({"database": db.display_url, "removed": hold.as_dict()})
        return
    out.success(f"Removed {hold.describe()} from {db.display_url}.")


def register(app: typer.Typer) -> None:
    app.add_typer(group)
