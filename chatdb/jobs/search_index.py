"""The optional search index on messages: built and dropped concurrently, as a job that holds the lease.

``chatdb search`` (:mod:`chatdb.reports.search`) uses it when it is valid;
``CREATE/DROP INDEX CONCURRENTLY`` lets the application write meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from chatdb.errors import ChatdbError
from chatdb.jobs.queries import search as sql
from chatdb.jobs.runner import job_lock
from chatdb.reports.search import (
    DEFAULT_CONFIG,
    INDEX_NAME,
    SearchIndex,
    check_config,
    index_status,
    require_config,
)

if TYPE_CHECKING:
    from chatdb.db import Database


@dataclass(frozen=True)
class IndexChange:
    """What ``create_search_index`` or ``drop_search_index`` did."""

    database: str
    action: str  # created, rebuilt, unchanged, dropped, absent
    before: SearchIndex
    after: SearchIndex
    duration_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "index": INDEX_NAME,
            "action": self.action,
            "found_invalid": self.before.exists and not self.before.valid,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _autocommit(db: Database) -> Any:
    """A connection outside any transaction: ``CREATE/DROP INDEX CONCURRENTLY`` cannot run inside one."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def create_search_index(db: Database, *, config: str = DEFAULT_CONFIG, wait: float | None = None) -> IndexChange:
    """Build the search index concurrently (writes go on meanwhile); an INVALID leftover is dropped and rebuilt.

    Holds the maintenance lease, and is refused on a standby, like every job that writes.
    """

    check_config(config)
    started = time.monotonic()
    with job_lock(db, "search index build", wait=wait), db.translate(), _autocommit(db) as conn:
        require_config(conn, config)
        before = index_status(conn)
        if before.valid:
            if before.config != config:
                raise IndexConfigError(
                    f"the search index already exists with the text search configuration {before.config!r}; "
                    f"drop it ({{drop_index}}) before building one with {config!r}",
                    parameters=("drop_index",),
                )
            return IndexChange(db.display_url, "unchanged", before, before, time.monotonic() - started)
        if before.exists:
            conn.execute(text(sql.DROP_INDEX))
        # The build may take minutes on a large table: no statement timeout (a session setting, reset after).
        conn.execute(text(sql.NO_STATEMENT_TIMEOUT))
        try:
            conn.execute(text(sql.create_index(config)))
            conn.execute(text(sql.comment_index(config)))
        finally:
            conn.execute(text(sql.RESET_STATEMENT_TIMEOUT))
        after = index_status(conn)
    action = "rebuilt" if before.exists else "created"
    return IndexChange(db.display_url, action, before, after, time.monotonic() - started)


def drop_search_index(db: Database, *, wait: float | None = None) -> IndexChange:
    """Remove the search index concurrently (valid or not); searches then scan again."""

    started = time.monotonic()
    with job_lock(db, "search index drop", wait=wait), db.translate(), _autocommit(db) as conn:
        before = index_status(conn)
        if before.exists:
            conn.execute(text(sql.DROP_INDEX))
        after = index_status(conn)
    return IndexChange(
        db.display_url, "dropped" if before.exists else "absent", before, after, time.monotonic() - started
    )


class IndexConfigError(ChatdbError):
    """The index exists with another text search configuration."""
