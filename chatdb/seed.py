"""Realistic demo data, generated inside PostgreSQL, and its removal.

:func:`seed` fills a database with users, conversations and messages that
look like a chatbot's: conversations of very different lengths (a few very
long ones), roles alternating user/assistant, user messages within the
1,000-character limit, assistant messages with the metadata a model call
leaves (model, token counts, latency), activity spread over two years, some
conversations archived.

Every row is generated server-side with ``INSERT … SELECT … generate_series``.
A plan (each conversation's id, owner, status, start, message count and pace)
is computed first in a temporary table; then each batch of whole
conversations is written in one transaction, two batches at a time on their
own connections: an interrupted run leaves only complete conversations.

What seed creates is labelled by its users: their ids start with
:data:`SEED_USER_PREFIX`, and every seeded conversation (and message) belongs
to one of them. :func:`remove_seed` deletes exactly those users, their
conversations and their messages, in batches.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatdb.demo_users import create_demo_users
from chatdb.errors import ConflictError, UsageError
from chatdb.inspection import require_current_schema, require_tables
from chatdb.jobs.runner import JobRun, JobTimeouts, ProgressCallback, ProgressUpdate
from chatdb.topology import require_writable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

SEED_USER_PREFIX = "chatdb-seed-"
SEED_ID_DIGITS = 6
MESSAGES_PER_CONVERSATION = 20  # the default average when only --messages is given
CONVERSATIONS_PER_USER = 10
LONG_CONVERSATION_SHARE = 0.10  # of all messages, held by a few very long conversations
CONVERSATIONS_PER_LONG_ONE = 2000
ARCHIVED_SHARE = 0.15
ACTIVITY_DAYS = 730
DEFAULT_BATCH_MESSAGES = 50_000
DEFAULT_JOBS = 2  # connections writing batches at once
REMOVE_BATCH_CONVERSATIONS = 2_000
REMOVE_BATCH_USERS = 1_000
TEXT_VARIANTS = 400  # distinct texts per role


_USER_LINES = (
    "Can you help me plan a three-day trip to Lisbon on a budget?",
    "Why does my Python script say 'list index out of range' on the last line?",
    "Rewrite this paragraph so it sounds friendlier but still professional.",
    "What is the difference between a Roth IRA and a traditional one?",
    "My sourdough starter smells like nail polish remover, is it dead?",
    "Summarize the main arguments of the article I pasted above in five bullet points.",
    "How do I center a div vertically and horizontally with flexbox?",
    "Give me a beginner workout I can do at home without equipment.",
    "Translate 'we will arrive a little late, please start without us' into Spanish.",
    "Explain recursion like I am twelve.",
    "What should I ask in a job interview for a senior backend role?",
    "Can you check this SQL query? It returns duplicates when I join orders and payments.",
    "Write a short poem about autumn rain for my daughter's birthday card.",
    "Is it safe to give my dog grapes?",
    "Compare PostgreSQL and MySQL for a small web shop with a few thousand orders a day.",
    "That did not work, the error is still there after I restarted the server.",
    "Thanks! Could you make it shorter and add an example?",
    "How many calories are in a bowl of oatmeal with banana and peanut butter?",
    "I have a meeting with my manager tomorrow about a raise, how should I prepare?",
    "What are good names for a bakery that also sells coffee?",
)

_ASSISTANT_LINES = (
    "Sure, here is a plan that keeps costs low while still covering the main sights.",
    "The error means the loop reads one element past the end of the list; range(len(items)) already stops before the last index, so the extra + 1 is the culprit.",
    "Here is a friendlier version that keeps the same facts and the same level of formality.",
    "Both accounts are tax-advantaged, but they differ in when you pay the tax: contributions to a traditional IRA may be deductible now, while qualified Roth withdrawals are tax-free later.",
    "A sharp acetone smell usually means the starter is hungry rather than dead. Feed it twice a day at a 1:1:1 ratio for a few days and the smell should fade.",
    "1. The author argues that remote work raises productivity for focused tasks. 2. Collaboration suffers without deliberate rituals. 3. Hybrid schedules are the most common compromise.",
    "Set the parent to display: flex, then use justify-content: center and align-items: center; give the parent a height, for example min-height: 100vh, so there is room to center in.",
    "Here is a 20-minute routine: three rounds of squats, push-ups against a table, glute bridges, a plank and jumping jacks, with 45 seconds of work and 15 seconds of rest.",
    "Llegaremos un poco tarde, por favor empiecen sin nosotros.",
    "Imagine a set of nesting dolls: to find the smallest one you open a doll, and if there is another doll inside you do the same thing again, until there is nothing left to open.",
    "Good questions show that you think about the team's work: how do you handle on-call, how are technical decisions made, and what would success look like in my first six months?",
    "The duplicates come from joining two one-to-many relations at once; aggregate the payments per order in a subquery first and join that instead.",
    "Soft rain on amber leaves, a quiet drum on the window, and you, a year older, laughing at puddles.",
    "No. Grapes and raisins can cause kidney failure in dogs even in small amounts; if your dog ate some, call your vet or an animal poison line right away.",
    "For that load either works well. PostgreSQL gives you stricter defaults, richer types such as JSONB and better support for complex queries; MySQL is familiar to many hosting providers.",
    "Let's narrow it down. Could you paste the full error message and the last twenty lines of the log? The stack trace will show which module raises it.",
    "Here is a shorter version with an example at the end, as you asked.",
    "Roughly 450 kcal: about 150 for the oats, 105 for a medium banana and 190 for two tablespoons of peanut butter.",
    "Write down three concrete results you delivered this year, look up the market range for your role, and decide in advance the number you will ask for and the lowest you would accept.",
    "A few ideas: Crumb & Bean, The Morning Loaf, Flour Hour, Second Breakfast, Knead & Brew.",
)

_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b")


def _texts(lines: tuple[str, ...], lengths: Callable[[random.Random], int], count: int,
           rng: random.Random) -> list[str]:
    """``count`` messages of whole sentences in random order, about as long as the drawn length.

    Each message ends where a sentence ends: sentences are added while the
    next one still fits, and the first is always kept whole (every line is far
    below the user-message limit). The database picks from these for every
    row: choosing from an array is much cheaper per row than cutting text
    server-side.
    """
    found = []
    for _ in range(count):
        wanted = lengths(rng)
        sentences = [rng.choice(lines)]
        size = len(sentences[0])
        while True:
            following = rng.choice(lines)
            if size + 1 + len(following) > wanted:
                break
            sentences.append(following)
            size += 1 + len(following)
        found.append(" ".join(sentences))
    return found


def _user_length(rng: random.Random) -> int:
    # Mostly a sentence or two, sometimes a pasted paragraph; never over the limit.
    return 20 + int(980 * rng.random() ** 3)


def _assistant_length(rng: random.Random) -> int:
    return 40 + int(1800 * rng.random() ** 2)


@dataclass(frozen=True)
class SeedScale:
    """How much to create: users, conversations and messages (exactly these counts)."""

    users: int
    conversations: int
    messages: int

    @classmethod
    def build(
        cls, *, messages: int | None = None, conversations: int | None = None, users: int | None = None
    ) -> SeedScale:
        """Fill in what was not given: 20 messages per conversation, 10 conversations per user."""
        for value, name in ((messages, "messages"), (conversations, "conversations"), (users, "users")):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")
        if messages is None:
            messages = (conversations or 5_000) * MESSAGES_PER_CONVERSATION
        if conversations is None:
            conversations = max(1, messages // MESSAGES_PER_CONVERSATION)
        if users is None:
            users = max(1, conversations // CONVERSATIONS_PER_USER)
        if messages < conversations:
            raise UsageError(
                f"{{messages}} ({messages}) must be at least {{conversations}} ({conversations}): "
                "every conversation gets at least one message",
                parameters=("messages", "conversations"),
            )
        return cls(users=users, conversations=conversations, messages=messages)

    @property
    def long_conversations(self) -> int:
        """One per 2,000 conversations; one from 10 conversations on; none below."""
        if self.conversations >= 2 * CONVERSATIONS_PER_LONG_ONE:
            return self.conversations // CONVERSATIONS_PER_LONG_ONE
        return 1 if self.conversations >= 10 else 0

    def as_dict(self) -> dict[str, int]:
        return {"users": self.users, "conversations": self.conversations, "messages": self.messages}


@dataclass(frozen=True)
class SeedResult:
    database: str
    user_prefix: str
    users: int  # created by this run (users left by an earlier run are reused)
    conversations: int
    messages: int
    long_conversations: int
    seconds: float

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "user_prefix": self.user_prefix,
            "users": self.users,
            "conversations": self.conversations,
            "messages": self.messages,
            "long_conversations": self.long_conversations,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.messages_per_second),
        }


@dataclass(frozen=True)
class SeedRemoval:
    database: str
    user_prefix: str
    users: int
    conversations: int
    messages: int
    seconds: float
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "user_prefix": self.user_prefix,
            "dry_run": self.dry_run,
            "users": self.users,
            "conversations": self.conversations,
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
        }


def seed_user_ids(count: int) -> list[str]:
    """The ids of demo users 1…count: ``chatdb-seed-000001``, … (the same width whatever the count).

    A fixed width makes every run name the same users, so a later run reuses
    the users an earlier one created.
    """
    return [f"{SEED_USER_PREFIX}{n:0{SEED_ID_DIGITS}d}" for n in range(1, count + 1)]


_PLAN_SQL = """
CREATE TEMPORARY TABLE chatdb_seed_plan (
    n integer PRIMARY KEY,
    id uuid NOT NULL,
    user_id varchar(255) NOT NULL,
    status varchar(20) NOT NULL,
    long boolean NOT NULL,
    weight numeric NOT NULL,
    messages integer,
    gap double precision NOT NULL,
    started timestamptz
)
"""

_FILL_PLAN_SQL = """
INSERT INTO chatdb_seed_plan (n, id, user_id, status, long, weight, gap)
SELECT g, gen_random_uuid(),
       (CAST(:user_ids AS varchar[]))[1 + floor(cardinality(CAST(:user_ids AS varchar[])) * random() ^ 2)::int],
       CASE WHEN random() < :archived THEN 'archived' ELSE 'active' END,
       long,
       1 + floor(1000 * random() ^ 3),
       -- seconds between messages: a chat for normal conversations, days for long ones
       CASE WHEN long THEN 600 + 3000 * random() ELSE 15 + 150 * random() END
