"""What every maintenance job shares: the job lock, short batch transactions,
progress reports, timing, and how an interrupted or failed run is reported.

A job that changes rows holds the maintenance lease (:mod:`chatdb.jobs.lease`,
a row renewed in short transactions, so it holds through a transaction-mode
pooler too) for its whole run, so two such jobs never work on one database at
once. Its work happens in batches, each in its own short transaction with
``lock_timeout`` and ``statement_timeout`` set locally: a batch either commits
whole or leaves nothing, so a run stopped at any point (Ctrl-C, ``kill -9``, a
lost connection) is finished by running the job again.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatdb.errors import ChatdbError, JobInterrupted, JobLockedError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

DEFAULT_BATCH_SIZE = 1000
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "60s"
_TIMEOUT_RE = re.compile(r"^\d+\s*(ms|s|min)?$")


@dataclass(frozen=True)
class ProgressUpdate:
    """How far a job's current phase has got, in conversations."""

    phase: str
    done: int
    total: int | None


ProgressCallback = Callable[[ProgressUpdate], None]


@dataclass(frozen=True)
class JobTimeouts:
    """How long one batch may wait for a table lock, and run, before it fails.

    Rows the application holds are skipped (``SKIP LOCKED``), not waited on;
    these bound the rest, so the application never waits on a job for longer
    than one short batch.
    """

    lock: str = DEFAULT_LOCK_TIMEOUT
    statement: str = DEFAULT_STATEMENT_TIMEOUT

    @classmethod
    def from_env(cls) -> JobTimeouts:
        return cls(
            lock=_timeout_env("CHATDB_JOB_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT),
            statement=_timeout_env("CHATDB_JOB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT),
        )


def _timeout_env(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    if not _TIMEOUT_RE.match(value):
        raise UsageError(f"{name} must look like 500ms, 10s or 1min, got {value!r}")
    return value


def check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    return batch_size


@contextmanager
def job_lock(
    db: Database,
    job: str,
    *,
    wait: float | None = None,
    writes: bool = True,
    progress: Callable[[Any], None] | None = None,
) -> Iterator[None]:
    """Check the database once, then hold the maintenance lease for the block if the job ``writes``.

    Before anything else, on every job: chatdb's tables exist and its schema is
    at this chatdb's newest revision (a database migrated by a newer chatdb, or
    not yet migrated, is refused), and a job that writes is refused on a
    read-only standby. A job that only reads (an export, a dry run) takes no
    lease: it reads one snapshot and changes nothing. A job that writes holds
    the lease (:mod:`chatdb.jobs.lease`), waiting up to ``wait`` seconds for it
    (None: :class:`JobLockedError` at once), and tells ``progress`` while it
    waits (:class:`~chatdb.jobs.lease.LockWait`).
    """
    from chatdb.inspection import require_current_schema
    from chatdb.jobs import lease as leases
    from chatdb.topology import require_writable

    with db.translate(), db.engine.connect() as conn:
        # Every job reads or writes both tables: say "run chatdb migrate", not "relation does not exist".
        require_current_schema(conn)
        if writes:
            require_writable(conn, job, db.display_url)
    if not writes:
        yield
        return
    held = leases.acquire(db, job, wait=wait, progress=progress)
    token = leases.set_held(held)
    try:
        yield
    finally:
        leases.reset_held(token)
        held.release()


@contextmanager
def job_connection(db: Database) -> Iterator[Connection]:
    """The connection a job runs its batches on (one for the whole run, not one per batch)."""
    with db.translate(), db.engine.connect() as conn:
        yield conn


@contextmanager
def batch_transaction(db: Database, conn: Connection, timeouts: JobTimeouts) -> Iterator[Connection]:
    """One batch on ``conn``: a transaction with local lock and statement timeouts, committed on success.

    Inside a job that holds the maintenance lease, the batch first holds the
    lease's row, and stops before any work if the lease is no longer its own.
    """
    from sqlalchemy import text

    from chatdb.jobs.lease import held

    lease = held(db)
    with db.translate(), conn.begin():
        conn.execute(
            text(
                "SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :stmt, true), "
                "set_config('application_name', :name, true)"
            ),
            # The batch's name shows who is working in pg_stat_activity: "chatdb prune pid 4242".
            {"lock": timeouts.lock, "stmt": timeouts.statement,
             "name": lease.application_name if lease else db.settings.application_name},
        )
        if lease is not None:
            lease.check(conn)
        yield conn


class JobRun:
    """Times a job, stops it cleanly on Ctrl-C or SIGTERM, and says how far it got.

    Use as a context manager around the batches, and run each batch (its
    transaction and :meth:`advance`) inside :meth:`batch`: a first Ctrl-C or
    SIGTERM during a batch lets that batch commit and be counted, then stops
    the job; a second one stops it at once (the batch rolls back). Stopping
    becomes :class:`JobInterrupted` (exit 130); a failure keeps its own type.
    Both messages say what was finished.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, job: str, progress: ProgressCallback | None = None) -> None:
        self.job = job
        self.progress = progress
        self.started = time.monotonic()
        self.phase = job
        self.total: int | None = None
        self.done = 0
        self.batches = 0
        self.unit = "conversations"
        self._in_batch = False
        self._stop_requested = False
        self._previous: dict[int, Any] = {}

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def start_phase(self, phase: str, total: int | None, unit: str = "conversations") -> None:
        self.phase, self.total, self.done, self.unit = phase, total, 0, unit
        self.report()

    def advance(self, rows: int) -> None:
        self.done += rows
        self.batches += 1
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(ProgressUpdate(self.phase, self.done, self.total))

    def how_far(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        return f"{self.phase} stopped after {self.done}{of} {self.unit} in {self.batches} batches"

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One batch that a first stop request lets finish."""
        self._in_batch = True
        try:
            yield
        finally:
            self._in_batch = False
        if self._stop_requested:
            raise KeyboardInterrupt

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._in_batch and not self._stop_requested:
            self._stop_requested = True
            return
        raise KeyboardInterrupt

    def __enter__(self) -> JobRun:
        # Signal handlers can only be installed from the main thread.
        if threading.current_thread() is threading.main_thread():
            for sig in self._SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            raise JobInterrupted(
                f"interrupted: {self.how_far()}; finished batches are kept, run it again to finish"
            ) from None
        if isinstance(exc, ChatdbError) and not isinstance(exc, (UsageError, JobLockedError, JobInterrupted)):
            if self.batches:
                exc.message = f"{exc.message} ({self.how_far()}; finished batches are kept, run it again to finish)"
                exc.args = (exc.message,)
        return False


def rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0
