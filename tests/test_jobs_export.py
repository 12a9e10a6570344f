"""`chatdb export`: formats, filters, files written whole and private, manifests."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import stat
from datetime import datetime
from pathlib import Path

from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import seed


def seed_mix(db: TestDatabase) -> dict[str, list[str]]:
    return {
        "alice_old": seed(db, 6, user="alice", updated="2020-01-01T00:00:00+00:00", messages=3),
        "alice_new": seed(db, 4, user="alice", updated="2024-06-01T12:30:00.5+02:00", messages=1),
        "bob_archived": seed(db, 5, user="bob", updated="2021-03-01T00:00:00+00:00", status="archived"),
        "bob_empty": seed(db, 2, user="bob", updated="2022-01-01T00:00:00+00:00", messages=0),
    }


def read_jsonl(path: Path) -> list[dict]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode().splitlines()]


def db_rows(db: TestDatabase) -> dict[str, dict]:
    """Conversations with messages (oldest first), as JSON text from the database itself."""
    rows = db.sql(
        """
        SELECT c.id::text, c.user_id, c.status, c.created_at, c.updated_at,
               coalesce(json_agg(json_build_object('id', m.id, 'user_id', m.user_id, 'role', m.role,
                   'content', m.content, 'metadata', m.metadata, 'created_at', m.created_at)
                   ORDER BY m.created_at, m.id) FILTER (WHERE m.id IS NOT NULL), '[]')
        FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id
        """
    )
    return {
        r[0]: {"user_id": r[1], "status": r[2], "created_at": r[3], "updated_at": r[4], "messages": r[5]} for r in rows
    }


def test_jsonl_keeps_every_column_exactly(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    target = tmp_path / "all.jsonl"
    result = cli("export", "-o", str(target), "--batch-size", "4", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["conversations"], report["messages"], report["format"]) == (17, 32, "jsonl")
    lines = read_jsonl(target)
    assert len(lines) == 17
    expected = db_rows(migrated_db)
    assert [line["id"] for line in lines] == sorted(expected)
    for line in lines:
        want = expected[line["id"]]
        assert list(line) == ["id", "user_id", "status", "created_at", "updated_at", "messages"]
        assert (line["user_id"], line["status"]) == (want["user_id"], want["status"])
        assert datetime.fromisoformat(line["created_at"]) == want["created_at"]
        assert datetime.fromisoformat(line["updated_at"]) == want["updated_at"]
        assert line["updated_at"].endswith("+00:00")
        got = [{k: v for k, v in m.items() if k != "conversation_id"} for m in line["messages"]]
        for g, w in zip(got, want["messages"], strict=True):
            assert datetime.fromisoformat(g.pop("created_at")) == datetime.fromisoformat(w.pop("created_at"))
            assert g == w
        assert all(m["conversation_id"] == line["id"] for m in line["messages"])
    with_metadata = [m for line in lines for m in line["messages"] if m["metadata"] is not None]
    assert with_metadata and with_metadata[0]["metadata"]["nested"] == {"x": None}
    assert any('\\ "quotes", tabs\t and\nnewlines' in m["content"] for line in lines for m in line["messages"])


def test_file_is_private_and_has_a_matching_manifest(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    target = tmp_path / "all.jsonl.gz"
    report = cli("export", "-o", str(target), "--json").json()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert len(read_jsonl(target)) == 17
    manifest = json.loads((tmp_path / "all.jsonl.gz.manifest.json").read_text())
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert manifest["sha256"] == report["sha256"] == digest
    assert manifest["bytes"] == target.stat().st_size
    assert (manifest["conversations"], manifest["messages"]) == (17, 32)
    assert manifest["compressed"] is True and manifest["format"] == "jsonl"
    assert manifest["chatdb_version"] and manifest["created_at"]
    assert manifest["selection"]["status"] == "all"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl.gz", "all.jsonl.gz.manifest.json"]


def test_filters_select_exact_sets(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    ids = seed_mix(migrated_db)

    def exported(*args: str) -> set[str]:
        target = tmp_path / "x.jsonl"
        result = cli("export", "-o", str(target), *args)
        assert result.exit_code == 0, result.stderr
        return {line["id"] for line in read_jsonl(target)}

    assert exported("--user", "alice") == set(ids["alice_old"] + ids["alice_new"])
    assert exported("--status", "archived") == set(ids["bob_archived"])
    assert exported("--status", "active", "--user", "bob") == set(ids["bob_empty"])
    assert exported("--before", "2021-06-01") == set(ids["alice_old"] + ids["bob_archived"])
    assert exported("--since", "2022-01-01") == set(ids["alice_new"] + ids["bob_empty"])
    assert exported("--since", "2021-01-01", "--before", "2022-06-01") == set(ids["bob_archived"] + ids["bob_empty"])
    assert exported("--conversation", ids["alice_old"][0], "--conversation", ids["bob_empty"][1]) == {
        ids["alice_old"][0],
        ids["bob_empty"][1],
    }
    assert exported("--older-than", "1000y") == set()


def test_csv_has_one_row_per_message(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    ids = seed_mix(migrated_db)
    target = tmp_path / "all.csv"
    assert cli("export", "-o", str(target), "--batch-size", "3").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 32 + 2  # every message, and one row for each conversation without messages
    empty = [r for r in rows if r["message_id"] == ""]
    assert sorted(r["conversation_id"] for r in empty) == sorted(ids["bob_empty"])
    with_meta = [r for r in rows if r["metadata"]]
    assert json.loads(with_meta[0]["metadata"])["tags"] == ["a", "b"]
    assert rows[0]["conversation_updated_at"].endswith("+00:00")


def test_csv_round_trips_hostile_values(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    user = 'o\'brien, "the" user'
    migrated_db.sql("INSERT INTO users (id) VALUES (%s)", [user])
    cid = migrated_db.scalar("INSERT INTO conversations (user_id) VALUES (%s) RETURNING id::text", [user])
    contents = ['line one\r\nline "two", three', "", " leading space", "tab\there \\ back", "🙂,"]
    for n, content in enumerate(contents):
        migrated_db.sql(
            "INSERT INTO messages (conversation_id, user_id, role, content, metadata, created_at) "
            "VALUES (%s, %s, 'assistant', %s, %s, now() + %s * interval '1 second')",
            [cid, user, content, None if n % 2 else '{"k": "v, \\"q\\""}', n],
        )
    target = tmp_path / "hostile.csv"
    assert cli("export", "-o", str(target)).exit_code == 0
    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    stored = migrated_db.sql(
        "SELECT id::text, content, metadata FROM messages WHERE conversation_id = %s ORDER BY created_at", [cid]
    )
    assert [(r["message_id"], r["content"], json.loads(r["metadata"]) if r["metadata"] else None) for r in rows] == [
        tuple(s) for s in stored
    ]
    assert {r["user_id"] for r in rows} == {user}


def test_json_array_and_stdout(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    seed_mix(migrated_db)
    target = tmp_path / "all.json"
    assert cli("export", "-o", str(target), "--batch-size", "5").exit_code == 0
    array = json.loads(target.read_text())
    jsonl = tmp_path / "all.jsonl"
    assert cli("export", "-o", str(jsonl)).exit_code == 0
    assert array == read_jsonl(jsonl)

    streamed = cli("export", "--user", "bob")
    assert streamed.exit_code == 0, streamed.stderr
    assert len([json.loads(line) for line in streamed.stdout.splitlines()]) == 7
    assert "Exported 7 conversations" in streamed.stderr

    nothing = tmp_path / "none.json"
    assert cli("export", "-o", str(nothing), "--since", "2999-01-01").exit_code == 0  # matches nothing
    assert json.loads(nothing.read_text()) == []


def test_export_usage_errors(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("export", "--json"), 2, "-o FILE")
    assert_one_line_error(cli("export", "--format", "xml"), 2, "xml")
    assert_one_line_error(cli("export", "--status", "gone"), 2, "gone")
    assert_one_line_error(cli("export", "-o", str(tmp_path / "missing" / "x.jsonl")), 2, "does not exist")
