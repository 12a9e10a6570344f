"""What chatdb's tables hold and how the server uses them: sizes, counts, index use, slow statements.

Everything here is read-only. The row counts are exact (``count(*)`` by
status and by role), so on tables with tens of millions of rows
:func:`database_stats` takes as long as a scan of each table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc, text

from chatdb.db import server_version
from chatdb.migrations import require_tables
from chatdb.models import CHATDB_TABLES, ConversationStatus, MessageRole

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

# Statements about chatdb's tables, as pg_stat_statements normalizes them.
_CHATDB_STATEMENT = r"\m(conversations|messages)\M"


@dataclass(frozen=True)
class IndexStats:
    name: str
    table: str
    size_bytes: int
    entries_estimate: int | None  # pg_class.reltuples: as of the last VACUUM/ANALYZE
    scans: int
    tuples_read: int
    tuples_fetched: int
    definition: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "size_bytes": self.size_bytes,
            "entries_estimate": self.entries_estimate,
            "scans": self.scans,
            "tuples_read": self.tuples_read,
            "tuples_fetched": self.tuples_fetched,
            "definition": self.definition,
        }


@dataclass(frozen=True)
class TableStats:
    name: str
    rows: int
    size_bytes: int  # heap, TOAST and maps: pg_table_size
    indexes_size_bytes: int
    total_size_bytes: int
    sequential_scans: int
    index_scans: int
    indexes: list[IndexStats] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "size_bytes": self.size_bytes,
            "indexes_size_bytes": self.indexes_size_bytes,
            "total_size_bytes": self.total_size_bytes,
            "sequential_scans": self.sequential_scans,
            "index_scans": self.index_scans,
            "indexes": [index.as_dict() for index in self.indexes],
        }


@dataclass(frozen=True)
class UserActivity:
    user_id: str
    conversations: int
    messages: int
    last_activity: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "conversations": self.conversations,
            "messages": self.messages,
            "last_activity": self.last_activity,
        }


@dataclass(frozen=True)
class SlowStatements:
    """The slowest statements on chatdb's tables by mean time, or why they cannot be known."""

    available: bool
    reason: str | None = None
    statements: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"available": self.available, "reason": self.reason, "statements": self.statements}


@dataclass(frozen=True)
class DatabaseStats:
    database: str
    server_version: str
    tables: list[TableStats]
    conversations_by_status: dict[str, int]
    messages_by_role: dict[str, int]
    activity: dict[str, datetime | None]
    busiest_users: list[UserActivity]
    slow_statements: SlowStatements
    search_index: Any = None  # a chatdb.reports.search.SearchIndex

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "tables": [table.as_dict() for table in self.tables],
            "conversations_by_status": self.conversations_by_status,
            "messages_by_role": self.messages_by_role,
            "activity": self.activity,
            "busiest_users": [user.as_dict() for user in self.busiest_users],
            "slow_statements": self.slow_statements.as_dict(),
            "search_index": self.search_index.as_dict() if self.search_index is not None else None,
        }


def database_stats(db: Database, *, top: int = 10) -> DatabaseStats:
    """Sizes, counts, activity, the ``top`` busiest users and slowest statements."""

    with db.transaction() as conn:
        require_tables(conn, *CHATDB_TABLES)
        version = server_version(conn)
        by_status = _counts(conn, "conversations", "status", [s.value for s in ConversationStatus])
        by_role = _counts(conn, "messages", "role", [r.value for r in MessageRole])
        rows = {"conversations": sum(by_status.values()), "messages": sum(by_role.values())}
        tables = [_table_stats(conn, name, rows[name]) for name in CHATDB_TABLES]
        activity = _activity(conn)
        busiest = _busiest_users(conn, top)
        slow = _slow_statements(conn, top)
        from chatdb.reports.search import index_status

        search_index = index_status(conn)
    return DatabaseStats(
        database=db.display_url,
        server_version=version,
        tables=tables,
        conversations_by_status=by_status,
        messages_by_role=by_role,
        activity=activity,
        busiest_users=busiest,
        slow_statements=slow,
        search_index=search_index,
    )


