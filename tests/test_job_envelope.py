"""Every job's JSON result starts with the same keys, in the same order: the jobs' one vocabulary."""

from __future__ import annotations

from pathlib import Path

from helpers import Cli, TestDatabase
from jobdata import seed

ENVELOPE = [
    "ok", "job", "database", "dry_run", "matched", "changed", "skipped", "batches", "duration_seconds",
    "rows_per_second",
]  # fmt: skip


def test_every_job_reports_in_one_envelope(cli: Cli, migrated_db: TestDatabase, tmp_path: Path) -> None:
    seed(migrated_db, 4, updated="2020-01-01T00:00:00+00:00", status="archived", messages=1)
    out = str(tmp_path / "x.jsonl")
    runs = [
        ("export", ("export", "-o", out)),
        ("import", ("import", out, "--dry-run")),
        ("unarchive", ("unarchive", "--older-than", "1y")),
        ("archive", ("archive", "--older-than", "1y")),
        ("prune", ("prune", "--older-than", "1y", "--yes")),
        ("seed", ("seed", "--conversations", "3", "--messages", "6")),
        ("seed --remove", ("seed", "--remove", "--yes")),
    ]
    changed = {}
    for job, args in runs:
        result = cli(*args, "--json")
        assert result.exit_code == 0, (job, result.stderr)
        report = result.json()
        assert list(report)[: len(ENVELOPE)] == ENVELOPE, job
        assert report["job"] == job
        assert all(isinstance(report[key], int) for key in ("matched", "changed", "skipped", "batches")), job
        changed[job] = (report["matched"], report["changed"], report["skipped"])
    assert changed == {
        "export": (4, 4, 0),
        "import": (4, 0, 4),  # a dry run inserts nothing; all four are already there
        "unarchive": (4, 4, 0),
        "archive": (4, 4, 0),
        "prune": (4, 4, 0),
        "seed": (3, 3, 0),
        "seed --remove": (3, 3, 0),
    }
    assert migrated_db.scalar("SELECT count(*) FROM conversations") == 0
