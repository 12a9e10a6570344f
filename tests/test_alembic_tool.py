"""pytest-alembic's default tests on chatdb's migrations, each on a fresh database.

pytest-alembic is what Alembic users run on their migration history: one head,
an upgrade from an empty database, models that match what the migrations
build (chatdb's own tables only, as ``include_name``/``include_object`` say),
and every revision down and up again. It hands ``env.py`` an Engine rather
than a Connection. The tests walk whatever revisions exist.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import TestDatabase
from pytest_alembic.tests import (  # noqa: F401 - collected from here
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)


@pytest.fixture
def alembic_config():
    from chatdb.migrations import alembic_config

    return alembic_config()


@pytest.fixture
def alembic_engine(empty_db: TestDatabase) -> Iterator[object]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(empty_db.url)
    try:
        yield engine
    finally:
        engine.dispose()
