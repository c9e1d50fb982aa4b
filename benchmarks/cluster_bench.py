"""Compare one chat-server with 1- and 2-node clusters under the same load, same run.

    python benchmarks/cluster_bench.py [--clients 100] [--rooms 5] [--senders 10]
                                    [--window 4] [--duration 8]

Starts its own redis-server and nodes on free loopback ports, spreads the clients over
the nodes round-robin, lets every sender keep ``--window`` messages in flight (the next
goes when its echo returns) and reports deliveries/s and each sender's echo latency
(send to own echo).
Everything it starts is stopped at the end; the load is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.redis_server import RedisProcess
from tests.support.servers import ServerProcess

CAPS = "CAP REQ :echo-message message-tags\r\n"


class Stats:
    def __init__(self) -> None:
        self.deliveries = 0
        self.latencies: list[float] = []
        self.measuring = False


async def client(
    port: int, nick: str, room: str, stats: Stats, ready: asyncio.Event, go: asyncio.Event,
    sender: bool, window: int, stop_at: list[float],
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"CAP LS 302\r\n{CAPS}NICK {nick}\r\nUSER {nick} 0 * :b\r\nCAP END\r\n".encode())
    writer.write(f"JOIN {room}\r\n".encode())
    while True:
        line = await reader.readline()
        if b" 366 " in line:
            break
    ready.set()
    await go.wait()
    inflight = 0
    seq = 0

    def send_more() -> None:
        nonlocal inflight, seq
        while inflight < window and time.monotonic() < stop_at[0]:
            seq += 1
            writer.write(f"PRIVMSG {room} :{nick} {seq} {time.perf_counter()!r}\r\n".encode())
            inflight += 1

    if not sender:
        # Receivers only count: parsing every line would make this script the bottleneck.
        while time.monotonic() < stop_at[0] + 2:
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), timeout=0.5)
            except TimeoutError:
                if time.monotonic() > stop_at[0]:
                    break
                continue
            if not data:
                break
            if stats.measuring:
                stats.deliveries += data.count(b" PRIVMSG ")
            if b"PING" in data:
                writer.write(b"PONG :x\r\n")
        writer.close()
        return
    send_more()
    while time.monotonic() < stop_at[0] + 2:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=0.5)
        except TimeoutError:
            if time.monotonic() > stop_at[0]:
                break
            continue
        if not line:
            break
        if b" PRIVMSG " not in line:
            if line.startswith(b"PING"):
                writer.write(b"PONG" + line[4:])
            continue
        text = line.rsplit(b" :", 1)[-1].split()
        if stats.measuring:
            stats.deliveries += 1
        if text[0].decode() == nick:
            if stats.measuring:
                stats.latencies.append(time.perf_counter() - float(text[2]))
            inflight -= 1
            send_more()
    writer.close()


async def load(ports: list[int], args: argparse.Namespace) -> tuple[float, list[float]]:
    stats = Stats()
    go = asyncio.Event()
    stop_at = [float("inf")]
    tasks, readies = [], []
    for i in range(args.clients):
        ready = asyncio.Event()
        readies.append(ready)
        port = ports[i % len(ports)]
        room = f"#r{i % args.rooms}"
        sender = i < args.senders
        job = client(port, f"u{i}", room, stats, ready, go, sender, args.window, stop_at)
        tasks.append(asyncio.create_task(job))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    stop_at[0] = time.monotonic() + args.duration + 1
    go.set()
    await asyncio.sleep(1)  # warm-up
    stats.measuring = True
    t0 = time.monotonic()
    await asyncio.sleep(args.duration)
    stats.measuring = False
    elapsed = time.monotonic() - t0
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats.deliveries / elapsed, stats.latencies


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rooms", type=int, default=5)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--duration", type=float, default=8.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = []
        for label, nodes in (("single server", 0), ("cluster, 1 node", 1), ("cluster, 2 nodes", 2)):
            redis = RedisProcess(work / f"redis-{nodes}").start() if nodes else None
            servers = []
            try:
                if redis is None:
                    servers.append(ServerProcess(work, flood_limit=False).start())
                for n in range(nodes):
                    assert redis is not None
                    extra = ("--redis", redis.url, "--node-id", f"n{n}")
                    srv = ServerProcess(work, *extra, flood_limit=False).start()
                    srv.wait_log("in sync")
                    servers.append(srv)
                print(f"{label}: {args.clients} clients, {args.rooms} rooms, "
                      f"{args.senders} senders x window {args.window} ...", flush=True)  # fmt: skip
                rate, lat = asyncio.run(load([s.port for s in servers], args))
                rows.append((label, rate, pct(lat, 50), pct(lat, 99), statistics.fmean(lat) * 1000))
            finally:
                for srv in servers:
                    srv.stop()
                if redis is not None:
                    redis.stop()
    print(f"\n{'setup':<18} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, rate, p50, p99, mean in rows:
        print(f"{label:<18} {rate:>13,.0f} {p50:>8.2f} {p99:>8.2f} {mean:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
