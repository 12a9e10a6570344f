"""`chatdb seed`: fill a database with realistic demo data, or remove it again."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption, WaitOption, YesOption, count_param
from chatdb.errors import UsageError


def _count(name: str, help: str) -> Any:
    return typer.Option(name, metavar="N", parser=count_param(1), help=help, show_default=False)


def seed(
    ctx: typer.Context,
    messages: Annotated[
        int | None, _count("--messages", "Messages to create (default: 20 per conversation, else 100000).")
    ] = None,
    conversations: Annotated[
        int | None, _count("--conversations", "Conversations to create (default: messages / 20).")
    ] = None,
    users: Annotated[int | None, _count("--users", "Users to create (default: conversations / 10).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Add demo data even though the database holds conversations.")
    ] = False,
    remove: Annotated[
        bool, typer.Option("--remove", help="Delete the demo users, conversations and messages instead.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --remove: count what would be deleted, delete nothing.")
    ] = False,
    batch: Annotated[
        int, typer.Option("--batch", metavar="N", parser=count_param(1), help="Messages per transaction.")
    ] = 50_000,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", metavar="N", parser=count_param(1), help="Batches written at once, each on its own connection."
        ),
    ] = 2,
    wait: WaitOption = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fill the database with realistic demo users, conversations and messages.

    Everything is generated inside PostgreSQL, one transaction per batch of
    whole conversations. Demo users have ids starting with chatdb-seed-;
    their conversations and messages are the demo data, and --remove deletes
    exactly those. Refuses a database that already holds conversations
    unless --force.

    Example:

        chatdb seed --messages 2000000

        chatdb seed --conversations 500 --users 50 --json

        chatdb seed --remove --yes
    """
    from chatdb.jobs import seed as seeding

    if remove:
        if messages or conversations or users or force:
            raise UsageError("--remove takes no --messages, --conversations, --users or --force")
        _remove(ctx, dry_run=dry_run, wait=wait, yes=yes, as_json=as_json)
        return
    if dry_run:
        raise UsageError("--dry-run is only used with --remove")
    scale = seeding.SeedScale.build(messages=messages, conversations=conversations, users=users)
    db = state(ctx).database()
    if not as_json and sys.stderr.isatty():
        out.info(
            f"Seeding {db.display_url} with {scale.users:,} users, {scale.conversations:,} conversations "
            f"and {scale.messages:,} messages."
        )
    with out.JobProgress(quiet=as_json) as bar:
        result = seeding.seed(db, scale, force=force, batch_messages=batch, jobs=jobs, wait=wait, progress=bar.callback)
    if as_json:
        out.emit_json(result, ok=True)
        return
    out.key_values(
        [
            ("Database", result.database),
            ("Users created", result.users),
            ("Conversations", result.conversations),
            ("Messages", result.messages),
            ("Very long conversations", result.long_conversations),
            ("Duration", out.seconds(result.duration_seconds)),
            ("Messages per second", out.rate(result.messages_per_second)),
        ]
    )
    out.success(f"Demo users' ids start with {result.user_prefix}; 'chatdb seed --remove' deletes them.")


def _remove(ctx: typer.Context, *, dry_run: bool, wait: float | None, yes: bool, as_json: bool) -> None:
    from chatdb.jobs import seed as seeding

    db = state(ctx).database()
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"removing the demo data from {db.display_url} deletes users whose id starts with "
                f"{seeding.SEED_USER_PREFIX}, with their conversations; pass --yes to confirm"
            )
        counted = seeding.remove_seed(db, dry_run=True)
        typer.confirm(
            f"Delete {counted.users:,} demo users, {counted.conversations:,} conversations and "
            f"{counted.messages:,} messages from {db.display_url}?",
            abort=True,
            err=True,
        )
    with out.JobProgress(quiet=as_json or dry_run) as bar:
        result = seeding.remove_seed(db, dry_run=dry_run, wait=wait, progress=bar.callback)
    if as_json:
        out.emit_json(result, ok=True)
        return
    verb = "Would delete" if dry_run else "Deleted"
    out.key_values(
        [
            ("Database", result.database),
            (f"{verb} users", result.users),
            (f"{verb} conversations", result.conversations),
            (f"{verb} messages", result.messages),
        ]
    )
    if result.skipped:
        out.warn(f"{result.skipped} seeded conversations were in use and were kept; run 'chatdb seed --remove' again")


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
