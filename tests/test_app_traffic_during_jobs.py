"""The application adds and reads through ``chatdb.repositories`` while archive and prune run.

``test_jobs_interruptions.py::test_the_application_keeps_writing_while_a_job_runs``
writes with raw SQL; here the traffic is the library's own (adds that touch the
conversation, an unarchive that revives an old conversation, history and list
reads), from several threads with a connection each, and every message the
application wrote is accounted for afterwards.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import TestDatabase
from jobdata import count, seed
from processes import start

from chatdb.db import Database
from chatdb.errors import ConversationArchivedError, ConversationNotFoundError
from chatdb.repositories import ConversationRepository, MessageRepository

# With batches of 5 each job runs for several times BLOCKED_BOUND, so a job that
# blocked the application for its whole run would be caught.
ARCHIVE_ROWS = 1500
PRUNE_ROWS = 1000  # prune also exports and verifies: a longer run per row
OLD = "2020-01-01T00:00:00+00:00"
LOCK_TIMEOUT = 0.5  # seconds: the job's CHATDB_JOB_LOCK_TIMEOUT in these tests
# Not a speed claim: a bound on how long the application may be *blocked* by the
# job. A job that held its locks for longer than one short batch (a table lock,
# one transaction for the whole run) would block the application for seconds.
BLOCKED_BOUND = LOCK_TIMEOUT + 1.5


class Traffic:
    """Writer and reader threads, each with its own session, timing every statement."""

    def __init__(self, db: TestDatabase, targets: list[str], write: Callable, seed_: int) -> None:
        self.database = Database(db.database().settings)
        self.targets = targets
        self.write = write
        self.rng = random.Random(seed_)
        self.stop = threading.Event()
        self.written: dict[str, str] = {}  # message id -> conversation id
        self.refused: list[str] = []  # conversations the job got to first
        self.longest = 0.0
        self.errors: list[BaseException] = []
        self.reads = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._guard, args=(self._writer, i)) for i in range(2)]
        self.threads += [threading.Thread(target=self._guard, args=(self._reader, i)) for i in range(2)]

    def timed(self, call: Callable):
        began = time.monotonic()
        try:
            return call()
        finally:
            with self.lock:
                self.longest = max(self.longest, time.monotonic() - began)

    def _guard(self, loop: Callable, index: int) -> None:
        try:
            loop(random.Random(f"{self.rng.random()}:{index}"))
        except BaseException as exc:
            self.errors.append(exc)

    def _writer(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            conversation = rng.choice(self.targets)
            with self.database.session() as session:
                try:
                    message = self.write(self, session, conversation)
                    self.timed(session.commit)
                except (ConversationArchivedError, ConversationNotFoundError):
                    session.rollback()
                    with self.lock:
                        self.refused.append(conversation)
                    continue
            with self.lock:
                self.written[str(message.id)] = conversation

    def _reader(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            conversation = rng.choice(self.targets)
            with self.database.session() as session:
                try:
                    self.timed(lambda: MessageRepository(session).history(conversation, limit=10))
                except ConversationNotFoundError:
                    pass  # pruned
                self.timed(lambda: ConversationRepository(session).list_for_user("alice", status="all", limit=5))
                session.rollback()
            self.reads += 1

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        self.database.dispose()


def add(traffic: Traffic, session, conversation: str):
    return traffic.timed(lambda: MessageRepository(session).add(conversation, "alice", "user", "still here"))


def revive_and_add(traffic: Traffic, session, conversation: str):
    """A user returns to an old conversation: the app unarchives it and adds a message."""
    traffic.timed(lambda: ConversationRepository(session).unarchive(conversation))
    return add(traffic, session, conversation)


def run_job(db: TestDatabase, *args: str) -> dict:
    proc = start(db, *args, "--batch-size", "5", "--quiet", "--json")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.fixture(autouse=True)
def _job_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATDB_JOB_LOCK_TIMEOUT", f"{int(LOCK_TIMEOUT * 1000)}ms")


def app_messages(db: TestDatabase) -> dict[str, str]:
    rows = db.sql("SELECT id::text, conversation_id::text FROM messages WHERE content = 'still here'")
    return dict(rows)


def test_archive_with_application_traffic(migrated_db: TestDatabase) -> None:
    ids = seed(migrated_db, ARCHIVE_ROWS, updated=OLD, messages=1)
    with Traffic(migrated_db, ids[::25], add, seed_=1) as traffic:
        report = run_job(migrated_db, "archive", "--older-than", "90d")
    assert traffic.errors == []
    assert traffic.written and traffic.reads
    assert traffic.longest < BLOCKED_BOUND, traffic.longest
    # Every message the application committed is there, and nothing else was added.
    assert app_messages(migrated_db) == traffic.written
    # A conversation the application wrote to is fresh again, so it is never archived.
    touched = set(traffic.written.values())
    assert (
        migrated_db.scalar(
            "SELECT count(*) FROM conversations WHERE status = 'archived' AND id::text = ANY(%s)", [list(touched)]
        )
        == 0
    )
    # Totals: every conversation is archived by this run, left for the next (skipped), or fresh.
    archived = count(migrated_db, "status = 'archived'")
    assert archived == report["changed"]
    assert report["changed"] + report["skipped"] + len(touched) == ARCHIVE_ROWS
    # An add was refused only because the job had archived the conversation first.
    refused = set(traffic.refused)
    assert migrated_db.scalar(
        "SELECT count(*) FROM conversations WHERE status = 'archived' AND id::text = ANY(%s)", [list(refused)]
    ) == len(refused)


def test_prune_with_export_and_application_traffic(migrated_db: TestDatabase, tmp_path: Path) -> None:
    ids = seed(migrated_db, PRUNE_ROWS, updated=OLD, status="archived", messages=1)
    target = tmp_path / "pruned.jsonl"
    with Traffic(migrated_db, ids[::25], revive_and_add, seed_=2) as traffic:
        report = run_job(migrated_db, "prune", "--older-than", "1y", "--yes", "--export", str(target))
    assert traffic.errors == []
    assert traffic.written and traffic.reads
    assert traffic.longest < BLOCKED_BOUND, traffic.longest
    exported = {json.loads(line)["id"]: json.loads(line) for line in target.read_text().splitlines()}
    survivors = {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")}
    # Every seeded conversation is either still here or in the export, with its messages.
    for conversation in ids:
        assert conversation in survivors or len(exported[conversation]["messages"]) >= 1
    assert report["deleted"]["conversations"] == PRUNE_ROWS - len(survivors)
    # Every message the application committed survives (its conversation was revived, so kept).
    assert app_messages(migrated_db) == traffic.written
    assert set(traffic.written.values()) <= survivors
    # A revive refused because prune deleted the conversation first: it is in the export.
    for conversation in traffic.refused:
        assert conversation in survivors or conversation in exported
