"""Axes every chart shares: latency ticks in plain milliseconds, counts in k / M,
log ranges with at least three round labels however narrow, legends outside the data.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

# Steps within a decade for log-axis ticks, coarsest first: the first giving enough
# labels inside the data's range is used.
LOG_STEPS = ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))


def ms_text(value: float) -> str:
    """A millisecond value as a tick label: no unit (the axis label has it), no powers."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.4g}"
    return f"{value:.3g}"


def count_text(value: float) -> str:
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


def ylim_log(ax: Any, low: float, high: float) -> None:
    """The y axis of ``ax``: log milliseconds spanning ``low``..``high``."""
    ms_log_axis(ax.yaxis, low, high)
    ax.set_ylim(*ax.yaxis.get_view_interval())


def xlim_log(ax: Any, low: float, high: float) -> None:
    """The x axis of ``ax``: log milliseconds spanning ``low``..``high``."""
    ms_log_axis(ax.xaxis, low, high)
    ax.set_xlim(*ax.xaxis.get_view_interval())


def count_axis(axis: Any) -> None:
    """Tick labels of a count or rate (``count_text``)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _p: count_text(v)))


def legend_outside(ax: Any, **kw: Any) -> None:
    """The legend of ``ax`` right of the plot, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
            fontsize=8, frameon=False, **kw,
        )  # fmt: skip
