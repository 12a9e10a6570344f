"""Where chatdb is connected: a primary or a read-only standby, directly or through a pooler.

Commands that change data ask :func:`require_writable` before any work, so on
a hot standby (a Neon read replica) or a server with
``default_transaction_read_only`` they stop with one line that says so,
instead of failing part-way with the server's "read-only transaction".
``chatdb doctor`` reports :func:`server_role` and :func:`endpoint` as facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from chatdb.errors import ReadOnlyServerError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

NEON_DOMAINS = (".neon.tech", ".neon.build")
EndpointKind = Literal["neon-pooled", "neon-direct", "pooler", "direct", "socket"]


@dataclass(frozen=True)
class ServerRole:
    in_recovery: bool  # a hot standby (pg_is_in_recovery())
    read_only: bool  # default_transaction_read_only is on
    replay_lag_seconds: float | None  # on a standby: how far replay is behind (0 when caught up)

    @property
    def writable(self) -> bool:
        return not (self.in_recovery or self.read_only)

    def describe(self) -> str:
        if self.in_recovery:
            lag = "unknown" if self.replay_lag_seconds is None else f"{self.replay_lag_seconds:.1f} s"
            return f"read-only standby, replay lag {lag}"
        if self.read_only:
            return "read-only (default_transaction_read_only is on)"
        return "primary, read-write"

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_recovery": self.in_recovery,
            "read_only": self.read_only,
            "replay_lag_seconds": self.replay_lag_seconds,
        }


# Replay lag is the age of the last replayed commit, unless the standby has replayed
# everything it received (then it is caught up, however old that commit is).
_ROLE_SQL = """
SELECT pg_is_in_recovery(),
       current_setting('default_transaction_read_only') = 'on',
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT NULL
                 AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE greatest(0, extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()))
       END
"""


def server_role(conn: Connection) -> ServerRole:
    in_recovery, read_only, lag = conn.execute(text(_ROLE_SQL)).one()
    return ServerRole(bool(in_recovery), bool(read_only), None if lag is None else float(lag))


def require_writable(conn: Connection, command: str, where: str, *, why: str = "changes data") -> ServerRole:
    """Stop ``command`` before any work when the server cannot take writes (``why`` it needs them)."""
    role = server_role(conn)
    if role.in_recovery:
        raise ReadOnlyServerError(
            f"{command} {why}, but {where} is a read-only standby (a replica in recovery); run it against the primary"
        )
    if role.read_only:
        raise ReadOnlyServerError(
            f"{command} {why}, but {where} is read-only (default_transaction_read_only is on); "
            "run it against a read-write server"
        )
    return role


@dataclass(frozen=True)
class Endpoint:
    kind: EndpointKind
    host: str

    @property
    def pooled(self) -> bool:
        return self.kind in ("neon-pooled", "pooler")

    def describe(self) -> str:
        return {
            "neon-pooled": f"Neon pooled endpoint {self.host} (PgBouncer in transaction mode)",
            "neon-direct": f"Neon direct endpoint {self.host}",
            "pooler": f"{self.host} through a transaction-mode pooler (two client connections "
            "shared one server session)",
            "direct": f"direct connection to {self.host}",
            "socket": f"local socket {self.host}",
        }[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "pooled": self.pooled}


def url_host(url: str) -> str:
    """The server's host (or socket directory) as the URL names it."""
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname
    hosts = parse_qs(parts.query).get("host")
    return hosts[0] if hosts else "the default socket"


def neon_endpoint(host: str) -> EndpointKind | None:
    """``neon-pooled`` or ``neon-direct`` for a Neon host name, else None.

    Neon names a compute's pooled endpoint by adding ``-pooler`` to its
    endpoint id (``ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech``).
    """
    host = host.lower().rstrip(".")
    if not host.endswith(NEON_DOMAINS):
        return None
    return "neon-pooled" if host.split(".", 1)[0].endswith("-pooler") else "neon-direct"


def endpoint(db: Database) -> Endpoint:
    """What the URL connects to: a Neon endpoint by its name, a pooler by how it behaves."""
    host = url_host(db.settings.url)
    neon = neon_endpoint(host)
    if neon is not None:
        return Endpoint(neon, host)
    if shares_server_sessions(db):
        return Endpoint("pooler", host)
    return Endpoint("socket" if host.startswith("/") else "direct", host)


def shares_server_sessions(db: Database, rounds: int = 4) -> bool:
    """True when two client connections are served by one server session, or one connection by two.

    On a direct connection every client connection is its own server session,
    with one backend pid for its whole life, and two open connections never
    share one. A transaction-mode pooler hands its server connections from
    client to client between transactions. Each round, one connection reads
    its pid, lets its server connection go, and reads it again while the
    other holds a server connection; the two swap roles every round, because
    a pooler that hands out idle server connections in turn can give the
    same connection back to the same client round after round in one order.
    Any pid seen twice by different connections, or two pids seen by one,
    is a pooler.
    """

    pid = text("SELECT pg_backend_pid()")
    with db.translate(), db.engine.connect() as first, db.engine.connect() as second:
        seen: dict[int, set[int]] = {0: set(), 1: set()}
        pair = [(0, first), (1, second)]
        for turn in range(rounds):
            (mover, moving), (holder, holding) = pair if turn % 2 == 0 else pair[::-1]
            seen[mover].add(moving.execute(pid).scalar_one())
            moving.commit()
            seen[holder].add(holding.execute(pid).scalar_one())  # holds its server connection
            seen[mover].add(moving.execute(pid).scalar_one())
            moving.commit()
            holding.commit()
            if len(seen[0]) > 1 or len(seen[1]) > 1 or seen[0] & seen[1]:
                return True
    return False
