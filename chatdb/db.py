"""Engines, sessions and the translation of connection failures.

:class:`Database` is what every command and job holds: it builds the sync
engine (and, for the async web app, an async engine) from :class:`Settings`
with the plan's pool settings, and turns driver errors into chatdb's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from chatdb.config import Settings, load_settings
from chatdb.errors import (
    ChatdbError,
    ConfigurationError,
    DatabaseError,
    DatabaseUnavailable,
    LockTimeoutError,
    PermissionDeniedError,
    ReadOnlyServerError,
    ReplicationConflictError,
    UsageError,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
    from sqlalchemy.orm import Session, sessionmaker


def read_json(text: str | bytes) -> Any:
    """``json.loads`` for the values PostgreSQL hands back, and one chatdb error for what Python cannot read.

    PostgreSQL stores (and ``chatdb import`` restores) JSON nested far deeper
    than Python's recursion limit lets ``json`` decode; reading such a value
    would otherwise end in a RecursionError.
    """
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise DatabaseError(
            "database error: a stored JSON value (message metadata) is nested more deeply than Python reads "
            "(about a thousand levels); chatdb export and psql read it as text"
        ) from None


def engine_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``create_engine``/``create_async_engine``."""
    connect_args: dict[str, Any] = {
        "connect_timeout": settings.connect_timeout,
        "application_name": settings.application_name,
    }
    if not settings.use_prepared_statements:
        # psycopg 3 prepares a statement after it ran this many times; None never does.
        connect_args["prepare_threshold"] = None
    return {
        "pool_size": settings.pool.size,
        "max_overflow": settings.pool.max_overflow,
        "pool_timeout": settings.pool.timeout,
        "pool_recycle": settings.pool.recycle,
        "pool_pre_ping": settings.pool.pre_ping,
        "connect_args": connect_args,
        "json_deserializer": read_json,
    }


def create_engine(settings: Settings) -> Engine:
    import sqlalchemy

    try:
        return sqlalchemy.create_engine(settings.url, **engine_options(settings))
    except (ValueError, sqlalchemy.exc.ArgumentError):
        # The driver's own message may quote the URL, password included: say it in our words.
        raise ConfigurationError(
            f"the database URL {settings.display_url} is malformed "
            "(check the port, and percent-encode special characters in the user and password)"
        ) from None


def create_async_engine(settings: Settings) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine as _create

    return _create(settings.url, **engine_options(settings))


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    return async_sessionmaker(engine, expire_on_commit=False)


@contextmanager
def translate_errors(settings: Settings | None = None) -> Iterator[None]:
    """Re-raise driver and SQLAlchemy errors as :class:`ChatdbError` subclasses."""
    import psycopg
    from sqlalchemy import exc as sa_exc

    try:
        yield
    except sa_exc.OperationalError as exc:
        where = f" to {settings.display_url}" if settings else ""
        known = server_condition(exc)
        if known is not None:
            raise known from exc
        if _is_connect_failure(exc):
            raise DatabaseUnavailable(_scrub(f"cannot connect{where}: {_describe(exc, settings)}", settings)) from exc
        if exc.connection_invalidated:
            # Connected once, then lost (server restart, network): not a login problem.
            raise DatabaseUnavailable(_scrub(f"lost the connection{where}: {_describe(exc)}", settings)) from exc
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: lock_timeout, NOWAIT
            raise LockTimeoutError(
                f"{_first_line(exc)}: another session holds a lock this needs (see pg_locks); "
                "run it again when that session is done (a job waits CHATDB_JOB_LOCK_TIMEOUT at most)"
            ) from exc
        raise DatabaseError(_scrub(f"database error: {_first_line(exc)}", settings)) from exc
    except sa_exc.TimeoutError as exc:
        raise DatabaseUnavailable(
            "no connection available from the pool in time (raise CHATDB_POOL_SIZE or CHATDB_POOL_TIMEOUT)"
        ) from exc
    except sa_exc.DBAPIError as exc:
        known = server_condition(exc)
        if known is not None:
            raise known from exc
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501":
            # PostgreSQL's own line already reads "permission denied for table ...".
            raise PermissionDeniedError(
                f"{_first_line(exc)}: the role lacks a grant this command needs (see docs/security.md)"
            ) from exc
        raise DatabaseError(_scrub(f"database error: {_first_line(exc)}", settings)) from exc
    except UnicodeEncodeError as exc:
        # A value with lone surrogates: bytes that were not UTF-8 on the command line or in a file name.
        raise UsageError(f"{ascii(exc.object[exc.start : exc.end + 8])}… is not valid UTF-8 text") from None
    except psycopg.Error as exc:  # raw psycopg, as the benchmark's baseline uses it
        known = server_condition(exc)
        if known is not None:
            raise known from exc
        raise


