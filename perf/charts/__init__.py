"""PNG charts of one run or of several overlaid (``chat-perf compare``).

Every function takes a list of (label, summary) so the single-run and the comparison
charts are the same code: one run gets percentile bands, several get one line each.

Rules every chart keeps: each axis says what it shows and in which unit; latency ticks
are plain milliseconds ("0.5", "2", "10") with at least three labels however narrow the
range; p50/p99/p99.9 are marked where latency is shown; quantities of different size
(messages sent, deliveries) get axes of their own; errors, loss and disconnects are
shown, not only rates; a chart spans the time something happened; legends sit outside
the data; the footer names each run's scenario with the clients that really registered.

``axes`` keeps the tick and axis rules, ``frame`` the figure, title and footer,
``latency`` and ``throughput`` the charts themselves; this module names the files and
draws them all.
"""

from __future__ import annotations

from pathlib import Path

from perf.charts.axes import LOG_STEPS, log_ticks, ms_log_axis, ms_text
from perf.charts.frame import COLORS, DPI, Run, run_description
from perf.charts.latency import BANDS, MARKED, latency_cdf, latency_over_time, latency_plot
from perf.charts.throughput import registrations, server_resources, throughput

__all__ = [
    "BANDS",
    "CHART_FILES",
    "COLORS",
    "DPI",
    "HEADLINE",
    "LOG_STEPS",
    "MARKED",
    "Run",
    "chart_file",
    "draw_all",
    "latency_cdf",
    "latency_over_time",
    "latency_plot",
    "log_ticks",
    "ms_log_axis",
    "ms_text",
    "registrations",
    "run_description",
    "server_resources",
    "throughput",
]

HEADLINE = "latency_plot.png"
CHART_FILES = (
    HEADLINE,
    "latency_over_time.png",
    "latency_cdf.png",
    "throughput.png",
    "server_resources.png",
    "connect_cdf.png",
)


def chart_file(name: str, prefix: str) -> str:
    """The file name of chart ``name``: ``latency_plot.png`` is never prefixed (it is the
    one a reader opens first, in a run's folder and in a comparison's alike)."""
    return name if name == HEADLINE else f"{prefix}{name}"


def draw_all(runs: list[Run], out: Path, prefix: str = "") -> list[Path]:
    """Every chart that has data, as PNG files in ``out``, the headline first."""
    made = [
        latency_plot(runs, out / chart_file(HEADLINE, prefix)),
        latency_over_time(runs, out / chart_file("latency_over_time.png", prefix)),
        latency_cdf(runs, out / chart_file("latency_cdf.png", prefix)),
        throughput(runs, out / chart_file("throughput.png", prefix)),
        server_resources(runs, out / chart_file("server_resources.png", prefix)),
    ]
    if any(s["scenario"].get("storm") for _, s in runs):
        made.append(
            latency_cdf(
                runs,
                out / chart_file("connect_cdf.png", prefix),
                "connect_histogram",
                "Time to 001 (welcome)",
                counted="clients",
                pct_key=("connect_ms", "welcome"),
            )
        )
    return [p for p in made if p is not None]
