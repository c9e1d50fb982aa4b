"""What TLS costs: the same chat-perf scenario against chat-server's plaintext port and
its TLS port (issue 15).

    python -m benchmarks.tls                                  # fanout, chat, storm; 3 rounds
    python -m benchmarks.tls --scenarios storm --repeat 5 --duration 5

One server per run, started with a TLS port and a throwaway ECDSA P-256 certificate
(``chat-perf --spawn --tls`` makes the same), so both sides run the same server
configuration and differ only in the port the clients use; the clients check the
certificate. Each round runs both sides back to back, taking turns going first, the
server pinned to CPU 1 and the load to CPU 0 (as benchmarks/run.py does); the verdict is
the median over rounds of the same-round ratio (TLS over plaintext for throughput,
plaintext over TLS for times), so below 1 is what TLS costs. The tables go to stdout and
to ``benchmarks/results/TLS.md``, with every run's noise warnings under them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil

from benchmarks.run import HEADLINE, RESULTS, ROOT, headline, lost
from perf.spawn import SpawnedServer

SIDES = ("plaintext", "TLS")
SCENARIOS = ("fanout", "chat", "storm")
UNIT = {"fanout": "delivery", "chat": "delivery", "storm": "client"}


def run_one(side: str, scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    out = RESULTS / "runs" / f"tls-{scenario}-{side.lower()}"
    (out / "summary.json").unlink(missing_ok=True)
    srv = SpawnedServer(args.server_cpus, cwd=ROOT, tls=True)
    srv.start()
    assert srv.pid is not None
    server = psutil.Process(srv.pid)
    try:
        time.sleep(0.5)  # let the server settle before the clock starts
        target = ["--target", srv.address]
        if side == "TLS":
            target = ["--target", srv.tls_address, "--tls", "--tls-ca", str(srv.tls_ca)]
        cmd = ["taskset", "-c", args.load_cpus, sys.executable, "-m", "perf", "run", *target,
               "--server-pid", str(srv.pid), "--scenario", scenario,
               "--duration", str(args.duration), "--out", str(out), "--label", side,
               "--no-progress"]  # fmt: skip
        print(f"== {scenario} · {side}", flush=True)
        cpu_before = cpu_seconds(server)
        proc = subprocess.run(
            cmd, cwd=ROOT, text=True, capture_output=True, timeout=args.duration + 180
        )
        cpu_used = cpu_seconds(server) - cpu_before
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    finally:
        srv.stop()
    summary = out / "summary.json"
    if not summary.exists():
        return {}
    s: dict[str, Any] = json.loads(summary.read_text())
    s["server_cpu_s"] = cpu_used
    return s


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the server and its children (the history worker) so far."""
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_per_unit(scenario: str, s: dict[str, Any]) -> float | None:
    """Server CPU µs over the whole run (connects, traffic, drain) per delivery, or per
    registered client in a storm: what the server pays, whoever was the bottleneck."""
    cpu = s.get("server_cpu_s")
    if scenario == "storm":
        units = (s.get("clients") or {}).get("registered")
    else:
        units = (s.get("accounting") or {}).get("delivered")
    return cpu / units * 1e6 if cpu is not None and units else None


def server_cpu(s: dict[str, Any]) -> float | None:
    return (s.get("server") or {}).get("cpu_percent_mean")


def generator_busy(s: dict[str, Any]) -> str:
    gen = s.get("generator") or {}
    busy = max([b for b in gen.get("worker_busy", []) if b is not None], default=None)
    if busy is None:
        return "-"
    return f"{busy * 100:.0f}%" + (" ⚠" if gen.get("saturated") else "")


