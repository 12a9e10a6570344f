"""chatdb's Alembic migrations, run in-process.

chatdb keeps its revision history in its own version table,
``chatdb_alembic_version``, so a database whose ``alembic_version`` belongs
to the existing application migrates without either history seeing the
other. Each function here takes a :class:`~chatdb.db.Database` and hands its
connection to ``env.py`` through ``config.attributes["connection"]``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatdb.errors import ChatdbError, MigrationError, UsageError
from chatdb.models import BOOKKEEPING_TABLES, CHATDB_TABLES
from chatdb.timeparse import parse_timeout

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

VERSION_TABLE = "chatdb_alembic_version"
# Serializes concurrent `chatdb migrate` runs (two deploys at once).
MIGRATION_LOCK_KEY = 0x63686174_0001  # "chat" + 1
DEFAULT_LOCK_TIMEOUT = "10s"
DEFAULT_STATEMENT_TIMEOUT = "5min"


def script_location() -> Path:
    """The migration scripts: shipped in the package, or the checkout's ``alembic/``."""
    here = Path(__file__).resolve().parent
    packaged = here / "_alembic"
    if (packaged / "env.py").exists():
        return packaged
    checkout = here.parent / "alembic"
    if (checkout / "env.py").exists():
        return checkout
    raise ChatdbError(f"chatdb's migration scripts are missing (looked in {packaged} and {checkout})")


def _timeout_setting(name: str, default: str) -> str:
    return parse_timeout(os.environ.get(name, default), name)