FROM generate_series(1, :conversations) AS g,
     LATERAL (SELECT CAST(:long_every AS int) > 0 AND g % greatest(CAST(:long_every AS int), 1) = 0
                     AND g <= CAST(:long_count AS bigint) * CAST(:long_every AS int) AS long) AS l
"""

# Long conversations share LONG_CONVERSATION_SHARE of the messages between them.
_LONG_WEIGHTS_SQL = """
UPDATE chatdb_seed_plan SET weight = t.normal * :share / (1 - :share) / :long_count
FROM (SELECT sum(weight) AS normal FROM chatdb_seed_plan WHERE NOT long) AS t
WHERE long AND t.normal IS NOT NULL
"""

# Telescoping floors of the cumulative weights: the counts add up to exactly :extra.
_COUNTS_SQL = """
UPDATE chatdb_seed_plan AS p
SET messages = CAST(:base AS int) + (floor(CAST(:extra AS numeric) * c.cum / c.total) - floor(CAST(:extra AS numeric) * (c.cum - c.weight) / c.total))::int
FROM (SELECT n, weight, sum(weight) OVER (ORDER BY n) AS cum, sum(weight) OVER () AS total
      FROM chatdb_seed_plan) AS c
WHERE p.n = c.n
"""

# Start somewhere in the last two years, early enough for the last message to be in the past.
_START_SQL = """
UPDATE chatdb_seed_plan
SET started = least(now() - random() * make_interval(days => :days),
                    now() - make_interval(secs => (messages + 1) * gap))
