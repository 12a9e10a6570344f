"""Run the benchmark: set up its own rows, time the patterns, load the pool, clean up.

1. **Sequential.** The plan's three patterns (history read, a user's recent
   conversations, add message) through chatdb's repositories and through raw
   psycopg, interleaved in random order round by round, so both see the same
   caches and the same background load.
2. **Concurrency.** N clients as threads in a few worker processes
   (:mod:`chatdb.bench.worker`), each process with one chatdb connection pool;
   the pools together stay within the connections the server can give.

Reads go to a random sample of the conversations already in the database (it
only reads them). Writes go to the benchmark's own user, ``chatdb-bench-…``,
and its own conversations; all of them are deleted at the end, also after a
failure or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from chatdb.bench.stats import Latency
from chatdb.errors import ChatdbError, ConflictError, JobInterrupted, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

BENCH_USER_PREFIX = "chatdb-bench-"
GOALS_MS = {"history": 100.0, "add": 50.0}  # the plan's p95 goals
GOAL_CLIENTS = 100  # "100+ concurrent connections"
DEFAULT_MIX = {"history": 0.6, "recent": 0.1, "add": 0.3}
SEQUENTIAL_SHARE = 0.4  # of --duration; the concurrency run gets the rest
WARMUP_ROUNDS = 5
MIN_ROUNDS = 20
PREFILLED_MESSAGES = 10  # in each of the benchmark's own conversations
FREE_CONNECTIONS = 2  # left for others when sizing the pools from max_connections
READY_TIMEOUT = 120.0

Phase = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    duration: float = 30.0  # seconds of measuring, both phases together
    clients: int = 100
    workers: int | None = None  # processes hosting the clients; default: one per core, at least 2
    connections: int | None = None  # server connections for the concurrency run; default: what fits
    sample: int = 1000  # existing conversations to read from
    pause: float = 0.0  # mean seconds a concurrent client waits between operations
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    def checked(self) -> BenchOptions:
        if self.duration <= 0:
            raise UsageError(f"{{duration}} must be positive, got {self.duration}", parameters=("duration",))
        if self.clients < 1:
            raise UsageError(f"{{clients}} must be at least 1, got {self.clients}", parameters=("clients",))
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"{{workers}} must be at least 1, got {self.workers}", parameters=("workers",))
        if self.pause < 0:
            raise UsageError(f"{{pause}} cannot be negative, got {self.pause}", parameters=("pause",))
        if self.connections is not None and self.connections < 1:
            raise UsageError(f"{{connections}} must be at least 1, got {self.connections}", parameters=("connections",))
        return self


@dataclass(frozen=True)
class PatternResult:
    name: str
    chatdb: Latency
    raw: Latency
    goal_p95_ms: float | None

    @property
    def ratio_p50(self) -> float | None:
        return _ratio(self.chatdb.p50, self.raw.p50)

    @property
    def ratio_p95(self) -> float | None:
        return _ratio(self.chatdb.p95, self.raw.p95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chatdb": self.chatdb.as_dict(),
            "raw": self.raw.as_dict(),
            "ratio_p50": self.ratio_p50,
            "ratio_p95": self.ratio_p95,
            "goal_p95_ms": self.goal_p95_ms,
        }


def _ratio(a: float, b: float) -> float | None:
    """chatdb's figure over raw psycopg's, from the millisecond figures the report shows.

    Dividing the reported (rounded) figures gives the reported ratio, so a
    reader can check one against the other.
    """
    if not (b and b == b and a == a):
        return None
    shown_a, shown_b = round(a, 3), round(b, 3)
    return round(shown_a / shown_b, 2) if shown_b else None


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int
    reserved: int  # for superusers and pg_use_reserved_connections
    in_use: int  # client connections open when the benchmark started

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved - self.in_use

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_connections": self.max_connections,
            "reserved": self.reserved,
            "in_use": self.in_use,
            "available": self.available,
        }


@dataclass(frozen=True)
class ConcurrencyResult:
    clients: int
    workers: int
    pause: float
    connections: int
    pool_sizes: list[int]
    limited_by: str  # "clients", "max_connections" or "connections" (the option)
    seconds: float
    patterns: dict[str, Latency]
    overall: Latency
    errors: int
    error_messages: dict[str, int]

    @property
    def operations(self) -> int:
        return self.overall.count + self.errors

    @property
    def throughput(self) -> float:
        return self.overall.count / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "workers": self.workers,
            "threads_per_worker": -(-self.clients // self.workers),
            "pause_seconds": self.pause,
            "connections": self.connections,
            "pool_sizes": self.pool_sizes,
            "limited_by": self.limited_by,
            "seconds": round(self.seconds, 3),
            "operations": self.operations,
            "throughput_per_second": round(self.throughput, 1),
            **{f"{k}": v for k, v in self.overall.as_dict().items() if k != "count"},
            "patterns": {name: latency.as_dict() for name, latency in self.patterns.items()},
            "errors": self.errors,
            "error_messages": self.error_messages,
        }


@dataclass(frozen=True)
class Goal:
    name: str
    measured: str
    status: str  # "pass", "fail" or "not run"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "measured": self.measured, "status": self.status}


@dataclass(frozen=True)
class BenchReport:
    database: str
    server_version: str
    prepared_statements: bool
    conversations: int  # about, from the planner's statistics
    messages: int
    read_sample: int  # existing conversations the reads were spread over
    own_data_only: bool
    limits: ServerLimits
    sequential: dict[str, PatternResult]
    concurrency: ConcurrencyResult
    cleanup: dict[str, int]
    seconds: float

    @property
    def errors(self) -> int:
        return self.concurrency.errors

    @property
    def goals(self) -> list[Goal]:
        found = []
        load = self.concurrency.patterns
        for name, label in (("history", "history read"), ("add", "add message")):
            goal = GOALS_MS[name]
            for where, latency in (("", self.sequential[name].chatdb), (" under load", load[name])):
                ok = latency.count > 0 and latency.p95 < goal
                found.append(Goal(f"{label} p95 < {goal:g} ms{where}", f"{latency.p95:.1f} ms", "pass" if ok else "fail"))
        clients = self.concurrency.clients
        found.append(
            Goal(
                f"{GOAL_CLIENTS}+ concurrent clients, no errors",
                f"{clients} clients, {self.errors} errors",
                "not run" if clients < GOAL_CLIENTS else ("pass" if self.errors == 0 else "fail"),
            )
        )
        return found

    @property
    def passed(self) -> bool:
        return all(goal.status == "pass" for goal in self.goals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "prepared_statements": self.prepared_statements,
            "data": {
                "conversations": self.conversations,
                "messages": self.messages,
                "read_sample": self.read_sample,
                "own_data_only": self.own_data_only,
            },
            "server": self.limits.as_dict(),
            "sequential": {name: result.as_dict() for name, result in self.sequential.items()},
            "concurrency": self.concurrency.as_dict(),
            "errors": self.errors,
            "goals": [goal.as_dict() for goal in self.goals],
            "passed": self.passed,
            "cleanup": self.cleanup,
            "seconds": round(self.seconds, 3),
        }


# --- setup and cleanup ----------------------------------------------------------


def _server_limits(conn: Connection) -> ServerLimits:
    from sqlalchemy import text

    row = conn.execute(
        text(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
            " + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int"
        )
    ).one()
    return ServerLimits(row[0], row[1], row[2])


def _table_sizes(conn: Connection) -> tuple[int, int]:
    from sqlalchemy import text

    found = dict(
        conn.execute(
            text(
                "SELECT relname, greatest(reltuples, 0)::bigint FROM pg_class "
                "WHERE oid IN (to_regclass('conversations'), to_regclass('messages'))"
            )
        ).all()
    )
    return int(found.get("conversations", 0)), int(found.get("messages", 0))


def _sample(conn: Connection, size: int, estimated: int) -> list[tuple[uuid.UUID, str]]:
    """Up to ``size`` existing conversations, chosen at random (cheaply on big tables)."""
    from sqlalchemy import text

    if estimated > 20 * size:
        percent = min(100.0, 300.0 * size / estimated)
        rows = conn.execute(
            text("SELECT id, user_id FROM conversations TABLESAMPLE SYSTEM (:percent) LIMIT :size"),
            {"percent": percent, "size": size},
        ).all()
        if len(rows) >= size // 2:
            return [(r[0], r[1]) for r in rows]
    rows = conn.execute(
        text("SELECT id, user_id FROM conversations ORDER BY random() LIMIT :size"), {"size": size}
    ).all()
    return [(r[0], r[1]) for r in rows]


def _create_own_rows(conn: Connection, user_id: str, count: int) -> list[uuid.UUID]:
    from sqlalchemy import text

    from chatdb import ids

    conversation_ids = [ids.uuid7() for _ in range(count)]
    conn.execute(
        text("INSERT INTO conversations (id, user_id) SELECT c, :user FROM unnest(CAST(:ids AS uuid[])) AS c"),
        {"user": user_id, "ids": conversation_ids},
    )
    conn.execute(
        text(
            "INSERT INTO messages (conversation_id, user_id, role, content, created_at) "
            "SELECT c, :user, CASE WHEN k % 2 = 0 THEN 'user' ELSE 'assistant' END, "
            "'An earlier message of this conversation.', now() - make_interval(mins => :n - k) "
            "FROM unnest(CAST(:ids AS uuid[])) AS c, generate_series(0, :n - 1) AS k"
        ),
        {"user": user_id, "ids": conversation_ids, "n": PREFILLED_MESSAGES},
    )
    return conversation_ids


def _remove_own_rows(db: Database, user_id: str) -> dict[str, int]:
    from sqlalchemy import text

    from chatdb.jobs.runner import JobTimeouts

    with db.connect() as conn:
        # Fail fast, like every job, rather than wait on a lock someone holds on these rows.
        conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": JobTimeouts.from_env().lock})
        messages = conn.execute(
            text(
                "DELETE FROM messages WHERE conversation_id IN "
                "(SELECT id FROM conversations WHERE user_id = :user)"
            ),
            {"user": user_id},
        ).rowcount
        conversations = conn.execute(
            text("DELETE FROM conversations WHERE user_id = :user"), {"user": user_id}
        ).rowcount
        users = conn.execute(text("DELETE FROM users WHERE id = :user"), {"user": user_id}).rowcount
    return {"users": users, "conversations": conversations, "messages": messages}


def _check_stop() -> None:
    """End the run here, between two operations, if a stop was requested (Ctrl-C, SIGTERM).

    The signal handler only counts requests while bench runs: raised from the
    handler, the exception could land inside a transaction (or be swallowed by
    a garbage-collector callback) and leave a connection holding locks that
    the cleanup would then wait on.
    """
    from chatdb.jobs import stopping

    if stopping.requests():
        raise stopping.StopRequested


# --- the sequential phase ----------------------------------------------------------


def _sequential(
    db: Database, seconds: float, history: list[uuid.UUID], recent: list[str],
    conversation_id: uuid.UUID, user_id: str,
) -> dict[str, PatternResult]:
    from chatdb.bench.patterns import PATTERNS, ChatdbPatterns, RawPatterns, raw_connect

    rng = random.Random()
    chatdb = ChatdbPatterns(db)
    samples: dict[tuple[str, str], list[float]] = {(p, i): [] for p in PATTERNS for i in ("chatdb", "raw")}
    turn = 0
    with db.translate(), raw_connect(db.settings) as conn:
        raw = RawPatterns(conn)
        deadline = time.monotonic() + seconds
        rounds = 0
        while time.monotonic() < deadline or rounds < MIN_ROUNDS:
            target, owner = rng.choice(history), rng.choice(recent)
            for pattern in PATTERNS:
                order = [("chatdb", chatdb), ("raw", raw)]
                rng.shuffle(order)
                for impl, runner in order:
                    _check_stop()
                    started = time.perf_counter()
                    if pattern == "history":
                        runner.history(target)
                    elif pattern == "recent":
                        runner.recent(owner)
                    else:
                        runner.add(conversation_id, user_id, turn)
                        turn += 1
                    if rounds >= WARMUP_ROUNDS:
                        samples[(pattern, impl)].append((time.perf_counter() - started) * 1000)
            rounds += 1
    return {
        pattern: PatternResult(
            pattern,
            Latency.of(samples[(pattern, "chatdb")]),
            Latency.of(samples[(pattern, "raw")]),
            GOALS_MS.get(pattern),
        )
        for pattern in PATTERNS
    }


# --- the concurrency phase -----------------------------------------------------------


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _read_line(stream: IO[str], timeout: float) -> str | None:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while reader.is_alive() and time.monotonic() < deadline:
        reader.join(min(0.2, max(0.0, deadline - time.monotonic())))
        _check_stop()
    return box[0] if box else None


class _Workers:
    """The worker processes of one concurrency run; always stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[subprocess.Popen[str], IO[str]]] = []

    def start(self, config: dict[str, Any]) -> None:
        log = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatdb.bench.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
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


