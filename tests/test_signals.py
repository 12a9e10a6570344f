"""Every job told to stop (SIGINT, SIGTERM, once or twice) at random points, and what it says after.

A stop request never raises inside the job; the job stops at its next stop
point, exits 130 with one line, and that line is true: the counts in it are
the rows committed, and an export says that nothing was written. The points
are random amounts of committed work, or random moments of a phase, from a
seeded generator (``CHATDB_FAULT_SEED`` replays a run; the seed and the point
are in every assertion message). Each point is well inside the work, so every
run here was signalled before it finished, and none may exit 0.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import signal
import subprocess
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from helpers import TestDatabase
from jobdata import count, hold_lease, seed, snapshot
from processes import start

from chatdb.jobs.files import manifest_path

SEED = int(os.environ.get("CHATDB_FAULT_SEED", "20240607"))
# Stops per job: with the tests below, a few dozen signals in all; CHATDB_FAULT_STOPS raises it for long runs.
STOPS = int(os.environ.get("CHATDB_FAULT_STOPS", "2"))
ROWS = 500
BATCH = 5
OLD = "2020-01-01T00:00:00+00:00"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(f"{SEED}:{request.node.name}")


def threshold(rng: random.Random, total: int) -> int:
    """A random amount of work within the first four fifths: the job is still running."""
    return rng.randrange(1, total * 4 // 5)


def stop_when(
    proc: subprocess.Popen[str],
    rng: random.Random,
    ready: Callable[[], bool],
    where: object,
    *,
    pause: float = 0.01,
    timeout: float = 60,
) -> str:
    """Send SIGINT or SIGTERM (sometimes twice) once ``ready()``; assert exit 130 with one line; return it."""
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    twice = rng.random() < 0.3
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, (where, "the job ended before it was signalled", proc.communicate())
        assert time.monotonic() < deadline, (where, "the job made no progress")
        time.sleep(0.005)
    time.sleep(rng.uniform(0, pause))
    assert proc.poll() is None, (where, "the job ended before it was signalled", proc.communicate())
    proc.send_signal(sig)
    if twice:
        time.sleep(rng.uniform(0, 0.01))
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    where = (*where, sig.name, "twice" if twice else "once") if isinstance(where, tuple) else where
    assert proc.returncode == 130, (where, proc.returncode, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: interrupted"), (where, err)
    assert "Traceback" not in err and "Exception ignored" not in err, (where, err)
    return lines[0]


def number(pattern: str, line: str) -> int:
    found = re.search(pattern, line)
    assert found, (pattern, line)
    return int(found.group(1))


def job(db: TestDatabase, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    quiet = () if args[0] == "seed" else ("--quiet",)  # seed draws no progress bar off a terminal anyway
    return start(db, *args, *quiet, env=env)


@pytest.mark.parametrize("name", ["archive", "unarchive"])
def test_archive_and_unarchive_stopped_at_random_points(
    migrated_db: TestDatabase, rng: random.Random, name: str
) -> None:
    before, after = ("active", "archived") if name == "archive" else ("archived", "active")
    seed(migrated_db, ROWS, updated=OLD, status=before, messages=1)
    selection = ("--older-than", "90d") if name == "archive" else ("--user", "alice")
    for attempt in range(STOPS):
        point = threshold(rng, ROWS)
        proc = job(migrated_db, name, *selection, "--batch-size", str(BATCH))
        line = stop_when(proc, rng, lambda: count(migrated_db, f"status = '{after}'") >= point, (SEED, attempt, point))
        changed = count(migrated_db, f"status = '{after}'")
        assert changed % BATCH == 0 and point <= changed < ROWS, (SEED, point, changed)
        # The line counts exactly the committed rows, and says so.
        assert number(rf"{name} stopped after (\d+) of {ROWS} conversations", line) == changed, line
        assert "committed" in line and "run it again to finish" in line, line
        migrated_db.sql(f"UPDATE conversations SET status = '{before}'")


def test_export_stopped_at_random_points_writes_nothing(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path
) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=2)
    target = tmp_path / "all.jsonl.gz"
    for attempt in range(STOPS):
        proc = job(migrated_db, "export", "-o", str(target), "--batch-size", "2")
        # While writing: the temporary is there (its size says little: it is buffered).
        line = stop_when(proc, rng, lambda: any(tmp_path.iterdir()), (SEED, attempt), pause=0.2)
        assert f"nothing was written under {target}" in line and "run it again" in line, line
        assert "committed" not in line and "kept" not in line, line
        # Nothing at all is left: no final name, no manifest, no temporary.
        assert list(tmp_path.iterdir()) == [], (SEED, attempt, list(tmp_path.iterdir()))


def test_import_stopped_at_random_points(migrated_db: TestDatabase, rng: random.Random, tmp_path: Path) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=2)
    original = snapshot(migrated_db)
    target = export_all(migrated_db, tmp_path / "all.jsonl")
    for attempt in range(STOPS):
        migrated_db.sql("DELETE FROM conversations")
        if attempt == 0:  # while it validates the file (nothing inserted yet) or just after
            ready, point = (lambda: lock_holder(migrated_db) is not None), 0
            pause = 0.15
        else:
            point = threshold(rng, ROWS)
            ready, pause = (lambda: count(migrated_db) >= point), 0.01
        proc = job(migrated_db, "import", str(target), "--batch-size", str(BATCH))
        line = stop_when(proc, rng, ready, (SEED, attempt, point), pause=pause)
        imported = count(migrated_db)
        assert imported % BATCH == 0 and point <= imported < ROWS, (SEED, point, imported)
        assert migrated_db.scalar("SELECT count(*) FROM messages") == 2 * imported
        if "validate phase" in line:
            assert imported == 0 and "nothing was imported" in line, line
        else:
            assert number(rf"import stopped after (\d+) of {ROWS} conversations", line) == imported, line
            assert "run it again to finish" in line, line
    migrated_db.sql("DELETE FROM conversations")
    done = subprocess.run([*start_args(migrated_db), "import", str(target), "--quiet"], capture_output=True)
    assert done.returncode == 0 and snapshot(migrated_db) == original


@pytest.mark.parametrize("with_export", [False, True], ids=["plain", "with-export"])
def test_prune_stopped_at_random_points(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path, with_export: bool
) -> None:
    phases = ["export", "verify", "delete"] if with_export else ["delete"]
    for attempt in range(max(STOPS, len(phases))):  # every phase at least once
        migrated_db.sql("DELETE FROM conversations")
        old = seed(migrated_db, ROWS // 2, updated=OLD, status="archived", messages=3)
        phase = phases[attempt % len(phases)]
        amount = threshold(rng, len(old))
        target = tmp_path / f"run{attempt}.jsonl"
        ready = {
            "export": lambda: any(p.name.endswith(".tmp") for p in tmp_path.iterdir()),
            "verify": lambda: target.exists(),
            "delete": lambda: count(migrated_db) <= len(old) - amount,
        }[phase]
        export_args = ("--export", str(target)) if with_export else ()
        proc = job(migrated_db, "prune", "--older-than", "1y", "--yes", "--batch-size", str(BATCH), *export_args)
        where = (SEED, attempt, phase, amount)
        line = stop_when(proc, rng, ready, where, pause=0.05 if phase == "export" else 0.005)
        survivors = count(migrated_db)
        deleted = len(old) - survivors
        # No conversation is half deleted.
        assert (
            migrated_db.scalar(
                "SELECT count(*) FROM conversations c WHERE (SELECT count(*) FROM messages m"
                " WHERE m.conversation_id = c.id) <> 3"
            )
            == 0
        ), where
        assert deleted % BATCH == 0, where
        if "delete phase" in line:
            assert number(rf"delete phase after (\d+) of {len(old)} conversations", line) == deleted, (where, line)
            if deleted:  # the batches of this phase only, not the export's as well
                assert number(r" in (\d+) batches", line) == deleted // BATCH, (where, line)
        if "still as exported" in line:  # --export, stopped deleting: how far it got, and how to finish
            assert number(rf"still as exported of (\d+) of {len(old)} conversations", line) == deleted, (where, line)
            assert "--resume --yes" in line, (where, line)
        else:
            assert ("committed" if deleted else "nothing was deleted") in line, (where, line)
        if with_export:
            published = target.exists()
            assert published == manifest_path(target).exists(), where  # both names, or neither
            assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], where
            if published:
                exported = {json.loads(line)["id"] for line in target.read_text().splitlines()}
                assert set(old) - {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")} <= exported
            else:
                # Stopped while exporting, or before the export's first batch: either way no file and no deletion.
                kept_none = "no export was kept" in line or f"nothing was written under {target}" in line
                assert deleted == 0 and "nothing was deleted" in line and kept_none, (where, line)


def test_seed_stopped_at_random_points(migrated_db: TestDatabase, rng: random.Random) -> None:
    conversations = 400
    for attempt in range(STOPS):
        point = threshold(rng, conversations)
        proc = job(
            migrated_db,
            "seed",
            "--conversations",
            str(conversations),
            "--messages",
            "4000",
            "--users",
            "20",
            "--batch",
            "40",
        )
        line = stop_when(proc, rng, lambda: count(migrated_db) >= point, (SEED, attempt, point))
        kept = number(r"kept (\d+) complete conversations", line)
        assert number(rf"seed stopped after (\d+) of {conversations} conversations", line) == kept, line
        messages = number(r"complete conversations with (\d+) messages", line)
        assert (kept, messages) == (count(migrated_db), migrated_db.scalar("SELECT count(*) FROM messages")), line
        assert point <= kept < conversations and "seed --remove" in line, line
        # Whole conversations only: every seeded conversation has at least one message.
        assert (
            migrated_db.scalar(
                "SELECT count(*) FROM conversations c WHERE NOT EXISTS"
                " (SELECT FROM messages m WHERE m.conversation_id = c.id)"
            )
            == 0
        )
        migrated_db.sql("DELETE FROM conversations")
        migrated_db.sql("DELETE FROM users WHERE id LIKE 'chatdb-seed-%'")


def export_all(db: TestDatabase, target: Path) -> Path:
    from chatdb.filters import ConversationFilter
    from chatdb.jobs.export import export_conversations

    with db.database() as database:
        export_conversations(database, ConversationFilter.build(), target)
    return target


def start_args(db: TestDatabase) -> list[str]:
    import sys

    return [sys.executable, "-m", "chatdb", "--database-url", db.url]


def lock_holder(db: TestDatabase) -> str | None:
    """The job holding the maintenance lease, if any."""
    return db.scalar("SELECT job FROM chatdb_job_lease")


def waiting_on_a_lock(db: TestDatabase) -> bool:
    """A chatdb connection (a job's own are named "chatdb") waits for a lock."""
    return bool(
        db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE 'chatdb%%' AND wait_event_type = 'Lock'"
        )
    )