def lock_timeout() -> str:
    """How long a migration waits for a table lock before failing (``CHATDB_MIGRATION_LOCK_TIMEOUT``)."""
    return _timeout_setting("CHATDB_MIGRATION_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)


def statement_timeout() -> str:
    """The longest one migration statement may run (``CHATDB_MIGRATION_STATEMENT_TIMEOUT``)."""
    return _timeout_setting("CHATDB_MIGRATION_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT)


def session_timeouts() -> list[str]:
    """The SET statements every migration transaction starts with, online and in --sql."""
    return [
        f"SET LOCAL lock_timeout = '{lock_timeout()}'",
        f"SET LOCAL statement_timeout = '{statement_timeout()}'",
    ]


OWN_TABLES = (*CHATDB_TABLES, *BOOKKEEPING_TABLES)


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Limit Alembic's comparisons to chatdb's own tables (the plan's two and its bookkeeping)."""
    if type_ == "table":
        return name in OWN_TABLES
    return True


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Keep ``users`` (declared in the models only so foreign keys resolve) out of comparisons."""
    if type_ == "table":
        return name in OWN_TABLES
    return True


def alembic_config(connection: Connection | None = None, *, buffer: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    cfg = Config(output_buffer=buffer) if buffer is not None else Config()
    cfg.set_main_option("script_location", str(script_location()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


@dataclass(frozen=True)
class Revision:
    id: str
    down_revision: str | None
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "down_revision": self.down_revision, "description": self.description}


def revisions() -> list[Revision]:
    """chatdb's revisions, oldest first."""
    script = _script()
    heads = script.get_heads()
    if len(heads) != 1:
        raise MigrationError(f"chatdb's migrations must have one head, found {len(heads)}")
    ordered = [
        Revision(rev.revision, rev.down_revision, rev.doc or "")  # type: ignore[arg-type]  # chatdb has no merge revisions: one down_revision
        for rev in script.walk_revisions("base", "heads")
    ]
    return list(reversed(ordered))


def head() -> str:
    return revisions()[-1].id


def resolve_target(target: str | None) -> str | None:
    """A revision id for ``target`` (None for base); accepts head, base, ids and unique prefixes."""
    known = [rev.id for rev in revisions()]
    if target is None or target in ("head", "heads"):
        return known[-1]
    if target == "base":
        return None
    if target in known:
        return target
    matches = [rev for rev in known if rev.startswith(target)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"revision {target!r} is ambiguous: {', '.join(matches)}")
    raise UsageError(f"unknown revision {target!r}; known revisions: base, {', '.join(known)}, head")


def current_revision(conn: Connection) -> str | None:
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    # chatdb's history is one line, so its table holds at most one row; several (a newer
    # chatdb's branches, or a hand edit) leave no one revision to trust.
    heads = sorted(context.get_current_heads())
    if len(heads) > 1:
        raise MigrationError(
            f"the database records more than one revision in {VERSION_TABLE} "
            f"({', '.join(repr(h) for h in heads)}), which this version of chatdb does not expect "
            "(is a newer chatdb managing it?); nothing was done"
        )
    return heads[0] if heads else None


def current(db: Database) -> str | None:
    with db.transaction() as conn:
        return current_revision(conn)


def _position(rev: str | None, known: list[str]) -> int:
    if rev is None:
        return -1
    if rev not in known:
        raise MigrationError(
            f"the database is at revision {rev!r}, which this version of chatdb does not know "
            "(is a newer chatdb managing it?)"
        )
    return known.index(rev)


@dataclass(frozen=True)
class MigrationPlan:
    current: str | None
    target: str | None
    direction: str  # "upgrade", "downgrade" or "none"
    steps: list[Revision] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "target": self.target,
            "direction": self.direction,
            "steps": [step.as_dict() for step in self.steps],
        }


def plan(current_rev: str | None, target: str | None) -> MigrationPlan:
    """The revisions between ``current_rev`` and ``target``, in the order they would run."""
    revs = revisions()
    known = [rev.id for rev in revs]
    here, there = _position(current_rev, known), _position(target, known)
    if there > here:
        return MigrationPlan(current_rev, target, "upgrade", revs[here + 1 : there + 1])
    if there < here:
        return MigrationPlan(current_rev, target, "downgrade", list(reversed(revs[there + 1 : here + 1])))
    return MigrationPlan(current_rev, target, "none")


@dataclass(frozen=True)
class MigrationResult:
    plan: MigrationPlan
    revision: str | None
    # What chatdb leaves behind at base, each with how to remove it.
    remaining: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.plan.as_dict(), "revision": self.revision, "remaining": self.remaining}


def migrate(db: Database, target: str | None = "head") -> MigrationResult:
    """Move chatdb's schema to ``target`` (head when None); a no-op when already there."""
    from alembic.util import CommandError
    from sqlalchemy import text

    from alembic import command
    from chatdb.topology import require_writable

    wanted = resolve_target(target)
    with db.translate():
        with db.engine.begin() as conn:
            require_writable(conn, "migrate", db.display_url)
            # Wait for any other migration first, so the plan reflects its outcome.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            steps = plan(current_revision(conn), wanted)
            if steps.direction == "upgrade":
                _check_users_table(conn)
            if steps.direction != "none":
                cfg = alembic_config(conn)
                destination = wanted or "base"
                try:
                    if steps.direction == "upgrade":
                        command.upgrade(cfg, destination)
                    else:
                        command.downgrade(cfg, destination)
                except CommandError as exc:
                    raise MigrationError(f"migration failed: {exc}") from exc
            reached = current_revision(conn)
            remaining = _left_at_base(conn) if reached is None else []
    return MigrationResult(plan=steps, revision=reached, remaining=remaining)


def _check_users_table(conn: Connection) -> None:
    """Refuse, before any DDL, a users table chatdb's foreign keys cannot reference (doctor's check)."""
    from chatdb.reports.doctor import users_table_check

    exists = conn.exec_driver_sql("SELECT to_regclass('users') IS NOT NULL").scalar_one()
    if not exists:
        return  # migration 001 creates a minimal one
    check = users_table_check(conn)
    if check.status == "fail":
        raise MigrationError(f"cannot migrate: {check.detail} (chatdb doctor reports the same); nothing was changed")


# How to remove what base leaves behind, said in the messages below (the prefix is seed's).
_REMOVE_DEMO_USERS = "DELETE FROM users WHERE id LIKE 'chatdb-seed-%'"
_REMOVE_HISTORY = "DROP TABLE " + VERSION_TABLE


def _left_at_base(conn: Connection) -> list[str]:
    """What a downgrade to base leaves in place: demo users in the application's table, chatdb's history table."""
    from chatdb.jobs.seed import SEED_USER_PREFIX

    left = []
    if conn.exec_driver_sql("SELECT to_regclass('users') IS NOT NULL").scalar_one():
        demo = conn.exec_driver_sql(
            "SELECT count(*) FROM users WHERE starts_with(id::text, %(p)s)", {"p": SEED_USER_PREFIX}
        ).scalar_one()
        if demo:
            left.append(
                f"{demo:,} demo users ({SEED_USER_PREFIX}*) in the application's users table: remove them with "
                f"{_REMOVE_DEMO_USERS} (or run chatdb seed --remove before downgrading)"
            )
    if conn.exec_driver_sql("SELECT to_regclass(%(t)s) IS NOT NULL", {"t": VERSION_TABLE}).scalar_one():
        left.append(
            f"the empty table {VERSION_TABLE} (chatdb's migration history; harmless): remove it with {_REMOVE_HISTORY}"
        )
    return left


def migration_sql(target: str | None, from_revision: str | None) -> str:
    """The SQL that moves the schema from ``from_revision`` to ``target``, without running it."""
    from alembic import command

    wanted = resolve_target(target)
    steps = plan(from_revision, wanted)
    if steps.direction == "none":
        return ""
    buffer = io.StringIO()
    cfg = alembic_config(buffer=buffer)
    start, end = from_revision or "base", wanted or "base"
    if steps.direction == "upgrade":
        command.upgrade(cfg, f"{start}:{end}", sql=True)
    else:
        command.downgrade(cfg, f"{start}:{end}", sql=True)
    return buffer.getvalue()


def schema_drift(conn: Connection) -> list[Any]:
    """Differences between chatdb's models and the live tables (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from chatdb.models import Base

    context = MigrationContext.configure(
        conn,
        opts={
            "version_table": VERSION_TABLE,
            "include_name": include_name,
            "include_object": include_object,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, Base.metadata))


# --- the schema guard: every job, report and command that needs chatdb's tables checks here ---


def existing_tables(conn: Connection, names: tuple[str, ...]) -> set[str]:
    from sqlalchemy import text

    rows = conn.execute(
        text("SELECT name FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NOT NULL"),
        {"names": list(names)},
    )
    return {row[0] for row in rows}


def require_tables(conn: Connection, *names: str) -> None:
    """Fail with a clear message when chatdb's tables have not been created yet."""
    present = existing_tables(conn, names)
    missing = [name for name in names if name not in present]
    if missing:
        what = f"table {missing[0]} does not" if len(missing) == 1 else f"tables {', '.join(missing)} do not"
        raise MigrationError(f"{what} exist in this database (run: chatdb migrate)")


def require_current_schema(conn: Connection) -> None:
    """Fail before any work unless chatdb's tables exist at this chatdb's newest revision.

    The check every job makes (and seed and bench): a database migrated by a
    newer chatdb (a revision this one does not know) or not yet migrated to
    the newest revision is refused with the same words as ``chatdb status``.
    """
    require_tables(conn, *CHATDB_TABLES)
    current = current_revision(conn)
    newest = head()
    if current == newest:
        return
    if current is None:
        raise MigrationError("chatdb's migrations have not been run on this database (run: chatdb migrate)")
    pending = plan(current, newest).steps  # a revision this chatdb does not know raises here
    raise MigrationError(
        f"the database is at revision {current}, {len(pending)} behind this chatdb's {newest}; "
        "nothing was done (run: chatdb migrate)"
    )
