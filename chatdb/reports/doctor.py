"""Health checks for a chatdb database: can we connect, is the schema what chatdb expects.

Each check ends ``pass``, ``warn`` or ``fail`` (or ``info``, a fact worth
knowing) with one line of detail and, where it found something, a list of
problems. Nothing here writes: the checks run in one read-only transaction,
so doctor works on a read-only standby too, and the expected CHECK
constraints and indexes come from the models without building anything
(:mod:`chatdb.reports.catalog`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import exc, text

from chatdb import migrations
from chatdb.db import server_version
from chatdb.errors import ChatdbError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

Outcome = Literal["pass", "warn", "fail", "info"]
OUTCOMES = ("pass", "warn", "fail", "info")
MINIMUM_SERVER = 130000  # gen_random_uuid() is built in from PostgreSQL 13


@dataclass(frozen=True)
class Check:
    name: str
    status: Outcome
    detail: str
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "problems": self.problems}


@dataclass(frozen=True)
class DoctorReport:
    database: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        summary = {outcome: sum(c.status == outcome for c in self.checks) for outcome in OUTCOMES}
        return {
            "database": self.database,
            "ok": self.ok,
            "summary": summary,
            "checks": [check.as_dict() for check in self.checks],
        }


def diagnose(db: Database) -> DoctorReport:
    """Run every check; a failed connection ends the report there."""
    started = time.perf_counter()
    try:
        with db.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")
    except ChatdbError as exc:
        return DoctorReport(db.display_url, [Check("connection", "fail", exc.message)])
    elapsed = (time.perf_counter() - started) * 1000
    checks = [Check("connection", "pass", f"connected to {db.display_url} in {elapsed:.0f} ms")]
    steps: list[Callable[[Connection], Check | list[Check]]] = [
        _server_version,
        _server_role,
        lambda _conn: _endpoint(db),
        _migrations,
        users_table_check,
        _columns_and_keys,
        _constraints_and_indexes,
        _search_index,
        _pg_stat_statements,
    ]
    with db.translate(), db.engine.connect() as conn:
        # Read only, so that not even a temporary object can be written by accident.
        conn = conn.execution_options(postgresql_readonly=True)
        with conn.begin():
            for step in steps:
                outcome = step(conn)
                checks.extend(outcome if isinstance(outcome, list) else [outcome])
    return DoctorReport(db.display_url, checks)


def _server_version(conn: Connection) -> Check:
    number = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
    text = server_version(conn)
    if number < MINIMUM_SERVER:
        return Check("server version", "fail", f"PostgreSQL {text}; chatdb needs 13 or newer")
    return Check("server version", "pass", f"PostgreSQL {text}")


def _migrations(conn: Connection) -> Check:
    head = migrations.head()
    current = migrations.current_revision(conn)
    if current == head:
        return Check("migrations", "pass", f"at the newest revision ({head})")
    if current is None:
        return Check("migrations", "fail", "chatdb's migrations have not been run (run: chatdb migrate)")
    try:
        pending = migrations.plan(current, head).steps
    except ChatdbError as exc:
        return Check("migrations", "fail", exc.message)
    return Check(
        "migrations",
        "fail",
        f"at {current}, {len(pending)} behind {head} (run: chatdb migrate)",
        [f"pending {step.id}: {step.description}" for step in pending],
    )


def users_table_check(conn: Connection) -> Check:
    """Whether chatdb's foreign keys can reference the application's users(id) (migrate asks this too)."""
    row = conn.exec_driver_sql(
        """
        SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull,
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique
                       AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL),
               obj_description(a.attrelid, 'pg_class')
        FROM pg_attribute a
        WHERE a.attrelid = to_regclass('users') AND a.attname = 'id' AND NOT a.attisdropped
        """
    ).first()
    exists = conn.exec_driver_sql("SELECT to_regclass('users') IS NOT NULL").scalar_one()
    if not exists:
        return Check("users table", "fail", "the application's users table is missing")
    if row is None:
        return Check("users table", "fail", "users has no id column")
    type_name, not_null, unique, comment = row
    if type_name.split("(")[0] not in ("character varying", "text"):
        return Check("users table", "fail", f"users.id is {type_name}; chatdb's user_id is character varying(255)")
    if not unique:
        return Check("users table", "fail", "users.id has no primary key or unique constraint to reference")
    # Migration 001 marks the users table it creates in a database that had none.
    origin = (
        "created by chatdb (the database had none)"
        if (comment or "").startswith("created by chatdb")
        else "the application's"
    )
    return Check("users table", "pass", f"{origin}; id {type_name}{' not null' if not_null else ''}, unique")


def _columns_and_keys(conn: Connection) -> Check:
    """Alembic's comparison of the models with the live tables, leaving indexes to the next check."""
    diffs = [d for d in migrations.schema_drift(conn) if not _is_index_diff(d)]
    if not diffs:
        return Check("schema: tables, columns, keys", "pass", "match chatdb's models")
    described = [_describe(d) for d in diffs]
    failing = [text for text, severity in described if severity == "fail"]
    return Check(
        "schema: tables, columns, keys",
        "fail" if failing else "warn",
        f"{len(described)} difference(s) from chatdb's models",
        [text for text, _ in described],
    )


