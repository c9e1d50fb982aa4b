"""The newest messages of the rooms in use, in memory, for the join replay.

A JOIN must be answered without touching the disk on the event loop, so each room
that is loaded keeps its newest ``per_room`` messages here, as the runs the hot path
appended (no per-message object until a replay needs one). All rooms together stay
under ``budget`` bytes (estimated): past it, the least recently used room is dropped
and becomes cold again (its next JOIN loads it through the worker). A room that
empties is dropped at once (Server.remove_member calls ``forget``).

Invariant: a room is either absent (cold: the worker may have more of it), or present
with its newest messages, all of them up to ``per_room`` (nothing newer is missing).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterable

from chat_server.history.model import Run, StoredMessage, run_messages, run_ms, run_seq, run_texts

_RUN_OVERHEAD = 200  # bytes of tuple, lists and strings around a run's texts


def run_key(run: Run) -> tuple[int, int]:
    """A run's place in a conversation: (time in ms, first sequence)."""
    return run_ms(run), run_seq(run)


def run_size(run: Run) -> int:
    """A run's estimated size in memory."""
    texts = run_texts(run)
    return _RUN_OVERHEAD + 100 * len(texts) + sum(map(len, texts))


class RoomRecent:
    """One room's newest runs, holding at least ``per_room`` messages when it has them."""

    __slots__ = ("count", "runs", "size")

    def __init__(self) -> None:
        self.runs: deque[Run] = deque()
        self.count = 0
        self.size = 0

    def add(self, run: Run, per_room: int) -> int:
        """Insert ``run`` in order and drop the oldest runs the room no longer needs;
        returns how much the size grew (negative when it shrank).

        Runs are kept sorted by (time, first sequence), the order LATEST uses. A run
        normally belongs at the end; one stamped earlier (the clock stepped back) is
        placed where it belongs, and is dropped at once if it is older than every
        message the room keeps.
        """
        before = self.size
        runs = self.runs
        key = run_key(run)
        if not runs or run_key(runs[-1]) <= key:
            runs.append(run)
        else:
            at = len(runs) - 1
            while at > 0 and run_key(runs[at - 1]) > key:
                at -= 1
            runs.insert(at, run)
        self.count += len(run_texts(run))
        self.size += run_size(run)
        while runs and self.count - len(run_texts(runs[0])) >= per_room:
            old = runs.popleft()
            self.count -= len(run_texts(old))
            self.size -= run_size(old)
        return self.size - before

    def newest(self, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` messages, oldest first (the runs are already in order)."""
        if limit <= 0:
            return []
        messages = [message for run in self.runs for _, message in run_messages(run)]
        return messages[-limit:]


class Recent:
    """Every loaded room's RoomRecent, bounded in bytes (LRU)."""

    def __init__(self, per_room: int, budget: int) -> None:
        self.per_room = max(1, per_room)
        self.budget = budget
        self.rooms: OrderedDict[str, RoomRecent] = OrderedDict()
        self.size = 0
        self.evicted = 0

    def __contains__(self, room: str) -> bool:
        return room in self.rooms

    def add(self, room: str, run: Run) -> None:
        """Add a run to a loaded room (a cold room keeps nothing here)."""
        recent = self.rooms.get(room)
        if recent is None:
            return
        self.rooms.move_to_end(room)
        self.size += recent.add(run, self.per_room)
        if self.size > self.budget:
            self._evict()

    def load(self, room: str, runs: list[Run]) -> None:
        """Make ``room`` loaded with these runs (its newest, oldest first)."""
        self.forget(room)
        recent = self.rooms[room] = RoomRecent()
        for run in runs:
            self.size += recent.add(run, self.per_room)
        if self.size > self.budget:
            self._evict()

    def newest(self, room: str, limit: int) -> list[StoredMessage] | None:
        """The room's newest messages, or None when it is cold."""
        recent = self.rooms.get(room)
        if recent is None:
            return None
        self.rooms.move_to_end(room)
        return recent.newest(limit)

    def forget(self, room: str) -> None:
        recent = self.rooms.pop(room, None)
        if recent is not None:
            self.size -= recent.size

    def _evict(self) -> None:
        while self.size > self.budget and len(self.rooms) > 1:
            _, recent = self.rooms.popitem(last=False)
            self.size -= recent.size
            self.evicted += 1


class FailedLoads:
    """Rooms whose history could not be loaded just now (the database or Redis away):
    for ``seconds`` their JOINs go ahead without it instead of asking again and again.
    Expired entries go at the next failure, so rooms never joined again do not pile up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: dict[str, float] = {}

    def add(self, rooms: Iterable[str]) -> None:
        now = time.monotonic()
        self._until = {room: t for room, t in self._until.items() if t > now}
        self._until.update((room, now + self.seconds) for room in rooms)

    def __contains__(self, room: object) -> bool:
        """Whether ``room`` failed less than ``seconds`` ago."""
        until = self._until.get(room) if isinstance(room, str) else None
        if until is None:
            return False
        if until > time.monotonic():
            return True
        del self._until[str(room)]
        return False
