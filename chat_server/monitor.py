"""Who MONITORs which nick (IRCv3 monitor), indexed both ways.

A presence change looks up the watchers of one casefolded nick; a watcher's own list
answers ``MONITOR L``/``S`` and is bounded by the server's limit. Both sides change
together here, so a watcher that leaves takes every trace of itself with it and the
reverse index never holds an empty set or a user that is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_server.model import User


class MonitorIndex:
    """Watch lists by watcher, and watchers by casefolded nick."""

    __slots__ = ("_lists", "_watchers")

    def __init__(self) -> None:
        # watcher -> casefolded nick -> the nick as the watcher spelled it (MONITOR L)
        self._lists: dict[User, dict[str, str]] = {}
        self._watchers: dict[str, set[User]] = {}

    def targets(self, watcher: User) -> Mapping[str, str]:
        """``watcher``'s list, casefolded nick -> nick as given, in the order added."""
        return self._lists.get(watcher, {})

    def count(self, watcher: User) -> int:
        return len(self._lists.get(watcher, ()))

    def watches(self, watcher: User, folded: str) -> bool:
        return folded in self._lists.get(watcher, ())

    def add(self, watcher: User, folded: str, nick: str) -> None:
        """Watch ``folded``; the caller checked the limit."""
        self._lists.setdefault(watcher, {})[folded] = nick
        self._watchers.setdefault(folded, set()).add(watcher)

    def remove(self, watcher: User, folded: str) -> None:
        targets = self._lists.get(watcher)
        if targets is None or targets.pop(folded, None) is None:
            return
        if not targets:
            del self._lists[watcher]
        self._unwatch(watcher, folded)

    def clear(self, watcher: User) -> None:
        """Forget ``watcher``'s whole list (MONITOR C, or the watcher left)."""
        for folded in self._lists.pop(watcher, {}):
            self._unwatch(watcher, folded)

    def watchers(self, folded: str) -> list[User]:
        """Who watches ``folded``: a copy, so a notification may change the index."""
        found = self._watchers.get(folded)
        return list(found) if found else []

    def sizes(self) -> tuple[int, int]:
        """(watchers, watched nicks): what the index holds, for tests and stats."""
        return len(self._lists), len(self._watchers)

    def _unwatch(self, watcher: User, folded: str) -> None:
        found = self._watchers.get(folded)
        if found is not None:
            found.discard(watcher)
            if not found:
                del self._watchers[folded]
