"""chatdb's command line: one module per command, all sharing ``_app`` and ``_output``."""

from __future__ import annotations

from chatdb.cli import (
    archive,
    bench,
    conversations,
    doctor,
    embedded,
    erase,
    export,
    history,
    hold,
    importing,
    lock,
    migrate,
    prune,
    search,
    seed,
    stats,
    status,
    version,
)
from chatdb.cli._app import app

__all__ = ["app", "main"]

migrate.register(app)
status.register(app)
conversations.register(app)
history.register(app)
search.register(app)
stats.register(app)
doctor.register(app)
archive.register(app)
export.register(app)
importing.register(app)
prune.register(app)
erase.register(app)
hold.register(app)
seed.register(app)
bench.register(app)
embedded.register(app)
lock.register(app)
version.register(app)


def main() -> None:
    """The ``chatdb`` program: SIGINT and SIGTERM are stop requests from start to exit."""
    from chatdb.jobs import stopping

    with stopping.handling_signals():
        stopping.ignore_after_exit()
        app()
