"""One headless IRC client on a non-blocking socket: TLS handshake (with ``--tls``),
registration, joining, control lines and sending.

Registration and control lines go through ``chat_protocol.Message`` (rare, so clarity
wins). Once joined, a client's bytes are read and measured by the worker's shared
``perf.receive.ReceivePath`` instead, because receivers see millions of lines a second;
lines that path does not recognise as payloads come back through ``on_control_line``.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from chat_protocol import Message, MessageError
from perf import clock
from perf.payload import line_prefix
from perf.scenario import ClientPlan
from perf.tls import WOULD_BLOCK, read_records

if TYPE_CHECKING:
    from perf.worker import Worker

CONNECTING, HANDSHAKING, REGISTERING, JOINING, READY, CLOSED = range(6)
RECV_SIZE = 262144
# One receive buffer for the worker's registration-time reads (a worker is one thread).
# recv(RECV_SIZE) would allocate 256 KiB per call, past glibc's mmap threshold until it
# adapts: mmap, a page fault and munmap per read. A 1,000-client storm driven by
# `python -m perf` (as benchmarks.run starts it) took 0.26-0.31 s instead of 0.20-0.25:
# that worker imports less, so its heap had not grown past the threshold yet.
_RECV_BUF = bytearray(RECV_SIZE)
_RECV_VIEW = memoryview(_RECV_BUF)
WANTED_CAPS = ("echo-message",)
# Numerics that mean a JOIN failed; the client stays connected but is not a member.
JOIN_FAILURES = {"403", "405", "471", "473", "474", "475", "476", "477"}


class Client:
    """A simulated user. Also a sender when its plan says so (see ``perf.pacing``)."""

    def __init__(self, plan: ClientPlan, worker: Worker) -> None:
        self.plan = plan
        self.index = plan.index
        self.nick = plan.nick
        self.worker = worker
        self.sock: socket.socket | None = None
        self.host = ""
        self.state = CONNECTING
        self.rbuf = b""
        self.wbuf = bytearray()
        self.writing = False
        self.offered: set[str] = set()
        self.caps: set[str] = set()
        self.slot = 0  # position in the worker's client list (set by ReceivePath)
        self.joined: list[str] = []
        self.pending_joins = 0
        self.t_start = 0
        self.t_tcp = 0
        self.t_tls = 0  # TLS handshake done (0: plaintext, or not done)
        self.t_welcome = 0
        self.t_joined = 0
        self.failure: str | None = None
        # Sending (used only by senders).
        self.room = plan.rooms[0].encode() if plan.rooms else b""
        self.seq = 0
        self.in_flight = 0
        self.echo_ack = False
        self.cap_ended = False  # CAP END sent
        self.prefix = b""  # this sender's line up to the sequence number

    # -- connection setup -----------------------------------------------------------

    def connect(self, host: str, port: int, t_start: int) -> None:
        self.t_start = t_start
        self.host = host
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        err = sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            self.fail(f"connect: {errno.errorcode.get(err, err)}")
            return
        # On loopback the handshake is usually over by now: check once, and only wait
        # for writability (a second trip through the event loop) when it is not. Either
        # way the TCP time is read from the clock once the handshake is known to be done.
        if _connected(sock):
            self.worker.watch(self, write=False, new=True)
            self._tcp_done(clock.now_us())
            return
        self.worker.watch(self, write=True, new=True)

    def on_connected(self) -> None:
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(f"connect: {errno.errorcode.get(err, err)}")
            return
        self.worker.watch(self, write=False)
        self._tcp_done(clock.now_us())

    def _tcp_done(self, t_tcp: int) -> None:
        self.t_tcp = t_tcp
        context = self.worker.tls_context
        if context is None:
            self._start_registration()
            return
        # Wrapped without a handshake, then stepped on readiness (see _handshake). The
        # wrapped socket replaces the plain one in the selector (wrapping detaches it).
        self.worker.unwatch(self)
        self.sock = context.wrap_socket(
            self.sock,  # type: ignore[arg-type]
            server_hostname=self.host,
            do_handshake_on_connect=False,
        )
        self.state = HANDSHAKING
        self.worker.watch(self, write=False, new=True)
        self._handshake()

    def _handshake(self) -> None:
        """One step of the TLS handshake; the loop calls again on readiness."""
        try:
            self.sock.do_handshake()  # type: ignore[union-attr]
        except ssl.SSLWantReadError:
            self.worker.watch(self, write=False)
            return
        except ssl.SSLWantWriteError:
            self.worker.watch(self, write=True)
            return
        except OSError as exc:  # SSLError, certificate refused, connection reset
            reason = getattr(exc, "reason", None) or exc.strerror or exc
            self.fail(f"tls: {reason}")
            return
        self.t_tls = clock.now_us()
        self.worker.watch(self, write=False)
        self._start_registration()

    def _start_registration(self) -> None:
        self.state = REGISTERING
        nick = self.nick
        self.send(f"CAP LS 302\r\nNICK {nick}\r\nUSER {nick} 0 * :chat-perf\r\n".encode())

    def fail(self, reason: str) -> None:
        if self.state == CLOSED:
            return
        self.failure = reason
        self.state = CLOSED
        self.worker.on_client_closed(self, reason)
        if self.sock is not None:
            self.worker.unwatch(self)
            self.sock.close()

    # -- reading --------------------------------------------------------------------

    def on_readable(self) -> None:
        """Registration-time reads; joined clients are read by the worker's ReceivePath.

        The receive time is read after ``recv_into`` returned: lines cannot be stamped
        before they were read (payloads after the last 366 are measured with it)."""
        if self.state == HANDSHAKING:
            self._handshake()
            return
        sock = self.sock
        try:
            size = sock.recv_into(_RECV_VIEW)  # type: ignore[union-attr]
        except WOULD_BLOCK:
            return
        except OSError as exc:
            self.fail(f"recv: {exc.strerror or exc}")
            return
        if not size:
            self.fail("closed by server")
            return
        if isinstance(sock, ssl.SSLSocket):
            more, again = read_records(sock, _RECV_VIEW[size:], RECV_SIZE - size)
            size += more
            if again:
                self.worker.read_again(self)
        t_read = clock.now_us()
        data = _RECV_VIEW[:size].tobytes()
        buf = self.rbuf + data if self.rbuf else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            self.rbuf = buf
            return
        if cut < len(buf):
            self.rbuf = buf[cut:]
            buf = buf[:cut]
        else:
            self.rbuf = b""
        self._control_lines(buf, t_read)

    def _control_lines(self, buf: bytes, now_us: int) -> None:
        """Handle the lines of ``buf`` whose command matters (see ``_HANDLED``).

        One regex pass finds them: a welcome burst is ~20 lines of which one or two
        count, and with 1,000 clients registering at once a Python step per line made
        the generator, not the server, the slowest part of a storm.
        """
        storm = self.worker.storm
        for m in _CONTROL_LINE.finditer(buf):
            self.on_control_line(m.group(), now_us)
            if self.state == CLOSED:
                return
            if self.state == READY and not storm:
                # Payloads can follow the last 366 in the same chunk.
                self.worker.rx.add(self, buf[m.end() :], now_us)
                return

    def on_control_line(self, raw: bytes, now_us: int) -> None:
        """One line that is not a measured payload: dispatch it to its handler."""
        if command_of(raw) not in _HANDLED:
            return  # most of a welcome burst (LUSERS, MOTD, ISUPPORT): not worth parsing
        try:
            msg = Message.parse(raw.rstrip(b"\r\n"))
        except MessageError:
            return
        handler = _HANDLERS.get(msg.command)
        if handler is not None:
            handler(self, msg, now_us)

    def _on_ping(self, msg: Message, now_us: int) -> None:
        self.send(b"PONG :" + msg.param(0).encode() + b"\r\n")

    def _on_error(self, msg: Message, now_us: int) -> None:
        self.fail(f"ERROR from server: {msg.param(0)}")

    def _on_cap(self, msg: Message, now_us: int) -> None:
        sub = msg.param(1).upper()
        if sub == "LS":
            more = len(msg.params) > 3 and msg.params[2] == "*"
            for item in msg.params[-1].split():
                self.offered.add(item.split("=", 1)[0])
            if more:
                return
            want = [c for c in WANTED_CAPS if c in self.offered]
            # END right behind REQ: the server answers the REQ first, so the ACK still
            # comes before 001, and registration takes two round trips, not three.
            request = f"CAP REQ :{' '.join(want)}\r\n".encode() if want else b""
            self.send(request + b"CAP END\r\n")
            self.cap_ended = True
        elif sub == "ACK":
            self.caps.update(msg.params[-1].split())
            self.echo_ack = "echo-message" in self.caps
            if not self.cap_ended:
                self.send(b"CAP END\r\n")
                self.cap_ended = True
        elif sub == "NAK" and not self.cap_ended:
            self.send(b"CAP END\r\n")
            self.cap_ended = True

    def _on_welcome(self, msg: Message, now_us: int) -> None:
        if self.t_welcome:
            return
        self.t_welcome = now_us
        self.nick = msg.param(0, self.nick)
        self.worker.on_registered(self, now_us)
        rooms = self.plan.rooms if not self.worker.storm else []
        if rooms:
            self.state = JOINING
            self.pending_joins = len(rooms)
            self.send(f"JOIN {','.join(rooms)}\r\n".encode())
        else:
            self._ready(now_us)

    def _on_nick_in_use(self, msg: Message, now_us: int) -> None:
        if not self.t_welcome:
            self.nick = (self.nick + "_")[-9:] if len(self.nick) >= 9 else self.nick + "_"
            self.send(f"NICK {self.nick}\r\n".encode())

    def _on_end_of_names(self, msg: Message, now_us: int) -> None:
        if self.state != JOINING:
            return
        room = msg.param(1).lower()
        if room in self.plan.rooms and room not in self.joined:
            self.joined.append(room)
        self._join_settled(now_us)

    def _on_join_failed(self, msg: Message, now_us: int) -> None:
        if self.state == JOINING:
            self.worker.note_error(f"join refused: {msg.command} {msg.params[-1]}")
            self._join_settled(now_us)

    def _join_settled(self, now_us: int) -> None:
        self.pending_joins -= 1
        if self.pending_joins <= 0:
            self._ready(now_us)

    def _ready(self, now_us: int) -> None:
        self.state = READY
        self.t_joined = now_us
        self.worker.on_ready(self)

    # -- writing --------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        if self.writing:
            self.wbuf += data
            return
        try:
            n = self.sock.send(data)  # type: ignore[union-attr]
        except WOULD_BLOCK:
            # An SSL write that would block is retried with the same bytes at the
            # front of wbuf (OpenSSL requires that; it may have sent some records).
            n = 0
        except OSError as exc:
            self.fail(f"send: {exc.strerror or exc}")
            return
        if n < len(data):
            self.wbuf += data[n:]
            self.writing = True
            self.worker.watch(self, write=True)

    def on_writable(self) -> None:
        if self.state == CONNECTING:
            self.on_connected()
            return
        if self.state == HANDSHAKING:
            self._handshake()
            return
        try:
            n = self.sock.send(self.wbuf)  # type: ignore[union-attr]
        except WOULD_BLOCK:
            return
        except OSError as exc:
            self.fail(f"send: {exc.strerror or exc}")
            return
        del self.wbuf[:n]
        if not self.wbuf:
            self.writing = False
            self.worker.watch(self, write=False)

    def send_payloads(self, scheds: list[int], size: int) -> None:
        """Send one message per scheduled time, in one write."""
        prefix = self.prefix
        if not prefix:
            prefix = self.prefix = line_prefix(self.room, self.index, size)
        seq = self.seq
        self.seq = seq + len(scheds)
        self.in_flight += len(scheds)
        self.send(
            b"".join([b"%s%015d.%015d\r\n" % (prefix, seq + i, t) for i, t in enumerate(scheds, 1)])
        )

    def quit(self) -> None:
        if self.state != CLOSED and self.sock is not None:
            self.send(b"QUIT :chat-perf done\r\n")


_HANDLERS: dict[str, Callable[[Client, Message, int], None]] = {
    "PING": Client._on_ping,
    "ERROR": Client._on_error,
    "CAP": Client._on_cap,
    "001": Client._on_welcome,
    "433": Client._on_nick_in_use,
    "366": Client._on_end_of_names,
    **dict.fromkeys(JOIN_FAILURES, Client._on_join_failed),
}
_HANDLED = frozenset(name.encode() for name in _HANDLERS)
# A whole line (tags and source skipped) whose command is one of _HANDLED.
_CONTROL_LINE = re.compile(
    rb"^(?:@[^ \n]* +)?(?::[^ \n]* +)?(?:"
    + b"|".join(sorted(_HANDLED, key=len, reverse=True))
    + rb")(?=[ \r\n]|$)[^\n]*\n?",
    re.MULTILINE | re.IGNORECASE,
)


def _connected(sock: socket.socket) -> bool:
    """Whether a non-blocking connect has completed (the peer address is known)."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def command_of(raw: bytes) -> bytes:
    """The command (or numeric) of a raw line, skipping tags and source; no full parse."""
    start = 0
    if raw[:1] == b"@":
        start = raw.find(b" ") + 1
        while raw[start : start + 1] == b" ":
            start += 1
    if raw[start : start + 1] == b":":
        start = raw.find(b" ", start) + 1
        if start == 0:
            return b""
        while raw[start : start + 1] == b" ":
            start += 1
    end = raw.find(b" ", start)
    word = raw[start:] if end < 0 else raw[start:end]
    return word.rstrip(b"\r\n").upper()
