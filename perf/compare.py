"""``chat-perf compare DIR DIR …``: several runs in the same charts and one table."""

from __future__ import annotations

from pathlib import Path

from perf import charts, report
from perf.results import load_summary


def compare(dirs: list[Path], out: Path, labels: list[str] | None = None) -> list[Path]:
    """Write compare_*.png, compare.md and compare.html into ``out``; returns the files."""
    runs = []
    for i, d in enumerate(dirs):
        s = load_summary(d)
        label = labels[i] if labels and i < len(labels) else (s.get("label") or d.name)
        runs.append((label, s))
    out.mkdir(parents=True, exist_ok=True)
    made = charts.draw_all(runs, out, prefix="compare_")
    title = "chat-perf comparison: " + " vs ".join(label for label, _ in runs)
    md = report.write_markdown(runs, made, out / "compare.md", title)
    page = report.write_html(runs, made, out / "compare.html", title)
    return [*made, md, page]
