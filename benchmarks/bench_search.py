"""``chatdb search`` with and without its index, the index's size and build time, and what it costs ``add``.

Run it on a database filled by ``chatdb seed`` (demo users ``chatdb-seed-*``):

    chatdb seed --messages 500000
    python benchmarks/bench_search.py --database-url URL [--rounds 30] [--adds 300]

It drops the search index if there is one, then measures, in this order:

1. search without the index: a query over all messages (the statement
   ``chatdb search`` runs, bypassing its large-table refusal, to show why it
   refuses) and the same query narrowed to one user (what it allows);
2. ``add`` (the repository's, one message per transaction) without the index;
3. the concurrent build: its duration and the index's size;
4. the same searches with the index, and ``add`` again.

Each search is run ``--rounds`` times over a few phrases (a tenth as often
when it reads every match of a common phrase: seconds each), common ones
(each matching 6-20% of seeded messages) and rare ones (matching a few of 50
planted messages); each ``add`` phase times ``--adds`` inserts into the demo
conversations. What the benchmark wrote is deleted at the end. Prints p50/p95/p99 in milliseconds. The index is left in place
when ``--keep-index`` is given.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from sqlalchemy import text

from chatdb.config import Settings, normalize_url
from chatdb.db import Database
from chatdb.jobs.search_index import create_search_index, drop_search_index
from chatdb.reports.search import DEFAULT_CONFIG, SearchQuery, index_status, search_statement
from chatdb.repositories import MessageRepository

# Seeded text repeats a small vocabulary: each of these matches 6-20% of all messages, so the
# ranking, not the finding, is the work. RARE phrases match the few needles the benchmark plants.
COMMON = ["grapes", '"give my dog grapes"', "kidney or raisins", "flexbox -python", "sourdough starter"]
RARE = ["xylophone", '"quokka xylophone"', "quokka or marimba", "marimba -quokka"]
NEEDLES = 50
BENCH_MARK = {"bench": "search"}


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {cuts[49]:8.2f}  p95 {cuts[94]:8.2f}  p99 {cuts[98]:8.2f} ms  (n={len(samples)})"


def time_searches(db: Database, rounds: int, user: str | None, phrases: list[str]) -> list[float]:
    samples = []
    with db.engine.connect() as conn:
        index = index_status(conn)
        config = index.config if index.valid and index.config else DEFAULT_CONFIG
        for _ in range(rounds):
            for phrase in phrases:
                statement = search_statement(SearchQuery(phrase, user=user), config, None)
                started = time.perf_counter()
                conn.execute(statement).all()
                samples.append((time.perf_counter() - started) * 1000)
                conn.rollback()
    return samples


def time_adds(db: Database, targets: list[tuple], count: int, rng: random.Random) -> list[float]:
    samples = []
    with db.session() as session:
        messages = MessageRepository(session)
        for _ in range(count):
            conversation, user = rng.choice(targets)
            text = f"benchmark message about {rng.choice(['grapes', 'raisins', 'flexbox', 'sourdough'])} {rng.random()}"
            started = time.perf_counter()
            messages.add(conversation, user, "user", text, BENCH_MARK)
            session.commit()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--adds", type=int, default=300)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--keep-index", action="store_true")
    args = parser.parse_args()
    db = Database(Settings(url=normalize_url(args.database_url)))
    rng = random.Random(16)
    with db.engine.connect() as conn:
        messages = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        targets = [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT id, user_id FROM conversations WHERE user_id LIKE 'chatdb-seed-%' AND status = 'active' "
                    "ORDER BY id LIMIT 200"
                )
            ).all()
        ]
        user = conn.execute(
            text(
                "SELECT user_id FROM conversations WHERE user_id LIKE 'chatdb-seed-%' "
                "GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1"
            )
        ).scalar_one()
        user_messages = conn.execute(text("SELECT count(*) FROM messages WHERE user_id = :u"), {"u": user}).scalar_one()
    print(f"messages: {messages:,}; narrowed searches use {user} ({user_messages:,} messages)")
    drop_search_index(db)
    with db.engine.begin() as conn:  # the needles: rare words in a few messages, spread over users
        for k in range(NEEDLES):
            conversation, owner = targets[k % len(targets)]
            words = ["quokka xylophone", "marimba", "quokka", "xylophone marimba"][k % 4]
            conn.execute(
                text(
                    "INSERT INTO messages (conversation_id, user_id, role, content, metadata) "
                    "VALUES (:c, :u, 'user', :t, CAST(:m AS jsonb))"
                ),
                {
                    "c": conversation,
                    "u": owner,
                    "t": f"my order {k} arrived with a {words} inside",
                    "m": '{"bench": "search"}',
                },
            )
    slow = max(args.rounds // 10, 1)
    print("without the index")
    for label, phrases in (("common", COMMON), ("rare", RARE)):
        print(f"  search {label}, all messages  {percentiles(time_searches(db, slow, None, phrases))}")
        print(f"  search {label}, one user      {percentiles(time_searches(db, args.rounds, user, phrases))}")
    before = time_adds(db, targets, args.adds, rng)
    print(f"  add                          {percentiles(before)}")
    change = create_search_index(db, config=args.config)
    print(
        f"index build (CREATE INDEX CONCURRENTLY, {args.config}): {change.duration_seconds:.1f} s, "
        f"{change.after.size_bytes / 1048576:,.1f} MB"
    )
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE messages"))
        conn.commit()
    print("with the index")
    print(f"  search common, all messages  {percentiles(time_searches(db, slow, None, COMMON))}")
    print(f"  search common, one user      {percentiles(time_searches(db, args.rounds, user, COMMON))}")
    print(f"  search rare, all messages    {percentiles(time_searches(db, args.rounds, None, RARE))}")
    print(f"  search rare, one user        {percentiles(time_searches(db, args.rounds, user, RARE))}")
    after = time_adds(db, targets, args.adds, rng)
    print(f"  add                          {percentiles(after)}")

    def p95(s):
        return statistics.quantiles(s, n=100, method="inclusive")[94]

    print(f"add p95 with / without the index: {p95(after) / p95(before):.2f}")
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM messages WHERE metadata = CAST(:m AS jsonb)"), {"m": '{"bench": "search"}'})
    if not args.keep_index:
        drop_search_index(db)


if __name__ == "__main__":
    main()
