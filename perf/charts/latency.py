"""Latency charts: the headline plot (latency at every percentile, then p99 and max over
time), percentile bands over time, and the cumulative distribution.

p50 / p99 / p99.9 are marked wherever latency is shown, on log axes of plain
milliseconds. A registration storm has no message latency: its headline plot shows the
time from connect to 001 instead, and registrations over time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from perf import histogram as hg
from perf.charts.axes import count_axis, count_text, legend_outside, ms_text, xlim_log, ylim_log
from perf.charts.frame import (
    COLORS,
    Run,
    activity_end,
    figure,
    finish,
    incomplete,
    label_box,
    traffic,
)

BANDS = (("p50", "p90", 0.55), ("p90", "p99", 0.35), ("p99", "p99.9", 0.18))
MARKED = (("p50", "p50"), ("p99", "p99"), ("p99.9", "p99.9"))


def _mark_levels(ax: Any, pct: dict[str, Any], color: str = "#444444") -> None:
    """Dotted horizontal lines at the whole run's p50 / p99 / p99.9, labelled at the
    right, outside the data (labels of close levels are moved apart)."""
    placed: list[float] = []
    for key, name in MARKED:
        value = pct.get(key)
        if value is None:
            continue
        ax.axhline(value, color=color, linewidth=0.8, linestyle=":", zorder=1)
        # Points apart on a log axis: nudge a label up when it would touch the last one.
        shift = 0.0
        if placed and value > 0 and placed[-1] > 0:
            low, high = ax.get_ylim()
            gap = math.log(value / placed[-1]) / math.log(high / low) * ax.bbox.height
            shift = max(0.0, 11 - gap * 72 / ax.figure.dpi)
        placed.append(value)
        ax.annotate(
            f"{name} (run) {ms_text(value)} ms", xy=(1.0, value),
            xycoords=("axes fraction", "data"), xytext=(4, shift), textcoords="offset points",
            fontsize=7.5, va="center", color=color,
        )  # fmt: skip


def latency_over_time(runs: list[Run], path: Path) -> Path | None:
    """Percentile bands per time bucket (one run) or p50/p99 lines (several runs)."""
    runs = [r for r in traffic(runs) if any(v is not None for v in r[1]["series"]["p50_ms"])]
    if not runs:
        return None
    fig, ax = figure()
    single = len(runs) == 1
    values: list[float] = []
    for i, (label, s) in enumerate(runs):
        ser = s["series"]
        t = ser["t_s"]
        color = COLORS[i % len(COLORS)]
        pts = [(j, x) for j, x in enumerate(t) if ser["p50_ms"][j] is not None]
        ts = [x for _, x in pts]

        def col(key: str, pts: list = pts, ser: dict = ser) -> list[float]:
            return [ser[f"{key}_ms"][j] for j, _ in pts]

        values += col("p50") + col("max")
        if single:
            for lo, hi, alpha in BANDS:
                ax.fill_between(ts, col(lo), col(hi), color=color, alpha=alpha, step="pre",
                                label=f"{lo} to {hi}", linewidth=0)  # fmt: skip
            ax.step(ts, col("p50"), color=color, where="pre", linewidth=1.6, label="p50")
            ax.step(ts, col("p99"), color="#333333", where="pre", linewidth=1.0, label="p99")
            ax.plot(ts, col("max"), ".", color="#d62728", markersize=3.5, label="max")
        else:
            ax.step(ts, col("p50"), color=color, where="pre", linewidth=1.6, label=f"{label} p50")
            ax.step(ts, col("p99"), color=color, where="pre", linewidth=1.2, linestyle="--",
                    label=f"{label} p99")  # fmt: skip
    ax.set_yscale("log")
    ylim_log(ax, min(values), max(values))
    ax.set_xlim(left=0)
    ax.set_xlabel("time since start of traffic (s)")
    ax.set_ylabel("latency (ms, log scale)")
    if single:
        _mark_levels(ax, runs[0][1]["latency_ms"])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=6, fontsize=8, frameon=False)
    title = f"Latency over time — {runs[0][0]}" if single else "Latency over time"
    return finish(fig, [ax], path, title, runs)


def latency_cdf(
    runs: list[Run],
    path: Path,
    key: str = "histogram",
    what: str = "Latency",
    counted: str = "messages",
    pct_key: tuple[str, ...] = ("latency_ms",),
) -> Path | None:
    """Cumulative distribution, log latency axis, logit probability axis (shows the tail),
    each run's p50 / p99 / p99.9 marked on its curve."""
    curves = []
    for label, s in runs:
        xs, ys = hg.cdf_points(hg.decode(s.get(key)))
        if xs:
            pct: Any = s
            for part in pct_key:
                pct = (pct or {}).get(part)
            curves.append((label, xs, ys, pct or {}))
    if not curves:
        return None
    fig, ax = figure()
    for i, (label, xs, ys, pct) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        # The logit scale cannot show exactly 0 or 1; clamp to the resolution of the data.
        ys = [min(max(y, 1e-6), 1 - 1e-6) for y in ys]
        ax.step(xs, ys, where="post", color=color, linewidth=1.8, label=label)
        for pkey, name in MARKED:
            value = pct.get(pkey)
            if value is None:
                continue
            q = float(pkey[1:]) / 100
            ax.plot([value], [q], "o", color=color, markersize=5, zorder=5)
            # Below and right of the point: under a rising CDF, where no curve runs.
            ax.annotate(
                f"{name} {ms_text(value)} ms" if len(curves) == 1 else f"{ms_text(value)}",
                xy=(value, q), xytext=(8, -12 - 11 * i), textcoords="offset points",
                fontsize=8, color=color, bbox=label_box(),
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("logit")
    low = min(xs[0] for _, xs, _, _ in curves)
    high = max(xs[-1] for _, xs, _, _ in curves)
    xlim_log(ax, low, high)
    ticks = [0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999]
    # Up to the last sample's level: 99.9 % is only a tick when a run has the samples.
    most = max(s_count for s_count in (_count(s, key) for _, s in runs))
    ax.set_ylim(0.005, min(1 - 1e-6, max(0.995, 1 - 1 / max(most, 2))))
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v * 100:g} %"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    for q in (0.5, 0.99, 0.999):
        ax.axhline(q, color="#999999", linewidth=0.6, linestyle=":")
    ax.set_xlabel(f"{what.lower()} (ms, log scale)")
    ax.set_ylabel(f"{counted} at or below (logit scale)")
    if len(curves) > 1:
        legend_outside(ax)
    title = f"{what} distribution (CDF)" + (f" — {curves[0][0]}" if len(curves) == 1 else "")
    return finish(fig, [ax], path, title, runs)


