"""Rows drawn for people: aligned columns on a terminal, tab-separated lines elsewhere.

On a terminal, ids, numbers, timestamps and labels keep their whole width and
are never wrapped; free-text columns share the width that is left and are cut
with "…". A table that cannot fit is drawn as records (one ``name  value`` line
per column, like ``psql``'s ``\\x``), and a transcript as a heading line per
row with its text wrapped beneath. Rows are drawn a page at a time as they
arrive, so ten thousand rows cost little more than their CSV.

Off a terminal (a pipe, a file, a cron log) every row is one line of
tab-separated values after a header line, never wrapped or padded; a tab,
newline, carriage return or backslash inside a value is written ``\\t``,
``\\n``, ``\\r``, ``\\\\`` (as PostgreSQL's COPY text format does).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len as _rich_cell_len
from rich.cells import set_cell_size

Kind = Literal["id", "number", "time", "label", "text"]
PAGE_ROWS = 500
GAP = "  "
MIN_TEXT_WIDTH = 12
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TSV_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_TSV_SPECIAL = re.compile(r"[\\\t\n\r]")


def cell_len(text: str) -> int:
    """Cells ``text`` takes on a terminal (wide characters count double); ASCII is simply its length."""
    return len(text) if text.isascii() else _rich_cell_len(text)


@dataclass(frozen=True)
class Column:
    """A column and what it holds: ``text`` may be cut to fit, every other kind never is."""

    name: str
    kind: Kind = "label"
    weight: int = 1  # share of the width left over, among text columns

    @property
    def fixed(self) -> bool:
        return self.kind != "text"


def visible(text: str) -> str:
    """Control characters (an escape sequence in a message) drawn as ``\\x1b``, never sent as is."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def tsv_cell(text: str) -> str:
    return visible(_TSV_SPECIAL.sub(lambda found: _TSV_ESCAPES[found.group()], text))


def one_line(text: str) -> str:
    return visible(" ".join(text.split()))


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, ending with "…" when something was cut."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + "…"


def wrap(text: str, width: int, *, fold: bool = True) -> list[str]:
    """``text`` wrapped at ``width`` cells (wide characters count double), keeping its own line breaks.

    Words longer than a line are folded, or with ``fold=False`` kept whole on a
    line of their own (a URL, a path or a hash must stay one piece to be copied);
    nothing is dropped or cut.
    """
    width = max(width, 1)
    lines: list[str] = []
    for raw in text.split("\n"):
        line = visible(raw.replace("\t", "    "))
        if cell_len(line) <= width:
            lines.append(line)
            continue
        current, size = "", 0
        for word in line.split(" "):
            length = cell_len(word)
            if current and size + 1 + length <= width:
                current, size = f"{current} {word}", size + 1 + length
                continue
            if current:
                lines.append(current)
            if length > width and fold:  # a word longer than the line: fold it
                *folded, word = _fold(word, width)
                lines.extend(folded)
                length = cell_len(word)
            current, size = word, length
        lines.append(current)
    return lines


def _fold(word: str, width: int) -> list[str]:
    """A word longer than the line in pieces, each ending after a comma when one is near (JSON)."""
    pieces, current, size = [], "", 0
    for char in word:
        cells = cell_len(char)
        if current and size + cells > width:
            comma = current.rfind(",")
            if comma >= width // 2:
                pieces.append(current[: comma + 1])
                current = current[comma + 1 :]
            else:
                pieces.append(current)
                current = ""
            size = cell_len(current)
        current += char
        size += cells
    return [*pieces, current]


class Screen:
    """Where drawn lines go, and what the terminal can show."""

    def __init__(self, write: Any, *, terminal: bool, width: int, bold: bool) -> None:
        self.write = write
        self.terminal = terminal
        self.width = max(width, 20)
        self._bold = bold

    def line(self, text: str = "") -> None:
        self.write(text.rstrip() + "\n")

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self._bold and text else text

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self._bold and text else text


@dataclass
class _Layout:
    widths: list[int]


def _pages(rows: Iterable[Sequence[str]], size: int) -> Iterator[list[Sequence[str]]]:
    iterator = iter(rows)
    while page := list(itertools.islice(iterator, size)):
        yield page


