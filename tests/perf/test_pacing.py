"""Rate mode offers a steady load: senders' phases are spread evenly over the whole run,
not drawn from one seeded generator in every process (which made sender k of each
process fire together: a "steady" 200 msg/s swung ±35 % within each second)."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

from perf.pacing import RateSchedule
from perf.scenario import BUILTIN, plan


class Sender:
    """What a schedule needs of a client: its index (hashed by identity, like Client)."""

    def __init__(self, index: int) -> None:
        self.index = index


def _scheduled_times(workers: int) -> list[int]:
    """Every send time of one second of the chat scenario, over all its workers."""
    scn = BUILTIN["chat"]
    layout = plan(scn, workers, "t")
    senders = sorted(c.index for c in layout.clients if c.sender)
    rank = {sid: k for k, sid in enumerate(senders)}
    interval = int(scn.senders / scn.rate * 1e6)
    times: list[int] = []
    for w in range(layout.workers):
        mine = [Sender(c.index) for c in layout.for_worker(w) if c.sender]
        schedule = RateSchedule(mine, interval, 0, 1_000_000, rank, len(senders))  # type: ignore[arg-type]
        for sent in schedule.due(1_000_000).values():
            times += sent
    return sorted(times)


def test_chat_senders_take_turns_across_processes() -> None:
    for workers in (1, 2, 4, 8):
        times = _scheduled_times(workers)
        assert len(times) == 200  # 200 senders, one message a second each
        gaps = {b - a for a, b in pairwise(times)}
        assert gaps == {5_000}, (workers, sorted(gaps)[:5])  # one message every 5 ms


def test_a_real_run_sends_evenly_within_each_second(tmp_path: Path) -> None:
    """8 senders in 2 processes at 200 msg/s against a real server: every 50 ms of the
    run scheduled exactly 10 messages (read back from latencies.csv: receive time minus
    latency is the scheduled time, which coordinated-omission correction keeps)."""
    proc = subprocess.run(
        [sys.executable, "-m", "perf", "run", "--spawn", "--clients", "16", "--rooms", "2",
         "--senders", "8", "--rate", "200", "--duration", "2", "--workers", "2",
         "--out", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sched: dict[tuple[str, str], int] = {}
    with (tmp_path / "latencies.csv").open() as f:
        for row in csv.DictReader(f):
            t = round(float(row["recv_time_s"]) * 1e6) - int(row["latency_us"])
            sched[(row["sender"], row["seq"])] = t
    # A generator late at the very end sends nothing after the end of the run: leave
    # the last 100 ms out, every other bin must hold exactly 10.
    assert 390 <= len(sched) <= 400
    per_bin = Counter(t // 50_000 for t in sched.values())
    assert min(per_bin) == 0 and max(per_bin) <= 39
    assert {per_bin[b] for b in range(38)} == {10}, per_bin
