"""What the bot remembers of each room: the last N lines, and counts for room statistics.

The memory is fed from everything the room says, join replay included, so that "bot:
summarise the last ten minutes" right after the bot (re)joined still has material.
Lines keep the server's time (``server-time`` tag) so the model can reason about it.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.sanitize import clean_line
from chat_protocol import Message
from chat_protocol.casemap import casefold


@dataclass(frozen=True, slots=True)
class Line:
    """One remembered line of a room."""

    at: datetime
    nick: str
    text: str
    action: bool = False
    msgid: str | None = None

    def render(self) -> str:
        """``[14:05] alice: hi`` / ``[14:05] * alice waves`` for the model."""
        stamp = self.at.strftime("%H:%M")
        if self.action:
            return f"[{stamp}] * {self.nick} {self.text}"
        return f"[{stamp}] {self.nick}: {self.text}"


def message_time(msg: Message) -> datetime:
    """The ``time`` tag (IRCv3 server-time) or now, in UTC."""
    raw = msg.tags.get("time")
    if raw:
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def line_from(msg: Message) -> Line | None:
    """A Line for a PRIVMSG (or CTCP ACTION), None for anything else."""
    if msg.command != "PRIVMSG" or len(msg.params) < 2 or not msg.nick:
        return None
    text = msg.params[1]
    action = False
    if text.startswith("\x01"):
        if not text.startswith("\x01ACTION"):
            return None
        text = text[len("\x01ACTION") :].rstrip("\x01")
        action = True
    text = clean_line(text)
    if not text:
        return None
    return Line(message_time(msg), msg.nick, text, action, msg.tags.get("msgid"))


@dataclass
class RoomMemory:
    """The last ``size`` lines of one room (or one private conversation) and its counts."""

    size: int
    lines: deque[Line] = field(default_factory=deque)
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    total: int = 0
    by_nick: Counter[str] = field(default_factory=Counter)
    _ids: set[str] = field(default_factory=set)

    def add(self, line: Line) -> bool:
        """Remember a line; a repeated msgid (replay overlapping live) is ignored."""
        if line.msgid is not None and self.size > 0:
            if line.msgid in self._ids:
                return False
            self._ids.add(line.msgid)
        if self.size > 0:
            self.lines.append(line)
            while len(self.lines) > self.size:
                old = self.lines.popleft()
                if old.msgid is not None:
                    self._ids.discard(old.msgid)
        self.total += 1
        self.by_nick[line.nick] += 1
        return True

    def transcript(self, exclude: Line | None = None) -> list[str]:
        """The remembered lines, oldest first, rendered for the model.

        ``exclude`` is the question being answered: it goes to the model separately.
        """
        return [ln.render() for ln in self.lines if ln is not exclude]


class Memories:
    """RoomMemory by casefolded target name; the least recently used are forgotten first.

    Every private chat gets a memory too, so without a bound a bot on a busy network
    would grow with every nick that ever said hello.
    """

    def __init__(
        self,
        size: int,
        max_targets: int = 2000,
        size_for: Callable[[str], int] | None = None,
    ) -> None:
        self.size = size
        self.max_targets = max_targets
        self._size_for = size_for  # a room's own number of lines, when rooms differ
        self._rooms: OrderedDict[str, RoomMemory] = OrderedDict()

    def get(self, target: str) -> RoomMemory:
        key = casefold(target)
        memory = self._rooms.get(key)
        if memory is None:
            size = self.size if self._size_for is None else self._size_for(target)
            memory = self._rooms[key] = RoomMemory(size)
            while len(self._rooms) > self.max_targets:
                self._rooms.popitem(last=False)
        else:
            self._rooms.move_to_end(key)
        return memory

    def forget(self, target: str) -> None:
        self._rooms.pop(casefold(target), None)
