"""The server core driven in-process, where a loop round and its timers are exact: what
every line costs, pause reasons that belong to a connection (not to its fd number),
connections freed at once, and labels that cannot break a read."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator

import pytest

from chat_server.config import ServerConfig
from chat_server.connection import PAUSED_CLUSTER, PAUSED_FLOOD, Connection
from chat_server.history import HistoryStore
from chat_server.model import User
from chat_server.server import Server


class Harness:
    """A server with socketpair clients; ``feed`` hands it one read's worth of lines."""

    def __init__(self, **settings: object) -> None:
        self.server = Server(ServerConfig(**settings), HistoryStore(None))  # type: ignore[arg-type]
        self.peers: list[socket.socket] = []

    def client(self, nick: str | None = None, caps: str = "") -> tuple[Connection, socket.socket]:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        conn = Connection(ours, "127.0.0.1")
        conn.tokens = self.server.config.flood_burst
        conn.user = User(conn, "127.0.0.1")
        self.server.conns[conn.fd] = conn
        self.peers.append(theirs)
        if nick:
            lines = [f"NICK {nick}".encode(), b"USER u 0 * :u"]
            if caps:
                lines = [f"CAP REQ :{caps}".encode(), *lines, b"CAP END"]
            self.feed(conn, lines)
            assert conn.user is not None and conn.user.registered
        return conn, theirs

    def feed(self, conn: Connection, lines: list[bytes]) -> None:
        self.server._process(conn, lines)
        self.server.flush_dirty()

    def run_timers(self) -> None:
        for _, _, timer in list(self.server.loop._timers):
            if not timer.cancelled:
                timer.callback()
        self.server.loop._timers.clear()
        self.server.flush_dirty()

    def close(self) -> None:
        self.server.history.close()
        for sock in self.peers:
            sock.close()
        for conn in list(self.server.conns.values()):
            conn.sock.close()


def received(peer: socket.socket) -> list[str]:
    data = b""
    try:
        while chunk := peer.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    return [line for line in data.decode(errors="replace").split("\r\n") if line]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(flood_burst=10, flood_rate=2.0)
    yield h
    h.close()


@pytest.mark.parametrize(
    "line",
    [b"   ", b"", b"\x01\x02garbage", b"NOSUCHCOMMAND x", b"PING :x", b"PONG :x", b"CAP LS"],
)
def test_every_line_costs_a_token(harness: Harness, line: bytes) -> None:
    """Blank, unparsable and unknown lines, PING, PONG and CAP used to be free: three
    clients sending blank lines held the core at 96 % and were never slowed."""
    conn, _ = harness.client("alice")
    harness.feed(conn, [line] * 50)
    assert conn.paused & PAUSED_FLOOD
    assert conn.tokens < 1


def test_a_late_resume_timer_cannot_unpause_a_reused_fd(harness: Harness) -> None:
    """A flood-held client leaves; a new client gets its fd number and is paused for
    another reason. The old resume timer must not touch the new connection."""
    old, old_peer = harness.client("flooder")
    harness.feed(old, [b"PING :x"] * 50)
    assert old.paused & PAUSED_FLOOD
    fd = old.fd
    harness.server.drop(old, "Connection closed")
    old_peer.close()
    new, _ = harness.client()
    # The kernel hands the lowest free number to the next socket, which is usually the
    # old one's; other threads of the test process may take it first, so make it so.
    del harness.server.conns[new.fd]
    new.fd = fd
    harness.server.conns[fd] = new
    harness.server.pause(new, PAUSED_CLUSTER)
    harness.run_timers()
    assert new.paused == PAUSED_CLUSTER


