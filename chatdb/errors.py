"""chatdb's one error vocabulary.

Everything the library raises on purpose is a :class:`ChatdbError`. Each
carries a message a person can act on and the exit code the command line
uses for it, so the CLI needs exactly one handler. Callers never have to
import ``sqlalchemy.exc`` or ``psycopg`` to tell failures apart.
"""

from __future__ import annotations

import re
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class ChatdbError(Exception):
    """Base class for every error chatdb raises deliberately.

    A message may name the caller's parameters as ``{name}`` placeholders,
    listed in ``parameters``: :attr:`message` reads ``name`` (what a Python
    caller passed), and :meth:`render` lets the command line say its own
    option (``--max-rows`` for ``max_rows``) instead.
    """

    exit_code = EXIT_FAILURE
    # What a stopped or failed job adds, for the command line (None/False: nothing).
    cause: str | None = None  # the failure's own words, before the job's account was added
    stopped: str | None = None  # where an export-first prune stopped
    resume_from: Any = None  # the export (a Path) that ``prune --resume`` finishes from
    refuses_export: bool = False  # the check found lines ``chatdb import`` would refuse
    progress: dict[str, Any] | None = None  # how far a job got (JobInterrupted's JSON report)

    def __init__(self, message: str, *, parameters: tuple[str, ...] = ()) -> None:
        self.template = message
        self.parameters = parameters
        self.message = self._filled(None)
        super().__init__(self.message)

    def _filled(self, names: dict[str, str] | None) -> str:
        text = self.template
        for parameter in self.parameters:
            text = text.replace("{" + parameter + "}", (names or {}).get(parameter, parameter))
        return text

    def render(self, names: dict[str, str] | None = None) -> str:
        """The message with each parameter written as ``names`` says (else its own name).

        Text added to :attr:`message` after the error was made (how far a job
        got, say) is kept.
        """
        plain = self._filled(None)
        if not names or not self.parameters or not self.message.startswith(plain):
            return self.message
        return self._filled(names) + self.message[len(plain) :]

    def reword(self, message: str, *, parameters: tuple[str, ...] | None = None) -> None:
        """Say something else (what is true after a job stopped, say), with ``{parameter}`` placeholders."""
        self.template = message
        if parameters is not None:
            self.parameters = parameters
        self.message = self._filled(None)
        self.args = (self.message,)

    def __str__(self) -> str:
        return self.message


class UsageError(ChatdbError):
    """The caller asked for something malformed (bad option value, bad id)."""

    exit_code = EXIT_USAGE


class ConfigurationError(UsageError):
    """A setting (URL, pool size, environment variable) cannot be used."""


class DatabaseUnavailable(ChatdbError):
    """The server cannot be reached, refused the login, or lacks the database."""


class DatabaseError(ChatdbError):
    """A statement failed for a reason that is not the caller's input."""


class PermissionDeniedError(DatabaseError):
    """The connected role lacks a privilege the command needs (SQLSTATE 42501)."""


class ReadOnlyServerError(ChatdbError):
    """A command that changes data was pointed at a read-only standby or read-only server."""


class ReplicationConflictError(DatabaseError):
    """A standby cancelled a read to replay changes from the primary (a recovery conflict)."""


class MigrationError(ChatdbError):
    """A migration cannot be planned or applied."""


class NotFoundError(ChatdbError):
    """A conversation, message or user that was asked for does not exist."""


class ValidationError(UsageError):
    """A value breaks one of the schema's rules (length, role, status)."""


class ConflictError(ChatdbError):
    """The operation is not allowed in the row's current state."""


class AmbiguousError(UsageError):
    """A short id (a prefix) matches more than one row; the caller must give more of it."""


class ForeignKeyError(NotFoundError):
    """A referenced row (user, conversation) does not exist."""


class InvalidIdError(ValidationError):
    """An id that is not well formed (a conversation or message id that is not a UUID)."""


class InvalidRoleError(ValidationError):
    """A message role other than ``user`` or ``assistant``."""


class MessageTooLongError(ValidationError):
    """A user message longer than the schema allows (1,000 characters)."""


class ConversationNotFoundError(NotFoundError):
    """No conversation has the given id."""


class MessageNotFoundError(NotFoundError):
    """No message with the given id in that conversation (for example a paging cursor)."""


class UserNotFoundError(ForeignKeyError):
    """No row in the application's ``users`` table has the given id."""


class ConversationArchivedError(ConflictError):
    """Messages cannot be added to an archived conversation; unarchive it first."""


class ConversationOwnerError(ConflictError):
    """A message names a user other than the one the conversation belongs to."""


