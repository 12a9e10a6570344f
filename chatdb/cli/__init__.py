"""chatdb's command line: one module per command, all sharing ``_app`` and ``_output``."""

from __future__ import annotations

from chatdb.cli import archive, embedded, export, importing, migrate, prune, status
from chatdb.cli._app import app

__all__ = ["app", "main"]

migrate.register(app)
status.register(app)
embedded.register(app)
archive.register(app)
export.register(app)
prune.register(app)
importing.register(app)


def main() -> None:
    app()