def test_a_stop_while_waiting_for_the_job_lock_ends_the_wait(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path
) -> None:
    seed(migrated_db, 20, updated=OLD)
    hold_lease(migrated_db)  # a prune on another host; never released here
    for attempt, name in enumerate(["archive", "import"]):
        export = tmp_path / "x.jsonl"
        args = {"archive": ("archive", "--older-than", "90d"), "import": ("import", str(export))}[name]
        if name == "import":
            export.write_text("")
        proc = job(migrated_db, *args, "--wait", "600")
        # Signalled while it waits (its connection is there, polling the lease).
        stop_when(
            proc,
            rng,
            lambda: bool(
                migrated_db.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'chatdb%%' AND datname = current_database()"
                )
            ),
            (SEED, attempt, name),
            pause=0.3,
        )
        export.unlink(missing_ok=True)
    assert count(migrated_db, "status = 'archived'") == 0
    assert list(tmp_path.iterdir()) == []


def test_a_stop_cancels_a_statement_waiting_behind_a_table_lock(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path
) -> None:
    """Outside a batch nothing is lost by stopping at once: the statement in flight is cancelled."""
    seed(migrated_db, 20, updated=OLD)
    slow = {"CHATDB_JOB_LOCK_TIMEOUT": "10min"}  # the lock is never released: only a cancel ends the wait
    with psycopg.connect(migrated_db.libpq_url) as holder:
        holder.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
        for attempt, args in enumerate(
            [("export", "-o", str(tmp_path / "x.jsonl")), ("prune", "--older-than", "1y", "--yes")]
        ):
            proc = job(migrated_db, *args, env=slow)
            line = stop_when(proc, rng, lambda: waiting_on_a_lock(migrated_db), (SEED, attempt, args[0]))
            assert "before it began" in line or "phase" in line or "after 0" in line, line
        holder.rollback()
    assert list(tmp_path.iterdir()) == []
    assert count(migrated_db, "status = 'archived'") == 0 and count(migrated_db) == 20


