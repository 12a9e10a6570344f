"""prune deletes a conversation only if its current rows are byte for byte its line in the verified export.

Any change after the export (to any column of the conversation or of a message,
a message added or deleted) keeps the conversation; a row the application
holds (the conversation or any one message, under any lock) keeps it too,
without failing the run; values at the edges of their domain are exported,
deleted and restored exactly; and an unfinished prune says how to finish it
and is finished by ``--resume``.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed
from processes import finish, kill_when, start

from chatdb.errors import ChatdbError
from chatdb.filters import ConversationFilter
from chatdb.jobs.prune import prune_conversations
from chatdb.jobs.runner import JobTimeouts

OLD = "2020-01-01T00:00:00+00:00"
CUTOFF = ConversationFilter.build(older_than=datetime(2021, 1, 1, tzinfo=UTC))

# Each change, and a query true only while the changed value is in the database. {c}: the conversation.
FIRST = "(SELECT id FROM messages WHERE conversation_id = '{c}' ORDER BY created_at, id LIMIT 1)"


def sql_for(template: str, conversation: str) -> str:
    return template.replace("{first}", FIRST).replace("{c}", conversation)


CHANGES = {
    "content": (
        "UPDATE messages SET content = 'EDITED' WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE content = 'EDITED' AND conversation_id = '{c}'",
    ),
    "metadata": (
        "UPDATE messages SET metadata = '{\"edited\": true}' WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE metadata = '{\"edited\": true}' AND conversation_id = '{c}'",
    ),
    "metadata JSON null for SQL NULL": (
        "UPDATE messages SET metadata = 'null' WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE metadata = 'null' AND conversation_id = '{c}'",
    ),
    "metadata same value, other text": (
        'UPDATE messages SET metadata = \'{"k": 2.0, "tags": ["a", "b"], "nested": {"x": null}}\' '
        "WHERE conversation_id = '{c}' AND metadata IS NOT NULL",
        "SELECT count(*) FROM messages WHERE metadata::text LIKE '%2.0%' AND conversation_id = '{c}'",
    ),
    "message created_at": (
        "UPDATE messages SET created_at = created_at + interval '1 microsecond' WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE conversation_id = '{c}' AND extract(microseconds FROM created_at)::int % 1000000 = 876545",
    ),
    "message role": (
        "UPDATE messages SET role = 'assistant', content = content WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE conversation_id = '{c}' AND role = 'assistant'",
    ),
    "message user": (
        "UPDATE messages SET user_id = 'bob' WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE conversation_id = '{c}' AND user_id = 'bob'",
    ),
    "message added": (
        "INSERT INTO messages (conversation_id, user_id, role, content, created_at) "
        "VALUES ('{c}', 'alice', 'user', 'ADDED', '2019-01-01')",
        "SELECT count(*) FROM messages WHERE content = 'ADDED' AND conversation_id = '{c}'",
    ),
    "message deleted": (
        "DELETE FROM messages WHERE id = {first}",
        "SELECT count(*) FROM messages WHERE conversation_id = '{c}'",
    ),
    "status": (
        "UPDATE conversations SET status = 'active' WHERE id = '{c}'",
        "SELECT count(*) FROM conversations WHERE id = '{c}' AND status = 'active'",
    ),
    "user": (
        "UPDATE conversations SET user_id = 'bob' WHERE id = '{c}'",
        "SELECT count(*) FROM conversations WHERE id = '{c}' AND user_id = 'bob'",
    ),
    "updated_at": (
        "UPDATE conversations SET updated_at = updated_at + interval '1 microsecond' WHERE id = '{c}'",
        "SELECT count(*) FROM conversations WHERE id = '{c}' AND updated_at > '2020-01-01'",
    ),
    "updated_at -infinity": (
        "UPDATE conversations SET updated_at = '-infinity' WHERE id = '{c}'",
        "SELECT count(*) FROM conversations WHERE id = '{c}' AND updated_at = '-infinity'",
    ),
    "created_at": (
        "UPDATE conversations SET created_at = created_at - interval '1 microsecond' WHERE id = '{c}'",
        "SELECT count(*) FROM conversations WHERE id = '{c}' AND extract(microseconds FROM created_at) > 59000000",
    ),
}


def change_rows(db: TestDatabase, targets: dict[str, str]) -> None:
    """Apply every change, each to its own conversation, in one quick transaction."""
    with db.connect() as conn:
        for name, conversation in targets.items():
            conn.execute(sql_for(CHANGES[name][0], conversation))


def assert_changes_kept(db: TestDatabase, targets: dict[str, str], spared: set[str] = frozenset()) -> None:
    survivors = {r[0] for r in db.sql("SELECT id::text FROM conversations")}
    assert survivors == set(targets.values()) | spared
    for name, conversation in targets.items():
        assert db.scalar(sql_for(CHANGES[name][1], conversation)) >= 1, name
    # Nothing kept lost a message: each has its own, plus or minus what the change did.
    assert db.scalar("SELECT count(*) FROM messages WHERE conversation_id NOT IN (SELECT id FROM conversations)") == 0


def seed_targets(db: TestDatabase, conversations: int) -> tuple[list[str], dict[str, str]]:
    db.sql("INSERT INTO users (id) VALUES ('bob')")
    ids = sorted(seed(db, conversations, updated=OLD, status="archived", messages=2))
    spread = len(ids) // len(CHANGES)
    return ids, {name: ids[i * spread + spread // 2] for i, name in enumerate(CHANGES)}


def test_any_row_change_after_the_export_keeps_the_conversation(migrated_db: TestDatabase, tmp_path: Path) -> None:
    ids, targets = seed_targets(migrated_db, 3 * len(CHANGES))
    changed = []

    def application_changes_rows(update) -> None:
        if update.phase == "verify" and not changed:  # the export is written: every batch of it
            change_rows(migrated_db, targets)
            changed.append(True)

    with migrated_db.database() as database:
        result = prune_conversations(
            database, CUTOFF, export_to=tmp_path / "pruned.jsonl", batch_size=4, progress=application_changes_rows
        )
    assert changed
    assert (result.deleted_conversations, result.changed, result.in_use) == (len(ids) - len(CHANGES), len(CHANGES), 0)
    assert_changes_kept(migrated_db, targets)


def _export_snapshot_open(db: TestDatabase, export: Path) -> bool:
    """The prune's export transaction has its snapshot (and the export is not complete yet)."""
    open_ = db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_xmin IS NOT NULL AND query LIKE '%%row_to_json%%'"
    )
    return bool(open_) and not export.exists()


