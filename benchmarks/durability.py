"""What ``--history-sync`` costs: the same chat-perf scenario against chat-server with
the default group commit and with every echo waiting for its commit (fsync).

    python -m benchmarks.durability                         # rooms and chat, 3 rounds
    python -m benchmarks.durability --scenarios rooms --repeat 5 --duration 5

Each round runs both settings back to back, taking turns going first, the server
pinned to CPU 1 and the load to CPU 0 (as benchmarks/run.py does), and the verdict is
the median over rounds of the same-round ratio (sync over default for throughput,
default over sync for latency). The table goes to stdout and to
``benchmarks/results/DURABILITY.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from benchmarks.run import HEADLINE, RESULTS, ROOT, headline, lost
from perf.spawn import SpawnedServer

SETTINGS = {"group commit": [], "history_sync": ["--history-sync"]}


def run_one(setting: str, scenario: str, args: argparse.Namespace) -> dict:
    out = RESULTS / "runs" / f"durability-{scenario}-{setting.replace(' ', '-')}"
    (out / "summary.json").unlink(missing_ok=True)
    srv = SpawnedServer(args.server_cpus, SETTINGS[setting], cwd=ROOT)
    srv.start()
    try:
        cmd = ["taskset", "-c", args.load_cpus, sys.executable, "-m", "perf", "run",
               "--target", srv.address, "--server-pid", str(srv.pid), "--scenario", scenario,
               "--duration", str(args.duration), "--out", str(out), "--label", setting,
               "--no-progress"]  # fmt: skip
        print(f"== {scenario} · {setting}", flush=True)
        subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=args.duration + 180)
    finally:
        srv.stop()
    summary = out / "summary.json"
    return json.loads(summary.read_text()) if summary.exists() else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", choices=("rooms", "chat", "fanout"),
                   default=["rooms", "chat"])  # fmt: skip
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--server-cpus", default="1")
    p.add_argument("--load-cpus", default="0")
    args = p.parse_args(argv)
    lines = ["# history_sync against the default group commit", "",
             f"{args.repeat} rounds of {args.duration:g} s, settings taking turns first; "
             "ratio > 1: history_sync did better.", "",
             "| scenario | headline | group commit | history_sync | same-round ratios | median |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for scenario in args.scenarios:
        label, _, more_is_better = HEADLINE[scenario]
        values: dict[str, list[float]] = {name: [] for name in SETTINGS}
        ratios: list[float] = []
        for k in range(args.repeat):
            order = list(SETTINGS) if k % 2 == 0 else list(reversed(SETTINGS))
            got = {name: run_one(name, scenario, args) for name in order}
            heads = {name: headline(scenario, summary) for name, summary in got.items()}
            for name, value in heads.items():
                if value is not None:
                    values[name].append(value)
                if lost(got[name]):
                    print(f"   {name}: lost {lost(got[name])}", flush=True)
            base, sync = heads["group commit"], heads["history_sync"]
            if base and sync:
                ratios.append(sync / base if more_is_better else base / sync)
            print(f"   round {k + 1}: {heads}", flush=True)
        fmt = "{:,.0f}" if more_is_better else "{:.3f}"
        cells = [" / ".join(map(fmt.format, values[name])) for name in SETTINGS]
        median = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        lines.append(f"| {scenario} | {label} | {cells[0]} | {cells[1]} | "
                     f"{' / '.join(f'{r:.2f}' for r in ratios)} | {median} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "DURABILITY.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
