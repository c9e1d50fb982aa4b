"""Fan-out: the same bytes appended to many send buffers, as rarely as possible.

Room messages are not appended to every member one by one. Consecutive messages to
the same room (from the same sender, with the same members) collect in one open
``RoomBatch``; the batch is appended to each member's buffer once, when anything
else must be written, when the room or sender changes, or at the end of the I/O
round. So a burst of k messages costs one append per member instead of k, and
every client still receives everything in exactly the order it was produced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_server.connection import Connection
    from chat_server.model import Channel


class RoomBatch:
    """Messages for one room's member snapshot, one list of chunks per tag mode."""

    __slots__ = ("chan", "groups", "parts", "skip")

    def __init__(self, chan: Channel, skip: Connection | None) -> None:
        self.chan = chan
        self.skip = skip
        # fanout_groups() returns a list that is replaced, never mutated, when the
        # membership changes: holding it pins the members the messages were sent to.
        self.groups = chan.fanout_groups()
        self.parts: list[list[bytes]] = [[], [], [], []]

    def matches(self, chan: Channel, skip: Connection | None) -> bool:
        return self.chan is chan and self.skip is skip and self.groups is chan.groups


def append_to_all(
    conns: list[Connection],
    data: bytes,
    skip: Connection | None,
    dirty: list[Connection],
    sendq_max: int,
) -> None:
    """Append ``data`` to each connection's buffer (the innermost loop of the server)."""
    for conn in conns:
        if conn is skip:
            continue
        buf = conn.outbuf
        if not buf:
            dirty.append(conn)
        buf += data
        if len(buf) > sendq_max and not conn.closing:
            conn.closing = "SendQ exceeded"
            dirty.append(conn)


def write_batch(batch: RoomBatch, dirty: list[Connection], sendq_max: int) -> None:
    """Append everything the batch collected to its members' buffers."""
    for conns, chunks in zip(batch.groups, batch.parts, strict=True):
        if chunks and conns:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            append_to_all(conns, data, batch.skip, dirty, sendq_max)
