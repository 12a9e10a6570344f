"""`chatdb search`: find messages by what was said; build or drop the optional search index."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import (
    CsvOption,
    InstantArg,
    JsonOption,
    OutputFormat,
    WaitOption,
    instant_param,
    limit_option,
    output_format,
)
from chatdb.cli._output import Column

HIT_TABLE = [
    Column("Time", "time"),
    Column("Role"),
    Column("Conversation", "id"),
    Column("User", "id"),
    Column("Snippet", "text", weight=3),
]


def search(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="QUERY",
            help='Words to find, as a web search reads them: "a phrase", -word to exclude, or for either.',
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", metavar="USER_ID", help="Only this user's messages.", show_default=False)
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            metavar="ID",
            help="Only this conversation (an id or a unique prefix of one).",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role", metavar="ROLE", help="Only messages with this role: user or assistant.", show_default=False
        ),
    ] = None,
    since: Annotated[
        InstantArg | None,
        typer.Option(
            "--since",
            metavar="DATE",
            parser=instant_param,
            help="Only messages written at or after this date/timestamp (or duration ago).",
            show_default=False,
        ),
    ] = None,
    before: Annotated[
        InstantArg | None,
        typer.Option(
            "--before",
            metavar="DATE",
            parser=instant_param,
            help="Only messages written before this date/timestamp (or duration ago).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, limit_option("messages (the best ranked)")] = 20,
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor",
            metavar="CURSOR",
            help="The next page: the next_cursor a previous search gave.",
            show_default=False,
        ),
    ] = None,
    create_index: Annotated[
        bool, typer.Option("--create-index", help="Build the search index concurrently (writes go on), then exit.")
    ] = False,
    drop_index: Annotated[
        bool, typer.Option("--drop-index", help="Drop the search index concurrently, then exit.")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="CONFIG",
            help="With --create-index: the text search configuration (simple, english, …). [default: simple]",
            show_default=False,
        ),
    ] = None,
    wait: WaitOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Find messages by what was said, best match first, newest first among equals.

    PostgreSQL's full-text search reads QUERY like a web search: words,
    "quoted phrases", -word to leave out, or between alternatives. Matches
    in the snippet are marked «like this». Without the search index a
    search parses every message it could match, so on a large table it
    needs --user, --conversation, --since or --before; --create-index
    builds the index (CREATE INDEX CONCURRENTLY: the application keeps
    writing) and --drop-index removes it.

    Example:

        chatdb search '"give my dog grapes"' --since 30d

        chatdb search --create-index --config english
    """
    from chatdb.errors import UsageError
    from chatdb.reports.search import DEFAULT_CONFIG, SearchQuery, check_config

    mode = output_format(as_json, as_csv)
    if create_index or drop_index:
        if create_index and drop_index:
            raise UsageError("--create-index and --drop-index cannot be used together")
        if query is not None:
            raise UsageError("--create-index and --drop-index take no QUERY")
        if mode is OutputFormat.CSV:
            raise UsageError("--csv shows search results; use --json for the index's report")
        _change_index(ctx, create_index, check_config(config or DEFAULT_CONFIG), wait, as_json)
        return
    if config is not None:
        raise UsageError("--config goes with --create-index: searches use the index's configuration")
    if query is None:
        raise UsageError("give a QUERY to search for (see 'chatdb search --help')")
    request = SearchQuery(
        text=query,
        user=user,
        conversation=conversation,
        role=role,
        since=since,
        before=before,
        limit=limit,
        cursor=cursor,
    )
    request.check()
    _search(ctx, request, mode)


def _search(ctx: typer.Context, request: Any, mode: OutputFormat) -> None:  # a SearchQuery
    from chatdb.reports.search import HIT_COLUMNS, search_messages

    app = state(ctx)
    result = search_messages(app.database(), request)
    if result.scanned_estimate is not None:
        n = result.scanned_estimate
        out.info(
            f"No search index: scanning about {n:,} message{'' if n == 1 else 's'} "
            "(build the index with chatdb search --create-index)"
        )
    if mode is OutputFormat.JSON:
        out.emit_json(result)
    elif mode is OutputFormat.CSV:
        out.emit_csv(HIT_COLUMNS, ([getattr(h, k) for k in HIT_COLUMNS] for h in result.hits))
    else:
        with out.paged(app.no_pager):
            out.table(
                HIT_TABLE,
                [(h.created_at, h.role, h.conversation_id, h.user_id, h.snippet) for h in result.hits],
                transcript=True,
            )
    if not result.hits:
        out.info("No messages match.")
    if result.next_cursor is not None:
        out.info(f"More results: add --cursor {result.next_cursor}")


def _change_index(ctx: typer.Context, create: bool, config: str, wait: float | None, as_json: bool) -> None:
    from chatdb.jobs.search_index import create_search_index, drop_search_index
    from chatdb.reports.search import INDEX_NAME

    db = state(ctx).database()
    change = create_search_index(db, config=config, wait=wait) if create else drop_search_index(db, wait=wait)
    if change.before.exists and not change.before.valid:
        out.warn(
            "found an INVALID search index left by a failed build: dropped it"
            + (" and built it again" if create else "")
        )
    after = change.after
    out.job_summary(
        change,
        [
            ("Database", change.database),
            ("Index", INDEX_NAME),
            ("Action", change.action),
            ("Text search configuration", after.config if after.exists else change.before.config),
            ("Valid", after.valid if after.exists else None),
            ("Size", out.human_bytes(after.size_bytes) if after.exists else None),
            ("Duration", out.seconds(change.duration_seconds)),
        ],
        as_json=as_json,
        title="search index",
    )


def register(app: typer.Typer) -> None:
    app.command("search")(search)
