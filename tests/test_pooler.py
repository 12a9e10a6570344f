"""chatdb through a real PgBouncer in transaction mode (Neon's pooled endpoint is one).

Every command runs through it with default settings; maintenance jobs never
change rows at the same time, on a direct connection or through the pooler;
a killed job's lease is taken over, expires, or is broken; and nothing is
left behind on the pooler's server connections.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed
from processes import kill_when
from servers.pgbouncer import PgBouncer

OLD = "2020-01-01T00:00:00+00:00"

# Who changed which conversation when: the application_name of a job's batch
# ("chatdb archive pid 123") and the server's clock at each changed row.
CHANGE_LOG = """
CREATE TABLE change_log (at timestamptz NOT NULL DEFAULT clock_timestamp(), who text NOT NULL);
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (who) VALUES (current_setting('application_name'));
    RETURN NULL;
END $$;
CREATE TRIGGER log_change AFTER UPDATE OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION log_change();
"""


@pytest.fixture
def pooled(migrated_db: TestDatabase, pgbouncer: PgBouncer) -> TestDatabase:
    """The test's database, reached through the PgBouncer."""
    return pgbouncer.pooled(migrated_db)


def launch(url: str, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "chatdb", "--database-url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def leases(db: TestDatabase) -> int:
    return int(db.scalar("SELECT count(*) FROM chatdb_job_lease"))


@pytest.mark.parametrize("through", ["pgbouncer", "direct"])
def test_concurrent_jobs_never_change_rows_at_the_same_time(
    migrated_db: TestDatabase, pgbouncer: PgBouncer, through: str
) -> None:
    seed(migrated_db, 45, user="alice", updated=OLD, messages=1)
    seed(migrated_db, 24, user="bob", updated=OLD, status="archived", messages=1)
    migrated_db.sql(CHANGE_LOG)
    url = pgbouncer.url_for(migrated_db) if through == "pgbouncer" else migrated_db.url
    common = ("--batch-size", "3", "--wait", "120", "--quiet", "--json")
    jobs = [
        ("archive", "--older-than", "1d", "--user", "alice"),
        ("unarchive", "--older-than", "1d", "--user", "alice"),
        ("prune", "--older-than", "1y", "--user", "bob", "--yes"),
        ("archive", "--older-than", "1d", "--user", "alice"),
        ("unarchive", "--older-than", "1d", "--user", "alice"),
    ]
    if through == "direct":  # fewer: the pooler is the case a session lock got wrong
        jobs = jobs[:3]
    procs = [launch(url, *job, *common) for job in jobs]
    results = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(jobs), [err for _, err in results]

    spans = migrated_db.sql("SELECT who, min(at), max(at), count(*) FROM change_log GROUP BY who ORDER BY 2")
    assert len(spans) >= 2, spans  # bob's prune and the first alice job always change rows
    assert all(who.startswith("chatdb ") for who, *_ in spans), spans
    for (who, _, last, _), (after, first, _, _) in zip(spans, spans[1:]):
        assert last < first, f"{who} was still changing rows when {after} began: {spans}"
    assert sum(rows for *_, rows in spans) >= 24 + 45
    assert count(migrated_db, "user_id = 'bob'") == 0
    assert leases(migrated_db) == 0


def unshared() -> tuple[str, ...]:
    """Run a job in a pid namespace of its own (as in another container): its death cannot be seen here."""
    user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
    return ("unshare", *user, "--pid", "--fork", "--mount-proc", "--kill-child")


def start_and_kill(url: str, db: TestDatabase, *, prefix: tuple[str, ...] = (), env: dict | None = None) -> None:
    """Start an archive through ``url``, and kill -9 it once it has committed some batches."""
    proc = launch(url, "archive", "--older-than", "1d", "--batch-size", "2", "--quiet", env=env, prefix=prefix)
    kill_when(proc, lambda: count(db, "status = 'archived'") >= 20)
    assert leases(db) == 1  # the dead job's lease is still there


def test_a_killed_holder_on_this_machine_is_taken_over_at_once(migrated_db: TestDatabase, pooled: TestDatabase) -> None:
    seed(migrated_db, 400, updated=OLD, messages=1)
    start_and_kill(pooled.url, migrated_db)
    status = Cli(pooled.url)("lock", "status", "--json")
    assert status.exit_code == 0, status.stderr
    assert status.json()["holder"]["job"] == "archive" and status.json()["holder"]["process_gone"] is True
    # No --wait: its process is gone, so the next job does not wait for the lease to expire.
    result = Cli(pooled.url)("archive", "--older-than", "1d", "--json")
    assert result.exit_code == 0, result.stderr
    assert count(migrated_db, "status = 'archived'") == 400
    assert leases(migrated_db) == 0


def test_a_killed_holder_elsewhere_expires_or_is_broken(migrated_db: TestDatabase, pooled: TestDatabase) -> None:
    seed(migrated_db, 600, updated=OLD, messages=1)
    ttl = {"CHATDB_JOB_LEASE_TTL": "3s"}
    start_and_kill(pooled.url, migrated_db, prefix=unshared(), env=ttl)
    refused = Cli(pooled.url)("archive", "--older-than", "1d", "--quiet")
    assert_one_line_error(refused, 3, "is held by archive pid ", " since ", "heartbeat", "chatdb lock break")
    holder = Cli(pooled.url)("lock", "status", "--json").json()["holder"]
    assert holder["process_gone"] is False and holder["expires_in_seconds"] <= 3

    # Documented way one: wait; the lease expires one time-to-live after its last heartbeat.
    waited = Cli(pooled.url)("archive", "--older-than", "1d", "--wait", "60", "--quiet", "--json")
    assert waited.exit_code == 0, waited.stderr
    assert waited.json()["changed"] > 0 and count(migrated_db, "status = 'archived'") == 600
    assert leases(migrated_db) == 0

    # Documented way two: chatdb lock break, then the next job starts at once.
    migrated_db.sql("UPDATE conversations SET status = 'active'")
    start_and_kill(pooled.url, migrated_db, prefix=unshared())  # the default 30s lease
    assert Cli(pooled.url)("archive", "--older-than", "1d", "--quiet").exit_code == 3
    broken = Cli(pooled.url)("lock", "break", "--yes")
    assert broken.exit_code == 0, broken.stderr
    assert "Broke the maintenance lock of archive pid" in broken.stderr
    again = Cli(pooled.url)("archive", "--older-than", "1d", "--json")
    assert again.exit_code == 0, again.stderr
    assert count(migrated_db, "status = 'archived'") == 600


def test_no_lease_is_left_behind_after_finished_failed_or_stopped_jobs(
    migrated_db: TestDatabase, pooled: TestDatabase, tmp_path: Path
) -> None:
    seed(migrated_db, 300, updated=OLD, messages=1)
    cli = Cli(pooled.url)
    export = tmp_path / "all.jsonl"
    # The same pooler, job after job: none finds a lock left by the one before (exit 3).
    for args in (
        ("archive", "--older-than", "1d"),
        ("unarchive", "--older-than", "1d"),
        ("archive", "--older-than", "1d", "--dry-run"),
        ("archive", "--older-than", "1d"),
        ("export", "-o", str(export)),
        ("import", str(export)),
        ("prune", "--older-than", "1y", "--max-rows", "1", "--yes"),
    ):
        result = cli(*args, "--quiet")
        assert result.exit_code == (1 if "--max-rows" in args else 0), (args, result.stderr)
        assert leases(migrated_db) == 0, args
    bad = tmp_path / "bad.jsonl"
    bad.write_text(export.read_text().replace('"user_id":"alice"', '"user_id":"nobody"'))
    assert cli("import", str(bad), "--quiet").exit_code == 1  # fails in its validation, holding the lease
    assert leases(migrated_db) == 0

    proc = launch(pooled.url, "unarchive", "--older-than", "1d", "--batch-size", "1", "--quiet")
    deadline = time.monotonic() + 60
    while count(migrated_db, "status = 'active'") == 0:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert leases(migrated_db) == 0
    assert cli("prune", "--older-than", "1y", "--yes", "--quiet").exit_code == 0


SLOW_UPDATE = """
CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
CREATE TRIGGER slow_update BEFORE UPDATE ON conversations FOR EACH ROW EXECUTE FUNCTION slow_update();
"""


def test_a_statement_longer_than_the_lease_keeps_it(migrated_db: TestDatabase, pooled: TestDatabase) -> None:
    seed(migrated_db, 1, updated=OLD, messages=1)
    migrated_db.sql(SLOW_UPDATE)  # the job's one statement runs 3 s; its lease lives 1 s
    proc = launch(pooled.url, "archive", "--older-than", "1d", "--quiet", "--json", env={"CHATDB_JOB_LEASE_TTL": "1s"})
    deadline = time.monotonic() + 60
    renewed = "SELECT heartbeat_at > started_at + interval '1.5 seconds' FROM chatdb_job_lease"
    while not migrated_db.scalar(renewed):  # renewed past its time to live, mid-statement
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    assert (
        migrated_db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'chatdb archive pid %' AND state = 'active'"
        )
        == 1
    )
    refused = Cli(pooled.url)("unarchive", "--older-than", "1d", "--quiet")
    assert_one_line_error(refused, 3, "is held by archive pid")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["changed"] == 1
    assert leases(migrated_db) == 0