def _counts(conn: Connection, table: str, column: str, known: list[str]) -> dict[str, int]:
    # Table and column names are chatdb's own constants, never user input.
    found: dict[Any, int] = dict(conn.execute(text(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")).all())
    counts = {value: int(found.pop(value, 0)) for value in known}
    counts.update({str(value): int(n) for value, n in sorted(found.items())})
    return counts


def _table_stats(conn: Connection, name: str, rows: int) -> TableStats:
    table = conn.execute(
        text(
            """
            SELECT pg_table_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid),
                   coalesce(s.seq_scan, 0), coalesce(s.idx_scan, 0)
            FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
            WHERE c.oid = to_regclass(:name)
            """
        ),
        {"name": name},
    ).one()
    indexes = conn.execute(
        text(
            """
            SELECT i.relname, pg_relation_size(i.oid), i.reltuples,
                   coalesce(s.idx_scan, 0), coalesce(s.idx_tup_read, 0), coalesce(s.idx_tup_fetch, 0),
                   pg_get_indexdef(i.oid)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
            WHERE x.indrelid = to_regclass(:name)
            ORDER BY i.relname
            """
        ),
        {"name": name},
    ).all()
    return TableStats(
        name=name,
        rows=rows,
        size_bytes=int(table[0]),
        indexes_size_bytes=int(table[1]),
        total_size_bytes=int(table[2]),
        sequential_scans=int(table[3]),
        index_scans=int(table[4]),
        indexes=[
            IndexStats(
                name=row[0],
                table=name,
                size_bytes=int(row[1]),
                # reltuples is -1 (PostgreSQL 14+) or 0 before the first VACUUM/ANALYZE.
                entries_estimate=int(row[2]) if row[2] is not None and row[2] >= 0 else None,
                scans=int(row[3]),
                tuples_read=int(row[4]),
                tuples_fetched=int(row[5]),
                definition=row[6],
            )
            for row in indexes
        ],
    )


def _activity(conn: Connection) -> dict[str, datetime | None]:
    conversations = conn.execute(
        text("SELECT min(created_at), max(created_at), max(updated_at) FROM conversations")
    ).one()
    messages = conn.execute(text("SELECT min(created_at), max(created_at) FROM messages")).one()
    return {
        "oldest_conversation": conversations[0],
        "newest_conversation": conversations[1],
        "last_activity": conversations[2],
        "oldest_message": messages[0],
        "newest_message": messages[1],
    }


def _busiest_users(conn: Connection, top: int) -> list[UserActivity]:
    rows = conn.execute(
        text(
            """
            SELECT c.user_id, count(*) AS conversations,
                   coalesce(sum(m.messages), 0) AS messages, max(c.updated_at) AS last_activity
            FROM conversations c
            LEFT JOIN LATERAL (
                SELECT count(*) AS messages FROM messages WHERE conversation_id = c.id
            ) m ON TRUE
            GROUP BY c.user_id
            ORDER BY messages DESC, conversations DESC, c.user_id
            LIMIT :top
            """
        ),
        {"top": top},
    ).all()
    return [UserActivity(r[0], int(r[1]), int(r[2]), r[3]) for r in rows]


def _slow_statements(conn: Connection, top: int) -> SlowStatements:
    installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")).scalar()
    if installed is None:
        return SlowStatements(
            available=False,
            reason="the pg_stat_statements extension is not installed in this database "
            "(it needs shared_preload_libraries = 'pg_stat_statements' and "
            "CREATE EXTENSION pg_stat_statements)",
        )
    try:
        with conn.begin_nested():
            rows = conn.execute(
                text(
                    """
                    SELECT query, calls, total_exec_time, mean_exec_time, max_exec_time, rows
                    FROM pg_stat_statements
                    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND query ~* :pattern
                    ORDER BY mean_exec_time DESC
                    LIMIT :top
                    """
                ),
                {"pattern": _CHATDB_STATEMENT, "top": top},
            ).all()
    except exc.DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        return SlowStatements(available=False, reason=f"pg_stat_statements cannot be read: {reason}")
    return SlowStatements(
        available=True,
        statements=[
            {
                "query": row[0],
                "calls": int(row[1]),
                "total_ms": float(row[2]),
                "mean_ms": float(row[3]),
                "max_ms": float(row[4]),
                "rows": int(row[5]),
            }
            for row in rows
        ],
    )
