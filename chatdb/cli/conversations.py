"""`chatdb conversations`: list conversations, newest activity first."""

from __future__ import annotations

from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    AllOption,
    BeforeOption,
    CsvOption,
    JsonOption,
    OlderThanOption,
    OutputFormat,
    SinceOption,
    StatusChoice,
    StatusOption,
    UserOption,
    limit_option,
    output_format,
)


def conversations(
    ctx: typer.Context,
    user: UserOption = None,
    status: StatusOption = StatusChoice.ALL,
    older_than: OlderThanOption = None,
    before: BeforeOption = None,
    since: SinceOption = None,
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
    from chatdb.reports import CONVERSATION_COLUMNS, iter_conversations, list_conversations
    from chatdb.timeparse import cutoff

    mode = output_format(as_json, as_csv)
    selection = ConversationFilter.build(
        users=user, status=status.value, older_than=cutoff(older_than, before), since=since
    )
    db = state(ctx).database()
    if mode is OutputFormat.CSV and show_all:
        # Streamed: `--all --csv` of millions of rows needs no more memory than of ten.
        streamed = iter_conversations(db, selection)
        out.emit_csv(CONVERSATION_COLUMNS, ([getattr(c, k) for k in CONVERSATION_COLUMNS] for c in streamed))
        return
    listing = list_conversations(db, selection, limit=None if show_all else limit)
    found = listing.conversations
    if mode is OutputFormat.JSON:
        out.emit_json(listing)
    elif mode is OutputFormat.CSV:
        out.emit_csv(CONVERSATION_COLUMNS, ([getattr(c, k) for k in CONVERSATION_COLUMNS] for c in found))
    else:
        out.table(
            ["ID", "User", "Status", "Messages", "Last activity"],
            [(c.id, c.user_id, c.status, c.messages, c.updated_at) for c in found],
            justify={"Messages": "right"},
            no_wrap={"ID", "Last activity"},
        )
    if not listing.conversations:
        out.info("No conversations match.")
    elif listing.more:
        out.info(
            f"Showing the {len(listing.conversations)} with the newest activity; "
            "there are more (raise --limit, or --all)."
        )


def register(app: typer.Typer) -> None:
    app.command("conversations")(conversations)
