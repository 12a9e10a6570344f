"""An installed (not editable) chatdb finds its migrations from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import TestDatabase

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_migrations_and_they_run_from_anywhere(tmp_path: Path, empty_db: TestDatabase) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(tmp_path.glob("chatdb-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "chatdb/_alembic/env.py" in names
    assert "chatdb/_alembic/versions/001_create_conversations_table.py" in names
    assert "chatdb/_alembic/versions/002_create_messages_table.py" in names

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "CHATDB_DATABASE_URL": empty_db.url}
    where = subprocess.run(
        [sys.executable, "-c", "import chatdb.migrations as m; print(m.script_location())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(site / "chatdb" / "_alembic")
    migrate = subprocess.run(
        [sys.executable, "-m", "chatdb", "migrate"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    assert empty_db.scalar("SELECT version_num FROM chatdb_alembic_version") == "004"
