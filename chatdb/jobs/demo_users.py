"""Demo users in whatever ``users`` table the application has.

``seed`` and ``bench`` need users of their own, but ``users`` belongs to the
application: besides ``id`` it may have required columns (an ``email`` that
is ``NOT NULL UNIQUE``, a ``created_at`` without a default, an enum, a
uuid, ...). :func:`create_demo_users` reads the table's columns from the
catalog and gives every required one (``NOT NULL``, no default, not
generated) a value of its type that is unique where an index asks for it:
the user's id for text, ``<id>@example.invalid`` for a column named like an
e-mail address, the next free number or time for a unique number or
timestamp, a random uuid, the first label of an enum, ``{}`` for JSON.

What no generated value can satisfy is refused with one line naming the
column and the reason, before anything is written: a required foreign key
of the application's own, a type chatdb knows no value for. A CHECK (on the
table or on a domain) is tried: the values go in one statement, so a CHECK
that rejects them writes nothing, and the error names the column and the
constraint. Values reach PostgreSQL as bound text parameters, so PostgreSQL
itself converts them to each column's type, domains and enums included.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import column as col
from sqlalchemy import exc, func, select, table, text
from sqlalchemy.dialects.postgresql import insert

from chatdb.errors import ChatdbError, ConflictError, DatabaseError
from chatdb.jobs.queries import users as sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

EMAIL_DOMAIN = "example.invalid"  # RFC 2606: never a real mailbox
INSERT_CHUNK = 1_000

_NUMBERS = {"int2", "int4", "int8", "numeric", "float4", "float8"}
_TEXT = {"text", "varchar", "bpchar", "name", "citext"}
_TIMES = {"timestamptz", "timestamp", "date", "time", "timetz"}
_FIXED = {  # types whose one generic value needs no uniqueness
    "bool": "false",
    "interval": "0",
    "json": "{}",
    "inet": "192.0.2.1",  # RFC 5737 documentation address
    "cidr": "192.0.2.0/24",
}


@dataclass(frozen=True)
class UsersColumn:
    """One column of the application's ``users`` table, as the catalog describes it."""

    name: str
    required: bool
    base_type: str
    type_kind: str  # pg_type.typtype of the base type: b(ase), e(num), ...
    category: str  # pg_type.typcategory: S(tring), N(umeric), A(rray), ...
    typmod: int
    declared: str  # the column's type as PostgreSQL prints it
    domains: tuple[int, ...]
    first_label: str | None
    unique: bool
    references: str | None

    @property
    def max_length(self) -> int | None:
        if self.base_type in ("varchar", "bpchar") and self.typmod >= 4:
            return self.typmod - 4
        return 63 if self.base_type == "name" else None


@dataclass(frozen=True)
class Check:
    """A CHECK constraint of the table or of a domain one of its columns uses."""

    name: str
    definition: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class UsersTable:
    columns: list[UsersColumn]
    checks: list[Check] = field(default_factory=list)
    unique_indexes: dict[str, str] = field(default_factory=dict)  # name: definition

    def check(self, name: str) -> Check | None:
        return next((check for check in self.checks if check.name == name), None)


def read_users_table(conn: Connection) -> UsersTable:
    columns = [
        UsersColumn(
            name=row[0],
            required=bool(row[1]),
            base_type=row[2],
            type_kind=row[3],
            category=row[4],
            typmod=int(row[5]),
            declared=row[6],
            domains=tuple(row[7] or ()),
            first_label=row[8],
            unique=bool(row[9]),
            references=row[10],
        )
        for row in conn.execute(text(sql.USERS_COLUMNS))
    ]
    checks = [
        Check(name, definition, tuple(names) if names else tuple(c.name for c in columns if domain in c.domains))
        for name, definition, names, domain in conn.execute(text(sql.USERS_CHECKS))
    ]
    unique: dict[str, str] = dict(conn.execute(text(sql.USERS_UNIQUE_INDEXES)).all())
    return UsersTable(columns, checks, unique)


def _refusal(column: UsersColumn, reason: str) -> ConflictError:
    if column.name == "id":
        return ConflictError(f"cannot create demo users: users.id {reason}; seed and bench need ids of their own")
    return ConflictError(
        f"cannot create demo users: users.{column.name} ({column.declared}, NOT NULL, "
        f"no default) {reason}; give it a default or make it nullable"
    )


def _shortened(value: str, limit: int | None, suffix: str = "") -> str:
    """``value + suffix`` if it fits in ``limit`` characters, else a digest of ``value`` that does."""
    if limit is None or len(value) + len(suffix) <= limit:
        return value + suffix
    if len(suffix) >= limit:
        suffix = ""
    digest = hashlib.sha256(value.encode()).hexdigest()
    return digest[: limit - len(suffix)] + suffix


