"""Passwords never printed, export files private, and the least-privilege roles of docs/security.md."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, as_role, assert_one_line_error
from jobdata import seed, snapshot

ROOT = Path(__file__).resolve().parent.parent
MARKER = "Pw-9f3c1e-MARKER"
COMMANDS = [
    ("status",),
    ("conversations",),
    ("stats",),
    ("doctor",),
    ("history", "00000000-0000-0000-0000-000000000000"),
    ("archive", "--older-than", "1d", "--dry-run"),
    ("prune", "--older-than", "1d", "--dry-run"),
    ("export",),
    ("migrate", "--sql"),
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
        url = as_role(migrated_db.url, role, MARKER)
        assert MARKER in url
        seed(migrated_db, 3, updated="2020-01-01T00:00:00+00:00")
        cli = Cli(url)
        for args in (
            ("status", "--json"),
            ("stats", "--json"),
            ("archive", "--older-than", "1d", "--json"),
            ("export", "-o", str(tmp_path / "x.jsonl"), "--json"),
            ("doctor", "--json"),
        ):
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


def read_only_grants() -> list[str]:
    """The read-only role's grants exactly as docs/security.md gives them (after CREATE ROLE)."""
    text = (ROOT / "docs" / "security.md").read_text()
    block = text.split("<!-- read-only grants", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.startswith("GRANT")]


@pytest.fixture
def read_only(migrated_db: TestDatabase):
    """A login role granted exactly what docs/security.md lists for the read-only commands."""
    role = f"chatdb_ro_{uuid.uuid4().hex[:8]}"
    migrated_db.sql(f"CREATE ROLE {role} LOGIN")
    grants = read_only_grants()
    assert len(grants) == 3
    for statement in grants:
        migrated_db.sql(statement.replace("appdb", f'"{migrated_db.name}"').replace("chatdb_readonly", role))
    try:
        yield Cli(as_role(migrated_db.url, role))
    finally:
        migrated_db.sql(f"DROP OWNED BY {role}")
        migrated_db.sql(f"DROP ROLE {role}")


def test_read_only_commands_work_for_a_read_only_role(
    migrated_db: TestDatabase, read_only: Cli, tmp_path: Path
) -> None:
    (conversation,) = seed(migrated_db, 1, updated="2020-01-01T00:00:00+00:00")
    before = snapshot(migrated_db)
    for args in (
        ("status", "--json"),
        ("conversations", "--json"),
        ("history", conversation, "--json"),
        ("stats", "--json"),
        ("doctor", "--json"),
        ("export", "-o", str(tmp_path / "x.jsonl"), "--json"),
        ("archive", "--older-than", "1d", "--dry-run", "--json"),
        ("prune", "--older-than", "1d", "--dry-run", "--json"),
        ("lock", "status", "--json"),
        ("hold", "list", "--json"),
    ):
        result = read_only(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "Error" not in result.stderr, (args, result.stderr)
    assert len((tmp_path / "x.jsonl").read_text().splitlines()) == 1
    assert snapshot(migrated_db) == before


@pytest.mark.parametrize(
    "args",
    [("archive", "--older-than", "1d"), ("prune", "--older-than", "1d", "--yes"), ("unarchive", "--user", "alice")],
    ids=lambda a: a[0],
)
def test_a_write_as_the_read_only_role_is_one_clear_permission_error(
    migrated_db: TestDatabase, read_only: Cli, args: tuple[str, ...]
) -> None:
    seed(migrated_db, 2, updated="2020-01-01T00:00:00+00:00", status="archived" if args[0] != "archive" else "active")
    before = snapshot(migrated_db)
    result = read_only(*args)
    assert_one_line_error(result, 1, "permission denied", "docs/security.md")
    assert snapshot(migrated_db) == before
