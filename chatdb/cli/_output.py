"""The one place that draws output: Rich tables for people, JSON/CSV for scripts.

Data goes to stdout, messages and errors to stderr. Rich turns colour off
by itself when stdout is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

import csv
import enum
import json
import re
import sys
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

# C0 (except tab and newline), DEL and C1 control characters.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A URL's login (user:password@, up to the last @ of the URL), a password query parameter,
# and a libpq "password=..." setting.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&][^\s=&#]*password[^\s=&#]*=)[^\s&#]*", re.IGNORECASE)
_SETTING_PASSWORD = re.compile(r"(?P<head>(?<![\w?&])\w*password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)


def stdout() -> Console:
    return Console(file=sys.stdout, soft_wrap=False)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def redact(text: str) -> str:
    """Hide anything in ``text`` that may be a password in a URL or a connection string.

    A last line of defence: chatdb's own messages never hold one.
    """
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    text = _QUERY_PASSWORD.sub(r"\g<head>***", text)
    return _SETTING_PASSWORD.sub(r"\g<head>***", text)


def one_line(text: str) -> str:
    return " ".join(redact(str(text)).split())


def error(message: str) -> None:
    """Print one error line on stderr."""
    stderr().print(f"[bold red]Error:[/] {_escape(one_line(message))}")


def warn(message: str) -> None:
    stderr().print(f"[yellow]Warning:[/] {_escape(one_line(message))}")


def info(message: str) -> None:
    """A message for the person at the terminal, on stderr so stdout stays data."""
    stderr().print(_escape(redact(message)))


def success(message: str) -> None:
    stderr().print(f"[green]{_escape(redact(message))}[/]")


def _escape(text: str) -> str:
    """Text safe to draw: Rich markup escaped, control characters shown as ``\\x1b``.

    Message content and ids come from users; an escape sequence in them must
    not reach the terminal (it could clear the screen or rewrite what is shown).
    """
    from rich.markup import escape

    return escape(_CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text))


def to_jsonable(value: Any) -> Any:
    """Convert values to JSON: ids as strings, timestamps as ISO 8601 with offset."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict())
    return value


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _csv_cell(v) for v in row])


def _csv_cell(value: Any) -> Any:
    plain = to_jsonable(value)
    if isinstance(plain, (dict, list)):
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return plain


def cell(value: Any) -> str:
    """How a value looks in a table cell."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    plain = to_jsonable(value)
    if isinstance(plain, (dict, list)):
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return str(plain)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    justify: Mapping[str, str] | None = None,
    no_wrap: Collection[str] = (),
    ratios: Mapping[str, int] | None = None,
) -> None:
    """Draw rows as a Rich table on stdout.

    ``no_wrap`` columns (ids, times) are never folded; with ``ratios`` the
    table fills the terminal and those columns share the width left over.
    """
    justify = justify or {}
    ratios = ratios or {}
    grid = Table(title=title, title_justify="left", header_style="bold", expand=bool(ratios))
    for column in columns:
        grid.add_column(
            column,
            justify=justify.get(column, "left"),  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=column in no_wrap,
            min_width=len(column) if column in no_wrap else None,
            ratio=ratios.get(column),
        )
    for row in rows:
        grid.add_row(*(_escape(cell(v)) for v in row))
    stdout().print(grid)


def key_values(pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    grid = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(key, _escape(cell(value)))
    stdout().print(grid)


def human_bytes(size: int | None) -> str:
    """A byte count for people: 8.0 kB, 12.3 MB (powers of 1024, like pg_size_pretty)."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


class JobProgress:
    """A Rich progress bar with ETA on stderr for a job's phases; nothing off a terminal or when quiet.

    Use as a context manager and pass :meth:`update` as the job's progress callback.
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    @property
    def callback(self) -> Any:
        return self.update if self.enabled else None

    def __enter__(self) -> JobProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=stderr(),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, event: Any) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(event.phase)
        if task is None:
            task = self._tasks[event.phase] = self._progress.add_task(event.phase.capitalize(), total=event.total)
        self._progress.update(task, completed=event.done, total=event.total)


def job_summary(result: Any, pairs: Sequence[tuple[str, Any]], *, as_json: bool, title: str) -> None:
    """A job's final summary: a key/value table for people, or its ``as_dict()`` as JSON."""
    if as_json:
        emit_json(result)
        return
    key_values(pairs, title=title)
