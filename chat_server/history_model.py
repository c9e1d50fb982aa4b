"""What history is made of: stored messages, order keys, references and msgids.

Kept apart from the store so that the hot path, the cache and the query handlers can
share these small types without importing SQLite machinery. Times are formatted and
parsed by chat_protocol.servertime (re-exported here under the names the server uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from chat_protocol.casemap import casefold
from chat_protocol.servertime import format_ms, parse_seconds, to_ms
from chat_protocol.servertime import format_seconds as format_time

__all__ = [
    "SEQ_ABOVE",
    "SEQ_BELOW",
    "Entry",
    "HistoryStoreError",
    "Key",
    "Ref",
    "StoredMessage",
    "dm_key",
    "entry_key",
    "entry_seq",
    "format_ms",
    "format_time",
    "msgid_seq",
    "parse_time",
    "to_ms",
]

# An order key: (time in ms, sequence). Timestamp references become keys with a sequence
# below or above every real one, so "exclusive" bounds exclude all messages of that ms.
Key = tuple[int, int]
SEQ_BELOW = -1
SEQ_ABOVE = 1 << 62

# The most hex digits a msgid's sequence may have (SEQ_ABOVE needs 16).
_SEQ_HEX_DIGITS = 15


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


# A cache entry: (key, message). Plain tuples, not a NamedTuple: a query turns every
# cached run into entries, and a tuple subclass costs ~150 ns more per message to make.
# Read them with entry_key/entry_seq or by unpacking ``(ms, seq), msg = entry``.
Entry = tuple[Key, StoredMessage]


def entry_key(entry: Entry) -> Key:
    """An entry's order key (for bisect's ``key=``)."""
    return entry[0]


def entry_seq(entry: Entry) -> int:
    """An entry's sequence number."""
    return entry[0][1]


def parse_time(text: str) -> float:
    """A ``server-time`` string as Unix seconds; ValueError when it is not one."""
    return parse_seconds(text)


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


def msgid_seq(msgid: str) -> int | None:
    """The history sequence a msgid of ours names, or None when it cannot be one.

    The server mints ``<prefix>-<seq in lowercase hex>`` (Server.next_msgid), so the
    number is read from the text in O(1); anything else (no dash, an empty, long,
    upper-case, zero-padded or non-ASCII number) is not a msgid we made. Whether the
    message at that sequence really carries this msgid (the prefix changes with each
    start unless node_id is set) is for the caller to check.
    """
    digits = msgid[msgid.rfind("-") + 1 :] if "-" in msgid else ""
    if not 0 < len(digits) <= _SEQ_HEX_DIGITS or not digits.isascii() or not digits.isalnum():
        return None
    try:
        seq = int(digits, 16)
    except ValueError:
        return None
    # Only the exact text the server would have made: "{:x}", no padding, no capitals.
    return seq if format(seq, "x") == digits else None


def dm_key(a: str, b: str) -> str:
    """The conversation key of direct messages between two nicks, the same both ways."""
    return "dm:" + " ".join(sorted([casefold(a), casefold(b)]))
