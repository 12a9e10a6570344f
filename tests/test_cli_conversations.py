"""`chatdb conversations` against real data: filters, order, counts, JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sample_data
from helpers import Cli, TestDatabase, assert_one_line_error

from chatdb.filters import ConversationFilter
from chatdb.reports.conversations import list_conversations


def expected(db: TestDatabase, where: str = "TRUE", params: dict | None = None) -> list[dict]:
    """The listing computed independently, straight from the tables."""
    rows = db.sql(
        f"""
        SELECT c.id::text, c.user_id, c.status, c.updated_at,
               (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id),
               (SELECT max(created_at) FROM messages m WHERE m.conversation_id = c.id)
        FROM conversations c WHERE {where}
        ORDER BY c.updated_at DESC, c.id DESC
        """,
        params,
    )
    return [
        {"id": r[0], "user_id": r[1], "status": r[2], "updated_at": r[3], "messages": r[4], "last_message_at": r[5]}
        for r in rows
    ]


def simplified(report: dict) -> list[dict]:
    def when(text):
        return None if text is None else datetime.fromisoformat(text)

    return [
        {
            "id": c["id"],
            "user_id": c["user_id"],
            "status": c["status"],
            "updated_at": when(c["updated_at"]),
            "messages": c["messages"],
            "last_message_at": when(c["last_message_at"]),
        }
        for c in report["conversations"]
    ]


@pytest.fixture
def seeded(migrated_db: TestDatabase) -> TestDatabase:
    sample_data.seed(migrated_db)
    return migrated_db


def test_json_lists_every_conversation_newest_activity_first(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("conversations", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert simplified(report) == expected(seeded)
    assert [c["id"] for c in report["conversations"]][:2] == [sample_data.BOB_ACTIVE, sample_data.ALICE_ACTIVE]
    assert report["more"] is False and report["limit"] == 50
    first = report["conversations"][0]
    assert datetime.fromisoformat(first["updated_at"]).utcoffset() is not None  # always with an offset
    assert set(first) == {"id", "user_id", "status", "created_at", "updated_at", "messages", "last_message_at"}


def test_filters_by_users_status_and_activity(seeded: TestDatabase) -> None:
    cli = Cli(seeded.url)
    by_users = cli("conversations", "--user", "alice", "--user", "carol", "--json")
    assert simplified(by_users.json()) == expected(seeded, "user_id IN ('alice', 'carol')")

    active = cli("conversations", "--status", "active", "--json")
    assert simplified(active.json()) == expected(seeded, "status = 'active'")

    archived_alice = cli("conversations", "--status", "archived", "--user", "alice", "--json")
    assert [c["id"] for c in archived_alice.json()["conversations"]] == [sample_data.ALICE_ARCHIVED]

    since = cli("conversations", "--since", "2025-01-01", "--json")
    assert simplified(since.json()) == expected(seeded, "updated_at >= '2025-01-01T00:00:00Z'")

    before = cli("conversations", "--before", "2024-06-01T00:00:00+00:00", "--json")
    assert simplified(before.json()) == expected(seeded, "updated_at < '2024-06-01T00:00:00Z'")

    window = cli("conversations", "--since", "2024-01-15", "--before", "2025-04-01", "--json")
    assert {c["id"] for c in window.json()["conversations"]} == {
        sample_data.ALICE_ACTIVE,
        sample_data.ALICE_ARCHIVED,
    }


def test_older_than_a_duration(seeded: TestDatabase) -> None:
    # Move one conversation to "two days ago": only it is newer than 30 days.
    recent = datetime.now(UTC) - timedelta(days=2)
    seeded.sql("UPDATE conversations SET updated_at = %s WHERE id = %s", (recent, sample_data.BOB_ACTIVE))
    result = Cli(seeded.url)("conversations", "--older-than", "30d", "--json")
    assert result.exit_code == 0, result.stderr
    ids = [c["id"] for c in result.json()["conversations"]]
    assert sample_data.BOB_ACTIVE not in ids
    assert len(ids) == seeded.scalar("SELECT count(*) FROM conversations") - 1
    newer = Cli(seeded.url)("conversations", "--since", "P30D", "--json")
    assert [c["id"] for c in newer.json()["conversations"]] == [sample_data.BOB_ACTIVE]


def test_limit_and_all(seeded: TestDatabase) -> None:
    cli = Cli(seeded.url)
    two = cli("conversations", "--limit", "2", "--json")
    assert two.json()["more"] is True
    assert simplified(two.json()) == expected(seeded)[:2]
    assert "there are more" in two.stderr

    every = cli("conversations", "-n", "1", "--all", "--json")
    assert every.json()["more"] is False and every.json()["limit"] is None
    assert len(every.json()["conversations"]) == 4


def test_table_shows_ids_counts_and_activity(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("conversations", "--user", "alice")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if sample_data.ALICE_ACTIVE in line]
    assert len(lines) == 1
    count = seeded.scalar("SELECT count(*) FROM messages WHERE conversation_id = %s", (sample_data.ALICE_ACTIVE,))
    cells = lines[0].split("\t")  # off a terminal: tab-separated
    # Shown in the session's time zone, as the database returns it.
    updated = seeded.scalar("SELECT updated_at FROM conversations WHERE id = %s", (sample_data.ALICE_ACTIVE,))
    assert updated == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert cells == [sample_data.ALICE_ACTIVE, "alice", "active", str(count), updated.isoformat(sep=" ")]
    assert sample_data.BOB_ACTIVE not in result.stdout
    assert result.stderr == ""


def test_csv_has_a_header_and_one_row_per_conversation(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("conversations", "--csv", "--status", "active")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    want = expected(seeded, "status = 'active'")
    assert [r["id"] for r in rows] == [w["id"] for w in want]
    assert [int(r["messages"]) for r in rows] == [w["messages"] for w in want]
    assert list(rows[0]) == ["id", "user_id", "status", "created_at", "updated_at", "messages", "last_message_at"]


def test_nothing_matches(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("conversations", "--user", "dave", "--json")  # a user with no conversations
    assert result.exit_code == 0
    assert result.json()["conversations"] == []
    assert "No conversations match" in result.stderr
    # One way of saying so is enough: no empty table on stdout.
    for env, flags in (
        ({"TTY_COMPATIBLE": "1"}, ()),
        ({}, ()),
        ({}, ("--all",)),
        ({"TTY_COMPATIBLE": "1"}, ("--all",)),
    ):
        table = Cli(seeded.url)("conversations", "--user", "dave", *flags, env=env)
        assert table.exit_code == 0 and table.stdout == ""
        assert table.stderr.strip() == "No conversations match."


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--json", "--csv"], "--json and --csv"),
        (["--status", "gone"], "--status"),
        (["--older-than", "soon"], "--older-than"),
        (["--older-than", "5m"], "ambiguous"),
        (["--since", "2025-02-30"], "no such date"),
        (["--older-than", "1y", "--before", "2025-01-01"], "either --older-than or --before"),
        (["--since", "2025-01-01", "--before", "2024-01-01"], "--since: must be earlier"),
        (["--limit", "0"], "--limit"),
        (["--limit", "many"], "--limit"),
    ],
)
def test_bad_options_are_usage_errors(migrated_db: TestDatabase, args: list[str], fragment: str) -> None:
    assert_one_line_error(Cli(migrated_db.url)("conversations", *args), 2, fragment)


def test_before_migrating_is_one_line(empty_db: TestDatabase) -> None:
    assert_one_line_error(Cli(empty_db.url)("conversations"), 1, "chatdb migrate")


def test_library_function_matches_the_command(seeded: TestDatabase) -> None:
    with seeded.database() as db:
        listing = list_conversations(db, ConversationFilter.build(users=["bob"]), limit=None)
    assert [str(c.id) for c in listing.conversations] == [sample_data.BOB_ACTIVE]
    assert listing.conversations[0].messages == 2


def test_all_as_csv_streams_every_row_in_order(seeded: TestDatabase) -> None:
    seeded.sql(
        "INSERT INTO conversations (user_id, updated_at) "
        "SELECT 'dave', timestamptz '2020-01-01Z' + i * interval '1 hour' FROM generate_series(1, 2500) AS i"
    )
    result = Cli(seeded.url)("conversations", "--all", "--csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    want = expected(seeded)
    assert len(rows) == len(want) == 2504
    assert [r["id"] for r in rows] == [w["id"] for w in want]
    assert [int(r["messages"]) for r in rows] == [w["messages"] for w in want]


def test_iter_conversations_matches_the_listing(seeded: TestDatabase) -> None:
    from chatdb.reports.conversations import iter_conversations

    selection = ConversationFilter.build(status="active")
    with seeded.database() as db:
        streamed = list(iter_conversations(db, selection, batch=1))
        listed = list_conversations(db, selection, limit=None).conversations
    assert streamed == listed and len(streamed) == 2
