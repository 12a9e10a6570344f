"""`chatdb import --from chatgpt|claude|openwebui`: fixtures round-trip, re-imports add nothing, newer exports only what is new."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import pytest
from helpers import Cli, TestDatabase, assert_one_line_error
from jobdata import snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
CHATGPT = FIXTURES / "chatgpt-conversations.json"


def rows(db: TestDatabase) -> list[tuple]:
    return db.sql(
        "SELECT m.metadata->'source'->>'tool', m.metadata->'source'->>'message_id', m.role, m.content, c.user_id "
        "FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY c.created_at, m.created_at"
    )


def run(cli: Cli, path: Path, tool: str, *extra: str) -> dict:
    result = cli("import", str(path), "--from", tool, "--user", "42", "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return result.json()


@pytest.fixture
def owner(migrated_db: TestDatabase) -> str:
    migrated_db.sql("INSERT INTO users (id) VALUES ('42'), ('7')")
    return "42"


def test_chatgpt_branch_ending_at_current_node(migrated_db: TestDatabase, cli: Cli, owner: str) -> None:
    report = run(cli, CHATGPT, "chatgpt")
    assert report["inserted"] == {"conversations": 2, "messages": 8}
    assert report["skipped"] == {"long_user_message": 1, "non_text": 1, "non_text_parts": 1, "system": 1, "tool": 1}
    got = [(r[1], r[2]) for r in rows(migrated_db)]
    # u2a/a2a are the branch the user left; the image part was dropped, its text kept.
    assert got == [
        ("u1", "user"),
        ("a1", "assistant"),
        ("u2b", "user"),
        ("img", "user"),
        ("a2b", "assistant"),
        ("m1", "user"),
        ("m2", "assistant"),
        ("m4", "assistant"),
    ]
    texts = [r[3] for r in rows(migrated_db)]
    assert "What if he already ate some? 🐕" in texts and "Here is a photo of the bag." in texts
    assert any("日本語" in t and "שלום" in t for t in texts)
    assert {r[4] for r in rows(migrated_db)} == {"42"}
    meta = migrated_db.scalar("SELECT metadata FROM messages WHERE metadata->'source'->>'message_id' = 'm1'")
    assert meta["source"] == {
        "tool": "chatgpt",
        "conversation_id": "6a1e2f30-0000-4000-8000-00000000c002",
        "message_id": "m1",
        "title": "Ünïcödé — 日本語",
    }
    before = snapshot(migrated_db)
    again = run(cli, CHATGPT, "chatgpt")
    assert again["inserted"] == {"conversations": 0, "messages": 0}
    assert again["existing"] == {"conversations": 2, "messages": 8}
    assert snapshot(migrated_db) == before


def test_chatgpt_zip_and_split_layout_give_the_same_rows(
    migrated_db: TestDatabase, cli: Cli, owner: str, tmp_path: Path
) -> None:
    plain = tmp_path / "export.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.write(CHATGPT, "conversations.json")
        archive.writestr("user.json", '{"id": "user-x"}')
    split = tmp_path / "split.zip"
    conversations = json.loads(CHATGPT.read_text())
    with zipfile.ZipFile(split, "w") as archive:
        for k, conversation in enumerate(conversations):
            archive.writestr(f"conversations-{k:03}.json", json.dumps([conversation]))
        archive.writestr("message_feedback.json", "[]")
    assert run(cli, plain, "chatgpt")["inserted"] == {"conversations": 2, "messages": 8}
    before = snapshot(migrated_db)
    assert run(cli, split, "chatgpt")["existing"] == {"conversations": 2, "messages": 8}
    assert snapshot(migrated_db) == before


def test_a_newer_chatgpt_export_adds_only_the_new_messages(
    migrated_db: TestDatabase, cli: Cli, owner: str, tmp_path: Path
) -> None:
    run(cli, CHATGPT, "chatgpt")
    before = {r[1] for r in rows(migrated_db)}
    newer = copy.deepcopy(json.loads(CHATGPT.read_text()))
    tree = newer[1]["mapping"]
    tree["m4"]["children"] = ["m5"]
    tree["m5"] = {
        "id": "m5",
        "parent": "m4",
        "children": [],
        "message": {
            "id": "m5",
            "author": {"role": "user"},
            "create_time": 1767400000.0,
            "content": {"content_type": "text", "parts": ["One more question about grapes"]},
        },
    }
    newer[1]["current_node"] = "m5"
    newer[1]["update_time"] = 1767400000.0
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(newer))
    dry = run(cli, path, "chatgpt", "--dry-run")
    assert dry["inserted"] == {"conversations": 0, "messages": 1}
    assert {r[1] for r in rows(migrated_db)} == before
    report = run(cli, path, "chatgpt")
    assert report["inserted"] == {"conversations": 0, "messages": 1}
    assert {r[1] for r in rows(migrated_db)} == before | {"m5"}
    last = migrated_db.scalar(
        "SELECT c.updated_at = max(m.created_at) FROM conversations c JOIN messages m ON m.conversation_id = c.id "
        "WHERE m.metadata->'source'->>'message_id' = 'm5' GROUP BY c.updated_at"
    )
    assert last is True


@pytest.mark.parametrize("how, parts", [("split", 2), ("truncate", 1)])
def test_long_user_messages_split_or_truncated(
    migrated_db: TestDatabase, cli: Cli, owner: str, how: str, parts: int
) -> None:
    report = run(cli, CHATGPT, "chatgpt", "--long-user-messages", how)
    assert report["long_user_messages_changed"] == {"split" if how == "split" else "truncated": 1}
    found = migrated_db.sql(
        "SELECT length(content), metadata FROM messages "
        "WHERE metadata->'source'->>'message_id' = 'm3' ORDER BY created_at"
    )
    assert len(found) == parts and all(length <= 1000 for length, _ in found)
    original = next(json.loads(CHATGPT.read_text())[1]["mapping"][n]["message"]["content"]["parts"][0] for n in ["m3"])
    if how == "split":
        assert (
            "".join(
                migrated_db.sql(
                    "SELECT string_agg(content, '' ORDER BY created_at) FROM messages "
                    "WHERE metadata->'source'->>'message_id' = 'm3'"
                )[0]
            )
            == original
        )
    assert run(cli, CHATGPT, "chatgpt", "--long-user-messages", how)["inserted"]["messages"] == 0


def test_claude_export_round_trips(migrated_db: TestDatabase, cli: Cli, owner: str) -> None:
    report = run(cli, FIXTURES / "claude-conversations.json", "claude")
    assert report["inserted"] == {"conversations": 1, "messages": 3}
    assert report["skipped"] == {"long_user_message": 1, "non_text_parts": 1}
    assert [(r[2], r[3]) for r in rows(migrated_db)] == [
        ("user", "Is it safe to give my dog grapes?"),
        ("assistant", "No — grapes are toxic to dogs."),
        ("assistant", "Ça va aller 🐾 — appelez le vétérinaire."),
    ]
    assert run(cli, FIXTURES / "claude-conversations.json", "claude")["inserted"] == {"conversations": 0, "messages": 0}


def test_openwebui_export_follows_the_current_branch(migrated_db: TestDatabase, cli: Cli, owner: str) -> None:
    report = run(cli, FIXTURES / "openwebui-chats.json", "openwebui", "--long-user-messages", "split")
    assert report["inserted"] == {"conversations": 2, "messages": 5}
    assert report["skipped"] == {"system": 1}
    assert [r[1] for r in rows(migrated_db)][:3] == ["m1", "m2", "m3b"]
    assert (
        run(cli, FIXTURES / "openwebui-chats.json", "openwebui", "--long-user-messages", "split")["inserted"][
            "messages"
        ]
        == 0
    )


def test_bad_input_and_other_owner_write_nothing(
    migrated_db: TestDatabase, cli: Cli, owner: str, tmp_path: Path
) -> None:
    broken = json.loads(CHATGPT.read_text())
    broken[0]["current_node"] = "missing"
    broken.append({"title": "no tree"})
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(broken))
    assert_one_line_error(
        cli("import", str(path), "--from", "chatgpt", "--user", "42"),
        1,
        "2 problems",
        "current_node",
        "nothing was imported",
    )
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 0
    assert_one_line_error(cli("import", str(CHATGPT), "--from", "chatgpt", "--user", "nobody"), 1, "nobody")
    assert_one_line_error(cli("import", str(CHATGPT), "--from", "chatgpt"), 2, "--user")
    run(cli, CHATGPT, "chatgpt")
    before = snapshot(migrated_db)
    assert_one_line_error(cli("import", str(CHATGPT), "--from", "chatgpt", "--user", "7"), 1, "another user")
    assert snapshot(migrated_db) == before


def test_a_held_lease_stops_the_import_and_the_index_build(migrated_db: TestDatabase, cli: Cli, owner: str) -> None:
    from jobdata import hold_lease

    hold_lease(migrated_db, minutes=10)
    assert_one_line_error(cli("import", str(CHATGPT), "--from", "chatgpt", "--user", "42"), 3)
    assert_one_line_error(cli("search", "--create-index"), 3)
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 0
    assert run(cli, CHATGPT, "chatgpt", "--dry-run")["inserted"]["messages"] == 8  # a dry run takes no lease
    assert migrated_db.scalar("SELECT count(*) FROM messages") == 0


def test_import_from_a_tool_is_refused_on_a_standby(on_standby: tuple[TestDatabase, TestDatabase]) -> None:
    _, replica = on_standby
    result = Cli(replica.url)("import", str(CHATGPT), "--from", "chatgpt", "--user", "42")
    assert_one_line_error(result, 1, "standby")
