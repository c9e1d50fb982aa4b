"""PNG charts of one run or of several overlaid (``chat-perf compare``).

Every function takes a list of (label, summary) so the single-run and the comparison
charts are the same code: one run gets percentile bands, several get one line each.

Rules every chart keeps: each axis says what it shows and in which unit; latency ticks
are plain milliseconds ("0.5", "2", "10") with at least three labels however narrow the
range; p50/p99/p99.9 are marked where latency is shown; quantities of different size
(messages sent, deliveries) get axes of their own; errors, loss and disconnects are
shown, not only rates; a chart spans the time something happened; legends sit outside
the data; the footer names each run's scenario with the clients that really registered.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from perf import histogram as hg

Run = tuple[str, dict[str, Any]]
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
BANDS = (("p50", "p90", 0.55), ("p90", "p99", 0.35), ("p99", "p99.9", 0.18))
MARKED = (("p50", "p50"), ("p99", "p99"), ("p99.9", "p99.9"))
DPI = 110
HEADLINE = "latency_plot.png"
CHART_FILES = (
    HEADLINE,
    "latency_over_time.png",
    "latency_cdf.png",
    "throughput.png",
    "server_resources.png",
    "connect_cdf.png",
)
# Steps within a decade for log-axis ticks, coarsest first: the first giving enough
# labels inside the data's range is used.
LOG_STEPS = ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))


def chart_file(name: str, prefix: str) -> str:
    """The file name of chart ``name``: ``latency_plot.png`` is never prefixed (it is the
    one a reader opens first, in a run's folder and in a comparison's alike)."""
    return name if name == HEADLINE else f"{prefix}{name}"


# -- axes ---------------------------------------------------------------------------------


def ms_text(value: float) -> str:
    """A millisecond value as a tick label: no unit (the axis label has it), no powers."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.4g}"
    return f"{value:.3g}"


def _count_text(value: float) -> str:
    """1,500 / 29.3 k / 2.9 M: a count or rate as a tick label."""
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e4, " k")):
        if abs(value) >= scale:
            return f"{value / (scale if scale != 1e4 else 1e3):.3g}{suffix}"
    return f"{value:,.0f}" if value == int(value) else f"{value:.3g}"


def log_ticks(low: float, high: float, want: int = 4) -> list[float]:
    """Round values (1-2-5 and finer) between ``low`` and ``high`` for a log axis; at
    least ``want`` where the range allows, at most about a dozen."""
    low, high = min(low, high), max(low, high)
    if low <= 0:
        low = high / 1e3 if high > 0 else 1e-3
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks: list[float] = []
    for steps in LOG_STEPS:
        ticks = [
            round(m * 10.0**k, 12)
            for k in range(first, last + 1)
            for m in steps
            if low <= round(m * 10.0**k, 12) <= high
        ]
        if len(ticks) >= want:
            break
    if len(ticks) < 3:  # a range too narrow for round values: evenly spaced ones
        ticks = [t for t in MaxNLocator(5).tick_values(low, high) if low <= t <= high]
    while len(ticks) > 12:
        ticks = ticks[::2]
    return ticks


def ms_log_axis(axis: Any, low: float, high: float) -> None:
    """A log axis of milliseconds spanning ``low``..``high`` (with a margin), labelled."""
    low, high = max(low, 1e-4), max(high, low * 1.01)
    margin = (high / low) ** 0.04 if high > low else 1.1
    lo, hi = low / max(margin, 1.05), high * max(margin, 1.05)
    axis.set_view_interval(lo, hi, ignore=True)
    ticks = log_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _p: ms_text(v)))
    axis.set_minor_formatter(NullFormatter())


def _ylim_log(ax: Any, low: float, high: float) -> None:
    ms_log_axis(ax.yaxis, low, high)
    ax.set_ylim(*ax.yaxis.get_view_interval())


def _xlim_log(ax: Any, low: float, high: float) -> None:
    ms_log_axis(ax.xaxis, low, high)
    ax.set_xlim(*ax.xaxis.get_view_interval())


def _count_axis(axis: Any) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _p: _count_text(v)))


def _legend_outside(ax: Any, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
            fontsize=8, frameon=False, **kw,
        )  # fmt: skip


# -- words --------------------------------------------------------------------------------


def _clients_text(s: dict[str, Any]) -> str:
    c = s["clients"]
    if c["registered"] >= c["planned"]:
        return f"{c['registered']:,} clients"
    return f"{c['registered']:,} of {c['planned']:,} planned clients registered (INCOMPLETE)"


