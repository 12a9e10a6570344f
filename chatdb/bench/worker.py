"""One process of ``chatdb bench``'s concurrency run: many clients as threads.

Run as ``python -m chatdb.bench.worker``. The parent writes one JSON line of
configuration on stdin (the URL travels there, never on the command line),
the worker opens its connection pool and answers ``{"ready": ...}``, waits for
a line ``go``, runs its clients for the given number of seconds, and prints
one JSON line of results: every latency sample per pattern and the errors.

Its clients share one :class:`chatdb.db.Database` whose pool is sized by the
parent, so all workers together stay within the server's connection limit.
It imports only the database stack the clients use.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


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

    def client(conversation_id: uuid.UUID, seed: int) -> None:
        rng = random.Random(seed)
        mine: dict[str, list[float]] = {"history": [], "recent": [], "add": []}
        failed: Counter[str] = Counter()
        turn = 0
        while time.monotonic() < deadline:
            name = pick(rng, mix)
            started = time.perf_counter()
            try:
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
