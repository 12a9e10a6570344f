"""``chatdb status``: where chatdb's schema stands and what its tables hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from chatdb import migrations
from chatdb.db import server_version
from chatdb.migrations import existing_tables
from chatdb.models import CHATDB_TABLES

if TYPE_CHECKING:
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


def schema_status(db: Database) -> SchemaStatus:
    """Current and newest revision, pending migrations, and chatdb's tables with exact row counts."""

    with db.transaction() as conn:
        version = server_version(conn)
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
