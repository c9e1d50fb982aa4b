"""``chat-perf compare DIR DIR …``: several runs in the same charts and one table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perf import charts, outputs, report
from perf import histogram as hg
from perf.results import load_summary

# The settings that make two runs the same experiment (duration only changes how long).
SCENARIO_KEYS = ("name", "clients", "rooms", "senders", "rate", "saturate", "window", "msg_size")


def scenario_differences(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per scenario setting that is not the same in every run."""
    out = []
    for key in SCENARIO_KEYS:
        values = [s["scenario"].get(key) for _, s in runs]
        if any(v != values[0] for v in values[1:]):
            shown = ", ".join(f"{label}: {v}" for (label, _), v in zip(runs, values, strict=True))
            out.append(f"{key} differs ({shown})")
    return out


def compare(
    dirs: list[Path], out: Path, labels: list[str] | None = None
) -> tuple[list[Path], list[str]]:
    """Write compare_*.png, latency_plot.png, percentiles.txt, compare.md and compare.html
    into ``out``; returns the files and the warnings (runs of different scenarios)."""
    runs = []
    for i, d in enumerate(dirs):
        s = load_summary(d)
        label = labels[i] if labels and i < len(labels) else (s.get("label") or d.name)
        runs.append((label, s))
    differences = scenario_differences(runs)
    warnings = []
    if differences:
        warnings.append(
            "these runs used different scenarios, so their numbers are not like for like: "
            + "; ".join(differences)
        )
    out.mkdir(parents=True, exist_ok=True)
    outputs.clear_stale(out, outputs.COMPARE_FILES)
    made = charts.draw_all(runs, out, prefix="compare_")
    tables = "\n".join(
        hg.percentile_table(
            hg.decode(s.get("connect_histogram" if s["scenario"].get("storm") else "histogram")),
            f"{label}: {'time to 001' if s['scenario'].get('storm') else 'delivery latency'}, ms",
        )
        for label, s in runs
    )
    pct = out / "percentiles.txt"
    pct.write_text(tables)
    title = "chat-perf comparison: " + " vs ".join(label for label, _ in runs)
    md = report.write_markdown(runs, made, out / "compare.md", title, notes=warnings)
    page = report.write_html(runs, made, out / "compare.html", title, notes=warnings)
    return [*made, pct, md, page], warnings
