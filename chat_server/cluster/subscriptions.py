"""Which message shards a node reads, and the rooms whose history it keeps whole.

A node reads the shard (shards.py) of every room it has a local member in, and of
every message of its own still in flight (its echo must come back through the stream,
and the fence in inflight.py only says something about streams the node reads). A
shard is added at once, read from the loop's last applied position (``position``), so
a new member gets every message after its JOIN; it is dropped lazily, ``KEEP_IDLE``
seconds after its last reason, so a user who parts and joins again costs nothing.

History follows what the node reads. A room's history is *held* here when the node
fetched the room's newest messages (``dc:h:<room>``, up to ``position``) while its
shard was read, and has read the shard ever since: the stream brings everything after.
A room whose shard is dropped is no longer held (its replay cache is forgotten), and
its next local JOIN fetches again. Direct messages are in ``dc:events``, read always.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat_server.cluster.shards import shard_of, streams_read
from chat_server.history.recent import FailedLoads

if TYPE_CHECKING:
    from chat_server.cluster.event_reader import ReadPosition
    from chat_server.server import Server

KEEP_IDLE = 5.0  # seconds a shard stays read after its last member here left
RETRY_LOAD = 5.0  # seconds a room whose history fetch failed is joined without one


class Subscriptions:
    """The loop's side of what the reader reads (see the module docstring)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.shards: set[int] = set()
        self.held: set[str] = set()  # rooms whose history here is whole
        self.loading: set[str] = set()  # rooms whose history is being fetched
        self.position: ReadPosition | None = None  # how far the loop has applied
        self.rewinds = 0  # the reader's count: batches read before a rewind are dropped
        self._idle_since: dict[int, float] = {}
        self._failed = FailedLoads(RETRY_LOAD)  # rooms not to fetch again for a while

    def shard(self, room: str) -> int:
        return shard_of(room, self.count)

    def streams(self) -> tuple[str, ...]:
        return streams_read(self.shards)

    def needs_load(self, room: str) -> bool:
        """Whether a local JOIN of ``room`` should fetch its history first."""
        return room not in self.held and room not in self._failed

    def loaded(self, rooms: Iterable[str]) -> None:
        for room in rooms:
            self.loading.discard(room)
            if self.shard(room) in self.shards:
                self.held.add(room)

    def load_failed(self, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        self.loading.difference_update(rooms)
        self._failed.add(rooms)

    def wanted(self, server: Server, in_flight: Iterable[str]) -> set[int]:
        """The shards with a reason to be read: rooms with a local member, rooms being
        loaded, and the rooms of messages in flight."""
        rooms = set(in_flight) | self.loading
        for conn in server.conns.values():
            user = conn.user
            if user is not None:
                rooms.update(user.channels)
        return {self.shard(room) for room in rooms}

    def idle(self, wanted: set[int], now: float) -> set[int]:
        """Shards read without a reason for ``KEEP_IDLE`` seconds: to be dropped."""
        for shard in wanted:
            self._idle_since.pop(shard, None)
        drop = set()
        for shard in self.shards - wanted:
            since = self._idle_since.setdefault(shard, now)
            if now - since >= KEEP_IDLE:
                drop.add(shard)
        return drop

    def drop(self, shards: set[int]) -> list[str]:
        """Stop reading ``shards``; returns the rooms no longer held."""
        self.shards -= shards
        for shard in shards:
            self._idle_since.pop(shard, None)
        gone = [room for room in self.held if self.shard(room) in shards]
        self.held.difference_update(gone)
        return gone