def test_every_command_works_through_the_pooler_with_default_settings(
    empty_db: TestDatabase, pgbouncer: PgBouncer, tmp_path: Path
) -> None:
    url = pgbouncer.url_for(empty_db)
    cli = Cli(url)

    def ok(*args: str) -> Cli:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    ok("version")
    ok("migrate", "--sql")
    ok("migrate")
    ok("seed", "--conversations", "40", "--messages", "400", "--users", "4", "--jobs", "2", "--json")
    conversation = ok("conversations", "--json").json()["conversations"][0]["id"]
    ok("conversations", "--csv")
    ok("status")
    ok("version")
    ok("history", conversation)
    ok("stats")
    doctor = ok("doctor", "--json").json()
    endpoint = next(c for c in doctor["checks"] if c["name"] == "endpoint")
    assert endpoint["status"] == "warn" and "transaction-mode pooler" in endpoint["detail"]
    assert "direct connection" in endpoint["detail"]
    ok("archive", "--older-than", "1d", "--dry-run")
    ok("archive", "--older-than", "1d")
    ok("unarchive", "--conversation", conversation)
    ok("unarchive", "--older-than", "1d", "--batch-size", "7")
    ok("archive", "--older-than", "1d", "--batch-size", "7")
    export = tmp_path / "all.jsonl.gz"
    ok("export", "-o", str(export), "--batch-size", "3")
    ok("export", "-o", str(tmp_path / "all.csv"), "--format", "csv")
    ok("prune", "--older-than", "1d", "--dry-run")
    ok("prune", "--older-than", "1d", "--export", str(tmp_path / "pruned.jsonl.gz"), "--batch-size", "5", "--yes")
    assert ok("import", str(export), "--dry-run", "--json").json()["dry_run"] is True
    ok("import", str(export), "--batch-size", "3")
    ok("import", str(export))  # again: everything exists
    ok("lock", "status")
    ok("lock", "break", "--yes")
    ok("bench", "--duration", "2s", "--clients", "4", "--workers", "1", "--sample", "10")
    ok("seed", "--remove", "--dry-run")
    ok("seed", "--remove", "--yes")
    ok("migrate", "base", "--yes")


