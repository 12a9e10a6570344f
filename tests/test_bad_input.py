"""Malformed and hostile input thrown at every command (property-based, with Hypothesis).

Whatever the value, a command either does what it says (a well-formed user id
that matches nothing, say) or fails with exit 1 or 2 and exactly one line on
stderr, never a traceback, never a raw database error; and the data is never
changed. SQL-looking values show that every value reaches PostgreSQL as a bound
parameter: a user named ``'; DROP TABLE messages; --`` is just a user that does
not exist.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Cli, Invocation, TestDatabase, assert_one_line_error
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jobdata import seed, snapshot

from chatdb.errors import UsageError
from chatdb.timeparse import parse_duration, parse_instant

SQLISH = [
    "'; DROP TABLE messages; --",
    '"; DROP TABLE conversations; --',
    "' OR '1'='1",
    "%s",
    "%(x)s",
    "$1",
    ":name",
    "\\",
    "'",
    "a\x00b",
    "\x00",
    "é" * 300,
    "x" * 5000,
    "🙂\u202e",
    "-1",
    "--help",
]
hostile = st.one_of(st.sampled_from(SQLISH), st.text(max_size=80))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def data_cli(pg_server, migrated_template, tmp_path_factory) -> Iterator[tuple[Cli, TestDatabase]]:
    """One database for a whole module of examples: nothing may change it, so they can share it.

    The examples run in a directory of their own, so a relative file name never lands in the project.
    """
    from helpers import new_database

    gen = new_database(pg_server, template=migrated_template)
    db = next(gen)
    seed(db, 6, updated="2020-01-01T00:00:00+00:00", messages=2)
    seed(db, 4, updated="2020-01-01T00:00:00+00:00", status="archived", messages=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield Cli(db.url), db
    gen.close()


def rejected(parse, value: str) -> bool:
    try:
        parse(value)
    except UsageError:
        return True
    return False


def number_like(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def assert_refused_or_harmless(result: Invocation) -> None:
    """Exit 0, or exit 1/2 with one line; never a traceback or a raw driver error.

    Each test compares the data before and after its whole example (one snapshot, not one per command).
    """
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code != 0:
        assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
        assert_one_line_error(result, result.exit_code)
        assert "database error" not in result.stderr and "unexpected" not in result.stderr, result.stderr


@pytest.mark.parametrize("option", ["--older-than", "--before", "--since"])
@FAST
@given(value=hostile)
def test_malformed_durations_and_dates_are_usage_errors(data_cli, option: str, value: str) -> None:
    cli, db = data_cli
    parse = parse_duration if option == "--older-than" else parse_instant
    assume(rejected(parse, value) and not value.startswith("-"))
    before = snapshot(db)
    for command in (("conversations",), ("archive",), ("prune", "--yes")):
        result = cli(*command, option, value)
        assert_one_line_error(result, 2, option)
    assert snapshot(db) == before


@FAST
@given(value=hostile)
def test_hostile_user_ids_match_nothing_or_are_refused(data_cli, value: str) -> None:
    cli, db = data_cli
    assume(value != "alice" and not value.startswith("-"))
    before = snapshot(db)
    for command in (
        ("conversations",),
        ("export",),
        ("archive", "--older-than", "1d"),
        ("unarchive",),
        ("prune", "--older-than", "1d", "--yes"),
    ):
        json_flag = () if command[0] == "export" else ("--json",)  # export's stdout is the export
        result = cli(*command, "--user", value, *json_flag)
        assert_refused_or_harmless(result)
        if "\x00" in value:
            assert_one_line_error(result, 2, "NUL")
        elif not value.strip():
            assert_one_line_error(result, 2, "empty")
        elif result.exit_code == 0 and command[0] in ("archive", "unarchive"):
            assert result.json()["changed"] == 0
    assert snapshot(db) == before


@FAST
@given(value=hostile)
def test_hostile_conversation_and_message_ids(data_cli, value: str) -> None:
    cli, db = data_cli
    assume(not value.startswith("-"))
    before = snapshot(db)
    existing = str(db.scalar("SELECT id FROM conversations ORDER BY id LIMIT 1"))
    for args in (
        ("history", value),
        ("history", existing, "--before", value),
        ("export", "--conversation", value),
        ("unarchive", "--conversation", value),
        ("conversations", "--limit", value),
        ("history", existing, "--limit", value),
        ("stats", "--top", value),
    ):
        assert_refused_or_harmless(cli(*args))
    assert snapshot(db) == before


@FAST
@given(value=hostile)
def test_unknown_formats_statuses_and_revisions(data_cli, value: str, tmp_path_factory) -> None:
    cli, db = data_cli
    assume(value not in ("jsonl", "json", "csv", "active", "archived", "all") and not value.startswith("-"))
    assume(not number_like(value))
    before = snapshot(db)
    out = tmp_path_factory.mktemp("fmt") / "x.jsonl"
    for args in (
        ("export", "--format", value, "-o", str(out)),
        ("export", "--status", value),
        ("conversations", "--status", value),
        # Not hex, not relative, not base/head: it can never name a revision.
        ("migrate", f"x'; {value}", "--yes"),
        ("seed", "--conversations", value),
        ("import", value),
        ("archive", "--older-than", "1d", "--batch-size", value),
        ("prune", "--older-than", "1d", "--yes", "--wait", value),
    ):
        result = cli(*args)
        assert_refused_or_harmless(result)
        assert result.exit_code != 0, args
    assert not out.exists()
    assert snapshot(db) == before


@FAST
@given(
    url=st.one_of(
        hostile,
        st.builds(
            lambda scheme, user, password, port, name: f"{scheme}://{user}:{password}@127.0.0.1:{port}/{name}",
            st.sampled_from(["postgresql", "postgresql+psycopg", "postgres", "mysql", "http", ""]),
            hostile,
            hostile,
            st.one_of(st.sampled_from(["1", "0", "99999", "-5", "x", ""]), hostile),
            hostile,
        ),
    )
)
def test_malformed_urls(url: str) -> None:
    assume(url.strip() and not url.startswith("-"))
    for command in (("status",), ("conversations",), ("doctor",)):
        # As an option, not the environment: only an option can carry a NUL byte.
        result = Cli(None)("--database-url", url, *command, env={"PGCONNECT_TIMEOUT": "2"})
        assert result.exit_code in (1, 2), (url, result.exit_code, result.stderr)
        assert_one_line_error(result, result.exit_code)
        assert "unexpected" not in result.stderr, result.stderr


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile, inner, max_size=3),
    max_leaves=8,
)


def conversation_like(draw_fields: dict) -> bytes:
    return (json.dumps(draw_fields) + "\n").encode()


@FAST
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.lists(json_values, min_size=1, max_size=3).map(lambda xs: b"".join(conversation_like(x) for x in xs)),
        st.fixed_dictionaries(
            {
                "id": hostile,
                "user_id": hostile,
                "status": hostile,
                "created_at": hostile,
                "updated_at": hostile,
                "messages": json_values,
            }
        ).map(conversation_like),
    ),
    gz=st.booleans(),
)
def test_malformed_import_files_change_nothing(data_cli, tmp_path_factory, content: bytes, gz: bool) -> None:
    cli, db = data_cli
    before = snapshot(db)
    path: Path = tmp_path_factory.mktemp("imp") / ("bad.jsonl.gz" if gz else "bad.jsonl")
    path.write_bytes(content)
    for extra in ((), ("--dry-run",)):
        result = cli("import", str(path), *extra)
        assert_refused_or_harmless(result)
        if content.strip():
            assert result.exit_code in (1, 2), (content, result.stdout)
    assert snapshot(db) == before


@FAST
@given(
    command=st.sampled_from(
        [
            "conversations",
            "history",
            "stats",
            "doctor",
            "status",
            "archive",
            "unarchive",
            "export",
            "import",
            "prune",
            "seed",
            "bench",
            "migrate",
            "embedded",
        ]
    ),
    options=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "--older-than",
                    "--before",
                    "--since",
                    "--user",
                    "--status",
                    "--limit",
                    "--json",
                    "--csv",
                    "--format",
                    "--batch-size",
                    "--wait",
                    "--dry-run",
                    "--max-rows",
                    "--export",
                    "--top",
                    "--conversation",
                    "--all",
                    "--quiet",
                    "--nope",
                ]
            ),
            st.one_of(st.sampled_from(["0", "-1", "1d", "2020-13-45", "abc", "", "x" * 300, "1y"]), hostile),
        ),
        max_size=4,
    ),
)
def test_option_combinations_fail_cleanly_and_change_nothing(data_cli, command: str, options: list) -> None:
    cli, db = data_cli
    flags = {"--json", "--csv", "--dry-run", "--all", "--quiet"}
    args: list[str] = [command]
    for option, value in options:
        args += [option] if option in flags else [option, value]
    # Destructive commands stay on a user who has nothing (and prune never gets --yes):
    # a valid combination may run, but it cannot touch the seeded rows.
    if command in ("archive", "unarchive", "prune"):
        args += ["--user", "nobody-at-all"]
    if command in ("seed", "bench", "migrate", "embedded", "import"):
        args.append("--nope")  # these must refuse before doing anything
    before = snapshot(db)
    result = cli(*args)
    assert_refused_or_harmless(result)
    assert snapshot(db) == before


NOT_UTF8 = os.fsdecode(b"\xff\xfe-caf\xe9")  # bytes that are not UTF-8, as Python reads them from argv


@pytest.mark.parametrize(
    "args",
    [
        ("export", "--user", NOT_UTF8),
        ("conversations", "--user", NOT_UTF8),
        ("history", NOT_UTF8),
        ("unarchive", "--conversation", NOT_UTF8),
        ("archive", "--older-than", NOT_UTF8),
        ("export", "-o", f"/tmp/{NOT_UTF8}.jsonl"),
        ("import", NOT_UTF8),
        ("--database-url", f"postgresql://u:{NOT_UTF8}@127.0.0.1:1/db", "status"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_arguments_that_are_not_utf8_are_one_usage_error(data_cli, args: tuple[str, ...]) -> None:
    cli, db = data_cli
    before = snapshot(db)
    result = cli(*args)
    assert_one_line_error(result, 2, "not valid UTF-8")
    assert "\\udc" not in result.stderr and "caf" not in result.stderr  # the value (maybe a password) is not quoted
    assert snapshot(db) == before