def _count(s: dict[str, Any], key: str) -> int:
    return hg.decode(s.get(key)).get_total_count()


def _spectrum(hist: Any) -> tuple[list[float], list[float]]:
    """(nines, latency ms): the value at each percentile, x = -log10(1 - percentile),
    the run's largest value at the last sample's percentile."""
    xs, ys = hg.cdf_points(hist)
    total = hist.get_total_count()
    top = 1 - 1 / max(total, 2)
    nines = [0.0] + [-math.log10(1 - min(y, top)) for y in ys[:-1]] + [-math.log10(1 - top)]
    values = [xs[0], *xs]
    return nines, values


def _nines_axis(ax: Any, top: float) -> None:
    marks = [(0.0, "0 %"), (math.log10(2), "50 %"), (1.0, "90 %"), (2.0, "99 %"),
             (3.0, "99.9 %"), (4.0, "99.99 %"), (5.0, "99.999 %"), (6.0, "99.9999 %")]  # fmt: skip
    # 0 % crowds 50 % once the axis spans several nines.
    shown = [(x, t) for x, t in marks if x <= max(top, 1.0) + 1e-9 and (x > 0 or top < 3)]
    ax.xaxis.set_major_locator(FixedLocator([x for x, _ in shown]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: dict(shown).get(v, "")))
    ax.set_xlim(0, max(top, 1.0) * 1.04)


