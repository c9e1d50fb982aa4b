"""The files of an output directory: which ones chat-perf writes, clearing an earlier
run's, and writing a run's in order (data first, then charts, then the reports that
show them)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perf import charts, report, results

if TYPE_CHECKING:
    from perf.coordinator import RunData

# Everything a run or a comparison may write, including charts of runs that had data
# this one lacks (a storm's connect chart, a server's resources): a file left from an
# earlier run would otherwise sit beside the new ones as if it belonged to them.
DATA_FILES = (
    "summary.json",
    "latencies.csv",
    "latency_data.txt",
    "percentiles.txt",
    "report.md",
    "report.html",
)
RUN_FILES = (*DATA_FILES, *charts.CHART_FILES)
COMPARE_FILES = (
    "compare.md",
    "compare.html",
    "percentiles.txt",
    *(charts.chart_file(name, "compare_") for name in charts.CHART_FILES),
)


def clear_stale(out: Path, names: Iterable[str]) -> list[Path]:
    """Remove the files chat-perf writes from ``out`` (and nothing else); returns them."""
    removed = []
    for name in names:
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def write_run(data: RunData, summary: dict[str, Any], out: Path, title: str) -> list[Path]:
    """Every file of one run into ``out``; returns the charts drawn."""
    results.write_csv(data, out / "latencies.csv")
    results.write_latency_data(data, summary, out / "latency_data.txt")
    results.write_percentiles(summary, out / "percentiles.txt")
    results.write_json(summary, out / "summary.json")
    runs = [(summary["label"], summary)]
    made = charts.draw_all(runs, out)
    report.write_markdown(runs, made, out / "report.md", title)
    report.write_html(runs, made, out / "report.html", title)
    return made
