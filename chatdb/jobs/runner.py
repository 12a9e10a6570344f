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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from chatdb.errors import ChatdbError, JobInterrupted, JobLockedError, UsageError
from chatdb.jobs import stopping
from chatdb.jobs.results import ResultT
from chatdb.jobs.stopping import StatementsInFlight, StopRequested
from chatdb.timeparse import parse_timeout

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

DEFAULT_BATCH_SIZE = 1000
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "60s"


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
    def given(cls, timeouts: JobTimeouts | None) -> JobTimeouts:
        """``timeouts``, or the environment's (``CHATDB_JOB_LOCK_TIMEOUT``, ``CHATDB_JOB_STATEMENT_TIMEOUT``)."""
        return timeouts if timeouts is not None else cls.from_env()

    @classmethod
    def from_env(cls) -> JobTimeouts:
        return cls(
            lock=_timeout_env("CHATDB_JOB_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT),
            statement=_timeout_env("CHATDB_JOB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT),
        )


def _timeout_env(name: str, default: str) -> str:
    return parse_timeout(os.environ.get(name, default), name)


def check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
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
    from chatdb.jobs import lease as leases
    from chatdb.migrations import require_current_schema
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
    A second stop request that came during the batch rolls it back instead.
    """
    from sqlalchemy import text

    from chatdb.jobs import queries
    from chatdb.jobs.lease import held

    lease = held(db)
    with db.translate(), conn.begin():
        conn.execute(
            text(queries.BATCH_START),
            {
                "lock": timeouts.lock,
                "stmt": timeouts.statement,
                "name": lease.application_name if lease else db.settings.application_name,
            },
        )
        if lease is not None:
            lease.check(conn)
        yield conn
        if _current is not None:
            _current.check_stop()


def set_timeouts(conn: Connection, timeouts: JobTimeouts) -> None:
    """``lock_timeout`` and ``statement_timeout`` for the rest of ``conn``'s transaction only.

    Local settings are what a transaction-mode pooler (PgBouncer, Neon's
    pooled endpoint) allows: a session setting would stay on a server
    connection that other clients get next.
    """
    from sqlalchemy import text

    from chatdb.jobs import queries

    conn.execute(text(queries.LOCAL_TIMEOUTS), {"lock": timeouts.lock, "stmt": timeouts.statement})


@contextmanager
def job_transaction(db: Database, timeouts: JobTimeouts) -> Iterator[Connection]:
    """A transaction for a job's statements outside its batches (counting, checking), with the job's timeouts.

    Like the batches, it waits for a table lock at most ``timeouts.lock``:
    every statement of a job fails fast behind an ``ACCESS EXCLUSIVE`` lock.
    """
    with db.transaction() as conn:
        set_timeouts(conn, timeouts)
        yield conn


class JobRun:
    """Times a job, stops it when told to, and says how far it got.

    Use as a context manager around the job's work and run each batch (its
    transaction and :meth:`advance`) inside :meth:`batch`. Ctrl-C and SIGTERM
    only record a stop request (:mod:`chatdb.jobs.stopping`); the job stops at
    its next stop point: entering or leaving a batch, :meth:`advance`,
    :meth:`start_phase`, or a :meth:`check_stop` in a long loop. A first request
    during a batch lets that batch commit; a second one, or one outside a batch,
    also cancels the statement in flight (a batch then rolls back). Stopping
    becomes :class:`JobInterrupted` (exit 130) whose message says what is true
    afterwards: what was committed, or that nothing was; a failure keeps its own
    type and says the same.

    A job may set :attr:`unchanged` (what is true while no batch has committed:
    "nothing was written under FILE"), :attr:`rerun` (what finishes the work),
    or :attr:`outcome` (a function giving the whole account, for jobs whose
    work is not counted in batches).
    """

    def __init__(self, job: str, progress: ProgressCallback | None = None) -> None:
        self.job = job
        self.progress = progress
        self.started = time.monotonic()
        self.phase = job
        self.total: int | None = None
        self.done = 0
        self.batches = 0  # in the whole run (a result's count)
        self.phase_batches = 0  # in the current phase (what a message counts)
        self.committed = 0  # batches that committed (advanced inside batch()), in the whole run
        self.unit = "conversations"
        self.unchanged = "nothing was changed"
        self.rerun = "run it again to finish"
        self.outcome: Callable[[], str] | None = None
        self._began = False  # a phase was started
        self._finished: str | None = None
        self._urgent = False
        self._in_batch = 0  # batches in progress (in any thread)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._exits: ExitStack | None = None
        self._statements = StatementsInFlight()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (the job stops at its next stop point)."""
        return stopping.requests() > 0

    def check_stop(self) -> None:
        """Stop here (raise :class:`StopRequested`) if a stop was requested.

        Inside a batch only a second request (or one that came before the
        batch) stops it: a first one lets the batch finish.
        """
        if stopping.requests() and (self._urgent or not getattr(self._local, "in_batch", False)):
            raise StopRequested

    def interruptible(self) -> Any:
        """A block (a prompt, a sleep) in which a stop request raises at once."""
        return stopping.interruptible()

    def start_phase(self, phase: str, total: int | None, unit: str = "conversations") -> None:
        self.check_stop()
        self.phase, self.total, self.done, self.unit = phase, total, 0, unit
        self.phase_batches = 0
        self._began = True
        self.report()

    def advance(self, rows: int) -> None:
        """A batch is done: inside :meth:`batch`, after its transaction committed."""
        self.done += rows
        self.batches += 1
        self.phase_batches += 1
        if getattr(self._local, "in_batch", False):
            self.committed += 1
        self.report()
        self.check_stop()

    def close(self, result: ResultT) -> ResultT:
        """Write the run's batches and duration into ``result`` (a job's result dataclass), and return it."""
        result.batches = self.batches
        result.duration_seconds = self.elapsed
        return result

    def report(self) -> None:
        if self.progress is not None:
            self.progress(ProgressUpdate(self.phase, self.done, self.total))

    def finished(self, account: str) -> None:
        """The work is done (``account`` says what it left): a later stop request says so."""
        self._finished = account

    def how_far(self) -> str:
        if not self._began:
            return f"{self.job} stopped before it began"
        of = f" of {self.total}" if self.total is not None else ""
        where = f"{self.job} stopped" if self.phase == self.job else f"{self.job} stopped in its {self.phase} phase"
        batches = f" in {self.phase_batches} batches" if self.committed and self.phase_batches else ""
        return f"{where} after {self.done}{of} {self.unit}{batches}"

    def account(self) -> str:
        """What is true after the run stopped here, and how to finish the work."""
        if self._finished is not None:
            return f"it had finished: {self._finished}"
        if self.outcome is not None:
            return self.outcome()
        if self.committed:
            return f"the finished batches are committed; {self.rerun}"
        return f"{self.unchanged}; run it again"

    def interrupted(self, cause: BaseException | None = None) -> JobInterrupted:
        """The :class:`JobInterrupted` for a stop at this point (``cause``: a failure while stopping)."""
        message = f"interrupted: {self.how_far()}; {self.account()}"
        if isinstance(cause, ChatdbError) and not stopping.was_cancelled(cause):
            message += f" (while stopping: {cause.message})"
        error = JobInterrupted(message)
        error.progress = {
            "job": self.job,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "batches": self.phase_batches,
            "committed_batches": self.committed,
        }
        return error

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One batch (its transaction and :meth:`advance`): a first stop request lets it finish."""
        self.check_stop()
        with self._lock:
            self._in_batch += 1
        self._local.in_batch = True
        try:
            yield
        finally:
            self._local.in_batch = False
            with self._lock:
                self._in_batch -= 1
        self.check_stop()

    def _on_request(self, count: int) -> None:
        # Runs in the signal handler: no raising, no locks.
        if count >= 2 or self._in_batch == 0:
            self._urgent = True
            self._statements.cancel()

    def __enter__(self) -> JobRun:
        global _current
        exits = ExitStack()
        exits.enter_context(stopping.handling_signals())
        exits.enter_context(self._statements)
        exits.enter_context(stopping.listening(self._on_request))
        self._exits = exits
        self._outer, _current = _current, self
        if stopping.requests():  # asked to stop before the job began (while it waited for the lock)
            self._urgent = True
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        global _current
        _current = self._outer
        stop_requested = self.stopping
        if self._exits is not None:
            self._exits.close()
            self._exits = None
        if stop_requested:
            # Whatever ended the run after a stop request, it was stopped; say what is true.
            if exc is None or not isinstance(exc, (UsageError, JobLockedError, JobInterrupted)):
                raise self.interrupted(exc) from None
            return False
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            raise self.interrupted() from None
        if isinstance(exc, ChatdbError) and not isinstance(exc, (UsageError, JobLockedError, JobInterrupted)):
            if self.committed:
                exc.message = f"{exc.message} ({self.how_far()}; {self.account()})"
                exc.args = (exc.message,)
        return False


_current: JobRun | None = None
