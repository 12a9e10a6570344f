"""Throughput, batch latency and peak memory of chatdb's maintenance jobs.

For each data size, in one run against one server:

* archive: ``archive_conversations`` against the same keyset batches written
  by hand with psycopg (same batch size, same locking statement);
* prune: ``prune_conversations`` against hand-written psycopg batches (select
  ``FOR UPDATE SKIP LOCKED``, delete messages, delete conversations);
* export: ``export_conversations`` (jsonl) against ``COPY conversations`` +
  ``COPY messages TO STDOUT`` into a file, and against ``COPY`` of the same
  JSON lines.

Each chatdb job runs in a child process (this script with ``--child``), so its
peak RSS is measured alone (``wait4``); batch latencies come from the job's
progress callback. Data is generated server-side with ``generate_series``.

    python benchmarks/bench_jobs.py --url postgresql://postgres@127.0.0.1:5432/postgres \\
        --messages 2000000 --small 500000

The script creates and drops its own database on that server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

CUTOFF = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 1000
ZERO = uuid.UUID(int=0)


# -- data ---------------------------------------------------------------------


def load(url: str, conversations: int, per: int, status: str) -> float:
    """Generate ``conversations`` x ``per`` messages server-side; returns seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE messages, conversations")
        conn.execute(
            "INSERT INTO users (id) SELECT 'bench-' || g FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING"
        )
        conn.execute(
            """
            INSERT INTO conversations (id, user_id, status, created_at, updated_at)
            SELECT gen_random_uuid(), 'bench-' || (g %% 1000 + 1), %s,
                   timestamptz '2020-01-01' + g * interval '1 second' - interval '1 day',
                   timestamptz '2020-01-01' + g * interval '1 second'
            FROM generate_series(1, %s) g
            """,
            [status, conversations],
        )
        conn.execute(
            """
            INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at)
            SELECT c.id, c.user_id, CASE WHEN k %% 2 = 1 THEN 'user' ELSE 'assistant' END,
                   repeat('lorem ipsum dolor ', 8) || k,
                   CASE WHEN k %% 3 = 0 THEN jsonb_build_object('tokens', k * 7, 'model', 'm1') END,
                   c.created_at + k * interval '1 minute'
            FROM conversations c, generate_series(1, %s) k
            """,
            [per],
        )
        conn.execute("VACUUM ANALYZE conversations")
        conn.execute("VACUUM ANALYZE messages")
    return time.perf_counter() - started


def reset_status(url: str, status: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE conversations SET status = %s", [status])
        conn.execute("VACUUM ANALYZE conversations")


# -- hand-written baselines ----------------------------------------------------


def raw_archive(url: str) -> dict:
    latencies, rows = [], 0
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        last = ZERO
        while True:
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '60s'")
                ids = conn.execute(
                    """
                    WITH batch AS (
                        SELECT id FROM conversations
                        WHERE status = 'active' AND updated_at < %s AND id > %s
                        ORDER BY id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED)
                    UPDATE conversations c SET status = 'archived' FROM batch WHERE c.id = batch.id
                    RETURNING c.id
                    """,
                    [CUTOFF, last, BATCH],
                ).fetchall()
            if not ids:
                break
            latencies.append(time.perf_counter() - t0)
            last = max(r[0] for r in ids)
            rows += len(ids)
    return summary(rows, time.perf_counter() - started, latencies)


def raw_prune(url: str) -> dict:
    latencies, rows = [], 0
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        last = ZERO
        while True:
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '60s'")
                ids = [
                    r[0]
                    for r in conn.execute(
                        """
                    SELECT id FROM conversations
                    WHERE status = 'archived' AND updated_at < %s AND id > %s
                    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
                    """,
                        [CUTOFF, last, BATCH],
                    )
                ]
                if ids:
                    rows += conn.execute("DELETE FROM messages WHERE conversation_id = ANY(%s)", [ids]).rowcount
                    rows += conn.execute("DELETE FROM conversations WHERE id = ANY(%s)", [ids]).rowcount
            if not ids:
                break
            latencies.append(time.perf_counter() - t0)
            last = ids[-1]
    return summary(rows, time.perf_counter() - started, latencies)


def raw_copy(url: str, target: Path, query: str | None = None) -> dict:
    """COPY ... TO STDOUT into a file: both tables, or one query's output."""
    started = time.perf_counter()
    written = 0
    statements = (
        [query]
        if query
        else [
            "COPY conversations TO STDOUT",
            "COPY messages TO STDOUT",
        ]
    )
    with psycopg.connect(url) as conn, open(target, "wb") as out:
        rows = conn.execute("SELECT (SELECT count(*) FROM conversations) + (SELECT count(*) FROM messages)").fetchone()[
            0
        ]
        for statement in statements:
            with conn.cursor().copy(statement) as copy:
                for block in copy:
                    out.write(block)
                    written += len(block)
        out.flush()
        os.fsync(out.fileno())
    result = summary(rows, time.perf_counter() - started, [])
    result["bytes"] = written
    return result


JSON_LINES_COPY = """
COPY (
  SELECT json_build_object('id', c.id, 'user_id', c.user_id, 'status', c.status,
         'created_at', c.created_at, 'updated_at', c.updated_at,
         'messages', coalesce((SELECT json_agg(json_build_object('id', m.id, 'conversation_id', m.conversation_id,
              'user_id', m.user_id, 'role', m.role, 'content', m.content, 'metadata', m.metadata,
              'created_at', m.created_at) ORDER BY m.created_at, m.id)
            FROM messages m WHERE m.conversation_id = c.id), '[]'::json))
  FROM conversations c ORDER BY c.id
) TO STDOUT
"""


def summary(rows: int, seconds: float, latencies: list[float]) -> dict:
    result = {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds) if seconds else 0}
    if latencies:
        result.update(latency_percentiles(latencies))
    return result


