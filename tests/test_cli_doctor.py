"""`chatdb doctor`: each check, on healthy and damaged databases."""

from __future__ import annotations

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error, catalog

CHECKS = [
    "connection",
    "server version",
    "server role",
    "endpoint",
    "migrations",
    "users table",
    "schema: tables, columns, keys",
    "schema: check constraints",
    "schema: indexes",
    "search index",
    "pg_stat_statements",
]
FACTS = {"server role", "search index", "pg_stat_statements"}  # reported as information, never pass or fail


def checks_of(result) -> dict[str, dict]:
    return {check["name"]: check for check in result.json()["checks"]}


def test_a_healthy_database_passes_everything(migrated_db: TestDatabase) -> None:
    before = catalog(migrated_db, ["users", "conversations", "messages"])
    result = Cli(migrated_db.url)("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        name: "info" if name in FACTS else "pass" for name in CHECKS
    }
    assert report["ok"] is True and report["summary"] == {"pass": 8, "warn": 0, "fail": 0, "info": 3}
    assert checks_of(result)["server role"]["detail"] == "primary, read-write"
    assert checks_of(result)["endpoint"]["detail"].startswith(("direct connection", "local socket"))
    version = migrated_db.scalar("SHOW server_version")
    assert version in checks_of(result)["server version"]["detail"]
    assert "created by chatdb" in checks_of(result)["users table"]["detail"]
    # Looking changed nothing, and left no temporary tables behind.
    assert catalog(migrated_db, ["users", "conversations", "messages"]) == before
    assert migrated_db.scalar("SELECT count(*) FROM pg_class WHERE relpersistence = 't'") == 0


def test_table_output(migrated_db: TestDatabase) -> None:
    result = Cli(migrated_db.url)("doctor")
    assert result.exit_code == 0, result.stderr
    for name in CHECKS:
        assert name in result.stdout
    assert result.stdout.count("PASS") == len(CHECKS) - len(FACTS)
    assert result.stdout.count("INFO") == len(FACTS)
    assert "FAIL" not in result.stdout and "WARN" not in result.stdout


