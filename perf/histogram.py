"""HDR latency histograms: fast batch recording, encode/merge across processes, readouts.

Values are microseconds. The receive path hands over numpy batches; ``bucket_counts``
reduces them to the histogram's own precision in linear time (a ``bincount``), workers
add bucket counts up in numpy, and each distinct value is recorded into an HDR histogram
once with its count when results are exported — exact for HDR and far cheaper than one
call per value.
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


SIG_BITS = 11  # significant bits kept per value (>= 3 decimal digits)
_TOP = 1 << SIG_BITS


BUCKETS = 32 << SIG_BITS  # every (shift, kept) key of values up to HIGHEST_US


def bucket_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bucket keys, counts) of int64 values, in linear time.

    A value keeps its top ``SIG_BITS`` bits; the key packs (bits dropped, kept part) —
    without a shift kept < 2**SIG_BITS, with one 2**(SIG_BITS-1) <= kept < 2**SIG_BITS,
    so keys are distinct and ascend with the value. ``bincount`` replaces a sort.
    Latencies outside [LOWEST_US, HIGHEST_US] never get here (``Measurements`` counts
    them as impossible); the clip only keeps other values (a send lag of 0) in range.
    """
    arr = np.clip(values, LOWEST_US, HIGHEST_US)
    # value < 2**exp: the float64 exponent field (exact, since values are < 2**53).
    exp = (arr.astype(np.float64).view(np.int64) >> 52) - 1022
    shift = np.maximum(exp - SIG_BITS, 0)
    counts = np.bincount((shift << SIG_BITS) | (arr >> shift), minlength=BUCKETS)
    keys = counts.nonzero()[0]
    return keys, counts[keys]


def key_values(keys: np.ndarray) -> np.ndarray:
    """The (HDR-precision) value each bucket key stands for."""
    return (keys & (_TOP - 1)) << (keys >> SIG_BITS)


def quantize(values: Iterable[int] | np.ndarray) -> tuple[list[int], list[int]]:
    """Distinct values (reduced to HDR precision) and their counts, ascending."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.int64)
    if arr.size == 0:
        return [], []
    keys, counts = bucket_counts(arr)
    return key_values(keys).tolist(), counts.tolist()


def key_quantile(keys: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile (0..1) of bucketed values, for live progress readouts."""
    if not len(keys):
        return None
    cum = np.cumsum(counts)
    at = int(np.searchsorted(cum, q * cum[-1]))
    return float(key_values(keys[min(at, len(keys) - 1)]))


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


def percentile_table(hist: HdrHistogram, title: str, ticks_per_half_distance: int = 5) -> str:
    """HdrHistogram's percentile distribution as text, values in milliseconds.

    The layout of ``HistogramLogProcessor`` / ``outputPercentileDistribution``: value,
    percentile, count at or below it and 1/(1-percentile), then mean, standard deviation,
    maximum and count (all in ms; the hdrh package leaves the deviation unscaled).
    """
    lines = [f"# {title}"]
    total = hist.get_total_count()
    if not total:
        return "\n".join([*lines, "# no values recorded", ""])
    lines += [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>16}", ""]
    for item in hist.get_percentile_iterator(ticks_per_half_distance):
        p = item.percentile_level_iterated_to / 100.0
        value = hist.get_highest_equivalent_value(item.value_iterated_to) / 1000.0
        inverse = f" {1.0 / (1.0 - p):16.2f}" if p < 1.0 else ""
        lines.append(f"{value:12.3f} {p:14.12f} {item.total_count_to_this_value:10d}{inverse}")
    mean, std = hist.get_mean_value() / 1000.0, hist.get_stddev() / 1000.0
    lines += [
        f"#[Mean    = {mean:12.3f}, StdDeviation   = {std:12.3f}]",
        f"#[Max     = {hist.get_max_value() / 1000.0:12.3f}, Total count    = {total:12d}]",
        "",
    ]
    return "\n".join(lines)
