"""Sync and async repositories behind one blocking interface, so each test runs on both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from helpers import TestDatabase


class _Blocking:
    """Calls an async repository's methods and waits for them on one event loop."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call


@dataclass
class Repos:
    flavour: str
    conversations: Any
    messages: Any
    commit: Callable[[], None]
    rollback: Callable[[], None]
    orm_session: Any  # the (sync) ORM Session underneath, for adding ORM objects directly


@contextmanager
def sync_repos(db: TestDatabase) -> Iterator[Repos]:
    from chatdb.repositories import ConversationRepository, MessageRepository

    with db.database() as database, database.session() as session:
        yield Repos(
            "sync",
            ConversationRepository(session),
            MessageRepository(session),
            session.commit,
            session.rollback,
            session,
        )


@contextmanager
def async_repos(db: TestDatabase) -> Iterator[Repos]:
    from chatdb.config import Settings
    from chatdb.db import async_session_factory, create_async_engine
    from chatdb.repositories import AsyncConversationRepository, AsyncMessageRepository

    loop = asyncio.new_event_loop()
    engine = create_async_engine(Settings(url=db.url))
    session = async_session_factory(engine)()
    try:
        yield Repos(
            "async",
            _Blocking(AsyncConversationRepository(session), loop),
            _Blocking(AsyncMessageRepository(session), loop),
            lambda: loop.run_until_complete(session.commit()),
            lambda: loop.run_until_complete(session.rollback()),
            session.sync_session,
        )
    finally:
        loop.run_until_complete(session.close())
        loop.run_until_complete(engine.dispose())
        loop.close()


def open_repos(flavour: str, db: TestDatabase):
    return sync_repos(db) if flavour == "sync" else async_repos(db)
