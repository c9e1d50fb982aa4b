"""One client socket: bounded receive and send buffers, line framing, why it is paused.

Writes go into ``outbuf`` and are sent once per loop round (the server flushes every
connection that became non-empty). Writability is watched only while bytes wait, the
way asyncio's selector transport does it. How big ``outbuf`` may get, and what happens
to the connections feeding it, is decided after each send attempt (flow.py).

Reading is paused for one or more reasons at a time (the ``PAUSED_*`` bits); lines
already read but not yet handled wait in ``inbuf`` until every reason is gone.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_server.fanout import RoomBatch
    from chat_server.model import Channel, User

log = logging.getLogger(__name__)

MAX_TAGS = 8191  # IRCv3: 4094 bytes of client tags + 4096 of server tags, plus "@" and " "
MAX_BODY = 512
MAX_LINE = MAX_TAGS + MAX_BODY
TOO_LONG = b"\x00too-long"  # stands in for a line the client sent over MAX_LINE
# An SSL socket says "try again" with its own errors (a record not yet complete, or a
# TLS 1.3 key update to read before writing): the same as would-block here.
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_RECV_BUF = bytearray(1024 * 1024)  # at least the largest read budget a config allows
_RECV_VIEW = memoryview(_RECV_BUF)

# Why a connection is not being read (bits of ``Connection.paused``).
PAUSED_FLOOD = 1  # out of flood-control tokens; a timer resumes it
PAUSED_CLUSTER = 2  # waiting for Redis to answer an earlier command of its own
PAUSED_BACKLOG = 4  # its own unsent output (replies, a paced history reply) is too big
PAUSED_ROOM = 8  # another member of one of its rooms cannot keep up (backpressure)
PAUSED_HISTORY = 16  # its command waits for the history worker (a query, a cold room)


class Connection:
    """The byte side of a client; the IRC side is its ``user``."""

    __slots__ = (
        "addr",
        "batch",
        "capture",
        "closing",
        "congested",
        "congested_since",
        "created",
        "discarding",
        "fast_head",
        "fd",
        "handshaking",
        "held_for",
        "inbuf",
        "last_active",
        "last_refill",
        "outbuf",
        "paced",
        "paused",
        "ping_sent",
        "sock",
        "tls",
        "tokens",
        "user",
        "writing",
    )

    def __init__(self, sock: socket.socket, addr: str) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.user: User | None = None
        self.closing: str | None = None
        self.writing = False
        self.congested = False  # backlog went over the soft limit (flow.py)
        self.congested_since = 0.0
        self.paused = 0  # PAUSED_* bits; reading is watched only while 0
        # Chunks of a long reply (history) moved into outbuf as it drains (flow.py).
        # A list, not a deque: an empty deque costs ~600 bytes on every idle client,
        # and a reply is at most a few dozen chunks.
        self.paced: list[bytes] = []
        self.discarding = False
        self.capture: list[bytes] | None = None
        self.batch: RoomBatch | None = None  # the open room batch it is in (fanout.py)
        # The head, room name and room of its last fast-path PRIVMSG (messaging.py).
        self.fast_head: tuple[bytes, str, Channel] | None = None
        # With history_sync: the sequence of its newest stored message; its output
        # waits until history has committed that far (server.py, _send).
        self.held_for = 0
        self.tls = False  # came in on the TLS port (sock is an ssl.SSLSocket)
        self.handshaking = False  # TLS handshake not finished: nothing read or sent yet
        now = time.monotonic()
        self.created = now
        self.last_active = now
        self.last_refill = now
        self.ping_sent = 0.0
        self.tokens = 0.0

    def write(self, data: bytes, dirty: list[Connection], soft: int) -> None:
        """Queue ``data``; the connection joins ``dirty`` when its buffer was empty, and
        again when it passes the soft limit, so the limits are checked after this round's
        send attempt (never here: what the kernel takes at once is not a backlog)."""
        if self.capture is not None:
            self.capture.append(data)
            return
        if self.closing:
            return
        outbuf = self.outbuf
        if not outbuf:
            dirty.append(self)
        outbuf += data
        if len(outbuf) > soft and not self.congested:
            dirty.append(self)

    def flush(self) -> bool:
        """Send what is queued in one call; True when everything went out."""
        outbuf = self.outbuf
        if not outbuf:
            return True
        try:
            sent = self.sock.send(outbuf)
        except _WOULD_BLOCK:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                log.debug("send to %s failed: %s", self.addr, exc)
            outbuf.clear()
            self.closing = self.closing or "Connection reset by peer"
            return True
        del outbuf[:sent]
        return not outbuf

    def read_lines(self, budget: int) -> list[bytes] | None:
        """Read at most ``budget`` bytes; return complete lines, or None when it closed.

        One read per loop round: what is left stays in the kernel and makes the socket
        readable again next round, so a burst is spread over rounds (and over the other
        clients' turns) instead of being swallowed at once.
        """
        try:
            # One shared receive buffer: recv(n) would allocate n bytes on every call.
            size = self.sock.recv_into(_RECV_BUF, budget)
        except _WOULD_BLOCK:
            return []
        except OSError:
            return None
        if not size:
            return None
        self.last_active = time.monotonic()
        data = _RECV_VIEW[:size].tobytes()
        inbuf = self.inbuf
        if b"\n" not in data:
            inbuf += data
            if len(inbuf) > MAX_LINE and b"\n" not in inbuf:  # (held lines are not one line)
                # An over-long line: report it once, then drop it up to its newline.
                inbuf.clear()
                if not self.discarding:
                    self.discarding = True
                    return [TOO_LONG]
            return []
        # Usually a read ends at a line end and nothing was left over: split it as is.
        joined = bool(inbuf)
        if joined:
            lines = (bytes(inbuf) + data).split(b"\n")
            inbuf.clear()
        else:
            lines = data.split(b"\n")
        rest = lines.pop()
        if self.discarding:
            self.discarding = False
            lines.pop(0)
        if joined or size > MAX_LINE:  # otherwise no line can be over the limit
            for i, line in enumerate(lines):
                if len(line) > MAX_LINE:
                    lines[i] = TOO_LONG
        if rest:
            if len(rest) > MAX_LINE:
                self.discarding = True
                lines.append(TOO_LONG)
            else:
                inbuf += rest
        return lines

    def hold(self, rest: list[bytes]) -> int:
        """Put lines read but not handled back in front of ``inbuf``; returns its size."""
        if rest:
            self.inbuf[:0] = b"\n".join(rest) + b"\n"
        return len(self.inbuf)

    def take_held(self) -> list[bytes]:
        """The complete lines waiting in ``inbuf`` (the partial last one stays)."""
        inbuf = self.inbuf
        if b"\n" not in inbuf:
            return []
        lines = bytes(inbuf).split(b"\n")
        self.inbuf = bytearray(lines.pop())
        return lines

    def refill(self, rate: float, burst: float) -> float:
        """Top up the flood-control token bucket; returns the tokens now available."""
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.last_refill) * rate)
        self.last_refill = now
        return self.tokens