def test_a_second_stop_rolls_back_the_batch_in_progress(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path
) -> None:
    """A first stop request lets a batch finish; a second one cancels it, and nothing of it is kept."""
    ids = seed(migrated_db, 30, updated=OLD, messages=2)
    target = export_all(migrated_db, tmp_path / "all.jsonl")
    migrated_db.sql("DELETE FROM conversations")
    with psycopg.connect(migrated_db.libpq_url) as other:
        # An uncommitted insert of a conversation of the first batch: the batch's insert waits on it.
        other.execute("INSERT INTO conversations (id, user_id, status) VALUES (%s, 'alice', 'active')", [min(ids)])
        proc = job(migrated_db, "import", str(target), "--batch-size", "10", env={"CHATDB_JOB_LOCK_TIMEOUT": "10min"})
        deadline = time.monotonic() + 60
        while not waiting_on_a_lock(migrated_db):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # the first request lets the batch finish: it still waits
        proc.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
        out, err = proc.communicate(timeout=60)
        other.rollback()
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "nothing was imported" in lines[0], err
    assert count(migrated_db) == 0


def stop_inside_a_cleanup_callback(sig: int) -> None:
    """Send ``sig`` to this process from inside a garbage-collector (weakref) callback.

    Python runs the signal's handler right there; an exception raised by it is
    printed as "Exception ignored in …" and lost, which is how a raising
    handler let jobs run to the end after being told to stop.
    """

    class Node:
        pass

    node = Node()
    node.cycle = node  # type: ignore[attr-defined]
    keep = weakref.ref(node, lambda _ref: os.kill(os.getpid(), sig))
    del node
    gc.collect()
    assert keep() is None