def run_description(s: dict[str, Any]) -> str:
    """One run's scenario as the clients that really registered saw it."""
    scn = s["scenario"]
    if scn.get("storm"):
        return f"scenario {scn['name']}: {_clients_text(s)} registering at once"
    load = (
        f"flat out, {scn.get('window')} in flight per sender"
        if scn.get("saturate")
        else f"{scn.get('rate') or 0:g} msg/s"
    )
    return (
        f"scenario {scn['name']}: {_clients_text(s)}, {scn['rooms']} room"
        f"{'s' * (scn['rooms'] != 1)}, "
        f"{scn['senders']} senders, {load}, {scn['msg_size']} B bodies, "
        f"{s.get('duration_s', 0):g} s"
    )


def _subtitle(runs: list[Run]) -> str:
    """The footer: each run's own scenario (a comparison may mix them)."""
    if len(runs) == 1:
        return run_description(runs[0][1])
    return "\n".join(f"{label}: {run_description(s)}" for label, s in runs)


def _incomplete(runs: list[Run]) -> bool:
    return any(s["clients"]["registered"] < s["clients"]["planned"] for _, s in runs)


def _figure(rows: int = 1, height: float = 5.0, **kw: Any) -> tuple[Any, Any]:
    fig, axes = plt.subplots(rows, 1, figsize=(10.5, height), layout="constrained", **kw)
    return fig, axes


def _finish(fig: Any, axes: list[Any], path: Path, title: str, runs: list[Run]) -> Path:
    fig.suptitle(title, fontsize=12, fontweight="bold", x=0.01, ha="left")
    if _incomplete(runs):
        axes[0].set_title("⚠ fewer clients than planned", fontsize=9, color="#c00000", loc="right")
    subtitle = _subtitle(runs)
    lines = subtitle.count("\n") + 1
    fig.get_layout_engine().set(rect=(0, 0.022 * lines + 0.01, 1, 1 - (0.022 * lines + 0.01)))
    fig.text(0.01, 0.008, subtitle, fontsize=7.5, color="#555555", ha="left", va="bottom")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.1)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


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


def _label_box() -> dict[str, Any]:
    return {"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"}


# -- latency ------------------------------------------------------------------------------


def _traffic(runs: list[Run]) -> list[Run]:
    return [(label, s) for label, s in runs if not s["scenario"].get("storm")]


def latency_over_time(runs: list[Run], path: Path) -> Path | None:
    """Percentile bands per time bucket (one run) or p50/p99 lines (several runs)."""
    runs = [r for r in _traffic(runs) if any(v is not None for v in r[1]["series"]["p50_ms"])]
    if not runs:
        return None
    fig, ax = _figure()
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
    _ylim_log(ax, min(values), max(values))
    ax.set_xlim(left=0)
    ax.set_xlabel("time since start of traffic (s)")
    ax.set_ylabel("latency (ms, log scale)")
    if single:
        _mark_levels(ax, runs[0][1]["latency_ms"])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=6, fontsize=8, frameon=False)
    title = f"Latency over time — {runs[0][0]}" if single else "Latency over time"
    return _finish(fig, [ax], path, title, runs)


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
    fig, ax = _figure()
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
                fontsize=8, color=color, bbox=_label_box(),
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("logit")
    low = min(xs[0] for _, xs, _, _ in curves)
    high = max(xs[-1] for _, xs, _, _ in curves)
    _xlim_log(ax, low, high)
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
        _legend_outside(ax)
    title = f"{what} distribution (CDF)" + (f" — {curves[0][0]}" if len(curves) == 1 else "")
    return _finish(fig, [ax], path, title, runs)


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
    fig, (ax, ax2) = _figure(2, 7.0, gridspec_kw={"height_ratios": (2.2, 1)})
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
                bbox=_label_box(),
            )  # fmt: skip
    ax.set_yscale("log")
    _ylim_log(ax, min(values), max(values) * 1.3)
    _nines_axis(ax, top)
    what = "time from connect to 001 (welcome)" if storm else "delivery latency"
    ax.set_ylabel(f"{what} (ms, log scale)")
    ax.set_xlabel("percentile (of " + ("clients" if storm else "deliveries") + ")")
    if len(curves) > 1:
        _legend_outside(ax)
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
        _count_axis(ax2.yaxis)
        ax2.set_xlim(0, _activity_end(runs))
        ax2.set_xlabel("time since the storm began (s)")
    else:
        ax2.set_yscale("log")
        lows = [v for _, s, _, _ in curves for v in s["series"]["p99_ms"] if v]
        highs = [v for _, s, _, _ in curves for v in s["series"]["max_ms"] if v]
        if lows and highs:
            _ylim_log(ax2, min(lows), max(highs))
        ax2.set_ylabel("latency (ms, log)")
        ax2.set_xlabel("time since start of traffic (s)")
        ax2.set_xlim(left=0)
    _legend_outside(ax2)
    title = ("Time to register" if storm else "Delivery latency") + (
        f" — {curves[0][0]}" if len(curves) == 1 else ""
    )
    if len(curves) == 1:
        ax.set_title(_headline(curves[0][1]), fontsize=9, loc="left",
                     color="#c00000" if _incomplete(runs) else "#333333")  # fmt: skip
    return _finish(fig, [ax, ax2], path, title, runs)


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
        f"{_count_text(tp['sent_per_s'])} msgs/s sent",
        f"{_count_text(tp['deliveries_per_s'])} deliveries/s",
        f"lost {acc['lost']:,}",
        f"disconnected {c.get('disconnected', 0):,}",
    ]
    return " · ".join(parts)


