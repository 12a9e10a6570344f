"""Options shared by every command, declared once, and how library parameters map to them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

# The library names its parameters; the command line shows the option that sets each one.
FLAGS = {
    "users": "--user",
    "conversation_ids": "--conversation",
    "status": "--status",
    "older_than": "--older-than",
    "before": "--before",
    "after": "--after",
    "since": "--since",
    "limit": "--limit",
    "batch_size": "--batch-size",
    "max_rows": "--max-rows",
    "allow_future": "--allow-future",
    "export_to": "--export",
    "resume": "--resume",
    "output": "--output",
    "format": "--format",
    "wait": "--wait",
    "force": "--force",
    "messages": "--messages",
    "conversations": "--conversations",
    "duration": "--duration",
    "clients": "--clients",
    "workers": "--workers",
    "pause": "--pause",
    "connections": "--connections",
    "url_option": "--database-url",
    "query": "QUERY",
    "user": "--user",
    "conversation": "--conversation",
    "role": "--role",
    "cursor": "--cursor",
    "config": "--config",
    "create_index": "--create-index",
    "drop_index": "--drop-index",
    "source_format": "--from",
    "owner": "--user",
    "long_user_messages": "--long-user-messages",
    "reason": "--reason",
    "until": "--until",
    "no_export": "--no-export",
    "receipt": "--receipt",
}

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _as_param(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    """Wrap a chatdb parser so its UsageError reads as a bad value of the option."""

    def convert(value: Any) -> Any:
        from chatdb.errors import UsageError

        if not isinstance(value, str):
            return value
        try:
            return parse(value)
        except UsageError as exc:
            raise typer.BadParameter(exc.message) from None

    return convert


def _duration(value: str) -> Duration:
    from chatdb.timeparse import parse_duration

    return parse_duration(value)


def _instant(value: str) -> datetime:
    from chatdb.timeparse import parse_instant

    return parse_instant(value)


duration_param = _as_param(_duration)
instant_param = _as_param(_instant)


def count_param(minimum: int = 1) -> Callable[[Any], int]:
    """A whole number of at least ``minimum``, in chatdb's words when it is not."""

    def convert(value: Any) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value).strip().replace("_", ""))
            except ValueError:
                raise typer.BadParameter(f"expected a whole number, got {str(value)!r}") from None
        if number < minimum:
            raise typer.BadParameter(f"must be at least {minimum}, got {number}")
        return number

    return convert


def choice_param(choices: Sequence[str]) -> Callable[[Any], str]:
    """One of ``choices`` (any case), or a message listing them."""

    def convert(value: Any) -> str:
        text = str(getattr(value, "value", value)).strip().lower()
        if text not in choices:
            listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
            raise typer.BadParameter(f"must be {listed}, got {str(value)!r}")
        return text

    return convert


def _completer(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [c for c in choices if c.startswith(incomplete.lower())]

    return complete


# Durations (90d, 12w, 6mo, 1y, 36h, P90D) become chatdb.timeparse.Duration.
if TYPE_CHECKING:
    from datetime import datetime

    from chatdb.timeparse import Duration

    # What the parsers below return; Typer itself reads only the runtime annotation (object).
    DurationArg = Duration
    InstantArg = datetime
else:
    DurationArg = InstantArg = object

OlderThanOption = Annotated[
    DurationArg | None,
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
    InstantArg | None,
    typer.Option(
        "--before",
        metavar="DATE",
        parser=instant_param,
        help="Only rows whose last activity is before this date/timestamp (or duration ago).",
        show_default=False,
    ),
]
SinceOption = Annotated[
    InstantArg | None,
    typer.Option(
        "--since",
        metavar="DATE",
        parser=instant_param,
        help="Only rows whose last activity is at or after this date/timestamp (or duration ago).",
        show_default=False,
    ),
]
AllowFutureOption = Annotated[
    bool,
    typer.Option(
        "--allow-future", help="Accept a cutoff (--older-than/--before) later than now, which matches everything."
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


STATUSES = ("active", "archived", "all")


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
    str,
    typer.Option(
        "--status",
        metavar="STATUS",
        parser=choice_param(STATUSES),
        autocompletion=_completer(STATUSES),
        help="Only conversations with this status: active, archived or all.",
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="Show every row (ignores --limit).")]


def limit_option(what: str) -> Any:
    """``--limit N`` (at least 1) for a command that shows at most N ``what``."""
    return typer.Option("--limit", "-n", metavar="N", parser=count_param(1), help=f"Show at most N {what}.")


# Options every maintenance job shares.
BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        metavar="N",
        parser=count_param(1),
        help="Conversations per batch; each batch is its own short transaction.",
    ),
]


def dry_run_option(what: str) -> Any:
    return typer.Option("--dry-run", help=f"Print {what} and change nothing.")


def _wait_seconds(value: Any) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    from chatdb.errors import UsageError
    from chatdb.timeparse import parse_seconds

    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_seconds(text)  # 30s, 2min: the grammar every duration shares
        except UsageError:
            raise typer.BadParameter(f"expected a number of seconds, got {str(value)!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise typer.BadParameter(f"must be 0 or more seconds, got {str(value)!r}")
    return seconds


WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        parser=_wait_seconds,
        help="If another job holds the lock, wait up to this long for it (default: exit 3 at once).",
        show_default=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (the summary is still printed).")]
ConversationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--conversation",
        metavar="ID",
        help="Only this conversation: an id or a unique prefix of one (repeatable).",
        show_default=False,
    ),
]
