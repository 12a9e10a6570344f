"""A PostgreSQL server that accepts only TLS with SCRAM, as Neon's endpoints do.

Started once per session, only by tests that ask for ``tls_server``: a
throw-away CA and a server certificate naming only ``localhost`` (made with
the ``openssl`` binary), ``ssl=on``, ``password_encryption=scram-sha-256``,
``hostssl … scram-sha-256`` and ``hostnossl … reject`` for TCP, and trust on
its own Unix socket for the suite's setup; one more role signs in with a
plain password over TLS, to show that ``channel_binding=require`` refuses it. The embedded package's binaries
are built without OpenSSL, so this uses Debian's ``postgresql-15`` binaries,
run as the ``postgres`` system user when the suite runs as root (PostgreSQL
refuses to run as root). A missing binary fails the tests that need the
server, with the command that installs it; it is never skipped.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

BIN = Path(os.environ.get("CHATDB_TLS_PG_BIN", "/usr/lib/postgresql/15/bin"))
INSTALL_HINT = "apt-get install -y postgresql-15 openssl"
ROLE = "chatdb_tls"
CLEARTEXT_ROLE = "chatdb_tls_cleartext"  # authenticated by a plain password, so without channel binding
SERVER_USER = "postgres"

HBA = """\
local   all  all                 trust
hostssl all  chatdb_tls_cleartext 127.0.0.1/32 password
hostssl all  all  127.0.0.1/32   scram-sha-256
hostssl all  all  ::1/128        scram-sha-256
hostnossl all all 0.0.0.0/0      reject
hostnossl all all ::/0           reject
"""


@dataclass
class TlsServer:
    port: int
    socket_dir: Path
    ca_file: Path  # the CA that signed the server's certificate
    other_ca_file: Path  # a CA that did not
    password: str

    def url(
        self, database: str, *, host: str = "localhost", role: str = ROLE, password: str | None = None, **params: str
    ) -> str:
        """A chatdb URL for ``database`` as ``role``, over TCP to ``host``, with libpq ``params``.

        ``password=""`` leaves the password out of the URL.
        """
        query = "&".join(f"{key}={value}" for key, value in params.items())
        secret = self.password if password is None else password
        login = f"{role}:{secret}" if secret else role
        return f"postgresql://{login}@{host}:{self.port}/{database}" + (f"?{query}" if query else "")

    def admin(self, database: str = "postgres") -> psycopg.Connection:
        """A superuser connection over the server's Unix socket (trusted), autocommit."""
        url = f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"
        return psycopg.connect(url, autocommit=True)

    def create_database(self) -> str:
        name = f"chatdb_tls_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _require_tools() -> None:
    missing = [str(BIN / tool) for tool in ("initdb", "pg_ctl") if not (BIN / tool).exists()]
    if shutil.which("openssl") is None:
        missing.append("openssl")
    if missing:
        pytest.fail(
            f"the TLS test server needs {', '.join(missing)}: install them with `{INSTALL_HINT}`", pytrace=False
        )


def _as_server_user() -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []


def _give_to_server_user(*paths: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(*args: str | Path, as_server: bool = False) -> None:
    command = [*(_as_server_user() if as_server else []), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        f"/CN=chatdb test {name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return key, cert


def make_certificates(directory: Path) -> tuple[Path, Path, Path, Path]:
    """A CA, a certificate for ``localhost`` only signed by it, and an unrelated second CA."""
    ca_key, ca_cert = _make_ca(directory, "ca")
    _, other_cert = _make_ca(directory, "other-ca")
    key, request, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _run(
        "openssl",
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        request,
        "-subj",
        "/CN=localhost",
    )
    _run(
        "openssl",
        "x509",
        "-req",
        "-in",
        request,
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        extensions,
    )
    key.chmod(0o600)  # PostgreSQL refuses a key others can read
    _give_to_server_user(key, cert)
    return ca_cert, other_cert, cert, key


@pytest.fixture(scope="session")
def tls_server() -> Iterator[TlsServer]:
    _require_tools()
    root = Path(tempfile.mkdtemp(prefix="chatdb-tls-", dir="/tmp"))  # short: the socket lives here
    root.chmod(0o755)
    certs = root / "certs"
    certs.mkdir()
    ca, other_ca, cert, key = make_certificates(certs)
    pgdata, run_dir = root / "pg", root / "run"
    pgdata.mkdir(mode=0o700)
    run_dir.mkdir()
    _give_to_server_user(pgdata, run_dir)
    _run(BIN / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", as_server=True)
    port = _free_port()
    password = f"Scram-{secrets.token_hex(6)}-pw"
    (pgdata / "pg_hba.conf").write_text(HBA)
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = 'localhost'\nunix_socket_directories = '{run_dir}'\n"
            f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n"
            "password_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\n"
            "full_page_writes = off\nshared_buffers = 32MB\nmax_connections = 60\n"
        )
    _give_to_server_user(pgdata / "pg_hba.conf", pgdata / "postgresql.conf")
    log = root / "server.log"
    log.touch()
    _give_to_server_user(log)
    _run(BIN / "pg_ctl", "-D", pgdata, "-l", log, "-w", "-t", "30", "start", as_server=True)
    server = TlsServer(port=port, socket_dir=run_dir, ca_file=ca, other_ca_file=other_ca, password=password)
    try:
        with server.admin() as conn:
            for role in (ROLE, CLEARTEXT_ROLE):
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        yield server
    finally:
        subprocess.run(
            [*_as_server_user(), str(BIN / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tls_database(tls_server: TlsServer) -> Iterator[str]:
    """A new database on the TLS server, owned by the SCRAM role; yields its name."""
    name = tls_server.create_database()
    try:
        yield name
    finally:
        tls_server.drop_database(name)
