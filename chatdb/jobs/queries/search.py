"""The search index's statements (:mod:`chatdb.jobs.search_index`).

The index name is chatdb's constant; a text search configuration is checked
by :func:`chatdb.reports.search.check_config` (a strict name pattern) and
against ``pg_ts_config`` before it is written into a statement.
"""

from __future__ import annotations

from chatdb.reports.search import COMMENT_PREFIX, INDEX_NAME

DROP_INDEX = f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX_NAME}"'
# The build may take minutes on a large table: no statement timeout (a session setting, reset after).
NO_STATEMENT_TIMEOUT = "SET statement_timeout = 0"
RESET_STATEMENT_TIMEOUT = "RESET statement_timeout"


def create_index(config: str) -> str:
    return f"CREATE INDEX CONCURRENTLY \"{INDEX_NAME}\" ON messages USING gin (to_tsvector('{config}'::regconfig, content))"


def comment_index(config: str) -> str:
    return f"COMMENT ON INDEX \"{INDEX_NAME}\" IS '{COMMENT_PREFIX}{config}'"
