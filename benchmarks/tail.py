"""The latency tail at light load, ours against ngircd, with an evenly paced generator.

    python -m benchmarks.tail                     # 3 rounds, 20 s each, 200 clients, 20 rooms
    python -m benchmarks.tail --rounds 5 --duration 30 --servers distchat

chat-perf's ``chat`` scenario fires its senders in bursts (every worker process seeds
the same schedule), which hides what a server does with a steady trickle. Here one
process drives every client and sends on one even schedule: client ``i`` of ``n`` sends
at ``start + i / (n * rate) + k / rate``, so at 200 clients and 1 msg/s each there is one
message every 5 ms, never two at once. Each message carries its send time
(``perf_counter_ns``, the same process reads it back), and every other member of the
room records the delay. Servers run pinned to CPU 1 and this generator to CPU 0, one
after the other in each round, taking turns to go first; the report gives each round's
percentiles and the median over rounds of the same-round ratio.

This is a measuring tool for a server's own tail, not a load test: at 1,800 deliveries a
second the generator is idle most of the time, so its wake-up cost is the same small
constant for both servers.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.ngircd import NgircdProcess
from perf.spawn import SpawnedServer

RESULTS = Path(__file__).resolve().parent / "results" / "tail"
MARK = b"tail "


@dataclass(frozen=True, slots=True)
class TailResult:
    """One server's run: delivery delays in milliseconds."""

    server: str
    samples: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


def _register(address: tuple[str, int], nick: str, room: str) -> socket.socket:
    sock = socket.create_connection(address, timeout=15)
    sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {room}\r\n".encode())
    buf = b""
    while b" 366 " not in buf:  # end of NAMES: registered and in the room
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"{nick}: server closed the connection")
        buf += chunk
        if b"PING" in buf:
            for line in buf.split(b"\r\n"):
                if line.startswith(b"PING"):
                    sock.sendall(b"PONG" + line[4:] + b"\r\n")
    sock.setblocking(False)
    return sock


def measure(
    address: tuple[str, int], clients: int, rooms: int, rate: float, duration: float
) -> list[float]:
    """Drive the even schedule for ``duration`` seconds; every delivery delay in ms."""
    socks = [_register(address, f"t{i}", f"#tail{i % rooms}") for i in range(clients)]
    sel = selectors.DefaultSelector()
    for i, sock in enumerate(socks):
        sel.register(sock, selectors.EVENT_READ, i)
    bufs = [b""] * clients
    delays: list[float] = []
    interval = 1.0 / rate
    spacing = interval / clients
    start = time.perf_counter() + 0.5
    end = start + duration
    k = 0  # the k-th message overall: client k % clients, its (k // clients)-th message
    try:
        while True:
            now = time.perf_counter()
            due = start + (k // clients) * interval + (k % clients) * spacing
            while due <= now and due < end:
                sender = k % clients
                stamp = time.perf_counter_ns()
                socks[sender].send(b"PRIVMSG #tail%d :tail %d\r\n" % (sender % rooms, stamp))
                k += 1
                due = start + (k // clients) * interval + (k % clients) * spacing
            if now > end + 1.0:
                break
            timeout = max(0.0, min(due, end + 1.0) - time.perf_counter())
            for key, _ in sel.select(timeout):
                i = key.data
                try:
                    chunk = socks[i].recv(1 << 16)
                except BlockingIOError:
                    continue
                got = time.perf_counter_ns()
                data = bufs[i] + chunk
                *lines, bufs[i] = data.split(b"\r\n")
                for line in lines:
                    at = line.find(MARK)
                    if at >= 0:
                        delays.append((got - int(line[at + len(MARK) :])) / 1e6)
                    elif line.startswith(b"PING"):
                        socks[i].send(b"PONG" + line[4:] + b"\r\n")
    finally:
        sel.close()
        for sock in socks:
            sock.close()
    return delays


def summarize(server: str, delays: list[float]) -> TailResult:
    ordered = sorted(delays)
    return TailResult(
        server, len(ordered), _percentile(ordered, 0.50), _percentile(ordered, 0.90),
        _percentile(ordered, 0.99), _percentile(ordered, 0.999), ordered[-1] if ordered else 0.0,
    )  # fmt: skip


def run_one(server: str, args: argparse.Namespace, workdir: Path) -> TailResult:
    proc: SpawnedServer | NgircdProcess
    if server == "distchat":
        proc = SpawnedServer(cpus=args.server_cpus)
    else:
        proc = NgircdProcess(workdir, cpus=args.server_cpus)
    proc.start()
    try:
        delays = measure(("127.0.0.1", proc.port), args.clients, args.rooms, args.rate,
                         args.duration)  # fmt: skip
    finally:
        proc.stop()
    return summarize(server, delays)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", nargs="+", default=["distchat", "ngircd"],
                   choices=["distchat", "ngircd"])  # fmt: skip
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of traffic per run")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--rooms", type=int, default=20)
    p.add_argument("--rate", type=float, default=1.0, help="messages per second per client")
    p.add_argument("--server-cpus", default="1", help="taskset CPUs for the server")
    p.add_argument("--load-cpu", type=int, default=0, help="CPU for this generator")
    args = p.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.duration <= 300:
        p.error("--rounds must be 1-20 and --duration 1-300 s")
    os.sched_setaffinity(0, {args.load_cpu})
    rounds: list[dict[str, TailResult]] = []
    with tempfile.TemporaryDirectory(prefix="tail-") as tmp:
        for r in range(args.rounds):
            order = args.servers if r % 2 == 0 else list(reversed(args.servers))
            results = {server: run_one(server, args, Path(tmp)) for server in order}
            rounds.append(results)
            for server in args.servers:
                res = results[server]
                print(f"round {r + 1} {server:8s} n={res.samples} p50 {res.p50:.3f} "
                      f"p90 {res.p90:.3f} p99 {res.p99:.3f} p99.9 {res.p999:.3f} "
                      f"max {res.max:.3f} ms", flush=True)  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tail.json").write_text(
        json.dumps([{k: asdict(v) for k, v in r.items()} for r in rounds], indent=1)
    )
    if set(args.servers) == {"distchat", "ngircd"}:
        for field in ("p50", "p99", "p999"):
            ratios = [getattr(r["ngircd"], field) / getattr(r["distchat"], field) for r in rounds]
            print(f"{field}: ngircd/distchat per round "
                  f"{' '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}"
                  " (above 1: distchat lower)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
