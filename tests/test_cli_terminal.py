"""chatdb at a real terminal (a pty, rendered by a terminal emulator): prompts, progress, pager, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TestDatabase
from jobdata import count, seed
from terminal import Terminal

from chatdb.config import mask_url

OLD = "2020-01-01T00:00:00+00:00"


@pytest.mark.parametrize("columns", [80, 220])
def test_prune_prompt_is_whole_on_screen_while_it_waits(migrated_db: TestDatabase, columns: int) -> None:
    seed(migrated_db, 1200, updated=OLD, status="archived", messages=2)
    term = Terminal(
        "--database-url", migrated_db.url, "prune", "--older-than", "1y", "--batch-size", "100", columns=columns
    )
    prompt = ("Delete 1,200 conversations and 2,400 messages (", f"of rows) from {mask_url(migrated_db.url)}? [y/N]")
    screen = term.wait_for(prompt[1])
    term.settle()  # nothing may draw over the question while it waits
    flat = "".join(term.text().split())
    assert "".join(prompt[0].split()) in flat and "".join(prompt[1].split()) in flat, term.text()
    assert " MB of rows" in screen.replace("\n", "") or " kB of rows" in screen.replace("\n", "")
    if columns == 80:
        term.send("n\r")
        assert term.wait() == 1
        assert "prune cancelled; nothing was deleted" in "".join(term.text().split("\n"))
        assert count(migrated_db) == 1200
        return
    term.send("y\r")
    assert term.wait() == 0, term.text()
    assert count(migrated_db) == 0
    text = term.text()
    assert "Delete" in text and "[y/N]: y" in text  # the answered question stays on screen
    assert "1,200/1,200" in text, text  # the bar, drawn after the answer, ends complete
    assert any(line.split() == ["Deleted", "conversations", "1,200"] for line in text.splitlines()), text


def test_import_validate_bar_ends_with_the_total(migrated_db: TestDatabase, tmp_path: Path) -> None:
    seed(migrated_db, 40, updated=OLD, messages=1)
    target = tmp_path / "all.jsonl"
    assert Terminal("--database-url", migrated_db.url, "export", "-o", str(target)).wait() == 0
    migrated_db.sql("DELETE FROM messages")
    migrated_db.sql("DELETE FROM conversations")
    term = Terminal("--database-url", migrated_db.url, "import", str(target), columns=120)
    assert term.wait() == 0, term.text()
    validate = next(line for line in term.text().splitlines() if line.startswith("Validate"))
    assert "40/40" in validate and "?" not in validate


def test_long_output_goes_through_the_pager_short_output_does_not(migrated_db: TestDatabase, tmp_path: Path) -> None:
    seed(migrated_db, 60, updated=OLD, messages=1)
    paged = tmp_path / "paged.txt"
    pager = {"CHATDB_PAGER": f"cat > {paged}"}
    term = Terminal("--database-url", migrated_db.url, "conversations", "-n", "60", columns=120, env=pager)
    assert term.wait() == 0
    lines = paged.read_text().splitlines()
    assert len(lines) == 62 and "ID" in lines[0] and "─" in lines[1]  # header (bold), rule, 60 rows
    assert "conversations" not in term.text()  # nothing but the pager's own screen was drawn
    paged.unlink()

    short = Terminal("--database-url", migrated_db.url, "conversations", "-n", "5", columns=120, env=pager)
    assert short.wait() == 0
    assert not paged.exists() and short.text().count("alice") == 5

    unpaged = Terminal(
        "--database-url", migrated_db.url, "conversations", "-n", "60", "--no-pager", columns=120, env=pager
    )
    assert unpaged.wait() == 0 and not paged.exists()

    # Quitting the pager early is a normal way to stop reading: no error, exit 0.
    quits = Terminal(
        "--database-url", migrated_db.url, "conversations", "--all", columns=120, env={"CHATDB_PAGER": "head -3"}
    )
    assert quits.wait() == 0
    assert "Error" not in quits.text() and "Traceback" not in quits.text()


def test_ctrl_c_in_a_long_listing_prints_one_line(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 3000, updated=OLD, messages=1)
    term = Terminal("--database-url", migrated_db.url, "conversations", "--all", "--no-pager", columns=100)
    term.wait_for("alice")
    term.interrupt()
    status = term.wait()
    if status == 0:
        pytest.skip("the listing finished before Ctrl-C arrived")
    assert status == 130
    assert term.text().count("Error: interrupted") == 1, term.text()
    assert term.text().rstrip().endswith("Error: interrupted")
    everything = term.raw.decode(errors="replace")
    assert "Traceback" not in everything and "Exception ignored" not in everything


def test_json_failure_after_ctrl_c_carries_the_progress(migrated_db: TestDatabase) -> None:
    import signal
    import subprocess
    import sys
    import time

    seed(migrated_db, 4000, updated=OLD, messages=1)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatdb",
            "archive",
            "--older-than",
            "1y",
            "--batch-size",
            "5",
            "--json",
            "--database-url",
            migrated_db.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while count(migrated_db, "status = 'archived'") < 50:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    report = json.loads(stdout)
    assert report["ok"] is False and report["exit_code"] == 130
    assert report["progress"]["phase"] == "archive" and report["progress"]["total"] == 4000
    assert 50 <= report["progress"]["done"] == count(migrated_db, "status = 'archived'") < 4000
    assert [line for line in stderr.splitlines() if line.strip()] == [f"Error: {report['error']}"]
