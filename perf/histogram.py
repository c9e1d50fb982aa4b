"""HDR latency histograms: fast batch recording, encode/merge across processes, readouts.

Values are microseconds. The hot loop only appends ints to a list; ``record_batch``
quantizes a batch with numpy to the histogram's own precision and records each distinct
value once with its count, which is exact for HDR and far cheaper than one call per value.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: anything slower is a hang, clamp it
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram(digits: int = 3) -> HdrHistogram:
    """3 significant digits for run totals; 2 are enough for per-interval bands."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, digits)


def quantize(values: Iterable[int] | np.ndarray) -> tuple[list[int], list[int]]:
    """Distinct values (reduced to HDR precision) and their counts."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.int64)
    if arr.size == 0:
        return [], []
    np.clip(arr, LOWEST_US, HIGHEST_US, out=arr)
    # Keep 11 significant bits (>= 3 decimal digits) so values in one bucket collapse.
    shift = np.maximum(0, np.floor(np.log2(arr)).astype(np.int64) - 10)
    vals, counts = np.unique((arr >> shift) << shift, return_counts=True)
    return vals.tolist(), counts.tolist()


def record_counts(hist: HdrHistogram, vals: list[int], counts: list[int]) -> None:
    for v, c in zip(vals, counts, strict=True):
        hist.record_value(v, c)


def record_batch(hist: HdrHistogram, values: Iterable[int] | np.ndarray) -> int:
    """Record many latencies at once; returns how many were recorded."""
    vals, counts = quantize(values)
    record_counts(hist, vals, counts)
    return sum(counts)


def encode(hist: HdrHistogram) -> str:
    """A compact text form for pipes and summary.json."""
    raw = hist.encode()
    return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)


def decode(text: str | None, digits: int = 3) -> HdrHistogram:
    hist = new_histogram(digits)
    if text:
        hist.decode_and_add(text)
    return hist


def merge_into(target: HdrHistogram, encoded: str | None) -> None:
    if encoded:
        target.decode_and_add(encoded)


def percentiles_ms(hist: HdrHistogram) -> dict[str, float | None]:
    """p50/p90/p99/p99.9/max/mean in milliseconds (None when nothing was recorded)."""
    if hist.get_total_count() == 0:
        return {k: None for k in ("p50", "p90", "p99", "p99.9", "max", "mean", "min")}
    out: dict[str, float | None] = {}
    for p in PERCENTILES:
        key = f"p{p:g}"
        out[key] = hist.get_value_at_percentile(p) / 1000.0
    out["max"] = hist.get_max_value() / 1000.0
    out["min"] = hist.get_min_value() / 1000.0
    out["mean"] = hist.get_mean_value() / 1000.0
    return out


def cdf_points(hist: HdrHistogram) -> tuple[list[float], list[float]]:
    """(latency ms, cumulative fraction) at every recorded bucket, for CDF charts."""
    xs: list[float] = []
    ys: list[float] = []
    total = hist.get_total_count()
    if total == 0:
        return xs, ys
    seen = 0
    for item in hist.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        xs.append(item.value_iterated_to / 1000.0)
        ys.append(seen / total)
    return xs, ys


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
