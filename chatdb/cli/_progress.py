"""A job's progress bar on stderr, and the last progress a job reported (for its failure report)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The last update any job reported in this command, for the JSON failure report.
last_update: Any = None


def reset() -> None:
    global last_update
    last_update = None


class JobProgress:
    """A Rich progress bar with ETA on stderr for a job's phases; nothing off a terminal or when quiet.

    Use as a context manager and pass :attr:`callback` as the job's progress
    callback. The bar appears with the first update (never before: a job may
    first ask a question), :meth:`suspended` takes it off the screen while a
    prompt waits, and a phase that ends is drawn complete. While the job waits
    for the maintenance lock it says so: on a terminal as a live line with the
    time waited, off a terminal as one line when the wait starts and one when
    it ends (nothing when quiet).
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.enabled = not quiet and sys.stderr.isatty()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._phase: str | None = None
        self._waiting: Any = None  # the live "waiting for the lock" task
        self._wait_began: float | None = None  # off a terminal: when the wait began (monotonic)

    @property
    def callback(self) -> Any:
        return self.update

    def __enter__(self) -> JobProgress:
        reset()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            if exc[0] is None:
                self._complete(self._phase)
            self._progress.stop()
            self._progress = None

    def _start(self) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        from chatdb.cli._output import stderr

        class Counts(ProgressColumn):
            """``1,200/16,572`` (``1,200/?`` while the total is unknown), in chatdb's number style."""

            def render(self, task: Any) -> Text:
                total = "?" if task.total is None else f"{int(task.total):,}"
                return Text(f"{int(task.completed):,}/{total}", style="progress.download")

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            Counts(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=stderr(),
            transient=False,
        )
        self._progress.start()

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """No live display while the block runs (a prompt is drawn and answered there)."""
        running = self._progress is not None
        if running:
            self._progress.stop()
        try:
            yield
        finally:
            if running:
                self._progress.start()

    def _complete(self, phase: str | None) -> None:
        task = self._tasks.get(phase) if phase else None
        if task is not None:
            done = self._progress.tasks[task].completed
            self._progress.update(task, total=done, completed=done)

    def update(self, event: Any) -> None:
        global last_update
        if _is_lock_wait(event):
            self._lock_wait(event)
            return
        last_update = event
        if not self.enabled:
            self._lock_wait_ended()
            return
        if self._progress is None:
            self._start()
        if self._waiting is not None:  # the lock is ours: the job's own phases follow
            self._progress.remove_task(self._waiting)
            self._waiting = None
        if event.phase != self._phase:
            self._complete(self._phase)  # the phase before has ended: it shows N/N, not N/?
            self._phase = event.phase
        task = self._tasks.get(event.phase)
        if task is None:
            task = self._tasks[event.phase] = self._progress.add_task(event.phase.capitalize(), total=event.total)
        self._progress.update(task, completed=event.done, total=event.total)

    def _lock_wait(self, event: Any) -> None:
        from chatdb.cli._output import info

        if self.quiet:
            return
        if not self.enabled:
            if self._wait_began is None:
                info(event.message())
                self._wait_began = time.monotonic() - event.waited
            return
        if self._progress is None:
            self._start()
        if self._waiting is None:  # who holds it, once, above a live line with the time waited
            info(event.message())
            self._waiting = self._progress.add_task("Waiting for the lock", total=event.wait)
        self._progress.update(self._waiting, completed=event.waited, total=event.wait)

    def _lock_wait_ended(self) -> None:
        if self._wait_began is not None and not self.quiet:
            from chatdb.cli._output import info

            info(f"got the maintenance lock after waiting {time.monotonic() - self._wait_began:.0f} s")
        self._wait_began = None


def _is_lock_wait(event: Any) -> bool:
    return hasattr(event, "waited") and hasattr(event, "message")


def progress_dict() -> dict[str, Any] | None:
    if last_update is None:
        return None
    return {"phase": last_update.phase, "done": last_update.done, "total": last_update.total}
