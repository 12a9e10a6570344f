"""prune with an export: the verified file, read again, decides what is deleted.

:func:`verify_export` reads the export back whole before anything is deleted:
its sha256, size and counts, and every line through import's own check, so
nothing is deleted that ``chatdb import`` would refuse to restore.
:func:`exported_batches` reads it again, each batch compared with its mark
from the first read, and deletes a conversation only if, with its row and all
its messages locked, PostgreSQL rebuilds from the current rows exactly the
bytes of its line.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from chatdb.errors import ChatdbError, ImportFileError
from chatdb.filters import ConversationFilter
from chatdb.jobs.deleting import BatchStep
from chatdb.jobs.reading import BatchMark, ExportLines, batches, batches_as_checked, compare
from chatdb.jobs.runner import JobRun, JobTimeouts, job_connection

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from chatdb.db import Database
    from chatdb.jobs.prune import PruneResult

# A batch source yields callables that, inside a batch transaction, lock and
# return the ids to delete plus how many conversations the batch covered.
# export writes row_to_json of the conversation with its id first.
_LINE_ID = re.compile(rb'^\{"id":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",')


def verify_export(
    db: Database,
    path: Path,
    expected: dict[str, Any],
    batch_size: int,
    run: JobRun,
    timeouts: JobTimeouts,
    *,
    source: str = "what was written",
) -> list[BatchMark]:
    """Read the export back whole: as written (sha256, size, counts) and every line one import accepts.

    Returns each batch's mark, for the deletion's second read. Anything wrong: nothing is deleted.
    """
    return _verify(db, path, expected, batch_size, run, timeouts, source)


def _refusal(message: str) -> ChatdbError:
    """The export is not fit to delete from: resuming from it would not help, so no hint to."""
    exc = ChatdbError(message)
    exc.refuses_export = True
    return exc


def _verify(
    db: Database,
    path: Path,
    expected: dict[str, Any],
    batch_size: int,
    run: JobRun,
    timeouts: JobTimeouts,
    source: str,
) -> list[BatchMark]:
    from chatdb.jobs.line_checks import LineCheck, check_lines, checking_transaction

    run.start_phase("verify", expected["conversations"])
    lines = ExportLines(path)
    found = LineCheck()
    marks: list[BatchMark] = []
    try:
        with job_connection(db) as conn, checking_transaction(db, conn, timeouts):
            for batch, mark in batches(lines, batch_size):
                run.check_stop()
                marks.append(mark)
                check_lines(conn, batch, found, against_database=False)
                if found.problems:
                    number, problem = found.problems[0]
                    raise _refusal(
                        f"the export {path} could not be restored by chatdb import (line {number}: {problem}); "
                        "nothing was deleted"
                    )
                run.done = found.conversations
                run.report()
    except ImportFileError as exc:
        raise _refusal(f"the export {path} does not read back ({exc.message}); nothing was deleted") from None
    differs = compare(
        expected,
        {
            "sha256": lines.sha256,
            "bytes": lines.size,
            "conversations": found.conversations,
            "messages": found.messages,
        },
        source,
    )
    if differs:
        raise _refusal(f"the export {path} does not verify ({'; '.join(differs)}); nothing was deleted")
    return marks


def exported_batches(
    path: Path, marks: list[BatchMark], selection: ConversationFilter, result: PruneResult
) -> Iterator[BatchStep]:
    """The verified export again, batch by batch as checked: delete what is still byte for byte its line."""
    for batch in batches_as_checked(ExportLines(path), marks, str(path)):
        wanted: dict[uuid.UUID, str] = {}
        for number, line in batch:
            match = _LINE_ID.match(line)
            if match is None:
                raise ChatdbError(
                    f"line {number} of {path} is not a line chatdb export writes; nothing more was deleted"
                )
            wanted[uuid.UUID(match.group(1).decode())] = hashlib.sha256(line).hexdigest()
        yield _step_for(wanted, selection, result)
    yield lambda conn: ([], 0)


def _step_for(wanted: dict[uuid.UUID, str], selection: ConversationFilter, result: PruneResult) -> BatchStep:
    def step(conn: Connection) -> tuple[list[uuid.UUID], int]:
        from chatdb.jobs import queries
        from chatdb.jobs.queries import conversations as c
        from chatdb.jobs.queries import id_array
        from chatdb.jobs.queries.lines import line_digests

        # The lines were written in UTC: rebuild them in UTC.
        conn.execute(text(queries.UTC))
        conn.execute(text(queries.BATCH_SETTINGS))
        ids = list(wanted)
        locked = list(
            conn.execute(
                select(c.c.id)
                .where(c.c.id == id_array(ids), *selection.conditions(c))
                .order_by(c.c.id)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        whole = queries.lock_messages(conn, locked)
        current = dict(conn.execute(line_digests(id_array(whole))).all()) if whole else {}
        same = [i for i in whole if current.get(i) == wanted[i]]
        unlocked = [i for i in ids if i not in set(locked)]
        matching = (
            set(conn.execute(select(c.c.id).where(c.c.id == id_array(unlocked), *selection.conditions(c))).scalars())
            if unlocked
            else set()
        )
        present = set(conn.execute(select(c.c.id).where(c.c.id == id_array(unlocked))).scalars()) if unlocked else set()
        result.in_use += len(matching) + (len(locked) - len(whole))
        result.changed += (len(whole) - len(same)) + len(present - matching)
        result.already_deleted += len(unlocked) - len(present)
        return same, len(wanted)

    return step
