"""How output looks: fitted to a terminal of 80 or 120 columns, and unwrapped in pipes, files and cron logs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase
from jobdata import seed

from chatdb.cli import _output as out
from chatdb.cli._tables import Column, Screen, draw

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HOSTILE = 'first line\nsecond\tline \x1b[2J with "quotes", commas and ünïcödé 🙂 ' + "long " * 80
LONG_USER = "user-with-a-rather-long-id-0001"


def terminal(columns: int) -> dict[str, str]:
    return {"TTY_COMPATIBLE": "1", "COLUMNS": str(columns), "NO_COLOR": "1"}


@pytest.fixture
def listed(migrated_db: TestDatabase) -> TestDatabase:
    seed(migrated_db, 3, user=LONG_USER, updated="2021-01-01T00:00:00+00:00", messages=2)
    ids = seed(migrated_db, 1, updated="2021-02-01T00:00:00+00:00", messages=1)
    migrated_db.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at) "
        "SELECT %s, 'alice', 'assistant', %s, jsonb_build_object('model', 'gpt-4o', 'prompt_tokens', 123456), "
        "'2021-01-31T12:00:00Z'",
        (ids[0], HOSTILE),
    )
    return migrated_db


def lines_of(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("columns", [80, 120])
def test_conversations_fit_the_terminal_or_become_records(listed: TestDatabase, columns: int) -> None:
    result = Cli(listed.url)("conversations", env=terminal(columns))
    assert result.exit_code == 0, result.stderr
    shown = lines_of(result.stdout)
    assert max(len(line) for line in shown) <= columns
    assert all(line == line.rstrip() for line in shown)
    ids = [row[0] for row in listed.sql("SELECT id::text FROM conversations ORDER BY updated_at DESC, id DESC")]
    if columns == 120:  # a table: one line per conversation, every id whole on it
        rows = [line for line in shown if UUID.match(line)]
        assert [UUID.match(line).group() for line in rows] == ids
        assert all(LONG_USER in line for line in rows[1:]) and all(line.split()[3].isdigit() for line in rows)
    else:  # too narrow for the ids and user ids side by side: records, never a column of single letters
        assert [line.split()[1] for line in shown if line.startswith("ID ")] == ids
        assert sum(1 for line in shown if line.split() == ["User", LONG_USER]) == 3
        assert all(len(line.split()) >= 2 for line in shown if not line.startswith("─["))


@pytest.mark.parametrize("columns", [80, 120])
def test_history_at_the_terminal_width(listed: TestDatabase, columns: int) -> None:
    conversation = listed.scalar("SELECT conversation_id::text FROM messages WHERE content LIKE 'first line%'")
    result = Cli(listed.url)("history", conversation, env=terminal(columns))
    assert result.exit_code == 0, result.stderr
    shown = lines_of(result.stdout)
    assert max(len(line) for line in shown) <= columns
    assert "\x1b" not in result.stdout and "\\x1b[2J" in result.stdout
    message_ids = [
        r[0] for r in listed.sql("SELECT id::text FROM messages WHERE conversation_id = %s", (conversation,))
    ]
    for message_id in message_ids:  # ids whole, on the heading line with time and role
        assert any(message_id in line and "2021-" in line for line in shown)
    words = " ".join(shown).split()
    assert words.count("long") == 80  # the whole message, wrapped, nothing cut
    assert '"prompt_tokens":123456' in result.stdout.replace("\n  ", "")


def test_stats_numbers_never_split_and_carry_separators(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 1234, updated="2021-01-01T00:00:00+00:00", messages=1)
    result = Cli(migrated_db.url)("stats", env=terminal(80))
    assert result.exit_code == 0, result.stderr
    shown = lines_of(result.stdout)
    # Every line fits, but the URL: one piece, even when longer than the screen.
    assert max(len(line) for line in shown if not line.startswith("Database ")) <= 80
    assert "1,234 active" in result.stdout
    rows = next(line for line in shown if line.startswith("conversations "))
    assert rows.split()[1] == "1,234"
    assert Cli(migrated_db.url)("stats", "--json").json()["conversations_by_status"]["active"] == 1234


def test_text_columns_share_the_rest_and_are_cut_with_an_ellipsis() -> None:
    drawn: list[str] = []
    screen = Screen(drawn.append, terminal=True, width=80, bold=False)
    columns = [Column("ID", "id"), Column("Count", "number"), Column("Text", "text")]
    uid = "3f2a9c1d-5b6e-4c1a-9f00-1234567890ab"
    draw(screen, columns, [(uid, "1,234,567", HOSTILE), (uid, "7", "short")])
    text = "".join(drawn).splitlines()
    assert len(text) == 4 and all(len(line) <= 80 for line in text)
    assert text[2].startswith(uid) and text[2].endswith("…") and "1,234,567" in text[2]
    assert "\n" not in text[2] and "\x1b" not in text[2]
    assert text[3].endswith("short") and text[3].split()[1] == "7"
    # Too narrow for the fixed columns: records, with every value whole.
    drawn.clear()
    draw(Screen(drawn.append, terminal=True, width=40, bold=False), columns, [(uid, "1,234,567", "short")])
    assert "".join(drawn).splitlines()[1:] == [f"ID     {uid}", "Count  1,234,567", "Text   short"]  # ids whole


def test_numbers_for_people_and_for_scripts() -> None:
    assert [out.cell(v) for v in (16572, 4012183, 0, True, None)] == ["16,572", "4,012,183", "0", "yes", "—"]
    assert [out.rate(v) for v in (28949.4, 40.4, 4.04, 0.0)] == ["28,949", "40", "4.0", "0.0"]
    assert out.human_bytes(60_500_000) == "57.7 MB" and out.human_bytes(1023) == "1,023 bytes"


def _run(db: TestDatabase, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TTY_COMPATIBLE", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "chatdb", "--database-url", db.url, *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "80"},
        cwd=cwd,
        timeout=120,
    )


def test_pipes_and_files_get_one_line_per_record(listed: TestDatabase, tmp_path: Path) -> None:
    """As cron sees it: nothing wrapped or padded, so the URL and the SHA-256 can be grepped."""
    target = tmp_path / "all.jsonl"
    export = _run(listed, "export", "-o", str(target), cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    assert f"SHA-256: {sha}" in export.stdout.splitlines()
    assert f"File: {target}" in export.stdout.splitlines()
    assert any(
        line.startswith("Database: postgresql+psycopg://") and line.endswith(listed.url.rpartition("@")[2])
        for line in export.stdout.splitlines()
    )
    listing = _run(listed, "conversations", cwd=tmp_path)
    hostile_conversation = listed.scalar("SELECT conversation_id::text FROM messages WHERE content LIKE 'first%'")
    history = _run(listed, "history", hostile_conversation, cwd=tmp_path)
    stats = _run(listed, "stats", cwd=tmp_path)
    for done in (export, listing, history, stats):
        assert done.returncode == 0, done.stderr
        for line in (done.stdout + done.stderr).splitlines():
            assert line == line.rstrip(), repr(line)
            assert "\x1b" not in line and "│" not in line
    rows = listing.stdout.splitlines()
    assert rows[0] == "ID\tUser\tStatus\tMessages\tLast activity"
    assert len(rows) == 1 + 4 and all(len(r.split("\t")) == 5 for r in rows)
    # A message with newlines, tabs and an escape sequence stays on its one line, escaped.
    hostile = next(line for line in history.stdout.splitlines() if "first line" in line)
    assert "first line\\nsecond\\tline \\x1b[2J with" in hostile and hostile.count("\t") == 4


def test_a_closed_stdout_ends_quietly_with_141(migrated_db: TestDatabase, tmp_path: Path) -> None:
    seed(migrated_db, 3000, updated="2021-01-01T00:00:00+00:00", messages=1)
    for args in ("conversations --all --csv", "conversations --all", "export -o - --user alice"):
        script = (
            f"set -o pipefail; {sys.executable} -m chatdb --database-url '{migrated_db.url}' {args} "
            f"2>{tmp_path}/err | head -1 >/dev/null; echo $?"
        )
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == "141", (args, done.stdout, done.stderr)
        assert (tmp_path / "err").read_text() == "", args


def test_a_long_url_in_a_summary_stays_one_piece(migrated_db: TestDatabase) -> None:
    from chatdb.config import mask_url

    long_url = migrated_db.url + ("&" if "?" in migrated_db.url else "?") + "application_name=" + "a" * 70
    result = Cli(long_url)("status", env=terminal(80))
    assert result.exit_code == 0, result.stderr
    database = next(line for line in result.stdout.splitlines() if line.startswith("Database"))
    assert database.split()[1] == mask_url(long_url)  # longer than the screen, but never broken


SUMMARIES = [
    ("doctor",),
    ("archive", "--older-than", "1y", "--dry-run"),
    ("unarchive", "--user", LONG_USER, "--older-than", "1y", "--dry-run"),
    ("prune", "--older-than", "1y", "--include-active", "--dry-run"),
    ("lock", "status"),
    ("version",),
    ("embedded", "status"),
    ("migrate",),
    ("seed", "--remove", "--dry-run"),
    ("export", "-o", "{tmp}/all.jsonl"),
    ("import", "{tmp}/all.jsonl", "--dry-run"),
]


@pytest.mark.parametrize("args", SUMMARIES, ids=" ".join)
def test_every_other_table_and_summary_fits_80_columns(
    listed: TestDatabase, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Only a URL or a path, kept in one piece, may run past the edge; ids are never broken.

    Messages on stderr are single lines the terminal wraps, so they are copied whole.
    """
    from chatdb.config import mask_url

    cli = Cli(listed.url)
    env = {**terminal(80), "CHATDB_EMBEDDED_DIR": str(tmp_path / "embedded")}
    if args[0] == "import":
        assert cli("export", "-o", str(tmp_path / "all.jsonl")).exit_code == 0
    if args[0] == "unarchive":
        assert cli("archive", "--older-than", "1y").exit_code == 0
    result = cli(*(a.replace("{tmp}", str(tmp_path)) for a in args), env=env)
    assert result.exit_code == 0, result.stderr
    unbroken = (mask_url(listed.url), str(tmp_path))
    for line in result.stdout.splitlines():
        assert line == line.rstrip(), repr(line)
        assert len(line) <= 80 or any(whole in line for whole in unbroken), line
    assert all(line == line.rstrip() for line in result.stderr.splitlines())
    if args[0] in ("archive", "unarchive"):
        shown = UUID.findall(result.stdout)
        ids = {row[0] for row in listed.sql("SELECT id::text FROM conversations")}
        assert shown and set(shown) <= ids
