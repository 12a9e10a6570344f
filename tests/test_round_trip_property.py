"""Every value each column can hold survives export → import into an empty database (Hypothesis).

The strategies cover each column's whole domain, edges included: timestamps
from 4714-11-24 BC to 294276-12-31, ``infinity`` and ``-infinity``,
microseconds and odd offsets; jsonb of every type (deep nesting, unicode with
and without escapes, numbers far beyond a double, empty objects and arrays,
the JSON ``null`` apart from SQL ``NULL``); text with every code point
PostgreSQL accepts (all but NUL and lone surrogates: astral, combining,
control characters); user ids of 0 to 255 characters. Rows are written with
SQL, exported, imported into a second, empty database, and the two are
compared as text in SQL.

``CHATDB_PROPERTY_EXAMPLES`` sets how many examples run (default: a few, to
keep the suite quick); ``CHATDB_PROPERTY_EXAMPLES=2000`` for a long search.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import TestDatabase, new_database
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("CHATDB_PROPERTY_EXAMPLES", "12"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- timestamptz: the whole range, BC and the infinities ------------------------------------------


def _leap(astronomical_year: int) -> bool:
    return astronomical_year % 4 == 0 and (astronomical_year % 100 != 0 or astronomical_year % 400 == 0)


def _days(year: int, bc: bool, month: int) -> int:
    if month == 2:
        return 29 if _leap(1 - year if bc else year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@st.composite
def finite_timestamps(draw) -> str:
    bc = draw(st.booleans())
    year = draw(
        st.one_of(
            st.sampled_from([1, 2, 4, 100, 1000, 9999, 10000] + ([4714] if bc else [1970, 2000, 2038, 99999, 294276])),
            st.integers(1, 4714 if bc else 294276),
        )
    )
    month = draw(st.integers(11, 12) if bc and year == 4714 else st.integers(1, 12))
    low = 24 if bc and year == 4714 and month == 11 else 1
    day = draw(st.integers(low, _days(year, bc, month)))
    hour, minute, second = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    micro = draw(st.sampled_from([0, 1, 999999]) | st.integers(0, 999999))
    offset = draw(st.sampled_from(["+00", "+00:00", "+14", "-12", "+05:30", "-09:30:15", "+05:53:28", "-15:59:59"]))
    return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}.{micro:06d}{offset}{' BC' if bc else ''}"


timestamps = st.one_of(st.sampled_from(["infinity", "-infinity"]), finite_timestamps())

# --- jsonb, as JSON text: every type, deep, big numbers, escaped and raw unicode -------------------

storable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
# Text that has broken exporters: JSON's own escapes, line and paragraph separators, a BOM,
# combining marks, right-to-left overrides, astral characters, the last code point.
NASTY = [
    "",
    " ",
    "\n",
    "\r\n",
    "\t\x01\x1f\x7f",
    "\\",
    '"',
    "\u2028\u2029",
    "\ufeff",
    "e\u0301\u0308",
    "\u202e\u202d",
    "🙂👩‍👩‍👧",
    "\U0010ffff",
    "\ud7ff\ue000",
    "</script>",
    "\\u0000",
]
texts = st.one_of(st.text(alphabet=storable, max_size=40), st.lists(st.sampled_from(NASTY), max_size=20).map("".join))
numbers = st.one_of(
    st.integers().map(str),
    st.integers(-(10**60), 10**60).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda digits, exponent: f"{digits}e{exponent}", st.integers(-(10**18), 10**18), st.integers(-1000, 1000)
    ),
    st.sampled_from(["0", "-0", "0.0", "1.50", "-1E+3", "123456789012345678901234567890.000000000000000000001"]),
)
strings = st.builds(lambda s, ascii_only: json.dumps(s, ensure_ascii=ascii_only), texts, st.booleans())
scalars = st.one_of(st.just("null"), st.just("true"), st.just("false"), numbers, strings)


def containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Arrays and objects (keys of any text, duplicates too) of ``inner`` values, as JSON text."""
    arrays = st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
    objects = st.lists(st.tuples(strings, inner), max_size=4).map(
        lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
    )
    return arrays | objects


json_values = st.recursive(scalars, containers, max_leaves=12)
deep = st.builds(
    lambda depth, as_object: ('{"a":' * depth + "1" + "}" * depth) if as_object else ("[" * depth + "[]" + "]" * depth),
    st.integers(50, 2000),
    st.booleans(),
)
metadata = st.one_of(st.none(), st.sampled_from(["null", "{}", "[]", '""', '{"": null}']), json_values, deep)

# --- rows ------------------------------------------------------------------------------------------