def server_condition(exc: Any) -> ChatdbError | None:
    """Failures that come from where chatdb is connected, said with what fixes them.

    ``exc`` is a SQLAlchemy error wrapping psycopg's, or psycopg's own.
    """
    sqlstate = getattr(getattr(exc, "orig", None) or exc, "sqlstate", None)
    line = _first_line(exc)
    if sqlstate == "40001" and "conflict with recovery" in line:
        return ReplicationConflictError(
            "the standby cancelled this read to replay changes from the primary (a replication conflict); "
            "run it again, or run it on the primary"
        )
    if sqlstate in ("42P05", "26000") and "prepared statement" in line:
        # "_pg3_0 already exists" / "does not exist": a pooler moved the session under the driver.
        return DatabaseError(
            f"database error: {line}: set CHATDB_PREPARED_STATEMENTS=off (a transaction-mode pooler "
            "such as PgBouncer is in between and does not keep prepared statements)"
        )
    if sqlstate == "25006":
        return ReadOnlyServerError(
            f"{line}: the server is read-only (a standby, or default_transaction_read_only is on); "
            "run this against the primary"
        )
    return None


def _scrub(message: str, settings: Settings | None) -> str:
    """The message without the password, should a driver ever quote it."""
    for secret in settings.secrets if settings else ():
        if len(secret) >= 3:
            message = message.replace(secret, "***")
    return message


def _is_connect_failure(exc: Any) -> bool:
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is None:
        # psycopg raises OperationalError with no SQLSTATE both when it never got a
        # session and when an open one breaks ("server closed the connection").
        first = str(orig).strip().lower()
        return first.startswith(("connection failed", "connection to server", "connection timeout expired"))
    return sqlstate in ("28P01", "28000", "3D000", "57P03")


def _describe(exc: Any, settings: Settings | None = None) -> str:
    from urllib.parse import parse_qs, urlsplit

    from chatdb.errors import describe_connection_failure

    said = describe_connection_failure(exc)
    if settings is not None and said.startswith("timed out"):
        parts = urlsplit(settings.url)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["the local socket"])[0]
        port = parts.port or query.get("port", ["5432"])[0]
        said = f"no answer from {host} port {port} within {settings.connect_timeout}s (CHATDB_CONNECT_TIMEOUT)"
    return said


def _first_line(exc: Any) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Database:
    """One configured database: engine, sessions, and error translation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker[Session] | None = None

    @classmethod
    def from_options(cls, url: str | None = None) -> Database:
        return cls(load_settings(url))

    @property
    def display_url(self) -> str:
        return self.settings.display_url

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.settings)
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside a transaction that commits on success."""
        with self.translate(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; the caller commits (``session.commit()``) what it wants kept."""
        from sqlalchemy.orm import sessionmaker

        if self._sessionmaker is None:
            self._sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        with self.translate(), self._sessionmaker() as session:
            yield session

    def translate(self) -> AbstractContextManager[None]:
        return translate_errors(self.settings)

    def server_version(self) -> str:
        with self.transaction() as conn:
            return server_version(conn)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessionmaker = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


def server_version(conn: Connection) -> str:
    """The server's version as it reports it (``16.4``, ``15.8 (Debian 15.8-1)``)."""
    return str(conn.exec_driver_sql("SHOW server_version").scalar_one())
