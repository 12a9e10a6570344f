"""The files `chatdb import` reads: manifests, links, streams, empty exports, long lines, many bad lines.

And what is inserted is what was checked: bytes changed between the checking
read and the inserting read are refused, never inserted.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import count, seed, snapshot

from chatdb.errors import ImportFileError
from chatdb.jobs.files import manifest_path
from chatdb.jobs.importing import import_conversations

OLD = "2020-01-01T00:00:00+00:00"


@pytest.fixture
def exported(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> Path:
    """Six conversations exported with their manifest, then deleted from the database."""
    seed(migrated_db, 6, updated=OLD, messages=2)
    target = tmp_path / "all.jsonl"
    assert cli("export", "-o", str(target)).exit_code == 0
    migrated_db.sql("DELETE FROM conversations")
    return target


def rewrite_manifest(path: Path, **changes) -> None:
    where = manifest_path(path)
    data = json.loads(where.read_text())
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    where.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (
            {"manifest_version": 99},
            "manifest_version 99, which this chatdb does not read (it reads versions 1 to 2); upgrade chatdb",
        ),
        ({"manifest_version": "2"}, "no valid manifest_version"),
        ({"kind": "something-else"}, "is not a chatdb export manifest"),
        ({"sha256": None}, "sha256 is missing or not 64 hex digits"),
        ({"sha256": ...}, "sha256 is missing"),
        ({"conversations": "6"}, "conversations is missing or not a whole number"),
        ({"messages": True}, "messages is missing or not a whole number"),
        ({"bytes": -1}, "bytes is missing or not a whole number"),
        ({"format": "csv"}, "describes a csv export; import reads jsonl"),
        ({"bytes": 1}, "does not match its manifest"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_manifest_that_cannot_be_used_is_refused_with_one_line(
    migrated_db: TestDatabase, cli: Cli, exported: Path, changes: dict, fragment: str
) -> None:
    rewrite_manifest(exported, **changes)
    assert_one_line_error(cli("import", str(exported)), 1, fragment)
    assert count(migrated_db) == 0


def test_a_manifest_that_is_not_json_or_not_an_object(migrated_db: TestDatabase, cli: Cli, exported: Path) -> None:
    for text, fragment in (("{", "is not valid JSON"), ("[]", "is not a chatdb export manifest")):
        manifest_path(exported).write_text(text)
        assert_one_line_error(cli("import", str(exported)), 1, fragment)
    assert count(migrated_db) == 0


def test_json_null_and_sql_null_metadata_stay_apart_and_old_files_read_as_before(
    migrated_db: TestDatabase, cli: Cli, tmp_path: Path
) -> None:
    ids = seed(migrated_db, 2, updated=OLD, messages=2)
    migrated_db.sql("UPDATE messages SET metadata = 'null' WHERE conversation_id = %s", [ids[0]])
    migrated_db.sql("UPDATE messages SET metadata = NULL WHERE conversation_id = %s", [ids[1]])
    target = tmp_path / "nulls.jsonl"
    assert cli("export", "-o", str(target)).exit_code == 0
    assert json.loads(manifest_path(target).read_text())["manifest_version"] == 2
    by_id = {json.loads(line)["id"]: json.loads(line) for line in target.read_text().splitlines()}
    assert all(m.get("metadata_is_json_null") is True for m in by_id[ids[0]]["messages"])
    assert all("metadata_is_json_null" not in m for m in by_id[ids[1]]["messages"])
    migrated_db.sql("DELETE FROM conversations")
    assert cli("import", str(target)).exit_code == 0
    query = "SELECT conversation_id::text, count(*) FILTER (WHERE metadata IS NULL), count(*) FILTER (WHERE metadata = 'null') FROM messages GROUP BY 1"
    assert sorted(migrated_db.sql(query)) == sorted([(ids[0], 0, 2), (ids[1], 2, 0)])
    # A file from before (manifest_version 1): a JSON null there is SQL NULL, as it always was.
    old = tmp_path / "old.jsonl"
    old.write_text(
        "".join(
            json.dumps(
                {
                    **item,
                    "messages": [
                        {k: v for k, v in m.items() if k != "metadata_is_json_null"} for m in item["messages"]
                    ],
                }
            )
            + "\n"
            for item in by_id.values()
        )
    )
    migrated_db.sql("DELETE FROM conversations")
    assert cli("import", str(old)).exit_code == 0
    assert migrated_db.scalar("SELECT count(*) FROM messages WHERE metadata IS NULL") == 4


def test_through_a_symlink_the_manifest_beside_the_real_file_is_checked(
    migrated_db: TestDatabase, cli: Cli, exported: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "links"
    elsewhere.mkdir()
    link = elsewhere / "link.jsonl"
    link.symlink_to(exported)
    rewrite_manifest(exported, conversations=7)
    assert_one_line_error(cli("import", str(link)), 1, "does not match its manifest", str(manifest_path(exported)))
    rewrite_manifest(exported, conversations=6)
    report = cli("import", str(link), "--json").json()
    assert report["manifest_checked"] is True and report["manifest"] == str(manifest_path(exported))
    assert count(migrated_db) == 6
    dangling = elsewhere / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "gone.jsonl")
    assert_one_line_error(cli("import", str(dangling)), 2, "no such file")


def test_what_is_not_a_regular_file_is_named(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("import", str(tmp_path)), 2, "is a directory")
    assert_one_line_error(cli("import", "/dev/null"), 2, "/dev/null", "a character device, not a regular file")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_one_line_error(cli("import", str(fifo)), 2, "a named pipe")


def test_an_empty_export_imports_as_zero_rows(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "none.jsonl"
    assert cli("export", "-o", str(target), "--status", "archived").exit_code == 0  # nothing is archived
    assert target.read_bytes() == b""
    report = cli("import", str(target), "--json").json()
    assert report["manifest_checked"] is True
    assert report["in_file"] == {"conversations": 0, "messages": 0} and report["inserted"]["conversations"] == 0


def test_stdin_is_read_once_and_checked_against_a_given_manifest(
    migrated_db: TestDatabase, cli: Cli, exported: Path
) -> None:
    original = exported.read_bytes()
    wrong = original.replace(b"message 1", b"MESSAGE 1", 1)
    manifest = str(manifest_path(exported))
    assert_one_line_error(
        cli("import", "-", "--manifest", manifest, input=wrong), 1, "stdin", "does not match its manifest"
    )
    assert count(migrated_db) == 0
    report = cli("import", "-", "--json", input=gzip.compress(original)).json()  # gzip, no manifest
    assert (report["path"], report["manifest_checked"], report["inserted"]["conversations"]) == ("stdin", False, 6)
    migrated_db.sql("DELETE FROM conversations")
    report = cli("import", "-", "--manifest", manifest, "--batch-size", "2", "--json", input=original).json()
    assert (report["path"], report["manifest_checked"], report["inserted"]["conversations"]) == ("stdin", True, 6)
    assert count(migrated_db) == 6


def test_a_file_changed_after_the_check_is_not_inserted(migrated_db: TestDatabase, exported: Path) -> None:
    """Bytes rewritten in place between the checking read and the inserting read are refused, never inserted."""

    def rewrite_when_checked(update) -> None:
        if update.phase == "import" and update.done == 0:  # checked, not yet read again
            data = bytearray(exported.read_bytes())
            at = data.rindex(b'"user_id":"alice"')
            data[at : at + 17] = b'"user_id":"alicf"'
            exported.write_bytes(bytes(data))

    with migrated_db.database() as database, pytest.raises(ImportFileError, match="changed after it was checked"):
        import_conversations(database, exported, batch_size=2, progress=rewrite_when_checked)
    assert count(migrated_db) == 4
    assert migrated_db.scalar("SELECT count(*) FROM messages WHERE user_id <> 'alice'") == 0


def test_rows_the_application_writes_after_the_check_stop_the_import_at_their_batch(
    migrated_db: TestDatabase, exported: Path
) -> None:
    """A conflicting row written between the check and the insert: its batch writes nothing, and says why."""
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    last = lines[-1]
    other = "archived" if last["status"] == "active" else "active"

    def application_writes_when_checked(update) -> None:
        if update.phase == "import" and update.done == 0:  # checked, nothing inserted yet
            migrated_db.sql(
                "INSERT INTO conversations (id, user_id, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
                [last["id"], last["user_id"], other, last["created_at"], last["updated_at"]],
            )

    with migrated_db.database() as database, pytest.raises(ImportFileError) as refused:
        import_conversations(database, exported, batch_size=2, progress=application_writes_when_checked)
    message = str(refused.value)
    assert "the database changed after" in message and "line 6:" in message, message
    assert "nothing of lines 5 to 6 was written" in message and "4 of 6 conversations" in message, message
    present = {r[0] for r in migrated_db.sql("SELECT id::text FROM conversations")}
    assert present == {line["id"] for line in lines[:4]} | {last["id"]}
    assert migrated_db.scalar("SELECT status FROM conversations WHERE id = %s", [last["id"]]) == other
    assert migrated_db.scalar("SELECT count(*) FROM messages WHERE conversation_id = %s", [last["id"]]) == 0


def test_a_line_longer_than_the_cap_is_refused_at_once(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    # Sparse: 300 MiB that take no disk; the cap (256 MiB) is passed without reading them all.
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as out:
        out.write(b'{"id": "')
        out.truncate(300 * 1024 * 1024)
    assert_one_line_error(cli("import", str(huge)), 1, "line 1: longer than 268435456 bytes")
    small = tmp_path / "two.jsonl"
    small.write_text('{"a": 1}\n' + "x" * 2000 + "\n")
    with migrated_db.database() as database, pytest.raises(ImportFileError, match="line 2: longer than 1000 bytes"):
        import_conversations(database, small, max_line_bytes=1000)


def test_checking_stops_at_the_tenth_bad_line(migrated_db: TestDatabase, cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    # 10,000 empty lines, and a cut-off last line that a full read would report.
    path.write_bytes(b"\n" * 10_000 + b'{"cut')
    seen = []
    with migrated_db.database() as database, pytest.raises(ImportFileError) as refused:
        import_conversations(database, path, progress=lambda update: seen.append(update.done))
    assert "stopped checking at 10 bad lines" in str(refused.value) and "truncated" not in str(refused.value)
    assert max(seen) <= 1000  # the first batch
    assert_one_line_error(cli("import", str(path)), 1, "line 1: empty line", "stopped checking")
    assert snapshot(migrated_db) == ([], [])
