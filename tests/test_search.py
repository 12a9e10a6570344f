"""`chatdb search`: results equal PostgreSQL's own reference query, the index is used, and built concurrently."""

from __future__ import annotations

import threading

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error

from chatdb.reports.search import INDEX_NAME, LARGE_TABLE_ROWS, SearchQuery, explain_search

TEXTS = [
    "Is it safe to give my dog grapes?",
    "No. Grapes and raisins can cause kidney failure in dogs.",
    "My cat ate a grape, what now?",
    "The dog ate chocolate and grapes yesterday",
    "Recipe: grape jelly with \x1b[31mred\x1b[0m sugar",
    "Nothing about fruit here, only the dog",
    "Raisins in bread are dried grapes",
]
PHRASES = ["grapes", '"dog grapes"', "grapes -raisins", "cat or raisins", "dog"]


def fill(db: TestDatabase, copies: int = 3) -> None:
    db.sql("INSERT INTO users (id) VALUES ('alice'), ('bob')")
    db.sql(
        """
        WITH c AS (
            INSERT INTO conversations (user_id) SELECT u FROM unnest(ARRAY['alice', 'bob']) AS u RETURNING id, user_id
        )
        INSERT INTO messages (conversation_id, user_id, role, content, created_at)
        SELECT c.id, c.user_id, CASE WHEN k %% 2 = 0 THEN 'user' ELSE 'assistant' END, t.text,
               '2026-01-01'::timestamptz + (k * 10 + n) * interval '1 minute'
        FROM c, unnest(%s::text[]) WITH ORDINALITY AS t(text, k), generate_series(1, %s) AS n
        """,
        [TEXTS, copies],
    )


def reference(db: TestDatabase, phrase: str, user: str | None = None) -> list[str]:
    return [
        r[0]
        for r in db.sql(
            """
        SELECT id::text FROM messages
        WHERE to_tsvector('simple', content) @@ websearch_to_tsquery('simple', %(q)s)
          AND (%(u)s::text IS NULL OR user_id = %(u)s)
        ORDER BY ts_rank(to_tsvector('simple', content), websearch_to_tsquery('simple', %(q)s)) DESC,
                 created_at DESC, id DESC
        """,
            {"q": phrase, "u": user},
        )
    ]


