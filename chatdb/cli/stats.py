"""`chatdb stats`: sizes, counts, activity, busiest users, index use and slow statements."""

from __future__ import annotations

from typing import Annotated

import typer

from chatdb.cli import _output as out
from chatdb.cli._app import state
from chatdb.cli._options import JsonOption


def stats(
    ctx: typer.Context,
    top: Annotated[
        int, typer.Option("--top", metavar="N", min=1, help="How many busiest users and slowest statements.")
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
    from chatdb.stats import database_stats

    report = database_stats(state(ctx).database(), top=top)
    if as_json:
        out.emit_json(report)
        return
    status = ", ".join(f"{n} {name}" for name, n in report.conversations_by_status.items())
    roles = ", ".join(f"{n} {name}" for name, n in report.messages_by_role.items())
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
        ]
    )
    numbers = {"Rows", "Table size", "Index size", "Total", "Seq scans", "Index scans", "Size",
               "Entries (est.)", "Scans", "Tuples read", "Tuples fetched", "Conversations", "Messages",
               "Calls", "Mean ms", "Max ms", "Total ms"}
    right = {name: "right" for name in numbers}
    out.table(
        ["Table", "Rows", "Table size", "Index size", "Total", "Seq scans", "Index scans"],
        [
            (t.name, t.rows, out.human_bytes(t.size_bytes), out.human_bytes(t.indexes_size_bytes),
             out.human_bytes(t.total_size_bytes), t.sequential_scans, t.index_scans)
            for t in report.tables
        ],
        title="Tables",
        justify=right,
    )
    out.table(
        ["Index", "Table", "Size", "Entries (est.)", "Scans", "Tuples read", "Tuples fetched"],
        [
            (i.name, i.table, out.human_bytes(i.size_bytes), i.entries_estimate, i.scans,
             i.tuples_read, i.tuples_fetched)
            for t in report.tables
            for i in t.indexes
        ],
        title="Indexes (scans since the statistics were last reset)",
        justify=right,
        no_wrap={"Index"},
    )
    out.table(
        ["User", "Conversations", "Messages", "Last activity"],
        [(u.user_id, u.conversations, u.messages, u.last_activity) for u in report.busiest_users],
        title=f"Busiest users (top {top} by messages)",
        justify=right,
    )
    slow = report.slow_statements
    if not slow.available:
        out.key_values([("Slowest statements", f"not available: {slow.reason}")])
        return
    out.table(
        ["Mean ms", "Max ms", "Calls", "Total ms", "Statement"],
        [
            (f"{s['mean_ms']:.2f}", f"{s['max_ms']:.2f}", s["calls"], f"{s['total_ms']:.1f}",
             out.one_line(s["query"]))
            for s in slow.statements
        ],
        title=f"Slowest statements on chatdb's tables (top {top} by mean time, pg_stat_statements)",
        justify=right,
    )


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
