"""What history is made of: stored messages, runs, order keys, references and msgids.

Kept apart from the store so that the hot path, the handlers and the writer process
share these small types without importing each other. Times are formatted and parsed
by chat_protocol.servertime (re-exported here under the names the server uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from chat_protocol.casemap import casefold
from chat_protocol.servertime import format_ms, parse_seconds, to_ms
from chat_protocol.servertime import format_seconds as format_time

__all__ = [
    "SEQ_ABOVE",
    "SEQ_BELOW",
    "HistoryStoreError",
    "Key",
    "Ref",
    "Run",
    "StoredMessage",
    "dm_key",
    "dm_parties",
    "format_ms",
    "format_time",
    "msgid_seq",
    "parse_time",
    "run_messages",
    "to_ms",
]

# An order key: (time in ms, sequence). Messages of a conversation are ordered by it:
# milliseconds because that is what clients see in ``server-time`` and send back in
# ``timestamp=`` references, the sequence so that equal times keep their order. A
# timestamp reference becomes a key with a sequence below or above every real one, so
# an exclusive bound at a timestamp excludes every message of that millisecond.
Key = tuple[int, int]
SEQ_BELOW = -1
SEQ_ABOVE = 1 << 62

# The most hex digits a msgid's sequence may have.
_SEQ_HEX_DIGITS = 15


class HistoryStoreError(Exception):
    """The history database cannot be opened or used (bad path, corrupt file, ...)."""


class StoredMessage(NamedTuple):
    """One PRIVMSG/NOTICE as stored, with everything needed to replay it."""

    msgid: str
    time: float  # Unix seconds, whole milliseconds
    target: str  # the conversation: a casefolded room name or a dm_key
    source: str  # nick!user@host
    command: str
    recipient: str  # the target as the sender wrote it (#Room, or a nick)
    text: str
    tags: tuple[tuple[str, str], ...] = ()  # client-only tags, and ("bot", "")


# A run: the PRIVMSGs of one read from one sender to one conversation, as the hot path
# hands them over: first seq, time_ms, conversation, source, command, recipient, tags,
# msgids, texts. Its messages have the sequences first seq, first seq + 1, ... A plain
# tuple, not a NamedTuple: one is made per read on the hot path (a tuple subclass costs
# ~5x more to make). Read it by unpacking or with the getters below, never by index.
Run = tuple[int, int, str, str, str, str, tuple[tuple[str, str], ...], list[str], list[str]]
run_seq = itemgetter(0)
run_ms = itemgetter(1)
run_target = itemgetter(2)
run_texts = itemgetter(8)


def tag_pairs(tags: Iterable[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    """Tags as (key, value) pairs again after the worker pipe's JSON made them lists."""
    return tuple((key, value) for key, value in tags)


def run_last_seq(run: Run) -> int:
    """The sequence of a run's last message."""
    return run_seq(run) + len(run_texts(run)) - 1


def run_messages(run: Run) -> list[tuple[int, StoredMessage]]:
    """A run's messages with their sequences."""
    seq, ms, target, source, command, recipient, tags, msgids, texts = run
    when = ms / 1000
    return [
        (seq + i, StoredMessage(msgid, when, target, source, command, recipient, text, tags))
        for i, (msgid, text) in enumerate(zip(msgids, texts, strict=True))
    ]


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

    A single server mints ``<prefix>-<seq in lowercase hex>`` (Delivery.next_msgid), so
    the number is read from the text in O(1); anything else (no dash, an empty, long,
    upper-case, zero-padded or non-ASCII number) is not a msgid we made. Whether the
    message at that sequence really carries this msgid is for the caller to check.
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


def dm_parties(key: str) -> tuple[str, str] | None:
    """The two casefolded nicks of a dm_key, or None for a room."""
    if not key.startswith("dm:"):
        return None
    first, _, second = key[3:].partition(" ")
    return first, second or first
