"""Configuration, URL forms, masking, pool settings and connection failures."""

from __future__ import annotations

import uuid

import pytest
from helpers import Cli, Server, TestDatabase, assert_one_line_error, with_database

from chatdb.config import Settings, load_settings, mask_url, normalize_url
from chatdb.db import Database, engine_options
from chatdb.errors import ConfigurationError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example.com/app", "postgresql+psycopg://u:p@db.example.com/app"),
        ("postgresql://u:p@db.example.com:6543/app", "postgresql+psycopg://u:p@db.example.com:6543/app"),
        ("postgresql+psycopg://u@h/app", "postgresql+psycopg://u@h/app"),
        (
            "postgresql://u:p@ep-cool-1234-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require",
            "postgresql+psycopg://u:p@ep-cool-1234-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require",
        ),
        ("  postgresql://u@h/app\n", "postgresql+psycopg://u@h/app"),
    ],
)
def test_url_forms_are_normalized_to_psycopg(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "mysql://u@h/db",
        "just-a-name",
        "postgresql://u@h:notaport/db",
        "sqlite:///x.db",
        "postgresql://u@h\x80st/db",
    ],
)
def test_bad_urls_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        normalize_url(bad)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cr3t@h:5432/db", "postgresql://app:***@h:5432/db"),
        ("postgresql://app:p%40ss@h/db?sslmode=require", "postgresql://app:***@h/db?sslmode=require"),
        ("postgresql://app@h/db?password=s3cr3t&sslmode=require", "postgresql://app@h/db?password=***&sslmode=require"),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_prepared_statements_are_off_unless_asked_for_or_embedded() -> None:
    """Off for any URL (a pooler cannot be told from its host name), on for chatdb's own server."""
    pooled = Settings(url=normalize_url("postgresql://u:p@ep-x-123-pooler.us-east-2.aws.neon.tech/db?sslmode=require"))
    direct = Settings(url=normalize_url("postgresql://u:p@ep-x-123.us-east-2.aws.neon.tech/db?sslmode=require"))
    own_bouncer = Settings(url=normalize_url("postgresql://u:p@db.internal:6432/app"))
    for settings in (pooled, direct, own_bouncer):
        assert settings.use_prepared_statements is False
        assert engine_options(settings)["connect_args"]["prepare_threshold"] is None
    embedded = Settings(url=normalize_url("postgresql://postgres@/chatdb?host=/tmp/x"), source="embedded")
    assert embedded.use_prepared_statements is True
    assert "prepare_threshold" not in engine_options(embedded)["connect_args"]
    forced = Settings(url=direct.url, prepared_statements="on")
    assert forced.use_prepared_statements is True
    assert "prepare_threshold" not in engine_options(forced)["connect_args"]
    assert Settings(url=embedded.url, source="embedded", prepared_statements="off").use_prepared_statements is False


def test_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-database-url/db")
    assert load_settings().url == "postgresql+psycopg://from-database-url/db"
    assert load_settings().source == "DATABASE_URL"
    monkeypatch.setenv("CHATDB_DATABASE_URL", "postgres://from-chatdb/db")
    assert load_settings().url == "postgresql+psycopg://from-chatdb/db"
    assert load_settings("postgresql://from-option/db").url == "postgresql+psycopg://from-option/db"


def test_pool_defaults_are_the_plans_and_can_be_changed(
    monkeypatch: pytest.MonkeyPatch, migrated_db: TestDatabase
) -> None:
    monkeypatch.setenv("CHATDB_DATABASE_URL", migrated_db.url)
    with Database(load_settings()) as db:
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (10, 20, 30.0, 3600)
        assert pool._pre_ping is True
        assert db.server_version()
    monkeypatch.setenv("CHATDB_POOL_SIZE", "3")
    monkeypatch.setenv("CHATDB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("CHATDB_POOL_RECYCLE", "60")
    with Database(load_settings()) as db:
        assert (db.engine.pool.size(), db.engine.pool._max_overflow, db.engine.pool._recycle) == (3, 0, 60)


def test_bad_pool_setting_is_a_usage_error(migrated_db: TestDatabase) -> None:
    result = Cli(migrated_db.url)("status", env={"CHATDB_POOL_SIZE": "lots"})
    assert_one_line_error(result, 2, "CHATDB_POOL_SIZE")


def test_unreachable_server(migrated_db: TestDatabase) -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/chatdb"
    result = Cli(None)("--database-url", url, "status")
    assert_one_line_error(result, 1, "cannot connect to postgresql+psycopg://app:***@127.0.0.1:1/chatdb")
    assert "hunter2" not in result.stdout + result.stderr


def test_unreachable_server_from_environment_in_json_mode(migrated_db: TestDatabase) -> None:
    result = Cli("postgresql://app:hunter2@127.0.0.1:1/chatdb")("status", "--json")
    assert_one_line_error(result, 1, "cannot connect")
    # stdout carries the same failure as one JSON object (docs/cli.md, "JSON when something fails").
    assert result.json() == {
        "ok": False,
        "error": result.stderr.strip().removeprefix("Error: "),
        "exit_code": 1,
        "progress": None,
    }
    assert "hunter2" not in result.stderr + result.stdout


def test_missing_database(pg_server: Server) -> None:
    name = f"missing_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_server.admin_url, name)
    result = Cli(url)("migrate")
    assert_one_line_error(result, 1, f'database "{name}" does not exist')


def test_wrong_password(pg_server: Server, migrated_db: TestDatabase) -> None:
    if not pg_server.embedded:
        pytest.skip("needs a server whose authentication the suite controls (the embedded one)")
    role = f"pw_{uuid.uuid4().hex[:8]}"
    migrated_db.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password'")
    migrated_db.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    pg_server.require_password_for(role)
    try:
        base = with_database(pg_server.admin_url, migrated_db.name)
        right = base.replace("postgresql://postgres:@", f"postgresql://{role}:right-password@")
        wrong = base.replace("postgresql://postgres:@", f"postgresql://{role}:wrong-password@")
        assert Cli(right)("status", "--json").exit_code == 0
        result = Cli(wrong)("status")
        assert_one_line_error(result, 1, f'authentication failed for user "{role}"')
        assert "wrong-password" not in result.stderr
    finally:
        migrated_db.sql(f"DROP OWNED BY {role}")
        migrated_db.sql(f"DROP ROLE {role}")


def test_malformed_url_option_is_a_usage_error() -> None:
    result = Cli(None)("--database-url", "mysql://root:pw@localhost/db", "status")
    assert_one_line_error(result, 2, "unsupported URL scheme")
    assert "pw@" not in result.stderr


def test_debug_shows_a_traceback_without_the_password() -> None:
    result = Cli(None)("--debug", "--database-url", "postgresql://app:hunter2@127.0.0.1:1/x", "status")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "hunter2" not in result.stderr


def test_an_empty_url_option_is_refused_rather_than_ignored(migrated_db: TestDatabase) -> None:
    result = Cli(migrated_db.url)("--database-url=", "status")
    assert_one_line_error(result, 2, "the database URL is empty")