def _is_index_diff(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] in ("add_index", "remove_index")


def _describe(diff: Any) -> tuple[str, Outcome]:
    """One line for an Alembic diff, and whether it breaks chatdb (fail) or only surprises (warn)."""
    if isinstance(diff, list):  # modify_* ops come grouped per column
        lines = [_describe(d) for d in diff]
        worst: Outcome = "fail" if any(s == "fail" for _, s in lines) else "warn"
        return "; ".join(text for text, _ in lines), worst
    kind = diff[0]
    if kind == "add_table":
        return f"table {diff[1].name} is missing", "fail"
    if kind == "remove_table":
        return f"unexpected table {diff[1].name}", "warn"
    if kind == "add_column":
        return f"column {diff[2]}.{diff[3].name} is missing", "fail"
    if kind == "remove_column":
        column = diff[3]
        severity: Outcome = "fail" if not column.nullable and column.server_default is None else "warn"
        return f"unexpected column {diff[2]}.{column.name}", severity
    if kind == "modify_type":
        return f"column {diff[2]}.{diff[3]} is {diff[5]}, expected {diff[6]}", "fail"
    if kind == "modify_nullable":
        want = "NOT NULL" if diff[6] is False else "nullable"
        return f"column {diff[2]}.{diff[3]} should be {want}", "fail"
    if kind == "modify_default":
        return f"column {diff[2]}.{diff[3]} has a different default", "fail"
    if kind in ("add_fk", "add_constraint"):
        return f"constraint {diff[1].name or diff[1]} is missing", "fail"
    if kind in ("remove_fk", "remove_constraint"):
        return f"unexpected constraint {diff[1].name or diff[1]}", "warn"
    return f"{kind}: {diff[1:]!s}", "fail"


def _constraints_and_indexes(conn: Connection) -> list[Check]:
    """CHECK constraints and indexes, by definition; Alembic does not compare these."""
    from chatdb.migrations import OWN_TABLES, existing_tables
    from chatdb.reports import catalog

    present = sorted(existing_tables(conn, OWN_TABLES))
    if not present:
        return []
    expected_checks, check_problems = catalog.check_differences(conn, present)
    checks = _outcome("schema: check constraints", expected_checks, check_problems)
    expected = catalog.expected_indexes(present)
    live = catalog.live_indexes(conn, present)
    index_problems: list[tuple[str, bool]] = []
    for key in sorted(expected.keys() - live.keys()):
        index_problems.append((f"index {key} is missing ({expected[key]})", True))
    for key in sorted(expected.keys() & live.keys()):
        if expected[key] != live[key]:
            index_problems.append((f"index {key} is {live[key]}, expected {expected[key]}", True))
    from chatdb.reports.search import INDEX_NAME

    for key in sorted(live.keys() - expected.keys() - {f"messages.{INDEX_NAME}"}):  # its own check
        index_problems.append((f"unexpected index {key} ({live[key]})", False))
    return [checks, _outcome("schema: indexes", len(expected), index_problems)]


