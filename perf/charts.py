"""PNG charts of one run or of several overlaid (``chat-perf compare``).

Every function takes a list of (label, summary) so the single-run and the comparison
charts are the same code: one run gets percentile bands, several get one line each.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from perf import histogram as hg

Run = tuple[str, dict[str, Any]]
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
BANDS = (("p50", "p90", 0.55), ("p90", "p99", 0.35), ("p99", "p99.9", 0.18))
DPI = 110


def _ms_formatter(value: float, _pos: int) -> str:
    if value >= 1000:
        return f"{value / 1000:g} s"
    if value >= 1:
        return f"{value:g} ms"
    return f"{value * 1000:g} µs"


def _no_label(_value: float, _pos: int) -> str:
    return ""


def _finish(fig: Any, ax: Any, path: Path, title: str, subtitle: str) -> Path:
    ax.set_title(title, fontsize=12, fontweight="bold", loc="left")
    if subtitle:
        fig.text(0.01, 0.005, subtitle, fontsize=7.5, color="#555555", ha="left", va="bottom")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _subtitle(runs: list[Run]) -> str:
    s = runs[0][1]
    scn = s["scenario"]
    load = "saturate" if scn.get("saturate") else f"{scn.get('rate') or 0:g} msg/s"
    if scn.get("storm"):
        load = "registration storm"
    return (
        f"scenario {scn['name']}: {scn['clients']} clients, {scn['rooms']} rooms, "
        f"{scn['senders']} senders, {load}, {scn['msg_size']} B bodies"
    )


def latency_over_time(runs: list[Run], path: Path) -> Path | None:
    """Percentile bands per time bucket (one run) or p50/p99 lines (several runs)."""
    if not any(any(v is not None for v in s["series"]["p50_ms"]) for _, s in runs):
        return None
    fig, ax = plt.subplots(figsize=(10, 5))
    single = len(runs) == 1
    for i, (label, s) in enumerate(runs):
        ser = s["series"]
        t = ser["t_s"]
        color = COLORS[i % len(COLORS)]
        pts = [(j, x) for j, x in enumerate(t) if ser["p50_ms"][j] is not None]
        ts = [x for _, x in pts]

        def col(key: str, pts: list = pts, ser: dict = ser) -> list[float]:
            return [ser[f"{key}_ms"][j] for j, _ in pts]

        if single:
            for lo, hi, alpha in BANDS:
                ax.fill_between(ts, col(lo), col(hi), color=color, alpha=alpha, step="pre",
                                label=f"{lo}-{hi}", linewidth=0)  # fmt: skip
            ax.step(ts, col("p50"), color=color, where="pre", linewidth=1.6, label="p50")
            ax.step(ts, col("p99"), color="#333333", where="pre", linewidth=1.0, label="p99")
            ax.plot(ts, col("max"), ".", color="#d62728", markersize=3.5, label="max")
        else:
            ax.step(ts, col("p50"), color=color, where="pre", linewidth=1.6, label=f"{label} p50")
            ax.step(ts, col("p99"), color=color, where="pre", linewidth=1.2, linestyle="--",
                    label=f"{label} p99")  # fmt: skip
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_ms_formatter))
    ax.set_xlabel("time since start of traffic (s)")
    ax.set_ylabel("latency (receive - scheduled send)")
    ax.legend(loc="upper left", fontsize=8, ncol=3 if single else 2, framealpha=0.85)
    title = f"Latency over time — {runs[0][0]}" if single else "Latency over time"
    return _finish(fig, ax, path, title, _subtitle(runs))


def _minor_ms_formatter(value: float, pos: int) -> str:
    """Label the 2x, 3x and 5x minor ticks of a log axis (one spanning little more than a
    decade has few major ticks, and matplotlib's default labels read "2x10^2")."""
    if value <= 0:
        return ""
    lead = round(value / 10 ** math.floor(math.log10(value)))
    return _ms_formatter(value, pos) if lead in (2, 3, 5) else ""


def latency_cdf(
    runs: list[Run],
    path: Path,
    key: str = "histogram",
    what: str = "Latency",
    counted: str = "messages",
) -> Path | None:
    """Cumulative distribution, log latency axis, logit probability axis (shows the tail)."""
    curves = []
    for label, s in runs:
        xs, ys = hg.cdf_points(hg.decode(s.get(key)))
        if xs:
            curves.append((label, xs, ys))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(10, 5))
    for i, (label, xs, ys) in enumerate(curves):
        # The logit scale cannot show exactly 0 or 1; clamp to the resolution of the data.
        ys = [min(max(y, 1e-6), 1 - 1e-6) for y in ys]
        ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], linewidth=1.8, label=label)
    ax.set_xscale("log")
    ax.set_yscale("logit")
    ax.xaxis.set_major_formatter(FuncFormatter(_ms_formatter))
    low = min(xs[0] for _, xs, _ in curves)
    high = max(xs[-1] for _, xs, _ in curves)
    narrow = low > 0 and high / low < 30
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_ms_formatter if narrow else _no_label))
    ax.set_yticks([0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v * 100:g}%"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
    for q in (0.5, 0.99, 0.999):
        ax.axhline(q, color="#999999", linewidth=0.6, linestyle=":")
    ax.set_xlabel(f"{what.lower()} (log scale)")
    ax.set_ylabel(f"fraction of {counted} at or below (logit scale)")
    ax.legend(loc="lower right", fontsize=9)
    return _finish(fig, ax, path, f"{what} distribution (CDF)", _subtitle(runs))


def throughput(runs: list[Run], path: Path) -> Path | None:
    """Messages sent and deliveries per second (registrations for a storm)."""
    storm = runs[0][1]["scenario"].get("storm")
    fig, ax = plt.subplots(figsize=(10, 5))
    drew = False
    for i, (label, s) in enumerate(runs):
        ser = s["series"]
        color = COLORS[i % len(COLORS)]
        name = "" if len(runs) == 1 else f"{label} "
        if storm:
            ax.step(ser["t_s"], ser["registrations_per_s"], where="pre", color=color,
                    linewidth=1.6, label=f"{name}registrations/s")  # fmt: skip
            drew = True
            continue
        if any(ser["deliveries_per_s"]):
            ax.step(ser["t_s"], ser["deliveries_per_s"], where="pre", color=color, linewidth=1.8,
                    label=f"{name}deliveries/s")  # fmt: skip
            drew = True
        if any(ser["sent_per_s"]):
            ax.step(ser["t_s"], ser["sent_per_s"], where="pre", color=color, linewidth=1.0,
                    linestyle="--", label=f"{name}sent/s")  # fmt: skip
            drew = True
    if not drew:
        plt.close(fig)
        return None
    window = runs[0][1]["duration_s"]
    if window and not storm:
        ax.axvline(window, color="#888888", linestyle=":", linewidth=1)
        ax.text(
            window, ax.get_ylim()[1] * 0.98, " end of sending", fontsize=8, va="top", color="#666"
        )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("per second")
    ax.legend(loc="best", fontsize=8, ncol=2, framealpha=0.9)
    title = "Registrations over time" if storm else "Throughput over time"
    return _finish(fig, ax, path, title, _subtitle(runs))


def server_resources(runs: list[Run], path: Path) -> Path | None:
    """Server CPU (% of one core) and resident memory over time, when the pid was known."""
    have = [(label, s) for label, s in runs if s["series"].get("server_t_s")]
    if not have:
        return None
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for i, (label, s) in enumerate(have):
        ser = s["series"]
        color = COLORS[i % len(COLORS)]
        ax1.plot(ser["server_t_s"], ser["server_cpu_percent"], color=color, label=label)
        ax2.plot(ser["server_t_s"], ser["server_rss_mib"], color=color, label=label)
    ax1.set_ylabel("CPU (% of one core)")
    ax1.set_ylim(bottom=0)
    ax2.set_ylabel("RSS (MiB)")
    ax2.set_xlabel("time since start of traffic (s)")
    ax1.legend(fontsize=8, loc="upper left")
    ax2.grid(True, alpha=0.35)
    return _finish(fig, ax1, path, "Server CPU and memory", _subtitle(runs))


def draw_all(runs: list[Run], out: Path, prefix: str = "") -> list[Path]:
    """Every chart that has data, as PNG files in ``out``; returns their paths."""
    made = [
        latency_over_time(runs, out / f"{prefix}latency_over_time.png"),
        latency_cdf(runs, out / f"{prefix}latency_cdf.png"),
        throughput(runs, out / f"{prefix}throughput.png"),
        server_resources(runs, out / f"{prefix}server_resources.png"),
    ]
    if any(s["scenario"].get("storm") for _, s in runs):
        made.append(
            latency_cdf(
                runs,
                out / f"{prefix}connect_cdf.png",
                "connect_histogram",
                "Time to 001 (welcome)",
                counted="clients",
            )
        )
    return [p for p in made if p is not None]
