"""What seed generates: how much (:class:`SeedScale`), and the texts its messages are drawn from.

Conversations of very different lengths (a few very long ones), roles
alternating user/assistant, user messages within the 1,000-character limit,
assistant messages with the metadata a model call leaves, activity spread over
two years, some conversations archived.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from chatdb.errors import UsageError
from chatdb.jobs.queries import seed as sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

MESSAGES_PER_CONVERSATION = 20  # the default average when only --messages is given
CONVERSATIONS_PER_USER = 10
LONG_CONVERSATION_SHARE = 0.10  # of all messages, held by a few very long conversations
CONVERSATIONS_PER_LONG_ONE = 2000
ARCHIVED_SHARE = 0.15
ACTIVITY_DAYS = 730
TEXT_VARIANTS = 400  # distinct texts per role


USER_LINES = (
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

ASSISTANT_LINES = (
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

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b")


def message_texts(
    lines: tuple[str, ...], lengths: Callable[[random.Random], int], count: int, rng: random.Random
) -> list[str]:
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


def user_length(rng: random.Random) -> int:
    # Mostly a sentence or two, sometimes a pasted paragraph; never over the limit.
    return 20 + int(980 * rng.random() ** 3)


def assistant_length(rng: random.Random) -> int:
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


@dataclass
class Batch:
    ids: list[Any]
    users: list[str]
    statuses: list[str]
    counts: list[int]
    gaps: list[float]
    starts: list[Any]

    def params(self) -> dict[str, Any]:
        return {
            "ids": self.ids,
            "users": self.users,
            "statuses": self.statuses,
            "counts": self.counts,
            "gaps": self.gaps,
            "starts": self.starts,
        }


def plan_batches(rows: list[Any], batch_messages: int) -> list[Batch]:
    """Whole conversations, grouped into batches of about ``batch_messages`` messages."""
    found: list[Batch] = []
    current: Batch | None = None
    size = 0
    for row in rows:
        if current is None or (size + row.messages > batch_messages and current.ids):
            current = Batch([], [], [], [], [], [])
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


def plan_conversations(conn: Connection, scale: SeedScale, user_ids: list[str]) -> list[Any]:
    """Every conversation's id, owner, status, message count, pace and start, computed in PostgreSQL."""

    long_count = scale.long_conversations
    conn.execute(text(sql.PLAN))
    conn.execute(
        text(sql.FILL_PLAN),
        {
            "user_ids": user_ids,
            "archived": ARCHIVED_SHARE,
            "conversations": scale.conversations,
            "long_every": scale.conversations // long_count if long_count else 0,
            "long_count": long_count,
        },
    )
    if long_count:
        conn.execute(text(sql.LONG_WEIGHTS), {"share": LONG_CONVERSATION_SHARE, "long_count": long_count})
    base = 2 if scale.messages >= 2 * scale.conversations else 1
    conn.execute(text(sql.COUNTS), {"base": base, "extra": scale.messages - base * scale.conversations})
    conn.execute(text(sql.START), {"days": ACTIVITY_DAYS})
    plan = conn.execute(text(sql.READ_PLAN)).all()
    conn.execute(text(sql.DROP_PLAN))
    return list(plan)