# -- throughput and errors ----------------------------------------------------------------


def _activity_end(runs: list[Run]) -> float:
    """Seconds until the last registration or failure of a storm, plus a margin."""
    end = 0.0
    for _, s in runs:
        ser = s["series"]
        busy = [
            t
            for t, r, f in zip(
                ser["t_s"], ser["registrations_per_s"], ser.get("client_failures") or
                [0] * len(ser["t_s"]), strict=True,
            )
            if r or f
        ]  # fmt: skip
        if busy:
            end = max(end, busy[-1])
    interval = runs[0][1]["series"]["interval_s"]
    return max(end * 1.15, end + 3 * interval, 10 * interval)


def _totals_box(ax: Any, runs: list[Run]) -> None:
    lines = []
    for label, s in runs:
        acc, c = s["accounting"], s["clients"]
        who = f"{label}: " if len(runs) > 1 else ""
        impossible = s["latency_ms"].get("impossible") or 0
        lines.append(
            f"{who}lost {acc['lost']:,} ({acc['loss_rate']:.3%}) · dup {acc['duplicates']:,} · "
            f"reordered {acc['reordered']:,} · disconnected {c.get('disconnected', 0):,} · "
            f"failed clients {c.get('failed', 0):,}"
            + (f" · impossible latencies {impossible:,}" if impossible else "")
        )
    box = {"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "#cccccc"}
    ax.text(0.01, 0.95, "\n".join(lines), transform=ax.transAxes, fontsize=8, va="top", bbox=box)


def throughput(runs: list[Run], path: Path) -> Path | None:
    """Messages sent, deliveries (each on its own axis) and client failures per
    interval, with loss and disconnect totals; registrations for a storm."""
    if all(s["scenario"].get("storm") for _, s in runs):
        return registrations(runs, path)
    runs = _traffic(runs)
    if not any(any(s["series"]["sent_per_s"]) for _, s in runs):
        return None
    fig, (ax1, ax2, ax3) = _figure(3, 7.5, sharex=True, gridspec_kw={"height_ratios": (2, 2, 1.2)})
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
        _count_axis(ax.yaxis)
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
        _legend_outside(ax1)
    return _finish(fig, [ax1, ax2, ax3], path, "Throughput, errors and loss over time", runs)


def registrations(runs: list[Run], path: Path) -> Path | None:
    """A storm: registrations and failures per interval, zoomed to when they happened."""
    fig, (ax1, ax2) = _figure(2, 6.0, sharex=True, gridspec_kw={"height_ratios": (2, 1)})
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
    _count_axis(ax1.yaxis)
    ax1.set_ylabel("registrations (001) per s")
    ax2.set_ylabel("clients refused\nor failed")
    ax2.set_ylim(bottom=0, top=max(1, ax2.get_ylim()[1]))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
    ax2.set_xlim(0, _activity_end(runs))
    ax2.set_xlabel("time since the storm began (s)")
    if len(runs) > 1:
        _legend_outside(ax1)
    return _finish(fig, [ax1, ax2], path, "Registrations over time", runs)


def server_resources(runs: list[Run], path: Path) -> Path | None:
    """Server CPU (% of one core) and resident memory over time, when the pid was known."""
    have = [(label, s) for label, s in runs if s["series"].get("server_t_s")]
    if not have:
        return None
    fig, (ax1, ax2) = _figure(2, 6.0, sharex=True)
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
        _legend_outside(ax1)
    return _finish(fig, [ax1, ax2], path, "Server CPU and memory (with its child processes)", have)


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
