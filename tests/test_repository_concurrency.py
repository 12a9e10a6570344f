"""Fifty writers on one conversation, each on its own connection and transaction."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from helpers import TestDatabase

from chatdb.config import PoolSettings, Settings
from chatdb.db import Database, async_session_factory, create_async_engine
from chatdb.repositories import (
    AsyncMessageRepository,
    ConversationRepository,
    MessageRepository,
)

WRITERS = 50
SETTINGS_POOL = PoolSettings(size=WRITERS, max_overflow=0)


def _conversation(db: TestDatabase) -> str:
    db.sql("INSERT INTO users (id) VALUES ('alice')")
    with db.database() as database, database.session() as session:
        conversation = ConversationRepository(session).create("alice")
        session.commit()
    return str(conversation.id)


def _assert_all_kept(db: TestDatabase, cid: str, added_ids: list) -> None:
    stored = {row[0] for row in db.sql("SELECT id FROM messages WHERE conversation_id = %s", [cid])}
    assert stored == set(added_ids) and len(stored) == WRITERS
    updated_at, newest = db.sql(
        "SELECT c.updated_at, (SELECT max(created_at) FROM messages m WHERE m.conversation_id = c.id)"
        " FROM conversations c WHERE c.id = %s",
        [cid],
    )[0]
    assert updated_at == newest


def test_fifty_concurrent_adds_from_separate_connections(migrated_db: TestDatabase) -> None:
    cid = _conversation(migrated_db)
    start = threading.Barrier(WRITERS)
    database = Database(Settings(url=migrated_db.url, pool=SETTINGS_POOL))

    def write(i: int):
        with database.session() as session:
            session.connection()  # open the connection (and its transaction) before the race
            start.wait()
            message = MessageRepository(session).add(cid, "alice", "user", f"writer {i}")
            session.commit()
            return message.id

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            added = list(pool.map(write, range(WRITERS)))
    finally:
        database.dispose()
    _assert_all_kept(migrated_db, cid, added)
    assert migrated_db.scalar("SELECT count(DISTINCT created_at) FROM messages") > 1


def test_fifty_concurrent_async_adds(migrated_db: TestDatabase) -> None:
    cid = _conversation(migrated_db)

    async def run() -> list:
        engine = create_async_engine(Settings(url=migrated_db.url, pool=SETTINGS_POOL))
        sessions = async_session_factory(engine)

        async def write(i: int):
            async with sessions() as session:
                message = await AsyncMessageRepository(session).add(cid, "alice", "assistant", f"writer {i}")
                await session.commit()
                return message.id

        try:
            return await asyncio.gather(*(write(i) for i in range(WRITERS)))
        finally:
            await engine.dispose()

    _assert_all_kept(migrated_db, cid, asyncio.run(run()))
