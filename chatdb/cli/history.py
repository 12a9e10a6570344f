"""`chatdb history`: a conversation's transcript, oldest first."""

from __future__ import annotations

from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import AllOption, CsvOption, JsonOption, OutputFormat, limit_option, output_format


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
        typer.Option(
            "--after", metavar="MESSAGE_ID", help="Only messages newer than this message (the first N)."
        ),
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
    from chatdb.history import MESSAGE_COLUMNS, conversation_history

    mode = output_format(as_json, as_csv)
    page = conversation_history(
        state(ctx).database(), conversation, limit=None if show_all else limit, before=before, after=after
    )
    if mode is OutputFormat.JSON:
        out.emit_json(page)
        return
    if mode is OutputFormat.CSV:
        out.emit_csv(MESSAGE_COLUMNS, ([getattr(m, k) for k in MESSAGE_COLUMNS] for m in page.messages))
        return
    record = page.conversation
    out.key_values(
        [
            ("Conversation", record.id),
            ("User", record.user_id),
            ("Status", record.status),
            ("Created", record.created_at),
            ("Last activity", record.updated_at),
            ("Messages", f"{page.message_count} ({len(page.messages)} shown)"),
        ]
    )
    out.table(
        ["Time", "Role", "Message", "Metadata"],
        [(m.created_at, m.role, m.content, m.metadata) for m in page.messages],
        no_wrap={"Time", "Role"},
        ratios={"Message": 3, "Metadata": 1},
    )
    if page.has_older and page.messages:
        out.info(f"Older messages: chatdb history {record.id} --before {page.messages[0].id}")
    if page.has_newer and page.messages:
        out.info(f"Newer messages: chatdb history {record.id} --after {page.messages[-1].id}")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
