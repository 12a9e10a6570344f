"""`chatdb erase --user U`: every row of the user, after a verified export, with a receipt; holds refuse it."""

from __future__ import annotations

import hashlib
import json
import signal
import stat
import time
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed, snapshot
from processes import start

OLD = "2020-01-01T00:00:00+00:00"


def rows_of(db: TestDatabase, user: str) -> tuple[list[str], list[str]]:
    conversations = [r[0] for r in db.sql("SELECT id::text FROM conversations WHERE user_id = %s", [user])]
    messages = [r[0] for r in db.sql("SELECT id::text FROM messages WHERE user_id = %s", [user])]
    return conversations, messages


def sha256_of(ids: list[str]) -> str:
    return hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode()).hexdigest()


def test_erase_deletes_exactly_the_users_rows_and_writes_a_receipt(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    seed(migrated_db, 2, user="alice", messages=3)
    seed(migrated_db, 2, user="alice", updated=OLD, status="archived", messages=3)
    seed(migrated_db, 2, user="bob", messages=2)
    bobs = snapshot(migrated_db)
    conversations, messages = rows_of(migrated_db, "alice")
    target = tmp_path / "alice.jsonl"

    result = cli("erase", "--user", "alice", "--export", str(target), "--yes", "--batch-size", "3", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["deleted"] == {"conversations": 4, "messages": 12}
    assert report["export_verified"] is True and report["complete"] is True
    assert rows_of(migrated_db, "alice") == ([], [])
    assert migrated_db.scalar("SELECT count(*) FROM users WHERE id = 'alice'") == 1  # the application's row stays
    assert snapshot(migrated_db) == tuple([r for r in part if r[1] == "bob" or r[2] == "bob"] for part in bobs)

    exported = [json.loads(line) for line in target.read_text().splitlines()]
    assert sorted(c["id"] for c in exported) == sorted(conversations)
    receipt_path = tmp_path / "alice.jsonl.receipt.json"
    assert stat.S_IMODE(receipt_path.stat().st_mode) == 0o600
    receipt = json.loads(receipt_path.read_text())
    assert receipt["user"] == "alice"
    assert receipt["deleted"] == {
        "conversations": {"count": 4, "ids_sha256": sha256_of(conversations)},
        "messages": {"count": 12, "ids_sha256": sha256_of(messages)},
    }
    assert receipt["remaining"] == {"conversations": 0, "messages": 0}
    assert receipt["export"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert receipt["export"]["path"] == str(target.resolve()) and receipt["export"]["verified"] is True
    assert receipt["database"] == report["database"] and "users row is not deleted" in receipt["users_row"]
    assert receipt["chatdb_version"] and receipt["finished_at"]


def test_erase_without_export_needs_it_said_and_a_receipt_path(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    seed(migrated_db, 3, user="alice")
    assert_one_line_error(cli("erase", "--user", "alice", "--yes"), 2, "--export", "--no-export")
    assert_one_line_error(cli("erase", "--user", "alice", "--no-export", "--yes"), 2, "--receipt")
    assert_one_line_error(
        cli("erase", "--user", "alice", "--no-export", "--receipt", str(tmp_path / "r.json")), 2, "--yes"
    )
    assert count(migrated_db) == 3
    receipt = tmp_path / "r.json"
    result = cli("erase", "--user", "alice", "--no-export", "--receipt", str(receipt), "--yes")
    assert result.exit_code == 0, result.stderr
    assert count(migrated_db) == 0
    assert json.loads(receipt.read_text())["deleted"]["conversations"]["count"] == 3
    assert json.loads(receipt.read_text())["export"] is None
    # A receipt is never overwritten.
    assert_one_line_error(
        cli("erase", "--user", "alice", "--no-export", "--receipt", str(receipt), "--yes"), 1, "already exists"
    )


@pytest.mark.parametrize("hold", ["user", "conversation"])
def test_erase_is_refused_when_a_hold_covers_the_user(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path, hold: str
) -> None:
    ids = seed(migrated_db, 3, user="alice")
    target = "alice" if hold == "user" else ids[1]
    assert cli("hold", "add", f"--{hold}", target, "--reason", "case 9").exit_code == 0
    before = snapshot(migrated_db)
    result = cli("erase", "--user", "alice", "--export", str(tmp_path / "a.jsonl"), "--yes")
    assert_one_line_error(result, 1, "refused", "hold 1", "case 9", "nothing was deleted")
    assert snapshot(migrated_db) == before
    assert list(tmp_path.iterdir()) == []  # no export, no receipt
    # An expired hold protects nothing.
    migrated_db.sql("UPDATE chatdb_hold SET until = now() - interval '1 second'")
    assert cli("erase", "--user", "alice", "--export", str(tmp_path / "a.jsonl"), "--yes").exit_code == 0
    assert count(migrated_db) == 0


def test_unknown_user_is_an_error_for_export_and_erase(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed(migrated_db, 1, user="alice")
    assert_one_line_error(cli("export", "--user", "nobody", "-o", str(tmp_path / "x.jsonl")), 1, "no user 'nobody'")
    erased = cli("erase", "--user", "nobody", "--export", str(tmp_path / "y.jsonl"), "--yes")
    assert_one_line_error(erased, 1, "no user 'nobody'")
    # Refused before any export or deletion: nothing to resume, and the line says no more than that.
    assert "deleting" not in erased.stderr and "--resume" not in erased.stderr, erased.stderr
    assert list(tmp_path.iterdir()) == []


def test_access_export_holds_active_and_archived(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    active = seed(migrated_db, 2, user="alice")
    archived = seed(migrated_db, 2, user="alice", updated=OLD, status="archived")
    seed(migrated_db, 1, user="bob")
    target = tmp_path / "alice.jsonl"
    assert cli("export", "--user", "alice", "-o", str(target)).exit_code == 0
    exported = {json.loads(line)["id"] for line in target.read_text().splitlines()}
    assert exported == set(active + archived)


def test_erase_stopped_by_sigterm_is_consistent_and_a_rerun_finishes(migrated_db: TestDatabase, tmp_path: Path) -> None:
    total = 400
    seed(migrated_db, total, user="alice", messages=2)
    seed(migrated_db, 2, user="bob", messages=2)
    conversations, messages = rows_of(migrated_db, "alice")
    target = tmp_path / "alice.jsonl"
    proc = start(
        migrated_db, "erase", "--user", "alice", "--export", str(target), "--yes", "--batch-size", "5", "--quiet"
    )
    deadline = time.monotonic() + 60
    while count(migrated_db, "user_id = 'alice'") > total - 20:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--resume" in lines[0], err
    left = count(migrated_db, "user_id = 'alice'")
    assert 0 < left < total and (total - left) % 5 == 0
    # No conversation is half deleted, bob is untouched, and no receipt claims anything yet.
    assert (
        migrated_db.scalar(
            "SELECT count(*) FROM conversations c WHERE (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) <> 2"
        )
        == 0
    )
    assert count(migrated_db, "user_id = 'bob'") == 2
    assert not (tmp_path / "alice.jsonl.receipt.json").exists()

    rerun = Cli(migrated_db.url)("erase", "--user", "alice", "--export", str(target), "--resume", "--yes", "--json")
    assert rerun.exit_code == 0, rerun.stderr
    report = rerun.json()
    assert report["deleted"]["conversations"] == left and report["already_deleted"] == total - left
    assert rows_of(migrated_db, "alice") == ([], [])
    receipt = json.loads((tmp_path / "alice.jsonl.receipt.json").read_text())
    assert receipt["deleted"]["conversations"]["count"] == left and receipt["complete"] is True
    assert receipt["already_deleted_conversations"] == total - left
    assert receipt["export"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert len(conversations) == total and len(messages) == 2 * total


def test_library_names_its_parameters_and_returns_a_result(migrated_db: TestDatabase, tmp_path: Path) -> None:
    from chatdb.errors import UsageError
    from chatdb.holds import add_hold
    from chatdb.jobs.erase import erase_user

    seed(migrated_db, 2, user="alice")
    with migrated_db.database() as db:
        with pytest.raises(UsageError) as neither:
            erase_user(db, "alice")
        assert "export_to" in neither.value.message and "no_export" in neither.value.message
        with pytest.raises(UsageError) as no_reason:
            add_hold(db, user="alice", reason=" ")
        with pytest.raises(UsageError) as both:
            add_hold(db, user="alice", conversation="0000", reason="x")
        for refused in (neither, no_reason, both):
            assert "--" not in refused.value.message, refused.value.message
        result = erase_user(db, "alice", no_export=True, receipt=tmp_path / "r.json")
    assert (result.deletion.deleted_conversations, result.complete) == (2, True)
    assert result.as_dict()["job"] == "erase" and count(migrated_db) == 0