def _outcome(name: str, expected: int, problems: list[tuple[str, bool]]) -> Check:
    """A differences check: fail if any difference breaks chatdb, warn if all only surprise."""
    if not problems:
        return Check(name, "pass", f"all {expected} as chatdb defines them")
    severity: Outcome = "fail" if any(breaks for _, breaks in problems) else "warn"
    return Check(name, severity, f"{len(problems)} difference(s)", [text for text, _ in problems])


def _search_index(conn: Connection) -> Check:
    """The optional search index (chatdb search --create-index): absent, valid, or left INVALID by a failed build."""
    from chatdb.reports.search import INDEX_NAME, index_status

    index = index_status(conn)
    if not index.exists:
        return Check("search index", "info", "none: searches scan messages (chatdb search --create-index builds it)")
    size = f"{index.size_bytes / 1048576:,.1f} MB" if index.size_bytes is not None else "size unknown"
    if not index.valid:
        return Check(
            "search index",
            "warn",
            f"{INDEX_NAME} is INVALID (a build failed), {size}: searches scan; "
            "chatdb search --create-index rebuilds it",
        )
    return Check("search index", "pass", f"{INDEX_NAME} is valid, {size}, text search configuration {index.config}")


def _server_role(conn: Connection) -> Check:
    from chatdb.topology import server_role

    role = server_role(conn)
    if role.writable:
        return Check("server role", "info", role.describe())
    return Check(
        "server role",
        "info",
        f"{role.describe()}: the read-only commands and export work here; migrate and the jobs "
        "that change rows need the primary",
    )


def _endpoint(db: Database) -> Check:
    from chatdb.topology import endpoint

    found = endpoint(db)
    if found.kind == "neon-pooled":
        direct = found.host.replace("-pooler.", ".", 1)
        return Check(
            "endpoint",
            "warn",
            f"{found.describe()}: chatdb works through it, but as Neon advises for schema migrations "
            f"and long sessions, run chatdb migrate and long jobs (prune, export, import, seed) with the "
            f"direct endpoint {direct}",
        )
    if found.kind == "pooler":
        return Check(
            "endpoint",
            "warn",
            f"{found.describe()}: chatdb works through it, but run chatdb migrate and long jobs "
            "(prune, export, import, seed) on a direct connection to the server",
        )
    if found.kind == "neon-direct":
        return Check(
            "endpoint",
            "pass",
            f"{found.describe()}: right for migrate and the maintenance jobs; the application may use "
            "the pooled endpoint (-pooler)",
        )
    return Check("endpoint", "pass", found.describe())


def _pg_stat_statements(conn: Connection) -> Check:
    """Whether ``chatdb stats`` can list the slowest statements."""

    name = "pg_stat_statements"
    installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = :n"), {"n": name}).scalar()
    if installed is None:
        offered = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}).scalar()
        if offered:
            return Check(
                "pg_stat_statements",
                "info",
                "not installed in this database (CREATE EXTENSION pg_stat_statements lets chatdb "
                "stats list the slowest statements)",
            )
        return Check("pg_stat_statements", "info", "not available on this server")
    try:
        with conn.begin_nested():
            conn.execute(text("SELECT 1 FROM pg_stat_statements LIMIT 1")).all()
    except exc.DBAPIError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        return Check("pg_stat_statements", "info", f"installed ({installed}) but cannot be read: {reason}")
    return Check("pg_stat_statements", "info", f"available ({installed}): chatdb stats lists the slowest statements")
