"""An independent, deliberately plain load generator to cross-check chat-perf.

It shares no code with ``perf/`` (nor with ``chat_protocol``): blocking-free sockets on
one ``selectors`` loop, a fixed-rate schedule, and latency taken from the scheduled
send time written into each message. Run it and ``chat-perf`` against the same server
with the same shape of load; their throughput and percentiles should agree.

    python benchmarks/crosscheck.py --target 127.0.0.1:6667 --clients 100 --rooms 1 \\
        --senders 5 --rate 1000 --duration 10

Every load loop here is bounded by ``--duration`` (plus a short drain).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import sys
import time

PREFIX = b"xchk "


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def connect_all(host: str, port: int, clients: int, rooms: int) -> list[socket.socket]:
    """Register every client and join its room (client i joins room i % rooms)."""
    socks: list[socket.socket] = []
    for i in range(clients):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"NICK xc%d\r\nUSER xc 0 * :crosscheck\r\nJOIN #xchk%d\r\n" % (i, i % rooms))
        socks.append(s)
    deadline = time.monotonic() + 30
    for s in socks:
        buf = b""
        while b" 366 " not in buf:
            if time.monotonic() > deadline:
                raise SystemExit("crosscheck: clients did not all join within 30 s")
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("crosscheck: the server closed a connection while joining")
            buf = buf[-600:] + chunk
        s.setblocking(False)
    return socks


def run(args: argparse.Namespace) -> dict[str, object]:
    host, _, port = args.target.rpartition(":")
    socks = connect_all(host, int(port), args.clients, args.rooms)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    senders = socks[: args.senders]
    interval = args.senders / args.rate  # per-sender gap between messages
    pad = b"." * max(0, args.msg_size - 40)
    start = time.monotonic() + 0.5
    stop_sending = start + args.duration
    next_due = [start + i * interval / args.senders for i in range(args.senders)]
    seqs = [0] * args.senders
    pending = [b""] * len(socks)
    latencies: list[float] = []
    deliveries = 0
    sent = 0
    while True:
        now = time.monotonic()
        if now >= stop_sending + args.drain:
            break
        if now < stop_sending:
            for k, s in enumerate(senders):
                # Catch up on every message that is due: a late sender shows as latency.
                while next_due[k] <= now and next_due[k] < stop_sending:
                    room = k % args.rooms
                    line = b"PRIVMSG #xchk%d :%s%d %d %d %s\r\n" % (
                        room,
                        PREFIX,
                        k,
                        seqs[k],
                        int(next_due[k] * 1e9),
                        pad,
                    )
                    try:
                        s.send(line)
                    except BlockingIOError:
                        break
                    seqs[k] += 1
                    sent += 1
                    next_due[k] += interval
        timeout = max(0.0, min(next_due) - time.monotonic()) if now < stop_sending else 0.05
        for key, _ in sel.select(min(timeout, 0.05)):
            i = key.data
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit(f"crosscheck: the server closed client {i}")
            received = time.monotonic()
            lines = (pending[i] + data).split(b"\n")
            pending[i] = lines.pop()
            for line in lines:
                at = line.find(PREFIX)
                if at < 0:
                    if line.startswith(b"PING"):
                        key.fileobj.send(b"PONG" + line[4:] + b"\n")
                    continue
                deliveries += 1
                scheduled_ns = int(line[at + len(PREFIX) :].split(b" ", 3)[2])
                latencies.append((received - scheduled_ns / 1e9) * 1000)
    for s in socks:
        s.close()
    latencies.sort()
    receivers_per_message = args.clients // args.rooms - (0 if args.echo_counts else 1)
    return {
        "sent": sent,
        "deliveries": deliveries,
        "expected": sent * receivers_per_message,
        "msgs_per_s": sent / args.duration,
        "deliveries_per_s": deliveries / args.duration,
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "p99.9": percentile(latencies, 99.9),
            "max": latencies[-1] if latencies else float("nan"),
            "mean": statistics.fmean(latencies) if latencies else float("nan"),
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="HOST:PORT of any IRC server on loopback")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rooms", type=int, default=1)
    p.add_argument("--senders", type=int, default=5)
    p.add_argument("--rate", type=float, default=500.0, help="messages/s over all senders")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--drain", type=float, default=2.0, help="seconds to wait for stragglers")
    p.add_argument("--msg-size", type=int, default=64)
    p.add_argument("--echo-counts", action="store_true", help="the sender also receives (echo)")
    args = p.parse_args()
    if args.senders > args.clients or args.rooms > args.clients or args.rate <= 0:
        p.error("need senders <= clients, rooms <= clients and a positive rate")
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
