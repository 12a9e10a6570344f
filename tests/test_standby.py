"""chatdb on a real streaming hot standby (a read replica), and on a read-only server.

Commands that change data stop before any work with one line that says the
server is a read-only standby; the read commands, export and dry runs work;
doctor writes nothing (it runs on the standby without a warning) and reports
the replay lag; an export cancelled by a replication conflict says to retry.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import seed, snapshot
from servers.standby import Standby

OLD = "2020-01-01T00:00:00+00:00"

WRITES = [
    ("migrate",),
    ("migrate", "base", "--yes"),
    ("migrate", "002", "--yes"),
    ("archive", "--older-than", "1d"),
    ("unarchive", "--older-than", "1d"),
    ("unarchive", "--conversation", "00000000-0000-0000-0000-000000000001"),
    ("prune", "--older-than", "1d", "--yes"),
    ("seed", "--conversations", "5", "--messages", "10", "--force"),
    ("seed", "--remove", "--yes"),
    ("bench", "--duration", "1s", "--clients", "1"),
    ("lock", "break", "--yes"),
]


@pytest.fixture
def replica(on_standby: tuple[TestDatabase, TestDatabase], standby: Standby) -> tuple[TestDatabase, TestDatabase]:
    """A migrated database with data on the primary, and the same database as the standby serves it."""
    primary, replica = on_standby
    seed(primary, 6, user="alice", updated=OLD, messages=2)
    seed(primary, 4, user="bob", updated=OLD, status="archived", messages=2)
    standby.catch_up()
    return primary, replica


def test_every_write_command_is_refused_on_a_standby_before_any_work(
    replica: tuple[TestDatabase, TestDatabase], standby: Standby, tmp_path: Path
) -> None:
    primary, on_replica = replica
    export = tmp_path / "all.jsonl"
    assert Cli(primary.url)("export", "-o", str(export)).exit_code == 0
    before = snapshot(primary)
    cli = Cli(on_replica.url)
    pruned = tmp_path / "pruned.jsonl"
    prune_with_export = ("prune", "--older-than", "1d", "--export", str(pruned), "--yes")
    for args in (*WRITES, ("import", str(export)), prune_with_export):
        result = cli(*args)
        assert_one_line_error(result, 1, "is a read-only standby", "run it against the primary")
        assert args[0].split()[0] in result.stderr
    standby.catch_up()
    assert snapshot(primary) == before == snapshot(on_replica)
    # Refused before any work: prune did not start its export either.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["all.jsonl", "all.jsonl.manifest.json"]


def test_a_read_only_server_is_refused_the_same_way(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 3, updated=OLD)
    migrated_db.sql(f'ALTER DATABASE "{migrated_db.name}" SET default_transaction_read_only = on')
    before = snapshot(migrated_db)
    cli = Cli(migrated_db.url)
    for args in (("archive", "--older-than", "1d"), ("migrate", "base", "--yes"), ("seed", "--remove", "--yes")):
        assert_one_line_error(cli(*args), 1, "is read-only (default_transaction_read_only is on)")
    assert cli("archive", "--older-than", "1d", "--dry-run").exit_code == 0
    role = checks_of(cli("doctor", "--json"))["server role"]
    assert role["detail"].startswith("read-only (default_transaction_read_only is on)")
    assert snapshot(migrated_db) == before


def checks_of(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.stderr
    return {check["name"]: check for check in result.json()["checks"]}


def test_read_commands_export_and_dry_runs_work_on_a_standby(
    replica: tuple[TestDatabase, TestDatabase], tmp_path: Path
) -> None:
    primary, on_replica = replica
    cli = Cli(on_replica.url)
    listed = cli("conversations", "--json")
    assert listed.exit_code == 0, listed.stderr
    conversation = listed.json()["conversations"][0]["id"]
    for args in (
        ("status",),
        ("history", conversation),
        ("stats",),
        ("lock", "status"),
        ("archive", "--older-than", "1d", "--dry-run"),
        ("prune", "--older-than", "1d", "--dry-run"),
        ("migrate", "--sql"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "Error" not in result.stderr and "Warning" not in result.stderr, (args, result.stderr)
    exported = cli("export", "-o", str(tmp_path / "replica.jsonl"), "--json")
    assert exported.exit_code == 0, exported.stderr
    assert exported.json()["conversations"] == 10
    assert Cli(primary.url)("export", "-o", str(tmp_path / "primary.jsonl")).exit_code == 0
    assert (tmp_path / "replica.jsonl").read_bytes() == (tmp_path / "primary.jsonl").read_bytes()
    # Import's check keeps the file's ids in a temporary table: not even its dry run can run on a standby.
    checked = cli("import", str(tmp_path / "replica.jsonl"), "--dry-run")
    assert_one_line_error(
        checked,
        1,
        "import --dry-run checks the file with a temporary table",
        "is a read-only standby",
        "run it against the primary",
    )
    assert Cli(primary.url)("import", str(tmp_path / "replica.jsonl"), "--dry-run").exit_code == 0


def test_doctor_on_a_standby_writes_nothing_and_reports_the_replay_lag(
    replica: tuple[TestDatabase, TestDatabase],
) -> None:
    _, on_replica = replica
    result = Cli(on_replica.url)("doctor", "--json")
    checks = checks_of(result)
    # A standby refuses every write, temporary tables included: no warning means nothing was written.
    assert {c["status"] for c in checks.values()} <= {"pass", "info"}, checks
    role = checks["server role"]
    assert role["status"] == "info"
    assert role["detail"].startswith("read-only standby, replay lag ")
    assert " s: " in role["detail"] and "need the primary" in role["detail"]
    assert checks["schema: check constraints"]["detail"] == "all 5 as chatdb defines them"
    assert checks["schema: indexes"]["detail"] == "all 12 as chatdb defines them"
    table = Cli(on_replica.url)("doctor")
    assert "INFO" in table.stdout and "read-only standby, replay lag" in table.stdout


def test_doctor_finds_drift_on_a_standby_too(replica: tuple[TestDatabase, TestDatabase], standby: Standby) -> None:
    primary, on_replica = replica
    primary.sql("ALTER TABLE messages DROP CONSTRAINT chk_user_message_length")
    primary.sql("DROP INDEX idx_conversations_user_status")
    primary.sql("ALTER TABLE chatdb_job_lease ALTER COLUMN expires_at DROP NOT NULL")
    standby.catch_up()
    result = Cli(on_replica.url)("doctor", "--json")
    assert result.exit_code == 1
    checks = {check["name"]: check for check in result.json()["checks"]}
    assert (
        "CHECK constraint messages.chk_user_message_length is missing"
        in checks["schema: check constraints"]["problems"][0]
    )
    assert "index conversations.idx_conversations_user_status is missing" in checks["schema: indexes"]["problems"][0]
    assert any("chatdb_job_lease.expires_at" in p for p in checks["schema: tables, columns, keys"]["problems"])


def test_an_export_cancelled_by_a_replication_conflict_says_to_run_it_again(
    replica: tuple[TestDatabase, TestDatabase], standby: Standby, tmp_path: Path
) -> None:
    """Changes on the primary that the export's snapshot conflicts with; the standby cancels the export."""
    from chatdb.errors import ReplicationConflictError
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.export import export_conversations

    primary, on_replica = replica
    target = tmp_path / "all.jsonl"
    conflicted = threading.Event()

    def on_progress(update) -> None:
        if update.done and not conflicted.is_set():  # after the first batch, mid-snapshot
            conflicted.set()
            # What the primary does every day: delete and vacuum, and take a table's lock.
            primary.sql("DELETE FROM conversations WHERE user_id = 'bob'")
            primary.sql("VACUUM conversations")
            with primary.connect() as conn:  # replayed, the lock conflicts with the export's own
                conn.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
            standby.catch_up()

    with on_replica.database() as db, pytest.raises(ReplicationConflictError) as raised:
        export_conversations(db, ConversationFilter.build(), target, batch_size=2, progress=on_progress)
    message = raised.value.message
    assert "replication conflict" in message and "no file was written" in message
    assert "Run it again" in message and "hot_standby_feedback" in message
    assert not target.exists() and list(tmp_path.iterdir()) == []

    # Run again, it succeeds (the primary has moved on: bob is gone).
    rerun = Cli(on_replica.url)("export", "-o", str(target), "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert rerun.json()["conversations"] == 6
