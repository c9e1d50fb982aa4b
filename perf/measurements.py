"""What one worker measured: latency batches, per-interval counts and histograms, raw rows.

The receive path hands over latencies a whole batch at a time as numpy arrays; ``flush``
turns them into HDR histograms (total and per time interval), and a uniformly decimated
sample of raw rows is kept for latencies.csv, so memory stays bounded however long and
fast the run is.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hdrh.histogram import HdrHistogram

from perf import histogram as hg

RAW_FIELDS = ("t_us", "latency_us", "sender", "seq", "room", "receiver")


class RawSample:
    """Keeps every ``stride``-th row; when full, drops every other row and doubles stride.

    The result is a uniform systematic sample of the whole run, capped at ``cap`` rows.
    Rows arrive as numpy columns (a whole receive batch at a time) and stay columns
    until ``rows()``, so sampling costs nothing per delivery.
    """

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.stride = 1
        self.seen = 0
        self.kept = 0
        self._parts: list[tuple[np.ndarray, ...]] = []
        self.rooms: list[str] = []  # room code -> name
        self._room_codes: dict[str, int] = {}

    def room_code(self, room: str) -> int:
        code = self._room_codes.get(room)
        if code is None:
            code = self._room_codes[room] = len(self.rooms)
            self.rooms.append(room)
        return code

    def add_columns(self, *cols: np.ndarray) -> None:
        """Columns t_us, latency_us, sender, seq, room code, receiver (equal lengths)."""
        n = len(cols[0])
        # Row number k of the whole run is kept iff k % stride == 0; halving the list
        # keeps exactly the multiples of the doubled stride, since row 0 is always kept.
        first = -self.seen % self.stride
        self.seen += n
        if first >= n:
            return
        picked = tuple(np.asarray(c, dtype=np.int64)[first :: self.stride] for c in cols)
        self._parts.append(picked)
        self.kept += len(picked[0])
        while self.kept > self.cap:
            merged = self._merged()
            self._parts = [tuple(c[::2] for c in merged)]
            self.kept = len(self._parts[0][0])
            self.stride *= 2

    def add_chunk(
        self, now_us: int, start_us: int, receiver: int, found: list[tuple[bytes, ...]]
    ) -> None:
        """Rows of (room, sender, seq, sched) byte fields, all received at ``now_us``."""
        n = len(found)
        if not n:
            return
        sched = np.array([int(f[3]) for f in found], dtype=np.int64)
        self.add_columns(
            np.full(n, now_us - start_us),
            now_us - sched,
            np.array([int(f[1]) for f in found]),
            np.array([int(f[2]) for f in found]),
            np.array([self.room_code(f[0].decode()) for f in found]),
            np.full(n, receiver),
        )

    def _merged(self) -> tuple[np.ndarray, ...]:
        if len(self._parts) == 1:
            return self._parts[0]
        if not self._parts:
            return tuple(np.empty(0, dtype=np.int64) for _ in RAW_FIELDS)
        return tuple(np.concatenate(c) for c in zip(*self._parts, strict=True))

    @property
    def rows(self) -> list[tuple[int, int, int, int, str, int]]:
        """(t_us, latency_us, sender, seq, room, receiver) per kept row."""
        t, lat, sender, seq, room, receiver = (c.tolist() for c in self._merged())
        names = self.rooms
        return [
            (a, b, c, d, names[e], f)
            for a, b, c, d, e, f in zip(t, lat, sender, seq, room, receiver, strict=True)
        ]


class Measurements:
    """Counters and latency batches of one worker, bucketed by time interval."""

    def __init__(self, interval_us: int, raw_cap: int) -> None:
        self.interval_us = interval_us
        self.start_us = 0
        # Latencies wait here (numpy arrays or lists of ints) until the next flush.
        self.lats: list[np.ndarray | list[int]] = []
        self.pending_lats = 0
        self.echo_lats: list[np.ndarray | list[int]] = []
        self.send_lags: list[int] = []
        self.send_lag = hg.new_histogram()
        # Bucket counts (perf.histogram.bucket_counts) until export: numpy adds them
        # up; HdrHistogram's per-value Python calls would cost more than the receiving.
        self.total_counts = np.zeros(hg.BUCKETS, dtype=np.int64)
        self.by_interval: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.echo = hg.new_histogram()
        self.sent: defaultdict[int, int] = defaultdict(int)
        self.delivered: defaultdict[int, int] = defaultdict(int)
        self.registered: defaultdict[int, int] = defaultdict(int)
        self.failed: defaultdict[int, int] = defaultdict(int)  # clients closed, by interval
        self.raw = RawSample(raw_cap)
        self.last_batch_p99_us: float | None = None
        self.delivered_total = 0
        self.sent_total = 0
        # Latencies no clock can produce (below 1 µs, received before they were
        # scheduled, or above an hour): counted as an error and kept out of the
        # histograms, never clamped into them. Smallest and largest seen, for the report.
        self.impossible = 0
        self.impossible_range: tuple[int, int] | None = None

    def interval_of(self, now_us: int) -> int:
        return (now_us - self.start_us) // self.interval_us

    def add_latencies(self, lats: np.ndarray | list[int]) -> None:
        """Delivery latencies (µs) of one batch; impossible ones are counted, not kept."""
        arr = self._possible(lats)
        self.lats.append(arr)
        self.pending_lats += len(arr)

    def add_echo_latencies(self, lats: np.ndarray | list[int]) -> None:
        """Latencies (µs) of a sender's own messages coming back (echo-message)."""
        self.echo_lats.append(self._possible(lats))

    def _possible(self, lats: np.ndarray | list[int]) -> np.ndarray:
        arr = np.asarray(lats, dtype=np.int64)
        if not len(arr):
            return arr
        low, high = int(arr.min()), int(arr.max())
        if low >= hg.LOWEST_US and high <= hg.HIGHEST_US:
            return arr
        bad = (arr < hg.LOWEST_US) | (arr > hg.HIGHEST_US)
        self.impossible += int(np.count_nonzero(bad))
        worst = (int(arr[bad].min()), int(arr[bad].max()))
        seen = self.impossible_range
        self.impossible_range = (
            worst if seen is None else (min(seen[0], worst[0]), max(seen[1], worst[1]))
        )
        return arr[~bad]

    def flush(self, now_us: int) -> None:
        """Record pending latencies into the total and the current interval histogram."""
        if self.lats:
            arr = np.concatenate(self.lats).astype(np.int64, copy=False)
            self.lats = []
            self.pending_lats = 0
            keys, counts = hg.bucket_counts(arr)
            self.last_batch_p99_us = hg.key_quantile(keys, counts, 0.99)
            self.total_counts[keys] += counts
            self.by_interval.setdefault(self.interval_of(now_us), []).append((keys, counts))
        if self.echo_lats:
            hg.record_batch(self.echo, np.concatenate(self.echo_lats).astype(np.int64))
            self.echo_lats = []
        if self.send_lags:
            hg.record_batch(self.send_lag, self.send_lags)
            self.send_lags = []

    @property
    def total(self) -> HdrHistogram:
        """All latencies of the run as an HDR histogram."""
        hist = hg.new_histogram()
        keys = self.total_counts.nonzero()[0]
        hg.record_counts(hist, hg.key_values(keys).tolist(), self.total_counts[keys].tolist())
        return hist

    def interval_hist(self, idx: int) -> HdrHistogram:
        """Latencies flushed during time interval ``idx`` (2 significant digits)."""
        parts = self.by_interval[idx]
        counts = np.zeros(hg.BUCKETS, dtype=np.int64)
        for keys, n in parts:
            counts[keys] += n
        keys = counts.nonzero()[0]
        hist = hg.new_histogram(2)
        hg.record_counts(hist, hg.key_values(keys).tolist(), counts[keys].tolist())
        return hist

    def export(self) -> dict[str, object]:
        """Plain data for the pipe back to the coordinator."""
        return {
            "hist": hg.encode(self.total),
            "echo_hist": hg.encode(self.echo),
            "send_lag_hist": hg.encode(self.send_lag),
            "intervals": {i: hg.encode(self.interval_hist(i)) for i in self.by_interval},
            "sent_series": dict(self.sent),
            "delivered_series": dict(self.delivered),
            "registered_series": dict(self.registered),
            "failed_series": dict(self.failed),
            "raw_rows": self.raw.rows,
            "raw_stride": self.raw.stride,
            "raw_seen": self.raw.seen,
            "impossible": self.impossible,
            "impossible_range": self.impossible_range,
        }
