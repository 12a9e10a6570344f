"""No part of a password is ever printed, whatever the URL's shape and wherever it came from.

Passwords are drawn from a hostile alphabet (the characters a URL gives a
meaning to, spaces, unicode) and put in the URL raw, percent-encoded, or as a
query parameter; the URL comes from ``--database-url``, ``CHATDB_DATABASE_URL``
or ``DATABASE_URL``; every command family runs with and without ``--debug`` and
``--json``, against a port nobody listens on, a host that does not resolve, a
missing database, a real server, and (embedded server) a wrong password. No
three consecutive characters of the password may appear in stdout or stderr,
in any spelling (raw, percent-encoded, escaped).

Only three-character pieces that hold one of the marker characters (which
chatdb's own output never contains) are looked for, so "://" or "127" in a
password cannot match chatdb's own text by chance.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
from helpers import Cli, Server, TestDatabase, as_role, with_database
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from chatdb.config import mask_url, normalize_url
from chatdb.errors import ConfigurationError

MARKERS = "жЩ€ßΩ🔑Ǆ"
HOSTILE = "@:/?#%[] +&=;'\"\\\t"
passwords = st.text(alphabet=MARKERS + HOSTILE + "aZ9", min_size=3, max_size=14).filter(
    lambda p: any(c in MARKERS for c in p)
)
ISSUE_EXAMPLES = ["Secr3tЩ/xyz", "SecЩ@ret", "p@ss:w/o%rЩd#1?x"]

COMMANDS = [
    ("status",),
    ("conversations",),
    ("history", "00000000-0000-0000-0000-000000000000"),
    ("stats",),
    ("doctor",),
    ("migrate",),
    ("archive", "--older-than", "1d", "--dry-run"),
    ("unarchive", "--user", "alice", "--dry-run"),
    ("export", "-o", "/nonexistent-dir/x.jsonl"),
    ("export",),
    ("import", __file__),
    ("prune", "--older-than", "1d", "--dry-run"),
    ("seed", "--remove", "--dry-run"),
]
SOURCES = ["option", "CHATDB_DATABASE_URL", "DATABASE_URL"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def leaks(password: str, text: str) -> list[str]:
    """The spellings of the password's marked three-character pieces that occur in ``text``."""
    pieces = {password[i : i + 3] for i in range(len(password) - 2)}
    found = []
    for piece in pieces:
        if not any(c in MARKERS for c in piece):
            continue
        for form in {
            piece,
            quote(piece, safe=""),
            quote(piece),
            ascii(piece)[1:-1],
            json.dumps(piece)[1:-1],
            piece.encode("unicode_escape").decode(),
        }:
            if form in text:
                found.append(form)
    return found


def url_with(password: str, shape: str, host: str) -> str:
    """``host`` is ``host:port/db`` or ``/db?host=socket``."""
    if shape == "raw":
        return f"postgresql://app:{password}@{host}"
    if shape == "encoded":
        return f"postgresql+psycopg://app:{quote(password, safe='')}@{host}"
    if shape == "query":
        sep = "&" if "?" in host else "?"
        return f"postgres://app@{host}{sep}password={quote(password, safe='')}"
    if shape == "no host":
        return f"postgresql://app:{password}"
    return f"postgresql://app:{password}/{host}"  # "no @": the login without its host


def another_reading(url: str, shape: str) -> bool:
    """A login without its "@" that still reads as a valid URL of another meaning.

    ``postgresql://app:5432/x`` names host app, port 5432 and database x: no
    part of it is a password, so chatdb shows it like any other URL.
    """
    if shape not in ("no host", "no @"):
        return False
    try:
        normalize_url(url)
    except ConfigurationError:
        return False
    return True


def run(url: str, source: str, command: tuple[str, ...], debug: bool, as_json: bool):
    flags = ("--debug",) if debug else ()
    args = (
        *flags,
        *(("--database-url", url) if source == "option" else ()),
        *command,
        *(("--json",) if as_json else ()),
    )
    env = {source: url, "CHATDB_CONNECT_TIMEOUT": "2"} if source != "option" else {"CHATDB_CONNECT_TIMEOUT": "2"}
    return Cli(None)(*args, env=env)


