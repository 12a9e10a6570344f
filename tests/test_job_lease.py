"""The maintenance lease from the operator's side: status, break, waiting, and the schema check.

Jobs through a pooler and killed holders are in tests/test_pooler.py; these
run on a direct connection.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, hold_lease, seed, snapshot
from processes import start

OLD = "2020-01-01T00:00:00+00:00"


def test_lock_status_and_break(migrated_db: TestDatabase, cli: Cli) -> None:
    free = cli("lock", "status", "--json")
    assert free.exit_code == 0 and free.json()["held"] is False and free.json()["holder"] is None
    assert "is free" in cli("lock", "status").stderr
    hold_lease(migrated_db, minutes=10)
    held = cli("lock", "status", "--json").json()
    assert held["held"] is True
    assert {k: held["holder"][k] for k in ("job", "host", "pid")} == {"job": "prune", "host": "batch-7", "pid": 4242}
    assert 590 < held["holder"]["expires_in_seconds"] <= 600 and held["holder"]["process_gone"] is False
    table = cli("lock", "status").stdout
    assert "prune (pid 4242 on host batch-7)" in table and "unless renewed" in table
    # Off a terminal, breaking needs --yes; then it says whose lease it broke.
    assert_one_line_error(cli("lock", "break"), 2, "prune pid 4242 on host batch-7", "needs --yes")
    assert migrated_db.scalar("SELECT count(*) FROM chatdb_job_lease") == 1
    broken = cli("lock", "break", "--yes", "--json")
    assert broken.exit_code == 0 and broken.json()["broken"] is True and broken.json()["holder"]["pid"] == 4242
    assert migrated_db.scalar("SELECT count(*) FROM chatdb_job_lease") == 0
    assert cli("lock", "break", "--yes", "--json").json()["broken"] is False


def test_a_running_job_whose_lease_is_broken_stops_before_its_next_batch(migrated_db: TestDatabase, cli: Cli) -> None:
    seed(migrated_db, 400, updated=OLD, status="archived", messages=1)
    proc = start(migrated_db, "unarchive", "--older-than", "1d", "--batch-size", "2", "--quiet")
    deadline = time.monotonic() + 60
    while count(migrated_db, "status = 'active'") < 20:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    assert cli("lock", "break", "--yes").exit_code == 0
    at_break = count(migrated_db, "status = 'active'")  # the batch running then committed first
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert_one_line_error_text(err, "unarchive lost the maintenance lock", "stopped before its next batch")
    assert count(migrated_db, "status = 'active'") == at_break < 400  # nothing after the break
    assert at_break % 2 == 0
    again = cli("unarchive", "--older-than", "1d", "--json")
    assert again.exit_code == 0 and again.json()["changed"] == 400 - at_break


def assert_one_line_error_text(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_waiting_for_the_lock_is_shown_on_a_terminal_and_ctrl_c_stops_it(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 3, updated=OLD)
    hold_lease(migrated_db, minutes=10)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "LINES": "40", "TERM": "xterm"}
    command = [
        sys.executable,
        "-m",
        "chatdb",
        "--database-url",
        migrated_db.url,
        "archive",
        "--older-than",
        "1d",
        "--wait",
        "120",
    ]
    pid, fd = pty.fork()
    if pid == 0:  # the child: chatdb on a real terminal
        os.execvpe(command[0], command, env)
    output = b""

    def read_until(wanted: bytes, timeout: float = 60) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while wanted not in output:
            assert time.monotonic() < deadline, output.decode(errors="replace")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    break

    try:
        read_until(b"waiting for the maintenance lock held by prune pid 4242 on host batch-7")
        read_until(b"(Ctrl-C to stop)")
        read_until(b"0:00:02")  # the time waited, counting up
        os.write(fd, b"\x03")  # Ctrl-C, through the terminal
        read_until(b"nothing was done")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130
    text = output.decode(errors="replace")
    errors = [line for line in text.splitlines() if "Error:" in line]
    assert len(errors) == 1 and "interrupted while waiting for the maintenance lock held by prune" in errors[0]
    assert "Traceback" not in text
    assert count(migrated_db, "status = 'archived'") == 0


def test_ctrl_c_while_waiting_off_a_terminal_is_one_line(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 3, updated=OLD)
    hold_lease(migrated_db, minutes=10)
    proc = start(migrated_db, "archive", "--older-than", "1d", "--wait", "120", "--quiet")
    deadline = time.monotonic() + 60
    # Waiting means asking for the lease, and finding it held, again and again.
    connected = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'chatdb'"
    )
    while migrated_db.scalar(connected) == 0:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert_one_line_error_text(err, "interrupted while waiting for the maintenance lock held by prune pid 4242")
    assert migrated_db.scalar("SELECT job FROM chatdb_job_lease") == "prune"  # the holder's lease is untouched


@pytest.mark.parametrize(
    ("revisions", "fragments"),
    [
        (["004_from_a_newer_chatdb"], ["'004_from_a_newer_chatdb'", "which this version of chatdb does not know"]),
        (["003"], ["revision 003", "1 behind this chatdb's"]),
        # Two rows (a newer chatdb's branch, or a hand edit): no one revision to trust.
        (["003", "004_from_a_newer_chatdb"], ["more than one revision", "'003', '004_from_a_newer_chatdb'"]),
    ],
    ids=["unknown", "behind", "several"],
)
def test_every_job_refuses_a_database_at_another_revision(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path, revisions: list[str], fragments: list[str]
) -> None:
    seed(migrated_db, 4, updated=OLD, messages=2)
    seed(migrated_db, 2, user="bob", updated=OLD, status="archived", messages=2)
    export = tmp_path / "all.jsonl"
    assert cli("export", "-o", str(export)).exit_code == 0
    migrated_db.sql("DELETE FROM chatdb_alembic_version")
    for revision in revisions:
        migrated_db.sql("INSERT INTO chatdb_alembic_version (version_num) VALUES (%s)", [revision])
    before = snapshot(migrated_db)
    jobs = [
        ("archive", "--older-than", "1d"),
        ("archive", "--older-than", "1d", "--dry-run"),
        ("unarchive", "--user", "bob"),
        ("export", "-o", str(tmp_path / "again.jsonl")),
        ("import", str(export)),
        ("prune", "--older-than", "1d", "--yes"),
        ("prune", "--older-than", "1d", "--export", str(tmp_path / "pruned.jsonl"), "--yes"),
        ("seed", "--conversations", "3", "--messages", "6", "--force"),
        ("seed", "--remove", "--yes"),
        ("bench", "--duration", "1s", "--clients", "1"),
    ]
    for args in jobs:
        result = cli(*args)
        assert_one_line_error(result, 1, *fragments)
    assert snapshot(migrated_db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl", "all.jsonl.manifest.json"]
    assert migrated_db.scalar("SELECT count(*) FROM users WHERE id LIKE 'chatdb-%'") == 0


def maintenance_grants(marker: str = "maintenance grants") -> list[str]:
    """The app and maintenance roles' statements exactly as docs/security.md gives them."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    block = text.split(f"<!-- {marker}", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]


