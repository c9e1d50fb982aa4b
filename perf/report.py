"""report.md and a self-contained report.html (charts inlined as base64) for runs."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

Run = tuple[str, dict[str, Any]]
INT = "{:,}"


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:,.1f}")


def _num(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table_rows(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """The comparison table: one column per run, one row per metric."""
    header = ["metric", *[label for label, _ in runs]]
    metrics: list[tuple[str, Any]] = [
        ("target", lambda s: s["target"]),
        ("duration (s)", lambda s: _num(s["duration_s"], 2)),
        ("clients registered", lambda s: _pair(s["clients"], "registered", "planned", INT)),
        ("clients disconnected", lambda s: _pair(s["clients"], "disconnected", "planned", INT)),
        ("sent (msgs/s)", lambda s: _num(s["throughput"]["sent_per_s"])),
        ("deliveries/s", lambda s: _num(s["throughput"]["deliveries_per_s"])),
        ("deliveries", lambda s: _num(s["accounting"]["delivered"])),
        ("lost", lambda s: f"{s['accounting']['lost']:,} ({s['accounting']['loss_rate']:.3%})"),
        ("dup / reordered", lambda s: _pair(s["accounting"], "duplicates", "reordered", INT)),
        *[
            (f"latency {p} (ms)", lambda s, p=p: _ms(s["latency_ms"][p]))
            for p in ("p50", "p90", "p99", "p99.9", "max")
        ],
        ("time to 001 p50 / p99 (ms)", lambda s: _pair(s["connect_ms"]["welcome"], "p50", "p99")),
        ("all registered (s)", lambda s: _num((s.get("storm") or {}).get("all_registered_s"), 3)),
        ("server CPU mean (% core)", lambda s: _num(s["server"].get("cpu_percent_mean"), 0)),
        ("server RSS max (MiB)", lambda s: _num(s["server"].get("rss_max_mib"), 1)),
        ("server KiB per client", lambda s: _num(s["server"].get("rss_per_client_kib"), 2)),
        ("generator busy", lambda s: _busy(s)),
    ]  # fmt: skip
    rows = []
    for name, get in metrics:
        values = []
        for _, s in runs:
            try:
                values.append(str(get(s)))
            except (KeyError, TypeError):
                values.append("-")
        if any(v not in ("-", "- / -") for v in values):
            rows.append([name, *values])
    return header, rows


def _pair(d: dict[str, Any], a: str, b: str, fmt: str | None = None) -> str:
    def one(v: Any) -> str:
        return _ms(v) if fmt is None else ("-" if v is None else fmt.format(v))

    return f"{one(d.get(a))} / {one(d.get(b))}"


def _busy(s: dict[str, Any]) -> str:
    g = s["generator"]
    worst = max([b for b in g["worker_busy"] if b is not None], default=None)
    text = _num(None if worst is None else worst * 100, 0) + "%"
    return text + (" ⚠ saturated" if g["saturated"] else "")


def markdown_table(runs: list[Run]) -> str:
    header, rows = table_rows(runs)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_markdown(runs: list[Run], charts: list[Path], path: Path, title: str) -> Path:
    parts = [f"# {title}", ""]
    for label, s in runs:
        scn = s["scenario"]
        parts.append(
            f"- **{label}**: scenario `{scn['name']}` against `{s['target']}`, "
            f"started {s['started_at']}"
        )
    parts += ["", markdown_table(runs), ""]
    warnings = [(label, w) for label, s in runs for w in s.get("warnings", [])]
    if warnings:
        parts += ["## Warnings", ""] + [f"- {label}: {w}" for label, w in warnings] + [""]
    parts += [
        "Latency is receive time minus *scheduled* send time (coordinated omission corrected),",
        "measured at every receiver other than the sender. Loss accounting: sent x receivers",
        "= delivered + lost.",
        "",
        "## Charts",
        "",
    ]
    parts += [f"![{c.stem}]({c.name})" for c in charts]
    path.write_text("\n".join(parts) + "\n")
    return path


def write_html(runs: list[Run], charts: list[Path], path: Path, title: str) -> Path:
    """One file that opens anywhere: no external CSS, scripts or images."""
    header, rows = table_rows(runs)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    warnings = "".join(
        f"<li><b>{html.escape(label)}</b>: {html.escape(w)}</li>"
        for label, s in runs
        for w in s.get("warnings", [])
    )
    images = "".join(
        f'<figure><img alt="{html.escape(c.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(c.read_bytes()).decode()}"></figure>'
        for c in charts
    )
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
.warn {{ background: #fff6e0; border-left: 4px solid #e0a000; padding: .5em 1em; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table><thead><tr>{th}</tr></thead><tbody>{body_rows}</tbody></table>
{f'<div class="warn"><ul>{warnings}</ul></div>' if warnings else ""}
<p>Latency = receive time - scheduled send time (coordinated omission corrected), at every
receiver other than the sender. sent x receivers = delivered + lost.</p>
{images}
</body></html>
"""
    path.write_text(doc)
    return path
