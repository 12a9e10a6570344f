"""What `chatdb import` accepts is exactly what PostgreSQL inserts: a file imports whole or writes nothing.

Every line goes through the insert's own conversions during the check, so a
value the insert would refuse (NUL, a lone surrogate, NaN, a number numeric
cannot hold, a timestamp PostgreSQL does not read, too deep a nesting) is
found before anything is written, and the error names its line. Existing rows
that differ are conflicts; identical ones are skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobdata import count, seed, snapshot

OLD = "2020-01-01T00:00:00+00:00"
# The shape of a timestamp as PostgreSQL's JSON output (and so export) writes it.
TIMESTAMP_PATTERN = (
    r"^([0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?"
    r"([+-][0-9]{2}(:[0-9]{2}){0,2}|Z)( BC)?|-?infinity)$"
)


def exported_lines(db: TestDatabase, cli: Cli, tmp_path: Path, conversations: int = 5) -> list[dict]:
    """``conversations`` conversations of two messages, exported, then deleted from the database."""
    seed(db, conversations, updated=OLD, messages=2)
    target = tmp_path / "source.jsonl"
    assert cli("export", "-o", str(target)).exit_code == 0
    db.sql("DELETE FROM conversations")
    return [json.loads(line) for line in target.read_text().splitlines()]


def sample_lines(conversations: int = 5) -> list[dict]:
    """Lines as export writes them, for user alice, without a database."""
    lines = []
    for i in range(1, conversations + 1):
        cid = f"00000000-0000-4000-8000-{i:012d}"
        lines.append(
            {
                "id": cid,
                "user_id": "alice",
                "status": "archived",
                "created_at": OLD,
                "updated_at": OLD,
                "messages": [
                    {
                        "id": f"00000000-0000-4000-9000-{i * 10 + k:012d}",
                        "conversation_id": cid,
                        "user_id": "alice",
                        "role": "user" if k == 1 else "assistant",
                        "content": f"message {k}",
                        "metadata": {"k": k} if k == 2 else None,
                        "created_at": OLD,
                    }
                    for k in (1, 2)
                ],
            }
        )
    return lines


def write(path: Path, lines: list[dict | str]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)
    )
    return path


RAW = "\x01raw\x01"  # a placeholder a test replaces with JSON text json.dumps cannot write


def with_raw(line: dict, raw: str) -> str:
    return json.dumps(line).replace(json.dumps(RAW), raw)


@pytest.fixture(scope="module")
def import_db(pg_server, migrated_template):
    from helpers import new_database

    gen = new_database(pg_server, template=migrated_template)
    db = next(gen)
    db.sql("INSERT INTO users (id) VALUES ('alice')")
    yield db
    gen.close()


# (field path, JSON text of the value): each one a value the insert refuses.
REFUSED = [
    (("messages", 0, "content"), r'"a\u0000b"'),
    (("messages", 0, "content"), r'"\ud800"'),
    (("messages", 1, "metadata"), "NaN"),
    (("messages", 1, "metadata"), '{"x": Infinity}'),
    (("messages", 1, "metadata"), "1e999999"),
    (("messages", 1, "metadata"), r'{"k": "\u0000"}'),
    (("messages", 1, "metadata"), r'["\udc00"]'),
    (("messages", 1, "metadata"), "[" * 100000 + "]" * 100000),
    (("created_at",), '"2025-W01-1T00:00:00+00:00"'),
    (("created_at",), '"now"'),
    (("updated_at",), '"today"'),
    (("updated_at",), '"2020-01-01"'),
    (("updated_at",), '"2020-01-01T00:00:00"'),
    (("updated_at",), '"2020-13-01T00:00:00+00:00"'),
    (("updated_at",), '"2021-02-29T00:00:00+00:00"'),
    (("messages", 0, "created_at"), '"4714-11-23T23:59:59+00:00 BC"'),
    (("messages", 0, "created_at"), '"294277-01-01T00:00:00+00:00"'),
    (("messages", 0, "created_at"), '"2020-01-01T00:00:00+16:00"'),
    (("id",), '"oops"'),
    (("messages", 0, "id"), '"{12345678-1234-1234-1234-123456789012"'),
    (("user_id",), json.dumps("u" * 256)),
    (("status",), '["active"]'),
    (("status",), '"deleted"'),
    (("messages", 0, "role"), '"system"'),
    (("messages", 0, "content"), "42"),
    (("messages",), '{"0": {}}'),
    (("messages", 0), '"not a message"'),
    (("messages", 0, "metadata_is_json_null"), "false"),
]


@pytest.mark.parametrize(("field", "raw"), REFUSED, ids=[f"{'.'.join(map(str, f))}={r[:30]}" for f, r in REFUSED])
def test_values_the_insert_refuses_fail_the_check_and_nothing_is_written(
    import_db: TestDatabase, tmp_path: Path, field: tuple, raw: str
) -> None:
    import_db.sql("DELETE FROM conversations")
    lines = sample_lines()
    target = lines[4]
    *parents, last = field
    for key in parents:
        target = target[key]
    target[last] = RAW
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines[:4]) + with_raw(lines[4], raw) + "\n")
    # One conversation per batch: a partial import would have committed four batches.
    result = Cli(import_db.url)("import", str(path), "--batch-size", "1")
    assert_one_line_error(result, 1, "1 bad line", "nothing was imported", "line 5: ")
    assert count(import_db) == 0 and import_db.scalar("SELECT count(*) FROM messages") == 0


timestamp_like = st.one_of(
    st.from_regex(TIMESTAMP_PATTERN, fullmatch=True),
    st.from_regex(
        r"\A[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}[T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,8})?)?"
        r"([+-][0-9]{1,2}(:?[0-9]{2}){0,2}|Z| UTC)?( BC| AD)?\Z"
    ),
    st.sampled_from(["now", "today", "epoch", "allballs", "infinity", "-infinity", "+infinity", "J2451187", ""]),
    st.text(max_size=30),
)
json_like = st.one_of(
    st.sampled_from(
        [
            "NaN",
            "-Infinity",
            "1e999999",
            "1e131071",
            "-0",
            "1E400",
            "[1,]",
            "{}",
            "null",
            r'"\u0000"',
            r'"\ud83d\ude00"',
            r'"\ud83d"',
            r'"\u00e9"',
            '"\\"',
            "01",
            ".5",
            "1.",
            "true",
        ]
    ),
    st.builds(lambda d, e: f"{d}e{e}", st.integers(-(10**30), 10**30), st.integers(-140000, 140000)),
    st.text(alphabet='[]{}":,0123456789.eE+-nultrsfa\\u', max_size=20),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["updated_at", "created_at", "message created_at", "metadata"]), data=st.data())
def test_the_check_accepts_exactly_what_postgresql_reads(
    import_db: TestDatabase, tmp_path_factory, field: str, data
) -> None:
    """Any text in a timestamp or metadata: imported (equal to PostgreSQL's own reading), or refused with nothing written."""
    import psycopg

    raw = data.draw(json_like if field == "metadata" else timestamp_like.map(json.dumps))
    import_db.sql("DELETE FROM conversations")
    good = {
        "id": "00000000-0000-4000-8000-000000000001",
        "user_id": "alice",
        "status": "active",
        "created_at": OLD,
        "updated_at": OLD,
        "messages": [],
    }
    line = {
        "id": "00000000-0000-4000-8000-000000000002",
        "user_id": "alice",
        "status": "active",
        "created_at": OLD,
        "updated_at": OLD,
        "messages": [
            {
                "id": "00000000-0000-4000-8000-000000000003",
                "conversation_id": "00000000-0000-4000-8000-000000000002",
                "user_id": "alice",
                "role": "assistant",
                "content": "x",
                "metadata": None,
                "created_at": OLD,
            }
        ],
    }
    target = line["messages"][0] if field in ("metadata", "message created_at") else line
    target[field.removeprefix("message ")] = RAW
    path = tmp_path_factory.mktemp("check") / "one.jsonl"
    path.write_text(json.dumps(good) + "\n" + with_raw(line, raw) + "\n")
    cast = "jsonb" if field == "metadata" else "timestamptz"
    with psycopg.connect(import_db.libpq_url) as conn:
        try:
            value = json.loads(raw) if cast == "timestamptz" else raw
            readable = cast == "jsonb" or (
                isinstance(value, str) and re.fullmatch(TIMESTAMP_PATTERN, value) is not None
            )
            expected = (
                conn.execute(f"SELECT CAST(CAST(%s AS {cast}) AS text)", [value]).fetchone()[0] if readable else None
            )
        except (psycopg.Error, ValueError):
            readable, expected = False, None
    if cast == "jsonb" and readable and expected == "null":
        expected = None  # a bare JSON null in metadata is SQL NULL (use metadata_is_json_null for the JSON value)
    result = Cli(import_db.url)("import", str(path), "--batch-size", "1")
    if readable:
        assert result.exit_code == 0, (raw, result.stderr)
        column = "metadata::text" if cast == "jsonb" else f"{field.split()[-1]}::text"
        table = "messages" if field in ("metadata", "message created_at") else "conversations"
        stored = import_db.scalar(
            f"SELECT {column} FROM {table} WHERE id = %s", [target["id"] if table == "messages" else line["id"]]
        )
        assert stored == expected, raw
    else:
        assert_one_line_error(result, 1, "line 2: ", "nothing was imported")
        assert count(import_db) == 0


def test_a_line_with_a_problem_is_named_whatever_its_kind(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    lines = exported_lines(migrated_db, cli, tmp_path)
    lines[1]["status"] = ["active"]
    lines[2]["messages"][1]["metadata"] = RAW
    deep = "[" * 5000 + "1" + "]" * 5000  # PostgreSQL stores this: import must take it
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines[:2]) + with_raw(lines[2], deep) + "\n")
    assert_one_line_error(cli("import", str(path)), 1, "line 2: status is not text (a JSON array)")
    path.write_text(json.dumps(lines[0]) + "\n" + with_raw(lines[2], deep) + "\n")
    assert cli("import", str(path)).exit_code == 0
    assert (
        migrated_db.scalar(
            "SELECT jsonb_typeof(metadata) FROM messages WHERE metadata IS NOT NULL AND length(metadata::text) > 10000"
        )
        == "array"
    )


