"""The embedded default: `chatdb migrate` with no URL configured."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Cli

from chatdb import embedded, migrations


@pytest.fixture
def embedded_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # A short path: the server's socket lives in its data directory.
    path = Path(tempfile.mkdtemp(prefix="chatdb-emb-")) / "pg"
    monkeypatch.setenv("CHATDB_EMBEDDED_DIR", str(path))
    try:
        yield path
    finally:
        embedded.stop()


def test_migrate_without_a_url_uses_the_embedded_server(embedded_dir: Path) -> None:
    cli = Cli(None)
    before = cli("embedded", "status", "--json")
    assert before.exit_code == 0, before.stderr
    assert before.json()["running"] is False
    assert before.json()["data_dir"] == str(embedded_dir)
    # Stopped, it still says where it will listen, and as whom it runs.
    assert before.json()["url"] == f"postgresql://postgres@/chatdb?host={embedded_dir}&port=5432"
    runs_as = "embedded_postgres" if os.geteuid() == 0 else getpass.getuser()
    assert before.json()["run_as"] == runs_as
    shown = cli("embedded", "status").stdout
    assert f"Runs as: {runs_as}" in shown and f"URL: {before.json()['url']}" in shown
    if runs_as == "embedded_postgres":
        assert "useradd" in shown

    result = cli("migrate", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["revision"] == migrations.head()
    assert result.stderr.count(f"Using the embedded PostgreSQL in {embedded_dir}") == 1  # where the data lives
    assert (embedded_dir / "PG_VERSION").exists()

    after = cli("embedded", "status", "--json").json()
    assert after["running"] is True and after["pid"]
    assert after["url"].startswith("postgresql://postgres@/chatdb?host=")

    # A command that opens the database many times (bench: its phases and workers) says where once.
    bench = cli("bench", "--duration", "1s", "--clients", "1")
    assert bench.exit_code == 0, bench.stderr
    assert bench.stderr.count("Using the embedded PostgreSQL") == 1, bench.stderr

    # The server outlives the command: the next one finds it and the schema.
    again = cli("status", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["current"] == migrations.head()

    url = cli("embedded", "url")
    assert url.stdout.strip() == after["url"] == before.json()["url"]
    # A libpq URL: psql takes it as it is, and so does chatdb.
    assert Cli(url.stdout.strip())("status", "--json").json()["current"] == migrations.head()
    if shutil.which("psql"):
        asked = subprocess.run(
            ["psql", url.stdout.strip(), "-Atc", "SELECT current_database()"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert asked.stdout.strip() == "chatdb", asked.stderr

    stopped = cli("embedded", "stop")
    assert stopped.exit_code == 0
    assert cli("embedded", "status", "--json").json()["running"] is False
    assert "not running" in cli("embedded", "stop").stderr
