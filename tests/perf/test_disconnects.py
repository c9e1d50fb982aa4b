"""chat-perf counts clients the server cuts after they joined, and what they missed.

The server here is a tiny relay written for the test, so the cuts are exact and do not
depend on how chat-server's flow control behaves today: it relays room messages and,
like a server whose send queue overflowed, closes the first ``cut`` receivers with
``ERROR :Closing link: ADDR (SendQ exceeded)`` after ``after`` deliveries each.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_server.process import LOOPBACK

CLIENTS = 8
CUT = 3
AFTER = 20


class CuttingRelay:
    """Just enough IRC for chat-perf (CAP, NICK/USER, JOIN, PRIVMSG, QUIT), one thread
    per connection; every send goes out under one lock."""

    def __init__(self, cut: int, after: int) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.cut_left = cut
        self.after = after
        self.lock = threading.Lock()
        self.rooms: dict[str, dict[socket.socket, str]] = {}
        self.received: dict[socket.socket, int] = {}
        self.senders: set[socket.socket] = set()
        self.threads: list[threading.Thread] = []

    def start(self) -> CuttingRelay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self.listener.close()
        for t in self.threads:
            t.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _send(self, conn: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):  # a receiver cut a moment ago
            conn.sendall(data)

    def _serve(self, conn: socket.socket) -> None:
        nick = ""
        with conn, conn.makefile("rb") as lines:
            for raw in lines:
                words = raw.decode().rstrip("\r\n").split(" ")
                command = words[0].upper()
                if command == "CAP" and words[1:2] == ["LS"]:
                    self._send(conn, b":relay CAP * LS :\r\n")
                elif command == "NICK":
                    nick = words[1]
                elif command == "USER":
                    self._send(conn, f":relay 001 {nick} :welcome\r\n".encode())
                elif command == "JOIN":
                    room = words[1].lower()
                    with self.lock:
                        self.rooms.setdefault(room, {})[conn] = nick
                    reply = f":{nick}!u@h JOIN {room}\r\n:relay 366 {nick} {room} :End\r\n"
                    self._send(conn, reply.encode())
                elif command == "PRIVMSG":
                    self._relay(conn, nick, words[1].lower(), raw)
                elif command == "QUIT":
                    break
            # Out of the rooms before the socket closes: a relay meanwhile must never
            # write to (or shut down) a closed socket.
            with self.lock:
                for members in self.rooms.values():
                    members.pop(conn, None)

    def _relay(self, sender: socket.socket, nick: str, room: str, raw: bytes) -> None:
        line = f":{nick}!u@h ".encode() + raw
        with self.lock:
            self.senders.add(sender)
            for member in list(self.rooms.get(room, {})):
                if member is sender:
                    continue
                self._send(member, line)
                n = self.received[member] = self.received.get(member, 0) + 1
                if n == self.after and self.cut_left and member not in self.senders:
                    self.cut_left -= 1
                    host, port = member.getpeername()
                    addr = f"{host}:{port}"
                    self._send(member, f"ERROR :Closing link: {addr} (SendQ exceeded)\r\n".encode())
                    with contextlib.suppress(OSError):  # it may be closing on its own
                        member.shutdown(socket.SHUT_RDWR)
                    for members in self.rooms.values():
                        members.pop(member, None)


@pytest.fixture
def relay() -> Iterator[CuttingRelay]:
    r = CuttingRelay(CUT, AFTER).start()
    yield r
    r.close()


def test_cut_receivers_are_disconnects_and_their_misses_are_lost(
    relay: CuttingRelay, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "perf", "run", "--target", f"{LOOPBACK}:{relay.port}",
         "--clients", str(CLIENTS), "--rooms", "1", "--senders", "1", "--rate", "100",
         "--duration", "1.5", "--workers", "1", "--drain", "1", "--out", str(out),
         "--no-progress", "--fail-if", "disconnects>0"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "threshold violated: disconnects>0" in proc.stderr
    s = json.loads((out / "summary.json").read_text())
    clients = s["clients"]
    assert clients["registered"] == CLIENTS and clients["joined"] == CLIENTS
    assert clients["disconnected"] == CUT and clients["failed"] == CUT
    # One reason for all three, not one per client address.
    assert clients["disconnect_reasons"] == {
        "ERROR from server: Closing link: <addr> (SendQ exceeded)": CUT
    }
    # The cut receivers still count: each message was owed to all 7 receivers.
    acc = s["accounting"]
    sent = s["throughput"]["sent"]
    assert sent > AFTER and acc["receivers_per_message"] == CLIENTS - 1
    assert acc["balanced"] and acc["expected"] == sent * (CLIENTS - 1)
    assert acc["lost"] == CUT * (sent - AFTER)
    assert f"disconnected {CUT}/{CLIENTS} clients" in proc.stdout
    assert any("disconnected after joining" in w for w in s["warnings"])
    assert f"| clients disconnected | {CUT} / {CLIENTS} |" in (out / "report.md").read_text()
