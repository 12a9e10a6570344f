"""Legal holds: `chatdb hold add | list | remove`, and prune leaving held conversations alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed

OLD = "2020-01-01T00:00:00+00:00"


def test_add_list_and_remove(migrated_db: TestDatabase, cli: Cli) -> None:
    seed(migrated_db, 2, user="alice")
    (bobs,) = seed(migrated_db, 1, user="bob")
    by_user = cli("hold", "add", "--user", "alice", "--reason", "litigation 17", "--json")
    assert by_user.exit_code == 0, by_user.stderr
    hold = by_user.json()["hold"]
    assert (hold["user"], hold["conversation"], hold["reason"], hold["until"]) == ("alice", None, "litigation 17", None)
    by_prefix = cli(
        "hold", "add", "--conversation", bobs[:8], "--reason", "ticket 4", "--until", "2999-01-01", "--json"
    )
    assert by_prefix.exit_code == 0, by_prefix.stderr
    assert by_prefix.json()["hold"]["conversation"] == bobs
    listed = cli("hold", "list", "--json").json()["holds"]
    assert [(h["id"], h["current"]) for h in listed] == [(hold["id"], True), (by_prefix.json()["hold"]["id"], True)]
    assert migrated_db.scalar("SELECT count(*) FROM chatdb_hold") == 2
    assert "litigation 17" in cli("hold", "list").stdout

    removed = cli("hold", "remove", str(hold["id"]), "--json")
    assert removed.exit_code == 0, removed.stderr
    assert migrated_db.scalar("SELECT array_agg(id) FROM chatdb_hold") == [by_prefix.json()["hold"]["id"]]
    assert_one_line_error(cli("hold", "remove", str(hold["id"])), 1, f"no hold has id {hold['id']}")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--user", "nobody", "--reason", "x"], 1, "no user 'nobody'"),
        (["--conversation", "00000000-0000-4000-8000-00000000dead", "--reason", "x"], 1, "no conversation"),
        (["--user", "alice", "--conversation", "0000", "--reason", "x"], 2, "--user or one --conversation"),
        (["--reason", "x"], 2, "--user or one --conversation"),
        (["--user", "alice", "--reason", "  "], 2, "--reason"),
        (["--user", "alice"], 2, "--reason"),
        (["--user", "alice", "--reason", "x", "--until", "2001-01-01"], 2, "--until"),
    ],
    ids=["unknown-user", "unknown-conversation", "both", "neither", "blank-reason", "no-reason", "past-until"],
)
def test_bad_holds_are_refused(migrated_db: TestDatabase, cli: Cli, args: list[str], code: int, fragment: str) -> None:
    seed(migrated_db, 1, user="alice")
    assert_one_line_error(cli("hold", "add", *args), code, fragment)
    assert migrated_db.scalar("SELECT count(*) FROM chatdb_hold") == 0


def test_writes_refused_on_a_read_only_server(migrated_db: TestDatabase, cli: Cli) -> None:
    seed(migrated_db, 1, user="alice")
    assert cli("hold", "add", "--user", "alice", "--reason", "x").exit_code == 0
    migrated_db.sql(f'ALTER DATABASE "{migrated_db.name}" SET default_transaction_read_only = on')
    assert_one_line_error(cli("hold", "add", "--user", "alice", "--reason", "y"), 1, "hold add", "read-only")
    assert_one_line_error(cli("hold", "remove", "1"), 1, "hold remove", "read-only")
    assert len(cli("hold", "list", "--json").json()["holds"]) == 1  # reading still works


def held_setup(db: TestDatabase, cli: Cli) -> dict[str, list[str]]:
    """Old archived conversations: alice's held by user, one of bob's by conversation, carol's hold expired."""
    ids = {
        "alice": seed(db, 3, user="alice", updated=OLD, status="archived", messages=2),
        "bob": seed(db, 3, user="bob", updated=OLD, status="archived", messages=2),
        "carol": seed(db, 2, user="carol", updated=OLD, status="archived", messages=2),
    }
    assert cli("hold", "add", "--user", "alice", "--reason", "case A").exit_code == 0
    assert cli("hold", "add", "--conversation", ids["bob"][0], "--reason", "case B").exit_code == 0
    db.sql(
        "INSERT INTO chatdb_hold (user_id, reason, until, created_by) VALUES ('carol', 'over', now() - interval '1 day', 't')"
    )
    return ids


def remaining(db: TestDatabase) -> set[str]:
    return {r[0] for r in db.sql("SELECT id::text FROM conversations")}


@pytest.mark.parametrize("with_export", [False, True], ids=["plain", "with-export"])
def test_prune_never_deletes_held_conversations(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path, with_export: bool
) -> None:
    ids = held_setup(migrated_db, cli)
    plan = cli("prune", "--older-than", "1y", "--dry-run", "--json").json()
    assert plan["planned"]["conversations"] == 4 and plan["planned"]["messages"] == 8
    assert plan["held_back"]["conversations"] == 4 and plan["held_back"]["messages"] == 8
    assert [(h["reason"], h["covers"]) for h in plan["held_back"]["holds"]] == [("case A", 3), ("case B", 1)]

    target = tmp_path / "pruned.jsonl"
    export = ["--export", str(target)] if with_export else []
    result = cli("prune", "--older-than", "1y", "--yes", "--batch-size", "2", *export, "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["deleted"] == {"conversations": 4, "messages": 8}
    assert report["held_back"]["conversations"] == 4
    assert remaining(migrated_db) == set(ids["alice"]) | {ids["bob"][0]}
    if with_export:
        exported = {json.loads(line)["id"] for line in target.read_text().splitlines()}
        assert exported == set(ids["bob"][1:] + ids["carol"])
    table = cli("prune", "--older-than", "1y", "--yes")
    assert table.exit_code == 0, table.stderr
    assert "4 conversations held back by hold 1 (user alice: case A), hold 2 (conversation" in table.stderr
    assert count(migrated_db) == 4


def test_prune_resume_leaves_a_conversation_held_after_the_export(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    """A hold added between an interrupted prune's export and its resume still keeps its conversation."""
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.export import export_conversations

    ids = seed(migrated_db, 4, user="dave", updated=OLD, status="archived", messages=2)
    target = tmp_path / "pruned.jsonl"
    selection = ConversationFilter.build(users=["dave"], status="archived")
    export_conversations(migrated_db.database(), selection, output=target, format="jsonl")
    assert cli("hold", "add", "--conversation", ids[2], "--reason", "late").exit_code == 0
    result = cli(
        "prune", "--older-than", "1y", "--user", "dave", "--export", str(target), "--resume", "--yes", "--json"
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["deleted"]["conversations"] == 3
    assert remaining(migrated_db) == {ids[2]}