user_ids = st.one_of(
    st.text(alphabet=storable, max_size=255), st.sampled_from(["", "u" * 255, "🙂" * 255, "a\u0301" * 127])
)


@st.composite
def messages_of(draw, conversation_id: str):
    role = draw(st.sampled_from(["user", "assistant"]))
    content = draw(st.one_of(st.text(alphabet=storable, max_size=1000 if role == "user" else 3000), texts))
    return {
        "id": str(draw(st.uuids())),
        "conversation_id": conversation_id,
        "user_id": draw(user_ids),
        "role": role,
        "content": content,
        "metadata": draw(metadata),
        "created_at": draw(timestamps),
    }


@st.composite
def data_sets(draw):
    conversations = []
    for conversation_id in draw(st.lists(st.uuids().map(str), min_size=1, max_size=3, unique=True)):
        conversations.append(
            {
                "id": conversation_id,
                "user_id": draw(user_ids),
                "status": draw(st.sampled_from(["active", "archived"])),
                "created_at": draw(timestamps),
                "updated_at": draw(timestamps),
                "messages": draw(st.lists(messages_of(conversation_id), max_size=3, unique_by=lambda m: m["id"])),
            }
        )
    return conversations


# --- the property ------------------------------------------------------------------------------------

CONVERSATIONS_AS_TEXT = """
SELECT id::text, user_id, status, created_at::text, updated_at::text FROM conversations ORDER BY id
"""
MESSAGES_AS_TEXT = """
SELECT id::text, conversation_id::text, user_id, role, content, metadata::text, metadata IS NULL, created_at::text
FROM messages ORDER BY id
"""


def as_text(db: TestDatabase) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(db.libpq_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(CONVERSATIONS_AS_TEXT).fetchall(), conn.execute(MESSAGES_AS_TEXT).fetchall()


@pytest.fixture(scope="module")
def two_databases(pg_server, migrated_template) -> Iterator[tuple[TestDatabase, TestDatabase]]:
    source, target = (
        new_database(pg_server, template=migrated_template),
        new_database(pg_server, template=migrated_template),
    )
    try:
        yield next(source), next(target)
    finally:
        source.close()
        target.close()


def write_rows(db: TestDatabase, conversations: list[dict]) -> bool:
    """Insert the rows with SQL; False if PostgreSQL refuses one (a timestamp an offset pushes out of range)."""
    users = {c["user_id"] for c in conversations} | {m["user_id"] for c in conversations for m in c["messages"]}
    try:
        with db.connect() as conn:
            conn.execute("DELETE FROM conversations")
            conn.execute("DELETE FROM users")
            conn.cursor().executemany("INSERT INTO users (id) VALUES (%s)", [(u,) for u in users])
            for c in conversations:
                conn.execute(
                    "INSERT INTO conversations (id, user_id, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
                    [c["id"], c["user_id"], c["status"], c["created_at"], c["updated_at"]],
                )
                for m in c["messages"]:
                    conn.execute(
                        "INSERT INTO messages (id, conversation_id, user_id, role, content, metadata, created_at) "
                        "VALUES (%s, %s, %s, %s, %s, CAST(%s AS jsonb), %s)",
                        [
                            m["id"],
                            m["conversation_id"],
                            m["user_id"],
                            m["role"],
                            m["content"],
                            m["metadata"],
                            m["created_at"],
                        ],
                    )
    except psycopg.errors.DatetimeFieldOverflow:
        return False
    return True


@PROPERTY
@given(conversations=data_sets(), compressed=st.booleans(), batch_size=st.integers(1, 3))
def test_every_storable_value_survives_export_and_import(
    two_databases, tmp_path_factory, conversations: list[dict], compressed: bool, batch_size: int
) -> None:
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.export import export_conversations
    from chatdb.jobs.importing import import_conversations

    source, target = two_databases
    assume(write_rows(source, conversations))
    # The target is empty but for the users (import never creates users: they are the application's).
    users = source.sql("SELECT id FROM users")
    with target.connect() as conn:
        conn.execute("DELETE FROM conversations")
        conn.execute("DELETE FROM users")
        conn.cursor().executemany("INSERT INTO users (id) VALUES (%s)", users)
    path: Path = tmp_path_factory.mktemp("round-trip") / ("all.jsonl.gz" if compressed else "all.jsonl")
    with source.database() as db:
        export_conversations(db, ConversationFilter(), path, batch_size=batch_size)
    with target.database() as db:
        result = import_conversations(db, path, batch_size=batch_size)
    assert result.manifest_checked
    assert as_text(target) == as_text(source)
