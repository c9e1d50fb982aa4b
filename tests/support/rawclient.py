"""A blocking raw-socket IRC client for tests: send lines, expect replies with timeouts."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Callable

from chat_protocol import Message

Matcher = Callable[[Message], bool]


class RawClient:
    """Speaks IRC over a plain socket; every wait has a timeout, nothing sleeps blindly."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = 5.0,
        rcvbuf: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        sock: socket.socket
        if rcvbuf is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        else:  # a small receive window must be set before connecting to take effect
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
        # With a context: TLS, the certificate checked for the name "localhost".
        self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.timeout = timeout
        self.buf = b""
        self.received: list[Message] = []
        self.nick = ""

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        if not data.endswith(b"\n"):
            data += b"\r\n"
        self.sock.sendall(data)

    def _read_line(self, deadline: float) -> Message | None:
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        msg = Message.parse(line)
        if msg.command == "PING":
            self.send(f"PONG :{msg.param(0)}")
        self.received.append(msg)
        return msg

    def expect(
        self, command: str | Matcher, *, pattern: str | None = None, timeout: float | None = None
    ) -> Message:
        """Read until a message matches ``command`` (and ``pattern`` on its text form)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen: list[str] = []
        while True:
            msg = self._read_line(deadline)
            if msg is None:
                raise TimeoutError(f"no {command!r} {pattern or ''} in time; saw: {seen[-20:]}")
            seen.append(str(msg))
            if callable(command):
                if command(msg):
                    return msg
            elif msg.command == command and (pattern is None or re.search(pattern, str(msg))):
                return msg

    def collect_until(self, command: str, timeout: float | None = None) -> list[Message]:
        """All messages up to and including the first with ``command``."""
        out: list[Message] = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read_line(deadline)
            if msg is None:
                raise TimeoutError(f"no {command} in time; got {[str(m) for m in out][-20:]}")
            out.append(msg)
            if msg.command == command:
                return out

    def register(
        self, nick: str, caps: list[str] | None = None, password: str | None = None
    ) -> Message:
        """CAP negotiation (when ``caps``), PASS, NICK, USER; returns the 001."""
        if caps:
            self.send("CAP LS 302")
            self.send("CAP REQ :" + " ".join(caps))
        if password:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} real")
        if caps:
            self.expect("CAP", pattern=" ACK ")
            self.send("CAP END")
        self.nick = nick
        welcome = self.expect("001")
        self.expect(lambda m: m.command in ("376", "422"))
        return welcome

    def answer(self, line: str, token: str = "barrier") -> list[Message]:
        """Everything the server sends in reply to ``line``, up to a PING barrier (a
        command that waits for the history worker holds the PING behind it)."""
        self.send(line)
        self.send(f"PING :{token}")
        got = self.collect_until("PONG")
        assert got[-1].params[-1] == token
        return got[:-1]

    def join(self, channel: str) -> list[Message]:
        self.send(f"JOIN {channel}")
        return self.collect_until("366")

    def closed(self, timeout: float | None = None) -> bool:
        """True once the server has closed the connection (reads until EOF)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while time.monotonic() < deadline:
                if self._read_line(deadline) is None:
                    return False
        except (ConnectionError, OSError):
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
