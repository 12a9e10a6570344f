"""The one place that draws output: tables for people, JSON and CSV for scripts.

Data goes to stdout, messages and errors to stderr. On a terminal, tables are
aligned to its width (``_tables``) and long output goes through the pager
(``_pager``); in a pipe or file nothing is wrapped, padded or coloured. Rich
turns colour off by itself when a stream is not a terminal or ``NO_COLOR`` is
set. Numbers for people carry thousands separators (``16,572``); JSON and CSV
carry plain numbers.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console

from chatdb.cli._progress import JobProgress
from chatdb.cli._tables import Column, Screen, draw, visible
from chatdb.serialize import to_jsonable

__all__ = ["Column", "JobProgress", "to_jsonable"]

# A URL's login (user:password@, up to the last @ of the URL), a password query parameter,
# and a libpq "password=..." setting.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&][^\s=&#]*password[^\s=&#]*=)[^\s&#]*", re.IGNORECASE)
_SETTING_PASSWORD = re.compile(r"(?P<head>(?<![\w?&])\w*password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)

# Where stdout's drawn lines go: sys.stdout, or the pager while one is in use.
_sink: Any = None
# Set by --json (and read by the error boundary): the failure is reported as JSON too.
json_requested = False
# Whether a JSON document already went to stdout (the failure report must not add a second).
json_emitted = False


def reset() -> None:
    global _sink, json_requested, json_emitted, writing
    _sink, json_requested, json_emitted, writing = None, False, False, False


def stdout() -> Console:
    return Console(file=sys.stdout, soft_wrap=False)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


# True while a write to stdout is under way: one cut short (Ctrl-C) leaves the cursor mid-line.
writing = False


def _write(text: str) -> None:
    global writing
    writing = True
    (_sink or sys.stdout).write(text)
    writing = False


def screen() -> Screen:
    console = stdout()
    terminal = console.is_terminal
    return Screen(
        _write,
        terminal=terminal,
        width=console.width if terminal else 10**9,
        bold=terminal and console.color_system is not None and not console.no_color,
    )


@contextmanager
def paged(disabled: bool = False) -> Iterator[None]:
    """Stdout through the pager when it is a terminal and the output is longer than the screen."""
    global _sink
    from chatdb.cli._pager import Pager, pager_command

    command = pager_command(disabled)
    if command is None or _sink is not None:
        yield
        return
    pager = Pager(command, stdout().height)
    _sink = pager
    try:
        yield
    finally:
        _sink = None
        pager.close()


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
    """Print one error line on stderr (on a line of its own, even after a row cut short)."""
    if writing and sys.stderr.isatty():
        sys.stderr.write("\n")
    stderr().print(f"[bold red]Error:[/] {_escape(one_line(message))}")


def warn(message: str) -> None:
    stderr().print(f"[yellow]Warning:[/] {_escape(one_line(message))}")


def info(message: str) -> None:
    """A message for the person at the terminal, on stderr so stdout stays data."""
    stderr().print(_escape(redact(message)))


def success(message: str) -> None:
    stderr().print(f"[green]{_escape(redact(message))}[/]")


def _escape(text: str) -> str:
    """Text safe to draw with Rich: markup escaped, control characters shown as ``\\x1b``.

    Message content and ids come from users; an escape sequence in them must
    not reach the terminal (it could clear the screen or rewrite what is shown).
    """
    from rich.markup import escape

    return escape(visible(text))


def emit_json(data: Any, *, ok: bool | None = None) -> None:
    """One JSON document on stdout; ``ok`` puts ``"ok"`` first (the jobs' envelope)."""
    global json_emitted
    plain = to_jsonable(data)
    if ok is not None and isinstance(plain, dict):
        plain = {"ok": ok, **plain}
    json_emitted = True
    sys.stdout.write(json.dumps(plain, indent=2, ensure_ascii=False) + "\n")
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


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    """A rate for people: whole numbers from 10 up (``28,949``), one decimal below (``4.2``)."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def seconds(value: float) -> str:
    return f"{value:,.2f}s" if value < 100 else f"{value:,.0f}s"


def cell(value: Any) -> str:
    """How a value looks for people (in a table, a summary or a cron log)."""
    if isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return rate(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    plain = to_jsonable(value)
    if isinstance(plain, (dict, list)):
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return str(plain)


def table(
    columns: Sequence[Column | str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    transcript: bool = False,
) -> int:
    """Draw rows on stdout, a page at a time as they come; returns how many were drawn.

    Columns are :class:`Column` (or a name: a label column). A text column is
    one line in a table (cut with "…") and whole in the record and transcript
    layouts; everything drawn has passwords in URLs hidden.
    """
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    text = {i for i, c in enumerate(cols) if not c.fixed}
    target = screen()
    # A missing value: "—" in an aligned table; nothing in a transcript or a tab-separated line.
    empty = "—" if target.terminal and not transcript else ""
    shown = (
        [empty if v is None else redact(cell(v)) if i in text else cell(v) for i, v in enumerate(row)] for row in rows
    )
    return draw(target, cols, shown, title=title and redact(title), transcript=transcript)


def key_values(pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    from chatdb.cli._tables import key_values as draw_pairs

    draw_pairs(screen(), [(key, redact(cell(value))) for key, value in pairs], title)


def human_bytes(size: int | None) -> str:
    """A byte count for people: 8.0 kB, 12.3 MB (powers of 1024, like pg_size_pretty)."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{int(value):,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size:,} bytes"


def job_summary(result: Any, pairs: Sequence[tuple[str, Any]], *, as_json: bool, title: str) -> None:
    """A job's final summary: key/value lines for people, or ``{"ok": true, …as_dict()}`` as JSON."""
    if as_json:
        emit_json(result, ok=True)
        return
    key_values(pairs, title=title)
