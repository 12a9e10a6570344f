"""`chatdb bench` at a tiny scale: the report's shape, and that it leaves the database as it was."""

from __future__ import annotations

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error

LATENCY_KEYS = {"count", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"}


def snapshot(db: TestDatabase) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row of the three tables."""
    return {
        table: tuple(
            db.sql(f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t")[0]
        )
        for table in ("users", "conversations", "messages")
    }


def run_bench(cli: Cli, *args: str) -> dict:
    result = cli("bench", "--duration", "1s", "--sample", "5", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_bench_reports_every_figure_and_leaves_the_data_as_it_was(cli: Cli, migrated_db: TestDatabase) -> None:
    assert cli("seed", "--messages", "200", "--conversations", "10").exit_code == 0
    before = snapshot(migrated_db)

    report = run_bench(cli, "--clients", "3", "--workers", "2")

    assert snapshot(migrated_db) == before
    assert set(report["sequential"]) == {"history", "recent", "add"}
    for name, pattern in report["sequential"].items():
        assert set(pattern["chatdb"]) == LATENCY_KEYS and set(pattern["raw"]) == LATENCY_KEYS
        assert pattern["chatdb"]["count"] == pattern["raw"]["count"] > 0
        assert pattern["chatdb"]["p50_ms"] <= pattern["chatdb"]["p95_ms"] <= pattern["chatdb"]["p99_ms"]
        assert pattern["ratio_p95"] == pytest.approx(pattern["chatdb"]["p95_ms"] / pattern["raw"]["p95_ms"], abs=0.0051)
    assert report["sequential"]["history"]["goal_p95_ms"] == 100
    assert report["sequential"]["add"]["goal_p95_ms"] == 50
    load = report["concurrency"]
    assert (load["clients"], load["workers"], load["connections"], load["limited_by"]) == (3, 2, 3, "clients")
    assert sum(load["pool_sizes"]) == 3
    assert load["operations"] == sum(p["count"] for p in load["patterns"].values()) + load["errors"]
    assert load["operations"] > 0
    assert report["errors"] == load["errors"] == 0
    assert [goal["status"] for goal in report["goals"]][-1] == "not run"  # fewer than 100 clients
    assert all(goal["status"] in ("pass", "fail", "not run") for goal in report["goals"])
    keys = [goal["key"] for goal in report["goals"]]
    assert keys == ["history", "history_under_load", "add", "add_under_load", "clients"]
    assert report["data"]["own_data_only"] is False
    assert report["data"]["read_sample"] == 5
    assert report["cleanup"]["users"] == 1
    assert report["cleanup"]["conversations"] == 4  # one per client, one for the sequential phase
    assert report["cleanup"]["messages"] >= 40


def test_more_clients_than_connections_share_the_pools(cli: Cli, migrated_db: TestDatabase) -> None:
    before = snapshot(migrated_db)
    report = run_bench(cli, "--clients", "6", "--workers", "2", "--connections", "2", "--pause", "0.01")
    load = report["concurrency"]
    assert (load["connections"], load["pool_sizes"], load["limited_by"]) == (2, [1, 1], "connections")
    assert load["pause_seconds"] == 0.01
    assert report["errors"] == 0
    assert report["data"]["own_data_only"] is True
    assert snapshot(migrated_db) == before


def test_bench_table_names_the_goals(cli: Cli, migrated_db: TestDatabase) -> None:
    result = cli("bench", "--duration", "1s", "--clients", "2")
    assert result.exit_code == 0, result.stderr
    for text in ("history read", "add message", "p95 < 100 ms", "p95 < 50 ms", "100+ clients"):
        assert text in result.stdout
    # The table shows the report's own decision: two clients are too few for the clients goal.
    clients_row = next(line for line in result.stdout.splitlines() if "100+ clients, 0 errors" in line)
    assert clients_row.rstrip().endswith("not run")
    assert migrated_db.scalar("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--duration", "0"), "--duration"),
        (("--duration", "1mo"), "too long"),
        (("--duration", "soon"), "--duration"),
        (("--clients", "0"), "--clients"),
    ],
)
def test_bench_usage_errors(cli: Cli, args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(cli("bench", *args), 2, fragment)


def test_bench_needs_the_schema(empty_db: TestDatabase) -> None:
    assert_one_line_error(Cli(empty_db.url)("bench", "--duration", "1s"), 1, "chatdb migrate")