@pytest.mark.parametrize("name", ["archive", "export", "import", "prune", "seed"])
@pytest.mark.parametrize("when", ["first report", "random report"])
def test_a_stop_during_a_garbage_collector_callback_is_never_lost(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path, name: str, when: str
) -> None:
    """In-process, through the library: the job raises JobInterrupted, whatever the callback swallows.

    The first progress report comes as a phase starts, outside any batch; a
    random later one mostly from inside a batch.
    """
    from chatdb.errors import JobInterrupted
    from chatdb.filters import ConversationFilter
    from chatdb.jobs import seed as seeding
    from chatdb.jobs.archive import archive_conversations
    from chatdb.jobs.export import export_conversations
    from chatdb.jobs.importing import import_conversations
    from chatdb.jobs.prune import prune_conversations
    from chatdb.timeparse import utcnow

    if name != "seed":
        seed(migrated_db, 200, updated=OLD, status="archived" if name == "prune" else "active", messages=1)
    source = export_all(migrated_db, tmp_path / "source.jsonl") if name == "import" else None
    if name == "import":
        migrated_db.sql("DELETE FROM conversations")
    point = 0 if when == "first report" else rng.randrange(1, 30)
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    reports = []

    def progress(update) -> None:
        reports.append(update)
        if len(reports) == point + 1:
            stop_inside_a_cleanup_callback(sig)

    cutoff = ConversationFilter.build(older_than=utcnow())
    where = (SEED, name, when, point, sig)
    with migrated_db.database() as db, pytest.raises(JobInterrupted) as stopped:
        if name == "archive":
            archive_conversations(db, cutoff, batch_size=5, progress=progress)
        elif name == "export":
            export_conversations(db, ConversationFilter.build(), tmp_path / "x.jsonl", batch_size=5, progress=progress)
        elif name == "import":
            import_conversations(db, source, batch_size=5, progress=progress)
        elif name == "prune":
            prune_conversations(db, cutoff, batch_size=5, progress=progress)
        else:
            seeding.seed(
                db,
                seeding.SeedScale.build(conversations=200, messages=400, users=5),
                batch_messages=10,
                jobs=1,
                progress=progress,
            )
    assert len(reports) > point, where
    assert str(stopped.value).startswith("interrupted: "), (where, stopped.value)
    assert not (tmp_path / "x.jsonl").exists(), where


@pytest.mark.parametrize("when", ["Sequential", "Concurrency"])
def test_bench_stops_at_its_next_operation_whatever_swallows_the_request(
    migrated_db: TestDatabase, rng: random.Random, when: str
) -> None:
    """A stop request during bench (here inside a callback that swallows exceptions) ends it, its rows removed.

    A handler that raised could leave one of bench's connections inside a
    transaction and its cleanup waiting on that connection's locks for ever.
    """
    from chatdb.bench.run import BENCH_USER_PREFIX, BenchOptions, run_bench
    from chatdb.errors import JobInterrupted
    from chatdb.jobs import stopping

    seed(migrated_db, 5, messages=2)
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    said = []

    def phase(message: str) -> None:
        said.append(message)
        if message.startswith(when):
            stop_inside_a_cleanup_callback(sig)

    options = BenchOptions(duration=20, clients=2, workers=1, sample=5)
    with migrated_db.database() as db, stopping.handling_signals(), pytest.raises(JobInterrupted) as stopped:
        run_bench(db, options, phase=phase)
    assert str(stopped.value).startswith("interrupted"), stopped.value
    assert not any(message.startswith("Removing") for message in said), said  # it did not run to its end
    assert migrated_db.scalar("SELECT count(*) FROM users WHERE id LIKE %s", [f"{BENCH_USER_PREFIX}%"]) == 0
    assert count(migrated_db) == 5
