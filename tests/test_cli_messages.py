"""What chatdb says, in its own words: usage errors before any connection, names that do not exist,
future cutoffs, JSON reports of failures, global options anywhere, versions."""

from __future__ import annotations

import ast
import json
import re
import socket
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, hold_lease, seed
from test_cli_conventions import COMMANDS

import chatdb
from chatdb import migrations
from chatdb.bench.run import BenchOptions
from chatdb.errors import ConflictError, JobLockedError, UsageError
from chatdb.filters import ConversationFilter
from chatdb.jobs.archive import archive_conversations
from chatdb.jobs.seed import SeedScale
from chatdb.jobs.seed import seed as seed_demo_data
from chatdb.reports.conversations import list_conversations
from chatdb.timeparse import cutoff

ROOT = Path(__file__).resolve().parent.parent
OLD = "2020-01-01T00:00:00+00:00"
UNKNOWN = "2f1c7a0e-4b7e-4a55-9a43-0c1d1f6b7b10"

BAD_INVOCATIONS = [
    (["unarchive"], "say which conversations to unarchive: --conversation, --user"),
    (["archive", "--dry-run"], "archive needs a cutoff (--older-than)"),
    (["prune", "--yes"], "prune needs a cutoff"),
    (["archive", "--before", "2999-01-01"], "is in the future"),
    (["prune", "--older-than", "1y", "--before", "2020-01-01", "--yes"], "give either --older-than or --before"),
    (["export", "--before", "2999-01-01", "-o", "x.jsonl"], "--allow-future"),
    (["conversations", "--before", "2999-01-01"], "--allow-future"),
    (["unarchive", "--before", "2999-01-01"], "--allow-future"),
    (["conversations", "--status", "foo"], "--status: must be active, archived or all, got 'foo'"),
    (["conversations", "-n", "0"], "--limit: must be at least 1, got 0"),
    (["history", "3f2a9c1d", "-n", "x"], "--limit: expected a whole number, got 'x'"),
    (["archive", "--older-than", "1y", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["archive", "--older-than", "1y", "--wait", "-1"], "--wait: must be 0 or more seconds"),
    (["export", "-o", ""], "--output: needs a file name, or - for stdout"),
    (["export", "-o", ".", "--json"], "is a directory"),
    (["export", "-o", "-", "--json"], "--json needs -o FILE"),
    (["history", "3f2a9c1d", "--before", UNKNOWN, "--after", UNKNOWN], "name the same message"),
    (["history", "3f2a9c1d", "--before", "zz"], "--before: malformed message id 'zz'"),
    (["unarchive", "--conversation", "zz"], "--conversation: malformed conversation id 'zz'"),
    (["unarchive", "--conversation", "3f2"], "--conversation: conversation id prefix '3f2' is too short"),
    (["conversations", "--user", ""], "--user: an empty user id would select every user"),
    (["seed", "--messages", "5", "--conversations", "10"], "--messages (5) must be at least --conversations (10)"),
    (["bench", "--duration", "0"], "--duration must be positive, got 0"),
    (
        ["status", "--database-url", "postgresql://u:pw@h/db?foo=bar"],
        "query parameter number 1 of 1 is not a connection",
    ),
    (["status", "--database-url", "postgresql://u@h/db?foo=bar"], "has 'foo', which is not a connection parameter"),
]


@pytest.mark.parametrize("args, message", BAD_INVOCATIONS, ids=[" ".join(a) for a, _ in BAD_INVOCATIONS])
def test_usage_errors_start_no_server_and_connect_nowhere(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No URL is configured: a command that got as far as connecting would start the embedded server."""
    embedded_dir = tmp_path / "embedded"
    monkeypatch.setenv("CHATDB_EMBEDDED_DIR", str(embedded_dir))
    monkeypatch.chdir(tmp_path)
    result = Cli(None)(*args)
    assert_one_line_error(result, 2, message)
    assert "Using the embedded PostgreSQL" not in result.stderr
    assert "pw" not in result.stderr.replace("pw@", "***@").replace(":***", "")
    assert not embedded_dir.exists()


def test_usage_errors_with_json_are_a_json_report_too() -> None:
    result = Cli(None)("conversations", "--status", "foo", "--json")
    assert result.exit_code == 2
    assert result.json() == {
        "ok": False,
        "error": "--status: must be active, archived or all, got 'foo' (see 'chatdb conversations --help')",
        "exit_code": 2,
        "progress": None,
    }
    assert result.stderr.strip() == f"Error: {result.json()['error']}"


def test_library_errors_name_parameters_not_options(migrated_db: TestDatabase) -> None:
    with pytest.raises(UsageError, match=r"^users: an empty user id") as empty:
        ConversationFilter.build(users=[""])
    assert "--" not in str(empty.value)
    with pytest.raises(UsageError, match=r"^give either older_than or before, not both$"):
        cutoff("90d", "2024-01-01")
    with pytest.raises(UsageError, match="pass allow_future if that is meant"):
        ConversationFilter.build(older_than=cutoff(None, "2999-01-01"))
    with pytest.raises(UsageError, match=r"^limit: must be at least 1, got 0$"):
        list_conversations(migrated_db.database(), limit=0)
    with pytest.raises(UsageError, match=r"^messages \(5\) must be at least conversations \(10\): "):
        SeedScale.build(messages=5, conversations=10)
    with pytest.raises(UsageError, match=r"^duration must be positive, got 0"):
        BenchOptions(duration=0).checked()
    seed(migrated_db, 1, updated=OLD)
    with pytest.raises(ConflictError, match=r"unless you pass force$"):
        seed_demo_data(migrated_db.database(), SeedScale.build(messages=2))
    hold_lease(migrated_db)
    with pytest.raises(JobLockedError) as locked:
        archive_conversations(migrated_db.database(), ConversationFilter.build(older_than=cutoff("1y", None)))
    assert "or with wait SECONDS to wait for it" in str(locked.value) and "--" not in str(locked.value)
    # The command line says the same with its own options.
    cli = Cli(migrated_db.url)
    assert_one_line_error(cli("archive", "--older-than", "1y"), 3, "or with --wait SECONDS to wait for it")
    assert_one_line_error(cli("seed", "--messages", "2"), 1, "unless you pass --force")


COMMAND_NAMES = {name for (name, *_), _ in COMMANDS}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def test_no_library_text_names_an_option() -> None:
    """Outside cli/, a string may name an option only as part of a chatdb command to run ("seed --remove")."""
    found = []
    for path in sorted((ROOT / "chatdb").rglob("*.py")):
        if "cli" in path.relative_to(ROOT / "chatdb").parts:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
                continue
            for flag in FLAG.finditer(node.value):
                before = node.value[: flag.start()].split()
                if not before or before[-1] not in COMMAND_NAMES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_named_users_and_conversations_must_exist(migrated_db: TestDatabase, tmp_path: Path) -> None:
    ids = seed(migrated_db, 3, updated=OLD, status="archived")
    cli = Cli(migrated_db.url)
    assert_one_line_error(cli("unarchive", "--conversation", UNKNOWN), 1, f"no conversation has id '{UNKNOWN}'")
    assert_one_line_error(
        cli("export", "--user", "nobody", "-o", str(tmp_path / "x.jsonl")), 1, "no user 'nobody' in the users table"
    )
    assert not (tmp_path / "x.jsonl").exists()
    assert_one_line_error(
        cli("conversations", "--user", "alice", "--user", "bob", "--user", "carol"),
        1,
        "no users 'bob', 'carol' in the users table",
    )
    assert_one_line_error(cli("archive", "--older-than", "1y", "--user", "ghost", "--dry-run"), 1, "'ghost'")
    assert count(migrated_db, "status = 'archived'") == 3

    # A short prefix names a conversation, as in chatdb history.
    prefix = ids[0][:8]
    done = cli("unarchive", "--conversation", prefix, "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["ok"] is True and done.json()["changed"] == 1
    assert done.json()["selection"]["conversations"] == [ids[0]]
    assert migrated_db.scalar("SELECT status FROM conversations WHERE id = %s", (ids[0],)) == "active"
    assert_one_line_error(
        cli("unarchive", "--conversation", "ffffffff"), 1, "no conversation id starts with 'ffffffff'"
    )
    migrated_db.sql(
        "INSERT INTO conversations (id, user_id, status) VALUES "
        "('abcd0000-0000-4000-8000-000000000001', 'alice', 'archived'), "
        "('abcd0000-0000-4000-8000-000000000002', 'alice', 'archived')"
    )
    assert_one_line_error(cli("unarchive", "--conversation", "abcd"), 2, "is ambiguous")


def test_a_future_cutoff_is_refused_unless_allowed(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 4, updated=OLD)
    cli = Cli(migrated_db.url)
    assert_one_line_error(cli("archive", "--before", "2999-01-01"), 2, "pass --allow-future if that is meant")
    assert count(migrated_db, "status = 'archived'") == 0
    allowed = cli("archive", "--before", "2999-01-01", "--allow-future", "--json")
    assert allowed.exit_code == 0 and allowed.json()["changed"] == 4


def test_success_and_failure_json_of_a_job(migrated_db: TestDatabase) -> None:
    seed(migrated_db, 2, updated=OLD)
    cli = Cli(migrated_db.url)
    done = cli("archive", "--older-than", "1y", "--json")
    assert list(done.json())[:2] == ["ok", "job"] and done.json()["ok"] is True
    hold_lease(migrated_db)
    locked = cli("prune", "--older-than", "1y", "--yes", "--json")
    assert locked.exit_code == 3
    report = locked.json()
    assert report == {"ok": False, "error": report["error"], "exit_code": 3, "progress": None}
    assert "the maintenance lock on" in report["error"] and "is held by prune pid 4242" in report["error"]
    assert locked.stderr.strip() == f"Error: {report['error']}"


def test_history_ranges_and_paging_hints(migrated_db: TestDatabase) -> None:
    import sample_data

    sample_data.seed(migrated_db, messages_in_alice_active=12)
    ids = [
        r[0]
        for r in migrated_db.sql(
            "SELECT id::text FROM messages WHERE conversation_id = %s ORDER BY created_at, id",
            (sample_data.ALICE_ACTIVE,),
        )
    ]
    cli = Cli(migrated_db.url)
    assert_one_line_error(
        cli("history", "aaaa1111", "--after", ids[8], "--before", ids[2]),
        2,
        "--after must name an older message than --before",
    )
    for mode in ("--json", "--csv"):
        page = cli("history", "aaaa1111", "-n", "5", mode)
        assert page.exit_code == 0, page.stderr
        assert (
            page.stderr.strip() == f"Older messages: chatdb history {sample_data.ALICE_ACTIVE} --before {ids[7]} -n 5"
        )
    report = cli("history", "aaaa1111", "-n", "5", "--json").json()["page"]
    assert report["older"] == ids[7] and report["newer"] is None
    forward = cli("history", "aaaa1111", "--after", ids[1], "-n", "3", "--json")
    assert forward.json()["page"]["newer"] == ids[4]
    assert f"--after {ids[4]} -n 3" in forward.stderr and f"--before {ids[2]} -n 3" in forward.stderr


def test_global_options_after_the_command(migrated_db: TestDatabase) -> None:
    result = Cli(None)("status", "--json", "--database-url", migrated_db.url, "--debug")
    assert result.exit_code == 0, result.stderr
    assert result.json()["current"] == migrated_db.scalar("SELECT version_num FROM chatdb_alembic_version")
    help_text = Cli(None)("status", "--help").stdout
    assert "--database-url" in help_text and "--no-pager" in help_text


def test_versions(migrated_db: TestDatabase) -> None:
    short = Cli(None)("--version")
    assert short.exit_code == 0 and short.stdout == f"chatdb {chatdb.__version__}\n"
    report = Cli(migrated_db.url)("version", "--json").json()
    assert report["chatdb"] == chatdb.__version__
    assert report["schema_revision"] == report["schema_head"] == migrations.head()
    assert report["server_version"] == migrated_db.scalar("SHOW server_version")


def test_a_connect_timeout_names_the_host() -> None:
    with socket.socket() as silent:  # accepts the connection, then never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = Cli(f"postgresql://u:pw@127.0.0.1:{port}/db")("status", env={"CHATDB_CONNECT_TIMEOUT": "1"})
    assert_one_line_error(result, 1, f"no answer from 127.0.0.1 port {port} within 1s (CHATDB_CONNECT_TIMEOUT)")
    assert "pw" not in result.stderr


def test_export_to_stdout_with_its_manifest_elsewhere(migrated_db: TestDatabase, tmp_path: Path) -> None:
    import hashlib

    seed(migrated_db, 5, updated=OLD, messages=3)
    manifest = tmp_path / "m.json"
    result = Cli(migrated_db.url)("export", "-o", "-", "--manifest", str(manifest))
    assert result.exit_code == 0, result.stderr
    assert not Path("-").exists()
    assert len(result.stdout.splitlines()) == 5
    written = json.loads(manifest.read_text())
    assert written["sha256"] == hashlib.sha256(result.stdout.encode()).hexdigest()
    assert (written["conversations"], written["messages"]) == (5, 15)
    assert oct(manifest.stat().st_mode & 0o777) == "0o600"
    assert written["sha256"] in result.stderr  # the summary line on stderr names it too
    assert_one_line_error(
        Cli(migrated_db.url)("export", "-o", str(tmp_path / "f.jsonl"), "--manifest", str(manifest)),
        2,
        "--manifest is for stdout output",
    )
