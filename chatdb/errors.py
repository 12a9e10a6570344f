"""chatdb's one error vocabulary.

Everything the library raises on purpose is a :class:`ChatdbError`. Each
carries a message a person can act on and the exit code the command line
uses for it, so the CLI needs exactly one handler. Callers never have to
import ``sqlalchemy.exc`` or ``psycopg`` to tell failures apart.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class ChatdbError(Exception):
    """Base class for every error chatdb raises deliberately."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

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


class JobLockedError(ChatdbError):
    """Another maintenance job holds the database's job lock."""

    exit_code = EXIT_LOCKED


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
    rest = text[at + len(marker):]
    start = rest.find('"')
    end = rest.find('"', start + 1)
    if start < 0 or end < 0:
        return None
    return rest[start:end + 1]