"""

# A batch's conversations, from the plan, as arrays: batches then need no shared
# temporary table and can run on several connections at once.
_BATCH_CTE = """
WITH p AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS varchar[]), CAST(:statuses AS varchar[]),
                         CAST(:counts AS int[]), CAST(:gaps AS float8[]), CAST(:starts AS timestamptz[]))
        AS p(id, user_id, status, messages, gap, started)
)
"""

_INSERT_CONVERSATIONS_SQL = _BATCH_CTE + """
INSERT INTO conversations (id, user_id, status, created_at, updated_at)
SELECT id, user_id, status, started, started + make_interval(secs => messages * gap) FROM p
"""

_INSERT_MESSAGES_SQL = _BATCH_CTE + """
INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at)
SELECT p.id, p.user_id,
       CASE WHEN m.is_user THEN 'user' ELSE 'assistant' END,
       CASE WHEN m.is_user
            THEN (CAST(:user_texts AS text[]))[1 + floor(random() * :user_count)::int]
            ELSE (CAST(:assistant_texts AS text[]))[1 + floor(random() * :assistant_count)::int]
       END,
       CASE WHEN m.is_user THEN NULL ELSE jsonb_build_object(
            'model', (CAST(:models AS text[]))[1 + floor(random() * :model_count)::int],
            'prompt_tokens', 200 + k * 40 + floor(random() * 400)::int,
            'completion_tokens', 10 + floor(450 * m.r ^ 2)::int,
            'latency_ms', 300 + floor(4000 * random() ^ 2)::int,
            'finish_reason', 'stop') END,
       p.started + make_interval(secs => (k + 0.9 * random()) * p.gap)
