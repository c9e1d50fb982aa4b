"""What one worker measured: latency batches, per-interval counts and histograms, raw rows.

The receive loop appends plain ints to lists; ``flush`` turns them into HDR histograms
(total and per time interval) and keeps a uniformly decimated sample of raw rows for
latencies.csv, so memory stays bounded however long and fast the run is.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from perf import histogram as hg

RAW_FIELDS = ("t_us", "latency_us", "sender", "seq", "room", "receiver")


class RawSample:
    """Keeps every ``stride``-th row; when full, drops every other row and doubles stride.

    The result is a uniform systematic sample of the whole run, capped at ``cap`` rows.
    """

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.stride = 1
        self.rows: list[tuple[int, int, int, int, str, int]] = []
        self.seen = 0

    def add_chunk(
        self, now_us: int, start_us: int, receiver: int, found: list[tuple[bytes, ...]]
    ) -> None:
        # Row number k of the whole run is kept iff k % stride == 0; halving the list
        # keeps exactly the multiples of the doubled stride, since row 0 is always kept.
        first = -self.seen % self.stride
        self.seen += len(found)
        rows = self.rows
        for room, sid, seq, sched in found[first :: self.stride]:
            lat = now_us - int(sched)
            rows.append((now_us - start_us, lat, int(sid), int(seq), room.decode(), receiver))
        if len(rows) > self.cap:
            self.rows = rows[::2]
            self.stride *= 2


class Measurements:
    """Counters and latency batches of one worker, bucketed by time interval."""

    def __init__(self, interval_us: int, raw_cap: int) -> None:
        self.interval_us = interval_us
        self.start_us = 0
        self.lats: list[int] = []
        self.echo_lats: list[int] = []
        self.send_lags: list[int] = []
        self.send_lag = hg.new_histogram()
        self.total = hg.new_histogram()
        self.echo = hg.new_histogram()
        self.by_interval: dict[int, object] = {}
        self.sent: defaultdict[int, int] = defaultdict(int)
        self.delivered: defaultdict[int, int] = defaultdict(int)
        self.registered: defaultdict[int, int] = defaultdict(int)
        self.raw = RawSample(raw_cap)
        self.raw_chunks: list[tuple[int, int, list[tuple[bytes, ...]]]] = []
        self.last_batch_p99_us: float | None = None
        self.delivered_total = 0
        self.sent_total = 0

    def interval_of(self, now_us: int) -> int:
        return (now_us - self.start_us) // self.interval_us

    def flush(self, now_us: int) -> None:
        """Record pending latencies into the total and the current interval histogram."""
        if self.lats:
            arr = np.asarray(self.lats, dtype=np.int64)
            self.lats = []
            self.last_batch_p99_us = float(np.percentile(arr, 99))
            vals, counts = hg.quantize(arr)
            hg.record_counts(self.total, vals, counts)
            idx = self.interval_of(now_us)
            hist = self.by_interval.get(idx)
            if hist is None:
                hist = self.by_interval[idx] = hg.new_histogram(2)
            hg.record_counts(hist, vals, counts)
        if self.echo_lats:
            hg.record_batch(self.echo, self.echo_lats)
            self.echo_lats = []
        if self.send_lags:
            hg.record_batch(self.send_lag, self.send_lags)
            self.send_lags = []
        for now, receiver, found in self.raw_chunks:
            self.raw.add_chunk(now, self.start_us, receiver, found)
        self.raw_chunks = []

    def export(self) -> dict[str, object]:
        """Plain data for the pipe back to the coordinator."""
        return {
            "hist": hg.encode(self.total),
            "echo_hist": hg.encode(self.echo),
            "send_lag_hist": hg.encode(self.send_lag),
            "intervals": {i: hg.encode(h) for i, h in self.by_interval.items()},  # type: ignore[arg-type]
            "sent_series": dict(self.sent),
            "delivered_series": dict(self.delivered),
            "registered_series": dict(self.registered),
            "raw_rows": self.raw.rows,
            "raw_stride": self.raw.stride,
            "raw_seen": self.raw.seen,
        }
