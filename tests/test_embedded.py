"""The embedded default: `chatdb migrate` with no URL configured."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatdb import embedded
from helpers import Cli


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

    result = cli("migrate", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["revision"] == "002"
    assert str(embedded_dir) in result.stderr  # says where the data lives
    assert (embedded_dir / "PG_VERSION").exists()

    after = cli("embedded", "status", "--json").json()
    assert after["running"] is True and after["pid"]
    assert after["url"].startswith("postgresql://postgres@/chatdb?host=")

    # The server outlives the command: the next one finds it and the schema.
    again = cli("status", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["current"] == "002"

    url = cli("embedded", "url")
    assert url.stdout.strip() == after["url"]

    stopped = cli("embedded", "stop")
    assert stopped.exit_code == 0
    assert cli("embedded", "status", "--json").json()["running"] is False
    assert "not running" in cli("embedded", "stop").stderr