def test_rows_changed_while_a_real_prune_runs_are_kept(migrated_db: TestDatabase, tmp_path: Path) -> None:
    ids, targets = seed_targets(migrated_db, 300)
    export = tmp_path / "pruned.jsonl.gz"
    proc = start(
        migrated_db,
        "prune",
        "--older-than",
        "1y",
        "--export",
        str(export),
        "--batch-size",
        "5",
        "--yes",
        "--json",
        "--quiet",
    )
    deadline = time.monotonic() + 60
    while not _export_snapshot_open(migrated_db, export):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    change_rows(migrated_db, targets)  # after the export's snapshot: the export holds the old rows
    assert not export.exists(), "the export finished before the rows were changed; give it more rows"
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["deleted"]["conversations"] == len(ids) - len(CHANGES)
    assert report["kept"] == {"in_use": 0, "changed": len(CHANGES)}
    assert_changes_kept(migrated_db, targets)


LOCKS = {
    "for update": "SELECT 1 FROM messages WHERE id = %s FOR UPDATE",
    "for no key update": "SELECT 1 FROM messages WHERE id = %s FOR NO KEY UPDATE",
    "for share": "SELECT 1 FROM messages WHERE id = %s FOR SHARE",
    "for key share": "SELECT 1 FROM messages WHERE id = %s FOR KEY SHARE",
    "update": "UPDATE messages SET content = content || '!' WHERE id = %s",
}


