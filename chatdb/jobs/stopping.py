"""Stopping when told to (Ctrl-C, SIGTERM) at a point where stopping is safe.

A signal handler never raises into a job. Python runs handlers between any two
bytecodes, also inside ``finally`` blocks, SQLAlchemy's pool and garbage-collector
callbacks; an exception raised there is lost ("Exception ignored in …") and the
job runs on, or it leaves a half-done step behind. So the handler only counts the
request, and the job looks at the count at its stop points (batch boundaries and
long loops, :meth:`chatdb.jobs.runner.JobRun.check_stop`). Besides counting, the
handler of a running job cancels the statements in flight (psycopg's
``cancel_safe``) when waiting for them would keep the job from stopping for
nothing: any request that arrives outside a batch (nothing there is committed, so
nothing is lost), and a second request inside one (the batch rolls back). A first
request inside a batch lets the batch finish and commit.

Where nothing can be left half done (a prompt, a sleep), :func:`interruptible`
lets the handler raise at once. Outside any job (a read-only command, the time
before a job's lock is taken) the first SIGINT or SIGTERM raises
KeyboardInterrupt, as Python does by default for SIGINT; later ones are only
counted, so that reporting the stop is not itself interrupted. The count still
says a stop was asked for if that exception is lost.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CANCEL_TIMEOUT = 5.0  # seconds to get a cancel request to the server


class StopRequested(KeyboardInterrupt):
    """Raised at a stop point once a stop was requested (a KeyboardInterrupt, so ``except Exception`` passes it on)."""


class _Requests:
    """The process's stop requests, from the outermost :func:`handling_signals` on."""

    def __init__(self) -> None:
        self.count = 0
        self.depth = 0
        self.previous: dict[int, Any] = {}
        self.listener: Callable[[int], None] | None = None  # the running job's reaction
        self.raising = 0  # depth of interruptible() blocks
        self.exiting = False  # the outermost block is the process's whole life


_requests = _Requests()


def _on_signal(signum: int, frame: Any) -> None:
    _requests.count += 1
    listener = _requests.listener
    if _requests.raising or (listener is None and _requests.count == 1):
        raise StopRequested
    if listener is not None:
        listener(_requests.count)
    # Otherwise a stop is already under way (its error being reported): counted, nothing more.


@contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT and SIGTERM are counted as stop requests inside the block (outermost block: from zero).

    Only the main thread can install signal handlers; elsewhere this does
    nothing (and no request is ever counted).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _requests.depth == 0:
        _requests.count = 0
        _requests.previous = {sig: signal.signal(sig, _on_signal) for sig in SIGNALS}
    _requests.depth += 1
    try:
        yield
    finally:
        _requests.depth -= 1
        if _requests.depth == 0:
            for sig, handler in _requests.previous.items():
                signal.signal(sig, signal.SIG_IGN if _requests.exiting else handler)
            _requests.previous = {}
            _requests.listener = None


def ignore_after_exit() -> None:
    """The process ends when the outermost block does: from then on a late signal is ignored.

    Otherwise a second Ctrl-C in the last moments would turn the exit status
    the user was told about (130, say) into a death by SIGINT.
    """
    _requests.exiting = True


def requests() -> int:
    """How many stop requests arrived since the outermost :func:`handling_signals` began."""
    return _requests.count if _requests.depth else 0


@contextmanager
def listening(listener: Callable[[int], None]) -> Iterator[None]:
    """Call ``listener(count)`` from the handler instead of raising, for the block (a running job)."""
    outer = _requests.listener
    _requests.listener = listener
    try:
        yield
    finally:
        _requests.listener = outer


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside the block a stop request raises :class:`StopRequested` at once (a prompt, a sleep)."""
    _requests.raising += 1
    try:
        if requests():
            raise StopRequested
        yield
    finally:
        _requests.raising -= 1


class StatementsInFlight:
    """The statements running on any engine's connections, so that a stop request can cancel them.

    Installed only while a job runs: it listens to SQLAlchemy's cursor events on
    every :class:`~sqlalchemy.engine.Engine`, from every thread.
    """

    def __init__(self) -> None:
        self._running: dict[int, Any] = {}
        self.cancelled = 0

    def _before(self, conn: Any, cursor: Any, *args: Any) -> None:
        self._running[id(cursor)] = cursor.connection

    def _after(self, conn: Any, cursor: Any, *args: Any) -> None:
        self._running.pop(id(cursor), None)

    def _error(self, context: Any) -> None:
        cursor = getattr(context, "cursor", None)  # not set for a failure to connect
        if cursor is not None:
            self._running.pop(id(cursor), None)

    def __enter__(self) -> StatementsInFlight:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        event.listen(Engine, "handle_error", self._error)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)
        event.remove(Engine, "handle_error", self._error)
        self._running.clear()

    def cancel(self) -> None:
        """Ask the server to cancel every statement in flight (it ends with QueryCanceled)."""
        for connection in list(self._running.values()):
            try:
                connection.cancel_safe(timeout=CANCEL_TIMEOUT)
                self.cancelled += 1
            except Exception:
                pass


def was_cancelled(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is PostgreSQL's "canceling statement due to user request"."""
    seen = 0
    while exc is not None and seen < 10:
        orig = getattr(exc, "orig", None)
        for candidate in (exc, orig):
            if getattr(candidate, "sqlstate", None) == "57014" and "user request" in str(candidate):
                return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
