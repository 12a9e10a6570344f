"""The pager for long output on a terminal, as git and psql use one.

Output is held back until it is longer than the screen; only then is the pager
started and given everything, so a short listing prints as it is. The pager is
``$CHATDB_PAGER``, else ``$PAGER``, else ``less -SR`` (long lines scroll
sideways instead of wrapping); an empty value, ``cat``, ``--no-pager``, or a
stdout that is not a terminal means no pager.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from typing import IO, Any

DEFAULT_PAGER = "less -SR"


class PagerClosed(BrokenPipeError):
    """The person quit the pager before the output ended: a normal way to stop reading."""


def pager_command(disabled: bool = False) -> str | None:
    if disabled or not sys.stdout.isatty():
        return None
    for name in ("CHATDB_PAGER", "PAGER"):
        if name in os.environ:
            chosen = os.environ[name].strip()
            return None if chosen in ("", "cat") else chosen
    return DEFAULT_PAGER if shutil.which("less") else None


class Pager:
    """A writer that prints directly until a screenful has gathered, then feeds a pager."""

    def __init__(self, command: str, height: int) -> None:
        self.command = command
        self.height = max(height - 1, 1)
        self._held: list[str] = []
        self._lines = 0
        self._process: subprocess.Popen[str] | None = None
        self._stdin: IO[str] | None = None
        self._sigint: Any = None

    def write(self, text: str) -> None:
        if self._stdin is not None:
            self._send(text)
            return
        self._held.append(text)
        self._lines += text.count("\n")
        if self._lines > self.height:
            self._start()

    def _start(self) -> None:
        env = dict(os.environ)
        env.setdefault("LESS", "SR")
        try:
            self._process = subprocess.Popen(
                self.command,
                shell=True,
                stdin=subprocess.PIPE,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError:
            self._flush_held()  # no pager after all: print as if there were none
            return
        self._stdin = self._process.stdin
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C belongs to the pager while it runs (less uses it to stop a search).
            self._sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        held, self._held = "".join(self._held), []
        self._send(held)

    def _send(self, text: str) -> None:
        assert self._stdin is not None
        try:
            self._stdin.write(text)
        except (BrokenPipeError, ValueError):
            raise PagerClosed() from None

    def _flush_held(self) -> None:
        if self._held:
            sys.stdout.write("".join(self._held))
            self._held = []
        sys.stdout.flush()

    def close(self) -> None:
        """Hand over the rest and wait for the person to quit the pager."""
        if self._process is None:
            self._flush_held()
            return
        try:
            if self._stdin is not None:
                self._stdin.close()
        except BrokenPipeError:
            pass
        finally:
            self._process.wait()
            if self._sigint is not None:
                signal.signal(signal.SIGINT, self._sigint)
                self._sigint = None