@FAST
@given(
    password=passwords,
    shape=st.sampled_from(["raw", "encoded", "query", "no host", "no @"]),
    host=st.sampled_from(["127.0.0.1:1/chatdb", "no-such-host.invalid/chatdb", "[::1]:1/chatdb"]),
    source=st.sampled_from(SOURCES),
    command=st.sampled_from(COMMANDS),
    debug=st.booleans(),
    as_json=st.booleans(),
)
@example(
    password=ISSUE_EXAMPLES[0],
    shape="raw",
    host="127.0.0.1:1/chatdb",
    source="option",
    command=("status",),
    debug=True,
    as_json=False,
)
@example(
    password=ISSUE_EXAMPLES[1],
    shape="raw",
    host="127.0.0.1:1/chatdb",
    source="DATABASE_URL",
    command=("export",),
    debug=True,
    as_json=True,
)
@example(
    password=ISSUE_EXAMPLES[2],
    shape="raw",
    host="127.0.0.1:1/chatdb",
    source="CHATDB_DATABASE_URL",
    command=("doctor",),
    debug=True,
    as_json=True,
)
def test_no_part_of_a_password_is_printed_when_the_connection_fails(
    password: str, shape: str, host: str, source: str, command: tuple[str, ...], debug: bool, as_json: bool
) -> None:
    url = url_with(password, shape, host)
    assume(not another_reading(url, shape))
    result = run(url, source, command, debug, as_json)
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
    assert leaks(password, result.stdout + result.stderr) == [], (password, shape, result.stdout + result.stderr)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c)[:30])
def test_every_command_family_with_the_issue_passwords(command: tuple[str, ...]) -> None:
    for password, source in zip(ISSUE_EXAMPLES, SOURCES):
        for shape in ("raw", "encoded"):
            result = run(url_with(password, shape, "127.0.0.1:1/chatdb"), source, command, True, False)
            assert result.exit_code in (1, 2)
            assert leaks(password, result.stdout + result.stderr) == [], (password, shape, result.stderr)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    password=passwords,
    missing=st.booleans(),
    source=st.sampled_from(SOURCES),
    command=st.sampled_from(
        [("status",), ("archive", "--older-than", "1d", "--dry-run"), ("export", "--older-than", "1d", "-o", "OUT")]
    ),
    as_json=st.booleans(),
)
def test_no_part_of_a_password_is_printed_by_a_real_server(
    migrated_db: TestDatabase,
    pg_server: Server,
    tmp_path,
    password: str,
    missing: bool,
    source: str,
    command: tuple[str, ...],
    as_json: bool,
) -> None:
    """A server that answers: the command works (trust authentication ignores the password) or the database is missing."""
    command = tuple(str(tmp_path / "x.jsonl") if arg == "OUT" else arg for arg in command)
    base = with_database(pg_server.admin_url, "missing_db" if missing else migrated_db.name)
    url = as_role(base, "postgres", quote(password, safe=""))
    result = run(url, source, command, True, as_json)
    assert result.exit_code in ((1,) if missing else (0,)), (result.exit_code, result.stderr)
    assert leaks(password, result.stdout + result.stderr) == [], (password, result.stdout + result.stderr)


def test_a_wrong_password_is_not_printed(pg_server: Server, migrated_db: TestDatabase) -> None:
    if not pg_server.embedded:
        pytest.skip("needs a server whose authentication the suite controls (the embedded one)")
    role = f"pw_{uuid.uuid4().hex[:8]}"
    migrated_db.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'right'")
    pg_server.require_password_for(role)
    try:
        base = with_database(pg_server.admin_url, migrated_db.name)
        for password in ISSUE_EXAMPLES:
            for source in SOURCES:
                url = as_role(base, role, quote(password, safe=""))
                result = run(url, source, ("status",), True, True)
                assert result.exit_code == 1 and "authentication failed" in result.stderr, result.stderr
                assert leaks(password, result.stdout + result.stderr) == [], result.stderr
    finally:
        migrated_db.sql(f"DROP ROLE {role}")


@settings(max_examples=300, deadline=None)
@given(
    password=passwords,
    shape=st.sampled_from(["raw", "encoded", "query", "no host", "no @"]),
    scheme=st.sampled_from(["postgresql", "postgres", "postgresql+psycopg", "mysql", "u:Щ@x"]),
)
def test_normalizing_and_masking_never_quote_a_password(password: str, shape: str, scheme: str) -> None:
    """The library itself: a refused URL's message, and a usable URL's display form."""
    url = scheme + url_with(password, shape, "db.example.com:5432/app").removeprefix("postgresql").removeprefix(
        "postgres"
    )
    try:
        normalized = normalize_url(url)
    except ConfigurationError as exc:
        assert leaks(password, exc.message) == [], (url, exc.message)
        return
    assume(not another_reading(url, shape))
    assert leaks(password, mask_url(normalized)) == [], (url, mask_url(normalized))
    assert leaks(password, mask_url(url)) == [], (url, mask_url(url))
    assert normalize_url(normalized) == normalized  # normalizing twice changes nothing
