"""Running chatdb as a separate process, to kill it (``kill -9``) or race it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from helpers import TestDatabase


def start(
    db: TestDatabase, *args: str, url: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``python -m chatdb --database-url URL ARGS...`` in the background (``env``: extra variables)."""
    return subprocess.Popen(
        [sys.executable, "-m", "chatdb", "--database-url", url or db.url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 60) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (fails the test if it finished first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the job ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.01)
    kill(proc)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def finish(db: TestDatabase, *args: str) -> dict:
    """Run a job to the end (waiting for the dead job's lock to be released) and return its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "chatdb", "--database-url", db.url, *args, "--wait", "30", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
