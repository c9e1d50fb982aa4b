"""The data files of a run: latencies.csv, latency_data.txt, percentiles.txt and
summary.json (whose numbers ``perf.summary`` computes)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from perf import histogram as hg
from perf.coordinator import RunData
from perf.summary import build_summary
from perf.verdict import IMPOSSIBLE, verdict
from perf.verdict import run_warnings as _warnings

__all__ = [
    "IMPOSSIBLE",
    "_warnings",
    "build_summary",
    "load_summary",
    "verdict",
    "write_csv",
    "write_json",
    "write_latency_data",
    "write_percentiles",
]


def write_csv(data: RunData, path: Path) -> int:
    """Raw per-message rows, sorted by receive time (may be a uniform sample)."""
    rows = [row for r in data.results for row in r["raw_rows"]]
    rows.sort(key=lambda row: row[0])
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["recv_time_s", "latency_us", "sender", "seq", "room", "receiver"])
        for t, lat, sid, seq, room, receiver in rows:
            w.writerow([f"{t / 1e6:.6f}", lat, sid, seq, room, receiver])
    return len(rows)


def write_latency_data(data: RunData, summary: dict[str, Any], path: Path) -> int:
    """``latency_data.txt``: one latency in milliseconds per line, in receive order.

    The deliveries of latencies.csv (every one, or the same uniform sample, stated in a
    ``#`` line); for a storm, every client's time from connect to 001, ascending. Impossible values
    (see ``verdict``) are left out and counted in that line.
    """
    head: list[str] = []
    if summary["scenario"].get("storm"):
        values = sorted(v for r in data.results for v in r.get("welcome_us", []))
    else:
        rows = sorted((row for r in data.results for row in r["raw_rows"]), key=lambda x: x[0])
        values = [row[1] for row in rows]
        info = summary["latencies_csv"]
        if info["sampled"]:
            head.append(
                f"sampled: 1 delivery in {info['stride']} ({info['rows']:,} of {info['of']:,}), "
                "the same rows as latencies.csv"
            )
    kept = [v for v in values if hg.LOWEST_US <= v <= hg.HIGHEST_US]
    if len(kept) < len(values):
        head.append(f"{len(values) - len(kept):,} impossible values (< 1 µs or > 1 h) left out")
    with path.open("w") as f:
        if head:
            f.write("# " + "; ".join(head) + "\n")
        f.writelines(f"{v / 1000:.3f}\n" for v in kept)
    return len(kept)


def write_percentiles(summary: dict[str, Any], path: Path) -> None:
    """``percentiles.txt``: HdrHistogram's percentile table of the run's latencies (or,
    for a storm, of the times to 001), in milliseconds."""
    if summary["scenario"].get("storm"):
        hist = hg.decode(summary.get("connect_histogram"))
        title = f"{summary['label']}: time from connect to 001 (welcome) per client, ms"
    else:
        hist = hg.decode(summary.get("histogram"))
        title = f"{summary['label']}: delivery latency (receive time - scheduled send time), ms"
    path.write_text(hg.percentile_table(hist, title))


def write_json(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


def load_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no summary.json (not a chat-perf run directory?)")
    return json.loads(path.read_text())
