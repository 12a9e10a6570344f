"""The maintenance lease: one job that changes rows at a time per database, through any pooler.

A session advisory lock does not survive a transaction-mode pooler (Neon's
``-pooler`` endpoint, PgBouncer): it is taken on whichever server connection
the statement landed on, and stays held there after the job ends. So a job
holds a *lease* instead: the one row of ``chatdb_job_lease`` (name
``maintenance``), written in short transactions that work through any pooler.

- **Taking it** inserts the row, or takes over a row whose holder is gone:
  its ``expires_at`` has passed (a lost host), or it ran on this machine and
  its process no longer exists (``kill -9``, a crash:
  :mod:`chatdb.jobs.liveness`). A live holder is never waited on.
- **Keeping it**: a heartbeat thread renews ``expires_at`` every third of the
  lease's time to live (``CHATDB_JOB_LEASE_TTL``, default 30s), on its own
  connection, so a statement that runs longer than the lease keeps it.
- **Every batch** starts by reading the row with its own token ``FOR KEY
  SHARE``: a batch never runs after the lease was broken or taken over, and
  while a batch runs nobody can take the lease over or break it (both
  replace or delete the row's unique token, which that row lock blocks;
  renewing does not).
- **Giving it back** deletes the row when the job ends, however it ends. A
  job killed with ``kill -9`` leaves its row: the next job on the same
  machine takes it over at once; elsewhere it expires one time-to-live after
  its last heartbeat, or ``chatdb lock break`` removes it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Interval, Table, bindparam, delete, exc, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from chatdb.errors import (
    ChatdbError,
    DatabaseUnavailable,
    JobInterrupted,
    JobLeaseLostError,
    JobLockedError,
    UsageError,
)
from chatdb.jobs.liveness import identity, is_gone
from chatdb.timeparse import parse_seconds

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

LOCK_NAME = "maintenance"
DEFAULT_TTL_SECONDS = 30.0
TTL_ENV = "CHATDB_JOB_LEASE_TTL"
LOCK_WAIT = "2s"  # how long taking, renewing or giving back the lease waits for its row
BREAK_WAIT = "30s"  # how long breaking it waits for a batch of its holder to finish
POLL_SECONDS = 1.0
_held: ContextVar[JobLease | None] = ContextVar("chatdb_job_lease", default=None)


def lease_ttl() -> float:
    """The lease's time to live in seconds (``CHATDB_JOB_LEASE_TTL``: 30s, 2min, at least 1s)."""
    raw = os.environ.get(TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_TTL_SECONDS
    try:
        seconds = parse_seconds(raw)
    except UsageError:
        raise UsageError(f"{TTL_ENV} must look like 30s or 2min, got {raw!r}") from None
    if seconds < 1:
        raise UsageError(f"{TTL_ENV} must be at least 1s, got {raw!r}")
    return seconds


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the lease, as the row says (times are the server's)."""

    job: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_age: float  # seconds since the last heartbeat
    expires_in: float  # seconds until it expires (negative: expired, free to take)
    token: uuid.UUID
    process: str | None = None  # where the pid means something (see chatdb.jobs.liveness)

    def describe(self) -> str:
        since = self.started_at.isoformat(sep=" ", timespec="seconds")
        return f"{self.job} pid {self.pid} on host {self.host} since {since} (heartbeat {self.heartbeat_age:.0f} s ago)"

    @property
    def gone(self) -> bool:
        """True when certain that the holder's process no longer exists (same machine only)."""
        return is_gone(self.process, self.pid)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "heartbeat_age_seconds": round(self.heartbeat_age, 3),
            "expires_in_seconds": round(self.expires_in, 3),
            "process_gone": self.gone,
        }


@dataclass(frozen=True)
class LockWait:
    """Sent to a job's progress callback while it waits for the lease."""

    holder: LeaseHolder | None
    waited: float  # seconds so far
    wait: float  # seconds it will wait at most

    def message(self) -> str:
        who = ""
        if self.holder is not None:
            since = self.holder.started_at.isoformat(sep=" ", timespec="seconds")
            who = f" held by {self.holder.job} pid {self.holder.pid} on host {self.holder.host} since {since}"
        return f"waiting for the maintenance lock{who} (Ctrl-C to stop)"


def _table() -> Table:
    from chatdb.models import job_leases

    return job_leases


def _ttl_interval(seconds: float) -> Any:
    return bindparam("ttl", timedelta(seconds=seconds), type_=Interval)


def _lock_wait(conn: Connection, wait: str = LOCK_WAIT) -> None:
    from chatdb.jobs.queries import LOCAL_LOCK_TIMEOUT

    conn.execute(text(LOCAL_LOCK_TIMEOUT), {"lock": wait})


def _is_lock_timeout(error: BaseException) -> bool:
    return getattr(getattr(error, "orig", None), "sqlstate", None) == "55P03"


def read_holder(conn: Connection) -> LeaseHolder | None:
    t = _table()
    now = func.clock_timestamp()
    row = conn.execute(
        select(
            t.c.job,
            t.c.host,
            t.c.pid,
            t.c.started_at,
            func.extract("epoch", now - t.c.heartbeat_at),
            func.extract("epoch", t.c.expires_at - now),
            t.c.token,
            t.c.process,
        ).where(t.c.name == LOCK_NAME)
    ).first()
    if row is None:
        return None
    return LeaseHolder(row[0], row[1], int(row[2]), row[3], float(row[4]), float(row[5]), row[6], row[7])


class JobLease:
    """The lease one job holds, with its heartbeat."""

    def __init__(self, db: Database, job: str, ttl: float) -> None:
        self.db = db
        self.job = job
        self.ttl = ttl
        self.token = uuid.uuid4()
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.process = identity()
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def application_name(self) -> str:
        return f"chatdb {self.job} pid {self.pid}"

    def try_take(self) -> bool:
        """Insert the lease, or take over one whose holder is gone; False when someone else holds it.

        The holder is gone when its lease has expired, or when it ran on this
        machine and its process no longer exists (killed). Neither step waits
        on a live holder: the insert does nothing on a conflict, and taking
        over waits (briefly) only if a batch of the old holder still runs.
        """

        t = _table()
        now = func.clock_timestamp()
        values = {
            "token": self.token,
            "job": self.job[:63],
            "host": self.host,
            "pid": self.pid,
            "process": self.process,
            "started_at": now,
            "heartbeat_at": now,
            "expires_at": now + _ttl_interval(self.ttl),
        }
        with self.db.translate():
            with self.db.engine.connect() as conn, conn.begin():
                inserted = conn.execute(
                    insert(t).values(name=LOCK_NAME, **values).on_conflict_do_nothing().returning(t.c.token)
                ).first()
                if inserted is not None:
                    return True
                holder = read_holder(conn)
            if holder is None or not (holder.expires_in < 0 or holder.gone):
                return False
            takeover = update(t).where(t.c.name == LOCK_NAME, t.c.token == holder.token)
            if not holder.gone:
                takeover = takeover.where(t.c.expires_at < now)
            try:
                with self.db.engine.connect() as conn, conn.begin():
                    _lock_wait(conn)
                    return conn.execute(takeover.values(**values).returning(t.c.token)).first() is not None
            except exc.OperationalError as error:
                if _is_lock_timeout(error):  # a batch of the old holder still holds the row
                    return False
                raise

    def renew(self) -> bool:
        """Push the expiry one time-to-live ahead; False when the row is no longer ours."""

        t = _table()
        now = func.clock_timestamp()
        with self.db.translate(), self.db.engine.connect() as conn, conn.begin():
            _lock_wait(conn)
            renewed = conn.execute(
                update(t)
                .where(t.c.name == LOCK_NAME, t.c.token == self.token)
                .values(heartbeat_at=now, expires_at=now + _ttl_interval(self.ttl))
                .returning(t.c.token)
            ).first()
        return renewed is not None

    def _heartbeat(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    self.lost = "it was broken (chatdb lock break) or taken over"
                    return
                last, self.lost = time.monotonic(), None
            except Exception:
                if time.monotonic() - last > self.ttl:
                    self.lost = "it could not be renewed in time"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._heartbeat, name="chatdb-lease", daemon=True)
        self._thread.start()

    def check(self, conn: Connection) -> None:
        """Inside a batch transaction: hold the row (FOR KEY SHARE) or stop before the batch works."""

        t = _table()
        mine = conn.execute(
            select(t.c.token)
            .where(t.c.name == LOCK_NAME, t.c.token == self.token)
            .with_for_update(key_share=True, read=True)
        ).first()
        if mine is None:
            reason = self.lost or "it was broken (chatdb lock break) or taken over after it expired"
            raise JobLeaseLostError(f"{self.job} lost the maintenance lock: {reason}; it stopped before its next batch")

    def release(self) -> None:
        """Stop the heartbeat and delete the row (if still ours), retrying briefly if the server is back."""

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        t = _table()
        deadline = time.monotonic() + 3
        while True:
            try:
                with self.db.translate(), self.db.engine.connect() as conn, conn.begin():
                    _lock_wait(conn)
                    conn.execute(delete(t).where(t.c.name == LOCK_NAME, t.c.token == self.token))
                return
            except ChatdbError as error:
                # Left behind, the row expires by itself; a restarting server may answer in a moment.
                if not isinstance(error, DatabaseUnavailable) or time.monotonic() > deadline:
                    return
                time.sleep(0.5)


def acquire(db: Database, job: str, *, wait: float | None, progress: Callable[[Any], None] | None = None) -> JobLease:
    """Take the lease for ``job``, waiting up to ``wait`` seconds (None: do not wait)."""
    lease = JobLease(db, job, lease_ttl())
    started = time.monotonic()
    holder: LeaseHolder | None = None
    try:
        while not lease.try_take():
            with db.translate(), db.engine.connect() as conn:
                holder = read_holder(conn)
            waited = time.monotonic() - started
            if holder is None:
                continue  # released between the two statements: try again at once
            if wait is None or waited >= wait:
                raise JobLockedError(_locked_message(db, holder, wait), parameters=("wait",))
            if progress is not None:
                progress(LockWait(holder, waited, wait))
            time.sleep(min(POLL_SECONDS, max(0.05, wait - waited)))
    except KeyboardInterrupt:
        who = f" held by {holder.describe()}" if holder else ""
        raise JobInterrupted(f"interrupted while waiting for the maintenance lock{who}; nothing was done") from None
    lease.start()
    return lease


def _locked_message(db: Database, holder: LeaseHolder, wait: float | None) -> str:
    waited = f" after waiting {wait:g}s" if wait else ""
    return (
        f"the maintenance lock on {db.display_url} is held by {holder.describe()}{waited}; "
        "run again when it has finished or with {wait} SECONDS to wait for it, or, if that job is gone, "
        "end its lease "
        f"with chatdb lock break (unless renewed, it expires in {max(0.0, holder.expires_in):.0f} s)"
    )


def held(db: Database) -> JobLease | None:
    """The lease this job holds on ``db`` (for the batch guard), if any."""
    lease = _held.get()
    return lease if lease is not None and lease.db is db else None


def set_held(lease: JobLease | None) -> Any:
    return _held.set(lease)


def reset_held(token: Any) -> None:
    _held.reset(token)


def lease_status(db: Database) -> LeaseHolder | None:
    """Who holds the maintenance lease now (None: nobody)."""
    from chatdb.migrations import require_tables
    from chatdb.models import LEASE_TABLE

    with db.translate(), db.engine.connect() as conn:
        require_tables(conn, LEASE_TABLE)
        return read_holder(conn)


def break_lease(db: Database) -> LeaseHolder | None:
    """Delete the maintenance lease, whoever holds it; return who held it (None: nobody).

    A holder that is still alive stops before its next batch (its batch guard
    no longer finds its row); a batch it is running when the lease is broken
    finishes first, because the delete waits for that batch's row lock.
    """

    from chatdb.migrations import require_tables
    from chatdb.models import LEASE_TABLE
    from chatdb.topology import require_writable

    t = _table()
    with db.translate():
        with db.engine.connect() as conn, conn.begin():
            require_tables(conn, LEASE_TABLE)
            require_writable(conn, "lock break", db.display_url)
            holder = read_holder(conn)
            _lock_wait(conn, BREAK_WAIT)
            try:
                conn.execute(delete(t).where(t.c.name == LOCK_NAME))
            except exc.OperationalError as error:
                if not _is_lock_timeout(error) or holder is None:
                    raise
                raise ChatdbError(
                    f"a batch of {holder.describe()} is running; the lease was not broken, try again"
                ) from None
    return holder
