"""`chatdb import`: exact restores, idempotence, and bad files that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed, snapshot

OLD = "2020-01-01T00:00:00+00:00"


def seed_mix(db: TestDatabase) -> None:
    seed(db, 7, updated=OLD, status="archived", messages=3)
    seed(db, 4, user="bob", updated="2023-05-05T05:05:05.123456+00:00")
    seed(db, 2, user="carol", updated=OLD, messages=0)
    # A message with deep metadata and a non-UTC original offset.
    db.sql(
        "UPDATE messages SET metadata = %s::jsonb, created_at = '2019-12-31 23:00:00.000001-05:30' "
        "WHERE id = (SELECT id FROM messages ORDER BY id LIMIT 1)",
        ['{"tool": {"calls": [1, 2.5, "x", null, true]}, "ü": "ß"}'],
    )


def export_all(cli: Cli, target: Path) -> None:
    result = cli("export", "-o", str(target))
    assert result.exit_code == 0, result.stderr


def test_export_delete_import_gives_back_identical_rows(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    original = snapshot(migrated_db)
    target = tmp_path / "all.jsonl.gz"
    export_all(cli, target)
    migrated_db.sql("DELETE FROM conversations")
    assert count(migrated_db) == 0
    result = cli("import", str(target), "--batch-size", "4", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["manifest_checked"] is True
    assert report["in_file"] == {"conversations": 13, "messages": 29}
    assert report["inserted"] == {"conversations": 13, "messages": 29}
    assert report["existing"] == {"conversations": 0, "messages": 0}
    assert report["batches"] == 4
    assert snapshot(migrated_db) == original


def test_export_prune_import_round_trip(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    original = snapshot(migrated_db)
    target = tmp_path / "pruned.jsonl.gz"
    pruned = cli("prune", "--older-than", "1y", "--export", str(target), "--yes", "--json")
    assert pruned.exit_code == 0, pruned.stderr
    assert pruned.json()["deleted"] == {"conversations": 7, "messages": 21}
    assert count(migrated_db) == 6
    assert cli("import", str(target), "--json").json()["inserted"] == {"conversations": 7, "messages": 21}
    assert snapshot(migrated_db) == original


def test_import_is_idempotent_and_fills_gaps(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    original = snapshot(migrated_db)
    target = tmp_path / "all.jsonl"
    export_all(cli, target)
    again = cli("import", str(target), "--json").json()
    assert again["inserted"] == {"conversations": 0, "messages": 0}
    assert again["existing"] == {"conversations": 13, "messages": 29}
    # Lose bob's conversations and one message of another conversation.
    migrated_db.sql("DELETE FROM conversations WHERE user_id = 'bob'")
    migrated_db.sql("DELETE FROM messages WHERE id = (SELECT id FROM messages ORDER BY id DESC LIMIT 1)")
    dry = cli("import", str(target), "--dry-run", "--json").json()
    assert dry["dry_run"] is True
    assert dry["inserted"] == {"conversations": 4, "messages": 9}
    assert count(migrated_db) == 9
    fixed = cli("import", str(target), "--json").json()
    assert fixed["inserted"] == {"conversations": 4, "messages": 9}
    assert snapshot(migrated_db) == original


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_bad_lines_are_reported_by_number_and_nothing_is_written(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    seed_mix(migrated_db)
    source = tmp_path / "all.jsonl"
    export_all(cli, source)
    migrated_db.sql("DELETE FROM conversations")
    # Conversations with messages first (stable): ids are random, and lines 4 and 6 must have messages.
    lines = sorted(source.read_text().splitlines(), key=lambda line: not json.loads(line)["messages"])
    bad_role = json.loads(lines[3])
    bad_role["messages"][0]["role"] = "system"
    no_offset = json.loads(lines[5])
    no_offset["created_at"] = "2020-01-01T00:00:00"
    broken = (
        lines[:1]
        + ['{"id": "oops"']
        + lines[2:3]
        + [json.dumps(bad_role)]
        + lines[4:5]
        + [json.dumps(no_offset)]
        + lines[6:]
    )
    target = tmp_path / "broken.jsonl"
    write_lines(target, broken)
    result = cli("import", str(target), "--batch-size", "2")
    assert_one_line_error(
        result,
        1,
        "3 bad lines",
        "nothing was imported",
        "line 2: not valid JSON",
        "line 4: message 1 role 'system'",
        "line 6: created_at",
    )
    assert count(migrated_db) == 0 and migrated_db.scalar("SELECT count(*) FROM messages") == 0


def test_truncated_files_write_nothing(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    gz = tmp_path / "all.jsonl.gz"
    plain = tmp_path / "all.jsonl"
    export_all(cli, gz)
    export_all(cli, plain)
    migrated_db.sql("DELETE FROM conversations")

    cut_gz = tmp_path / "cut.jsonl.gz"
    cut_gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    assert_one_line_error(cli("import", str(cut_gz)), 1, "truncated or corrupt")

    cut_plain = tmp_path / "cut.jsonl"
    data = plain.read_bytes()
    cut_plain.write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("import", str(cut_plain)), 1, "truncated")

    # Cut exactly at a line end: only the manifest can tell.
    whole_lines = plain.read_text().splitlines(keepends=True)
    plain.write_text("".join(whole_lines[:-2]))
    assert_one_line_error(cli("import", str(plain)), 1, "does not match its manifest", "conversations 13")
    assert count(migrated_db) == 0


def test_missing_users_are_a_clear_error(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    target = tmp_path / "all.jsonl"
    export_all(cli, target)
    migrated_db.sql("DELETE FROM users WHERE id = 'carol'")  # cascades to carol's conversations
    migrated_db.sql("DELETE FROM conversations")
    result = cli("import", str(target))
    assert_one_line_error(result, 1, "2 bad lines", "user 'carol' does not exist")
    assert count(migrated_db) == 0


def test_import_usage_errors(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("import", str(tmp_path / "nope.jsonl")), 2, "no such file")
    array = tmp_path / "all.json"
    array.write_text("[\n]\n")
    assert_one_line_error(cli("import", str(array)), 1, "line 1: not valid JSON")
