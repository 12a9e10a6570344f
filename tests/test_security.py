"""Passwords never printed, export files private."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from helpers import Cli, TestDatabase
from jobdata import seed

MARKER = "Pw-9f3c1e-MARKER"
COMMANDS = [
    ("status",), ("conversations",), ("stats",), ("doctor",), ("history", "00000000-0000-0000-0000-000000000000"),
    ("archive", "--older-than", "1d", "--dry-run"), ("prune", "--older-than", "1d", "--dry-run"),
    ("export",), ("migrate", "--sql"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("flags", [(), ("--debug",)], ids=["plain", "debug"])
def test_a_password_never_appears_even_when_the_connection_fails(command: tuple[str, ...], flags: tuple) -> None:
    url = f"postgresql+psycopg://app:{MARKER}@127.0.0.1:1/chatdb"
    for args in ((*flags, "--database-url", url, *command), (*flags, "--database-url", url, *command, "--json")):
        result = Cli(None)(*args)
        assert result.exit_code != 0
        assert MARKER not in result.stdout + result.stderr, args


def test_a_password_never_appears_in_json_reports(migrated_db: TestDatabase, tmp_path: Path) -> None:
    role = f"marked_{uuid.uuid4().hex[:8]}"  # roles are server-wide: a name no other run uses
    migrated_db.sql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{MARKER}'")
    try:
        url = migrated_db.url.replace("postgres:@", f"{role}:{MARKER}@").replace("postgres@", f"{role}:{MARKER}@")
        assert MARKER in url
        seed(migrated_db, 3, updated="2020-01-01T00:00:00+00:00")
        cli = Cli(url)
        for args in (("status", "--json"), ("stats", "--json"), ("archive", "--older-than", "1d", "--json"),
                     ("export", "-o", str(tmp_path / "x.jsonl"), "--json"), ("doctor", "--json")):
            result = cli(*args)
            assert result.exit_code in (0, 1), (args, result.stderr)
            assert MARKER not in result.stdout + result.stderr, args
        assert MARKER not in (tmp_path / "x.jsonl.manifest.json").read_text()
    finally:
        migrated_db.sql(f"DROP ROLE IF EXISTS {role}")


def test_export_and_manifest_are_private(cli: Cli, migrated_db: TestDatabase, tmp_path: Path) -> None:
    seed(migrated_db, 3)
    for name in ("a.jsonl", "b.jsonl.gz", "c.csv", "d.json"):
        assert cli("export", "-o", str(tmp_path / name), "--quiet").exit_code == 0
        for path in (tmp_path / name, tmp_path / f"{name}.manifest.json"):
            assert path.stat().st_mode & 0o777 == 0o600, path
