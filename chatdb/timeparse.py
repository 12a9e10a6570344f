"""Durations, timeouts and points in time, parsed in one place for every command and setting.

Durations: a number and a unit, optionally several (``90d``, ``12w``,
``6mo``, ``1y``, ``36h``, ``45min``, ``1y6mo``), or ISO 8601 (``P90D``,
``P1Y2M``, ``PT36H``, ``P2W``). Months and years are calendar units: six
months before 31 August is 29 February in a leap year.

Points in time: ISO 8601 dates (``2025-01-31``, midnight UTC) and timestamps
(``2025-01-31T12:00:00+02:00``; without an offset, UTC), or a duration,
meaning that long before now.

Timeouts (``CHATDB_JOB_LOCK_TIMEOUT``, ``CHATDB_MIGRATION_STATEMENT_TIMEOUT``,
…): a whole number with ``ms``, ``s``, ``min`` or ``h`` (or none: milliseconds,
as PostgreSQL reads it), passed to the server as written. Seconds
(``chatdb bench --duration``, ``CHATDB_JOB_LEASE_TTL``): a number of seconds
(``1.5``), one with a unit (``500ms``, ``30s``, ``2min``), or any duration
without months.

Everything that cannot be read is a :class:`~chatdb.errors.UsageError` whose
message names the accepted forms.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from chatdb.errors import UsageError

DURATION_FORMS = "a duration such as 90d, 12w, 6mo, 1y, 36h, 45min or ISO 8601 P90D"
TIMEOUT_FORMS = "500ms, 10s, 5min or 1h"
INSTANT_FORMS = "a date (2025-01-31), a timestamp (2025-01-31T12:00:00+00:00) or a duration (90d)"

_UNITS: dict[str, tuple[str, int]] = {}
for _names, _field, _factor in (
    (("s", "sec", "secs", "second", "seconds"), "seconds", 1),
    (("min", "mins", "minute", "minutes"), "seconds", 60),
    (("h", "hr", "hrs", "hour", "hours"), "seconds", 3600),
    (("d", "day", "days"), "days", 1),
    (("w", "wk", "wks", "week", "weeks"), "days", 7),
    (("mo", "mon", "month", "months"), "months", 1),
    (("y", "yr", "yrs", "year", "years"), "months", 12),
):
    for _name in _names:
        _UNITS[_name] = (_field, _factor)

_PART = re.compile(r"(\d+)\s*([a-z]+)")
_ISO = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass(frozen=True)
class Duration:
    """A span of calendar months, days and seconds."""

    months: int = 0
    days: int = 0
    seconds: int = 0
    text: str = ""

    def before(self, moment: datetime) -> datetime:
        """``moment`` minus this duration (months by the calendar, clamping the day)."""
        shifted = _add_months(moment, -self.months)
        return shifted - timedelta(days=self.days, seconds=self.seconds)

    def __str__(self) -> str:
        return self.text or f"P{self.months}M{self.days}DT{self.seconds}S"


def _add_months(moment: datetime, months: int) -> datetime:
    if months == 0:
        return moment
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def parse_duration(text: str) -> Duration:
    """Read a duration; raise :class:`UsageError` naming the accepted forms."""
    raw = text.strip()
    if not raw:
        raise UsageError(f"empty duration; use {DURATION_FORMS}")
    iso = _ISO.match(raw.upper()) if raw[:1] in "Pp" else None
    if iso and any(iso.groupdict().values()):
        parts = {k: int(v or 0) for k, v in iso.groupdict().items()}
        duration = Duration(
            months=parts["years"] * 12 + parts["months"],
            days=parts["weeks"] * 7 + parts["days"],
            seconds=parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"],
            text=raw,
        )
        return _positive(duration, raw)
    lowered = raw.lower()
    totals = {"months": 0, "days": 0, "seconds": 0}
    position = 0
    for match in _PART.finditer(lowered):
        if lowered[position : match.start()].strip():
            break
        number, unit = int(match.group(1)), match.group(2)
        if unit == "m":
            raise UsageError(f"ambiguous duration {raw!r}: write 'min' for minutes or 'mo' for months")
        if unit not in _UNITS:
            raise UsageError(f"unknown unit {unit!r} in duration {raw!r}; use {DURATION_FORMS}")
        field, factor = _UNITS[unit]
        totals[field] += number * factor
        position = match.end()
    if position == 0 or lowered[position:].strip():
        raise UsageError(f"cannot read duration {raw!r}; use {DURATION_FORMS}")
    if totals["months"] > 12 * 1000 or totals["days"] > 366 * 1000:
        raise UsageError(f"duration {raw!r} is too long")
    return _positive(Duration(text=raw, **totals), raw)


def _positive(duration: Duration, raw: str) -> Duration:
    if duration.months == 0 and duration.days == 0 and duration.seconds == 0:
        raise UsageError(f"duration {raw!r} is zero; use {DURATION_FORMS}")
    return duration


def parse_instant(text: str, *, now: datetime | None = None) -> datetime:
    """Read a date, a timestamp, or a duration ago; always an aware UTC-comparable datetime."""
    raw = text.strip()
    if not raw:
        raise UsageError(f"empty date; use {INSTANT_FORMS}")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise UsageError(f"no such date {raw!r}; use {INSTANT_FORMS}") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]", raw):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"cannot read timestamp {raw!r}; use {INSTANT_FORMS}") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        duration = parse_duration(raw)
    except UsageError:
        raise UsageError(f"cannot read {raw!r} as a point in time; use {INSTANT_FORMS}") from None
    return duration.before(now or utcnow())


# A PostgreSQL time setting: strict, since migrations write it into their SET statements.
_TIMEOUT = re.compile(r"^\d+\s*(ms|s|min|h)?$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|min|h)?$")
_SECOND_FACTORS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


def parse_timeout(text: str, name: str) -> str:
    """A timeout setting (``lock_timeout``, ``statement_timeout``) as PostgreSQL takes it, checked.

    ``name`` is the setting's source (an environment variable) for the message.
    """
    value = str(text).strip()
    if not _TIMEOUT.match(value):
        raise UsageError(f"{name} must look like {TIMEOUT_FORMS}, got {value!r}")
    return value


def parse_seconds(text: str | float) -> float:
    """Seconds from ``1.5``, ``500ms``, ``30s``, ``2min`` or a duration without months (``1h30min``)."""
    if isinstance(text, (int, float)):
        return float(text)
    raw = text.strip()
    found = _SECONDS.match(raw.lower())
    if found:
        return float(found.group(1)) * _SECOND_FACTORS[found.group(2) or "s"]
    duration = parse_duration(raw)
    if duration.months:
        raise UsageError(f"{raw!r} is too long: give it in days, hours, minutes or seconds")
    return float(duration.days * 86400 + duration.seconds)


def utcnow() -> datetime:
    return datetime.now(UTC)


def cutoff(
    older_than: str | Duration | None,
    before: str | datetime | None,
    *,
    now: datetime | None = None,
) -> datetime | None:
    """The one cutoff from ``--older-than DURATION`` or ``--before DATE`` (at most one of them).

    Each may be given as text or already parsed (the CLI's shared options parse them).
    """
    if older_than and before:
        raise UsageError("give either {older_than} or {before}, not both", parameters=("older_than", "before"))
    if older_than:
        duration = parse_duration(older_than) if isinstance(older_than, str) else older_than
        return duration.before(now or utcnow())
    if before:
        return parse_instant(before, now=now) if isinstance(before, str) else before
    return None