def _layout(
    columns: Sequence[Column], page: Sequence[Sequence[str]], width: int, previous: _Layout | None
) -> _Layout | None:
    """Column widths for ``page`` within ``width``, never narrower than before; None when it cannot fit."""
    natural = [cell_len(c.name) for c in columns]
    for row in page:
        for i, value in enumerate(row):
            natural[i] = max(natural[i], cell_len(value))
    if previous is not None:
        natural = [max(n, p) for n, p in zip(natural, previous.widths)]
    widths = list(natural)
    text = [i for i, c in enumerate(columns) if not c.fixed]
    room = width - sum(natural[i] for i, c in enumerate(columns) if c.fixed) - len(GAP) * (len(columns) - 1)
    if not text:
        return _Layout(widths) if room >= 0 else None
    least = [min(natural[i], max(cell_len(columns[i].name), MIN_TEXT_WIDTH)) for i in text]
    if room < sum(least):
        return None
    if sum(natural[i] for i in text) > room:
        for i, low in zip(text, least):
            widths[i] = low
        spare = room - sum(least)
        weights = sum(columns[i].weight for i in text)
        for i in text:
            widths[i] += min(natural[i] - widths[i], spare * columns[i].weight // weights)
        leftover = room - sum(widths[i] for i in text)
        for i in text:  # rounding leaves a few cells: give them to whoever still wants them
            extra = min(leftover, natural[i] - widths[i])
            widths[i] += extra
            leftover -= extra
    return _Layout(widths)


def _aligned(columns: Sequence[Column], values: Sequence[str], widths: list[int]) -> str:
    cells = []
    for column, value, w in zip(columns, values, widths):
        shown = fit(value, w)
        pad = " " * (w - cell_len(shown))
        cells.append(pad + shown if column.kind == "number" else shown + pad)
    return GAP.join(cells).rstrip()


def _short(columns: Sequence[Column], values: Sequence[str]) -> list[str]:
    """A row as it fits on one line: text on one line, other values with line breaks escaped."""
    return [tsv_cell(v) if c.fixed else one_line(v) for c, v in zip(columns, values)]


def draw(
    screen: Screen,
    columns: Sequence[Column],
    rows: Iterable[Sequence[str]],
    *,
    title: str | None = None,
    transcript: bool = False,
) -> int:
    """Draw ``rows`` (cells already as text, whole); returns how many rows were drawn."""
    if not screen.terminal:
        return _draw_plain(screen, columns, rows, title)
    if title:
        screen.line(screen.bold(visible(title)))
    if transcript:
        return _draw_transcript(screen, columns, rows)
    drawn = 0
    layout: _Layout | None = None
    records = False
    for page in _pages(rows, PAGE_ROWS):
        if not records:
            shorts = [_short(columns, row) for row in page]
            fitted = _layout(columns, shorts, screen.width, layout)
            if fitted is None:
                records = True
            else:
                if layout is None or fitted.widths != layout.widths:
                    if layout is not None:
                        screen.line()
                    screen.line(screen.bold(_aligned(columns, [c.name for c in columns], fitted.widths)))
                    screen.line(GAP.join("─" * w for w in fitted.widths))
                layout = fitted
                screen.write("".join(_aligned(columns, short, layout.widths) + "\n" for short in shorts))
                drawn += len(page)
                continue
        for whole in page:
            drawn += 1
            _draw_record(screen, columns, whole, drawn)
    return drawn


def _draw_record(screen: Screen, columns: Sequence[Column], values: Sequence[str], number: int) -> None:
    label = max(cell_len(c.name) for c in columns)
    head = f"─[ {number} ]"
    screen.line(head + "─" * max(screen.width - cell_len(head), 0))
    room = max(screen.width - label - len(GAP), MIN_TEXT_WIDTH)
    for column, value in zip(columns, values):
        # Free text wraps; an id, number or time stays whole on its line even when that is too long.
        lines = (wrap(value, room, fold=False) if not column.fixed else [tsv_cell(value)]) or [""]
        screen.line(screen.bold(column.name) + " " * (label - cell_len(column.name)) + GAP + lines[0])
        for more in lines[1:]:
            screen.line(" " * (label + len(GAP)) + more)


def _draw_transcript(screen: Screen, columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> int:
    """A heading line of the fixed columns, then each text column wrapped beneath it, indented."""
    drawn = 0
    heads = [i for i, c in enumerate(columns) if c.fixed]
    bodies = [i for i, c in enumerate(columns) if not c.fixed]
    for whole in rows:
        if drawn:
            screen.line()
        drawn += 1
        heading = GAP.join(tsv_cell(whole[i]) for i in heads if whole[i])
        screen.line(screen.bold(heading))  # never cut: it holds the ids
        for n, i in enumerate(bodies):
            if not whole[i]:
                continue
            for line in wrap(whole[i], screen.width - 2):
                screen.line("  " + (line if n == 0 else screen.dim(line)))
    return drawn


def _draw_plain(screen: Screen, columns: Sequence[Column], rows: Iterable[Sequence[str]], title: str | None) -> int:
    drawn = 0
    for page in _pages(rows, PAGE_ROWS):
        if not drawn:  # no rows, no header: the command says "nothing matches" on stderr
            if title:
                screen.line(tsv_cell(title))
            screen.line("\t".join(c.name for c in columns))
        screen.write("".join("\t".join(tsv_cell(v) for v in row).rstrip() + "\n" for row in page))
        drawn += len(page)
    return drawn


def key_values(screen: Screen, pairs: Sequence[tuple[str, str]], title: str | None = None) -> None:
    """A summary: ``key: value`` lines off a terminal; aligned keys and wrapped values on one."""
    if not screen.terminal:
        if title:
            screen.line(tsv_cell(title))
        for key, value in pairs:
            screen.line(f"{key}: {tsv_cell(value)}")
        return
    if title:
        screen.line(screen.bold(visible(title)))
    if not pairs:
        return
    label = max(cell_len(k) for k, _ in pairs)
    room = max(screen.width - label - len(GAP), MIN_TEXT_WIDTH)
    for key, value in pairs:
        lines = wrap(value, room, fold=False) or [""]
        screen.line(screen.bold(key) + " " * (label - cell_len(key)) + GAP + lines[0])
        for more in lines[1:]:
            screen.line(" " * (label + len(GAP)) + more)
