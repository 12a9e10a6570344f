"""chatdb on a real pseudo-terminal of a given size, its screen rendered by a terminal emulator (pyte)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

import pyte


class Terminal:
    """``python -m chatdb ARGS`` with a pty as its stdin, stdout and stderr, ``columns`` × ``lines``."""

    def __init__(self, *args: str, columns: int = 80, lines: int = 24, env: dict[str, str] | None = None) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
        full_env.update({"COLUMNS": str(columns), "LINES": str(lines), "TERM": "xterm-256color"})
        full_env.update(env or {})
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its controlling terminal is the pty
            try:
                os.execve(sys.executable, [sys.executable, "-m", "chatdb", *args], full_env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.status: int | None = None

    def _pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the child has gone and closed its side
            return False
        if not data:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, fragment: str, timeout: float = 60) -> str:
        """Read output until ``fragment`` is on the screen (whitespace ignored, so wrapped lines count)."""
        wanted = "".join(fragment.split())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted in "".join(self.text().split()):
                return self.text()
            if not self._pump(0.2) and self._exited():
                break
        raise AssertionError(f"{fragment!r} never appeared; the screen shows:\n{self.text()}")

    def settle(self, quiet: float = 0.5, timeout: float = 10) -> None:
        """Read until the program has written nothing for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pump(quiet):
            pass

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def interrupt(self) -> None:
        os.kill(self.pid, signal.SIGINT)

    def _exited(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while not self._exited():
            self._pump(0.1)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"chatdb did not finish; the screen shows:\n{self.text()}")
        while self._pump(0.05):
            pass
        os.close(self.fd)
        assert self.status is not None
        return self.status
