"""Run distchat's chat-server and ngircd through the same chat-perf scenarios, one after
the other, each server pinned to CPU 1 and the load generator to CPU 0, and write a
Markdown results table plus comparison charts into benchmarks/results/.

    python -m benchmarks.run                      # fanout, burst, rooms, chat, storm; 10 s each
    python -m benchmarks.run --duration 5 --scenarios fanout chat
    python -m benchmarks.run --scenarios burst    # flow control: lost and disconnected count
    python -m benchmarks.run --repeat 3           # three rounds; medians of same-round ratios

This machine class is noisy (runs of one server vary by 10-30%), so a comparison is only
worth quoting as the median over rounds of the ratio between the two servers *in the
same round*. With ``--repeat`` the servers take turns going first, so a slow spell hits
both sides alike; the table shows the last round, and a section under it gives every
round's headline numbers and the median ratio. An overview at the top has one row per
scenario: headline per server, lost deliveries, clients disconnected, median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.ngircd import NGIRCD, NgircdProcess
from perf.spawn import SpawnedServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SCENARIOS = ("fanout", "burst", "rooms", "chat", "storm")
SERVERS = ("distchat", "ngircd")
# Judged as much by what was lost and who was cut as by the rate: every round lists them.
HARM_SCENARIOS = ("burst",)


def run_one(server: str, scenario: str, args: argparse.Namespace, tmp: Path) -> Path:
    out = RESULTS / "runs" / f"{scenario}-{server}"
    # A run that fails must not leave the previous run's summary looking like its own.
    (out / "summary.json").unlink(missing_ok=True)
    # chat-server as chat-perf --spawn runs it (--no-flood-limit, own session), from
    # this checkout.
    srv: SpawnedServer | NgircdProcess = (
        SpawnedServer(args.server_cpus, cwd=ROOT)
        if server == "distchat"
        else NgircdProcess(tmp, args.server_cpus)
    )
    srv.start()
    try:
        time.sleep(0.5)  # let the server settle before the clock starts
        cmd = ["taskset", "-c", args.load_cpus, sys.executable, "-m", "perf", "run",
               "--target", srv.address, "--server-pid", str(srv.pid), "--scenario", scenario,
               "--duration", str(args.duration), "--out", str(out), "--label", server,
               "--no-progress", *shlex.split(args.perf_args)]  # fmt: skip
        print(f"== {scenario} · {server}: {' '.join(cmd[3:])}", flush=True)
        proc = subprocess.run(
            cmd, cwd=ROOT, text=True, capture_output=True, timeout=args.duration + 180
        )
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    finally:
        srv.stop()
    return out


# The number each scenario is judged by, and whether more of it is better.
HEADLINE = {
    "fanout": ("deliveries/s", lambda s: s["throughput"]["deliveries_per_s"], True),
    "burst": ("deliveries/s", lambda s: s["throughput"]["deliveries_per_s"], True),
    "rooms": ("deliveries/s", lambda s: s["throughput"]["deliveries_per_s"], True),
    "chat": ("latency p99 (ms)", lambda s: s["latency_ms"]["p99"], False),
    "storm": ("all registered within (s)", lambda s: s["storm"]["all_registered_s"], False),
}  # fmt: skip


def headline(scenario: str, summary: dict) -> float | None:
    try:
        value = HEADLINE[scenario][1](summary)
    except (KeyError, TypeError):
        return None
    return None if value is None else float(value)


def same_round_ratio(scenario: str, by_server: dict[str, dict]) -> float | None:
    """distchat over ngircd for throughput, ngircd over distchat for times: above 1
    means distchat did better in that round."""
    more_is_better = HEADLINE[scenario][2]
    ours, theirs = (headline(scenario, by_server[n]) if n in by_server else None for n in SERVERS)
    if not ours or not theirs:
        return None
    return ours / theirs if more_is_better else theirs / ours


def median_ratio(scenario: str, rounds: list[dict[str, dict]]) -> tuple[float | None, int]:
    """The median same-round ratio and how many rounds had both servers."""
    ratios = [r for by in rounds if (r := same_round_ratio(scenario, by)) is not None]
    return (statistics.median(ratios) if ratios else None), len(ratios)


def lost(s: dict[str, Any]) -> int | None:
    return (s.get("accounting") or {}).get("lost")


def disconnected(s: dict[str, Any]) -> int | None:
    """Clients cut after joining (None in runs from before chat-perf counted them)."""
    return (s.get("clients") or {}).get("disconnected")


def _harm(scenario: str, s: dict[str, Any]) -> str:
    """`` (lost N, disconnected M)`` where that matters: always in HARM_SCENARIOS,
    elsewhere only when something was lost or cut."""
    if scenario == "storm":
        return ""
    gone, cut = lost(s), disconnected(s)
    if scenario not in HARM_SCENARIOS and not gone and not cut:
        return ""
    return f" (lost {_fmt(gone)}, disconnected {_fmt(cut)})"


def rounds_section(scenario: str, rounds: list[dict[str, dict]]) -> list[str]:
    """Every round's headline per server and, with two servers, the same-round ratio
    (see ``same_round_ratio``) and its median."""
    label, _, more_is_better = HEADLINE[scenario]
    names = list(dict.fromkeys(name for by_server in rounds for name in by_server))
    lines = [f"Rounds ({label}):", ""]
    digits = 0 if more_is_better else 3
    for k, by_server in enumerate(rounds, 1):
        text = ", ".join(
            f"{n} {_fmt(headline(scenario, by_server[n]), digits=digits)}"
            + _harm(scenario, by_server[n])
            for n in names
            if n in by_server
        )
        ratio = same_round_ratio(scenario, by_server)
        if ratio is not None:
            text += f"; distchat does {ratio:.2f}x"
        lines.append(f"- round {k}: {text}")
    median, ratios = median_ratio(scenario, rounds)
    if median is not None:
        lines += [
            "",
            f"Median same-round ratio over {ratios} rounds: **{median:.2f}x** "
            "(above 1: distchat better).",
        ]
    return [*lines, ""]


def overview(
    summaries: dict[str, dict[str, dict]], rounds: dict[str, list[dict[str, dict]]]
) -> list[str]:
    """One row per scenario: each server's headline (last round), lost deliveries and
    clients disconnected, and the median same-round ratio."""
    names = list(dict.fromkeys(n for by_server in summaries.values() for n in by_server))
    who = " / ".join(names)
    lines = [
        "| scenario | judged by | " + " | ".join(names) + f" | lost ({who}) "
        f"| disconnected ({who}) | same-round ratio, median |",
        "|---|---|" + "---|" * len(names) + "---|---|---|",
    ]
    for scenario, by_server in summaries.items():
        label, _, more_is_better = HEADLINE[scenario]
        digits = 0 if more_is_better else 3
        values = [
            _fmt(headline(scenario, by_server[n]), digits=digits) if n in by_server else "-"
            for n in names
        ]
        gone = " / ".join(
            "-" if scenario == "storm" or n not in by_server else _fmt(lost(by_server[n]))
            for n in names
        )
        cut = " / ".join(_fmt(disconnected(by_server[n])) if n in by_server else "-"
                         for n in names)  # fmt: skip
        median, count = median_ratio(scenario, rounds.get(scenario, []))
        ratio = "-" if median is None else f"{median:.2f}x ({count} round{'s' * (count != 1)})"
        lines.append(
            f"| {scenario} | {label} | " + " | ".join(values) + f" | {gone} | {cut} | {ratio} |"
        )
    return [*lines, "", "Ratio above 1: distchat did better (see each section's rounds).", ""]


def _fmt(v: float | None, unit: str = "", digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}{unit}"


def _metrics(scenario: str, s: dict) -> list[tuple[str, str]]:
    lat, tp, acc = s["latency_ms"], s["throughput"], s["accounting"]
    gen = s["generator"]
    busy = max([b for b in gen["worker_busy"] if b is not None], default=None)
    load = _fmt(None if busy is None else busy * 100, "%") + (" ⚠" if gen["saturated"] else "")
    wait = gen.get("runqueue_wait_fraction")
    common = [
        (
            "generator busy / CPU wait",
            f"{load} / {_fmt(None if wait is None else wait * 100, '%')}",
        ),
        ("server CPU (mean % of a core)", _fmt(s["server"].get("cpu_percent_mean"))),
    ]
    if scenario == "storm":
        w = s["connect_ms"]["welcome"]
        return [
            ("clients registered", f"{s['clients']['registered']:,} / {s['clients']['planned']:,}"),
            (
                "all registered within (s)",
                _fmt((s.get("storm") or {}).get("all_registered_s"), digits=3),
            ),
            (
                "time to 001 p50 / p99 (ms)",
                f"{_fmt(w['p50'], digits=2)} / {_fmt(w['p99'], digits=2)}",
            ),
            (
                "server memory per client (KiB)",
                _fmt(s["server"].get("rss_per_client_kib"), digits=2),
            ),
            *common,
        ]
    return [
        ("deliveries/s", _fmt(tp["deliveries_per_s"])),
        ("messages sent/s", _fmt(tp["sent_per_s"])),
        ("latency p50 / p99 / p99.9 (ms)",
         " / ".join(_fmt(lat[p], digits=2) for p in ("p50", "p99", "p99.9"))),
        ("lost / duplicated / reordered",
         " / ".join(f"{acc[k]:,}" for k in ("lost", "duplicates", "reordered"))
         + (f" ({acc['loss_rate']:.1%} lost)" if acc["lost"] else "")),
        ("clients disconnected after joining",
         f"{_fmt(disconnected(s))} / {s['clients']['planned']:,}"),
        *common,
    ]  # fmt: skip


def write_results(
    runs: dict[str, dict[str, Path]],
    rounds: dict[str, list[dict[str, dict]]],
    args: argparse.Namespace,
) -> Path:
    lines = [
        "# distchat vs ngircd — chat-perf results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}; ngircd `{NGIRCD}`. Each server pinned to CPU "
        f"{args.server_cpus}, the load generator to CPU {args.load_cpus}; one after the other, "
        f"{args.duration:g} s of traffic each, {args.repeat} round(s) with the servers taking "
        f"turns to go first. Generated {time.strftime('%Y-%m-%d %H:%M')} by "
        f"`python -m benchmarks.run --repeat {args.repeat}`; a scenario left out of a run "
        "keeps the section of the run that measured it, with its own date.",
        "",
    ]
    loaded = {
        scenario: {
            name: json.loads((d / "summary.json").read_text()) for name, d in by_server.items()
        }
        for scenario, by_server in runs.items()
    }
    lines += ["## Overview", "", *overview(loaded, rounds)]
    for scenario, by_server in runs.items():
        summaries = loaded[scenario]
        scn = next(iter(summaries.values()))["scenario"]
        load = (
            "registration storm"
            if scn["storm"]
            else (
                f"as fast as acknowledged, {scn['window']:,} in flight per sender"
                if scn["saturate"]
                else f"{scn['rate']:g} msg/s total"
            )
        )
        started = min(str(r["started_at"]) for r in summaries.values())[:16].replace("T", " ")
        lines += [
            f"## {scenario}: {scn['clients']} clients, {scn['rooms']} rooms, "
            f"{scn['senders']} senders, {load}",
            "",
            f"Measured {started} UTC (the last of {len(rounds[scenario])} round(s)).",
            "",
        ]
        names = list(summaries)
        lines.append("| metric | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(names))
        rows = {name: _metrics(scenario, s) for name, s in summaries.items()}
        for i, (metric, _) in enumerate(rows[names[0]]):
            lines.append(f"| {metric} | " + " | ".join(rows[n][i][1] for n in names) + " |")
        lines.append("")
        for name, s in summaries.items():
            for w in s.get("warnings", []):
                lines.append(f"- {name}: {w}")
        lines.append("")
        lines += rounds_section(scenario, rounds[scenario])
        cmp_dir = RESULTS / scenario
        subprocess.run(
            [sys.executable, "-m", "perf", "compare", *map(str, by_server.values()),
             "--out", str(cmp_dir)],
            cwd=ROOT, check=False, capture_output=True, timeout=120,
        )  # fmt: skip
        charts = sorted(p.name for p in cmp_dir.glob("compare_*.png"))
        lines += [""] + [f"![{scenario} {c}]({scenario}/{c})" for c in charts] + [""]
    path = RESULTS / "RESULTS.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _keep_earlier(
    scenario: str,
    servers: list[str],
    runs: dict[str, dict[str, Path]],
    rounds: dict[str, list[dict[str, dict]]],
) -> None:
    """Pick up a scenario this run left out from the files an earlier run left, so
    running one scenario does not drop the others from RESULTS.md."""
    dirs = {name: RESULTS / "runs" / f"{scenario}-{name}" for name in servers}
    if not all((d / "summary.json").exists() for d in dirs.values()):
        return
    per_round: dict[int, dict[str, dict]] = {}
    for name, d in dirs.items():
        for f in d.glob("round-*.json"):
            k = int(f.stem.removeprefix("round-"))
            per_round.setdefault(k, {})[name] = json.loads(f.read_text())
    complete = [per_round[k] for k in sorted(per_round) if len(per_round[k]) == len(servers)]
    if not complete:  # from before round files: the one summary is the one round
        last = {name: json.loads((d / "summary.json").read_text()) for name, d in dirs.items()}
        complete = [last]
    runs[scenario] = dirs
    rounds[scenario] = complete


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument(
        "--repeat", type=int, default=1, help="rounds per scenario, servers taking turns first"
    )
    p.add_argument("--server-cpus", default="1")
    p.add_argument("--load-cpus", default="0")
    p.add_argument(
        "--perf-args", default="", help="extra chat-perf run options, e.g. '--window 100'"
    )
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Path]] = {}
    rounds: dict[str, list[dict[str, dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="distchat-bench-") as tmp:
        for scenario in args.scenarios:
            for server in args.servers:  # rounds of an earlier, longer --repeat
                for old in (RESULTS / "runs" / f"{scenario}-{server}").glob("round-*.json"):
                    old.unlink()
            for k in range(args.repeat):
                order = args.servers if k % 2 == 0 else args.servers[::-1]
                done: dict[str, dict] = {}
                for server in order:
                    out = run_one(server, scenario, args, Path(tmp))
                    runs.setdefault(scenario, {})[server] = out
                    summary = out / "summary.json"
                    if summary.exists():
                        done[server] = json.loads(summary.read_text())
                        (out / f"round-{k + 1}.json").write_text(summary.read_text())
                rounds.setdefault(scenario, []).append(
                    {name: done[name] for name in args.servers if name in done}
                )
    for scenario in SCENARIOS:
        if scenario not in runs:
            _keep_earlier(scenario, args.servers, runs, rounds)
    ordered = [scn for scn in SCENARIOS if scn in runs]
    path = write_results(
        {scn: runs[scn] for scn in ordered}, {scn: rounds[scn] for scn in ordered}, args
    )
    print(f"results table: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
