"""Checking export lines as PostgreSQL would insert them: import's check, and prune's before it deletes.

Every line is checked in the database, by the statement that inserts it
(:data:`chatdb.jobs.queries.lines.CHECK_LINES`), inside a transaction that is
always rolled back: a line is accepted only if PostgreSQL's own conversions
accept it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from chatdb.jobs.runner import JobTimeouts

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database

MAX_REPORTED_PROBLEMS = 10
_PROBLEM_LENGTH = 300  # a problem quoting a huge value is cut to this many characters


@dataclass
class LineCheck:
    """What checking lines found: problems by line, and counts of the lines without one."""

    problems: list[tuple[int, str]] = field(default_factory=list)
    bad_lines: int = 0
    conversations: int = 0
    messages: int = 0
    existing_conversations: int = 0
    existing_messages: int = 0

    @property
    def new_rows(self) -> tuple[int, int]:
        return self.conversations - self.existing_conversations, self.messages - self.existing_messages

    @property
    def full(self) -> bool:
        return self.bad_lines >= MAX_REPORTED_PROBLEMS

    def add_problem(self, number: int, text: str) -> None:
        if self.full:  # checking stops here: the rest of the batch is not counted
            return
        self.bad_lines += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append((number, text if len(text) <= _PROBLEM_LENGTH else text[:_PROBLEM_LENGTH] + "…"))


@contextmanager
def checking_transaction(db: Database, conn: Connection, timeouts: JobTimeouts) -> Iterator[None]:
    """A transaction that is always rolled back, with the ids table the checks fill (``ON COMMIT DROP``)."""

    from chatdb.jobs.queries import CHECK_SETTINGS
    from chatdb.jobs.queries.lines import CREATE_SEEN

    with db.translate():
        transaction = conn.begin()
        try:
            conn.execute(text(CHECK_SETTINGS), {"lock": timeouts.lock, "stmt": timeouts.statement})
            conn.execute(text(CREATE_SEEN))
            yield
        finally:
            transaction.rollback()


def check_lines(
    conn: Connection, batch: list[tuple[int, bytes]], found: LineCheck, *, against_database: bool = True
) -> None:
    """Check one batch as PostgreSQL would insert it; add what is wrong, and the counts, to ``found``."""
    sendable: list[tuple[int, str]] = []
    for number, raw in batch:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            found.add_problem(number, f"not UTF-8 text (byte {exc.start + 1} of the line)")
            continue
        if "\x00" in line:
            found.add_problem(number, "contains a NUL byte")
        elif not line.strip():
            found.add_problem(number, "empty line")
        else:
            sendable.append((number, line))
    for number, problem, messages, existing, existing_messages in _checked(conn, sendable, against_database, [0]):
        if problem is not None:
            found.add_problem(number, problem)
            continue
        found.conversations += 1
        found.messages += int(messages)
        found.existing_conversations += int(existing)
        found.existing_messages += int(existing_messages)


def _checked(
    conn: Connection, lines: list[tuple[int, str]], against_database: bool, failed: list[int]
) -> list[tuple[Any, ...]]:
    """The check statement's rows; a line PostgreSQL cannot convert at all is found by halving the batch.

    ``failed`` counts such lines: past :data:`MAX_REPORTED_PROBLEMS` the rest is not searched.
    """

    from chatdb.jobs.queries.lines import CHECK_LINES, batch_parameters

    if not lines or failed[0] >= MAX_REPORTED_PROBLEMS:
        return []
    params = batch_parameters([n for n, _ in lines], [t for _, t in lines], against_database=against_database)
    try:
        with conn.begin_nested():
            return [tuple(row) for row in conn.execute(text(CHECK_LINES), params)]
    except sa_exc.DBAPIError as exc:
        if not _about_the_data(exc):
            raise
        if len(lines) == 1:
            failed[0] += 1
            return [(lines[0][0], _describe(exc), None, None, None)]
    half = len(lines) // 2
    return _checked(conn, lines[:half], against_database, failed) + _checked(
        conn, lines[half:], against_database, failed
    )


def _about_the_data(exc: Any) -> bool:
    """A data exception (class 22: bad input for a type) or a program limit (54: nested too deep)."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return sqlstate[:2] in ("22", "54")


def _describe(exc: Any) -> str:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(exc)).strip()
    detail = (getattr(diag, "message_detail", None) or "").strip().rstrip(".")
    if primary.startswith("invalid input syntax for type json"):
        return f"not valid JSON ({detail})" if detail else "not valid JSON"
    if primary.startswith("stack depth limit exceeded"):
        return "nested too deeply for PostgreSQL (stack depth limit exceeded)"
    return f"{primary} ({detail})" if detail else primary
