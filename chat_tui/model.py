"""What the client keeps of its rooms: lines, unread counts, read marker, typing.

Plain data with no Textual and no I/O, so the rules (what counts as unread, where a
history line goes, what is a duplicate) are tested without a terminal or a server.
Who is in a room and its topic are chat_protocol's (see ``roster``), not kept here.
"""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from chat_protocol import casefold, is_channel
from chat_protocol.servertime import format_datetime, parse_datetime

_seq = itertools.count()

SERVER_ROOM = "*server*"
MAX_LINES = 20_000
TYPING_ACTIVE_SECONDS = 6.0
TYPING_PAUSED_SECONDS = 30.0


class LineKind(Enum):
    """How a line is drawn: chat text stands out, events are dimmed, errors are red."""

    MESSAGE = "message"
    ACTION = "action"
    NOTICE = "notice"
    EVENT = "event"
    INFO = "info"
    ERROR = "error"


@dataclass(slots=True)
class ChatLine:
    """One line in a room, as the server stored it (time and msgid from its tags)."""

    time: datetime
    kind: LineKind
    nick: str
    text: str
    msgid: str | None = None
    mention: bool = False
    own: bool = False
    bot: bool = False
    seq: int = field(default_factory=lambda: next(_seq))

    @property
    def counts_as_unread(self) -> bool:
        return self.kind in (LineKind.MESSAGE, LineKind.ACTION, LineKind.NOTICE) and not self.own


def parse_server_time(value: str | None) -> datetime:
    """The ``time`` tag as an aware UTC datetime; now when missing or malformed (a line
    without a readable time arrived just now, as far as the reader can tell)."""
    if value:
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    return datetime.now(UTC)


def format_server_time(moment: datetime) -> str:
    """Format a datetime the way ``server-time`` and CHATHISTORY timestamps expect."""
    return format_datetime(moment)


@dataclass(slots=True)
class ListEntry:
    """One row of the /list screen."""

    name: str
    users: int
    topic: str


@dataclass
class Room:
    """A channel, a direct conversation (query) or the server buffer."""

    name: str
    lines: list[ChatLine] = field(default_factory=list)
    unread: int = 0
    mentions: int = 0
    typing: dict[str, float] = field(default_factory=dict)  # nick -> monotonic expiry
    joined: bool = False
    history_exhausted: bool = False
    loading_history: bool = False
    draft: str = ""
    scroll_anchor: tuple[int, int] | None = None  # (line seq, row offset) when not at bottom
    # Time of the newest line seen before the connection dropped: history newer than
    # this (the gap fill after a reconnect) is news to the reader, so it counts as unread.
    gap_since: datetime | None = None
    # The newest line the reader has seen here (left the room, or another client of
    # theirs said so through MARKREAD), and this visit's "new since you last looked" line.
    read_until: datetime | None = None
    marker: datetime | None = None
    _msgids: set[str] = field(default_factory=set, repr=False)

    @property
    def key(self) -> str:
        return casefold(self.name)

    @property
    def is_channel(self) -> bool:
        return is_channel(self.name)

    @property
    def is_server(self) -> bool:
        return self.name == SERVER_ROOM

    @property
    def is_query(self) -> bool:
        return not self.is_channel and not self.is_server

    @property
    def oldest(self) -> ChatLine | None:
        """The oldest line the server gave us (the anchor for CHATHISTORY BEFORE)."""
        for line in self.lines:
            if line.msgid:
                return line
        return self.lines[0] if self.lines else None

    def add(self, line: ChatLine, older: bool = False) -> str | None:
        """Insert ``line`` in time order; returns "append", "insert" or None for a duplicate.

        Lines with equal times keep arrival order; ``older`` puts the line before its
        equals instead (a history page applied newest first lands in the right order).
        """
        if line.msgid:
            if line.msgid in self._msgids:
                return None
            self._msgids.add(line.msgid)
        lines = self.lines
        if not older and (not lines or line.time >= lines[-1].time):
            lines.append(line)
            where = "append"
        else:
            find = bisect.bisect_left if older else bisect.bisect_right
            index = find(lines, line.time, key=lambda ln: ln.time)
            lines.insert(index, line)
            where = "insert" if index < len(lines) - 1 else "append"
        if len(lines) > MAX_LINES:
            self._trim()
            where = "insert"  # indices moved: whoever shows the lines must lay them out again
        return where

    def _trim(self) -> None:
        dropped = self.lines[: len(self.lines) - MAX_LINES]
        del self.lines[: len(dropped)]
        self._msgids.difference_update(ln.msgid for ln in dropped if ln.msgid)
        self.history_exhausted = False

    def add_older(self, batch: list[ChatLine]) -> int:
        """Put a batch of older lines in front (one list operation); returns how many were new."""
        fresh = []
        for line in batch:
            if line.msgid and line.msgid in self._msgids:
                continue
            if line.msgid:
                self._msgids.add(line.msgid)
            fresh.append(line)
        if not fresh:
            return 0
        fresh.sort(key=lambda ln: ln.time)
        # In place: the message pane holds a reference to this very list.
        if not self.lines or fresh[-1].time <= self.lines[0].time:
            self.lines[:0] = fresh
        else:
            self.lines[:] = sorted([*fresh, *self.lines], key=lambda ln: ln.time)
        return len(fresh)

    def find(self, msgid: str | None, seq: int | None = None) -> ChatLine | None:
        """The line with ``msgid`` (or, without one, with ``seq``), if it is loaded."""
        if msgid is not None and msgid not in self._msgids:
            return None
        for line in reversed(self.lines):
            if (line.msgid == msgid) if msgid is not None else (line.seq == seq):
                return line
        return None

    @property
    def newest_server_time(self) -> datetime | None:
        """The time of the newest line the server sent (client notes do not count)."""
        for line in reversed(self.lines):
            if line.msgid or line.kind in (LineKind.MESSAGE, LineKind.ACTION, LineKind.EVENT):
                return line.time
        return None

    def stopped_typing(self, nick: str) -> None:
        """``nick`` left or spoke: no longer shown as typing."""
        folded = casefold(nick)
        for name in [n for n in self.typing if casefold(n) == folded]:
            del self.typing[name]

    def typing_now(self, now: float | None = None) -> list[str]:
        """Nicks typing right now; expired entries are dropped."""
        now = time.monotonic() if now is None else now
        for nick in [n for n, until in self.typing.items() if until <= now]:
            del self.typing[nick]
        return sorted(self.typing, key=casefold)

    def mark_read(self) -> None:
        self.unread = 0
        self.mentions = 0

    def enter_view(self) -> None:
        """The reader looks at the room: counts clear, the marker shows what is new."""
        self.marker = self.read_until
        self.mark_read()

    def leave_view(self) -> None:
        """The reader looks elsewhere: everything here until now has been seen."""
        if self.lines and (self.read_until is None or self.lines[-1].time > self.read_until):
            self.read_until = self.lines[-1].time

    def read_elsewhere(self, until: datetime) -> bool:
        """The reader's other client read up to ``until``; recount what is still unread.
        Returns whether anything changed."""
        if self.read_until is not None and until <= self.read_until:
            return False
        self.read_until = until
        newer = [ln for ln in self.lines if ln.time > until and ln.counts_as_unread]
        self.unread = len(newer)
        self.mentions = sum(1 for ln in newer if ln.mention or self.is_query)
        return True
