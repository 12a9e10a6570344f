"""Durations and dates, parsed in one place for every command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatdb.errors import UsageError
from chatdb.timeparse import cutoff, parse_duration, parse_instant

NOW = datetime(2026, 8, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", datetime(2026, 6, 2, 12, 0, tzinfo=UTC)),
        ("12w", NOW - timedelta(weeks=12)),
        ("36h", NOW - timedelta(hours=36)),
        ("45min", NOW - timedelta(minutes=45)),
        ("6mo", datetime(2026, 2, 28, 12, 0, tzinfo=UTC)),  # the day is clamped
        ("1y", datetime(2025, 8, 31, 12, 0, tzinfo=UTC)),
        ("1y6mo", datetime(2025, 2, 28, 12, 0, tzinfo=UTC)),
        ("P90D", datetime(2026, 6, 2, 12, 0, tzinfo=UTC)),
        ("P1Y", datetime(2025, 8, 31, 12, 0, tzinfo=UTC)),
        ("PT36H", NOW - timedelta(hours=36)),
        ("P2W", NOW - timedelta(weeks=2)),
        (" 3 days ", NOW - timedelta(days=3)),
    ],
)
def test_durations(text: str, expected: datetime) -> None:
    assert parse_duration(text).before(NOW) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("6m", "ambiguous"),
        ("", "empty"),
        ("0d", "zero"),
        ("P", "cannot read"),
        ("ninety days", "cannot read"),
        ("90", "cannot read"),
        ("-5d", "cannot read"),
        ("5 fortnights", "unknown unit"),
        ("90d;DROP TABLE messages", "cannot read"),
    ],
)
def test_bad_durations_name_the_accepted_forms(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T12:30:00+02:00", datetime(2025, 1, 31, 10, 30, tzinfo=UTC)),
        ("2025-01-31T12:30:00Z", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31 12:30", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("7d", NOW - timedelta(days=7)),
    ],
)
def test_instants(text: str, expected: datetime) -> None:
    assert parse_instant(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["2025-02-30", "31/01/2025", "yesterday", "2025-01-31T25:00", ""])
def test_bad_instants(text: str) -> None:
    with pytest.raises(UsageError):
        parse_instant(text, now=NOW)


def test_cutoff_takes_one_of_older_than_and_before() -> None:
    assert cutoff("1y", None, now=NOW) == datetime(2025, 8, 31, 12, 0, tzinfo=UTC)
    assert cutoff(None, "2025-01-01", now=NOW) == datetime(2025, 1, 1, tzinfo=UTC)
    assert cutoff(None, None, now=NOW) is None
    with pytest.raises(UsageError, match="not both"):
        cutoff("1y", "2025-01-01", now=NOW)


def test_cutoff_also_takes_values_the_options_already_parsed() -> None:
    assert cutoff(parse_duration("6mo"), None, now=NOW) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    moment = parse_instant("2025-01-01T08:00:00+02:00")
    assert cutoff(None, moment, now=NOW) == moment
    with pytest.raises(UsageError, match="not both"):
        cutoff(parse_duration("1y"), moment, now=NOW)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1.5", 1.5),
        ("0", 0.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2min", 120.0),
        ("1h", 3600.0),
        ("1h30min", 5400.0),
        ("PT1M", 60.0),
        ("2d", 172800.0),
    ],
)
def test_seconds_share_the_duration_grammar(text: str, seconds: float) -> None:
    from chatdb.timeparse import parse_seconds

    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["soon", "1mo", "-1", "1m", ""])
def test_seconds_refuse_what_is_not_a_span_of_seconds(text: str) -> None:
    from chatdb.errors import UsageError
    from chatdb.timeparse import parse_seconds

    with pytest.raises(UsageError):
        parse_seconds(text)


@pytest.mark.parametrize("text", ["500ms", "10s", "5min", "1h", "250", " 2s "])
def test_timeouts_are_postgresql_settings(text: str) -> None:
    from chatdb.timeparse import parse_timeout

    assert parse_timeout(text, "CHATDB_JOB_LOCK_TIMEOUT") == text.strip()


@pytest.mark.parametrize("text", ["1.5s", "2s; DROP TABLE users", "soon", "1d", ""])
def test_timeouts_refuse_anything_else_naming_the_setting(text: str) -> None:
    from chatdb.errors import UsageError
    from chatdb.timeparse import parse_timeout

    with pytest.raises(UsageError, match="CHATDB_JOB_LOCK_TIMEOUT must look like 500ms, 10s, 5min or 1h"):
        parse_timeout(text, "CHATDB_JOB_LOCK_TIMEOUT")
