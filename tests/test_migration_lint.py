"""The migrations are safe to run against a live database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import Cli

ROOT = Path(__file__).resolve().parent.parent
SQUAWK = Path(sys.executable).parent / "squawk"


def upgrade_sql() -> str:
    result = Cli(None)("migrate", "--sql", "--from", "base")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_every_migration_transaction_sets_its_timeouts() -> None:
    sql = upgrade_sql()
    begin = sql.index("BEGIN;")
    first_ddl = sql.index("CREATE TABLE")
    prologue = sql[begin:first_ddl]
    assert "SET LOCAL lock_timeout = '10s';" in prologue
    assert "SET LOCAL statement_timeout = '5min';" in prologue


def test_timeouts_can_be_configured_and_are_validated() -> None:
    result = Cli(None)("migrate", "--sql", "--from", "base", env={"CHATDB_MIGRATION_LOCK_TIMEOUT": "2s"})
    assert "SET LOCAL lock_timeout = '2s';" in result.stdout
    bad = Cli(None)("migrate", "--sql", "--from", "base", env={"CHATDB_MIGRATION_LOCK_TIMEOUT": "2s; DROP TABLE users"})
    assert bad.exit_code == 2
    assert "DROP TABLE users" not in bad.stdout


def test_squawk_finds_nothing_in_the_upgrade(tmp_path: Path) -> None:
    script = tmp_path / "upgrade.sql"
    script.write_text(upgrade_sql())
    lint = subprocess.run(
        [str(SQUAWK), "--config", str(ROOT / ".squawk.toml"), str(script)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
