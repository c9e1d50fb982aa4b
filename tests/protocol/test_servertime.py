"""server-time: one formatter and one strict parser for server, protocol client and TUI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_protocol.servertime import (
    MAX_MS,
    MIN_MS,
    format_datetime,
    format_ms,
    format_seconds,
    parse_datetime,
    parse_ms,
    parse_seconds,
)


def test_known_values() -> None:
    assert format_ms(0) == "1970-01-01T00:00:00.000Z"
    assert format_seconds(1704067200.5) == "2024-01-01T00:00:00.500Z"
    assert format_seconds(1704067199.9996) == "2024-01-01T00:00:00.000Z"  # rounds to ms
    assert format_ms(-1) == "1969-12-31T23:59:59.999Z"
    assert format_ms(MIN_MS) == "0001-01-01T00:00:00.000Z"
    assert format_ms(MAX_MS) == "9999-12-31T23:59:59.999Z"
    assert parse_ms("2024-01-01T00:00:00.000Z") == 1704067200000
    assert parse_seconds("2024-01-01T00:00:00Z") == 1704067200.0  # no fraction
    assert parse_seconds("2024-01-01T00:00:00.5Z") == 1704067200.5  # one digit
    assert parse_ms("2024-01-01T00:00:00.123999999Z") == 1704067200123  # ns, truncated
    assert parse_datetime("2024-03-05T09:01:02.345Z") == datetime(
        2024, 3, 5, 9, 1, 2, 345000, tzinfo=UTC
    )


def test_datetimes_are_formatted_in_utc() -> None:
    moment = datetime(2024, 3, 5, 10, 1, 2, 345678, tzinfo=timezone(timedelta(hours=1)))
    assert format_datetime(moment) == "2024-03-05T09:01:02.345Z"  # ms truncated
    assert format_datetime(datetime(2024, 3, 5, 9, 1, 2)) == "2024-03-05T09:01:02.000Z"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "2024-01-01T00:00:00.000",  # no Z
        "2024-01-01T00:00:00.000z",
        "2024-01-01 00:00:00.000Z",
        "2024-01-01T00:00:00.000+00:00",
        "2024-01-01",
        "2024-13-01T00:00:00.000Z",
        "2023-02-29T00:00:00.000Z",
        "2024-01-01T24:00:00.000Z",
        "2024-01-01T00:60:00.000Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",  # more than 9 fraction digits
        "2024-1-01T00:00:00.000Z",
        "0000-01-01T00:00:00.000Z",
        "10000-01-01T00:00:00.000Z",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00.000Z",  # fullwidth digits
        "\u0662\u0660\u0662\u0664-01-01T00:00:00.000Z",  # Arabic-Indic digits
        "2024-01-01T00:00:0\u00b2.000Z",  # a superscript two
        " 2024-01-01T00:00:00.000Z",
        "2024-01-01T00:00:00.000Z ",
        "2024-01-01T00:00:00.000Z\n",
    ],
)
def test_garbage_is_rejected(bad: str) -> None:
    for parse in (parse_ms, parse_seconds, parse_datetime):
        with pytest.raises(ValueError):
            parse(bad)


def test_times_outside_the_calendar_do_not_format() -> None:
    for stamp in (MIN_MS - 1, MAX_MS + 1):
        with pytest.raises(ValueError):
            format_ms(stamp)
    assert format_ms(MAX_MS) == "9999-12-31T23:59:59.999Z"  # and the cache is not fooled


MS_RANGE = st.integers(min_value=MIN_MS, max_value=MAX_MS)


@given(MS_RANGE)
def test_round_trip_from_ms(ms: int) -> None:
    text = format_ms(ms)
    assert len(text) == 24
    assert parse_ms(text) == ms
    assert parse_seconds(text) == ms / 1000
    assert format_seconds(parse_seconds(text)) == text
    assert format_datetime(parse_datetime(text)) == text


@given(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)))
def test_round_trip_from_datetime(when: datetime) -> None:
    exact = when.replace(microsecond=when.microsecond // 1000 * 1000)
    assert parse_datetime(format_datetime(when)) == exact
