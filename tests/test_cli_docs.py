"""docs/cli.md against the commands: fences that close, every command and its --help examples documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import Cli
from test_cli_conventions import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "cli.md").read_text()


def test_code_fences_are_balanced() -> None:
    """Each ``` opens a block and the next one closes it; a fence never sits inside a block."""
    fences = [n for n, line in enumerate(DOCS.splitlines(), 1) if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, f"an unclosed fence near line {fences[-1]}"
    lines = DOCS.splitlines()
    for opening, closing in zip(fences[::2], fences[1::2]):
        assert lines[closing - 1].strip() == "```", f"line {closing} should close the block opened at {opening}"
        inside = lines[opening : closing - 1]
        assert not any(line.startswith("## ") for line in inside), f"a heading inside the block at line {opening}"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_and_its_help_examples_are_in_the_docs(path: tuple[str, ...]) -> None:
    assert f"## chatdb {path[0]}" in DOCS
    help_text = Cli(None)(*path, "--help").stdout
    examples = []
    for line in help_text.split("Example:")[1].splitlines()[1:]:
        if line.strip() and not line.startswith(" "):
            break  # the next section (Arguments:, Options:)
        if line.strip():
            examples.append(line.strip())
    assert examples
    for example in examples:
        assert example in DOCS, f"{example!r} (from chatdb {' '.join(path)} --help) is not in docs/cli.md"


def test_every_option_is_documented() -> None:
    missing = []
    for path, command in COMMANDS:
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if (
                    opt.startswith("--")
                    and opt not in ("--help", "--database-url", "--debug", "--no-pager")
                    and opt not in DOCS
                ):
                    missing.append(f"chatdb {' '.join(path)} {opt}")
    assert missing == []


def test_help_lists_every_command_with_its_whole_summary() -> None:
    help_text = Cli(None)("--help", env={"COLUMNS": "80"}).stdout
    listed = " ".join(help_text.split("Commands:")[1].split())
    assert "..." not in listed
    for (name, *rest), command in COMMANDS:
        if rest:
            continue
        summary = " ".join(command.help.strip().split("\n\n")[0].split())
        assert f"{name} {summary}" in listed, name
    assert re.search(r"embedded\s+Show, start or stop the embedded PostgreSQL", help_text)


def test_dry_run_help_promises_what_each_command_prints(migrated_db) -> None:
    from jobdata import seed

    def dry_run_help(command: str) -> str:
        text = Cli(None)(command, "--help", env={"COLUMNS": "200"}).stdout
        options = text.split("Options:")[1]
        return " ".join(options.split("--dry-run", 1)[1].split("\n  -")[0].split())

    for command in ("prune", "import"):
        assert "sample" not in dry_run_help(command) and "first few" not in dry_run_help(command)
    assert "first few matching conversations" in dry_run_help("archive")
    seed(migrated_db, 7, updated="2020-01-01T00:00:00+00:00")
    shown = Cli(migrated_db.url)("archive", "--older-than", "1y", "--dry-run")
    assert "First 5 of 7, oldest activity first" in shown.stdout
    pruned = Cli(migrated_db.url)("prune", "--older-than", "1y", "--dry-run", "--include-active")
    assert "Row bytes: " in pruned.stdout and "First" not in pruned.stdout


def _block_after(marker: str) -> str:
    """The code block that follows ``marker`` in docs/cli.md."""
    rest = DOCS.split(marker, 1)[1]
    return rest.split("```\n", 1)[1].split("\n```", 1)[0] + "\n"


def test_the_conversations_samples_are_what_the_command_draws(migrated_db) -> None:
    """The listing at 120 and 80 columns in docs/cli.md, drawn again from the rows it shows."""
    from chatdb.jobs.seed import seed_user_ids

    wide = _block_after("At 120 columns:")
    rows = [line.split() for line in wide.splitlines()[2:]]
    assert rows and {row[1] for row in rows} <= set(seed_user_ids(1000))  # ids as seed writes them today
    for conversation, user, status, messages, day, time in rows:
        migrated_db.sql("INSERT INTO users (id) VALUES (%s) ON CONFLICT DO NOTHING", (user,))
        migrated_db.sql(
            "INSERT INTO conversations (id, user_id, status) VALUES (%s, %s, %s)", (conversation, user, status)
        )
        for _ in range(int(messages)):
            migrated_db.sql(
                "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, %s, 'user', 'hi')",
                (conversation, user),
            )
        migrated_db.sql("UPDATE conversations SET updated_at = %s WHERE id = %s", (f"{day} {time}", conversation))
    for columns, marker in ((120, "At 120 columns:"), (80, "as records:")):
        shown = Cli(migrated_db.url)(
            "conversations", env={"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": str(columns), "PGTZ": "UTC"}
        )
        assert shown.exit_code == 0, shown.stderr
        assert shown.stdout == _block_after(marker), columns


def _captured_samples() -> list[tuple[list[str], list[str]]]:
    """Each ```text block of docs/cli.md holding ``$ chatdb …`` runs: (arguments, printed lines) per run."""
    runs = []
    for block in re.findall(r"```text\n(.*?)\n```", DOCS, re.S):
        for run in re.split(r"\n\n(?=\$ chatdb )", block):
            if run.startswith("$ chatdb "):
                first, *printed = run.splitlines()
                runs.append((first.removeprefix("$ chatdb ").split(), printed))
    return runs


def _labels(lines: list[str]) -> list[str]:
    """What a summary line says before its value ("Matched" of "Matched: 731"); rows and titles are not labels."""
    return [line.rsplit(": ", 1)[0] for line in lines if ": " in line and "\t" not in line]


def test_the_captured_summaries_are_what_the_commands_print(migrated_db, tmp_path, monkeypatch) -> None:
    """Run in the order the docs show them, each run prints the same fields in the same order."""
    runs = [
        (args, printed)
        for args, printed in _captured_samples()
        if args[0] in ("status", "seed", "archive", "export", "prune", "import")
    ]
    assert {args[0] for args, _ in runs} == {"status", "seed", "archive", "export", "prune", "import"}
    monkeypatch.chdir(tmp_path)
    cli = Cli(migrated_db.url)
    order = ["status", "seed", "archive", "export", "prune", "import"]
    for args, printed in sorted(runs, key=lambda run: order.index(run[0][0])):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert _labels(result.stdout.splitlines()) == _labels(printed), args
