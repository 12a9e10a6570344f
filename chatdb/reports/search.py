"""Full-text search over message content, and the optional index that makes it fast.

Search is PostgreSQL's own: ``websearch_to_tsquery`` reads the query (quoted
phrases, ``-word``, ``or``), ``to_tsvector(config, content) @@ query``
matches, ``ts_rank`` orders (newest first among equal ranks, then by id) and
``ts_headline`` cuts a snippet with the matches between :data:`MARK_START`
and :data:`MARK_STOP`. Pages are keyset pages on ``(rank, created_at, id)``.

The plan's schema has no search index and ``chatdb migrate`` never adds one.
:func:`create_search_index` builds a GIN index on the expression
``to_tsvector('<config>'::regconfig, content)`` with ``CREATE INDEX
CONCURRENTLY`` (the application keeps writing meanwhile) and records the text
search configuration in the index's comment. PostgreSQL uses an expression
index only for the identical expression, so every search writes the recorded
configuration into its SQL as a constant (a bind parameter would not match a
generic plan). A build that failed leaves an INVALID index, which is found,
reported, and dropped and built again by the next build.

Without a valid index every search parses each candidate message. On a large
table (:data:`LARGE_TABLE_ROWS` rows by the planner's estimate,
``pg_class.reltuples``) it is refused unless a user, a conversation or a time
window narrows it; the result says how many rows the planner expects to scan.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatdb.errors import UsageError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

INDEX_NAME = "chatdb_messages_content_search"
DEFAULT_CONFIG = "simple"
# Without the index, a search of a messages table the planner estimates at this many rows or
# more must be narrowed by a user, a conversation or a time window.
LARGE_TABLE_ROWS = 100_000
MARK_START, MARK_STOP = "«", "»"
ROLES = ("user", "assistant")
COMMENT_PREFIX = "chatdb search index; text search configuration: "
_CONFIG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_STOP}, MaxWords=18, MinWords=6, MaxFragments=2"


@dataclass(frozen=True)
class SearchIndex:
    """The search index as the catalog has it (``exists`` False: there is none)."""

    exists: bool
    valid: bool = False
    config: str | None = None
    size_bytes: int | None = None
    definition: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": INDEX_NAME,
            "exists": self.exists,
            "valid": self.valid,
            "config": self.config,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class SearchHit:
    id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: str
    role: str
    created_at: datetime
    rank: float
    snippet: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "conversation_id": str(self.conversation_id),
            "user_id": self.user_id,
            "role": self.role,
            "created_at": self.created_at,
            "rank": self.rank,
            "snippet": self.snippet,
        }


HIT_COLUMNS = ("id", "conversation_id", "user_id", "role", "created_at", "rank", "snippet")


@dataclass(frozen=True)
class SearchQuery:
    """What to search for and where; every filter narrows (None: no limit)."""

    text: str
    user: str | None = None
    conversation: str | None = None
    role: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    limit: int = 20
    cursor: str | None = None

    @property
    def narrowed(self) -> bool:
        return bool(self.user or self.conversation or self.since or self.before)

    def check(self) -> None:
        """Every choice checked without a connection."""
        if not self.text.strip():
            raise UsageError("{query}: give words to search for", parameters=("query",))
        if "\x00" in self.text:
            raise UsageError("{query}: cannot contain the NUL character", parameters=("query",))
        if self.limit < 1:
            raise UsageError(f"{{limit}}: must be at least 1, got {self.limit}", parameters=("limit",))
        if self.role is not None and self.role not in ROLES:
            raise UsageError(f"{{role}}: must be user or assistant, got {self.role!r}", parameters=("role",))
        for moment, name in ((self.since, "since"), (self.before, "before")):
            if moment is not None and moment.tzinfo is None:
                raise UsageError(f"{{{name}}}: {moment} has no time zone", parameters=(name,))
        if self.since is not None and self.before is not None and self.since >= self.before:
            raise UsageError("{since}: must be earlier than {before}", parameters=("since", "before"))
        if self.cursor is not None:
            decode_cursor(self.cursor)


@dataclass(frozen=True)
class SearchResult:
    query: SearchQuery
    config: str
    index_used: bool
    index: SearchIndex
    scanned_estimate: int | None  # without the index: rows the planner expects to parse
    hits: list[SearchHit] = field(default_factory=list)
    next_cursor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "query": q.text,
            "filter": {
                "user": q.user,
                "conversation": q.conversation,
                "role": q.role,
                "since": q.since,
                "before": q.before,
            },
            "limit": q.limit,
            "cursor": q.cursor,
            "config": self.config,
            "index_used": self.index_used,
            "scanned_estimate": self.scanned_estimate,
            "hits": [h.as_dict() for h in self.hits],
            "next_cursor": self.next_cursor,
        }


class SearchTooBroadError(UsageError):
    """An unindexed search of a large table with nothing to narrow it."""


def encode_cursor(hit: SearchHit) -> str:
    raw = json.dumps([repr(hit.rank), hit.created_at.isoformat(), str(hit.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, created, ident = json.loads(raw)
        return float(rank), datetime.fromisoformat(created), uuid.UUID(ident)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError(
            f"{{cursor}}: {cursor[:40]!r} is not a cursor a search gave", parameters=("cursor",)
        ) from None


def check_config(config: str) -> str:
    if not _CONFIG_NAME.match(config):
        raise UsageError(
            f"{{config}}: {config[:70]!r} is not a text search configuration name (simple, english, …)",
            parameters=("config",),
        )
    return config


def _regconfig(config: str) -> Any:
    """The configuration as a SQL constant: the index's expression, character for character."""
    from sqlalchemy import literal_column

    return literal_column(f"'{check_config(config)}'::regconfig")


