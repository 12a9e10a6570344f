"""Every job fails fast, the same way, behind a table lock another session holds.

A migration of the application (``ALTER TABLE``) holds ``ACCESS EXCLUSIVE``
on a table; a job must not queue behind it (and make every application query
queue behind the job). Every statement of every job waits at most
``CHATDB_JOB_LOCK_TIMEOUT`` and then fails with one line, exit 1, changing
nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import seed, snapshot

OLD = "2020-01-01T00:00:00+00:00"
JOBS = {
    "archive": ("archive", "--older-than", "90d"),
    "unarchive": ("unarchive", "--user", "alice"),
    "export": ("export", "-o", "OUT/x.jsonl"),
    "import": ("import", "OUT/source.jsonl"),
    "prune": ("prune", "--older-than", "1y", "--yes"),
    "prune-export": ("prune", "--older-than", "1y", "--yes", "--export", "OUT/pruned.jsonl"),
    "seed": ("seed", "--conversations", "10", "--force"),
    "seed-remove": ("seed", "--remove", "--yes"),
}


# The tables each job reads or writes (all of them touch conversations).
NEEDS = {
    "archive": {"conversations"},
    "unarchive": {"conversations"},
    "export": {"conversations", "messages"},
    "import": {"conversations", "messages", "users"},
    "prune": {"conversations", "messages"},
    "prune-export": {"conversations", "messages"},
    "seed": {"conversations", "messages", "users"},
    "seed-remove": {"conversations", "messages", "users"},
}


@pytest.mark.parametrize("table", ["conversations", "messages", "users"])
def test_every_job_fails_fast_behind_an_access_exclusive_lock(
    cli: Cli, migrated_db: TestDatabase, tmp_path: Path, table: str
) -> None:
    seed(migrated_db, 6, updated=OLD, status="archived", messages=2)
    migrated_db.sql("INSERT INTO users (id) VALUES ('chatdb-seed-1')")
    assert cli("export", "-o", str(tmp_path / "source.jsonl"), "--quiet").exit_code == 0
    migrated_db.sql(
        "DELETE FROM conversations WHERE id = (SELECT id FROM conversations ORDER BY id LIMIT 1)"
    )  # for import
    before = snapshot(migrated_db)
    # A job that waited for ever would fail here after a while instead of hanging the suite.
    migrated_db.sql(f"ALTER DATABASE \"{migrated_db.name}\" SET statement_timeout = '20s'")
    with migrated_db.connect() as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        for name, args in JOBS.items():
            args = tuple(a.replace("OUT", str(tmp_path)) for a in args)
            if table not in NEEDS[name]:
                continue
            result = cli(*args, env={"CHATDB_JOB_LOCK_TIMEOUT": "200ms"})
            assert_one_line_error(result, 1, "lock timeout", "another session holds a lock")
        holder.rollback()
    assert snapshot(migrated_db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.jsonl", "source.jsonl.manifest.json"]
