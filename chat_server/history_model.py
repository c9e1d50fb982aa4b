"""What history is made of: stored messages, order keys, references and timestamps.

Kept apart from the store so that the hot path, the cache and the query handlers can
share these small types without importing SQLite machinery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from chat_protocol.casemap import casefold

# An order key: (time in ms, sequence). Timestamp references become keys with a sequence
# below or above every real one, so "exclusive" bounds exclude all messages of that ms.
Key = tuple[int, int]
SEQ_BELOW = -1
SEQ_ABOVE = 1 << 62

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z", re.ASCII)


class HistoryStoreError(Exception):
    """The history database cannot be opened or used (bad path, corrupt file, ...)."""


class StoredMessage(NamedTuple):
    """One PRIVMSG/NOTICE as stored, with everything needed to replay it.

    A NamedTuple rather than a frozen dataclass: one is built per message on the hot
    path, and a tuple is several times cheaper to create.
    """

    msgid: str
    time: float
    target: str
    source: str
    command: str
    recipient: str
    text: str
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Ref:
    """A CHATHISTORY reference: a msgid or a timestamp, never both."""

    msgid: str | None = None
    time: float | None = None

    def __post_init__(self) -> None:
        if (self.msgid is None) == (self.time is None):
            raise ValueError("a history reference needs exactly one of msgid or time")

    @classmethod
    def parse(cls, text: str) -> Ref | None:
        """Parse ``msgid=...`` or ``timestamp=...``; ``*`` (no reference) gives None."""
        if text == "*":
            return None
        kind, sep, value = text.partition("=")
        if not sep or not value:
            raise ValueError(f"bad history reference {text!r}: expected msgid=... or timestamp=...")
        kind = kind.lower()
        if kind == "msgid":
            return cls(msgid=value)
        if kind == "timestamp":
            return cls(time=parse_time(value))
        raise ValueError(f"bad history reference {text!r}: unknown kind {kind!r}")


def dm_key(a: str, b: str) -> str:
    """The conversation key of direct messages between two nicks, the same both ways."""
    return "dm:" + " ".join(sorted([casefold(a), casefold(b)]))


def to_ms(t: float) -> int:
    return round(t * 1000)


def format_time(t: float) -> str:
    """Unix seconds as the IRCv3 ``server-time`` format, ``YYYY-MM-DDTHH:MM:SS.sssZ``.

    Busy rooms stamp many messages within one millisecond, so the last result is kept.
    """
    return format_ms(round(t * 1000))


def format_ms(stamp: int) -> str:
    """:func:`format_time` of a time in whole milliseconds (the last one is kept)."""
    global _last_time
    last = _last_time
    if last[0] == stamp:
        return last[1]
    text = _format_ms(stamp)
    _last_time = (stamp, text)
    return text


_last_time: tuple[int, str] = (-1 << 62, "")


def _format_ms(stamp: int) -> str:
    secs, ms = divmod(stamp, 1000)
    # Adding a timedelta (rather than utcfromtimestamp) works for any year 1..9999 on
    # every platform, including times before 1970.
    d = _EPOCH + timedelta(seconds=secs)
    # Explicit widths: strftime's %Y does not zero-pad years before 1000 on glibc.
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{ms:03d}Z"
    )


def parse_time(s: str) -> float:
    """Inverse of :func:`format_time`; digits beyond milliseconds are truncated."""
    m = _TIME_RE.fullmatch(s)
    if m is None:
        raise ValueError(f"bad timestamp {s!r}: expected YYYY-MM-DDThh:mm:ss.sssZ")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"bad timestamp {s!r}: {exc}") from None
    # Integer milliseconds, divided once: the float is then the nearest double to the
    # exact value, so format_time(parse_time(s)) == s.
    ms = (stamp - _EPOCH) // _ONE_MS + int((frac + "00")[:3])
    return ms / 1000


# A cache entry: (key, message). Tuples keep entries small and bisectable by key.
Entry = tuple[Key, StoredMessage]