def test_the_documented_maintenance_role_runs_every_job(migrated_db: TestDatabase, tmp_path: Path) -> None:
    import uuid

    from helpers import as_role

    suffix = uuid.uuid4().hex[:8]  # roles are server-wide: names no other run uses
    names = {"chatdb_maintenance": f"chatdb_mnt_{suffix}", "chatdb_app": f"chatdb_app_{suffix}"}
    statements = maintenance_grants()
    assert any("chatdb_job_lease" in line for line in statements)
    for line in statements:
        for documented, mine in names.items():
            line = line.replace(documented, mine)
        migrated_db.sql(line.replace("appdb", f'"{migrated_db.name}"'))
    try:
        seed(migrated_db, 5, updated=OLD, messages=2)
        export = tmp_path / "all.jsonl"
        assert Cli(migrated_db.url)("export", "-o", str(export)).exit_code == 0
        cli = Cli(as_role(migrated_db.url, names["chatdb_maintenance"]))
        for args in (
            ("archive", "--older-than", "1d"),
            ("unarchive", "--older-than", "1d"),
            ("archive", "--older-than", "1d"),
            ("prune", "--older-than", "1d", "--yes"),
            ("import", str(export)),
            ("lock", "status"),
            ("lock", "break", "--yes"),
            ("hold", "add", "--user", "alice", "--reason", "r"),
            ("hold", "list"),
            ("hold", "remove", "1"),
        ):
            result = cli(*args)
            assert result.exit_code == 0, (args, result.stderr)
        assert count(migrated_db) == 5
        erased = cli("erase", "--user", "alice", "--no-export", "--receipt", str(tmp_path / "r.json"), "--yes")
        assert erased.exit_code == 0, erased.stderr
        assert count(migrated_db) == 0
    finally:
        for role in names.values():
            migrated_db.sql(f"DROP OWNED BY {role}")
        for role in (names["chatdb_maintenance"], names["chatdb_app"]):
            migrated_db.sql(f"DROP ROLE {role}")


def test_the_documented_demo_role_seeds_and_benches(migrated_db: TestDatabase) -> None:
    """seed and bench write their own users: the maintenance role cannot, the demo role can."""
    import uuid

    from helpers import as_role

    suffix = uuid.uuid4().hex[:8]
    names = {
        "chatdb_maintenance": f"chatdb_mnt_{suffix}",
        "chatdb_app": f"chatdb_app_{suffix}",
        "chatdb_demo": f"chatdb_demo_{suffix}",
    }
    statements = maintenance_grants() + maintenance_grants("demo grants")
    assert any("chatdb_demo" in line for line in statements)
    for line in statements:
        for documented, mine in names.items():
            line = line.replace(documented, mine)
        migrated_db.sql(line.replace("appdb", f'"{migrated_db.name}"'))
    try:
        maintenance = Cli(as_role(migrated_db.url, names["chatdb_maintenance"]))
        assert_one_line_error(
            maintenance("seed", "--conversations", "4", "--messages", "8"), 1, "permission denied for table users"
        )
        demo = Cli(as_role(migrated_db.url, names["chatdb_demo"]))
        for args in (
            ("seed", "--conversations", "4", "--messages", "8"),
            ("bench", "--duration", "1s", "--clients", "1"),
            ("seed", "--remove", "--yes"),
        ):
            result = demo(*args)
            assert result.exit_code == 0, (args, result.stderr)
        assert migrated_db.scalar("SELECT count(*) FROM users WHERE id LIKE 'chatdb-%'") == 0
        assert count(migrated_db) == 0
    finally:
        for role in names.values():
            migrated_db.sql(f"DROP OWNED BY {role}")
        for role in (names["chatdb_demo"], names["chatdb_maintenance"], names["chatdb_app"]):
            migrated_db.sql(f"DROP ROLE {role}")
