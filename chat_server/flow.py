"""Flow control: how much a client may have waiting, and who waits for whom.

The rule, as Redis applies it to its output buffers: what counts is the backlog the
kernel could not take, measured after a send attempt, never the bytes queued within
one loop round (a burst that the socket takes at once is no backlog at all).

- Over ``sendq_max`` (the hard limit) after a send attempt: the client is cut now.
- Over ``sendq_soft``: the client is *congested*. Backpressure instead of loss: while
  a room has a congested member, the server stops reading from the room's other
  members, so the messages that would pile up on the slow reader stay in their
  senders' kernel buffers (TCP slows the senders down). Each connection also reads at
  most ``read_budget`` bytes a round (connection.py), so a burst arrives in slices and
  a member passes the soft limit by at most one round's worth.
- Congested for longer than ``sendq_soft_seconds``: cut ("SendQ exceeded"). So a
  client that stopped reading cannot freeze a room for longer than that.
- A congested client drains to half the soft limit to count as caught up again; then
  its rooms' members are read again.

Long replies (CHATHISTORY, the join replay, labeled batches) are *paced*: queued as
chunks on the connection and moved into its send buffer only while that holds less
than half the soft limit, while the requester itself is not read. So a reply of any
size reaches a slow reader in full and is never a reason to cut it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat_server.connection import PAUSED_ROOM, Connection

if TYPE_CHECKING:
    from chat_server.model import Channel

PACE_CHUNK = 16 * 1024  # bytes of a paced reply moved into a send buffer at a time


@dataclass(frozen=True, slots=True)
class SendLimits:
    """The send-queue limits, in bytes and seconds (see the module docstring)."""

    hard: int
    soft: int
    soft_seconds: float

    @property
    def low(self) -> int:
        """Below this a congested client has caught up, and paced replies refill."""
        return self.soft // 2


class FlowControl:
    """Congestion bookkeeping and the verdicts after each send attempt.

    ``resume(conn, reason)`` is the server's way to lift one pause reason of a
    connection (and handle the lines it held back when no reason is left).
    """

    def __init__(self, limits: SendLimits, resume: Callable[[Connection, int], None]) -> None:
        self.limits = limits
        self.resume = resume
        self.congested: set[Connection] = set()

    # -- after a send attempt ----------------------------------------------------------

    def check(self, conn: Connection, now: float | None = None) -> str | None:
        """Judge ``conn``'s backlog after a send attempt; a reason to cut it, or None."""
        limits = self.limits
        backlog = len(conn.outbuf)
        if backlog > limits.hard:
            return "SendQ exceeded"
        if conn.paced and backlog < limits.low:
            self.pump(conn)
            backlog = len(conn.outbuf)
        if backlog > limits.soft:
            now = time.monotonic() if now is None else now
            if not conn.congested:
                self._congest(conn, now)
            elif now - conn.congested_since > limits.soft_seconds:
                return "SendQ exceeded"
        elif conn.congested and backlog <= limits.low:
            self.relieve(conn)
        return None

    def expired(self, now: float) -> list[Connection]:
        """Connections congested for longer than the soft limit allows."""
        limit = self.limits.soft_seconds
        return [c for c in self.congested if now - c.congested_since > limit]

    # -- who waits for whom ------------------------------------------------------------

    def room_is_congested(self, conn: Connection) -> bool:
        """Whether another member of one of ``conn``'s rooms is congested, so reading
        ``conn`` (whose messages would go to that member too) must wait."""
        if not self.congested or conn.user is None:
            return False
        own = 1 if conn.congested else 0
        return any(chan.congested > own for chan in conn.user.channels.values())

    def _congest(self, conn: Connection, now: float) -> None:
        conn.congested = True
        conn.congested_since = now
        self.congested.add(conn)
        if conn.user is not None:
            for chan in conn.user.channels.values():
                chan.congested += 1

    def relieve(self, conn: Connection) -> None:
        """``conn`` caught up (or is leaving): its rooms may be read again."""
        if not conn.congested:
            return
        conn.congested = False
        self.congested.discard(conn)
        if conn.user is not None:
            for chan in list(conn.user.channels.values()):
                chan.congested -= 1
                self.wake_room(chan)

    def wake_room(self, chan: Channel) -> None:
        """Read again from the members of ``chan`` that waited only for congestion that
        is gone (called when a congested member catches up or leaves)."""
        if chan.congested > 1:
            return  # still someone else's backlog for everyone to wait for
        for member in list(chan.members):
            conn = member.conn
            if conn is not None and conn.paused & PAUSED_ROOM:
                self.wake(conn)

    def wake(self, conn: Connection) -> None:
        """Lift ``conn``'s room pause if none of its rooms holds it back any more."""
        if conn.paused & PAUSED_ROOM and not self.room_is_congested(conn):
            self.resume(conn, PAUSED_ROOM)

    # -- paced replies -----------------------------------------------------------------

    def queue_paced(self, conn: Connection, chunks: Iterable[bytes]) -> None:
        """Queue a long reply; it moves into the send buffer as that drains."""
        conn.paced.extend(chunks)
        self.pump(conn)

    def pump(self, conn: Connection) -> None:
        """Move paced chunks into ``outbuf`` while it holds less than the low mark."""
        paced = conn.paced
        outbuf = conn.outbuf
        low = self.limits.low
        while paced and len(outbuf) < low:
            outbuf += paced.pop(0)


def chunk_lines(lines: Iterable[bytes], size: int = PACE_CHUNK) -> list[bytes]:
    """Join whole lines into chunks of about ``size`` bytes (a line is never split)."""
    chunks: list[bytes] = []
    part: list[bytes] = []
    used = 0
    for line in lines:
        part.append(line)
        used += len(line)
        if used >= size:
            chunks.append(b"".join(part))
            part, used = [], 0
    if part:
        chunks.append(b"".join(part))
    return chunks
