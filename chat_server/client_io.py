"""Client sockets: admitting them, TLS handshakes, readiness, and every send.

``ClientIO.on_event`` is where a readable client enters the hot path (it hands the
lines to ``Server._process``); ``flush_dirty``, the loop's after-I/O hook, makes one
``send`` per connection whose buffer grew, and ``send`` judges what is left (flow.py).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from chat_server.connection import PAUSED_BACKLOG, PAUSED_ROOM, Connection
from chat_server.flow import chunk_lines
from chat_server.model import User
from chat_server.tls import DONE as TLS_DONE
from chat_server.tls import WANT_WRITE as TLS_WANT_WRITE
from chat_server.tls import advance as tls_advance
from chat_server.tls import buffered as tls_buffered
from chat_server.tls import describe_failure

if TYPE_CHECKING:
    from chat_server.server import Server

READ = 1  # selectors.EVENT_READ
WRITE = 2  # selectors.EVENT_WRITE


class ClientIO:
    """The server's side of its client sockets; the server owns one.

    Its own state: the senders whose output waits for a history commit (``held``).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.held: set[Connection] = set()  # senders whose output waits for a commit

    # -- accepting and the TLS handshake -------------------------------------------------

    def admit(self, sock: socket.socket, host: str, tls: bool = False) -> None:
        """A client the listener accepted: its connection, not yet registered (a TLS
        one not even through its handshake, which the loop drives: tls.py)."""
        server = self.server
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            assert server.tls_context is not None
            try:
                sock = server.tls_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except OSError as exc:
                server.client_log.info(
                    "tls", "TLS from %s refused: %s", host, describe_failure(exc)
                )
                sock.close()
                server.listener.released(host)
                return
        conn = Connection(sock, host)
        conn.tls = conn.handshaking = tls
        conn.tokens = server.config.flood_burst
        conn.user = User(conn, host)
        server.conns[conn.fd] = conn
        server.unknown_count += 1
        server.loop.add_reader(sock, partial(self.on_event, conn))

    def on_event(self, conn: Connection, mask: int) -> None:
        if conn.handshaking:
            self.handshake(conn)
            return
        if mask & WRITE:
            self.send(conn)
        server = self.server
        if mask & READ and server.conns.get(conn.fd) is conn and not conn.paused:
            if server.flow.congested and server.flow.room_is_congested(conn):
                server.pause(conn, PAUSED_ROOM)  # its messages would pile up on a slow reader
                return
            lines = conn.read_lines(server.config.read_budget)
            if lines is None:
                server.drop(conn, "Connection closed")
            elif lines:
                server._process(conn, lines)
            if conn.tls:
                self.read_buffered(conn)

    def handshake(self, conn: Connection) -> None:
        """One step of a TLS handshake (tls.py); a failed one closes the connection."""
        server = self.server
        if server.conns.get(conn.fd) is not conn:
            return
        try:
            state = tls_advance(conn.sock)  # type: ignore[arg-type]
        except OSError as exc:
            server.client_log.info(
                "tls", "TLS handshake with %s failed: %s", conn.addr, describe_failure(exc)
            )
            server.drop(conn, "TLS handshake failed")
            return
        if state == TLS_DONE:
            conn.handshaking = False
            conn.last_active = time.monotonic()
            self.watch(conn)  # and reads what came with the handshake (read_buffered)
        else:
            events = READ | (WRITE if state == TLS_WANT_WRITE else 0)
            server.loop.set_events(conn.sock, events, partial(self.on_event, conn))

    def read_buffered(self, conn: Connection) -> None:
        """Read a TLS connection again next round when decrypted bytes wait in its SSL
        object: they no longer make the socket readable (see tls.py)."""
        server = self.server
        if not conn.paused and server.conns.get(conn.fd) is conn and tls_buffered(conn.sock):
            server.loop.call_later(0, partial(self.on_event, conn, READ))

    def watch(self, conn: Connection) -> None:
        """Watch for reads unless the client is paused, for writes while bytes wait."""
        server = self.server
        if server.conns.get(conn.fd) is not conn:
            return  # closed: its fd may already belong to someone else
        events = (0 if conn.paused else READ) | (WRITE if conn.writing else 0)
        server.loop.set_events(conn.sock, events, partial(self.on_event, conn))
        if conn.tls:
            self.read_buffered(conn)  # resumed: bytes may wait where epoll cannot see

    # -- sending -------------------------------------------------------------------------

    def flush_dirty(self) -> None:
        """Send every buffer that grew this round, in one call each."""
        dirty = self.server.delivery.take_dirty()
        if not dirty:
            return
        conns = self.server.conns
        now = time.monotonic()
        for conn in dirty:
            if conns.get(conn.fd) is conn:
                self.send(conn, now)

    def send(self, conn: Connection, now: float | None = None) -> None:
        """One send attempt, then the flow-control verdict on what is left (flow.py)."""
        server = self.server
        if conn.held_for:
            if conn.held_for > server.history.committed_seq:
                self.hold(conn)
                return
            conn.held_for = 0
        flow = server.flow
        for _ in range(4):  # again only when a paced reply refilled an emptied buffer
            if conn.closing:
                server.drop(conn, conn.closing)
                return
            sent_all = conn.flush()
            reason = conn.closing or flow.check(conn, now)
            if reason:
                server.drop(conn, reason)
                return
            if not (sent_all and conn.outbuf):
                break
        writing = bool(conn.outbuf)
        if writing != conn.writing:
            conn.writing = writing
            self.watch(conn)
        if conn.paused & PAUSED_BACKLOG and not conn.paced and len(conn.outbuf) <= flow.limits.low:
            server.resume(conn, PAUSED_BACKLOG)

    def hold(self, conn: Connection) -> None:
        """history_sync: keep a sender's output (its echo, its labeled reply) until its
        messages are committed, so an echo means the message is on disk. The hold is
        short (one commit); the backlog limits still apply meanwhile."""
        server = self.server
        if conn.writing:
            conn.writing = False
            self.watch(conn)  # nothing may go out: do not wake for writability
        reason = conn.closing or server.flow.check(conn, None)
        if reason:
            server.drop(conn, reason)
            return
        if conn not in self.held:
            self.held.add(conn)
            server.history.when_committed(conn.held_for, partial(self.release, conn))

    def release(self, conn: Connection) -> None:
        self.held.discard(conn)
        if self.server.conns.get(conn.fd) is conn:
            self.send(conn)  # holds it again if it stored newer messages meanwhile

    def send_paced(self, conn: Connection, lines: Iterable[bytes]) -> None:
        """Send a long reply as the client drains it; its further lines wait meanwhile."""
        if conn.capture is not None:
            conn.capture.extend(lines)
            return
        if conn.closing:
            return
        server = self.server
        server.delivery.write_pending()  # room messages produced before the reply go first
        server.flow.queue_paced(conn, chunk_lines(lines))
        server.delivery.dirty.append(conn)  # sent, and the rest pumped, after this round
        if conn.paced:
            server.pause(conn, PAUSED_BACKLOG)

    # -- closing -------------------------------------------------------------------------

    def close_socket(self, conn: Connection) -> None:
        """Forget a connection and close its socket (the last step of a drop)."""
        server = self.server
        server.conns.pop(conn.fd, None)
        server.listener.released(conn.addr)
        server.flow.relieve(conn)
        conn.paced.clear()
        conn.fast_head = None
        conn.batch = None
        server.loop.remove(conn.sock)
        if conn.tls and not conn.handshaking:
            # Say goodbye the TLS way (close_notify), without waiting for the answer.
            with contextlib.suppress(OSError, ValueError):
                conn.sock.unwrap()  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            conn.sock.close()
        conn.closing = conn.closing or "closed"
        # Break the Connection <-> User cycle so that both are freed at once by
        # reference counting, not at a rare full collection (see cli.tune_gc).
        user = conn.user
        if user is not None:
            user.conn = None
        conn.user = None