def searched(cli: Cli, *args: str) -> list[str]:
    ids, cursor = [], None
    while True:
        result = cli("search", *args, "--limit", "4", "--json", *(["--cursor", cursor] if cursor else []))
        assert result.exit_code == 0, result.stderr
        page = result.json()
        ids += [h["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.parametrize("indexed", [False, True])
def test_results_equal_the_reference_query_page_after_page(migrated_db: TestDatabase, cli: Cli, indexed: bool) -> None:
    fill(migrated_db)
    if indexed:
        assert cli("search", "--create-index").exit_code == 0
    for phrase in PHRASES:
        assert searched(cli, phrase) == reference(migrated_db, phrase), phrase
    assert searched(cli, "grapes", "--user", "bob") == reference(migrated_db, "grapes", "bob")
    # A plain word is what a case-insensitive whole-word match finds.
    words = {r[0] for r in migrated_db.sql(r"SELECT id::text FROM messages WHERE content ~* '\mgrapes\M'")}
    assert set(searched(cli, "grapes")) == words


def test_filters_and_snippet_escaped(migrated_db: TestDatabase, cli: Cli) -> None:
    fill(migrated_db, copies=1)
    result = cli("search", "jelly", "--role", "assistant", "--since", "2026-01-01", "--before", "2027-01-01")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\x1b[31m" in result.stdout
    assert "«jelly»" in result.stdout
    assert "scanning about" in result.stderr and "--create-index" in result.stderr
    hits = cli("search", "grapes", "--role", "user", "--json").json()["hits"]
    assert hits and {h["role"] for h in hits} == {"user"}
    assert_one_line_error(cli("search", "grapes", "--role", "system"), 2, "--role")
    assert_one_line_error(cli("search", "grapes", "--user", "nobody"), 1, "nobody")


def test_index_is_used_when_it_exists_and_recorded(migrated_db: TestDatabase, cli: Cli) -> None:
    fill(migrated_db, copies=200)
    migrated_db.sql("ANALYZE messages")
    database = migrated_db.database()
    assert INDEX_NAME not in explain_search(database, SearchQuery("jelly"))
    report = cli("search", "--create-index", "--config", "english", "--json").json()
    assert report["action"] == "created" and report["after"]["valid"] and report["after"]["config"] == "english"
    assert INDEX_NAME in explain_search(database, SearchQuery("jelly"))
    page = cli("search", "raisin", "--json").json()
    assert page["index_used"] and page["config"] == "english" and page["hits"]  # english stems raisins
    assert cli("search", "--create-index", "--json").exit_code == 1  # another configuration: drop first
    assert cli("search", "--drop-index", "--json").json()["action"] == "dropped"
    assert migrated_db.scalar("SELECT count(*) FROM pg_class WHERE relname = %s", [INDEX_NAME]) == 0


def wait_for_build(db: TestDatabase, build: threading.Thread) -> int:
    """The pid of the concurrent build once PostgreSQL reports it in progress."""
    with db.connect(autocommit=True) as watcher:
        while True:
            row = watcher.execute(
                "SELECT p.pid FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.relid "
                "WHERE c.relname = 'messages'"
            ).fetchone()
            if row:
                return int(row[0])
            assert build.is_alive()


def test_a_failed_build_leaves_an_invalid_index_that_is_found_and_rebuilt(migrated_db: TestDatabase, cli: Cli) -> None:
    fill(migrated_db, copies=1)
    writer = migrated_db.connect()  # an open write: the build waits for it, and is cancelled there
    writer.execute("INSERT INTO users (id) VALUES ('carol')")
    writer.execute(
        "INSERT INTO messages (conversation_id, user_id, role, content) "
        "SELECT id, user_id, 'user', 'held open' FROM conversations LIMIT 1"
    )
    outcome: list[int] = []
    build = threading.Thread(target=lambda: outcome.append(cli("search", "--create-index").exit_code))
    build.start()
    try:
        pid = wait_for_build(migrated_db, build)
        migrated_db.sql("SELECT pg_cancel_backend(%s)", [pid])
        build.join()
    finally:
        writer.rollback()
        writer.close()
    assert outcome == [1]
    assert migrated_db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [INDEX_NAME]) is False
    doctor = cli("doctor", "--json").json()
    assert any(c["name"] == "search index" and "INVALID" in c["detail"] for c in doctor["checks"])
    assert "INVALID" in cli("stats").stdout
    assert cli("search", "grapes", "--json").json()["index_used"] is False  # an invalid index is not counted on
    result = cli("search", "--create-index", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["action"] == "rebuilt" and result.json()["found_invalid"]
    assert "INVALID" in result.stderr
    assert migrated_db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [INDEX_NAME])


def test_the_build_does_not_block_a_concurrent_insert(migrated_db: TestDatabase, cli: Cli) -> None:
    """A writer holds the build in its first wait; another insert must still go through before the build ends."""
    fill(migrated_db, copies=1)
    conversation = migrated_db.scalar("SELECT id FROM conversations WHERE user_id = 'alice'")
    insert = "INSERT INTO messages (conversation_id, user_id, role, content) VALUES (%s, 'alice', 'user', %s)"
    writer = migrated_db.connect()
    writer.execute(insert, [conversation, "first writer mentions kiwis"])  # open transaction: the build waits
    outcome: list[int] = []
    build = threading.Thread(target=lambda: outcome.append(cli("search", "--create-index").exit_code))
    build.start()
    try:
        wait_for_build(migrated_db, build)
        with migrated_db.connect() as other:
            other.execute("SET lock_timeout = '20s'")  # a blocking build would make this fail, not hang
            other.execute(insert, [conversation, "second writer mentions kiwis"])
            other.commit()
        # The build is still waiting for the first writer: the insert did not wait for the build.
        assert build.is_alive()
        assert migrated_db.scalar("SELECT count(*) FROM pg_stat_progress_create_index") == 1
    finally:
        writer.commit()
        writer.close()
        build.join()
    assert outcome == [0]
    hits = cli("search", "kiwis", "--json").json()
    assert hits["index_used"] and len(hits["hits"]) == 2


def test_unindexed_search_of_a_large_table_needs_a_narrowing_filter(migrated_db: TestDatabase, cli: Cli) -> None:
    fill(migrated_db, copies=1)
    # The planner's estimate is what counts: say the table is large without filling it.
    migrated_db.sql("UPDATE pg_class SET reltuples = %s WHERE relname = 'messages'", [LARGE_TABLE_ROWS * 2])
    assert_one_line_error(cli("search", "grapes"), 2, "--create-index", "--user")
    assert cli("search", "grapes", "--user", "alice").exit_code == 0
    assert cli("search", "grapes", "--since", "7d").exit_code == 0
    assert cli("search", "--create-index").exit_code == 0
    assert cli("search", "grapes").exit_code == 0


def test_index_commands_are_refused_on_a_standby(on_standby: tuple[TestDatabase, TestDatabase]) -> None:
    _, replica = on_standby
    for change in ("--create-index", "--drop-index"):
        assert_one_line_error(Cli(replica.url)("search", change), 1, "standby")


def checks(result) -> dict[str, dict]:
    return {check["name"]: check for check in result.json()["checks"]}


def test_the_search_index_is_reported_not_counted_as_unexpected(migrated_db: TestDatabase) -> None:
    cli = Cli(migrated_db.url)
    assert cli("search", "--create-index").exit_code == 0
    result = cli("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    assert checks(result)["schema: indexes"]["status"] == "pass"
    found = checks(result)["search index"]
    assert found["status"] == "pass" and "valid" in found["detail"] and "simple" in found["detail"]
    stats = cli("stats", "--json").json()["search_index"]
    assert stats["exists"] and stats["valid"] and stats["size_bytes"] > 0 and stats["config"] == "simple"
    assert "Search index" in cli("stats").stdout
