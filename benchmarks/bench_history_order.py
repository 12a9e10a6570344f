"""Two ways to read a history page in ``(created_at, id)`` order, through raw psycopg.

The exact query (``ORDER BY created_at DESC, id DESC LIMIT 20``: an index scan
plus an incremental sort of the page) against reading the index in its own
order with 4 spare rows (``ORDER BY created_at DESC LIMIT 24``, the plan's
pattern 2 with a larger limit) and ordering the ties in Python. Two
connections, alternating call by call, over active conversations of the
database given; prints p50/p95/p99 in milliseconds.

    python benchmarks/bench_history_order.py --database-url URL [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from chatdb.repositories import statements as sql

INDEX_ORDER = (
    "SELECT id, conversation_id, user_id, role, content, metadata, created_at FROM messages"
    " WHERE conversation_id = %(conversation_id)s ORDER BY created_at DESC LIMIT %(limit)s"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--calls", type=int, default=3000, help="conversations read, each by both forms")
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as exact_conn, psycopg.connect(url) as index_conn:
        cids = [
            row[0]
            for row in exact_conn.execute(
                "SELECT id FROM conversations WHERE status = 'active' ORDER BY random() LIMIT %s", [args.calls]
            )
        ]
        exact_conn.commit()
        exact_sql = sql.history("none", "none")
        took: dict[str, list[float]] = {"exact query, LIMIT 20": [], "index order, LIMIT 24 + sort": []}

        def exact(cid: object) -> None:
            exact_conn.execute(exact_sql, {"conversation_id": cid, "limit": 20}).fetchall()

        def index_order(cid: object) -> None:
            rows = index_conn.execute(INDEX_ORDER, {"conversation_id": cid, "limit": 24}).fetchall()
            sorted(rows, key=lambda row: (row[6], row[0]), reverse=True)[:20]

        for i, cid in enumerate(cids * 2):  # the second pass is timed: the pages are in cache
            calls = [("exact query, LIMIT 20", exact), ("index order, LIMIT 24 + sort", index_order)]
            for name, call in calls[::-1] if i % 2 else calls:
                started = time.perf_counter()
                call(cid)
                if i >= len(cids):
                    took[name].append(time.perf_counter() - started)
    for name, values in took.items():
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        print(f"{name:<32} p50 {cuts[49] * 1000:.3f}  p95 {cuts[94] * 1000:.3f}  p99 {cuts[98] * 1000:.3f} ms")


if __name__ == "__main__":
    main()
