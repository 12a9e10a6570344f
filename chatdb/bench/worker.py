"""One process of ``chatdb bench``'s concurrency run: many clients as threads.

Run as ``python -m chatdb.bench.worker``. The parent writes one JSON line of
configuration on stdin (the URL travels there, never on the command line),
the worker opens its connection pool and answers ``{"ready": ...}``, waits for
a line ``go``, runs its clients for the given number of seconds, and prints
one JSON line of results: every latency sample per pattern and the errors.

Its clients share one :class:`chatdb.db.Database` whose pool is sized by the
parent, so all workers together stay within the server's connection limit;
they queue for it in arrival order (:class:`FairGate`).
It imports only the database stack the clients use.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from typing import IO, Any

from chatdb.errors import ChatdbError


class FairGate:
    """At most ``size`` clients inside at once, admitted strictly in arrival order.

    The clients of a worker outnumber its pool's connections. SQLAlchemy's pool
    does not hand a returned connection to the longest waiter: the thread that
    returned it, still holding the GIL, usually takes it straight back, and
    under saturation a few clients starve past the pool timeout. The gate
    queues the clients fairly instead, like an application server's request
    queue, and never lets more in than there are connections.
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # the leaving client hands its place over directly

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._free += 1


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def run(config: dict[str, Any]) -> None:
    from chatdb.bench.patterns import ChatdbPatterns, pick
    from chatdb.config import PoolSettings, Settings
    from chatdb.db import Database

    settings = Settings(
        url=config["url"],
        pool=PoolSettings(size=config["pool_size"], max_overflow=0, timeout=config["pool_timeout"]),
        connect_timeout=config["connect_timeout"],
        prepared_statements=config["prepared_statements"],
        application_name="chatdb-bench",
    )
    db = Database(settings)
    patterns = ChatdbPatterns(db)
    try:
        # Log the pool's connections in now, so the run measures queries, not logins.
        opened = [db.engine.connect() for _ in range(config["pool_size"])]
        for conn in opened:
            conn.close()
    except Exception as exc:  # reported to the parent, which stops the run
        _emit({"error": _describe(exc)})
        return
    _emit({"ready": True})
    if sys.stdin.readline().strip() != "go":
        return

    samples: dict[str, list[float]] = {"history": [], "recent": [], "add": []}
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + config["seconds"]
    history = [uuid.UUID(c) for c in config["history_targets"]]
    recent = config["recent_targets"]
    mix = config["mix"]
    user_id = config["user_id"]
    pause = config["pause"]
    gate = FairGate(config["pool_size"])

    def client(conversation_id: uuid.UUID, seed: int) -> None:
        rng = random.Random(seed)
        mine: dict[str, list[float]] = {"history": [], "recent": [], "add": []}
        failed: Counter[str] = Counter()
        turn = 0
        while time.monotonic() < deadline:
            if pause:
                time.sleep(pause * (0.5 + rng.random()))
            name = pick(rng, mix)
            started = time.perf_counter()
            try:
                with gate:
                    if name == "history":
                        patterns.history(rng.choice(history))
                    elif name == "recent":
                        patterns.recent(rng.choice(recent))
                    else:
                        patterns.add(conversation_id, user_id, turn)
                        turn += 1
            except Exception as exc:
                failed[_describe(exc)] += 1
                continue
            # From asking to done: the wait for a connection counts.
            mine[name].append((time.perf_counter() - started) * 1000)
        with lock:
            for name, values in mine.items():
                samples[name].extend(values)
            errors.update(failed)

    threads = [
        threading.Thread(target=client, args=(uuid.UUID(c["conversation_id"]), c["seed"]), daemon=True)
        for c in config["clients"]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.dispose()
    _emit(
        {
            "samples": {name: [round(v, 3) for v in values] for name, values in samples.items()},
            "errors": sum(errors.values()),
            "error_messages": dict(errors.most_common(5)),
        }
    )


def main() -> None:
    try:
        run(json.loads(sys.stdin.readline()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()


# --- the parent's side of the protocol ---------------------------------------------


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def check_stop() -> None:
    """End the run here, between two operations, if a stop was requested (Ctrl-C, SIGTERM).

    The signal handler only counts requests while bench runs: raised from the
    handler, the exception could land inside a transaction (or be swallowed by
    a garbage-collector callback) and leave a connection holding locks that
    the cleanup would then wait on.
    """
    from chatdb.jobs import stopping

    if stopping.requests():
        raise stopping.StopRequested


def _read_line(stream: IO[str], timeout: float) -> str | None:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while reader.is_alive() and time.monotonic() < deadline:
        reader.join(min(0.2, max(0.0, deadline - time.monotonic())))
        check_stop()
    return box[0] if box else None


class Workers:
    """The parent's side: the worker processes of one concurrency run; always stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[subprocess.Popen[str], IO[str]]] = []

    def start(self, config: dict[str, Any]) -> None:
        log = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatdb.bench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.procs.append((proc, log))
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()

    def receive(self, timeout: float) -> list[dict[str, Any]]:
        """One JSON line from every worker, or a ChatdbError saying which one failed."""
        found = []
        deadline = time.monotonic() + timeout
        for index, (proc, log) in enumerate(self.procs):
            assert proc.stdout is not None
            line = _read_line(proc.stdout, max(0.1, deadline - time.monotonic()))
            if not line:
                raise ChatdbError(f"benchmark worker {index + 1} {self._failure(proc, log)}")
            data = json.loads(line)
            if "error" in data:
                raise ChatdbError(f"benchmark worker {index + 1} failed: {data['error']}")
            found.append(data)
        return found

    def send(self, line: str) -> None:
        for proc, _ in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    @staticmethod
    def _failure(proc: subprocess.Popen[str], log: IO[str]) -> str:
        if proc.poll() is None:
            return "did not answer in time"
        log.seek(0)
        lines = [line.strip() for line in log.read().splitlines() if line.strip()]
        return f"exited with code {proc.returncode}" + (f": {lines[-1]}" if lines else "")

    def stop(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            log.close()