def test_prepared_statements_through_the_pooler_fail_with_the_setting_that_fixes_them(
    migrated_db: TestDatabase, pooled: TestDatabase, tmp_path: Path
) -> None:
    seed(migrated_db, 60, updated=OLD, messages=1)
    on = {"CHATDB_PREPARED_STATEMENTS": "on"}
    export = tmp_path / "all.jsonl"
    assert Cli(migrated_db.url)("export", "-o", str(export)).exit_code == 0
    migrated_db.sql("DELETE FROM conversations")
    # Two server connections open at once, so the pooler (round robin) alternates between them.
    with pooled.connect() as one, pooled.connect() as two:
        one.execute("BEGIN"), two.execute("BEGIN")
        one.execute("SELECT 1"), two.execute("SELECT 1")
    outcomes = [Cli(pooled.url)("import", str(export), "--batch-size", "1", "--quiet", env=on) for _ in range(3)]
    failed = [result for result in outcomes if result.exit_code != 0]
    assert failed, "prepared statements through a transaction pooler should have clashed"
    for result in failed:
        assert_one_line_error(result, 1, "prepared statement", "set CHATDB_PREPARED_STATEMENTS=off")
    # The default, and the fix the message names, work.
    for env in ({}, {"CHATDB_PREPARED_STATEMENTS": "off"}):
        result = Cli(pooled.url)("import", str(export), "--batch-size", "1", "--quiet", env=env)
        assert result.exit_code == 0, result.stderr
    assert count(migrated_db) == 60


