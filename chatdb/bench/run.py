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

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatdb.bench import fixtures
from chatdb.bench.phases import concurrency_phase, sequential_phase
from chatdb.bench.report import BenchReport, ServerLimits
from chatdb.bench.worker import check_stop
from chatdb.db import server_version
from chatdb.errors import JobInterrupted, UsageError

if TYPE_CHECKING:
    from chatdb.db import Database

BENCH_USER_PREFIX = "chatdb-bench-"
DEFAULT_MIX = {"history": 0.6, "recent": 0.1, "add": 0.3}
SEQUENTIAL_SHARE = 0.4  # of --duration; the concurrency run gets the rest

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


# --- the whole run ---------------------------------------------------------------------


def run_bench(db: Database, options: BenchOptions, phase: Phase | None = None) -> BenchReport:
    """Measure the plan's patterns on ``db`` and return every figure.

    ``phase(message)`` is told when each step starts. Everything the run
    writes belongs to its own user and is deleted before it returns, also
    when it fails or is interrupted.
    """
    from chatdb.jobs import stopping
    from chatdb.migrations import require_current_schema, require_tables
    from chatdb.topology import require_writable

    options = options.checked()
    say = phase or (lambda message: None)
    started = time.monotonic()
    prefix = f"{BENCH_USER_PREFIX}{secrets.token_hex(4)}-"
    user_id = f"{prefix}1"
    with db.transaction() as conn:
        require_tables(conn, "users", "conversations", "messages")
        require_current_schema(conn)
        require_writable(conn, "bench", db.display_url)  # it writes rows of its own
        version = server_version(conn)
        limits = fixtures.server_limits(conn)
        conversations, messages = fixtures.table_sizes(conn)
        sampled = fixtures.sample(conn, options.sample, conversations)
    # From here on a stop request is counted, and acted on between operations (check_stop).
    with stopping.handling_signals(), stopping.listening(lambda count: None):
        return _measure(db, options, say, started, user_id, version, limits, conversations, messages, sampled)


def _measure(
    db: Database,
    options: BenchOptions,
    say: Phase,
    started: float,
    user_id: str,
    version: str,
    limits: ServerLimits,
    conversations: int,
    messages: int,
    sampled: list[tuple[uuid.UUID, str]],
) -> BenchReport:
    from chatdb.jobs.demo_users import create_demo_users

    created = False
    try:
        check_stop()
        say(f"Creating the benchmark's user {user_id} and {options.clients + 1} conversations")
        with db.transaction() as conn:
            create_demo_users(conn, [user_id])
            created = True
            own = fixtures.create_own_rows(conn, user_id, options.clients + 1)
        history = [c for c, _ in sampled] or own
        recent = sorted({u for _, u in sampled}) or [user_id]
        sequential_seconds = options.duration * SEQUENTIAL_SHARE
        say(
            f"Sequential: history, recent conversations, add message, chatdb and raw psycopg ({sequential_seconds:.0f} s)"
        )
        sequential = sequential_phase(db, sequential_seconds, history, recent, own[0], user_id)
        db.dispose()  # the workers get the connections
        load_seconds = options.duration - sequential_seconds
        say(f"Concurrency: {options.clients} clients ({load_seconds:.0f} s)")
        check_stop()
        concurrency = concurrency_phase(db, options, limits, load_seconds, history, recent, own[1:], user_id)
    except KeyboardInterrupt:
        if created:
            fixtures.remove_own_rows(db, user_id)
        raise JobInterrupted("interrupted; the benchmark's own rows were removed") from None
    except BaseException:
        if created:
            fixtures.remove_own_rows(db, user_id)
        raise
    say("Removing the benchmark's rows")
    cleanup = fixtures.remove_own_rows(db, user_id)
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
