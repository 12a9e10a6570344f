"""Read-only facts about a database: where chatdb's schema stands and what it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatdb import migrations
from chatdb.errors import MigrationError
from chatdb.models import CHATDB_TABLES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database


@dataclass(frozen=True)
class TableCount:
    name: str
    exists: bool
    rows: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "exists": self.exists, "rows": self.rows}


@dataclass(frozen=True)
class SchemaStatus:
    database: str
    server_version: str
    current: str | None
    head: str
    pending: list[migrations.Revision] = field(default_factory=list)
    tables: list[TableCount] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "current": self.current,
            "head": self.head,
            "up_to_date": self.up_to_date,
            "pending": [rev.as_dict() for rev in self.pending],
            "tables": [table.as_dict() for table in self.tables],
        }


def existing_tables(conn: Connection, names: tuple[str, ...]) -> set[str]:
    from sqlalchemy import text

    rows = conn.execute(
        text("SELECT name FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NOT NULL"),
        {"names": list(names)},
    )
    return {row[0] for row in rows}


def require_tables(conn: Connection, *names: str) -> None:
    """Fail with a clear message when chatdb's tables have not been created yet."""
    present = existing_tables(conn, names)
    missing = [name for name in names if name not in present]
    if missing:
        what = f"table {missing[0]} does not" if len(missing) == 1 else f"tables {', '.join(missing)} do not"
        raise MigrationError(f"{what} exist in this database (run: chatdb migrate)")


def require_current_schema(conn: Connection) -> None:
    """Fail before any work unless chatdb's tables exist at this chatdb's newest revision.

    The check every job makes (and seed and bench): a database migrated by a
    newer chatdb (a revision this one does not know) or not yet migrated to
    the newest revision is refused with the same words as ``chatdb status``.
    """
    require_tables(conn, *CHATDB_TABLES)
    current = migrations.current_revision(conn)
    head = migrations.head()
    if current == head:
        return
    if current is None:
        raise MigrationError("chatdb's migrations have not been run on this database (run: chatdb migrate)")
    pending = migrations.plan(current, head).steps  # a revision this chatdb does not know raises here
    raise MigrationError(
        f"the database is at revision {current}, {len(pending)} behind this chatdb's {head}; "
        "nothing was done (run: chatdb migrate)"
    )


def schema_status(db: Database) -> SchemaStatus:
    """Current and newest revision, pending migrations, and chatdb's tables with exact row counts."""
    from sqlalchemy import text

    with db.connect() as conn:
        version = str(conn.execute(text("SHOW server_version")).scalar_one())
        current = migrations.current_revision(conn)
        present = existing_tables(conn, CHATDB_TABLES)
        tables = []
        for name in CHATDB_TABLES:
            rows = None
            if name in present:
                # Table names come from chatdb's own constant, never from user input.
                rows = int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            tables.append(TableCount(name, name in present, rows))
    head = migrations.head()
    pending = migrations.plan(current, head).steps if current != head else []
    return SchemaStatus(
        database=db.display_url,
        server_version=version,
        current=current,
        head=head,
        pending=pending,
        tables=tables,
    )