def latency_plot(runs: list[Run], path: Path) -> Path | None:
    """The chart to see first: latency at every percentile (HdrHistogram's plot), p50,
    p99, p99.9 and max marked, the headline numbers and any problem in the title; below
    it, p99 and max over time. For a storm: time to 001 and registrations over time."""
    storm = all(s["scenario"].get("storm") for _, s in runs)
    key, pct_key = ("connect_histogram", "connect_ms") if storm else ("histogram", "latency_ms")
    curves = []
    for label, s in runs:
        hist = hg.decode(s.get(key))
        if hist.get_total_count():
            pct = s[pct_key]["welcome"] if storm else s[pct_key]
            curves.append((label, s, _spectrum(hist), pct))
    if not curves:
        return None
    fig, (ax, ax2) = figure(2, 7.0, gridspec_kw={"height_ratios": (2.2, 1)})
    top = 0.0
    values: list[float] = []
    for i, (label, _s, (nines, vals), pct) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        ax.step(nines, vals, where="pre", color=color, linewidth=1.8, label=label)
        top = max(top, nines[-1])
        values += vals
        marks = [*MARKED, ("max", "max")]
        last_x = -1.0
        for k, (pkey, name) in enumerate(marks):
            value = pct.get(pkey)
            if value is None:
                continue
            x = nines[-1] if pkey == "max" else -math.log10(1 - float(pkey[1:]) / 100)
            if x > nines[-1] + 1e-9:
                continue  # too few samples for this percentile: it is the max
            ax.plot([x], [value], "o", color=color, markersize=5, zorder=5)
            text = f"{name} {ms_text(value)} ms" if len(curves) == 1 else ms_text(value)
            # Above and left of the point (over a rising curve nothing is drawn); p50 sits
            # near the left edge, so its label goes below and right instead.
            # So is the max when it is close to p99.9 (few samples beyond it).
            below = k == 0 or (pkey == "max" and x - last_x < 0.35)
            last_x = x
            ax.annotate(
                text, xy=(x, value), xytext=(6, -16 - 12 * i) if below else (-6, 8 + 12 * i),
                textcoords="offset points", ha="left" if below else "right", fontsize=8.5,
                color=color, fontweight="bold" if len(curves) == 1 else "normal",
                bbox=label_box(),
            )  # fmt: skip
    ax.set_yscale("log")
    ylim_log(ax, min(values), max(values) * 1.3)
    _nines_axis(ax, top)
    what = "time from connect to 001 (welcome)" if storm else "delivery latency"
    ax.set_ylabel(f"{what} (ms, log scale)")
    ax.set_xlabel("percentile (of " + ("clients" if storm else "deliveries") + ")")
    if len(curves) > 1:
        legend_outside(ax)
    # Below: the same over time.
    for i, (label, s, _, _) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        ser = s["series"]
        name = "" if len(curves) == 1 else f"{label} "
        if storm:
            t, cum, total = [], [], 0
            for x, rate in zip(ser["t_s"], ser["registrations_per_s"], strict=True):
                total += rate * ser["interval_s"]
                t.append(x)
                cum.append(total)
            ax2.step([0.0, *t], [0, *cum], where="post", color=color, label=f"{name}registered")
            ax2.axhline(s["clients"]["planned"], color=color, linestyle="--", linewidth=0.8,
                        label=f"{name}planned")  # fmt: skip
        else:
            pts = [(x, p, m) for x, p, m in zip(ser["t_s"], ser["p99_ms"], ser["max_ms"],
                                                strict=True) if p is not None]  # fmt: skip
            if pts:
                ax2.step([x for x, _, _ in pts], [p for _, p, _ in pts], where="pre",
                         color=color, label=f"{name}p99")  # fmt: skip
                ax2.step([x for x, _, _ in pts], [m for _, _, m in pts], where="pre",
                         color=color, alpha=0.45, linewidth=0.9, label=f"{name}max")  # fmt: skip
    if storm:
        ax2.set_ylabel("clients registered")
        ax2.set_ylim(bottom=0)
        count_axis(ax2.yaxis)
        ax2.set_xlim(0, activity_end(runs))
        ax2.set_xlabel("time since the storm began (s)")
    else:
        ax2.set_yscale("log")
        lows = [v for _, s, _, _ in curves for v in s["series"]["p99_ms"] if v]
        highs = [v for _, s, _, _ in curves for v in s["series"]["max_ms"] if v]
        if lows and highs:
            ylim_log(ax2, min(lows), max(highs))
        ax2.set_ylabel("latency (ms, log)")
        ax2.set_xlabel("time since start of traffic (s)")
        ax2.set_xlim(left=0)
    legend_outside(ax2)
    title = ("Time to register" if storm else "Delivery latency") + (
        f" — {curves[0][0]}" if len(curves) == 1 else ""
    )
    if len(curves) == 1:
        ax.set_title(_headline(curves[0][1]), fontsize=9, loc="left",
                     color="#c00000" if incomplete(runs) else "#333333")  # fmt: skip
    return finish(fig, [ax, ax2], path, title, runs)


def _headline(s: dict[str, Any]) -> str:
    """The numbers of one run in one line, problems first."""
    parts = []
    c = s["clients"]
    if c["registered"] < c["planned"]:
        parts.append(f"INCOMPLETE: {c['registered']:,} of {c['planned']:,} clients registered")
    if s["scenario"].get("storm"):
        st = s.get("storm") or {}
        if st.get("all_registered_s") is not None:
            who = "all" if c["registered"] >= c["planned"] else "the"
            parts.append(
                f"{who} {c['registered']:,} registered within {st['all_registered_s']:.3f} s"
            )
        return " · ".join(parts)
    tp, acc = s["throughput"], s["accounting"]
    parts += [
        f"{count_text(tp['sent_per_s'])} msgs/s sent",
        f"{count_text(tp['deliveries_per_s'])} deliveries/s",
        f"lost {acc['lost']:,}",
        f"disconnected {c.get('disconnected', 0):,}",
    ]
    return " · ".join(parts)