def test_a_database_without_chatdb(empty_db: TestDatabase) -> None:
    result = Cli(empty_db.url)("doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["connection"]["status"] == "pass"
    assert checks["migrations"]["status"] == "fail" and "chatdb migrate" in checks["migrations"]["detail"]
    assert checks["users table"]["status"] == "fail"
    assert checks["schema: tables, columns, keys"]["status"] == "fail"
    assert "table conversations is missing" in checks["schema: tables, columns, keys"]["problems"]
    assert result.json()["ok"] is False
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("Error: 3 check(s) failed")


def test_migrations_behind_head(migrated_db: TestDatabase) -> None:
    assert Cli(migrated_db.url)("migrate", "001", "--yes").exit_code == 0
    result = Cli(migrated_db.url)("doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["migrations"]["status"] == "fail"
    assert checks["migrations"]["problems"] == [
        "pending 002: Create messages table.",
        "pending 003: Create chatdb_job_lease, the lease that keeps maintenance jobs apart.",
        "pending 004: Create chatdb_hold, the legal holds that keep conversations from being deleted.",
    ]
    assert "table messages is missing" in checks["schema: tables, columns, keys"]["problems"]


def test_index_missing_changed_or_extra(migrated_db: TestDatabase) -> None:
    migrated_db.sql("DROP INDEX idx_conversations_user_status")
    migrated_db.sql("DROP INDEX idx_conversations_updated_at")
    migrated_db.sql("CREATE INDEX idx_conversations_updated_at ON conversations (updated_at)")  # not DESC
    migrated_db.sql("CREATE INDEX ops_messages_role ON messages (role)")
    result = Cli(migrated_db.url)("doctor", "--json")
    assert result.exit_code == 1
    indexes = checks_of(result)["schema: indexes"]
    assert indexes["status"] == "fail"
    problems = "\n".join(indexes["problems"])
    assert "index conversations.idx_conversations_user_status is missing" in problems
    assert "index conversations.idx_conversations_updated_at is CREATE INDEX" in problems
    assert "(updated_at DESC)" in problems
    assert "unexpected index messages.ops_messages_role" in problems
    assert len(indexes["problems"]) == 3
    # Alembic's own index comparison is left out, so nothing is reported twice.
    assert checks_of(result)["schema: tables, columns, keys"]["status"] == "pass"


def test_an_extra_index_alone_is_a_warning(migrated_db: TestDatabase) -> None:
    migrated_db.sql("CREATE INDEX ops_messages_role ON messages (role)")
    result = Cli(migrated_db.url)("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    assert checks_of(result)["schema: indexes"]["status"] == "warn"
    assert result.json()["summary"] == {"pass": 7, "warn": 1, "fail": 0, "info": 3}


def test_check_constraints_are_compared(migrated_db: TestDatabase) -> None:
    migrated_db.sql("ALTER TABLE conversations DROP CONSTRAINT conversations_status_check")
    migrated_db.sql(
        "ALTER TABLE conversations ADD CONSTRAINT conversations_status_check "
        "CHECK (status IN ('active', 'archived', 'deleted'))"
    )
    migrated_db.sql("ALTER TABLE messages DROP CONSTRAINT chk_user_message_length")
    result = Cli(migrated_db.url)("doctor", "--json")
    assert result.exit_code == 1
    check = checks_of(result)["schema: check constraints"]
    assert check["status"] == "fail"
    problems = "\n".join(check["problems"])
    assert "conversations.conversations_status_check is CHECK" in problems and "deleted" in problems
    assert "messages.chk_user_message_length is missing" in problems
    # Alembic alone would not have noticed.
    assert checks_of(result)["schema: tables, columns, keys"]["status"] == "pass"


@pytest.mark.parametrize(
    ("ddl", "status", "fragment"),
    [
        ("ALTER TABLE messages ADD COLUMN note text", "warn", "unexpected column messages.note"),
        ("ALTER TABLE messages ADD COLUMN tenant integer NOT NULL", "fail", "unexpected column messages.tenant"),
        ("ALTER TABLE messages DROP COLUMN metadata", "fail", "column messages.metadata is missing"),
        (
            "ALTER TABLE messages ALTER COLUMN content TYPE varchar(500)",
            "fail",
            "column messages.content is VARCHAR(500)",
        ),
        (
            "ALTER TABLE conversations ALTER COLUMN updated_at DROP NOT NULL",
            "fail",
            "conversations.updated_at should be NOT NULL",
        ),
        (
            "ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey",
            "fail",
            "messages_conversation_id_fkey is missing",
        ),
    ],
)
def test_column_and_key_drift(migrated_db: TestDatabase, ddl: str, status: str, fragment: str) -> None:
    migrated_db.sql(ddl)
    result = Cli(migrated_db.url)("doctor", "--json")
    check = checks_of(result)["schema: tables, columns, keys"]
    assert check["status"] == status, check
    assert any(fragment in problem for problem in check["problems"]), check["problems"]
    assert result.exit_code == (1 if status == "fail" else 0)


@pytest.mark.parametrize(
    ("ddl", "status", "fragment"),
    [
        ("CREATE TABLE users (id varchar(255) PRIMARY KEY, email text)", "pass", "the application's"),
        ("CREATE TABLE users (id text PRIMARY KEY)", "pass", "id text"),
        ("CREATE TABLE users (id integer PRIMARY KEY)", "fail", "users.id is integer"),
        ("CREATE TABLE users (id varchar(255))", "fail", "no primary key or unique"),
        ("CREATE TABLE users (uid varchar(255) PRIMARY KEY)", "fail", "no id column"),
    ],
)
def test_the_applications_users_table(empty_db: TestDatabase, ddl: str, status: str, fragment: str) -> None:
    empty_db.sql(ddl)
    check = checks_of(Cli(empty_db.url)("doctor", "--json"))["users table"]
    assert check["status"] == status
    assert fragment in check["detail"]


def test_an_unreachable_server(empty_db: TestDatabase) -> None:
    url = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    result = Cli(url)("doctor", "--json", env={"CHATDB_CONNECT_TIMEOUT": "2"})
    assert result.exit_code == 1
    report = result.json()
    assert [c["name"] for c in report["checks"]] == ["connection"]
    assert report["checks"][0]["status"] == "fail"
    assert "s3cret" not in result.stdout + result.stderr
    assert "***" in report["database"]
    assert_one_line_error(Cli(url)("doctor", env={"CHATDB_CONNECT_TIMEOUT": "2"}), 1, "connection")


def test_a_malformed_url_is_a_usage_error() -> None:
    assert_one_line_error(Cli("mysql://x@y/z")("doctor"), 2, "unsupported URL scheme")


def test_doctor_says_whether_pg_stat_statements_is_available(migrated_db: TestDatabase) -> None:
    def detail() -> str:
        result = Cli(migrated_db.url)("doctor", "--json")
        assert result.exit_code == 0, result.stderr
        check = checks_of(result)["pg_stat_statements"]
        assert check["status"] == "info"
        return check["detail"]

    assert detail().startswith("not installed in this database (CREATE EXTENSION pg_stat_statements")
    preloaded = migrated_db.scalar("SHOW shared_preload_libraries") or ""
    migrated_db.sql("CREATE EXTENSION pg_stat_statements")
    if "pg_stat_statements" in preloaded:
        assert detail().startswith("available (")
    else:  # installed in the database, but the server did not load the library
        assert detail().startswith("installed (") and "shared_preload_libraries" in detail()
