"""`chatdb history`: transcripts, paging cursors, short ids, and every way to get it wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sample_data
from helpers import Cli, TestDatabase, assert_one_line_error

import chatdb.reports.history
from chatdb.reports.conversations import conversation_prefix_query

ALICE = sample_data.ALICE_ACTIVE


@pytest.fixture
def seeded(migrated_db: TestDatabase) -> TestDatabase:
    sample_data.seed(migrated_db, messages_in_alice_active=25)
    return migrated_db


def transcript(db: TestDatabase, conversation: str) -> list[dict]:
    """Every message of a conversation in (created_at, id) order, straight from the table."""
    rows = db.sql(
        "SELECT id::text, role, content, metadata, created_at FROM messages "
        "WHERE conversation_id = %s ORDER BY created_at, id",
        (conversation,),
    )
    return [{"id": r[0], "role": r[1], "content": r[2], "metadata": r[3], "created_at": r[4]} for r in rows]


def shown(report: dict) -> list[dict]:
    return [
        {
            "id": m["id"],
            "role": m["role"],
            "content": m["content"],
            "metadata": m["metadata"],
            "created_at": datetime.fromisoformat(m["created_at"]),
        }
        for m in report["messages"]
    ]


def test_latest_twenty_oldest_first(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("history", ALICE, "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert shown(report) == transcript(seeded, ALICE)[-20:]
    assert report["conversation"]["id"] == ALICE
    assert report["conversation"]["messages"] == 25
    assert report["conversation"]["user_id"] == "alice"
    assert datetime.fromisoformat(report["conversation"]["updated_at"]) == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert report["page"] == {
        "limit": 20,
        "before": None,
        "after": None,
        "has_older": True,
        "has_newer": False,
        "older": report["messages"][0]["id"],
        "newer": None,
    }
    first = report["messages"][0]
    assert set(first) == {"id", "conversation_id", "user_id", "role", "content", "metadata", "created_at"}
    assert datetime.fromisoformat(first["created_at"]).utcoffset() is not None
    assert isinstance(first["metadata"], dict)


def test_walking_back_with_before_returns_every_message_once(seeded: TestDatabase) -> None:
    cli = Cli(seeded.url)
    collected: list[dict] = []
    args = ["history", ALICE, "--limit", "7", "--json"]
    while True:
        page = cli(*args).json()
        collected = shown(page) + collected
        if not page["page"]["has_older"]:
            break
        args = ["history", ALICE, "--limit", "7", "--json", "--before", page["messages"][0]["id"]]
    assert collected == transcript(seeded, ALICE)
    assert page["page"]["has_newer"] is True


def test_after_pages_forward(seeded: TestDatabase) -> None:
    everything = transcript(seeded, ALICE)
    result = Cli(seeded.url)("history", ALICE, "--after", everything[4]["id"], "-n", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert shown(result.json()) == everything[5:8]
    assert result.json()["page"]["has_older"] is True and result.json()["page"]["has_newer"] is True

    last = Cli(seeded.url)("history", ALICE, "--after", everything[20]["id"], "--json").json()
    assert shown(last) == everything[21:]
    assert last["page"]["has_newer"] is False

    between = Cli(seeded.url)(
        "history", ALICE, "--after", everything[2]["id"], "--before", everything[6]["id"], "--json"
    ).json()
    assert shown(between) == everything[3:6]


def test_all_reads_every_page(seeded: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chatdb.reports.history, "ALL_PAGE_SIZE", 4)  # several pages from 25 messages
    everything = transcript(seeded, ALICE)
    report = Cli(seeded.url)("history", ALICE, "--all", "--json").json()
    assert shown(report) == everything
    assert report["page"]["limit"] is None and report["page"]["has_older"] is False

    older = Cli(seeded.url)("history", ALICE, "--all", "--before", everything[10]["id"], "--json").json()
    assert shown(older) == everything[:10]
    newer = Cli(seeded.url)("history", ALICE, "--all", "--after", everything[10]["id"], "--json").json()
    assert shown(newer) == everything[11:]


def test_messages_with_the_same_time_keep_a_stable_order(seeded: TestDatabase) -> None:
    report = Cli(seeded.url)("history", sample_data.BOB_ACTIVE, "--json").json()
    assert shown(report) == transcript(seeded, sample_data.BOB_ACTIVE)
    assert len({m["created_at"] for m in report["messages"]}) == 1


def test_table_shows_time_role_content_and_metadata(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("history", ALICE, "-n", "2")
    assert result.exit_code == 0, result.stderr
    last_two = transcript(seeded, ALICE)[-2:]
    for message in last_two:
        assert message["content"] in result.stdout
        assert f'{{"n":{message["metadata"]["n"]}}}' in result.stdout
        assert message["created_at"].isoformat(sep=" ") in result.stdout
    assert "message 23" not in result.stdout
    assert "assistant" in result.stdout and "user" in result.stdout
    assert "25 (2 shown)" in result.stdout
    # The way to the older messages is on stderr, so stdout stays the transcript.
    assert f"--before {last_two[0]['id']}" in result.stderr


def test_long_content_is_wrapped_not_cut(seeded: TestDatabase) -> None:
    words = " ".join(f"word{i}" for i in range(120))
    seeded.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content, created_at) "
        "VALUES (%s, 'alice', 'assistant', %s, '2030-01-01Z')",
        (ALICE, words),
    )
    result = Cli(seeded.url)("history", ALICE, "-n", "1", env={"COLUMNS": "100", "TTY_COMPATIBLE": "1"})
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    for i in (0, 60, 119):
        assert f"word{i}" in result.stdout


@pytest.mark.parametrize("form", ["aaaa1111", "AAAA1111-00", "aaaa11110000400080", ALICE.upper(), "{" + ALICE + "}"])
def test_a_unique_prefix_or_any_spelling_of_the_id(seeded: TestDatabase, form: str) -> None:
    result = Cli(seeded.url)("history", form, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["conversation"]["id"] == ALICE


def test_an_ambiguous_prefix_lists_the_candidates(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("history", "aaaa")
    assert_one_line_error(result, 2, "ambiguous", sample_data.ALICE_ACTIVE, sample_data.ALICE_ARCHIVED)
    assert result.stdout == ""


def test_prefix_lookup_uses_the_primary_key(seeded: TestDatabase) -> None:
    from sqlalchemy.dialects import postgresql

    statement = conversation_prefix_query("aaaa1111")
    sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with seeded.connect() as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql))
    assert "conversations_pkey" in plan, plan


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["ffff"], 1, "no conversation id starts with 'ffff'"),
        (["ffffffff-0000-4000-8000-000000000000"], 1, "no conversation has id"),
        (["not-a-uuid"], 2, "malformed conversation id"),
        (["abc"], 2, "too short"),
        (["aaaa1111-0000-4000-8000-000000000001ff"], 2, "malformed"),
        ([ALICE, "--before", "nope"], 2, "malformed message id"),
        ([ALICE, "--after", "12"], 2, "malformed message id"),
        ([ALICE, "--before", "ffffffff-0000-4000-8000-000000000000"], 1, "not found"),
        ([ALICE, "--limit", "0"], 2, "--limit"),
        ([ALICE, "--limit", "x"], 2, "--limit"),
        ([], 2, "Missing argument"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(
    seeded: TestDatabase, args: list[str], code: int, fragment: str
) -> None:
    assert_one_line_error(Cli(seeded.url)("history", *args), code, fragment)


def test_a_message_of_another_conversation_is_not_a_cursor(seeded: TestDatabase) -> None:
    other = transcript(seeded, sample_data.BOB_ACTIVE)[0]["id"]
    assert_one_line_error(Cli(seeded.url)("history", ALICE, "--before", other), 1, "not found")


def test_empty_conversation(seeded: TestDatabase) -> None:
    report = Cli(seeded.url)("history", sample_data.CAROL_OLD, "--json").json()
    assert report["messages"] == [] and report["conversation"]["messages"] == 0
    assert report["page"]["has_older"] is False


def test_before_migrating(empty_db: TestDatabase) -> None:
    assert_one_line_error(Cli(empty_db.url)("history", ALICE), 1, "chatdb migrate")


def test_csv_has_one_row_per_message(seeded: TestDatabase) -> None:
    import csv
    import io
    import json

    result = Cli(seeded.url)("history", ALICE, "-n", "3", "--csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    want = transcript(seeded, ALICE)[-3:]
    assert [r["id"] for r in rows] == [w["id"] for w in want]
    assert [json.loads(r["metadata"]) for r in rows] == [w["metadata"] for w in want]
    assert [datetime.fromisoformat(r["created_at"]) for r in rows] == [w["created_at"] for w in want]
    assert list(rows[0]) == ["id", "conversation_id", "user_id", "role", "content", "metadata", "created_at"]
    assert_one_line_error(Cli(seeded.url)("history", ALICE, "--csv", "--json"), 2, "--json and --csv")


def test_metadata_nested_deeper_than_python_reads_is_one_line(migrated_db: TestDatabase, tmp_path) -> None:
    """PostgreSQL stores (and import restores) JSON nested past Python's recursion limit: reading it is one line."""
    import json

    from jobdata import seed

    from chatdb.errors import DatabaseError
    from chatdb.repositories import MessageRepository

    [conversation] = seed(migrated_db, 1, messages=2)
    migrated_db.sql(
        "UPDATE messages SET metadata = CAST(repeat('[', 5000) || repeat(']', 5000) AS jsonb) "
        "WHERE id = (SELECT id FROM messages WHERE conversation_id = %s ORDER BY id LIMIT 1)",
        [conversation],
    )
    cli = Cli(migrated_db.url)
    for args in ((), ("--json",)):
        result = cli("history", conversation, *args)
        if args:  # a JSON failure report, and nothing else, on stdout
            assert result.exit_code == 1 and json.loads(result.stdout)["ok"] is False, result.stdout
            result.stdout = ""
        assert_one_line_error(result, 1, "nested more deeply than Python reads", "chatdb export")
    with (
        migrated_db.database() as database,
        database.session() as session,
        pytest.raises(DatabaseError, match="nested more deeply"),
    ):
        MessageRepository(session).history(conversation)
    # Export reads it in SQL, exactly.
    assert cli("export", "-o", str(tmp_path / "deep.jsonl")).exit_code == 0
    assert '"metadata":' + "[" * 5000 in (tmp_path / "deep.jsonl").read_text()
