"""Every command over TLS with a SCRAM password, as Neon's connection strings ask for it.

The server (``servers/tls.py``) rejects every connection that is not TLS and
authenticates with SCRAM-SHA-256, so a command that works here used both.
Certificate checks (``verify-full`` with the suite's CA) work by the right
host name and fail with one line by a wrong one, or with another CA; and no
password shows, with or without ``--debug``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Cli, assert_one_line_error
from servers.tls import CLEARTEXT_ROLE, ROLE, TlsServer, tls_database, tls_server  # noqa: F401 - fixtures

NEON_PARAMS = {"sslmode": "require", "channel_binding": "require"}


def test_every_command_works_over_tls_with_scram(tls_server: TlsServer, tls_database: str, tmp_path: Path) -> None:
    cli = Cli(tls_server.url(tls_database, **NEON_PARAMS))
    printed: list[str] = []

    def run(*args: str) -> dict:
        result = cli("--debug", *args, "--json")
        printed.append(result.stdout + result.stderr)
        assert result.exit_code == 0, (args, result.stderr)
        return result.json()

    assert run("version")
    run("migrate")
    assert run("seed", "--messages", "200", "--conversations", "10", "--users", "3")["messages"] == 200
    assert run("status")["up_to_date"] is True
    listed = run("conversations", "--all")["conversations"]
    assert len(listed) == 10
    assert run("history", listed[0]["id"])["messages"]
    assert run("stats")
    assert run("doctor")
    assert run("archive", "--older-than", "1d")["changed"] > 0
    assert run("unarchive", "--user", "chatdb-seed-000001")["dry_run"] is False
    assert run("export", "-o", str(tmp_path / "all.jsonl"))["conversations"] == 10
    pruned = run("prune", "--older-than", "1d", "--export", str(tmp_path / "pruned.jsonl"), "--yes")
    assert pruned["export_verified"] is True and pruned["deleted"]["conversations"] > 0
    restored = run("import", str(tmp_path / "pruned.jsonl"))
    assert restored["inserted"] == pruned["deleted"]
    assert run("bench", "--duration", "1s", "--clients", "2", "--workers", "1", "--sample", "5")["errors"] == 0
    assert run("lock", "status")["held"] is False
    assert run("lock", "break", "--yes")["broken"] is False
    assert run("seed", "--remove", "--yes")["conversations"] == 10
    assert run("migrate", "base", "--yes")
    sql = cli("migrate", "--sql")
    assert sql.exit_code == 0 and "CREATE TABLE conversations" in sql.stdout, sql.stderr

    for output in printed:
        assert tls_server.password not in output
    with tls_server.admin(tls_database) as admin:
        assert admin.execute("SELECT to_regclass('conversations')").fetchone() == (None,)
        stored = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [ROLE]).fetchone()
    assert stored[0].startswith("SCRAM-SHA-256$")


def test_verify_full_with_the_ca_works_by_the_certificates_host_name(tls_server: TlsServer, tls_database: str) -> None:
    url = tls_server.url(tls_database, sslmode="verify-full", sslrootcert=str(tls_server.ca_file))
    result = Cli(url)("status", "--json")
    assert result.exit_code == 0, result.stderr


FAILURES = {
    # The certificate names localhost only.
    "wrong host name": (
        {"host": "127.0.0.1", "sslmode": "verify-full", "sslrootcert": "CA"},
        ('TLS certificate is for "localhost"', 'not "127.0.0.1"', "verify-full"),
    ),
    "another CA": (
        {"sslmode": "verify-full", "sslrootcert": "OTHER_CA"},
        ("TLS certificate could not be verified", "sslrootcert"),
    ),
    "another CA, verify-ca": (
        {"sslmode": "verify-ca", "sslrootcert": "OTHER_CA"},
        ("TLS certificate could not be verified",),
    ),
    "system CAs": (
        {"sslmode": "verify-full", "sslrootcert": "system"},
        ("TLS certificate could not be verified",),
    ),
    "no CA file": (
        {"sslmode": "verify-full", "sslrootcert": "/nonexistent/root.crt"},
        ('"/nonexistent/root.crt" does not exist', "sslrootcert"),
    ),
    "without TLS": (
        {"sslmode": "disable"},
        (f'user "{ROLE}"', "only over TLS", "sslmode=require"),
    ),
    "wrong password": (
        {"password": "not-the-password", **NEON_PARAMS},
        (f'authentication failed for user "{ROLE}"',),
    ),
    "no channel binding": (
        {"role": CLEARTEXT_ROLE, **NEON_PARAMS},
        ("channel_binding=require", "without SCRAM channel binding"),
    ),
}


@pytest.mark.parametrize(("given", "fragments"), FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.parametrize("flags", [(), ("--debug",)], ids=["plain", "debug"])
def test_a_tls_or_scram_failure_is_one_line_without_the_password(
    tls_server: TlsServer, given: dict[str, str], fragments: tuple[str, ...], flags: tuple
) -> None:
    files = {"CA": str(tls_server.ca_file), "OTHER_CA": str(tls_server.other_ca_file)}
    params = {key: files.get(value, value) for key, value in given.items()}
    url = tls_server.url("postgres", **params)  # every case fails before it could read a database
    result = Cli(url)(*flags, "status")
    assert tls_server.password not in result.stdout + result.stderr
    if flags:
        assert result.exit_code == 1 and "Traceback" in result.stderr
        assert all(fragment in result.stderr for fragment in fragments), result.stderr
    else:
        assert_one_line_error(result, 1, "cannot connect to", *fragments)


def test_the_same_role_works_without_channel_binding_when_not_asked(tls_server: TlsServer) -> None:
    """The channel-binding failure above is channel_binding's doing: the plain-password role can log in."""
    result = Cli(tls_server.url("postgres", role=CLEARTEXT_ROLE, sslmode="require"))("status", "--json")
    assert result.exit_code == 0, result.stderr


def test_the_password_can_stay_out_of_the_url(tls_server: TlsServer) -> None:
    """libpq's PGPASSWORD (like ~/.pgpass and PGSSLROOTCERT) reaches the connection: chatdb goes through libpq."""
    url = tls_server.url("postgres", password="", sslmode="verify-full")
    env = {"PGPASSWORD": tls_server.password, "PGSSLROOTCERT": str(tls_server.ca_file)}
    result = Cli(url)("status", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert tls_server.password not in result.stdout + result.stderr
