"""`chatdb seed`: realistic demo data at a chosen scale, labelled, and removable."""

from __future__ import annotations

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error

PREFIX = "chatdb-seed-"


def seeded_counts(db: TestDatabase) -> tuple[int, int, int]:
    return db.sql(
        "SELECT (SELECT count(*) FROM users WHERE starts_with(id, %(p)s)),"
        " (SELECT count(*) FROM conversations WHERE starts_with(user_id, %(p)s)),"
        " (SELECT count(*) FROM messages WHERE starts_with(user_id, %(p)s))",
        {"p": PREFIX},
    )[0]


def add_real_conversation(db: TestDatabase) -> None:
    db.sql("INSERT INTO users (id) VALUES ('alice')")
    db.sql(
        "WITH c AS (INSERT INTO conversations (user_id) VALUES ('alice') RETURNING id) "
        "INSERT INTO messages (conversation_id, user_id, role, content) "
        "SELECT id, 'alice', 'user', 'hello' FROM c"
    )


def test_seed_creates_exactly_the_requested_scale(cli: Cli, migrated_db: TestDatabase) -> None:
    result = cli("seed", "--messages", "4800", "--conversations", "100", "--users", "7", "--batch", "500", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["users"], report["conversations"], report["messages"]) == (7, 100, 4800)
    assert report["user_prefix"] == PREFIX
    assert seeded_counts(migrated_db) == (7, 100, 4800)
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 4800


def test_seeded_data_looks_like_a_chatbot(cli: Cli, migrated_db: TestDatabase) -> None:
    assert cli("seed", "--messages", "4800", "--conversations", "100", "--batch", "700").exit_code == 0
    db = migrated_db
    # Roles alternate, starting with the user, in every conversation.
    assert (
        db.scalar(
            "SELECT count(*) FROM (SELECT role, row_number() OVER (PARTITION BY conversation_id "
            "ORDER BY created_at) AS n FROM messages) AS m WHERE (n % 2 = 1) <> (role = 'user')"
        )
        == 0
    )
    # User messages respect the limit; assistant messages carry the model call's metadata.
    assert db.scalar("SELECT max(length(content)) FROM messages WHERE role = 'user'") <= 1000
    assert db.scalar("SELECT min(length(content)) FROM messages") > 0
    # Every message ends where a sentence ends, never mid-word ("Translate 'we will").
    assert db.scalar("SELECT count(*) FROM messages WHERE content !~ '[.?!]$'") == 0
    assert db.scalar("SELECT count(*) FROM messages WHERE role = 'user' AND metadata IS NOT NULL") == 0
    assert (
        db.scalar(
            "SELECT count(*) FROM messages WHERE role = 'assistant' AND NOT (metadata ?& "
            "ARRAY['model', 'prompt_tokens', 'completion_tokens', 'latency_ms'])"
        )
        == 0
    )
    # Activity over about two years, all of it in the past, each conversation's
    # updated_at at or after its last message.
    oldest, newest = db.sql("SELECT min(created_at), max(created_at) FROM messages")[0]
    assert (newest - oldest).days > 365
    assert db.scalar("SELECT max(created_at) <= now() FROM messages")
    assert (
        db.scalar(
            "SELECT count(*) FROM conversations c WHERE updated_at < "
            "(SELECT max(created_at) FROM messages m WHERE m.conversation_id = c.id)"
        )
        == 0
    )
    # Every conversation has messages; a very long one holds about a tenth of them.
    sizes = [
        row[0]
        for row in db.sql(
            "SELECT count(m.id) FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id "
            "GROUP BY c.id ORDER BY 1 DESC"
        )
    ]
    assert min(sizes) >= 2
    assert sizes[0] >= 0.09 * 4800
    assert db.scalar("SELECT count(DISTINCT status) FROM conversations") == 2


