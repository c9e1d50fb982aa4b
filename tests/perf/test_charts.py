"""The charts of real runs read at a glance: every axis labelled with its unit, ticks
in plain milliseconds (at least three, however narrow the range), percentiles marked,
sent and delivered on axes of their own, errors shown, a storm zoomed to its activity,
memory from zero, legends off the data.

The figures are drawn from real runs' summaries and inspected before they are closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from perf import charts
from tests.perf.conftest import load_summary

BAD_TICKS = ("10^", "\\times", "\u00d7", "$")  # scientific notation


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Figures by file name, kept open (drawn) instead of closed after saving."""
    figures: dict[str, Any] = {}
    save = Figure.savefig

    def keep(fig: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        save(fig, path, *args, **kwargs)
        fig.canvas.draw()
        figures[Path(path).name] = fig

    monkeypatch.setattr("matplotlib.pyplot.close", lambda _fig: None)
    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def _labels(axis: Any) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def _check_axes(name: str, fig: Any) -> None:
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert any(ax.get_xlabel() for ax in axes), name
    for ax in axes:
        assert ax.get_ylabel(), (name, "no y label")
        ys = _labels(ax.yaxis)
        assert len(ys) >= 2, (name, ax.get_ylabel(), ys)
        if ax.get_xlabel():
            xs = _labels(ax.xaxis)
            assert len(xs) >= 3, (name, ax.get_xlabel(), xs)
            assert "(" in ax.get_xlabel() or "percentile" in ax.get_xlabel(), ax.get_xlabel()
        for text in ys + _labels(ax.xaxis):
            assert not any(bad in text for bad in BAD_TICKS), (name, text)
        legend = ax.get_legend()
        if legend is not None:
            renderer = fig.canvas.get_renderer()
            box = legend.get_window_extent(renderer)
            area = Bbox.intersection(box, ax.get_window_extent(renderer))
            assert area is None or area.width * area.height < 1, (name, "legend covers data")


def _texts(fig: Any) -> str:
    return " | ".join(t.get_text() for ax in fig.axes for t in ax.texts) + " | ".join(
        ax.get_title(loc) for ax in fig.axes for loc in ("left", "right", "center")
    )


def test_run_charts_are_labelled_and_marked(
    chat_out: Path, drawn: dict[str, Any], tmp_path: Path
) -> None:
    s = load_summary(chat_out)
    made = charts.draw_all([("chat-a", s)], tmp_path)
    assert made[0].name == "latency_plot.png"
    for name, fig in drawn.items():
        _check_axes(name, fig)
    lat = s["latency_ms"]
    plot = _texts(drawn["latency_plot.png"])
    for key in ("p50", "p99", "p99.9", "max"):
        assert f"{key} {charts.ms_text(lat[key])} ms" in plot, key
    cdf = _texts(drawn["latency_cdf.png"])
    assert all(f"{k} {charts.ms_text(lat[k])} ms" in cdf for k in ("p50", "p99", "p99.9"))
    over_time = _texts(drawn["latency_over_time.png"])
    assert f"p99 (run) {charts.ms_text(lat['p99'])} ms" in over_time
    ylabel = drawn["latency_over_time.png"].axes[0].get_ylabel()
    assert ylabel == "latency (ms, log scale)"


def test_sent_and_delivered_have_their_own_axes_and_errors_show(
    chat_out: Path, drawn: dict[str, Any], tmp_path: Path
) -> None:
    charts.throughput([("chat-a", load_summary(chat_out))], tmp_path / "tp.png")
    fig = drawn["tp.png"]
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[0] == "messages sent per s" and labels[1] == "deliveries per s"
    assert "clients closed" in labels[2]
    assert "lost 0 (0.000%)" in _texts(fig) and "disconnected 0" in _texts(fig)


def test_storm_charts_zoom_to_the_storm(
    storm_out: Path, drawn: dict[str, Any], tmp_path: Path
) -> None:
    s = load_summary(storm_out)
    charts.draw_all([("storm", s)], tmp_path)
    for name, fig in drawn.items():
        _check_axes(name, fig)
    span = s["duration_s"]  # the run waited a second after the last registration
    registrations = drawn["throughput.png"].axes[-1]
    right = registrations.get_xlim()[1]
    assert right < span / 2, (right, span)
    assert right >= s["storm"]["all_registered_s"]
    # Time to 001 spans a narrow range: still at least three labelled ticks.
    assert len(_labels(drawn["connect_cdf.png"].axes[0].xaxis)) >= 3


def test_memory_axis_starts_at_zero(chat_out: Path, drawn: dict[str, Any], tmp_path: Path) -> None:
    charts.server_resources([("chat-a", load_summary(chat_out))], tmp_path / "res.png")
    cpu, rss = drawn["res.png"].axes
    assert rss.get_ylim()[0] == 0 and cpu.get_ylim()[0] == 0
    assert rss.get_ylabel() == "resident memory (MiB)"


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.06, 0.09), (4.2, 6.2), (0.5, 20.0), (0.9, 1.1), (0.01, 3000.0), (12.0, 13.0)],
)
def test_log_ticks_label_any_range(low: float, high: float) -> None:
    ticks = charts.log_ticks(low, high)
    assert 3 <= len(ticks) <= 12
    assert all(low <= t <= high for t in ticks) and ticks == sorted(ticks)
    texts = [charts.ms_text(t) for t in ticks]
    assert len(set(texts)) == len(texts)
    assert not any(bad in t for t in texts for bad in BAD_TICKS)
