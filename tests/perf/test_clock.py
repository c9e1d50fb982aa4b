"""Times are read when things happened: a delivery's receive time after its bytes were
read (never before ``recv_into``, which gave negative latencies), impossible latencies
counted as an error instead of clamped into the histogram, and the TCP connect time
measured (it was always 1 µs)."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import numpy as np

from perf import histogram as hg
from perf.clock import now_us
from perf.connection import READY
from perf.payload import privmsg
from perf.results import IMPOSSIBLE, verdict
from perf.scenario import builtin, plan
from perf.worker import Worker, WorkerConfig
from tests.perf.conftest import load_summary

SOURCE = b"@msgid=x :pab0!pab0@127.0.0.1 "


def _worker() -> Worker:
    scn = builtin("fanout", clients=4, senders=1)
    layout = plan(scn, 1, "ck")
    rooms = {c.index: c.rooms[0] for c in layout.clients if c.sender}
    cfg = WorkerConfig(0, "127.0.0.1", 0, scn, layout.for_worker(0), 0, 1.0, 1_000_000,
                       1000, rooms)  # fmt: skip
    worker = Worker(None, cfg)  # type: ignore[arg-type]
    worker.started = True
    worker.start_us = worker.meas.start_us = now_us()
    return worker


class RelayingSocket:
    """A real socket whose peer gets one more delivery, stamped "now", the moment the
    worker asks to read: what a server does when a message sent after the loop looked
    at the clock comes back in the very read that follows."""

    def __init__(self, sock: socket.socket, peer: socket.socket) -> None:
        self.sock, self.peer, self.seq = sock, peer, 1

    def recv_into(self, buf: memoryview, size: int = 0) -> int:
        self.peer.sendall(SOURCE + privmsg(b"#perf0", 0, self.seq, now_us(), 64))
        self.seq += 1
        return self.sock.recv_into(buf, size)

    def fileno(self) -> int:
        return self.sock.fileno()


def test_receive_time_is_read_after_the_data() -> None:
    worker = _worker()
    receiver = worker.clients[3]
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    receiver.sock = RelayingSocket(ours, theirs)  # type: ignore[assignment]
    receiver.state = READY
    for _ in range(50):
        worker.rx.read(receiver)
        worker.rx.process()
    worker.meas.flush(now_us())
    assert worker.meas.delivered_total == 50
    assert worker.meas.impossible == 0  # every one was stamped after it arrived
    assert worker.meas.total.get_total_count() == 50
    rows = worker.meas.raw.rows
    assert len(rows) == 50 and min(row[1] for row in rows) >= 1
    ours.close()
    theirs.close()


def test_impossible_latencies_are_counted_not_clamped() -> None:
    worker = _worker()
    receiver = worker.clients[3]
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    receiver.sock, receiver.state = ours, READY
    future = now_us() + 5_000_000  # "sent" 5 s from now: no clock can receive it yet
    theirs.sendall(
        SOURCE + privmsg(b"#perf0", 0, 1, now_us(), 64)
        + SOURCE + privmsg(b"#perf0", 0, 2, future, 64)
        + SOURCE + privmsg(b"#perf0", 0, 3, future + 1000, 64)
    )  # fmt: skip
    worker.rx.read(receiver)
    worker.rx.process()
    worker.meas.flush(now_us())
    assert worker.meas.delivered_total == 3  # delivered all the same
    assert worker.meas.impossible == 2
    low, high = worker.meas.impossible_range or (0, 0)
    assert -5_002_000 < low <= high < -4_000_000
    hist = worker.meas.total
    assert hist.get_total_count() == 1 and hist.get_min_value() > 1  # nothing clamped to 1 µs
    exported = worker.meas.export()
    assert exported["impossible"] == 2
    ours.close()
    theirs.close()


def test_impossible_latencies_make_the_run_fail(chat_out: Path) -> None:
    s = load_summary(chat_out)
    s["latency_ms"].update(impossible=2, impossible_range_ms=[-3.764, -2.212])
    s["errors"] = {IMPOSSIBLE: 2}
    v = verdict(s, "127.0.0.1:1")
    assert not v["ok"]
    assert v["problems"] == [
        "2 impossible latencies (from -3.764 to -2.212 ms) were left out of the percentiles: "
        "the generator's clock or bookkeeping is wrong"
    ]


def test_a_saturated_run_has_no_negative_latencies(fanout_out: Path) -> None:
    s = load_summary(fanout_out)
    assert s["latency_ms"]["impossible"] == 0 and IMPOSSIBLE not in s["errors"]
    assert s["verdict"]["ok"]
    with (fanout_out / "latencies.csv").open() as f:
        lats = np.array([int(r["latency_us"]) for r in csv.DictReader(f)])
    assert len(lats) > 1000 and lats.min() >= 1
    assert s["latency_ms"]["min"] == hg.decode(s["histogram"]).get_min_value() / 1000


def test_tcp_connect_time_is_measured(chat_out: Path, fanout_out: Path) -> None:
    for out in (chat_out, fanout_out):
        c = load_summary(out)["connect_ms"]
        assert c["tcp"]["count"] == c["welcome"]["count"] > 0
        # A loopback connect costs microseconds, not the histogram's floor of 1 µs.
        assert c["tcp"]["p50"] > 0.002, c["tcp"]
        assert c["tcp"]["max"] <= c["welcome"]["max"]