@pytest.mark.parametrize("with_export", [False, True], ids=["plain", "with-export"])
@pytest.mark.parametrize("lock", list(LOCKS))
def test_a_lock_on_one_message_keeps_its_conversation_and_the_run_goes_on(
    migrated_db: TestDatabase, tmp_path: Path, lock: str, with_export: bool
) -> None:
    ids = sorted(seed(migrated_db, 6, updated=OLD, status="archived", messages=3))
    held = ids[2]
    message = migrated_db.scalar("SELECT id FROM messages WHERE conversation_id = %s ORDER BY id DESC LIMIT 1", [held])
    with migrated_db.connect() as application:
        application.execute(LOCKS[lock], [message])
        with migrated_db.database() as database:
            result = prune_conversations(
                database,
                CUTOFF,
                export_to=tmp_path / "p.jsonl" if with_export else None,
                batch_size=4,
                timeouts=JobTimeouts(lock="2s"),
            )
        application.rollback()
    assert (result.deleted_conversations, result.in_use, result.changed) == (5, 1, 0)
    assert [r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")] == [held]
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 3


EDGES = [
    ("-infinity", "-infinity", "-infinity"),
    ("infinity", "-infinity", "10000-01-01 00:00:00+00"),
    ("0001-12-31 10:00:00+00 BC", "4714-11-24 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00"),
    ("99999-06-30 12:00:00.000001+05:53:28", "2019-12-31 23:59:59.999999-15:59:59", "0044-03-15 12:00:00+00 BC"),
]


def test_edge_timestamps_are_pruned_and_restored_exactly(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    migrated_db.sql("INSERT INTO users (id) VALUES ('alice')")
    for created, updated, message_at in EDGES:
        conversation = migrated_db.scalar(
            "INSERT INTO conversations (user_id, status, created_at, updated_at) "
            "VALUES ('alice', 'archived', %s, %s) RETURNING id",
            [created, updated],
        )
        migrated_db.sql(
            "INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at) "
            "VALUES (%s, 'alice', 'assistant', 'x', 'null', %s)",
            [conversation, message_at],
        )
    with migrated_db.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        query = (
            "SELECT c.id::text, c.created_at::text, c.updated_at::text, m.created_at::text, m.metadata::text "
            "FROM conversations c JOIN messages m ON m.conversation_id = c.id ORDER BY c.id"
        )
        before = conn.execute(query).fetchall()
    export = tmp_path / "edges.jsonl"
    # -infinity and BC are older than any cutoff.
    pruned = cli("prune", "--older-than", "1y", "--export", str(export), "--batch-size", "1", "--yes", "--json")
    assert pruned.exit_code == 0, pruned.stderr
    assert pruned.json()["deleted"]["conversations"] == 4
    assert migrated_db.scalar("SELECT count(*) FROM conversations") == 0
    restored = cli("import", str(export), "--json")
    assert restored.exit_code == 0, restored.stderr
    with migrated_db.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        assert conn.execute(query).fetchall() == before


def test_an_interrupted_prune_says_how_to_finish_and_that_command_finishes(
    migrated_db: TestDatabase, tmp_path: Path
) -> None:
    ids, targets = seed_targets(migrated_db, 600)
    export = tmp_path / "pruned.jsonl"
    proc = start(
        migrated_db, "prune", "--older-than", "1y", "--export", str(export), "--batch-size", "5", "--yes", "--quiet"
    )
    deadline = time.monotonic() + 60
    while count(migrated_db) > len(ids) - 50:  # some batches deleted
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted after deleting" in lines[0] and "finish with: chatdb prune" in lines[0], err
    left = count(migrated_db)
    assert 0 < left < len(ids)
    change_rows(migrated_db, targets)  # the application changes some of what is left
    command = shlex.split(lines[0].split("finish with: ", 1)[1])
    assert command[:2] == ["chatdb", "prune"] and "--resume" in command
    again = subprocess.run(
        [sys.executable, "-m", "chatdb", "--database-url", migrated_db.url, *command[1:], "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] is True and report["export_verified"] is True
    survivors = {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")}
    assert survivors <= set(targets.values())  # only changed rows are kept
    kept_changed = {name: c for name, c in targets.items() if c in survivors}
    assert report["kept"]["changed"] == len(kept_changed)
    assert report["already_deleted"] + report["deleted"]["conversations"] + len(kept_changed) == len(ids)
    for name, conversation in kept_changed.items():
        assert migrated_db.scalar(sql_for(CHANGES[name][1], conversation)) >= 1, name


def test_resume_after_kill_and_the_guards_around_it(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed(migrated_db, 600, updated=OLD, status="archived", messages=1)
    export = tmp_path / "pruned.jsonl"
    proc = start(migrated_db, "prune", "--older-than", "1y", "--export", str(export), "--batch-size", "5", "--yes")
    kill_when(proc, lambda: count(migrated_db) < 550)
    # Running it again as before is refused, pointing at --resume.
    assert_one_line_error(
        cli("prune", "--older-than", "1y", "--export", str(export), "--yes"), 1, "already exists", "--resume"
    )
    # An export that no longer matches its manifest resumes nothing.
    original = export.read_bytes()
    export.write_bytes(original.replace(b'"message 1', b'"MESSAGE 1', 1))
    left = count(migrated_db)
    assert_one_line_error(
        cli("prune", "--older-than", "1y", "--export", str(export), "--resume", "--yes"),
        1,
        "does not verify",
        "nothing was deleted",
    )
    assert count(migrated_db) == left
    export.write_bytes(original)
    report = finish(migrated_db, "prune", "--older-than", "1y", "--export", str(export), "--resume", "--yes")
    assert report["deleted"]["conversations"] == left and report["already_deleted"] == 600 - left
    assert count(migrated_db) == 0
    assert_one_line_error(cli("prune", "--older-than", "1y", "--resume", "--yes"), 2, "--resume needs --export")
    assert_one_line_error(
        cli("prune", "--older-than", "1y", "--export", str(tmp_path / "none.jsonl"), "--resume", "--yes"),
        1,
        "cannot resume",
        "does not exist",
    )


def test_the_export_is_used_as_it_was_checked(migrated_db: TestDatabase, tmp_path: Path) -> None:
    """Bytes changed on disk between the checking read and the deleting read delete nothing of theirs."""
    ids = sorted(seed(migrated_db, 8, updated=OLD, status="archived", messages=2))
    export = tmp_path / "pruned.jsonl"

    def tamper(update) -> None:
        if update.phase == "delete" and update.done == 0:
            data = bytearray(export.read_bytes())
            at = data.index(b"message 1")
            data[at : at + 9] = b"MESSAGE 1"  # same length, in place
            export.write_bytes(bytes(data))

    with migrated_db.database() as database, pytest.raises(ChatdbError, match="changed after it was checked"):
        prune_conversations(database, CUTOFF, export_to=export, batch_size=3, progress=tamper)
    assert count(migrated_db) == len(ids)
