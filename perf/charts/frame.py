"""What is around every chart: the figure, its title, the footer naming each run's
scenario (with the clients that really registered), the grid, and the PNG file.

Also the choices of which runs and which span of time a chart shows, shared by the
latency and the throughput charts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Run = tuple[str, dict[str, Any]]
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
DPI = 110


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


def subtitle(runs: list[Run]) -> str:
    """The footer: each run's own scenario (a comparison may mix them)."""
    if len(runs) == 1:
        return run_description(runs[0][1])
    return "\n".join(f"{label}: {run_description(s)}" for label, s in runs)


def incomplete(runs: list[Run]) -> bool:
    """Whether a run registered fewer clients than it planned."""
    return any(s["clients"]["registered"] < s["clients"]["planned"] for _, s in runs)


# -- which runs, which time ---------------------------------------------------------------


def traffic(runs: list[Run]) -> list[Run]:
    """The runs that sent messages (not a registration storm)."""
    return [(label, s) for label, s in runs if not s["scenario"].get("storm")]


def activity_end(runs: list[Run]) -> float:
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


# -- the figure ---------------------------------------------------------------------------


def figure(rows: int = 1, height: float = 5.0, **kw: Any) -> tuple[Any, Any]:
    """A figure of ``rows`` plots one above the other, full width."""
    fig, axes = plt.subplots(rows, 1, figsize=(10.5, height), layout="constrained", **kw)
    return fig, axes


def finish(fig: Any, axes: list[Any], path: Path, title: str, runs: list[Run]) -> Path:
    """Title, warning, footer and grid on ``fig``; saved to ``path`` and closed."""
    fig.suptitle(title, fontsize=12, fontweight="bold", x=0.01, ha="left")
    if incomplete(runs):
        axes[0].set_title("⚠ fewer clients than planned", fontsize=9, color="#c00000", loc="right")
    footer = subtitle(runs)
    lines = footer.count("\n") + 1
    fig.get_layout_engine().set(rect=(0, 0.022 * lines + 0.01, 1, 1 - (0.022 * lines + 0.01)))
    fig.text(0.01, 0.008, footer, fontsize=7.5, color="#555555", ha="left", va="bottom")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.1)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def label_box() -> dict[str, Any]:
    """A white box behind a label on the data, so lines under it do not hide it."""
    return {"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"}
