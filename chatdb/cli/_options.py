"""Options shared by every command, declared once."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
]


def _as_param(parse):
    """Wrap a chatdb parser so its UsageError reads as Typer's 'Invalid value for …'."""

    def convert(value):
        from chatdb.errors import UsageError

        if not isinstance(value, str):
            return value
        try:
            return parse(value)
        except UsageError as exc:
            raise typer.BadParameter(exc.message) from None

    return convert


def _duration(value: str):
    from chatdb.timeparse import parse_duration

    return parse_duration(value)


def _instant(value: str):
    from chatdb.timeparse import parse_instant

    return parse_instant(value)


duration_param = _as_param(_duration)
instant_param = _as_param(_instant)

# Durations (90d, 12w, 6mo, 1y, 36h, P90D) become chatdb.timeparse.Duration.
OlderThanOption = Annotated[
    object | None,
    typer.Option(
        "--older-than",
        metavar="DURATION",
        parser=duration_param,
        help="Only rows whose last activity is older than this: 90d, 12w, 6mo, 1y, 36h, P90D.",
        show_default=False,
    ),
]
# Dates, timestamps, or a duration ago, become aware datetimes.
BeforeOption = Annotated[
    object | None,
    typer.Option(
        "--before",
        metavar="DATE",
        parser=instant_param,
        help="Only rows whose last activity is before this date/timestamp (or duration ago).",
        show_default=False,
    ),
]
SinceOption = Annotated[
    object | None,
    typer.Option(
        "--since",
        metavar="DATE",
        parser=instant_param,
        help="Only rows whose last activity is at or after this date/timestamp (or duration ago).",
        show_default=False,
    ),
]

CsvOption = Annotated[
    bool, typer.Option("--csv", help="Print the rows as CSV on stdout (for spreadsheets and scripts).")
]


class OutputFormat(str, Enum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def output_format(as_json: bool, as_csv: bool = False) -> OutputFormat:
    """The one output format a command was asked for; ``--json`` with ``--csv`` is a usage error."""
    from chatdb.errors import UsageError

    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together")
    if as_json:
        return OutputFormat.JSON
    return OutputFormat.CSV if as_csv else OutputFormat.TABLE


class StatusChoice(str, Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    ALL = "all"


UserOption = Annotated[
    list[str] | None,
    typer.Option(
        "--user",
        metavar="USER_ID",
        help="Only this user's conversations; repeat for several users.",
        show_default=False,
    ),
]
StatusOption = Annotated[
    StatusChoice,
    typer.Option("--status", help="Only conversations with this status.", case_sensitive=False),
]
AllOption = Annotated[
    bool, typer.Option("--all", help="Show every row (ignores --limit).")
]


def limit_option(what: str):
    """``--limit N`` (at least 1) for a command that shows at most N ``what``."""
    return typer.Option("--limit", "-n", metavar="N", min=1, help=f"Show at most N {what}.")


# Options every maintenance job shares.
BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        metavar="N",
        min=1,
        help="Conversations per batch; each batch is its own short transaction.",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print exact counts (and a sample) and change nothing.")
]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        help="If another job holds the lock, wait up to this long for it (default: exit 3 at once).",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (the summary is still printed).")
]
ConversationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--conversation", metavar="ID", help="Only this conversation (repeatable).", show_default=False
    ),
]

