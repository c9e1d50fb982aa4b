"""Server CPU per message on the hot path, in one process, without a load generator.

A real ``Server`` gets its clients through socketpairs; lines are fed straight to
``Server._process`` and ``flush_dirty`` sends them, so only the server's own CPU time
(``time.process_time`` around those calls) is counted. The peers are drained outside
the timed part. Use it to compare before/after a change on the same machine:

    taskset -c 1 python -m benchmarks.hotpath fanout      # 100 members, 5 senders
    taskset -c 1 python -m benchmarks.hotpath rooms       # 20 rooms x 10, all sending
    taskset -c 1 python -m benchmarks.hotpath register    # 1,000 registrations
    taskset -c 1 python -m benchmarks.hotpath rooms --history-db /tmp/h.db

Live numbers (sockets, the kernel, the generator) come from ``chat-perf``; this is for
the Python work per message, which is what profiling the server points at.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from chat_server.cli import tune_gc
from chat_server.config import ServerConfig
from chat_server.connection import Connection
from chat_server.history import HistoryStore
from chat_server.model import User
from chat_server.server import Server


class Harness:
    """A server with ``n`` socketpair clients; the far ends are drained, not timed."""

    def __init__(self, history_db: Path | None) -> None:
        config = ServerConfig(flood_limit=False, sendq_max=1 << 30)
        self.server = Server(config, HistoryStore(history_db))
        self.server.history.start()  # served by poll() below: there is no event loop
        self.conns: list[Connection] = []
        self.peers: list[socket.socket] = []
        self.cpu = 0.0

    def add_client(self) -> Connection:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        conn = Connection(ours, "127.0.0.1")
        conn.user = User(conn, "127.0.0.1")
        self.server.conns[conn.fd] = conn
        self.conns.append(conn)
        self.peers.append(theirs)
        return conn

    def feed(self, batches: list[tuple[Connection, list[bytes]]], timed: bool = True) -> None:
        """One loop round: every batch handled, then one flush; peers drained after."""
        started = time.process_time()
        for conn, lines in batches:
            self.server._process(conn, lines)
        self.server.history.send_pending()  # the loop's first after-I/O hook
        self.server.flush_dirty()
        if timed:
            self.cpu += time.process_time() - started
        self.server.history.poll()  # the worker's confirmations, as the loop reads them
        self.drain()

    def drain(self) -> None:
        for peer in self.peers:
            try:
                while peer.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        self.server.history.close()
        for sock in self.peers:
            sock.close()


def join_all(h: Harness, clients: int, rooms: int, caps: bytes = b"") -> None:
    for i in range(clients):
        conn = h.add_client()
        lines = [b"NICK u%d" % i, b"USER u 0 * :u", b"JOIN #r%d" % (i % rooms)]
        if caps:
            lines.insert(0, b"CAP REQ :" + caps)
            lines.insert(3, b"CAP END")
        h.feed([(conn, lines)], timed=False)


def fanout(h: Harness, per_round: int, rounds: int) -> str:
    join_all(h, 100, 1)
    line = b"PRIVMSG #r0 :" + b"x" * 60
    for _ in range(rounds):
        h.feed([(conn, [line] * per_round) for conn in h.conns[:5]])
    deliveries = rounds * 5 * per_round * 99
    per = h.cpu / deliveries * 1e9
    return f"fanout: {per:.0f} ns server CPU per delivery ({per_round} msgs/sender/round)"


def rooms(h: Harness, per_round: int, rounds: int) -> str:
    join_all(h, 200, 20, caps=b"echo-message")
    batches = [
        (c, [b"PRIVMSG #r%d :%s" % (i % 20, b"x" * 60)] * per_round) for i, c in enumerate(h.conns)
    ]
    for _ in range(rounds):
        h.feed(batches)
    messages = rounds * 200 * per_round
    per = h.cpu / messages * 1e6
    return f"rooms: {per:.1f} us server CPU per message ({per_round} msgs/sender/round)"


def register(h: Harness, clients: int) -> str:
    for i in range(clients):
        conn = h.add_client()
        lines = [
            b"CAP LS 302",
            b"NICK u%d" % i,
            b"USER u 0 * :u",
            b"CAP REQ :echo-message",
            b"CAP END",
        ]
        h.feed([(conn, lines)])
    return f"register: {h.cpu / clients * 1e6:.0f} us server CPU per registration"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", choices=["fanout", "rooms", "register"])
    p.add_argument("--per-round", type=int, default=4, help="messages per sender per round")
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--history-db", type=Path, help="SQLite file (default: memory only)")
    args = p.parse_args()
    h = Harness(args.history_db)
    tune_gc()  # as the daemon runs
    try:
        if args.case == "fanout":
            print(fanout(h, args.per_round, args.rounds))
        elif args.case == "rooms":
            print(rooms(h, args.per_round, args.rounds))
        else:
            print(register(h, 1000))
    finally:
        h.close()


if __name__ == "__main__":
    main()