def require_config(conn: Connection, config: str) -> None:
    from sqlalchemy import text

    check_config(config)
    if conn.execute(text("SELECT 1 FROM pg_ts_config WHERE cfgname = :c"), {"c": config}).first() is None:
        names = ", ".join(conn.execute(text("SELECT cfgname FROM pg_ts_config ORDER BY 1")).scalars())
        raise UsageError(
            f"{{config}}: the server has no text search configuration {config!r} (it has {names})",
            parameters=("config",),
        )


INDEX_STATUS_SQL = """
SELECT i.indisvalid AND i.indisready, pg_relation_size(c.oid), obj_description(c.oid, 'pg_class'),
       pg_get_indexdef(c.oid)
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass('messages') AND c.relname = :name
"""


def index_status(conn: Connection) -> SearchIndex:
    """Whether the search index exists, is valid (usable), its size and configuration."""
    from sqlalchemy import text

    row = conn.execute(text(INDEX_STATUS_SQL), {"name": INDEX_NAME}).first()
    if row is None:
        return SearchIndex(exists=False)
    valid, size, comment, definition = row
    config = None
    if comment and comment.startswith(COMMENT_PREFIX):
        config = comment[len(COMMENT_PREFIX) :]
    else:  # a build stopped before its comment: the expression still says it
        found = re.search(r"to_tsvector\('([a-z0-9_]+)'::regconfig", definition or "")
        config = found.group(1) if found else None
    return SearchIndex(exists=True, valid=bool(valid), config=config, size_bytes=int(size), definition=definition)


def search_index_status(db: Database) -> SearchIndex:
    with db.transaction() as conn:
        return index_status(conn)


def _estimated_rows(conn: Connection) -> int:
    from sqlalchemy import text

    value = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('messages')")).scalar()
    return max(int(value or 0), 0)


def search_statement(query: SearchQuery, config: str, conversation_id: uuid.UUID | None) -> Any:
    """The search: matching messages ranked, newest first among equals, one more than the limit."""
    from sqlalchemy import Float, bindparam, cast, func, select, tuple_

    from chatdb.models import Conversation, Message

    m, c = Message.__table__, Conversation.__table__
    cfg = _regconfig(config)
    tsq = func.websearch_to_tsquery(cfg, query.text)
    document = func.to_tsvector(cfg, m.c.content)
    rank = cast(func.ts_rank(document, tsq), Float).label("rank")
    where: list[Any] = [document.op("@@")(tsq)]
    if query.user is not None:
        # Through the conversations' user index: messages has no index on user_id.
        where.append(m.c.conversation_id.in_(select(c.c.id).where(c.c.user_id == query.user)))
        where.append(m.c.user_id == query.user)
    if conversation_id is not None:
        where.append(m.c.conversation_id == conversation_id)
    if query.role is not None:
        where.append(m.c.role == query.role)
    if query.since is not None:
        where.append(m.c.created_at >= query.since)
    if query.before is not None:
        where.append(m.c.created_at < query.before)
    ranked = select(m.c.id, m.c.conversation_id, m.c.user_id, m.c.role, m.c.created_at, m.c.content, rank).where(*where)
    inner = ranked.subquery("ranked")
    page = select(inner)
    if query.cursor is not None:
        c_rank, c_created, c_id = decode_cursor(query.cursor)
        # float8 of the float4 rank, compared as float8: the value round-trips exactly.
        page = page.where(
            tuple_(inner.c.rank, inner.c.created_at, inner.c.id)
            < tuple_(cast(bindparam("c_rank", c_rank, type_=Float), Float), c_created, c_id)
        )
    page = page.order_by(inner.c.rank.desc(), inner.c.created_at.desc(), inner.c.id.desc()).limit(query.limit + 1)
    top = page.subquery("top")
    snippet = func.ts_headline(cfg, top.c.content, func.websearch_to_tsquery(cfg, query.text), _HEADLINE_OPTIONS)
    return select(
        top.c.id,
        top.c.conversation_id,
        top.c.user_id,
        top.c.role,
        top.c.created_at,
        top.c.rank,
        snippet.label("snippet"),
    ).order_by(top.c.rank.desc(), top.c.created_at.desc(), top.c.id.desc())