def detail(scenario: str, s: dict[str, Any]) -> str:
    """What else each run says: server CPU, and for a storm the handshake itself."""
    cpu = server_cpu(s)
    unit = cpu_per_unit(scenario, s)
    text = (
        f"server CPU {'-' if cpu is None else f'{cpu:.0f}%'} "
        f"({'-' if unit is None else f'{unit:.2f}'} µs per {UNIT[scenario]}), "
        f"generator {generator_busy(s)}"
    )
    if scenario == "storm":
        c = s.get("connect_ms") or {}
        w, t = (c.get("welcome") or {}).get("p50"), (c.get("tls") or {}).get("p50")
        text += f", time to 001 p50 {'-' if w is None else f'{w:.1f}'} ms"
        if t is not None:
            text += f" (TLS done p50 {t:.1f} ms)"
    elif lost(s):
        text += f", lost {lost(s):,}"
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--server-cpus", default="1")
    p.add_argument("--load-cpus", default="0")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    table = ["| scenario | headline | plaintext | TLS | same-round ratios | median |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    cpu_table = ["| scenario | server CPU µs per | plaintext | TLS | TLS ÷ plaintext, median |",
                 "| --- | --- | --- | --- | --- |"]  # fmt: skip
    rounds_text: list[str] = []
    warnings: list[str] = []
    for scenario in args.scenarios:
        label, _, more_is_better = HEADLINE[scenario]
        values: dict[str, list[float]] = {side: [] for side in SIDES}
        ratios: list[float] = []
        units: dict[str, list[float]] = {side: [] for side in SIDES}
        unit_ratios: list[float] = []
        rounds_text += [f"### {scenario}", ""]
        for k in range(args.repeat):
            order = SIDES if k % 2 == 0 else SIDES[::-1]
            got = {side: run_one(side, scenario, args) for side in order}
            heads = {side: headline(scenario, summary) for side, summary in got.items()}
            for side, value in heads.items():
                if value is not None:
                    values[side].append(value)
                warnings += [f"{scenario} round {k + 1} {side}: {w}"
                             for w in got[side].get("warnings", [])]  # fmt: skip
            plain, tls = heads["plaintext"], heads["TLS"]
            if plain and tls:
                ratios.append(tls / plain if more_is_better else plain / tls)
            per = {side: cpu_per_unit(scenario, got[side]) for side in SIDES}
            for side, value in per.items():
                if value is not None:
                    units[side].append(value)
            if per["plaintext"] and per["TLS"]:
                unit_ratios.append(per["TLS"] / per["plaintext"])
            rounds_text.append(
                f"- round {k + 1} ({order[0]} first): "
                + "; ".join(f"{side}: {detail(scenario, got[side])}" for side in SIDES)
            )
            print(f"   round {k + 1}: {heads}", flush=True)
        rounds_text.append("")
        fmt = "{:,.0f}" if more_is_better else "{:.3f}"
        cells = [" / ".join(map(fmt.format, values[side])) for side in SIDES]
        median = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        table.append(f"| {scenario} | {label} | {cells[0]} | {cells[1]} | "
                     f"{' / '.join(f'{r:.2f}' for r in ratios)} | {median} |")  # fmt: skip
        cells = [" / ".join(f"{v:.2f}" for v in units[side]) for side in SIDES]
        median = f"{statistics.median(unit_ratios):.2f}x" if unit_ratios else "-"
        cpu_table.append(f"| {scenario} | {UNIT[scenario]} | {cells[0]} | {cells[1]} | "
                         f"{median} |")  # fmt: skip
    lines = [
        "# What TLS costs: chat-server plaintext vs TLS",
        "",
        f"{args.repeat} round(s) of {args.duration:g} s, the two sides taking turns first; "
        f"server pinned to CPU {args.server_cpus}, load to CPU {args.load_cpus}; TLS 1.3 "
        "with an ECDSA P-256 certificate, checked by the clients, a full handshake per "
        f"client. Generated {time.strftime('%Y-%m-%d %H:%M')} UTC by `python -m "
        f"benchmarks.tls --repeat {args.repeat} --duration {args.duration:g}`. "
        "Values per round, in order; ratio < 1: TLS did worse (TLS over plaintext for "
        "deliveries/s, plaintext over TLS for times).",
        "",
        *table,
        "",
        "What the server paid: its CPU time (and its history worker's) over the whole run, "
        "connects and drain included, per delivery (per registered client in a storm), "
        "whoever was the bottleneck; above 1: TLS costs the server more.",
        "",
        *cpu_table,
        "",
        "## Rounds",
        "",
        "Server CPU is the mean over the run in % of one core; generator is the busiest "
        "worker (⚠: saturated, so the server's numbers are bounds).",
        "",
        *rounds_text,
        "## Noise warnings from chat-perf",
        "",
        *([f"- {w}" for w in warnings] or ["none"]),
    ]
    text = "\n".join(lines) + "\n"
    print("\n".join([*table, "", *cpu_table]))
    (RESULTS / "TLS.md").write_text(text)
    print(f"written: {RESULTS / 'TLS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
