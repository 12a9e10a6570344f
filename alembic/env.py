"""Alembic environment for chatdb's own tables.

Used by `chatdb migrate` (which passes its connection in
``config.attributes["connection"]``), by tools that pass an Engine there
instead (pytest-alembic), and by `alembic` run from a checkout.
"""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import text
from sqlalchemy.engine import Engine

from alembic import context
from chatdb.migrations import (
    MIGRATION_LOCK_KEY,
    VERSION_TABLE,
    include_name,
    include_object,
    session_timeouts,
)
from chatdb.models import Base

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

OPTIONS = {
    "target_metadata": Base.metadata,
    "version_table": VERSION_TABLE,
    "include_name": include_name,
    "include_object": include_object,
    "compare_type": True,
    "compare_server_default": True,
}


def run_offline() -> None:
    context.configure(
        url="postgresql+psycopg://",
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **OPTIONS,
    )
    with context.begin_transaction():
        for statement in session_timeouts():
            context.execute(statement)
        context.run_migrations()


def run_with(connection) -> None:
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        # One migration at a time per database, and never queue behind the
        # application's locks for long: fail fast and let the deploy retry.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        for statement in session_timeouts():
            connection.execute(text(statement))
        context.run_migrations()


def run_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Engine):
        # Alembic's cookbook passes a Connection; pytest-alembic passes an Engine.
        with given.connect() as conn:
            run_with(conn)
            conn.commit()
        return
    if given is not None:
        run_with(given)  # the caller's connection: the caller commits
        return

    from chatdb.config import load_settings
    from chatdb.db import create_engine

    url = context.get_x_argument(as_dictionary=True).get("database_url")
    engine = create_engine(load_settings(url))
    try:
        with engine.connect() as conn:
            run_with(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
