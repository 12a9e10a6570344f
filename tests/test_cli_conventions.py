"""Conventions every command shares: help with an example, fast start, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Cli, assert_one_line_error
from typer.main import get_command

from chatdb.cli import app

ROOT = Path(__file__).resolve().parent.parent


def all_commands():
    root = get_command(app)
    stack = [((), root)]
    while stack:
        path, command = stack.pop()
        sub = getattr(command, "commands", None)
        if sub:
            stack.extend(((*path, name), cmd) for name, cmd in sub.items())
        else:
            yield path, command


COMMANDS = sorted(all_commands(), key=lambda item: item[0])


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = Cli(None)(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Example:" in result.stdout
    assert f"chatdb {' '.join(path)}" in result.stdout.split("Example:")[1]


def test_every_command_is_documented() -> None:
    docs = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md")) + (ROOT / "README.md").read_text()
    missing = [" ".join(path) for path, _ in COMMANDS if f"chatdb {' '.join(path)}" not in docs]
    assert missing == []


def test_help_does_not_import_the_database_stack() -> None:
    code = "import sys; from chatdb.cli import app; print(sorted(m for m in ('sqlalchemy', 'alembic', 'psycopg', 'chatdb.models') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "chatdb", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "migrate" in out.stdout


def test_unknown_command_and_option_are_usage_errors() -> None:
    assert_one_line_error(Cli(None)("frobnicate"), 2, "No such command")
    assert_one_line_error(Cli(None)("status", "--nope"), 2, "No such option")


def test_no_arguments_prints_help() -> None:
    result = Cli(None)()
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_number_is_read_in_chatdbs_words(path: tuple[str, ...], command) -> None:
    """An int or float parameter without chatdb's parser answers bad input in Typer's words ("Input should be…")."""
    bare = []
    for param in command.params:
        described = param.type_descriptor
        numeric = described.annotation in (int, float, int | None, float | None)
        if numeric and getattr(described.parameter_info, "parser", None) is None:
            bare.append(param.name)
    assert bare == [], f"chatdb {' '.join(path)}: give {bare} a parser from chatdb.cli._options (count_param, …)"