def test_a_closed_connection_is_freed_without_a_garbage_collection(harness: Harness) -> None:
    """Connection and User pointed at each other: every past client stayed in memory
    until a rare full collection (0.5-2.4 KB each)."""
    gc.collect()
    gc.disable()
    try:
        before = sum(isinstance(o, Connection) for o in gc.get_objects())
        for i in range(20):
            conn, peer = harness.client(f"c{i}")
            harness.feed(conn, [b"JOIN #room", b"PRIVMSG #room :hello"])
            harness.server.drop(conn, "Connection closed")
            harness.server.flush_dirty()
            harness.peers.remove(peer)
            peer.close()
        del conn
        after = sum(isinstance(o, Connection) for o in gc.get_objects())
    finally:
        gc.enable()
    assert after == before


def test_an_empty_label_does_not_cost_the_rest_of_the_read(harness: Harness) -> None:
    """``@label= PING x`` raised outside the handler guard and the later lines of the
    same read were dropped silently."""
    conn, peer = harness.client("alice", caps="labeled-response")
    received(peer)
    harness.feed(conn, [b"@label= PING :one", b"PING :two", b"@label=ok PING :three"])
    lines = received(peer)
    assert lines[0].startswith(":") and lines[0].endswith(" PONG distchat.local one"), lines
    assert lines[1].endswith(" two"), lines
    assert lines[2].startswith("@label=ok ") and lines[2].endswith(" three"), lines


def test_an_unknown_command_answers_with_its_label(harness: Harness) -> None:
    conn, peer = harness.client("alice", caps="labeled-response")
    received(peer)
    harness.feed(conn, [b"@label=q1 FOOBAR x"])
    (line,) = received(peer)
    assert line.startswith("@label=q1 ") and " 421 alice FOOBAR " in line


def test_a_labeled_join_is_one_batch_with_the_join_in_it(harness: Harness) -> None:
    conn, peer = harness.client("alice", caps="labeled-response batch")
    received(peer)
    harness.feed(conn, [b"@label=j1 JOIN #valid,invalid"])
    lines = received(peer)
    assert lines[0].startswith("@label=j1 ") and " BATCH +" in lines[0], lines
    ref = lines[0].split(" BATCH +", 1)[1].split()[0]
    assert lines[-1].endswith(f"BATCH -{ref}")
    inner = lines[1:-1]
    assert all(line.startswith(f"@batch={ref} ") for line in inner), lines
    assert any(" JOIN #valid" in line for line in inner)
    assert any(" 403 " in line or " 476 " in line for line in inner)  # the invalid name


@pytest.mark.parametrize("command", ["PRIVMSG", "NOTICE"])
def test_a_labeled_message_to_oneself_comes_back_twice_labeled_once(
    harness: Harness, command: str
) -> None:
    """With echo-message, a message to oneself arrives as the echo (the labeled
    response) and as the delivery to the recipient (no label)."""
    conn, peer = harness.client("alice", caps="labeled-response echo-message message-tags")
    received(peer)
    harness.feed(conn, [f"@label=m1 {command} alice :hi me".encode()])
    lines = received(peer)
    assert len(lines) == 2, lines
    assert all(line.endswith(f"{command} alice :hi me") for line in lines)
    assert sum("label=m1" in line for line in lines) == 1, lines


def test_client_caused_log_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """A client that makes a handler fail in a loop once wrote 4,630 tracebacks a
    second; now each kind of line is logged ten times a period, then counted."""
    import logging

    from chat_server.loglimit import LogLimiter

    logger = logging.getLogger("test.loglimit")
    limiter = LogLimiter(logger, burst=10, period=60.0)
    with caplog.at_level(logging.WARNING, logger="test.loglimit"):
        for i in range(1000):
            limiter.warning("handler", "failure %d", i)
        limiter.warning("other", "a different kind still gets through")
    texts = [r.getMessage() for r in caplog.records]
    assert texts[:10] == [f"failure {i}" for i in range(10)]
    assert texts[10:] == ["a different kind still gets through"]
    # A new period says how many were left out.
    window = limiter._windows["handler"]
    window.started -= 61
    with caplog.at_level(logging.WARNING, logger="test.loglimit"):
        limiter.warning("handler", "failure again")
    assert "990 more 'handler' log lines were left out" in caplog.records[-2].getMessage()
    assert caplog.records[-1].getMessage() == "failure again"
