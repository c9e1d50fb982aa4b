"""IRCv3 ``server-time``: ``YYYY-MM-DDThh:mm:ss.sssZ``, always UTC, to the millisecond.

One home for the format, used by the server (tags, CHATHISTORY references and replies),
the protocol client (gap filling) and the terminal client (line times). Parsing is
strict, so garbage is an error rather than a guess: ``T`` and ``Z`` are required, every
field has its exact width of ASCII digits, and the date must exist. The fraction may
have 0 to 9 digits (other servers send seconds, micro- or nanoseconds); digits beyond
milliseconds are truncated. Years run 0001..9999, the range of :class:`datetime`.

Times are carried as whole milliseconds since 1970 (``int``, exact) or as Unix seconds
(``float``, what ``time.time()`` gives); conversions go through milliseconds so that
``format_seconds(parse_seconds(s)) == s`` for every valid ``s`` with a 3-digit fraction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z", re.ASCII)

# The range a server-time can name: 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z.
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS


def to_ms(seconds: float) -> int:
    """Unix seconds as whole milliseconds (rounded to the nearest)."""
    return round(seconds * 1000)


def format_ms(stamp: int) -> str:
    """Milliseconds since 1970 as a server-time string; ValueError outside years 1..9999.

    The server stamps many messages within one millisecond, so the last answer is kept.
    """
    global _last
    last = _last
    if last[0] == stamp:
        return last[1]
    if not MIN_MS <= stamp <= MAX_MS:
        raise ValueError(f"time {stamp} ms is outside the years 1..9999")
    secs, ms = divmod(stamp, 1000)
    # Adding a timedelta (rather than utcfromtimestamp) works for any year 1..9999 on
    # every platform, including times before 1970.
    d = _EPOCH + timedelta(seconds=secs)
    # Explicit widths: strftime's %Y does not zero-pad years before 1000 on glibc.
    text = (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{ms:03d}Z"
    )
    _last = (stamp, text)
    return text


_last: tuple[int | None, str] = (None, "")


def format_seconds(seconds: float) -> str:
    """Unix seconds as a server-time string (rounded to the millisecond)."""
    return format_ms(to_ms(seconds))


def format_datetime(when: datetime) -> str:
    """A datetime as a server-time string; a naive one is taken to be UTC already."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return format_ms((when.replace(tzinfo=UTC) - _EPOCH) // _ONE_MS)


def parse_ms(text: str) -> int:
    """A server-time string as milliseconds since 1970; ValueError when it is not one."""
    m = _TIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"bad timestamp {text!r}: expected YYYY-MM-DDThh:mm:ss.sssZ")
    year, month, day, hour, minute, second = map(int, m.groups()[:6])
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"bad timestamp {text!r}: {exc}") from None
    return (stamp - _EPOCH) // _ONE_MS + int(((m.group(7) or "") + "00")[:3])


def parse_seconds(text: str) -> float:
    """A server-time string as Unix seconds; ValueError when it is not one.

    Divided once from whole milliseconds, so the float is the nearest double to the
    exact value and formats back to the same text.
    """
    return parse_ms(text) / 1000


def parse_datetime(text: str) -> datetime:
    """A server-time string as an aware UTC datetime; ValueError when it is not one."""
    return _EPOCH + timedelta(milliseconds=parse_ms(text))
