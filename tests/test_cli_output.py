"""Output conventions every command shares: --json everywhere it reports, colour, streams, help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sample_data
from helpers import Cli, TestDatabase
from test_cli_conventions import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
# Commands that report nothing: they print one value for a shell, or act and say so on stderr.
NOT_REPORTING = {("embedded", "url"), ("embedded", "stop")}
COLOUR = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-79]|9[0-7]|38|48)(?:;\d+)*m")


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS if p not in NOT_REPORTING], ids=" ".join)
def test_every_reporting_command_accepts_json(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    options = {name for param in command.params for name in getattr(param, "opts", [])}
    assert "--json" in options


@pytest.fixture
def seeded(migrated_db: TestDatabase) -> TestDatabase:
    sample_data.seed(migrated_db)
    return migrated_db


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["stats"],
        ["doctor"],
        ["conversations"],
        ["history", sample_data.ALICE_ACTIVE],
        ["migrate"],
    ],
    ids=lambda args: args[0],
)
def test_json_mode_prints_only_json_on_stdout(seeded: TestDatabase, args: list[str]) -> None:
    result = Cli(seeded.url)(*args, "--json")
    assert result.exit_code == 0, result.stderr
    assert isinstance(result.json(), dict)
    assert "\x1b[" not in result.stdout
    assert "Traceback" not in result.stderr


def _run_both(db: TestDatabase, env: dict) -> tuple[str, str]:
    cli = Cli(db.url)
    table = cli("conversations", env=env)
    failure = cli("history", "zzzz", env=env)
    assert table.exit_code == 0 and failure.exit_code == 2
    return table.stdout + table.stderr, failure.stderr


def test_no_escape_codes_when_output_is_not_a_terminal(seeded: TestDatabase) -> None:
    for text in _run_both(seeded, {"NO_COLOR": None}):  # type: ignore[dict-item]
        assert "\x1b[" not in text


def test_colour_on_a_terminal_and_none_with_no_color(seeded: TestDatabase) -> None:
    # FORCE_COLOR makes Rich treat the output as a colour terminal.
    coloured = _run_both(seeded, {"FORCE_COLOR": "1", "NO_COLOR": None})  # type: ignore[dict-item]
    assert COLOUR.search(coloured[1]), coloured[1]
    plain = _run_both(seeded, {"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert not any(COLOUR.search(text) for text in plain)


def test_exit_codes_and_completion_are_documented() -> None:
    help_text = Cli(None)("--help").stdout
    assert "Exit codes: 0 success" in help_text and "2 usage error" in help_text
    assert "--install-completion" in help_text
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert "--install-completion" in docs
    assert "| 2 |" in docs and "NO_COLOR" in docs


def test_shell_completion_completes_commands_and_choices() -> None:
    import os
    import subprocess
    import sys

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_CHATDB_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run([sys.executable, "-m", "chatdb"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("chatdb hi") == ["history"]
    assert complete("chatdb conversations --status ") == ["active", "archived", "all"]


def test_control_characters_in_data_never_reach_the_terminal(seeded: TestDatabase) -> None:
    evil = "clear \x1b[2J\x1b[31mred\x07 [bold]not markup[/bold]"
    seeded.sql(
        "INSERT INTO messages (conversation_id, user_id, role, content, created_at) "
        "VALUES (%s, 'alice', 'user', %s, '2030-01-01Z')",
        (sample_data.ALICE_ACTIVE, evil),
    )
    shown = Cli(seeded.url)("history", sample_data.ALICE_ACTIVE, "-n", "1", env={"FORCE_COLOR": "1"})
    assert shown.exit_code == 0, shown.stderr
    assert "\x1b[2J" not in shown.stdout and "\x07" not in shown.stdout
    assert "\\x1b[2J\\x1b[31mred\\x07" in shown.stdout
    assert "[bold]not markup[/bold]" in shown.stdout
    # JSON keeps the content exactly as stored.
    assert (
        Cli(seeded.url)("history", sample_data.ALICE_ACTIVE, "-n", "1", "--json").json()["messages"][0]["content"]
        == evil
    )
