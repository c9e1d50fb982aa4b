"""What the bot remembers of each room: the last N lines, and counts for room statistics.

The memory is fed from everything the room says, join replay included, so that "bot:
summarise the last ten minutes" right after the bot (re)joined still has material.
Lines keep the server's time (``server-time`` tag) so the model can reason about it.
The counts behind ``stats`` take only what the bot saw live: a replay is old news.

A person's *thread* is what they asked the bot and what it answered them: lines tied
together by the ``+draft/reply`` tags the bot puts on its answers (and people put on
their replies to it). ``forget`` removes a thread from the memory the model is shown.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.sanitize import clean_line
from bot.triggers import addressed_text
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
    reply_to: str | None = None  # the msgid a ``+draft/reply`` tag names

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
    return Line(
        message_time(msg),
        msg.nick,
        text,
        action,
        msg.tags.get("msgid"),
        msg.tags.get("+draft/reply") or msg.tags.get("+reply"),
    )


@dataclass
class RoomMemory:
    """The last ``size`` lines of one room (or one private conversation) and its counts."""

    size: int
    lines: deque[Line] = field(default_factory=deque)
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    total: int = 0
    by_nick: Counter[str] = field(default_factory=Counter)
    reloaded: bool = False  # a private chat's history was fetched from the server
    _ids: set[str] = field(default_factory=set)

    def add(self, line: Line, *, live: bool = True) -> bool:
        """Remember a line; a repeated msgid (replay overlapping live) is ignored.

        Only ``live`` lines count for statistics; replayed history fills the memory.
        """
        if line.msgid is not None and self.size > 0:
            if line.msgid in self._ids:
                return False
            self._ids.add(line.msgid)
        if self.size > 0:
            if not live and self.lines and line.at < self.lines[-1].at:
                self._insert_in_time_order(line)
            else:
                self.lines.append(line)
            while len(self.lines) > self.size:
                old = self.lines.popleft()
                if old.msgid is not None:
                    self._ids.discard(old.msgid)
        if live:
            self.total += 1
            self.by_nick[line.nick] += 1
        return True

    def _insert_in_time_order(self, line: Line) -> None:
        """History fetched after live lines arrived (a reload) goes before them."""
        ordered = sorted([*self.lines, line], key=lambda ln: ln.at)
        self.lines = deque(ordered)

    def clear(self) -> None:
        """Forget every line (counts stay: they describe what was seen, not what is kept)."""
        self.lines.clear()
        self._ids.clear()

    def forget_thread(self, nick: str, bot_nick: str) -> int:
        """Drop ``nick``'s questions to the bot and its answers to them; how many lines."""
        who, me = casefold(nick), casefold(bot_nick)
        theirs = {ln.msgid for ln in self.lines if casefold(ln.nick) == who and ln.msgid}
        mine = {ln.msgid for ln in self.lines if casefold(ln.nick) == me and ln.msgid}
        answers = [
            ln
            for ln in self.lines
            if casefold(ln.nick) == me
            and (
                ln.reply_to in theirs
                or (ln.reply_to is None and casefold(ln.text).startswith(who + ": "))
            )
        ]
        asked = {ln.reply_to for ln in answers}
        drop = {id(ln) for ln in answers}
        drop.update(
            id(ln)
            for ln in self.lines
            if casefold(ln.nick) == who
            and (
                ln.msgid in asked
                or ln.reply_to in mine
                or addressed_text(ln.text, bot_nick) is not None
            )
        )
        kept = [ln for ln in self.lines if id(ln) not in drop]
        dropped = len(self.lines) - len(kept)
        self.lines = deque(kept)
        self._ids = {ln.msgid for ln in kept if ln.msgid is not None}
        return dropped

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


class Bounded(OrderedDict[str, Any]):
    """A dict that forgets its oldest entries past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class CutAnswers:
    """The unsent rest of each asker's last cut answer, per room or private chat.

    ``more`` takes the next page of it. Only the last answer counts (a new one replaces
    it), and the least recently cut are forgotten first, so it stays small.
    """

    def __init__(self, max_entries: int = 500) -> None:
        self.max_entries = max_entries
        self._rest: OrderedDict[tuple[str, str], list[str]] = OrderedDict()

    def keep(self, target: str, asker: str, lines: list[str]) -> None:
        key = (casefold(target), casefold(asker))
        self._rest.pop(key, None)
        if lines:
            self._rest[key] = lines
            while len(self._rest) > self.max_entries:
                self._rest.popitem(last=False)

    def take(self, target: str, asker: str) -> list[str]:
        """The kept lines (removed from here), or [] when there are none."""
        return self._rest.pop((casefold(target), casefold(asker)), [])
