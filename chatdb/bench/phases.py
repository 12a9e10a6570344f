"""The benchmark's two phases: the patterns one at a time, then many clients at once."""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import TYPE_CHECKING

from chatdb.bench.latency import Latency
from chatdb.bench.report import GOALS_MS, ConcurrencyResult, PatternResult, ServerLimits
from chatdb.bench.worker import Workers, check_stop, split
from chatdb.errors import ConflictError

if TYPE_CHECKING:
    from chatdb.bench.run import BenchOptions
    from chatdb.db import Database

WARMUP_ROUNDS = 5
MIN_ROUNDS = 20
FREE_CONNECTIONS = 2  # left for others when sizing the pools from max_connections
READY_TIMEOUT = 120.0


def sequential_phase(
    db: Database,
    seconds: float,
    history: list[uuid.UUID],
    recent: list[str],
    conversation_id: uuid.UUID,
    user_id: str,
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
                order: list[tuple[str, ChatdbPatterns | RawPatterns]] = [("chatdb", chatdb), ("raw", raw)]
                rng.shuffle(order)
                for impl, runner in order:
                    check_stop()
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


def concurrency_phase(
    db: Database,
    options: BenchOptions,
    limits: ServerLimits,
    seconds: float,
    history: list[uuid.UUID],
    recent: list[str],
    conversation_ids: list[uuid.UUID],
    user_id: str,
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
    client_counts = split(options.clients, workers)
    pool_sizes = split(connections, workers)
    group = Workers()
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
                    "clients": [{"conversation_id": str(next(own)), "seed": next(seeds)} for _ in range(clients)],
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