def test_conflicts_with_existing_rows_name_the_line_and_write_nothing(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    lines = exported_lines(migrated_db, cli, tmp_path, conversations=4)
    path = write(tmp_path / "all.jsonl", lines)
    other = seed(migrated_db, 1, updated=OLD, messages=1)[0]
    stolen = lines[3]["messages"][0]["id"]

    def attempt(*fragments: str) -> None:
        before = snapshot(migrated_db)
        assert_one_line_error(cli("import", str(path), "--batch-size", "1"), 1, "nothing was imported", *fragments)
        assert snapshot(migrated_db) == before

    # A message id that already belongs to another conversation.
    migrated_db.sql("UPDATE messages SET id = %s WHERE conversation_id = %s", [stolen, other])
    attempt("line 4: ", f"{stolen} already belongs to conversation {other}")
    migrated_db.sql("DELETE FROM conversations WHERE id = %s", [other])
    # The same conversation, already there with another status.
    assert cli("import", str(write(tmp_path / "one.jsonl", [lines[2]]))).exit_code == 0
    migrated_db.sql("UPDATE conversations SET status = 'archived' WHERE id = %s", [lines[2]["id"]])
    attempt("line 3: ", "already exists with a different status")
    # The same message with other content; then a message the line does not have.
    migrated_db.sql("UPDATE conversations SET status = 'active' WHERE id = %s", [lines[2]["id"]])
    migrated_db.sql("UPDATE messages SET content = 'changed' WHERE id = %s", [lines[2]["messages"][1]["id"]])
    attempt("line 3: ", "already exists with a different content")
    migrated_db.sql(
        "UPDATE messages SET content = %s WHERE id = %s",
        [lines[2]["messages"][1]["content"], lines[2]["messages"][1]["id"]],
    )
    migrated_db.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'user', 'new')",
        [lines[2]["id"]],
    )
    attempt("line 3: ", "already exists with 1 messages that this line does not have")
    migrated_db.sql("DELETE FROM messages WHERE content = 'new'")
    # Identical rows are skipped; the rest is inserted.
    report = cli("import", str(path), "--json").json()
    assert report["existing"] == {"conversations": 1, "messages": 2}
    assert report["inserted"] == {"conversations": 3, "messages": 6}


def test_an_id_twice_in_the_file_is_refused_even_in_different_batches(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    lines = exported_lines(migrated_db, cli, tmp_path)
    twin = json.loads(json.dumps(lines[0]))
    twin["messages"] = []
    borrowed = json.loads(json.dumps(lines[3]))
    borrowed["id"] = "00000000-0000-4000-8000-00000000abcd"
    borrowed["messages"] = [dict(lines[1]["messages"][0], conversation_id=borrowed["id"])]
    path = write(tmp_path / "twice.jsonl", lines + [twin, borrowed])
    result = cli("import", str(path), "--batch-size", "2")
    assert_one_line_error(
        result,
        1,
        "2 bad lines",
        f"line 6: conversation {lines[0]['id']} appears again (also on line 1)",
        "line 7: message 1 id",
        "(also on line 2)",
    )
    assert count(migrated_db) == 0
