"""WHOWAS memory: who last used a nick, for the most recent quits and nick changes.

Bounded by count, not time: the oldest record goes when a new one would pass the
capacity, so a flood of nick changes costs a fixed amount of memory.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from chat_protocol.casemap import casefold

if TYPE_CHECKING:
    from chat_server.model import User

DEFAULT_CAPACITY = 1000


class WhowasEntry(NamedTuple):
    """What RPL_WHOWASUSER (314) and RPL_WHOISSERVER (312) tell about a former nick."""

    nick: str
    username: str
    host: str
    realname: str
    when: float


class NickHistory:
    """The last ``capacity`` nicks given up, searchable by nick, newest first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = max(0, capacity)
        self._order: deque[tuple[str, WhowasEntry]] = deque()  # oldest first
        self._by_nick: dict[str, deque[WhowasEntry]] = {}  # casefolded nick → oldest first

    def remember(self, user: User, when: float | None = None) -> None:
        """Record that ``user`` stops using its current nick (quit or nick change)."""
        if self.capacity == 0 or not user.folded:
            return
        entry = WhowasEntry(
            user.nick,
            user.username,
            user.host,
            user.realname,
            time.time() if when is None else when,
        )
        self._order.append((user.folded, entry))
        self._by_nick.setdefault(user.folded, deque()).append(entry)
        while len(self._order) > self.capacity:
            folded, _ = self._order.popleft()
            entries = self._by_nick[folded]
            entries.popleft()  # a nick's oldest entry is the oldest overall of its own
            if not entries:
                del self._by_nick[folded]

    def lookup(self, nick: str, limit: int | None = None) -> list[WhowasEntry]:
        """Entries for ``nick`` (exact, casefolded), newest first, at most ``limit``."""
        entries = self._by_nick.get(casefold(nick))
        if not entries:
            return []
        newest_first = list(reversed(entries))
        return newest_first[:limit] if limit else newest_first

    def __len__(self) -> int:
        return len(self._order)
