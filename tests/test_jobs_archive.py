"""`chatdb archive` / `chatdb unarchive` and the library functions behind them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed, snapshot

from chatdb.filters import ConversationFilter
from chatdb.jobs.archive import archive_conversations, unarchive_conversations

NOW = datetime.now(UTC).isoformat()


def seed_mix(db: TestDatabase) -> None:
    seed(db, 30, user="alice", updated="2020-01-01T00:00:00+00:00")
    seed(db, 10, user="alice", updated=NOW)
    seed(db, 5, user="bob", updated="2021-06-01T00:00:00+00:00")
    seed(db, 4, user="bob", updated="2020-01-01T00:00:00+00:00", status="archived")


def test_archive_marks_exactly_the_old_active_conversations(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    result = cli("archive", "--older-than", "90d", "--batch-size", "7", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["matched"], report["changed"], report["skipped"]) == (35, 35, 0)
    assert report["messages"] is None  # counted on dry runs only
    assert report["batches"] == 5  # 35 rows in batches of 7
    assert report["dry_run"] is False
    assert count(migrated_db, "status = 'archived'") == 39
    assert count(migrated_db, "status = 'active' AND updated_at > now() - interval '1 day'") == 10


def test_archive_keeps_last_activity(migrated_db: TestDatabase, cli: Cli) -> None:
    seed(migrated_db, 3, updated="2020-01-01T00:00:00+00:00")
    before = migrated_db.sql("SELECT id, created_at, updated_at FROM conversations ORDER BY id")
    assert cli("archive", "--before", "2021-01-01", "--quiet").exit_code == 0
    assert migrated_db.sql("SELECT id, created_at, updated_at FROM conversations ORDER BY id") == before


def test_archive_filters_by_user_and_before(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    report = cli("archive", "--before", "2021-01-01", "--user", "bob", "--json").json()
    assert report["changed"] == 0
    report = cli("archive", "--before", "2022-01-01", "--user", "bob", "--json").json()
    assert report["changed"] == 5
    assert count(migrated_db, "user_id = 'alice' AND status = 'archived'") == 0


def test_archive_since_narrows_to_a_window(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    report = cli("archive", "--before", "2022-01-01", "--since", "2021-01-01", "--json").json()
    assert report["changed"] == 5


def test_dry_run_changes_nothing_and_shows_exact_counts(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    before = snapshot(migrated_db)
    result = cli("archive", "--older-than", "90d", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["dry_run"] is True
    assert (report["matched"], report["messages"], report["changed"]) == (35, 70, 0)
    assert len(report["sample"]) == 5
    assert all(s["updated_at"].startswith("2020-01-01") for s in report["sample"])
    assert snapshot(migrated_db) == before

    table = cli("archive", "--older-than", "90d", "--dry-run")
    assert table.exit_code == 0
    assert "35" in table.stdout and "dry run" in table.stdout


def test_rerun_is_a_no_op(migrated_db: TestDatabase, cli: Cli) -> None:
    seed_mix(migrated_db)
    assert cli("archive", "--older-than", "90d", "--json").json()["changed"] == 35
    after_first = snapshot(migrated_db)
    again = cli("archive", "--older-than", "90d", "--json").json()
    assert (again["matched"], again["changed"], again["batches"]) == (0, 0, 0)
    assert snapshot(migrated_db) == after_first


def test_archive_needs_a_cutoff(cli: Cli) -> None:
    assert_one_line_error(cli("archive"), 2, "--older-than")
    assert_one_line_error(cli("archive", "--older-than", "90d", "--before", "2020-01-01"), 2, "either")
    assert_one_line_error(cli("archive", "--older-than", "soon"), 2, "soon")
    assert_one_line_error(cli("archive", "--older-than", "90d", "--batch-size", "0"), 2, "batch-size")


def test_rows_the_application_holds_are_skipped_not_waited_on(migrated_db: TestDatabase) -> None:
    ids = seed(migrated_db, 6, updated="2020-01-01T00:00:00+00:00")
    held = sorted(ids)[2]
    with migrated_db.connect() as app:
        # The application is updating one conversation and has not committed yet.
        app.execute("SELECT id FROM conversations WHERE id = %s FOR UPDATE", [held])
        with migrated_db.database() as database:
            selection = ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC))
            result = archive_conversations(database, selection, batch_size=2)
        assert (result.changed, result.skipped) == (5, 1)
        app.rollback()
    assert migrated_db.scalar("SELECT status FROM conversations WHERE id = %s", [held]) == "active"
    with migrated_db.database() as database:
        again = archive_conversations(database, selection, batch_size=2)
    assert (again.changed, again.skipped) == (1, 0)
    assert count(migrated_db, "status = 'active'") == 0


def test_progress_reports_every_batch(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 10, updated="2020-01-01T00:00:00+00:00")
    seen = []
    with migrated_db.database() as database:
        selection = ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC))
        result = archive_conversations(database, selection, batch_size=4, progress=seen.append)
    assert [(u.done, u.total) for u in seen] == [(0, 10), (4, 10), (8, 10), (10, 10)]
    assert result.as_dict()["changed"] == 10
    assert result.rows_per_second > 0


def test_unarchive_by_conversation_and_by_user(migrated_db: TestDatabase, cli: Cli) -> None:
    old = seed(migrated_db, 4, user="alice", updated="2020-01-01T00:00:00+00:00", status="archived")
    seed(migrated_db, 3, user="bob", updated="2020-01-01T00:00:00+00:00", status="archived")
    before = migrated_db.sql("SELECT id, updated_at FROM conversations ORDER BY id")
    report = cli("unarchive", "--conversation", old[0], "--conversation", old[1], "--json").json()
    assert report["changed"] == 2
    assert count(migrated_db, "status = 'active'") == 2
    report = cli("unarchive", "--user", "bob", "--json").json()
    assert report["changed"] == 3
    assert count(migrated_db, "status = 'active' AND user_id = 'bob'") == 3
    assert cli("unarchive", "--user", "bob", "--json").json()["changed"] == 0
    assert migrated_db.sql("SELECT id, updated_at FROM conversations ORDER BY id") == before


def test_unarchive_needs_a_selection(cli: Cli) -> None:
    assert_one_line_error(cli("unarchive"), 2, "--conversation")
    assert_one_line_error(cli("unarchive", "--conversation", "nope"), 2, "nope")


def test_library_unarchive_dry_run(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 3, status="archived")
    with migrated_db.database() as database:
        result = unarchive_conversations(database, ConversationFilter.build(users=["alice"]), dry_run=True)
    assert (result.matched, result.changed) == (3, 0)
    assert count(migrated_db, "status = 'archived'") == 3


@pytest.mark.parametrize(
    "args",
    [
        ("archive", "--older-than", "90d"),
        ("unarchive", "--user", "u1"),
        ("export", "-o", "out.jsonl"),
        ("prune", "--older-than", "1y", "--yes"),
    ],
    ids=lambda args: args[0],
)
def test_jobs_on_an_unmigrated_database_say_to_migrate(
    empty_db: TestDatabase, tmp_path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = Cli(empty_db.url)(*args)
    assert_one_line_error(result, 1, "tables conversations, messages do not exist", "run: chatdb migrate")
    assert not (tmp_path / "out.jsonl").exists()


def test_the_library_names_its_parameters_not_the_cli_flags(migrated_db: TestDatabase) -> None:
    from chatdb.errors import UsageError

    with migrated_db.database() as db, pytest.raises(UsageError) as refused:
        archive_conversations(db, ConversationFilter.build(older_than=datetime.now(UTC)), batch_size=0)
    assert "batch_size" in refused.value.message and "--" not in refused.value.message
