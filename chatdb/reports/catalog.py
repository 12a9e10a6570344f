"""chatdb's CHECK constraints and indexes as its models define them and as a server has them.

Alembic compares columns and keys but not these, so ``chatdb doctor`` does,
without writing anything (it works on a read-only standby):

- An index is compared by the definition PostgreSQL prints for it
  (``pg_get_indexdef``) with the one the models' DDL gives, written out here
  the way PostgreSQL prints a plain index: ``CREATE [UNIQUE] INDEX name ON
  table USING btree (column [DESC], ...)``.
- A CHECK constraint is compared by meaning: the server's planner turns the
  models' expression and the live one into its own canonical form
  (``EXPLAIN (VERBOSE)`` of the expression over the table; planned, never
  run), so ``status IN ('active', 'archived')`` equals the
  ``= ANY (ARRAY[...])`` that PostgreSQL stores for it. A live constraint
  that is ``NOT VALID`` or ``NO INHERIT``, or that uses a function, operator
  or type that is not built in (never planned here: planning may run it),
  differs from chatdb's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Column, PrimaryKeyConstraint, UniqueConstraint, exc, text

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

_ON_TABLE = re.compile(r" ON (ONLY )?\S+ USING ")
_OUTPUT = "Output: "
FIRST_USER_OID = 16384  # PostgreSQL's FirstNormalObjectId: below it, only built-in objects


def _model_tables(tables: list[str]) -> list[Table]:
    from chatdb.models import Base

    return [Base.metadata.tables[name] for name in tables]


def expected_indexes(tables: list[str]) -> dict[str, str]:
    """``{"table.index": definition}`` for the keys, unique constraints and indexes of the models."""

    found: dict[str, str] = {}
    for table in _model_tables(tables):
        for constraint in table.constraints:
            if isinstance(constraint, (PrimaryKeyConstraint, UniqueConstraint)):
                columns = ", ".join(column.name for column in constraint.columns)
                found[f"{table.name}.{constraint.name}"] = _index_sql(constraint.name, table.name, True, columns)
        for index in table.indexes:
            unsupported = {k for k, v in index.dialect_options["postgresql"].items() if v not in (None, False, {}, [])}
            if unsupported:  # keep this module honest when the models grow
                raise NotImplementedError(f"index {index.name} uses {sorted(unsupported)}")
            parts = [e.name if isinstance(e, Column) else str(e) for e in index.expressions]
            found[f"{table.name}.{index.name}"] = _index_sql(
                str(index.name), table.name, bool(index.unique), ", ".join(parts)
            )
    return found


def _index_sql(name: Any, table: str, unique: bool, columns: str) -> str:
    return f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON {table} USING btree ({columns})"


def live_indexes(conn: Connection, tables: list[str]) -> dict[str, str]:
    rows = conn.execute(
        text(
            """
            SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.oid = ANY(CAST(:oids AS oid[]))
            """
        ),
        {"oids": _oids(conn, tables)},
    ).all()
    # The live definition names the table with its schema; compare the rest.
    return {f"{table}.{name}": _ON_TABLE.sub(f" ON {table} USING ", d) for table, name, d in rows}


def expected_checks(tables: list[str]) -> dict[str, str]:
    """``{"table.constraint": expression}`` of the models' CHECK constraints."""

    return {
        f"{table.name}.{constraint.name}": str(constraint.sqltext)
        for table in _model_tables(tables)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }


@dataclass(frozen=True)
class LiveCheck:
    table: str
    definition: str  # as pg_get_constraintdef prints it
    expression: str  # as pg_get_expr prints it
    validated: bool
    inherited: bool
    foreign_objects: int  # functions, operators, types it uses that are not built in


def live_checks(conn: Connection, tables: list[str]) -> dict[str, LiveCheck]:
    rows = conn.execute(
        text(
            """
            SELECT c.relname, con.conname, pg_get_constraintdef(con.oid), pg_get_expr(con.conbin, con.conrelid),
                   con.convalidated, NOT con.connoinherit,
                   (SELECT count(*) FROM pg_depend d
                    WHERE d.classid = 'pg_constraint'::regclass AND d.objid = con.oid
                      AND d.refclassid <> 'pg_class'::regclass AND d.refobjid >= :first_user_oid)
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            WHERE con.contype = 'c' AND c.oid = ANY(CAST(:oids AS oid[]))
            """
        ),
        {"oids": _oids(conn, tables), "first_user_oid": FIRST_USER_OID},
    ).all()
    return {f"{r[0]}.{r[1]}": LiveCheck(r[0], r[2], r[3], bool(r[4]), bool(r[5]), int(r[6])) for r in rows}


def canonical(conn: Connection, table: str, expression: str) -> str:
    """The planner's form of ``expression`` over ``table`` (planned in a savepoint, never executed).

    ``table`` is one of chatdb's own table names; ``expression`` is a model's
    CHECK expression or the server's own deparse of a built-in-only live one.
    """

    with conn.begin_nested():
        lines = conn.execute(text(f"EXPLAIN (VERBOSE, COSTS OFF) SELECT {expression} FROM ONLY {table}")).scalars()
        for line in lines:
            stripped = line.strip()
            if stripped.startswith(_OUTPUT):
                return str(stripped[len(_OUTPUT) :])
    raise ValueError(f"no output line planning {expression!r}")


def check_differences(conn: Connection, tables: list[str]) -> tuple[int, list[tuple[str, bool]]]:
    """How many CHECK constraints chatdb defines, and each difference (text, whether it breaks chatdb)."""

    expected = expected_checks(tables)
    live = live_checks(conn, tables)
    problems: list[tuple[str, bool]] = []
    for key in sorted(expected.keys() - live.keys()):
        problems.append((f"CHECK constraint {key} is missing (CHECK ({expected[key]}))", True))
    for key in sorted(expected.keys() & live.keys()):
        found = live[key]
        wanted = f"CHECK ({expected[key]})"
        if found.foreign_objects:
            problems.append(
                (
                    f"CHECK constraint {key} is {found.definition}, which uses objects that are not "
                    f"built in; expected {wanted}",
                    True,
                )
            )
            continue
        if not found.validated or not found.inherited:
            problems.append((f"CHECK constraint {key} is {found.definition}, expected {wanted}", True))
            continue
        try:
            same = canonical(conn, found.table, found.expression) == canonical(conn, found.table, expected[key])
        except exc.DBAPIError as error:
            reason = str(error.orig or error).strip().splitlines()[0]
            problems.append((f"CHECK constraint {key} cannot be compared ({reason})", True))
            continue
        if not same:
            problems.append((f"CHECK constraint {key} is {found.definition}, expected {wanted}", True))
    for key in sorted(live.keys() - expected.keys()):
        problems.append((f"unexpected CHECK constraint {key} ({live[key].definition})", False))
    return len(expected), problems


def _oids(conn: Connection, names: list[str]) -> list[int]:
    rows = conn.execute(
        text("SELECT to_regclass(n)::oid FROM unnest(CAST(:names AS text[])) AS n"), {"names": names}
    ).scalars()
    return [oid for oid in rows if oid is not None]
