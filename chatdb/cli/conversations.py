"""`chatdb conversations`: list conversations, newest activity first."""

from __future__ import annotations

from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    AllOption,
    AllowFutureOption,
    BeforeOption,
    CsvOption,
    JsonOption,
    OlderThanOption,
    OutputFormat,
    SinceOption,
    StatusOption,
    UserOption,
    limit_option,
    output_format,
)
from chatdb.cli._output import Column

COLUMNS = [
    Column("ID", "id"),
    Column("User", "id"),
    Column("Status"),
    Column("Messages", "number"),
    Column("Last activity", "time"),
]


def conversations(
    ctx: typer.Context,
    user: UserOption = None,
    status: StatusOption = "all",
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
    allow_future: AllowFutureOption = False,
    limit: Annotated[int, limit_option("conversations")] = 50,
    show_all: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """List conversations with their message counts, newest activity first.

    Filters combine: --user (repeatable), --status, and last activity
    (updated_at) older than --older-than/--before or at/after --since.

    Example:

        chatdb conversations --user u_123 --status active --since 30d

        chatdb conversations --older-than 90d --all --csv > stale.csv
    """
    from chatdb.filters import ConversationFilter
    from chatdb.reports.conversations import LISTING_FIELDS, iter_conversations, list_conversations
    from chatdb.timeparse import cutoff

    mode = output_format(as_json, as_csv)
    selection = ConversationFilter.build(
        users=user,
        status=status,
        older_than=cutoff(older_than, before),
        since=since,
        allow_future=allow_future,
    )
    app = state(ctx)
    db = app.database()
    if show_all and mode is not OutputFormat.JSON:
        # Streamed: `--all` of millions of rows needs no more memory than of ten.
        streamed = iter_conversations(db, selection)
        if mode is OutputFormat.CSV:
            out.emit_csv(LISTING_FIELDS, ([getattr(c, k) for k in LISTING_FIELDS] for c in streamed))
            return
        with out.paged(app.no_pager):
            drawn = out.table(COLUMNS, ((c.id, c.user_id, c.status, c.messages, c.updated_at) for c in streamed))
        if not drawn:
            out.info("No conversations match.")
        return
    listing = list_conversations(db, selection, limit=None if show_all else limit)
    found = listing.conversations
    if mode is OutputFormat.JSON:
        out.emit_json(listing)
    elif mode is OutputFormat.CSV:
        out.emit_csv(LISTING_FIELDS, ([getattr(c, k) for k in LISTING_FIELDS] for c in found))
    elif found:
        with out.paged(app.no_pager):
            out.table(COLUMNS, [(c.id, c.user_id, c.status, c.messages, c.updated_at) for c in found])
    if not found:
        out.info("No conversations match.")
    elif listing.more:
        out.info(f"Showing the {len(found):,} with the newest activity; there are more (raise --limit, or --all).")


def register(app: typer.Typer) -> None:
    app.command("conversations")(conversations)
