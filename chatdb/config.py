"""Where chatdb's database URL and connection settings come from.

Order of precedence for the URL: the ``--database-url`` option, then
``CHATDB_DATABASE_URL``, then ``DATABASE_URL``; with none of them set chatdb
uses its embedded PostgreSQL (see :mod:`chatdb.embedded`).

This module imports nothing heavy, so ``chatdb --help`` stays fast.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chatdb.errors import ConfigurationError

URL_ENV_VARS = ("CHATDB_DATABASE_URL", "DATABASE_URL")
DRIVER_SCHEME = "postgresql+psycopg"
_ACCEPTED_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg_async")

PreparedStatements = Literal["auto", "on", "off"]
UrlSource = Literal["option", "CHATDB_DATABASE_URL", "DATABASE_URL", "embedded"]


@dataclass(frozen=True)
class PoolSettings:
    """Connection pool settings; the defaults are the plan's."""

    size: int = 10
    max_overflow: int = 20
    timeout: float = 30.0
    recycle: int = 3600
    pre_ping: bool = True


@dataclass(frozen=True)
class Settings:
    """Everything needed to open connections to one database."""

    url: str
    source: UrlSource = "option"
    pool: PoolSettings = field(default_factory=PoolSettings)
    connect_timeout: int = 10
    prepared_statements: PreparedStatements = "auto"
    application_name: str = "chatdb"

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    @property
    def use_prepared_statements(self) -> bool:
        """Server-side prepared statements: off unless asked for, or on the embedded server.

        Behind a transaction-mode pooler (Neon's ``-pooler`` endpoints, a
        PgBouncer of one's own under any host name) a statement prepared on
        one server connection is missing on the next, or clashes with another
        client's of the same name; chatdb cannot tell such a pooler from the
        server by its URL. So ``auto`` prepares only on the embedded server,
        which chatdb started itself; ``on`` is for a direct connection or a
        pooler that keeps prepared statements (PgBouncer 1.21+ with
        ``max_prepared_statements``).
        """
        if self.prepared_statements == "auto":
            return self.source == "embedded"
        return self.prepared_statements == "on"

    def with_url(self, url: str, source: UrlSource = "option") -> Settings:
        return replace(self, url=normalize_url(url), source=source)


def normalize_url(url: str) -> str:
    """Accept ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://``.

    Returns the URL with the psycopg 3 driver named, which SQLAlchemy needs
    (a bare ``postgresql://`` would select psycopg2).
    """
    url = url.strip()
    if not url:
        raise ConfigurationError("the database URL is empty")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"not a database URL: {mask_url(url)!s} "
            "(expected postgresql://user:password@host:5432/dbname)"
        )
    if scheme.lower() not in _ACCEPTED_SCHEMES:
        raise ConfigurationError(
            f"unsupported URL scheme {scheme!r}: use postgresql://, postgres:// "
            "or postgresql+psycopg://"
        )
    try:
        parts = urlsplit(f"{DRIVER_SCHEME}://{rest}")
        parts.port  # noqa: B018 - parses and validates the port
    except ValueError as exc:
        raise ConfigurationError(f"malformed database URL {mask_url(url)}: {exc}") from None
    _check_parameters(parts.query, url)
    try:
        (parts.hostname or "").encode("idna")
    except UnicodeError:
        # Caught here: the resolver would fail at connect time with a bare UnicodeError.
        raise ConfigurationError(f"malformed database URL {mask_url(url)}: invalid host name") from None
    return urlunsplit(parts)


def _check_parameters(query: str, url: str) -> None:
    """Every ``?name=value`` must be a libpq connection parameter, or connecting fails with a vaguer message."""
    if not query:
        return
    import psycopg.pq

    known = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
    unknown = [name for name, _ in parse_qsl(query, keep_blank_values=True) if name not in known]
    if unknown:
        names = ", ".join(repr(n) for n in dict.fromkeys(unknown))
        raise ConfigurationError(
            f"the database URL {mask_url(url)} has {names}, which "
            f"{'is not a connection parameter' if len(unknown) == 1 else 'are not connection parameters'} "
            "(libpq's, such as sslmode, connect_timeout or application_name)"
        )


def mask_url(url: str) -> str:
    """The URL with its password (in the netloc or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="/*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def configured_url(option: str | None = None) -> tuple[str, UrlSource] | None:
    """The URL the user configured and where it came from, or None for the embedded default."""
    if option is not None:  # an explicit empty --database-url is an error, not "unset"
        return option, "option"
    for name in URL_ENV_VARS:
        value = os.environ.get(name)
        if value and value.strip():
            return value, name  # type: ignore[return-value]
    return None


def load_settings(url_option: str | None = None, *, start_embedded: bool = True) -> Settings:
    """Build :class:`Settings` from the option, the environment and the embedded default.

    Pool and connection settings come from ``CHATDB_POOL_SIZE``,
    ``CHATDB_MAX_OVERFLOW``, ``CHATDB_POOL_TIMEOUT``, ``CHATDB_POOL_RECYCLE``,
    ``CHATDB_CONNECT_TIMEOUT`` and ``CHATDB_PREPARED_STATEMENTS``
    (``auto``/``on``/``off``).
    """
    pool = PoolSettings(
        size=_env_int("CHATDB_POOL_SIZE", 10, minimum=1),
        max_overflow=_env_int("CHATDB_MAX_OVERFLOW", 20),
        timeout=float(_env_int("CHATDB_POOL_TIMEOUT", 30, minimum=1)),
        recycle=_env_int("CHATDB_POOL_RECYCLE", 3600, minimum=-1),
    )
    connect_timeout = _env_int("CHATDB_CONNECT_TIMEOUT", 10, minimum=1)
    prepared = _env_choice("CHATDB_PREPARED_STATEMENTS", "auto", ("auto", "on", "off"))

    found = configured_url(url_option)
    if found is not None:
        raw, source = found
        url = normalize_url(raw)
    else:
        if not start_embedded:
            raise ConfigurationError(
                "no database configured: pass --database-url or set CHATDB_DATABASE_URL"
            )
        from chatdb import embedded

        url = normalize_url(embedded.ensure_running().url)
        source = "embedded"
    return Settings(
        url=url,
        source=source,
        pool=pool,
        connect_timeout=connect_timeout,
        prepared_statements=prepared,  # type: ignore[arg-type]
    )
