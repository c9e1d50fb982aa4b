"""report.md and a self-contained report.html (charts inlined as base64) for runs.

Both open with what went wrong, if anything (a run that measured fewer clients than
planned, violated thresholds), before any number; then one table, one column per run,
with rows only for what the runs measured and, for several runs, the change against the
first in percent.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Run = tuple[str, dict[str, Any]]
Value = tuple[float | None, str]  # (number for the change column, text shown)


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:,.1f}")


def _num(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _plain(v: float | None, digits: int = 0) -> Value:
    return v, _num(v, digits)


def _latency(v: float | None) -> Value:
    return v, _ms(v)


@dataclass(frozen=True, slots=True)
class Metric:
    """A table row: its name, which runs it applies to, and how to read it."""

    name: str
    get: Callable[[dict[str, Any]], Value]
    traffic: bool = True  # shown for runs that send messages
    storm: bool = False  # shown for registration storms


def _registered(s: dict[str, Any]) -> Value:
    c = s["clients"]
    mark = "" if c["registered"] >= c["planned"] else " ⚠ incomplete"
    return c["registered"], f"{c['registered']:,} / {c['planned']:,}{mark}"


def _disconnected(s: dict[str, Any]) -> Value:
    c = s["clients"]
    return c["disconnected"], f"{c['disconnected']:,} / {c['planned']:,}"


def _lost(s: dict[str, Any]) -> Value:
    a = s["accounting"]
    return a["lost"], f"{a['lost']:,} ({a['loss_rate']:.3%})"


def _busy(s: dict[str, Any]) -> Value:
    g = s["generator"]
    worst = max([b for b in g["worker_busy"] if b is not None], default=None)
    text = _num(None if worst is None else worst * 100, 0) + "%"
    return (None if worst is None else worst * 100), text + (
        " ⚠ saturated" if g["saturated"] else ""
    )


def _latency_at(p: str) -> Callable[[dict[str, Any]], Value]:
    return lambda s: _latency(s["latency_ms"][p])


def _welcome(p: str) -> Callable[[dict[str, Any]], Value]:
    return lambda s: _latency(s["connect_ms"]["welcome"][p])


METRICS: tuple[Metric, ...] = (
    Metric("target", lambda s: (None, s["target"]), storm=True),
    Metric("duration (s)", lambda s: _plain(s["duration_s"], 2), storm=True),
    Metric("clients registered", _registered, storm=True),
    Metric("clients disconnected", _disconnected),
    Metric("sent (msgs/s)", lambda s: _plain(s["throughput"]["sent_per_s"])),
    Metric("deliveries/s", lambda s: _plain(s["throughput"]["deliveries_per_s"])),
    Metric("deliveries", lambda s: _plain(s["accounting"]["delivered"])),
    Metric("lost", _lost),
    Metric("duplicates", lambda s: _plain(s["accounting"]["duplicates"])),
    Metric("reordered", lambda s: _plain(s["accounting"]["reordered"])),
    Metric("order disagreements", lambda s: _plain(s["accounting"]["order_disagreements"])),
    *(Metric(f"latency {p} (ms)", _latency_at(p)) for p in ("p50", "p90", "p99", "p99.9", "max")),
    Metric("impossible latencies", lambda s: _plain(s["latency_ms"].get("impossible"))),
    Metric("time to 001 p50 (ms)", _welcome("p50"), storm=True),
    Metric("time to 001 p99 (ms)", _welcome("p99"), storm=True),
    Metric("time to 001 max (ms)", _welcome("max"), traffic=False, storm=True),
    Metric(
        "all registered within (s)",
        lambda s: _plain((s.get("storm") or {}).get("all_registered_s"), 3),
        traffic=False,
        storm=True,
    ),
    Metric(
        "server CPU mean (% of a core)",
        lambda s: _plain(s["server"].get("cpu_percent_mean")),
        storm=True,
    ),
    Metric("server RSS max (MiB)", lambda s: _plain(s["server"].get("rss_max_mib"), 1), storm=True),
    Metric(
        "server KiB per client",
        lambda s: _plain(s["server"].get("rss_per_client_kib"), 2),
        traffic=False,
        storm=True,
    ),
    Metric("generator busy (worst worker)", _busy, storm=True),
)


def _applies(metric: Metric, s: dict[str, Any]) -> bool:
    return metric.storm if s["scenario"].get("storm") else metric.traffic


def _delta(base: float | None, value: float | None) -> str:
    if base is None or value is None:
        return "-"
    if base == 0:
        return "0.0 %" if value == 0 else "-"
    return f"{(value - base) / abs(base) * 100:+.1f} %"


def table_rows(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """The table: one column per run, one row per metric that applies to a run, and
    with several runs a change column (in %) per later run against the first."""
    header = ["metric", *[label for label, _ in runs]]
    if len(runs) == 2:
        header.append("Δ %")
    elif len(runs) > 2:
        header += [f"Δ % {label}" for label, _ in runs[1:]]
    rows = []
    for metric in METRICS:
        if not any(_applies(metric, s) for _, s in runs):
            continue
        values: list[Value] = []
        for _, s in runs:
            try:
                values.append(metric.get(s) if _applies(metric, s) else (None, "-"))
            except (KeyError, TypeError):
                values.append((None, "-"))
        if all(text in ("-", "-%") for _, text in values):
            continue
        if metric.name == "impossible latencies" and not any(v for v, _ in values):
            continue  # shown only when there were any
        row = [metric.name, *[text for _, text in values]]
        if len(runs) > 1:
            row += [_delta(values[0][0], v) for v, _ in values[1:]]
        rows.append(row)
    return header, rows


def markdown_table(runs: list[Run]) -> str:
    header, rows = table_rows(runs)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def alerts(runs: list[Run]) -> list[str]:
    """What must be read before any number: each run's problems, the commonest client
    failure reasons, hints, and violated --fail-if thresholds."""
    out = []
    for label, s in runs:
        who = f"{label}: " if len(runs) > 1 else ""
        verdict = s.get("verdict") or {}
        for problem in verdict.get("problems", []):
            out.append(f"{who}{problem}")
        reasons = verdict.get("reasons") or []
        if reasons and not verdict.get("ok", True):
            out.append(
                f"{who}most common client failures: "
                + "; ".join(f"{n:,} x {reason!r}" for reason, n in reasons)
            )
        for hint in verdict.get("hints", []) if not verdict.get("ok", True) else []:
            out.append(f"{who}hint: {hint}")
        for violation in (s.get("thresholds") or {}).get("violated", []):
            out.append(f"{who}--fail-if violated: {violation}")
    return out


def _alert_title(runs: list[Run]) -> str:
    who = "This run" if len(runs) == 1 else "Some of these runs"
    return f"{who} did not measure what was planned, or failed its checks"


def write_markdown(
    runs: list[Run], charts: list[Path], path: Path, title: str, notes: list[str] | None = None
) -> Path:
    parts = [f"# {title}", ""]
    problems = alerts(runs)
    if problems:
        parts += [f"> **⚠ {_alert_title(runs)}:**"]
        parts += [f"> - {p}" for p in problems] + [""]
    if notes:
        parts += [f"> **Note:** {n}" for n in notes] + [""]
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


def write_html(
    runs: list[Run], charts: list[Path], path: Path, title: str, notes: list[str] | None = None
) -> Path:
    """One file that opens anywhere: no external CSS, scripts or images."""
    header, rows = table_rows(runs)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in alerts(runs))
    problem_box = (
        f'<div class="fail"><b>⚠ {html.escape(_alert_title(runs))}:</b><ul>{problems}</ul></div>'
        if problems
        else ""
    )
    note_box = "".join(
        f'<div class="warn"><b>Note:</b> {html.escape(n)}</div>' for n in notes or []
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
.warn {{ background: #fff6e0; border-left: 4px solid #e0a000; padding: .5em 1em; margin: .5em 0; }}
.fail {{ background: #fde8e8; border-left: 4px solid #c00000; padding: .5em 1em; margin: .5em 0; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{problem_box}{note_box}
<table><thead><tr>{th}</tr></thead><tbody>{body_rows}</tbody></table>
{f'<div class="warn"><ul>{warnings}</ul></div>' if warnings else ""}
<p>Latency = receive time - scheduled send time (coordinated omission corrected), at every
receiver other than the sender. sent x receivers = delivered + lost.</p>
{images}
</body></html>
"""
    path.write_text(doc)
    return path