def test_the_repositories_through_the_pooler_by_default_and_with_prepared_statements(
    migrated_db: TestDatabase, pooled: TestDatabase
) -> None:
    """The web application's path: two sessions taking turns on the pooler's server connections."""
    import uuid

    from chatdb.config import Settings
    from chatdb.db import Database
    from chatdb.errors import DatabaseError
    from chatdb.repositories import MessageRepository

    first, second = (uuid.UUID(c) for c in seed(migrated_db, 2, updated=OLD, messages=3))

    def take_turns(database: Database) -> None:
        # Two requests at once: two client connections, which the pooler serves in turn.
        from sqlalchemy.orm import Session

        with database.translate(), database.engine.connect() as a, database.engine.connect() as b:
            for _ in range(10):  # psycopg prepares a statement on its sixth run
                for conn, conversation in ((a, first), (b, second)):
                    with Session(bind=conn) as session:
                        assert len(MessageRepository(session).history(conversation, limit=20)) == 3
                        session.commit()

    with Database(Settings(url=pooled.url)) as default:
        take_turns(default)
    with Database(Settings(url=pooled.url, prepared_statements="on")) as prepared:
        with pytest.raises(DatabaseError, match="set CHATDB_PREPARED_STATEMENTS=off"):
            take_turns(prepared)


# Adds to the benchmark's own conversations fail, except to the one its sequential phase uses.
REFUSE_BENCH_ADDS = """
CREATE FUNCTION refuse_bench_adds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id LIKE 'chatdb-bench-%' AND NEW.content <> 'An earlier message of this conversation.'
       AND NEW.conversation_id <> (SELECT id FROM conversations WHERE user_id = NEW.user_id ORDER BY id LIMIT 1) THEN
        RAISE EXCEPTION 'refused by an application trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_bench_adds BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_bench_adds();
"""


def test_bench_exits_non_zero_when_operations_failed(migrated_db: TestDatabase, pooled: TestDatabase) -> None:
    seed(migrated_db, 20, updated=OLD, messages=3)
    migrated_db.sql(REFUSE_BENCH_ADDS)
    result = Cli(pooled.url)(
        "bench", "--duration", "2s", "--clients", "3", "--workers", "1", "--sample", "20", "--json"
    )
    assert result.exit_code == 1, result.stderr
    assert result.stdout, result.stderr
    report = result.json()  # the report is still printed, then the one line
    assert report["errors"] > 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {report['errors']} of "), result.stderr
    assert "operations failed under load" in lines[0] and "refused by an application trigger" in lines[0]
    assert migrated_db.scalar("SELECT count(*) FROM users WHERE id LIKE 'chatdb-bench-%'") == 0


def test_doctor_names_the_endpoint_kind(migrated_db: TestDatabase, pgbouncer: PgBouncer) -> None:
    def endpoint(url: str) -> dict:
        result = Cli(url)("doctor", "--json")
        assert result.exit_code == 0, result.stderr
        return next(c for c in result.json()["checks"] if c["name"] == "endpoint")

    assert endpoint(migrated_db.url)["status"] == "pass"
    # A Neon-named pooled host (resolved to the local PgBouncer with libpq's hostaddr).
    neon = (
        f"postgresql://postgres@ep-quiet-frost-123456-pooler.us-east-2.aws.neon.tech:{pgbouncer.port}"
        f"/{migrated_db.name}?hostaddr=127.0.0.1"
    )
    found = endpoint(neon)
    assert found["status"] == "warn"
    assert "Neon pooled endpoint ep-quiet-frost-123456-pooler.us-east-2.aws.neon.tech" in found["detail"]
    assert "direct endpoint ep-quiet-frost-123456.us-east-2.aws.neon.tech" in found["detail"]
    assert "chatdb migrate" in found["detail"]
    direct = neon.replace("-pooler.", ".")
    assert endpoint(direct)["detail"].startswith("Neon direct endpoint ep-quiet-frost-123456.us-east-2")


@pytest.mark.parametrize("idle_servers", [1, 2, 3, 4])
def test_doctor_recognises_the_pooler_however_many_server_connections_are_idle(
    migrated_db: TestDatabase, pooled: TestDatabase, idle_servers: int
) -> None:
    """The pooler hands out idle server connections in turn: whichever it hands out, doctor sees the sharing."""
    opened = [pooled.connect() for _ in range(idle_servers)]
    try:
        for conn in opened:  # each holds a server connection until all have one
            conn.execute("SELECT 1")
        for conn in opened:
            conn.commit()
    finally:
        for conn in opened:
            conn.close()
    result = Cli(pooled.url)("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    endpoint = next(c for c in result.json()["checks"] if c["name"] == "endpoint")
    assert endpoint["status"] == "warn" and "transaction-mode pooler" in endpoint["detail"], endpoint
