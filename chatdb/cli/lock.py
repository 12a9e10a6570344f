"""`chatdb lock status` and `chatdb lock break`: the maintenance lease that keeps jobs apart."""

from __future__ import annotations

import sys
from typing import Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption, YesOption

group = typer.Typer(
    name="lock",
    help="Show or break the maintenance lock (the lease a running job holds).",
    no_args_is_help=True,
)


def _holder_pairs(holder: Any) -> list[tuple[str, object]]:  # a LeaseHolder
    expiry = (
        f"in {holder.expires_in:.0f} s unless renewed"
        if holder.expires_in >= 0
        else f"{-holder.expires_in:.0f} s ago (the next job takes it over)"
    )
    return [
        ("Held by", f"{holder.job} (pid {holder.pid} on host {holder.host})"),
        ("Since", holder.started_at),
        ("Last heartbeat", f"{holder.heartbeat_age:.0f} s ago"),
        ("Expires", expiry),
    ]


@group.command("status")
def lock_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show which job holds the maintenance lock, since when, and its last heartbeat.

    A running job renews its lease every few seconds (CHATDB_JOB_LEASE_TTL,
    default 30s, divided by three). A job killed with kill -9 leaves its lease
    until it expires, or until `chatdb lock break` removes it.

    Example:

        chatdb lock status

        chatdb lock status --json
    """
    from chatdb.jobs.lease import lease_status

    db = state(ctx).database()
    holder = lease_status(db)
    if as_json:
        out.emit_json(
            {"database": db.display_url, "held": holder is not None, "holder": holder.as_dict() if holder else None}
        )
        return
    if holder is None:
        out.info(f"The maintenance lock on {db.display_url} is free.")
        return
    out.key_values([("Database", db.display_url), *_holder_pairs(holder)], title="maintenance lock")


@group.command("break")
def lock_break(ctx: typer.Context, yes: YesOption = False, as_json: JsonOption = False) -> None:
    """Remove the maintenance lock now, for a job that died without giving it back.

    Use it when `chatdb lock status` names a job that no longer runs (its host
    is gone, or it was killed with kill -9); otherwise the lease expires by
    itself one time-to-live after its last heartbeat. If the job is still
    running, it stops before its next batch (finished batches are kept), and
    a batch it is running finishes first. Asks on a terminal; needs --yes
    otherwise.

    Example:

        chatdb lock break --yes
    """
    from chatdb.errors import UsageError
    from chatdb.jobs.lease import break_lease, lease_status

    db = state(ctx).database()
    if not yes:
        holder = lease_status(db)
        if holder is None:
            out.info(f"The maintenance lock on {db.display_url} is free; nothing to break.")
            return
        if not sys.stdin.isatty():
            raise UsageError(f"breaking the lock of {holder.describe()} on {db.display_url} needs --yes off a terminal")
        typer.confirm(f"Break the maintenance lock of {holder.describe()} on {db.display_url}?", abort=True, err=True)
    holder = break_lease(db)
    if as_json:
        out.emit_json(
            {"database": db.display_url, "broken": holder is not None, "holder": holder.as_dict() if holder else None}
        )
        return
    if holder is None:
        out.info(f"The maintenance lock on {db.display_url} was free; nothing to break.")
    else:
        out.success(f"Broke the maintenance lock of {holder.describe()} on {db.display_url}.")


def register(app: typer.Typer) -> None:
    app.add_typer(group)