def latency_percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "batches": len(ordered),
        "batch_ms_p50": round(q[49] * 1000, 2),
        "batch_ms_p95": round(q[94] * 1000, 2),
        "batch_ms_p99": round(q[98] * 1000, 2),
    }


# -- chatdb, in a child process -----------------------------------------------


def child(job: str, url: str, target: str | None) -> None:
    """Run one chatdb job in this process and print its figures as JSON."""
    from chatdb.config import Settings
    from chatdb.db import Database
    from chatdb.filters import ConversationFilter

    stamps: list[float] = []

    def progress(update) -> None:
        stamps.append(time.perf_counter())

    selection = ConversationFilter.build(older_than=CUTOFF)
    db = Database(Settings(url=url.replace("postgresql://", "postgresql+psycopg://", 1)))
    started = time.perf_counter()
    if job == "archive":
        from chatdb.jobs.archive import archive_conversations

        result = archive_conversations(db, selection, batch_size=BATCH, progress=progress)
        rows = result.changed
    elif job == "prune":
        from chatdb.jobs.prune import prune_conversations

        result = prune_conversations(db, selection, batch_size=BATCH, progress=progress)
        rows = result.deleted_conversations + result.deleted_messages
    elif job == "export":
        from chatdb.jobs.export import export_conversations

        result = export_conversations(db, selection, Path(target or ""), batch_size=BATCH, progress=progress)
        rows = result.conversations + result.messages
    else:
        raise SystemExit(f"unknown job {job}")
    seconds = time.perf_counter() - started
    db.dispose()
    # Batch latency: time between successive progress reports (the first one starts the phase).
    latencies = [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True)] if len(stamps) > 2 else []
    figures = summary(rows, seconds, latencies)
    if job == "export":
        figures["bytes"] = result.bytes
    print(json.dumps(figures))


def run_child(job: str, url: str, target: Path | None = None) -> dict:
    args = [sys.executable, __file__, "--child", job, "--url", url]
    if target is not None:
        args += ["--target", str(target)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"chatdb {job} failed: {err.decode()}")
    figures = json.loads(out)
    figures["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    return figures


# -- the run ------------------------------------------------------------------


def bench_size(url: str, messages: int, per: int, workdir: Path) -> dict:
    conversations = messages // per
    figures: dict = {"conversations": conversations, "messages": conversations * per}
    figures["load_seconds"] = round(load(url, conversations, per, "active"), 1)

    # Both archive runs start from the same state: every row rewritten once and vacuumed.
    reset_status(url, "active")
    figures["archive_chatdb"] = run_child("archive", url)
    reset_status(url, "active")
    figures["archive_raw"] = raw_archive(url)
    # Now everything is archived and older than the cutoff.

    export_file = workdir / "export.jsonl"
    figures["export_chatdb"] = run_child("export", url, export_file)
    export_file.unlink()
    figures["export_copy_tables"] = raw_copy(url, workdir / "copy.tsv")
    figures["export_copy_json"] = raw_copy(url, workdir / "copy-json.tsv", JSON_LINES_COPY)
    figures["export_copy_json"]["rows"] = figures["export_copy_tables"]["rows"]
    figures["export_copy_json"]["rows_per_second"] = round(
        figures["export_copy_json"]["rows"] / figures["export_copy_json"]["seconds"]
    )
    for name in ("copy.tsv", "copy-json.tsv"):
        (workdir / name).unlink()

    # Both prune runs start from freshly loaded data.
    load(url, conversations, per, "archived")
    figures["prune_chatdb"] = run_child("prune", url)
    load(url, conversations, per, "archived")
    figures["prune_raw"] = raw_prune(url)

    def ratio(a: str, b: str) -> float:
        return round(figures[a]["rows_per_second"] / figures[b]["rows_per_second"], 2)

    figures["ratios"] = {
        "archive_vs_raw": ratio("archive_chatdb", "archive_raw"),
        "prune_vs_raw": ratio("prune_chatdb", "prune_raw"),
        "export_vs_copy_tables": ratio("export_chatdb", "export_copy_tables"),
        "export_vs_copy_json": ratio("export_chatdb", "export_copy_json"),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url", default=os.environ.get("CHATDB_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--small", type=int, default=500_000, help="a second, smaller size for the memory comparison")
    parser.add_argument("--per-conversation", type=int, default=10)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.target)
        return

    from chatdb import migrations
    from chatdb.config import Settings
    from chatdb.db import Database

    name = f"chatdb_bench_{os.getpid()}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        version = admin.execute("SHOW server_version").fetchone()[0]
    url = args.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with Database(Settings(url=url.replace("postgresql://", "postgresql+psycopg://", 1))) as db:
            migrations.migrate(db)
        report = {"server_version": version, "batch_size": BATCH, "sizes": {}}
        with tempfile.TemporaryDirectory(prefix=".bench-jobs-", dir=Path(__file__).parent) as tmp:
            for size in sorted({args.small, args.messages}):
                print(f"-- {size} messages", file=sys.stderr)
                report["sizes"][str(size)] = bench_size(url, size, args.per_conversation, Path(tmp))
                print(json.dumps(report["sizes"][str(size)], indent=2), file=sys.stderr)
        print(json.dumps(report, indent=2))
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