def _filter_statement(query: SearchQuery, conversation_id: uuid.UUID | None) -> Any:
    """The rows an unindexed search parses: the filters without the match."""
    from sqlalchemy import literal, select

    from chatdb.models import Conversation, Message

    m, c = Message.__table__, Conversation.__table__
    stmt = select(literal(1)).select_from(m)
    if query.user is not None:
        stmt = stmt.where(
            m.c.conversation_id.in_(select(c.c.id).where(c.c.user_id == query.user)), m.c.user_id == query.user
        )
    if conversation_id is not None:
        stmt = stmt.where(m.c.conversation_id == conversation_id)
    if query.role is not None:
        stmt = stmt.where(m.c.role == query.role)
    if query.since is not None:
        stmt = stmt.where(m.c.created_at >= query.since)
    if query.before is not None:
        stmt = stmt.where(m.c.created_at < query.before)
    return stmt


def _plan_rows(conn: Connection, statement: Any) -> int:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
    found: Any = json.loads(plan) if isinstance(plan, str) else plan
    return int(found[0]["Plan"]["Plan Rows"])


def explain_search(db: Database, query: SearchQuery) -> str:
    """PostgreSQL's plan for ``query`` (EXPLAIN of the very statement :func:`search_messages` runs)."""
    query.check()
    with db.transaction() as conn:
        config, conversation_id = _prepare(conn, query)[:2]
        compiled = search_statement(query, config, conversation_id).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars()
        return "\n".join(rows)


def _prepare(conn: Connection, query: SearchQuery) -> tuple[str, uuid.UUID | None, SearchIndex]:
    from chatdb.migrations import require_tables

    require_tables(conn, "conversations", "messages")
    index = index_status(conn)
    config = index.config if index.valid and index.config else DEFAULT_CONFIG
    conversation_id = None
    if query.conversation is not None:
        from chatdb.reports.conversations import resolve_conversation_id

        conversation_id = resolve_conversation_id(conn, query.conversation)
    if query.user is not None:
        from sqlalchemy import text

        from chatdb.errors import UserNotFoundError

        if conn.execute(text("SELECT 1 FROM users WHERE id = :u"), {"u": query.user}).first() is None:
            raise UserNotFoundError(f"user {query.user!r} does not exist")
    return config, conversation_id, index


def search_messages(db: Database, query: SearchQuery) -> SearchResult:
    """Messages matching ``query``: best rank first, newest first among equals, a page at a time."""
    query.check()
    with db.session() as session:
        conn = session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        config, conversation_id, index = _prepare(conn, query)
        scanned = None
        if not index.valid:
            estimate = _estimated_rows(conn)
            if estimate >= LARGE_TABLE_ROWS and not query.narrowed:
                raise SearchTooBroadError(
                    f"messages holds about {estimate:,} rows and has no valid search index: narrow the search "
                    "with {user}, {conversation}, {since} or {before}, or build the index with {create_index}",
                    parameters=("user", "conversation", "since", "before", "create_index"),
                )
            scanned = _plan_rows(conn, _filter_statement(query, conversation_id))
        rows = conn.execute(search_statement(query, config, conversation_id)).all()
    hits = [
        SearchHit(
            id=r.id,
            conversation_id=r.conversation_id,
            user_id=r.user_id,
            role=r.role,
            created_at=r.created_at,
            rank=float(r.rank),
            snippet=r.snippet,
        )
        for r in rows[: query.limit]
    ]
    more = len(rows) > query.limit
    return SearchResult(
        query=query,
        config=config,
        index_used=index.valid,
        index=index,
        scanned_estimate=scanned,
        hits=hits,
        next_cursor=encode_cursor(hits[-1]) if more and hits else None,
    )
