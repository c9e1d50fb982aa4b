"""Flow control against a real server: bursts reach healthy readers in full, only a
client that stops reading is cut, and long history replies are paced, never cut."""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess


def _config(tmp_path: Path, **settings: object) -> str:
    path = tmp_path / "flow.toml"
    lines = ["[server]"]
    for key, value in settings.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Readers:
    """Many registered clients read concurrently by one selector, counting PRIVMSGs and
    noticing any ``ERROR`` (a cut) the server sends them."""

    def __init__(self, clients: list[RawClient]) -> None:
        self.clients = clients
        self.counts = {c.nick: 0 for c in clients}
        self.errors: dict[str, str] = {}
        self.sel = selectors.DefaultSelector()
        for c in clients:
            c.sock.setblocking(False)
            self.sel.register(c.sock, selectors.EVENT_READ, c)

    def run_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            for key, _ in self.sel.select(0.2):
                client: RawClient = key.data
                try:
                    chunk = client.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self.errors[client.nick] = str(exc)
                    self.sel.unregister(client.sock)
                    continue
                if not chunk:
                    self.errors.setdefault(client.nick, "closed")
                    self.sel.unregister(client.sock)
                    continue
                data = client.buf + chunk
                *lines, client.buf = data.split(b"\n")
                for line in lines:
                    if b" PRIVMSG " in line:
                        self.counts[client.nick] += 1
                    elif line.startswith(b"ERROR"):
                        self.errors[client.nick] = line.decode(errors="replace")
                    elif line.startswith(b"PING"):
                        client.sock.sendall(b"PONG" + line[4:] + b"\n")

    def close(self) -> None:
        self.sel.close()


def _clients(srv: ServerProcess, prefix: str, n: int) -> list[RawClient]:
    out = []
    for i in range(n):
        c = RawClient(srv.host, srv.port, timeout=20)
        c.register(f"{prefix}{i}")
        out.append(c)
    return out


def test_a_burst_reaches_every_healthy_reader_in_full(server_factory) -> None:
    """60 readers, 5 senders writing 2,000 lines each in one go (no flood limit): before,
    every reader was cut with SendQ exceeded after about 1,000 lines."""
    srv = server_factory(flood_limit=False)
    readers = _clients(srv, "r", 60)
    senders = _clients(srv, "s", 5)
    for c in readers + senders:
        c.send("JOIN #burst")
        c.collect_until("366")
    watch = Readers(readers)
    try:
        for k, sender in enumerate(senders):
            burst = b"".join(
                b"PRIVMSG #burst :burst %d line %d %s\r\n" % (k, i, b"x" * 40) for i in range(2000)
            )
            sender.sock.sendall(burst)
        watch.run_until(lambda: all(n >= 10_000 for n in watch.counts.values()), timeout=120)
    finally:
        watch.close()
    assert watch.errors == {}
    assert set(watch.counts.values()) == {10_000}


def test_forty_members_bursting_together_within_flood_limits(server_factory) -> None:
    """Default flood limits: 40 members send their 30-line burst at the same moment;
    every member (all of them reading) gets all 1,200 lines and nobody is cut."""
    srv = server_factory()
    members = _clients(srv, "m", 40)
    for c in members:
        c.send("JOIN #crowd")
        c.collect_until("366")
    watch = Readers(members)
    try:
        payloads = [
            b"".join(b"PRIVMSG #crowd :%d-%d %s\r\n" % (k, i, b"y" * 480) for i in range(30))
            for k in range(len(members))
        ]
        for member, data in zip(members, payloads, strict=True):
            member.sock.sendall(data)
        # Each member sees the other 39 members' lines (no echo-message).
        watch.run_until(lambda: all(n >= 39 * 30 for n in watch.counts.values()), timeout=60)
    finally:
        watch.close()
    assert watch.errors == {}
    assert set(watch.counts.values()) == {39 * 30}