def test_seed_refuses_a_database_with_conversations_unless_forced(cli: Cli, migrated_db: TestDatabase) -> None:
    add_real_conversation(migrated_db)
    refused = cli("seed", "--messages", "40")
    assert_one_line_error(refused, 1, "already holds conversations", "--force")
    assert seeded_counts(migrated_db) == (0, 0, 0)

    forced = cli("seed", "--messages", "40", "--conversations", "4", "--users", "2", "--force", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert seeded_counts(migrated_db) == (2, 4, 40)
    # A second forced run adds conversations and reuses the demo users.
    again = cli("seed", "--messages", "40", "--conversations", "4", "--users", "2", "--force", "--json")
    assert again.json()["users"] == 0
    assert seeded_counts(migrated_db) == (2, 8, 80)


def test_remove_deletes_exactly_the_demo_data(cli: Cli, migrated_db: TestDatabase) -> None:
    add_real_conversation(migrated_db)
    assert cli("seed", "--messages", "600", "--conversations", "30", "--force").exit_code == 0
    before = seeded_counts(migrated_db)

    dry = cli("seed", "--remove", "--dry-run", "--json").json()
    assert (dry["users"], dry["conversations"], dry["messages"], dry["dry_run"]) == (*before, True)
    assert seeded_counts(migrated_db) == before

    assert_one_line_error(cli("seed", "--remove"), 2, "--yes")
    assert seeded_counts(migrated_db) == before

    removed = cli("seed", "--remove", "--yes", "--json")
    assert removed.exit_code == 0, removed.stderr
    assert (removed.json()["users"], removed.json()["conversations"], removed.json()["messages"]) == before
    assert seeded_counts(migrated_db) == (0, 0, 0)
    assert migrated_db.sql("SELECT id FROM users") == [("alice",)]
    assert migrated_db.scalar("SELECT count(*) FROM conversations") == 1
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 1

    rerun = cli("seed", "--remove", "--yes", "--json").json()
    assert (rerun["users"], rerun["conversations"], rerun["messages"]) == (0, 0, 0)


def test_seed_user_ids_have_one_width_and_later_runs_reuse_the_users(cli: Cli, migrated_db: TestDatabase) -> None:
    def per_user() -> dict[str, int]:
        return dict(migrated_db.sql("SELECT user_id, count(*) FROM conversations GROUP BY user_id"))

    first = cli("seed", "--messages", "40", "--conversations", "4", "--users", "2", "--json")
    assert first.json()["users"] == 2
    more = cli("seed", "--messages", "240", "--conversations", "24", "--users", "12", "--force", "--json")
    assert more.json()["users"] == 10  # the first run's two are reused
    ids = [row[0] for row in migrated_db.sql("SELECT id FROM users ORDER BY id")]
    assert ids == [f"{PREFIX}{n:06d}" for n in range(1, 13)]

    before = per_user()
    fewer = cli("seed", "--messages", "60", "--conversations", "6", "--users", "3", "--force", "--json")
    assert fewer.exit_code == 0, fewer.stderr
    assert fewer.json()["users"] == 0
    after = per_user()
    assert sum(after.values()) == sum(before.values()) + 6
    # The new conversations went to the first three demo users, the ones this run asked for.
    assert {user for user in after if after[user] != before.get(user)} <= {f"{PREFIX}{n:06d}" for n in (1, 2, 3)}
    assert migrated_db.scalar("SELECT count(*) FROM users") == 12


def test_seed_needs_the_schema(empty_db: TestDatabase) -> None:
    assert_one_line_error(Cli(empty_db.url)("seed", "--messages", "10"), 1, "chatdb migrate")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--messages", "5", "--conversations", "10"), "at least --conversations"),
        (("--messages", "0"), "--messages"),
        (("--dry-run",), "--dry-run is only used with --remove"),
        (("--remove", "--messages", "10"), "--remove takes no"),
    ],
)
def test_seed_usage_errors(cli: Cli, migrated_db: TestDatabase, args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(cli("seed", *args), 2, fragment)
    assert seeded_counts(migrated_db) == (0, 0, 0)


def test_an_interrupted_seed_keeps_only_whole_conversations(migrated_db: TestDatabase) -> None:
    import re

    from chatdb.errors import JobInterrupted
    from chatdb.jobs.seed import SeedScale, seed

    def interrupt_after_first_batch(update: object) -> None:
        raise KeyboardInterrupt

    with migrated_db.database() as db, pytest.raises(JobInterrupted) as stopped:
        seed(
            db,
            SeedScale.build(messages=2000, conversations=40),
            batch_messages=300,
            jobs=1,
            progress=interrupt_after_first_batch,
        )
    kept = re.search(r"kept (\d+) complete conversations with (\d+) messages", stopped.value.message)
    assert kept is not None, stopped.value.message
    conversations, messages = int(kept[1]), int(kept[2])
    assert 0 < conversations < 40
    assert migrated_db.scalar("SELECT count(*) FROM conversations") == conversations
    assert migrated_db.scalar("SELECT count(*) FROM messages") == messages
    # Every kept conversation is complete: its messages reach its updated_at.
    assert (
        migrated_db.scalar(
            "SELECT count(*) FROM conversations c WHERE NOT EXISTS (SELECT 1 FROM messages m "
            "WHERE m.conversation_id = c.id AND m.created_at > c.updated_at - make_interval(secs => 3600))"
        )
        == 0
    )
    assert Cli(migrated_db.url)("seed", "--remove", "--yes").exit_code == 0
    assert migrated_db.scalar("SELECT count(*) FROM users") == 0


def test_seed_and_its_removal_are_jobs_that_wait_for_the_lease(cli: Cli, migrated_db: TestDatabase) -> None:
    from jobdata import hold_lease

    hold_lease(migrated_db, minutes=10)
    assert_one_line_error(cli("seed", "--conversations", "10", "--messages", "20"), 3, "maintenance lock")
    assert_one_line_error(cli("seed", "--remove", "--yes"), 3, "maintenance lock")
    assert seeded_counts(migrated_db) == (0, 0, 0)
    migrated_db.sql("DELETE FROM chatdb_job_lease")
    result = cli("seed", "--conversations", "10", "--messages", "20", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["job"], report["changed"], report["conversations"], report["messages"]) == ("seed", 10, 10, 20)
    assert report["batches"] >= 1 and report["duration_seconds"] == report["seconds"]
    assert migrated_db.scalar("SELECT count(*) FROM chatdb_job_lease") == 0  # given back


def test_removal_leaves_a_conversation_the_application_holds(cli: Cli, migrated_db: TestDatabase) -> None:
    assert cli("seed", "--conversations", "12", "--messages", "24", "--users", "3").exit_code == 0
    held, owner = migrated_db.sql("SELECT id, user_id FROM conversations ORDER BY id LIMIT 1")[0]
    with migrated_db.connect() as app:
        # The application is adding to one demo conversation and has not committed yet.
        app.execute("SELECT 1 FROM messages WHERE conversation_id = %s LIMIT 1 FOR UPDATE", [held])
        removed = cli("seed", "--remove", "--yes", "--json")
        app.rollback()
    assert removed.exit_code == 0, removed.stderr
    report = removed.json()
    assert (report["job"], report["matched"], report["changed"], report["skipped"]) == ("seed --remove", 12, 11, 1)
    assert migrated_db.sql("SELECT id FROM conversations") == [(held,)]
    assert migrated_db.sql(f"SELECT id FROM users WHERE starts_with(id, '{PREFIX}')") == [(owner,)]
    again = cli("seed", "--remove", "--yes", "--json").json()
    assert (again["changed"], again["skipped"], again["users"]) == (1, 0, 1)
    assert seeded_counts(migrated_db) == (0, 0, 0)