class ChecksFailedError(ChatdbError):
    """A health check (``chatdb doctor``) failed; the report says which and why."""


class BenchErrorsError(ChatdbError):
    """Operations of the benchmark's concurrent clients failed; the report counts them."""


class JobLockedError(ChatdbError):
    """Another maintenance job holds the database's job lock."""

    exit_code = EXIT_LOCKED


class JobLeaseLostError(ChatdbError):
    """A running job's lease was broken or taken over; it stopped before its next batch."""


class JobInterrupted(ChatdbError):
    """A job was stopped (Ctrl-C, SIGTERM); the message says what it had committed, which is kept."""

    exit_code = EXIT_INTERRUPTED


class JobRefusedError(ChatdbError):
    """A job's own guard refused to run (``--max-rows``, an existing export file)."""


class DestinationError(UsageError):
    """A file chatdb was asked to write cannot be: its name is taken by something that is not a
    regular file (a device, a FIFO, a directory, a symbolic link), or it is too long."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


class FileWriteError(ChatdbError):
    """Writing a file failed part way (disk full, quota, I/O error); nothing was left under its name."""


class LockTimeoutError(DatabaseError):
    """A statement waited longer than its ``lock_timeout`` for a lock another session holds."""


class ImportFileError(ChatdbError):
    """An import file is unreadable, truncated, or has lines that cannot be restored."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def describe_connection_failure(exc: BaseException) -> str:
    """Turn a driver's connection error into one short, password-free line."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    lowered = text.lower()
    tls = describe_tls_failure(text)
    if tls:
        return tls
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        user = _quoted_after(text, "for user")
        return f"authentication failed for user {user}" if user else "authentication failed"
    if "does not exist" in lowered and "database" in lowered:
        name = _quoted_after(text, "database")
        return f"database {name} does not exist" if name else "the database does not exist"
    if "no password supplied" in lowered:
        return "the server asks for a password and none was given"
    if "timeout expired" in lowered or "timed out" in lowered:
        return "timed out connecting to the server"
    if "connection refused" in lowered:
        return "connection refused (is the server running and accepting TCP connections?)"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return "unknown host name"
    if "no such file or directory" in lowered:
        return "no server is listening on that socket"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")
    return first.removeprefix("connection failed: ")


def _quoted_after(text: str, marker: str) -> str | None:
    at = text.find(marker)
    if at < 0:
        return None
    rest = text[at + len(marker) :]
    start = rest.find('"')
    end = rest.find('"', start + 1)
    if start < 0 or end < 0:
        return None
    return rest[start : end + 1]


_CERT_HOST = re.compile(
    r'server certificate for (".*?"(?: \(and \d+ other names?\))?) does not match host name (".*?")'
)
_HBA = re.compile(
    r'(?:pg_hba\.conf rejects connection|no pg_hba\.conf entry) for host (".*?"), user (".*?"), '
    r'database (".*?"), (no encryption|SSL encryption|GSS encryption)'
)


def describe_tls_failure(text: str) -> str | None:
    """A TLS, certificate, channel-binding or pg_hba.conf failure in chatdb's words (None if not one).

    libpq's messages name its internals ("SSL error: certificate verify
    failed"); these say which URL parameter decides and what to change.
    """
    lowered = text.lower()
    found = _CERT_HOST.search(text)
    if found:
        return (
            f"the server's TLS certificate is for {found[1]}, not {found[2]}: sslmode=verify-full checks "
            "the host name, so connect by a name the certificate carries"
        )
    if "certificate verify failed" in lowered:
        return (
            "the server's TLS certificate could not be verified: it is not signed by the CA in "
            "sslrootcert, or it has expired"
        )
    found = re.search(r'root certificate file (".*?") does not exist', text)
    if found:
        return (
            f"sslmode=verify-ca/verify-full needs the CA's certificate, and {found[1]} does not exist: "
            "set sslrootcert to its path (or sslrootcert=system for the system's CAs)"
        )
    if "server does not support ssl" in lowered:
        return "the server does not offer TLS, but the URL's sslmode requires it"
    if "channel binding" in lowered:
        return (
            "channel_binding=require, but the server authenticated without SCRAM channel binding "
            "(which needs TLS and a SCRAM password)"
        )
    found = _HBA.search(text)
    if found:
        host, user, database, encryption = found.groups()
        if encryption == "no encryption":
            return (
                f"the server accepts user {user} from host {host} only over TLS (its pg_hba.conf "
                "rejects unencrypted connections): use sslmode=require"
            )
        return (
            f"the server's pg_hba.conf does not let user {user} connect from host {host} to database "
            f"{database} with {encryption}"
        )
    return None
