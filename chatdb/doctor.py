"""Health checks for a chatdb database: can we connect, is the schema what chatdb expects.

Each check ends ``pass``, ``warn`` or ``fail`` with one line of detail and,
where it found something, a list of problems. Nothing here writes: the
expected CHECK constraints and indexes are read from temporary tables built
from the models inside a transaction that is rolled back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chatdb import migrations
from chatdb.errors import ChatdbError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

Outcome = Literal["pass", "warn", "fail"]
MINIMUM_SERVER = 130000  # gen_random_uuid() is built in from PostgreSQL 13
_ON_TABLE = re.compile(r" ON (ONLY )?\S+ USING ")


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
        summary = {outcome: sum(c.status == outcome for c in self.checks) for outcome in ("pass", "warn", "fail")}
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
        with db.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except ChatdbError as exc:
        return DoctorReport(db.display_url, [Check("connection", "fail", exc.message)])
    elapsed = (time.perf_counter() - started) * 1000
    checks = [Check("connection", "pass", f"connected to {db.display_url} in {elapsed:.0f} ms")]
    steps: list[Callable[[Connection], Check | list[Check]]] = [
        _server_version, _migrations, users_table_check, _columns_and_keys, _constraints_and_indexes,
    ]
    with db.connect() as conn:
        for step in steps:
            outcome = step(conn)
            checks.extend(outcome if isinstance(outcome, list) else [outcome])
    return DoctorReport(db.display_url, checks)


def _server_version(conn: Connection) -> Check:
    number = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
    text = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
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
    origin = "created by chatdb (the database had none)" if (comment or "").startswith("created by chatdb") else "the application's"
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
    """CHECK constraints and indexes, by name and definition; Alembic does not compare these."""
    from chatdb.inspection import existing_tables
    from chatdb.models import CHATDB_TABLES

    present = sorted(existing_tables(conn, CHATDB_TABLES))
    if not present:
        return []
    from sqlalchemy import exc

    live_checks, live_indexes = _catalog(conn, present, schema=None)
    try:
        expected_checks, expected_indexes = _expected_catalog(conn, present)
    except exc.DBAPIError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        detail = f"cannot build the expected definitions in temporary tables: {reason}"
        return [Check("schema: check constraints and indexes", "warn", detail)]
    return [
        _compare("schema: check constraints", "CHECK constraint", expected_checks, live_checks),
        _compare("schema: indexes", "index", expected_indexes, live_indexes),
    ]


def _compare(name: str, what: str, expected: dict[str, str], live: dict[str, str]) -> Check:
    problems: list[str] = []
    severity: Outcome = "pass"
    for key in sorted(expected.keys() - live.keys()):
        problems.append(f"{what} {key} is missing ({expected[key]})")
        severity = "fail"
    for key in sorted(expected.keys() & live.keys()):
        if expected[key] != live[key]:
            problems.append(f"{what} {key} is {live[key]}, expected {expected[key]}")
            severity = "fail"
    for key in sorted(live.keys() - expected.keys()):
        problems.append(f"unexpected {what} {key} ({live[key]})")
        severity = "fail" if severity == "fail" else "warn"
    detail = f"all {len(expected)} as chatdb defines them" if not problems else f"{len(problems)} difference(s)"
    return Check(name, severity, detail, problems)


def _catalog(conn: Connection, tables: list[str], schema: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """CHECK constraints and indexes of ``tables`` as ``{"table.name": definition}``."""
    from sqlalchemy import text

    names = [f"{schema}.{t}" if schema else t for t in tables]
    checks = conn.execute(
        text(
            """
            SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            WHERE con.contype = 'c' AND c.oid = ANY(CAST(:oids AS oid[]))
            """
        ),
        {"oids": _oids(conn, names)},
    ).all()
    indexes = conn.execute(
        text(
            """
            SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.oid = ANY(CAST(:oids AS oid[]))
            """
        ),
        {"oids": _oids(conn, names)},
    ).all()
    return (
        {f"{table}.{name}": definition for table, name, definition in checks},
        # The table's schema differs between the live and the expected tables; compare the rest.
        {f"{table}.{name}": _ON_TABLE.sub(f" ON {table} USING ", d) for table, name, d in indexes},
    )


def _oids(conn: Connection, names: list[str]) -> list[int]:
    from sqlalchemy import text

    rows = conn.execute(
        text("SELECT to_regclass(n)::oid FROM unnest(CAST(:names AS text[])) AS n"), {"names": names}
    ).scalars()
    return [oid for oid in rows if oid is not None]


def _expected_catalog(conn: Connection, tables: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """What the models' DDL gives on this server: built as temporary tables, then rolled back."""
    from chatdb.models import Base, users

    wanted = [users, *(Base.metadata.tables[name] for name in tables)]
    with conn.begin_nested() as savepoint:
        temporary = conn.execution_options(schema_translate_map={None: "pg_temp"})
        Base.metadata.create_all(temporary, tables=wanted, checkfirst=False)
        found = _catalog(conn, tables, schema="pg_temp")
        savepoint.rollback()
    return found
