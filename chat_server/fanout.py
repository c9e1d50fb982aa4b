"""Fan-out: the same bytes appended to many send buffers, as rarely as possible.

Room messages are not appended to every member one by one. Messages to a room collect
in that room's open ``RoomBatch`` (one per room, for the member snapshot and skipped
sender it was opened with); a batch is appended to each member's buffer once, when
anything else must be written to a client, when its room's membership or skipped
sender changes, or at the end of the I/O round. So the k messages a busy room gets in
one round cost one append per member instead of k.

Order: every client still receives everything in exactly the order it was produced.
Batches open at the same time have no member in common: opening a batch marks its
members' connections, and a member already marked by another open batch has that batch
written out first. So per connection, the bytes of at most one batch are ever waiting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_server.model import TAG_MODES

if TYPE_CHECKING:
    from chat_server.connection import Connection
    from chat_server.model import Channel


class RoomBatch:
    """Messages for one room's member snapshot, one list of chunks per tag mode."""

    __slots__ = ("chan", "groups", "open", "parts", "skip")

    def __init__(self, chan: Channel, skip: Connection | None) -> None:
        self.chan = chan
        self.skip = skip
        # fanout_groups() returns a list that is replaced, never mutated, when the
        # membership changes: holding it pins the members the messages were sent to.
        self.groups = chan.fanout_groups()
        self.parts: list[list[bytes]] = [[] for _ in range(TAG_MODES)]
        self.open = True

    def matches(self, chan: Channel, skip: Connection | None) -> bool:
        return self.skip is skip and self.groups is chan.groups

    def write(self, dirty: list[Connection], soft: int) -> None:
        """Append what was collected to the members' buffers, then let go of it all
        (connections keep pointing at their last batch)."""
        self.open = False
        write_batch(self, dirty, soft)
        self.groups = []
        self.parts = []
        self.skip = None


class RoomBatches:
    """The open batches, at most one per room, with disjoint member connections."""

    __slots__ = ("by_room", "soft")

    def __init__(self, soft: int) -> None:
        self.by_room: dict[Channel, RoomBatch] = {}
        self.soft = soft  # the send-queue soft limit (flow.py)

    def get(self, chan: Channel, skip: Connection | None, dirty: list[Connection]) -> RoomBatch:
        """The open batch a message to ``chan`` (not for ``skip``) goes into."""
        batch = self.by_room.get(chan)
        if batch is not None:
            if batch.matches(chan, skip):
                return batch
            self.write(batch, dirty)
        batch = RoomBatch(chan, skip)
        for conns in batch.groups:
            for conn in conns:
                other = conn.batch
                if other is not None and other.open:
                    self.write(other, dirty)  # it holds earlier messages for this member
                conn.batch = batch
        self.by_room[chan] = batch
        return batch

    def write(self, batch: RoomBatch, dirty: list[Connection]) -> None:
        """Append one batch to its members' buffers and close it."""
        del self.by_room[batch.chan]
        batch.write(dirty, self.soft)

    def write_all(self, dirty: list[Connection]) -> None:
        """Append every open batch (their members are disjoint: any order will do)."""
        by_room = self.by_room
        if by_room:
            batches = list(by_room.values())
            by_room.clear()
            for batch in batches:
                batch.write(dirty, self.soft)


def append_to_all(
    conns: list[Connection],
    data: bytes,
    skip: Connection | None,
    dirty: list[Connection],
    soft: int,
) -> None:
    """Append ``data`` to each connection's buffer (the innermost loop of the server).

    A buffer joins ``dirty`` when it was empty, and again when it passes the soft
    limit, so that the flow-control verdict after this round's send sees it; nothing
    is judged here, before the kernel had a chance to take the bytes.
    """
    for conn in conns:
        if conn is skip:
            continue
        buf = conn.outbuf
        if not buf:
            dirty.append(conn)
        buf += data
        if len(buf) > soft and not conn.congested:
            dirty.append(conn)


def write_batch(batch: RoomBatch, dirty: list[Connection], soft: int) -> None:
    """Append everything the batch collected to its members' buffers."""
    for conns, chunks in zip(batch.groups, batch.parts, strict=True):
        if chunks and conns:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            append_to_all(conns, data, batch.skip, dirty, soft)
