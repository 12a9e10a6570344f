"""Jobs killed mid-run, jobs racing each other, and the application writing while jobs run."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, hold_lease, seed, snapshot
from processes import finish, kill_when, start

OLD = "2020-01-01T00:00:00+00:00"
ROWS = 4000
BATCH = 5


def test_archive_killed_mid_run_leaves_whole_batches_and_a_rerun_finishes(migrated_db: TestDatabase) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=1)
    proc = start(migrated_db, "archive", "--older-than", "90d", "--batch-size", str(BATCH), "--quiet")
    kill_when(proc, lambda: count(migrated_db, "status = 'archived'") >= 100)
    archived = count(migrated_db, "status = 'archived'")
    assert 100 <= archived < ROWS
    assert archived % BATCH == 0  # only whole batches
    report = finish(migrated_db, "archive", "--older-than", "90d", "--batch-size", "500")
    assert report["changed"] == ROWS - archived
    assert count(migrated_db, "status = 'archived'") == ROWS


def test_prune_killed_mid_run_never_half_deletes_a_conversation(migrated_db: TestDatabase) -> None:
    seed(migrated_db, ROWS, updated=OLD, status="archived", messages=3)
    keep = seed(migrated_db, 10, user="bob", updated=OLD, messages=3)
    proc = start(migrated_db, "prune", "--older-than", "1y", "--batch-size", str(BATCH), "--yes", "--quiet")
    kill_when(proc, lambda: count(migrated_db) <= ROWS + 10 - 100)
    left = count(migrated_db, "status = 'archived'")
    assert 0 < left <= ROWS - 100
    assert (ROWS - left) % BATCH == 0
    # Every surviving conversation still has all its messages.
    assert (
        migrated_db.scalar(
            "SELECT count(*) FROM conversations c WHERE (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) <> 3"
        )
        == 0
    )
    report = finish(migrated_db, "prune", "--older-than", "1y", "--yes", "--batch-size", "500")
    assert report["deleted"] == {"conversations": left, "messages": 3 * left}
    assert sorted(r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")) == sorted(keep)
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 30


def test_export_killed_mid_run_leaves_no_file_under_the_final_name(migrated_db: TestDatabase, tmp_path: Path) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=2)
    target = tmp_path / "all.jsonl"
    proc = start(migrated_db, "export", "-o", str(target), "--batch-size", "2", "--quiet")
    kill_when(proc, lambda: any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in tmp_path.iterdir()))
    assert not target.exists()
    assert not Path(str(target) + ".manifest.json").exists()
    report = finish(migrated_db, "export", "-o", str(target))
    assert report["conversations"] == ROWS
    assert len(target.read_text().splitlines()) == ROWS


def test_import_killed_mid_run_is_finished_by_a_rerun(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=2)
    original = snapshot(migrated_db)
    target = tmp_path / "all.jsonl.gz"
    assert cli("export", "-o", str(target)).exit_code == 0
    migrated_db.sql("DELETE FROM conversations")
    proc = start(migrated_db, "import", str(target), "--batch-size", str(BATCH), "--quiet")
    kill_when(proc, lambda: count(migrated_db) >= 100)
    imported = count(migrated_db)
    assert 100 <= imported < ROWS and imported % BATCH == 0
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 2 * imported
    report = finish(migrated_db, "import", str(target), "--batch-size", "500")
    assert report["inserted"] == {"conversations": ROWS - imported, "messages": 2 * (ROWS - imported)}
    assert report["existing"]["conversations"] == imported
    assert snapshot(migrated_db) == original


def test_a_second_job_is_refused_or_waits(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed(migrated_db, 5, updated=OLD)
    hold_lease(migrated_db, minutes=1)  # a prune on another host holds the lease
    result = cli("archive", "--older-than", "90d")
    assert_one_line_error(
        result,
        3,
        "is held by prune pid 4242 on host batch-7 since",
        "(heartbeat 0 s ago)",
        "--wait",
        "chatdb lock break",
    )
    waited = cli("archive", "--older-than", "90d", "--wait", "0.3", "--quiet")
    assert_one_line_error(waited, 3, "after waiting 0.3s")
    told = cli("archive", "--older-than", "90d", "--wait", "0.3")  # off a terminal: one line says it waits
    assert told.exit_code == 3
    notice, error = [line for line in told.stderr.splitlines() if line.strip()]
    assert notice.startswith("waiting for the maintenance lock held by prune pid 4242 on host batch-7")
    assert notice.endswith("(Ctrl-C to stop)") and error.startswith("Error: ")
    for job in (("prune", "--older-than", "1y", "--yes"), ("unarchive", "--user", "alice")):
        assert cli(*job).exit_code == 3
    assert count(migrated_db, "status = 'archived'") == 0
    # Jobs that change nothing take no lease: an export and a dry run go ahead.
    assert cli("export", "-o", str(tmp_path / "all.jsonl"), "--quiet").exit_code == 0
    assert cli("archive", "--older-than", "90d", "--dry-run").exit_code == 0

    threading.Timer(0.5, lambda: migrated_db.sql("DELETE FROM chatdb_job_lease")).start()
    later = cli("archive", "--older-than", "90d", "--wait", "30", "--json")
    assert later.exit_code == 0, later.stderr
    assert later.json()["changed"] == 5
    assert migrated_db.scalar("SELECT count(*) FROM chatdb_job_lease") == 0


def test_two_real_jobs_at_once_and_ctrl_c(migrated_db: TestDatabase, cli: Cli) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=1)
    proc = start(migrated_db, "archive", "--older-than", "90d", "--batch-size", "2", "--quiet")
    deadline = time.monotonic() + 60
    while count(migrated_db, "status = 'archived'") == 0:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    second = cli("prune", "--older-than", "1y", "--yes")
    assert_one_line_error(second, 3, f"held by archive pid {proc.pid} on host")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    archived = count(migrated_db, "status = 'archived'")
    assert archived % 2 == 0 and 0 < archived < ROWS
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: interrupted: archive stopped after"), err
    assert f"{archived} of {ROWS} conversations" in lines[0]
    assert "run it again" in lines[0]
    report = finish(migrated_db, "archive", "--older-than", "90d")
    assert report["changed"] == ROWS - archived


@pytest.mark.parametrize("job", [("archive", "--older-than", "90d"), ("prune", "--older-than", "1y", "--yes")])
def test_the_application_keeps_writing_while_a_job_runs(migrated_db: TestDatabase, job: tuple[str, ...]) -> None:
    """The application's writes to the rows a job is working on never wait past its lock timeout."""
    ids = seed(migrated_db, ROWS, updated=OLD, status="archived" if job[0] == "prune" else "active", messages=1)
    targets = ids[::50]
    errors: list[BaseException] = []
    writes = 0
    stop = threading.Event()

    def application() -> None:
        nonlocal writes
        with psycopg.connect(migrated_db.libpq_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '1s'")
            while not stop.is_set():
                for conversation in targets:
                    try:
                        with conn.transaction():
                            # The plan's "add a message": insert, and touch the conversation.
                            inserted = conn.execute(
                                "INSERT INTO messages (conversation_id, user_id, role, content) "
                                "SELECT id, user_id, 'assistant', 'still here' FROM conversations WHERE id = %s "
                                "RETURNING 1",
                                [conversation],
                            ).fetchall()
                            if inserted:
                                conn.execute(
                                    "UPDATE conversations SET updated_at = updated_at WHERE id = %s", [conversation]
                                )
                        writes += 1
                    except psycopg.errors.ForeignKeyViolation:
                        pass  # pruned between our read and insert: the conversation is gone, fine
                    except BaseException as exc:  # a lock timeout lands here
                        errors.append(exc)
                        return

    app = threading.Thread(target=application)
    app.start()
    try:
        proc = start(migrated_db, *job, "--batch-size", "20", "--quiet", "--json")
        out, err = proc.communicate(timeout=120)
    finally:
        stop.set()
        app.join(timeout=30)
    assert proc.returncode == 0, err
    assert errors == []
    assert writes > 0
    report = json.loads(out)
    changed = report.get("changed", report.get("deleted", {}).get("conversations"))
    skipped = report["skipped"]
    assert changed + skipped == ROWS
