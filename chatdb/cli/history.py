"""`chatdb history`: a conversation's transcript, oldest first."""

from __future__ import annotations

from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import AllOption, CsvOption, JsonOption, OutputFormat, limit_option, output_format
from chatdb.cli._output import Column


def history(
    ctx: typer.Context,
    conversation: Annotated[
        str,
        typer.Argument(
            metavar="CONVERSATION",
            help="A conversation id, or a unique prefix of one (at least 4 hex digits).",
            show_default=False,
        ),
    ],
    limit: Annotated[int, limit_option("messages (the latest ones)")] = 20,
    show_all: AllOption = False,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="MESSAGE_ID", help="Only messages older than this message."),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", metavar="MESSAGE_ID", help="Only messages newer than this message (the first N)."),
    ] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Show a conversation's messages in the order they were written.

    By default the latest 20; page back with --before (the oldest id shown)
    and forward with --after (the newest id shown).

    Example:

        chatdb history 3f2a9c1d

        chatdb history 3f2a9c1d-5b6e-4c1a-9f00-1234567890ab --all --json
    """
    from chatdb.reports.history import check_page, conversation_history
    from chatdb.repositories.statements import MESSAGE_FIELDS

    mode = output_format(as_json, as_csv)
    wanted = None if show_all else limit
    check_page(limit=wanted, before=before, after=after)  # usage errors before any connection
    app = state(ctx)
    page = conversation_history(app.database(), conversation, limit=wanted, before=before, after=after)
    if mode is OutputFormat.JSON:
        out.emit_json(page)
    elif mode is OutputFormat.CSV:
        out.emit_csv(MESSAGE_FIELDS, ([getattr(m, k) for k in MESSAGE_FIELDS] for m in page.messages))
    else:
        record = page.conversation
        with out.paged(app.no_pager):
            out.key_values(
                [
                    ("Conversation", record.id),
                    ("User", record.user_id),
                    ("Status", record.status),
                    ("Created", record.created_at),
                    ("Last activity", record.updated_at),
                    ("Messages", f"{page.message_count:,} ({len(page.messages):,} shown)"),
                ]
            )
            if page.messages:
                out.screen().line()
            out.table(
                MESSAGE_TABLE,
                [(m.created_at, m.role, m.id, m.content, m.metadata) for m in page.messages],
                transcript=True,
            )
    # The next pages' commands, on stderr in every mode (the cursors are in the JSON too).
    source = ctx.get_parameter_source("limit")
    same_size = f" -n {limit}" if source is not None and source.name != "DEFAULT" and not show_all else ""
    if page.older_cursor is not None:
        out.info(f"Older messages: chatdb history {page.conversation.id} --before {page.older_cursor}{same_size}")
    if page.newer_cursor is not None:
        out.info(f"Newer messages: chatdb history {page.conversation.id} --after {page.newer_cursor}{same_size}")


MESSAGE_TABLE = [
    Column("Time", "time"),
    Column("Role"),
    Column("ID", "id"),
    Column("Message", "text", weight=3),
    Column("Metadata", "text"),
]


def register(app: typer.Typer) -> None:
    app.command("history")(history)
