"""Throughput and resource charts: messages sent and deliveries per second (each on its
own axis) with client failures and the loss totals; a storm's registrations; the
server's CPU and memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from perf.charts.axes import count_axis, legend_outside
from perf.charts.frame import COLORS, Run, activity_end, figure, finish, traffic


def _totals_box(ax: Any, runs: list[Run]) -> None:
    lines = []
    for label, s in runs:
        acc, c = s["accounting"], s["clients"]
        who = f"{label}: " if len(runs) > 1 else ""
        impossible = s["latency_ms"].get("impossible") or 0
        disagreements = acc.get("order_disagreements") or 0
        lines.append(
            f"{who}lost {acc['lost']:,} ({acc['loss_rate']:.3%}) · dup {acc['duplicates']:,} · "
            f"reordered {acc['reordered']:,} · disconnected {c.get('disconnected', 0):,} · "
            f"failed clients {c.get('failed', 0):,}"
            + (f" · order disagreements {disagreements:,}" if disagreements else "")
            + (f" · impossible latencies {impossible:,}" if impossible else "")
        )
    box = {"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "#cccccc"}
    ax.text(0.01, 0.95, "\n".join(lines), transform=ax.transAxes, fontsize=8, va="top", bbox=box)


def throughput(runs: list[Run], path: Path) -> Path | None:
    """Messages sent, deliveries (each on its own axis) and client failures per
    interval, with loss and disconnect totals; registrations for a storm."""
    if all(s["scenario"].get("storm") for _, s in runs):
        return registrations(runs, path)
    runs = traffic(runs)
    if not any(any(s["series"]["sent_per_s"]) for _, s in runs):
        return None
    fig, (ax1, ax2, ax3) = figure(3, 7.5, sharex=True, gridspec_kw={"height_ratios": (2, 2, 1.2)})
    for i, (label, s) in enumerate(runs):
        ser = s["series"]
        color = COLORS[i % len(COLORS)]
        name = label if len(runs) > 1 else None
        ax1.step(ser["t_s"], ser["sent_per_s"], where="pre", color=color, linewidth=1.4,
                 label=name)  # fmt: skip
        ax2.step(ser["t_s"], ser["deliveries_per_s"], where="pre", color=color, linewidth=1.6,
                 label=name)  # fmt: skip
        failures = ser.get("client_failures") or [0] * len(ser["t_s"])
        width = ser["interval_s"] * 0.8 / len(runs)
        ax3.bar([t - ser["interval_s"] + width * (i + 0.5) for t in ser["t_s"]], failures,
                width=width, align="center", color=color, label=name)  # fmt: skip
    for ax, what in ((ax1, "messages sent per s"), (ax2, "deliveries per s")):
        ax.set_ylim(bottom=0)
        count_axis(ax.yaxis)
        ax.set_ylabel(what)
    window = max(s["duration_s"] for _, s in runs)
    for ax in (ax1, ax2, ax3):
        ax.axvline(window, color="#888888", linestyle=":", linewidth=1)
    ax1.annotate("end of sending ", xy=(window, 1.0), xycoords=("data", "axes fraction"),
                 fontsize=8, va="top", ha="right", color="#666666")  # fmt: skip
    ax3.set_ylabel("clients closed\n(refused, cut, failed)")
    ax3.set_ylim(bottom=0, top=max(1, ax3.get_ylim()[1]))
    ax3.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
    ax3.set_xlabel("time since start of traffic (s)")
    ax3.set_xlim(left=0)
    _totals_box(ax3, runs)
    if len(runs) > 1:
        legend_outside(ax1)
    return finish(fig, [ax1, ax2, ax3], path, "Throughput, errors and loss over time", runs)


def registrations(runs: list[Run], path: Path) -> Path | None:
    """A storm: registrations and failures per interval, zoomed to when they happened."""
    fig, (ax1, ax2) = figure(2, 6.0, sharex=True, gridspec_kw={"height_ratios": (2, 1)})
    for i, (label, s) in enumerate(runs):
        ser = s["series"]
        color = COLORS[i % len(COLORS)]
        name = label if len(runs) > 1 else None
        failures = ser.get("client_failures") or [0] * len(ser["t_s"])
        width = ser["interval_s"] * 0.8 / len(runs)
        ax1.bar([t - ser["interval_s"] + width * (i + 0.5) for t in ser["t_s"]],
                ser["registrations_per_s"], width=width, color=color, label=name)  # fmt: skip
        ax2.bar([t - ser["interval_s"] + width * (i + 0.5) for t in ser["t_s"]], failures,
                width=width, color=color, label=name)  # fmt: skip
    ax1.set_ylim(bottom=0)
    count_axis(ax1.yaxis)
    ax1.set_ylabel("registrations (001) per s")
    ax2.set_ylabel("clients refused\nor failed")
    ax2.set_ylim(bottom=0, top=max(1, ax2.get_ylim()[1]))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
    ax2.set_xlim(0, activity_end(runs))
    ax2.set_xlabel("time since the storm began (s)")
    if len(runs) > 1:
        legend_outside(ax1)
    return finish(fig, [ax1, ax2], path, "Registrations over time", runs)


def server_resources(runs: list[Run], path: Path) -> Path | None:
    """Server CPU (% of one core) and resident memory over time, when the pid was known."""
    have = [(label, s) for label, s in runs if s["series"].get("server_t_s")]
    if not have:
        return None
    fig, (ax1, ax2) = figure(2, 6.0, sharex=True)
    for i, (label, s) in enumerate(have):
        ser = s["series"]
        color = COLORS[i % len(COLORS)]
        name = label if len(have) > 1 else None
        ax1.plot(ser["server_t_s"], ser["server_cpu_percent"], color=color, label=name)
        ax2.plot(ser["server_t_s"], ser["server_rss_mib"], color=color, label=name)
    ax1.set_ylabel("CPU (% of one core)")
    ax1.set_ylim(bottom=0, top=max(100.0, ax1.get_ylim()[1]))
    ax2.set_ylabel("resident memory (MiB)")
    ax2.set_ylim(bottom=0, top=ax2.get_ylim()[1] * 1.1)
    ax2.set_xlabel("time since start of traffic (s; sampled every 0.25 s)")
    for ax in (ax1, ax2):
        ax.axvline(0, color="#888888", linestyle=":", linewidth=1)  # traffic starts
    if len(have) > 1:
        legend_outside(ax1)
    return finish(fig, [ax1, ax2], path, "Server CPU and memory (with its child processes)", have)