FROM p
CROSS JOIN LATERAL generate_series(0, p.messages - 1) AS k
CROSS JOIN LATERAL (SELECT k % 2 = 0 AS is_user, random() AS r) AS m
"""


@dataclass
class _Batch:
    ids: list[Any]
    users: list[str]
    statuses: list[str]
    counts: list[int]
    gaps: list[float]
    starts: list[Any]

    def params(self) -> dict[str, Any]:
        return {
            "ids": self.ids, "users": self.users, "statuses": self.statuses,
            "counts": self.counts, "gaps": self.gaps, "starts": self.starts,
        }


def _batches(rows: list[Any], batch_messages: int) -> list[_Batch]:
    """Whole conversations, grouped into batches of about ``batch_messages`` messages."""
    found: list[_Batch] = []
    current: _Batch | None = None
    size = 0
    for row in rows:
        if current is None or (size + row.messages > batch_messages and current.ids):
            current = _Batch([], [], [], [], [], [])
            found.append(current)
            size = 0
        current.ids.append(row.id)
        current.users.append(row.user_id)
        current.statuses.append(row.status)
        current.counts.append(row.messages)
        current.gaps.append(row.gap)
        current.starts.append(row.started)
        size += row.messages
    return found


def _conversations_exist(conn: Connection) -> bool:
    from sqlalchemy import text

    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM conversations)")).scalar_one())


def seed(
    db: Database,
    scale: SeedScale,
    *,
    force: bool = False,
    batch_messages: int = DEFAULT_BATCH_MESSAGES,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressCallback | None = None,
) -> SeedResult:
    """Create ``scale`` users, conversations and messages of demo data.

    Refuses (:class:`ConflictError`) when ``conversations`` already holds
    rows, unless ``force``. Users are created first (reusing any left by an
    earlier run); then each batch of about ``batch_messages`` messages is one
    transaction holding whole conversations, ``jobs`` batches at a time on
    their own connections. ``progress`` gets a :class:`ProgressUpdate` counting messages. On
    Ctrl-C the batches in flight finish and commit, no new one starts, and
    :class:`JobInterrupted` says what was kept.
    """
    from sqlalchemy import text

    if batch_messages < 1:
        raise UsageError(f"the batch size must be at least 1, got {batch_messages}")
    started = time.monotonic()
    rng = random.Random()
    user_texts = _texts(_USER_LINES, _user_length, TEXT_VARIANTS, rng)
    assistant_texts = _texts(_ASSISTANT_LINES, _assistant_length, TEXT_VARIANTS, rng)
    long_count = scale.long_conversations
    prefix = SEED_USER_PREFIX
    lock_timeout = JobTimeouts.from_env().lock
    users = 0
    done = {"conversations": 0, "messages": 0}

    def outcome() -> str:
        # Batches commit whole conversations: what an interruption keeps is exactly what was counted.
        return (
            f"kept {done['conversations']} complete conversations with {done['messages']} messages "
            f"and {users} new demo users; 'chatdb seed --remove' deletes them"
        )

    with JobRun("seed") as run:
        run.outcome = outcome
        with db.translate(), db.engine.connect() as conn:
            with conn.begin():
                _set_lock_timeout(conn, lock_timeout)
                require_tables(conn, "users", "conversations", "messages")
                require_current_schema(conn)
                require_writable(conn, "seed", db.display_url)
                if not force and _conversations_exist(conn):
                    raise ConflictError(
                        f"{db.display_url} already holds conversations; seed adds demo data only to an "
                        "empty database unless you pass {force}",
                        parameters=("force",),
                    )
            run.check_stop()
            user_ids = seed_user_ids(scale.users)
            with conn.begin():
                _set_lock_timeout(conn, lock_timeout)
                users = create_demo_users(conn, user_ids)
            run.check_stop()
            with conn.begin():
                conn.execute(text(_PLAN_SQL))
                conn.execute(
                    text(_FILL_PLAN_SQL),
                    {
                        "user_ids": user_ids,
                        "archived": ARCHIVED_SHARE,
                        "conversations": scale.conversations,
                        "long_every": scale.conversations // long_count if long_count else 0,
                        "long_count": long_count,
                    },
                )
                if long_count:
                    conn.execute(
                        text(_LONG_WEIGHTS_SQL), {"share": LONG_CONVERSATION_SHARE, "long_count": long_count}
                    )
                base = 2 if scale.messages >= 2 * scale.conversations else 1
                conn.execute(
                    text(_COUNTS_SQL), {"base": base, "extra": scale.messages - base * scale.conversations}
                )
                conn.execute(text(_START_SQL), {"days": ACTIVITY_DAYS})
                plan = conn.execute(
                    text("SELECT id, user_id, status, messages, gap, started FROM chatdb_seed_plan ORDER BY n")
                ).all()
                conn.execute(text("DROP TABLE chatdb_seed_plan"))
        run.start_phase("seed", scale.conversations)
        params = {
            "user_texts": user_texts,
            "user_count": len(user_texts),
            "assistant_texts": assistant_texts,
            "assistant_count": len(assistant_texts),
            "models": list(_MODELS),
            "model_count": len(_MODELS),
        }
        stop = threading.Event()
        lock = threading.Lock()
        pending = iter(_batches(plan, batch_messages))

        def worker() -> None:
            # Each worker takes the next batch and writes it in one transaction.
            with db.translate(), db.engine.connect() as conn:
                while not (stop.is_set() or run.stopping):
                    with lock:
                        batch = next(pending, None)
                    if batch is None:
                        return
                    with run.batch():
                        with conn.begin():
                            _set_lock_timeout(conn, lock_timeout)
                            # The planner cannot estimate generate_series per row; JIT compiling
                            # for its guess costs more than the batch itself.
                            conn.execute(text("SET LOCAL jit = off"))
                            conn.execute(text(_INSERT_CONVERSATIONS_SQL), batch.params())
                            conn.execute(text(_INSERT_MESSAGES_SQL), {**params, **batch.params()})
                            run.check_stop()  # a second stop request rolls the batch back
                        with lock:
                            done["conversations"] += len(batch.ids)
                            done["messages"] += sum(batch.counts)
                            run.advance(len(batch.ids))
                            if progress:
                                progress(ProgressUpdate("messages", done["messages"], scale.messages))

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(worker) for _ in range(max(1, jobs))]
            try:
                for future in futures:
                    while True:
                        try:
                            future.result(timeout=0.2)
                            break
                        except FuturesTimeout:
                            continue
            finally:
                stop.set()  # after a failure or a stop request: batches in flight finish (or roll back)
                wait(futures)
        run.check_stop()
        with db.translate(), db.engine.connect() as conn:
            conn.execute(text("ANALYZE conversations"))
            conn.execute(text("ANALYZE messages"))
            conn.commit()
        run.finished(outcome())
    done_conversations, done_messages = done["conversations"], done["messages"]
    return SeedResult(
        database=db.display_url,
        user_prefix=prefix,
        users=users,
        conversations=done_conversations,
        messages=done_messages,
        long_conversations=long_count,
        seconds=time.monotonic() - started,
    )


def _set_lock_timeout(conn: Connection, lock_timeout: str) -> None:
    """Wait for a table lock no longer than every maintenance job does (for this transaction only)."""
    from sqlalchemy import text

    conn.execute(text("SELECT set_config('lock_timeout', :lock, true)"), {"lock": lock_timeout})


def _existing_seed_users(conn: Connection, prefix: str) -> list[str]:
    from sqlalchemy import text

    return list(
        conn.execute(
            text("SELECT id FROM users WHERE starts_with(id, :prefix) ORDER BY id"), {"prefix": prefix}
        ).scalars()
    )


def remove_seed(
    db: Database,
    *,
    dry_run: bool = False,
    batch_conversations: int = REMOVE_BATCH_CONVERSATIONS,
    progress: ProgressCallback | None = None,
) -> SeedRemoval:
    """Delete what :func:`seed` created: users whose id starts with the seed prefix, with
    their conversations and messages.

    Conversations go in batches, each with its messages in one transaction,
    then the users; re-running after an interruption finishes the job.
    ``progress`` gets a :class:`ProgressUpdate` counting conversations. ``dry_run`` only counts.
    """
    from sqlalchemy import text

    started = time.monotonic()
    prefix = SEED_USER_PREFIX
    lock_timeout = JobTimeouts.from_env().lock
    with db.translate(), db.engine.connect() as conn:
        with conn.begin():
            _set_lock_timeout(conn, lock_timeout)
            require_tables(conn, "users", "conversations", "messages")
            require_current_schema(conn)
            if not dry_run:
                require_writable(conn, "seed --remove", db.display_url)
            user_ids = _existing_seed_users(conn, prefix)
            total = int(
                conn.execute(
                    text("SELECT count(*) FROM conversations WHERE user_id = ANY(:users)"),
                    {"users": user_ids},
                ).scalar_one()
            )
        if dry_run:
            with conn.begin():
                messages = int(
                    conn.execute(
                        text("SELECT count(*) FROM messages WHERE user_id = ANY(:users)"), {"users": user_ids}
                    ).scalar_one()
                )
            return SeedRemoval(db.display_url, prefix, len(user_ids), total, messages,
                               time.monotonic() - started, dry_run=True)
        conversations = messages = users = 0
        with JobRun("seed --remove") as run:
            run.outcome = lambda: (
                f"removed {conversations} of {total} seeded conversations and "
                f"{users} of {len(user_ids)} users; run 'chatdb seed --remove' again to finish"
            )
            run.start_phase(run.job, total)
            while True:
                with run.batch():
                    with conn.begin():
                        _set_lock_timeout(conn, lock_timeout)
                        ids = conn.execute(
                            text("SELECT id FROM conversations WHERE user_id = ANY(:users) LIMIT :batch FOR UPDATE"),
                            {"users": user_ids, "batch": batch_conversations},
                        ).scalars().all()
                        gone = (
                            conn.execute(
                                text("DELETE FROM messages WHERE conversation_id = ANY(:ids)"), {"ids": ids}
                            ).rowcount,
                            conn.execute(text("DELETE FROM conversations WHERE id = ANY(:ids)"), {"ids": ids}).rowcount,
                        ) if ids else (0, 0)
                        run.check_stop()  # a second stop request rolls the batch back
                    messages += gone[0]
                    conversations += gone[1]
                    if ids:
                        run.advance(gone[1])
                if not ids:
                    break
                if progress:
                    progress(ProgressUpdate("conversations", conversations, total))
            with run.batch(), conn.begin():
                _set_lock_timeout(conn, lock_timeout)
                # Messages a seeded user left in someone else's conversation go with the user.
                messages += conn.execute(
                    text("DELETE FROM messages WHERE user_id = ANY(:users)"), {"users": user_ids}
                ).rowcount
            # messages.user_id has no index, so deleting a user makes its foreign key's
            # cascade scan messages once per user: vacuum first so the dead seeded rows
            # are not scanned again for every user.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM messages"))
            conn.commit()
            conn.execution_options(isolation_level=conn.default_isolation_level)
            for at in range(0, len(user_ids), REMOVE_BATCH_USERS):
                with run.batch(), conn.begin():
                    _set_lock_timeout(conn, lock_timeout)
                    users += conn.execute(
                        text("DELETE FROM users WHERE id = ANY(:users)"),
                        {"users": user_ids[at:at + REMOVE_BATCH_USERS]},
                    ).rowcount
            run.finished(f"removed all {conversations} seeded conversations and {users} users")
    return SeedRemoval(db.display_url, prefix, users, conversations, messages, time.monotonic() - started)
