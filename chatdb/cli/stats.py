"""`chatdb stats`: sizes, counts, activity, busiest users, index use and slow statements."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption, count_param
from chatdb.cli._output import Column


def stats(
    ctx: typer.Context,
    top: Annotated[
        int,
        typer.Option(
            "--top", metavar="N", parser=count_param(1), help="How many busiest users and slowest statements."
        ),
    ] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show the size and contents of chatdb's tables and how the server uses them.

    Rows and on-disk size of each table and index, conversations by status,
    messages by role, oldest and newest activity, the busiest users, index
    usage (pg_stat_user_indexes) and, when pg_stat_statements is available,
    the slowest statements on chatdb's tables. Row counts are exact: on very
    large tables this takes as long as reading them.

    Example:

        chatdb stats --top 5
    """
    from chatdb.reports.stats import database_stats

    app = state(ctx)
    report = database_stats(app.database(), top=top)
    if as_json:
        out.emit_json(report)
        return
    status = ", ".join(f"{n:,} {name}" for name, n in report.conversations_by_status.items())
    roles = ", ".join(f"{n:,} {name}" for name, n in report.messages_by_role.items())
    with out.paged(app.no_pager):
        _render(report, top, status, roles)


def _search_index(index: Any) -> str:  # a SearchIndex, imported lazily
    if index is None or not index.exists:
        return "none (chatdb search --create-index)"
    state = "valid" if index.valid else "INVALID (chatdb search --create-index rebuilds it)"
    return f"{state}, {out.human_bytes(index.size_bytes)}, configuration {index.config}"


def _render(report: Any, top: int, status: str, roles: str) -> None:  # a StatsReport, imported lazily
    out.key_values(
        [
            ("Database", report.database),
            ("Server", f"PostgreSQL {report.server_version}"),
            ("Conversations", status),
            ("Messages", roles),
            ("Oldest conversation", report.activity["oldest_conversation"]),
            ("Last activity", report.activity["last_activity"]),
            ("Oldest message", report.activity["oldest_message"]),
            ("Newest message", report.activity["newest_message"]),
            ("Search index", _search_index(report.search_index)),
        ]
    )
    screen = out.screen()
    screen.line()
    out.table(
        [
            Column("Table", "id"),
            N("Rows"),
            N("Table size"),
            N("Index size"),
            N("Total"),
            N("Seq scans"),
            N("Index scans"),
        ],
        [
            (
                t.name,
                t.rows,
                out.human_bytes(t.size_bytes),
                out.human_bytes(t.indexes_size_bytes),
                out.human_bytes(t.total_size_bytes),
                t.sequential_scans,
                t.index_scans,
            )
            for t in report.tables
        ],
        title="Tables",
    )
    screen.line()
    out.table(
        [
            Column("Index", "id"),
            Column("Table", "id"),
            N("Size"),
            N("Entries (est.)"),
            N("Scans"),
            N("Tuples read"),
            N("Tuples fetched"),
        ],
        [
            (
                i.name,
                i.table,
                out.human_bytes(i.size_bytes),
                i.entries_estimate,
                i.scans,
                i.tuples_read,
                i.tuples_fetched,
            )
            for t in report.tables
            for i in t.indexes
        ],
        title="Indexes (scans since the statistics were last reset)",
    )
    screen.line()
    out.table(
        [Column("User", "id"), N("Conversations"), N("Messages"), Column("Last activity", "time")],
        [(u.user_id, u.conversations, u.messages, u.last_activity) for u in report.busiest_users],
        title=f"Busiest users (top {top} by messages)",
    )
    slow = report.slow_statements
    screen.line()
    if not slow.available:
        out.key_values([("Slowest statements", f"not available: {slow.reason}")])
        return
    out.table(
        [N("Mean ms"), N("Max ms"), N("Calls"), N("Total ms"), Column("Statement", "text")],
        [
            (
                f"{s['mean_ms']:,.2f}",
                f"{s['max_ms']:,.2f}",
                s["calls"],
                f"{s['total_ms']:,.1f}",
                out.one_line(s["query"]),
            )
            for s in slow.statements
        ],
        title=f"Slowest statements on chatdb's tables (top {top} by mean time, pg_stat_statements)",
    )


def N(name: str) -> Column:
    return Column(name, "number")


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
