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
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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

    def __post_init__(self) -> None:
        # Every URL chatdb connects with went through normalize_url, however Settings was built.
        object.__setattr__(self, "url", normalize_url(self.url))

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The password as given and decoded: strings no message may contain."""
        password = urlsplit(self.url).password
        if not password:
            return ()
        return tuple({password, unquote(password)})

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
        return replace(self, url=url, source=source)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_NOT_PERCENT_ENCODING = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SECRET_PARAMETER = re.compile(r"(?P<head>[?&][^=&#]*password[^=&#]*=)[^&#]*", re.IGNORECASE)
_ENCODE_HINT = (
    "percent-encode special characters in the user name and password (@ as %40, / as %2F, # as %23, % as %25)"
)


def _refuse(problem: str) -> ConfigurationError:
    # Never quotes the URL: when it cannot be parsed, any part of it may be a password.
    return ConfigurationError(f"the database URL cannot be used: {problem}")


def normalize_url(url: str) -> str:
    """Accept ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://``.

    Returns the URL with the psycopg 3 driver named, which SQLAlchemy needs
    (a bare ``postgresql://`` would select psycopg2), and the user name and
    password percent-encoded, so every later parser reads them the same way.
    A URL that cannot be read one way only (an ``@``, ``/``, ``?`` or ``#`` of
    a password not percent-encoded, say) is refused with a message that
    quotes no part of it.
    """
    url = url.strip()
    if not url:
        raise ConfigurationError("the database URL is empty")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse("it is not valid UTF-8 text") from None
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise _refuse(f"it contains a space or a control character; {_ENCODE_HINT}, and a space as %20")
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise _refuse("it is not a URL (expected postgresql://user:password@host:5432/dbname)")
    if scheme.lower() not in _ACCEPTED_SCHEMES:
        raise ConfigurationError(
            f"unsupported URL scheme {scheme!r}: use postgresql://, postgres:// or postgresql+psycopg://"
        )
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in tail or authority.count("@") > 1:
        raise _refuse(f"it has more than one '@', or one after the host; {_ENCODE_HINT}")
    login, at, hostport = authority.rpartition("@")
    if at:
        if _NOT_PERCENT_ENCODING.search(login):
            raise _refuse(
                f"the user name or password has a '%' that starts no percent-encoded character; {_ENCODE_HINT}"
            )
        user, colon, password = login.partition(":")
        try:
            user, password = unquote(user, errors="strict"), unquote(password, errors="strict")
        except UnicodeDecodeError:
            raise _refuse("the user name or password is not valid UTF-8 once percent-decoded") from None
        login = quote(user, safe="") + (":" + quote(password, safe="") if colon else "")
    normalized = f"{DRIVER_SCHEME}://{login}{at}{hostport}{tail}"
    try:
        parts = urlsplit(normalized)
        parts.port
    except ValueError:
        # The host part, when there is no '@', may be "user:password" missing its host.
        raise _refuse("its host or port is malformed (a port is a number from 0 to 65535)") from None
    if hostport.endswith(":"):
        raise _refuse("its port is empty")
    _check_parameters(parts.query, url)
    try:
        (parts.hostname or "").encode("idna")
    except UnicodeError:
        # Caught here: the resolver would fail at connect time with a bare UnicodeError.
        raise _refuse("its host name is not a valid host name") from None
    return normalized


def _check_parameters(query: str, url: str) -> None:
    """Every ``?name=value`` must be a libpq connection parameter, or connecting fails with a vaguer message."""
    if not query:
        return
    import psycopg.pq

    known = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
    unknown = [name for name, _ in parse_qsl(query, keep_blank_values=True) if name not in known]
    if not unknown:
        return
    kind = "(libpq's, such as sslmode, connect_timeout or application_name)"
    if _may_hold_a_password(url):
        # A password written without percent-encoding may run on past any "@" or "?": name no part of it.
        pairs = parse_qsl(query, keep_blank_values=True)
        places = [str(i) for i, (name, _) in enumerate(pairs, 1) if name not in known]
        which = (
            f"query parameter number {places[0]} of {len(pairs)} is not a connection parameter"
            if len(places) == 1
            else f"query parameters number {', '.join(places)} of {len(pairs)} are not connection parameters"
        )
        raise ConfigurationError(f"the database URL's {which} {kind}; if it is part of a password, {_ENCODE_HINT}")
    names = ", ".join(repr(n) for n in dict.fromkeys(unknown))
    raise ConfigurationError(
        f"the database URL {mask_url(url)} has {names}, which "
        f"{'is not a connection parameter' if len(unknown) == 1 else 'are not connection parameters'} {kind}"
    )


def _may_hold_a_password(url: str) -> bool:
    """A ``:`` anywhere before the path (a password, or a port after which one may hide)."""
    rest = url.partition("://")[2]
    return ":" in re.split(r"/", rest, maxsplit=1)[0]


def mask_url(url: str) -> str:
    """The URL with everything that may be a password replaced by ``***``.

    Conservative whatever the URL's shape: after the scheme, everything
    between the first ``:`` and the last ``@`` is hidden (the user name before
    it stays), and so is every query parameter whose name contains
    "password".
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    login, at, after = rest.rpartition("@")
    if at and ":" in login:
        rest = f"{login.split(':', 1)[0]}:***@{after}"
    return scheme + "://" + _SECRET_PARAMETER.sub(r"\g<head>***", rest)


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
            return value, name  # type: ignore[return-value]  # name is one of URL_ENV_VARS, a UrlSource
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
                "no database configured: pass {url_option} or set CHATDB_DATABASE_URL",
                parameters=("url_option",),
            )
        from chatdb import embedded

        url = normalize_url(str(embedded.ensure_running().url))
        source = "embedded"
    return Settings(
        url=url,
        source=source,
        pool=pool,
        connect_timeout=connect_timeout,
        prepared_statements=prepared,  # type: ignore[arg-type]  # validated against the Literal's values above
    )