class _ColumnValues:
    """The generated value of one required column for each new user."""

    def __init__(self, conn: Connection, column: UsersColumn) -> None:
        self.column = column
        self.start: Any = None
        if column.references:
            raise _refusal(column, f"references {column.references}, which no generated value can satisfy")
        kind = column.base_type
        if column.unique and (kind in _NUMBERS or kind in _TIMES):
            # The next values after the largest one present keep a unique index happy.

            self.start = conn.execute(select(func.max(col(column.name))).select_from(table("users"))).scalar()
        if not (
            kind in _TEXT
            or kind in _NUMBERS
            or kind in _TIMES
            or kind in _FIXED
            or kind in ("uuid", "jsonb", "bytea")
            or column.type_kind == "e"
            or column.category == "A"
        ):
            raise _refusal(column, "has a type for which chatdb has no generic value")

    def value(self, user_id: str, n: int) -> str:
        """The value for the ``n``-th new user (from 1), whose id is ``user_id``."""
        column, kind = self.column, self.column.base_type
        if kind in _TEXT:
            email = "mail" in column.name.lower()
            return _shortened(user_id, column.max_length, f"@{EMAIL_DOMAIN}" if email else "")
        if column.type_kind == "e":
            return str(column.first_label)
        if column.category == "A":
            return "{}"
        if kind in _NUMBERS:
            return str((self.start or 0) + n) if column.unique else "0"
        if kind in _TIMES:
            return self._time(n)
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind == "jsonb":
            return json.dumps({"demo_user": user_id}) if column.unique else "{}"
        if kind == "bytea":
            return "\\x" + user_id.encode().hex()
        return _FIXED[kind]

    def _time(self, n: int) -> str:
        kind, step = self.column.base_type, n if self.column.unique else 0
        if kind == "date":
            return ((self.start or date.today()) + timedelta(days=step)).isoformat()
        if kind in ("time", "timetz"):
            return (datetime.min + timedelta(seconds=step)).time().isoformat()
        start = self.start or datetime.now(UTC)
        return (start + timedelta(seconds=step)).isoformat()


def create_demo_users(conn: Connection, user_ids: Sequence[str]) -> int:
    """Insert the users ``user_ids`` that do not exist yet; returns how many it inserted.

    Required columns other than ``id`` get generated values (see the module's
    docstring). A CHECK that fails only because optional columns were left
    NULL ("an email or a phone") is tried once more with those filled too.
    Raises :class:`ConflictError` naming the column when the table needs a
    value no generated one can satisfy; nothing is inserted then. Runs in the
    caller's transaction.
    """

    users = read_users_table(conn)
    id_column = next((c for c in users.columns if c.name == "id"), None)
    if id_column is not None and id_column.references:
        raise _refusal(id_column, f"references {id_column.references}, which no demo id can satisfy")
    filled = [_ColumnValues(conn, c) for c in users.columns if c.required and c.name != "id"]
    existing = set(conn.execute(text(sql.EXISTING_USERS), {"ids": list(user_ids)}).scalars())
    missing = [user_id for user_id in dict.fromkeys(user_ids) if user_id not in existing]
    try:
        return _insert(conn, users, missing, filled)
    except _Refused as refused:
        optional = [c for c in users.columns if c.name in refused.left_null]
        try:
            more = [_ColumnValues(conn, c) for c in optional]
        except ConflictError:
            more = []
        if not optional or len(more) < len(optional):
            raise refused.error from refused.cause
        try:
            return _insert(conn, users, missing, filled + more)
        except _Refused as again:
            raise again.error from again.cause


class _Refused(Exception):
    def __init__(self, error: ChatdbError, cause: BaseException, left_null: tuple[str, ...] = ()) -> None:
        self.error, self.cause, self.left_null = error, cause, left_null


def _insert(conn: Connection, users: UsersTable, missing: list[str], filled: list[_ColumnValues]) -> int:
    """One attempt, in a savepoint: either every missing user goes in, or none does."""

    target = table("users", col("id"), *(col(v.column.name) for v in filled))
    statement = insert(target).on_conflict_do_nothing(index_elements=["id"]).returning(target.c.id)
    created = 0
    try:
        with conn.begin_nested():
            for at in range(0, len(missing), INSERT_CHUNK):
                rows = [
                    {"id": user_id, **{v.column.name: v.value(user_id, at + i + 1) for v in filled}}
                    for i, user_id in enumerate(missing[at : at + INSERT_CHUNK])
                ]
                created += len(conn.execute(statement, rows).all())
    except exc.DBAPIError as error:
        first = missing[0]
        sample = {"id": first, **{v.column.name: v.value(first, 1) for v in filled}}
        explained, left_null = _explain(users, error, sample)
        raise _Refused(explained, error, left_null) from error
    return created


def _explain(users: UsersTable, error: Any, sample: dict[str, str]) -> tuple[ChatdbError, tuple[str, ...]]:
    """The insert's failure in words that name the column, the rule and the value it refused.

    ``sample`` is the first new user's row, to show what chatdb generated.
    Also returns the columns of a failed CHECK that the insert left NULL.
    """
    orig = getattr(error, "orig", None)
    diag = getattr(orig, "diag", None)
    sqlstate = getattr(orig, "sqlstate", None)
    constraint = getattr(diag, "constraint_name", None)
    reason = str(orig or error).strip().splitlines()[0]
    check = users.check(constraint) if sqlstate == "23514" and constraint else None
    if check is not None:
        where = ", ".join(f"users.{name}" for name in check.columns) or "users"
        rule = f"cannot create demo users: {where} must satisfy {check.name} {check.definition}"
        left_null = tuple(name for name in check.columns if name not in sample)
        if left_null or not check.columns:
            return ConflictError(
                f"{rule}, which no generated values do; seed and bench cannot create users in this table"
            ), left_null
        shown = ", ".join(repr(sample[name]) for name in check.columns)
        if check.columns == ("id",):
            return ConflictError(
                f"{rule}, which demo user ids such as {shown} do not; seed and bench need ids of their own"
            ), ()
        several = len(check.columns) > 1
        return ConflictError(
            f"{rule}, which the generated {'values' if several else 'value'} {shown} "
            f"{'do' if several else 'does'} not; give the column a default that does, "
            "or make it nullable"
        ), ()
    if sqlstate == "23505" and constraint:
        definition = users.unique_indexes.get(constraint, "")
        on = definition.partition(" USING ")[2] or constraint
        return ConflictError(
            f"cannot create demo users: a generated value collides with an existing user in the unique "
            f"index {constraint} ({on}); give its column a default or make it nullable"
        ), ()
    return DatabaseError(f"cannot create demo users in the users table: {reason}"), ()
