"""A real PgBouncer in transaction mode in front of the test server, as Neon's pooled endpoint is.

Started once per session by the first test that asks for it (the ``pgbouncer``
fixture), on a free 127.0.0.1 port, and stopped at the end. It forwards every
database name to the same database on the test server (embedded or
``CHATDB_TEST_DATABASE_URL``), so a test reaches its own database through the
pooler by swapping host and port (:meth:`PgBouncer.url_for`). It is never
skipped: without ``pgbouncer`` installed the tests that need it fail.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from helpers import Server, TestDatabase
from psycopg.conninfo import conninfo_to_dict

from servers.unprivileged import chown_to_server_user, free_port, private_dir, run_as

SEARCH = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer")
POOL_SIZE = 10  # server connections per database; the external test server is shared


@dataclass
class PgBouncer:
    host: str
    port: int
    directory: Path

    def url_for(self, db: TestDatabase, *, driver: bool = True) -> str:
        """``db``'s URL through the pooler (as chatdb is given it, or the libpq form)."""
        scheme = "postgresql+psycopg" if driver else "postgresql"
        return f"{scheme}://postgres@{self.host}:{self.port}/{db.name}"

    def pooled(self, db: TestDatabase) -> TestDatabase:
        """``db`` reached through the pooler."""
        return TestDatabase(db.name, self.url_for(db), self.url_for(db, driver=False))

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def executable() -> str:
    for candidate in SEARCH:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail("pgbouncer is not installed (apt-get install -y pgbouncer); the pooler tests need it")


def _config(directory: Path, upstream: dict[str, str], port: int) -> str:
    host = upstream.get("host") or "127.0.0.1"
    return f"""\
[databases]
* = host={host} port={upstream.get("port") or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {POOL_SIZE}
; Idle server connections are handed out in turn, not last-used first: a client's
; consecutive transactions land on different server connections, as under load.
server_round_robin = 1
server_idle_timeout = 10
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


def start(server: Server) -> tuple[PgBouncer, subprocess.Popen[bytes]]:
    binary = executable()
    directory = private_dir("chatdb-pgb-")
    upstream = conninfo_to_dict(server.admin_url)
    for attempt in range(5):  # another process may take the free port before we bind it
        port = free_port()
        (directory / "users.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(_config(directory, upstream, port))
        for name in ("users.txt", "pgbouncer.ini"):
            chown_to_server_user(directory / name)
        user = run_as()
        command = [binary, *(["-u", user] if user else []), str(directory / "pgbouncer.ini")]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bouncer = PgBouncer("127.0.0.1", port, directory)
        if _wait_until_listening(bouncer, proc):
            return bouncer, proc
    pytest.fail(f"pgbouncer did not start:\n{bouncer.log()}")


def _wait_until_listening(bouncer: PgBouncer, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((bouncer.host, bouncer.port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        with psycopg.connect(
            f"postgresql://postgres@{bouncer.host}:{bouncer.port}/pgbouncer", autocommit=True
        ) as admin:
            # The pooler the suite depends on: transaction pooling, as on Neon.
            modes = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}
            assert modes["pool_mode"] == "transaction", modes["pool_mode"]
        return True
    return False


def stop(proc: subprocess.Popen[bytes], bouncer: PgBouncer) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(bouncer.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(pg_server: Server) -> Iterator[PgBouncer]:
    bouncer, proc = start(pg_server)
    try:
        yield bouncer
    finally:
        stop(proc, bouncer)
