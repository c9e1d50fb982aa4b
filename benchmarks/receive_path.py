"""CPU cost of chat-perf's receive path per delivered line, without any IRC server.

A feeder process (pinned to its own CPU) plays the fastest server imaginable: it writes
ready-made payload lines (5 senders interleaved, consecutive sequence numbers, like the
fanout scenario) to every client socket over loopback TCP. This process runs a real
``perf.worker.Worker``'s receive path over those sockets — select, ``recv_into`` the
shared buffer, scan, stream accounting, latencies, raw sample, histogram flushes — and
reports its own CPU time per line. ``--rcvbuf`` caps the kernel receive buffer so each
recv() returns about as many lines as fanout's window lets a receiver have pending; the
``--in-memory`` mode skips the sockets to show the cost of the numpy work alone.

    python -m benchmarks.receive_path                       # 100 clients, 2M lines
    python -m benchmarks.receive_path --tags --rcvbuf 8192  # IRCv3 tags, ~100 lines/recv
    python -m benchmarks.receive_path --in-memory
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import selectors
import socket
import time

from perf.connection import READY
from perf.payload import privmsg
from perf.scenario import builtin, plan
from perf.worker import Worker, WorkerConfig, now_us

ROOM = b"#perf0"
SENDERS = 5


def block_of_lines(first_seq: int, per_sender: int, tags: bool) -> bytes:
    """``per_sender`` consecutive messages from each sender, interleaved, as relayed."""
    out = []
    sched = now_us()
    for k in range(per_sender):
        for s in range(SENDERS):
            tag = b"@time=2026-01-01T00:00:00.000Z " if tags else b""
            source = b":pab%d!~pab%d@127.0.0.1 " % (s, s)
            out.append(tag + source + privmsg(ROOM, s, first_seq + k, sched, 64))
    return b"".join(out)


def feed(port: int, clients: int, lines: int, tags: bool, cpu: int | None) -> None:
    """Connect ``clients`` sockets and write ``lines`` lines to each, in blocks."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
    per_block = 20  # per sender: 100 lines per block, fanout's window of 5 x 20
    blocks = [block_of_lines(1 + b * per_block, per_block, tags) for b in range(64)]
    sent = 0
    b = 0
    while sent < lines:
        if b and b % len(blocks) == 0:  # renumber a fresh set of blocks, outside timing
            base = b * per_block
            blocks = [block_of_lines(1 + base + i * per_block, per_block, tags) for i in range(64)]
        data = blocks[b % len(blocks)]
        for s in socks:
            s.sendall(data)
        sent += per_block * SENDERS
        b += 1
    for s in socks:
        s.close()


def make_worker(clients: int) -> Worker:
    """A fanout worker whose clients are all joined, without registering anywhere."""
    scn = builtin("fanout", clients=clients)
    layout = plan(scn, 1, "bb")
    rooms = {c.index: c.rooms[0] for c in layout.clients if c.sender}
    cfg = WorkerConfig(0, "127.0.0.1", 0, scn, layout.for_worker(0), 0, 1.0, 200_000,
                       200_000, rooms)  # fmt: skip
    worker = Worker(None, cfg)  # type: ignore[arg-type]
    worker.started = True
    worker.start_us = worker.meas.start_us = now_us()
    return worker


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def sys_s() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def over_sockets(args: argparse.Namespace) -> tuple[int, float, float, int]:
    worker = make_worker(args.clients)
    lsock = socket.create_server(("127.0.0.1", 0), backlog=args.clients + 16)
    port = lsock.getsockname()[1]
    feeder = mp.get_context("fork").Process(
        target=feed, args=(port, args.clients, args.lines, args.tags, args.feeder_cpu)
    )
    feeder.start()
    for c in worker.clients:
        sock, _ = lsock.accept()
        if args.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        sock.setblocking(False)
        c.sock = sock
        c.state = READY
        worker.sel.register(sock, selectors.EVENT_READ, c)
    lsock.close()
    rx, meas = worker.rx, worker.meas
    want = args.lines * args.clients
    deadline = time.monotonic() + args.timeout
    next_flush = 0
    reads = 0
    cpu0, wall0 = cpu_s(), time.monotonic()
    while time.monotonic() < deadline:
        events = worker.sel.select(0 if rx.pending else 0.05)
        for key, _ in events:
            rx.read(key.data)
            reads += 1
        now = now_us()
        rx.settle(bool(events), now)
        if now >= next_flush:
            meas.flush(now)
            next_flush = now + 200_000
        if meas.delivered_total + _echoes(worker) >= want:
            break
    meas.flush(now_us())
    cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
    feeder.join(10)
    return meas.delivered_total + _echoes(worker), cpu, wall, reads


def _echoes(worker: Worker) -> int:
    return sum(len(a) for a in worker.meas.echo_lats) + worker.meas.echo.get_total_count()


def in_memory(args: argparse.Namespace) -> tuple[int, float, float, int]:
    worker = make_worker(args.clients)
    rx = worker.rx
    per_recv = max(1, args.lines_per_recv // SENDERS)
    rounds = max(1, args.lines // (per_recv * SENDERS))
    blocks = [block_of_lines(1 + i * per_recv, per_recv, args.tags) for i in range(rounds)]
    cpu0, wall0 = cpu_s(), time.monotonic()
    for r, data in enumerate(blocks):
        for c in worker.clients:
            rx.add(c, data, now_us())
        rx.process()
        if r % 20 == 0:
            worker.meas.flush(now_us())
    worker.meas.flush(now_us())
    cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
    return worker.meas.delivered_total + _echoes(worker), cpu, wall, rounds * args.clients


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--lines", type=int, default=20_000, help="lines per client")
    p.add_argument("--tags", action="store_true", help="prefix lines with IRCv3 tags")
    p.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF of each client socket")
    p.add_argument("--cpu", type=int, default=0, help="pin this process to CPU (-1: no)")
    p.add_argument("--feeder-cpu", type=int, default=1, help="pin the feeder (-1: no)")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--in-memory", action="store_true", help="no sockets: numpy work only")
    p.add_argument("--lines-per-recv", type=int, default=100, help="with --in-memory")
    args = p.parse_args(argv)
    args = replace_none(args)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    sys0 = sys_s()
    lines, cpu, wall, reads = in_memory(args) if args.in_memory else over_sockets(args)
    print(
        f"{lines:,} lines in {wall:.2f} s wall, {cpu:.2f} s CPU ({sys_s() - sys0:.2f} s system): "
        f"{cpu / max(lines, 1) * 1e9:.0f} ns/line, {lines / max(cpu, 1e-9) / 1e6:.2f} M lines "
        f"per CPU-second; {lines / max(reads, 1):.0f} lines per read"
    )
    return 0


def replace_none(args: argparse.Namespace) -> argparse.Namespace:
    """-1 means "do not pin" for the CPU options."""
    if args.feeder_cpu is not None and args.feeder_cpu < 0:
        args.feeder_cpu = None
    return args


if __name__ == "__main__":
    raise SystemExit(main())
