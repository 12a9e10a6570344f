"""Shared test helpers: the server and per-test databases, and the CLI runner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from typer.testing import CliRunner

from chatdb.cli import app


def libpq_url_of(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep else url


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (keeps host, socket and credentials)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def as_role(url: str, role: str, password: str | None = None) -> str:
    """``url`` logging in as ``role`` (with ``password``) instead (keeps host, socket and database)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    login = f"{role}:{password}" if password else role
    return urlunsplit((parts.scheme, f"{login}@{host}", parts.path, parts.query, parts.fragment))


@dataclass
class Server:
    admin_url: str  # libpq URL of a database we may connect to for CREATE DATABASE
    embedded: bool
    pgdata: Path | None = None

    def require_password_for(self, role: str) -> None:
        """Make the embedded server ask ``role`` for its password (others stay on trust)."""
        assert self.pgdata is not None
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")

    def create_database(self, name: str, template: str | None = None) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            clause = f' TEMPLATE "{template}"' if template else " TEMPLATE template0"
            conn.execute(f'CREATE DATABASE "{name}"{clause}')

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class TestDatabase:
    """One database created for one test."""

    __test__ = False

    name: str
    url: str  # the URL chatdb is given (psycopg driver)
    libpq_url: str

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple]:
        """Run one statement in its own committed transaction; return its rows (if any)."""
        with psycopg.connect(self.libpq_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.libpq_url, **kwargs)

    def database(self):
        from chatdb.config import Settings
        from chatdb.db import Database

        return Database(Settings(url=self.url))


def new_database(server: Server, template: str | None = None) -> Iterator[TestDatabase]:
    name = f"chatdb_test_{uuid.uuid4().hex[:12]}"
    server.create_database(name, template=template)
    libpq = with_database(server.admin_url, name)
    try:
        yield TestDatabase(name=name, url=libpq.replace("postgresql://", "postgresql+psycopg://", 1), libpq_url=libpq)
    finally:
        server.drop_database(name)


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


class Cli:
    """Runs chatdb's commands in-process with ``CliRunner``."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Invocation:
        full_env = {"CHATDB_DATABASE_URL": self.url} if self.url else {}
        full_env.update(env or {})
        result = self.runner.invoke(app, list(args), input=input, env=full_env)
        return Invocation(result.exit_code, result.stdout, result.stderr, result.exception)


def assert_one_line_error(result: Invocation, code: int, *fragments: str) -> None:
    """The failure shape every command promises: exit code, one line on stderr, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


CATALOG_QUERY = """
SELECT 'column', c.relname, a.attname,
       format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' #' || a.attnum
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relname = ANY(%(tables)s) AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relname = ANY(%(tables)s)
UNION ALL
SELECT 'index', tablename, indexname, '', indexdef
FROM pg_indexes WHERE tablename = ANY(%(tables)s)
UNION ALL
SELECT 'comment', c.relname, '', '', coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c WHERE c.relname = ANY(%(tables)s) AND c.relkind = 'r'
ORDER BY 1, 2, 3
"""


def catalog(db: TestDatabase, tables: Sequence[str]) -> list[tuple]:
    """Columns, types, defaults, constraints, indexes and comments of ``tables``."""
    return db.sql(CATALOG_QUERY, {"tables": list(tables)})