def test_a_reader_that_stops_is_cut_and_the_room_goes_on(server_factory, tmp_path) -> None:
    """A member that never reads passes the soft limit, holds the room back for at most
    sendq_soft_seconds, then is cut; the others then get everything."""
    config = _config(tmp_path, sendq_soft=65536, sendq_soft_seconds=1.0)
    srv = server_factory("--config", config, flood_limit=False)
    stuck = RawClient(srv.host, srv.port, rcvbuf=4096)
    stuck.register("stuck")
    stuck.join("#room")
    reader = RawClient(srv.host, srv.port, timeout=30)
    reader.register("reader")
    reader.join("#room")
    sender = RawClient(srv.host, srv.port, timeout=30)
    sender.register("sender")
    sender.join("#room")
    watch = Readers([reader])
    total = 40_000  # 9 MB: more than the kernel's buffers on both sides hold
    try:
        started = time.monotonic()
        # Written while the room may be held back: the kernel's buffers absorb the
        # rest, so send from the watch loop in slices.
        data = b"".join(b"PRIVMSG #room :%d %s\r\n" % (i, b"z" * 200) for i in range(total))
        sender.sock.setblocking(False)
        view = memoryview(data)

        def pump() -> bool:
            nonlocal view
            if view:
                try:
                    sent = sender.sock.send(view)
                    view = view[sent:]
                except BlockingIOError:
                    pass
            return watch.counts["reader"] >= total

        watch.run_until(pump, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        watch.close()
    assert watch.counts["reader"] == total
    assert watch.errors == {}
    assert stuck.closed(timeout=10)
    srv.wait_log("SendQ exceeded")
    assert elapsed < 30


def test_a_thousand_long_history_lines_reach_a_slow_reader(server_factory, tmp_path) -> None:
    """CHATHISTORY LATEST * 1000 over long lines is far over a small soft limit: it is
    paced out to the requester, who reads slowly, and arrives in full."""
    config = _config(tmp_path, sendq_soft=16384, sendq_soft_seconds=2.0)
    srv = server_factory("--config", config, flood_limit=False)
    writer = RawClient(srv.host, srv.port)
    writer.register("writer")
    writer.join("#log")
    text = "w" * 400
    for start in range(0, 1000, 100):
        writer.send("".join(f"PRIVMSG #log :{i} {text}\r\n" for i in range(start, start + 100)))
    writer.send("PING :stored")
    writer.expect("PONG", pattern="stored", timeout=20)
    caps = ["batch", "message-tags", "draft/chathistory"]  # no server-time: no join replay
    asker = RawClient(srv.host, srv.port, timeout=30, rcvbuf=8192)
    asker.register("asker", caps=caps)
    asker.join("#log")
    asker.send("CHATHISTORY LATEST #log * 1000")
    got = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = asker.expect(lambda m: m.command in ("PRIVMSG", "BATCH"), timeout=30)
        if msg.command == "PRIVMSG":
            got += 1
            if got % 100 == 0:
                time.sleep(0.05)  # a slow reader: the server must wait for it, not cut it
        elif msg.params[0].startswith("-") and got:
            break
    assert got == 1000
    asker.send("PING :alive")
    asker.expect("PONG", pattern="alive")
    assert not any("SendQ" in line for line in srv.log)


def test_flood_held_lines_keep_their_order_across_resumes(server_factory) -> None:
    """Default flood limits: 60 lines at once are handled 30 at first, then as tokens
    come back; later reads must never overtake the held lines."""
    srv = server_factory()
    sender = RawClient(srv.host, srv.port, timeout=30)
    sender.register("sender")
    sender.join("#order")
    reader = RawClient(srv.host, srv.port, timeout=30)
    reader.register("reader")
    reader.join("#order")
    for start in range(0, 60, 12):  # five writes: some arrive while earlier lines wait
        sender.sock.sendall(
            b"".join(b"PRIVMSG #order :n%d\r\n" % i for i in range(start, start + 12))
        )
    got = [reader.expect("PRIVMSG", timeout=30).params[-1] for _ in range(60)]
    assert got == [f"n{i}" for i in range(60)]
