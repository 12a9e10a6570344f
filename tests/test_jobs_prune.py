"""`chatdb prune`: exact deletions, guards, and an export that holds exactly what was deleted."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed, snapshot

from chatdb.filters import ConversationFilter
from chatdb.jobs.prune import prune_conversations

NOW = datetime.now(UTC).isoformat()
OLD = "2020-01-01T00:00:00+00:00"


def seed_mix(db: TestDatabase) -> dict[str, list[str]]:
    return {
        "old_archived": seed(db, 8, updated=OLD, status="archived", messages=3),
        "new_archived": seed(db, 3, updated=NOW, status="archived"),
        "old_active": seed(db, 5, user="bob", updated=OLD),
    }


def test_prune_deletes_exactly_old_archived_conversations(migrated_db: TestDatabase, cli: Cli) -> None:
    ids = seed_mix(migrated_db)
    result = cli("prune", "--older-than", "1y", "--yes", "--batch-size", "3", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["planned"]["conversations"] == 8 and report["planned"]["messages"] == 24
    assert report["deleted"] == {"conversations": 8, "messages": 24}
    assert (report["skipped"], report["batches"], report["export"]) == (0, 3, None)
    remaining = {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")}
    assert remaining == set(ids["new_archived"] + ids["old_active"])
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 8 * 2
    assert (
        migrated_db.scalar("SELECT count(*) FROM messages WHERE conversation_id NOT IN (SELECT id FROM conversations)")
        == 0
    )


def test_include_active_widens_with_a_warning(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    result = cli("prune", "--older-than", "1y", "--include-active", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["deleted"]["conversations"] == 13
    assert "Warning:" in result.stderr and "ACTIVE" in result.stderr
    assert count(migrated_db) == 3


def test_dry_run_counts_rows_and_bytes_and_changes_nothing(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    before = snapshot(migrated_db)
    expected_bytes = migrated_db.scalar(
        "SELECT (SELECT sum(pg_column_size(c.*)) FROM conversations c WHERE status = 'archived' AND updated_at < '2021-01-01')"
        " + (SELECT sum(pg_column_size(m.*)) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        "    WHERE c.status = 'archived' AND c.updated_at < '2021-01-01')"
    )
    # No --yes needed for a dry run.
    report = cli("prune", "--before", "2021-01-01", "--dry-run", "--json").json()
    assert report["dry_run"] is True
    assert report["planned"] == {"conversations": 8, "messages": 24, "bytes": expected_bytes}
    assert report["deleted"] == {"conversations": 0, "messages": 0}
    assert snapshot(migrated_db) == before
    table = cli("prune", "--before", "2021-01-01", "--dry-run")
    assert "dry run" in table.stdout and migrated_db.name in table.stdout


def test_needs_yes_off_a_terminal_and_a_cutoff(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    assert_one_line_error(cli("prune", "--older-than", "1y"), 2, "--yes")
    assert_one_line_error(cli("prune", "--yes"), 2, "--older-than")
    assert count(migrated_db) == 16


def test_max_rows_refuses_before_changing_anything(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    target = tmp_path / "x.jsonl"
    result = cli("prune", "--older-than", "1y", "--max-rows", "31", "--export", str(target), "--yes")
    assert_one_line_error(result, 1, "--max-rows 31", "32 rows")
    assert count(migrated_db) == 16
    assert not target.exists()
    assert (
        cli("prune", "--older-than", "1y", "--max-rows", "32", "--yes", "--json").json()["deleted"]["conversations"]
        == 8
    )


def test_rerun_is_a_no_op(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    assert cli("prune", "--older-than", "1y", "--yes", "--json").exit_code == 0
    after = snapshot(migrated_db)
    report = cli("prune", "--older-than", "1y", "--yes", "--json").json()
    assert report["deleted"] == {"conversations": 0, "messages": 0}
    assert snapshot(migrated_db) == after


def test_export_holds_exactly_the_deleted_rows(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    ids = seed_mix(migrated_db)
    target = tmp_path / "pruned.jsonl.gz"
    result = cli("prune", "--older-than", "1y", "--export", str(target), "--yes", "--batch-size", "3", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["export_verified"] is True
    assert report["export"]["conversations"] == 8 and report["export"]["messages"] == 24
    lines = [json.loads(line) for line in gzip.decompress(target.read_bytes()).splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(ids["old_archived"])
    assert report["deleted"] == {"conversations": 8, "messages": 24}
    manifest = json.loads(Path(str(target) + ".manifest.json").read_text())
    assert manifest["sha256"] == report["export"]["sha256"]

    again = cli("prune", "--older-than", "1y", "--export", str(target), "--yes")
    assert_one_line_error(again, 1, "already exists")


def test_a_conversation_changed_after_the_export_is_kept(migrated_db: TestDatabase, tmp_path: Path) -> None:
    ids = seed(migrated_db, 6, updated=OLD, status="archived")
    changed = sorted(ids)[3]
    touched = []

    def app_writes_meanwhile(update) -> None:
        # Once the export is written, the application adds a message to one conversation.
        if update.phase == "verify" and not touched:
            migrated_db.sql(
                "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'user', 'late')",
                [changed],
            )
            touched.append(changed)

    target = tmp_path / "pruned.jsonl"
    with migrated_db.database() as database:
        selection = ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC))
        result = prune_conversations(database, selection, export_to=target, batch_size=4, progress=app_writes_meanwhile)
    assert touched
    assert (result.deleted_conversations, result.skipped) == (5, 1)
    assert [r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")] == [changed]
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 3
    exported = {json.loads(line)["id"] for line in target.read_text().splitlines()}
    assert exported == set(ids)


def test_rows_the_application_holds_are_kept(migrated_db: TestDatabase) -> None:
    ids = seed(migrated_db, 5, updated=OLD, status="archived")
    held = sorted(ids)[1]
    with migrated_db.connect() as app:
        app.execute("SELECT 1 FROM conversations WHERE id = %s FOR KEY SHARE", [held])
        with migrated_db.database() as database:
            selection = ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC))
            result = prune_conversations(database, selection, batch_size=2)
        assert (result.deleted_conversations, result.skipped) == (4, 1)
        app.rollback()
    assert [r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")] == [held]


def test_confirmation_sees_the_plan_and_can_cancel(migrated_db: TestDatabase) -> None:
    import pytest

    from chatdb.errors import ChatdbError

    seed(migrated_db, 4, updated=OLD, status="archived", messages=2)
    seen = []

    def decline(plan) -> bool:
        seen.append(plan)
        return False

    with migrated_db.database() as database:
        selection = ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC))
        with pytest.raises(ChatdbError, match="cancelled; nothing was deleted"):
            prune_conversations(database, selection, confirm=decline)
        assert count(migrated_db) == 4
        (plan,) = seen
        assert (plan.conversations, plan.messages, plan.database) == (4, 8, database.display_url)
        assert plan.bytes and plan.bytes > 0
        result = prune_conversations(database, selection, confirm=lambda plan: True)
    assert result.deleted_conversations == 4 and count(migrated_db) == 0


def test_library_errors_name_parameters_and_the_command_names_flags(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    import pytest

    from chatdb.errors import JobRefusedError, UsageError

    seed(migrated_db, 3, updated=OLD, status="archived")
    existing = tmp_path / "taken.jsonl"
    existing.write_text("")
    with migrated_db.database() as database:
        with pytest.raises(UsageError, match="^max_rows must be 0 or more"):
            prune_conversations(
                database, ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC)), max_rows=-1
            )
        with pytest.raises(UsageError, match=r"prune needs a cutoff \(older_than\)"):
            prune_conversations(database, ConversationFilter())
        with pytest.raises(JobRefusedError, match=r"max_rows 1;") as refused:
            prune_conversations(
                database, ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC)), max_rows=1
            )
        assert "--" not in str(refused.value)
        with pytest.raises(JobRefusedError, match="finish the prune that wrote it with resume$"):
            prune_conversations(
                database, ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC)), export_to=existing
            )
    assert_one_line_error(cli("prune", "--older-than", "1y", "--max-rows", "1", "--yes"), 1, "more than --max-rows 1")
    assert_one_line_error(cli("prune", "--older-than", "1y", "--export", str(existing), "--yes"), 1, "with --resume")
    assert count(migrated_db) == 3