def _concurrency(
    db: Database, options: BenchOptions, limits: ServerLimits, seconds: float,
    history: list[uuid.UUID], recent: list[str], conversation_ids: list[uuid.UUID], user_id: str,
) -> ConcurrencyResult:
    fits = limits.available - FREE_CONNECTIONS
    if options.connections is not None:
        connections, limited_by = options.connections, "connections"
    elif options.clients <= fits:
        connections, limited_by = options.clients, "clients"
    else:
        connections, limited_by = fits, "max_connections"
    if connections < 1:
        raise ConflictError(
            f"the server has no connection to spare ({limits.max_connections} max_connections, "
            f"{limits.reserved} reserved, {limits.in_use} in use); pass {{connections}} N to choose",
            parameters=("connections",),
        )
    workers = min(options.workers or max(2, os.cpu_count() or 2), options.clients, connections)
    client_counts = _split(options.clients, workers)
    pool_sizes = _split(connections, workers)
    group = _Workers()
    seeds = iter(range(1, options.clients + 1))
    own = iter(conversation_ids)
    try:
        for clients, pool_size in zip(client_counts, pool_sizes, strict=True):
            group.start(
                {
                    "url": db.settings.url,
                    "prepared_statements": "on" if db.settings.use_prepared_statements else "off",
                    "connect_timeout": db.settings.connect_timeout,
                    "pool_size": pool_size,
                    "pool_timeout": db.settings.pool.timeout,
                    "seconds": seconds,
                    "pause": options.pause,
                    "user_id": user_id,
                    "history_targets": [str(c) for c in history],
                    "recent_targets": recent,
                    "mix": options.mix,
                    "clients": [
                        {"conversation_id": str(next(own)), "seed": next(seeds)} for _ in range(clients)
                    ],
                }
            )
        group.receive(READY_TIMEOUT)
        started = time.monotonic()
        group.send("go")
        results = group.receive(seconds + READY_TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        group.stop()
    samples: dict[str, list[float]] = {"history": [], "recent": [], "add": []}
    errors = 0
    messages: dict[str, int] = {}
    for result in results:
        for name, values in result["samples"].items():
            samples[name].extend(values)
        errors += result["errors"]
        for text, count in result["error_messages"].items():
            messages[text] = messages.get(text, 0) + count
    return ConcurrencyResult(
        clients=options.clients,
        workers=workers,
        pause=options.pause,
        connections=connections,
        pool_sizes=pool_sizes,
        limited_by=limited_by,
        seconds=min(elapsed, seconds) if elapsed > 0 else seconds,
        patterns={name: Latency.of(values) for name, values in samples.items()},
        overall=Latency.of([v for values in samples.values() for v in values]),
        errors=errors,
        error_messages=messages,
    )


# --- the whole run ---------------------------------------------------------------------


def run_bench(db: Database, options: BenchOptions, phase: Phase | None = None) -> BenchReport:
    """Measure the plan's patterns on ``db`` and return every figure.

    ``phase(message)`` is told when each step starts. Everything the run
    writes belongs to its own user and is deleted before it returns, also
    when it fails or is interrupted.
    """
    from sqlalchemy import text

    from chatdb.inspection import require_current_schema, require_tables
    from chatdb.jobs import stopping
    from chatdb.topology import require_writable

    options = options.checked()
    say = phase or (lambda message: None)
    started = time.monotonic()
    prefix = f"{BENCH_USER_PREFIX}{secrets.token_hex(4)}-"
    user_id = f"{prefix}1"
    with db.connect() as conn:
        require_tables(conn, "users", "conversations", "messages")
        require_current_schema(conn)
        require_writable(conn, "bench", db.display_url)  # it writes rows of its own
        version = str(conn.execute(text("SHOW server_version")).scalar_one())
        limits = _server_limits(conn)
        conversations, messages = _table_sizes(conn)
        sampled = _sample(conn, options.sample, conversations)
    # From here on a stop request is counted, and acted on between operations (_check_stop).
    with stopping.handling_signals(), stopping.listening(lambda count: None):
        return _measure(db, options, say, started, user_id, version, limits, conversations, messages, sampled)


def _measure(
    db: Database, options: BenchOptions, say: Phase, started: float, user_id: str, version: str,
    limits: ServerLimits, conversations: int, messages: int, sampled: list[tuple[uuid.UUID, str]],
) -> BenchReport:
    from chatdb.demo_users import create_demo_users

    created = False
    try:
        _check_stop()
        say(f"Creating the benchmark's user {user_id} and {options.clients + 1} conversations")
        with db.connect() as conn:
            create_demo_users(conn, [user_id])
            created = True
            own = _create_own_rows(conn, user_id, options.clients + 1)
        history = [c for c, _ in sampled] or own
        recent = sorted({u for _, u in sampled}) or [user_id]
        sequential_seconds = options.duration * SEQUENTIAL_SHARE
        say(f"Sequential: history, recent conversations, add message, chatdb and raw psycopg ({sequential_seconds:.0f} s)")
        sequential = _sequential(db, sequential_seconds, history, recent, own[0], user_id)
        db.dispose()  # the workers get the connections
        load_seconds = options.duration - sequential_seconds
        say(f"Concurrency: {options.clients} clients ({load_seconds:.0f} s)")
        _check_stop()
        concurrency = _concurrency(db, options, limits, load_seconds, history, recent, own[1:], user_id)
    except KeyboardInterrupt:
        if created:
            _remove_own_rows(db, user_id)
        raise JobInterrupted("interrupted; the benchmark's own rows were removed") from None
    except BaseException:
        if created:
            _remove_own_rows(db, user_id)
        raise
    say("Removing the benchmark's rows")
    cleanup = _remove_own_rows(db, user_id)
    return BenchReport(
        database=db.display_url,
        server_version=version,
        prepared_statements=db.settings.use_prepared_statements,
        conversations=conversations,
        messages=messages,
        read_sample=len(sampled) if sampled else len(own),
        own_data_only=not sampled,
        limits=limits,
        sequential=sequential,
        concurrency=concurrency,
        cleanup=cleanup,
        seconds=time.monotonic() - started,
    )
