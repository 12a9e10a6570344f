"""What server-side prepared statements are worth to chatdb's statements, on a direct connection.

chatdb turns psycopg's automatic prepared statements off for every configured
URL (a transaction-mode pooler cannot keep them; see docs/operations.md). This
times the plan's read patterns, the very SQL the repositories run
(:mod:`chatdb.repositories.statements`), on two psycopg connections to the same
database: one that prepares every statement, one that never does. The two
alternate call by call, in random order, so both see the same server, cache
and noise. Prints p50/p95/p99 in milliseconds.

    python benchmarks/bench_prepared.py --database-url URL

URL is a migrated database holding conversations (``chatdb seed`` makes
some); the benchmark only reads.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import psycopg

from chatdb.repositories import statements as sql


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a migrated database with conversations")
    parser.add_argument("--iterations", type=int, default=4000, help="timed calls per statement and side")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first")
    args = parser.parse_args(argv)
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    prepared = psycopg.connect(url, autocommit=True, prepare_threshold=0)
    plain = psycopg.connect(url, autocommit=True, prepare_threshold=None)
    rows = prepared.execute("SELECT id, user_id FROM conversations ORDER BY random() LIMIT 1000").fetchall()
    if not rows:
        raise SystemExit("the database holds no conversations: run chatdb seed first")
    version = prepared.execute("SHOW server_version").fetchone()[0]
    messages = prepared.execute("SELECT count(*) FROM messages").fetchone()[0]
    statements = {
        "history (20 newest)": (sql.history("none", "none"), lambda r: {"conversation_id": r[0], "limit": 20}),
        "recent conversations (50)": (
            sql.list_for_user("active", "none"),
            lambda r: {"user_id": r[1], "status": "active", "limit": 50},
        ),
    }
    print(
        f"PostgreSQL {version}; {len(rows)} conversations sampled of a table with {messages:,} messages; "
        f"{args.iterations} timed calls per statement and side after {args.warmup} warm-up calls"
    )
    rng = random.Random()
    for name, (query, params) in statements.items():
        timings: dict[str, list[float]] = {"prepared": [], "not prepared": []}
        for i in range(args.warmup + args.iterations):
            row = rng.choice(rows)
            sides = [("prepared", prepared), ("not prepared", plain)]
            rng.shuffle(sides)
            for side, conn in sides:
                started = time.perf_counter()
                conn.execute(query, params(row)).fetchall()
                if i >= args.warmup:
                    timings[side].append((time.perf_counter() - started) * 1000)
        for side, values in timings.items():
            print(
                f"  {name:27} {side:13} p50 {percentile(values, 0.5):6.3f}  p95 {percentile(values, 0.95):6.3f}"
                f"  p99 {percentile(values, 0.99):6.3f}  mean {statistics.mean(values):6.3f} ms"
            )
    prepared.close()
    plain.close()


if __name__ == "__main__":
    main()
