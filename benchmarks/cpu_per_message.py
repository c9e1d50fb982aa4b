"""CPU per message at a fixed rate: the server process and its children (the history
worker) apart, so a change that moves work between them shows where it went.

    python -m benchmarks.cpu_per_message                       # rooms at 30,000 msg/s
    python -m benchmarks.cpu_per_message --rate 10000 --scenario chat
    python -m benchmarks.cpu_per_message --checkout /tmp/before  # another tree's server

The server (from this checkout, or ``--checkout``'s) runs pinned to CPU 1 with its
history in a temporary file, ``chat-perf`` drives it from CPU 0 at the given rate, and
the CPU times (user + system) of the server process and of its children are read with
psutil before and after. At a fixed rate below saturation the numbers compare across
changes; flat-out throughput is for benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from perf.spawn import SpawnedServer

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """(the process's own CPU seconds, its children's), user + system."""
    own = process.cpu_times()
    children = 0.0
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        children += times.user + times.system
    return own.user + own.system, children


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="rooms", choices=("rooms", "chat", "fanout"))
    p.add_argument("--rate", type=int, default=30_000, help="messages per second (all senders)")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--checkout", type=Path, default=ROOT, help="run this tree's chat-server")
    p.add_argument("--server-cpus", default="1")
    p.add_argument("--load-cpus", default="0")
    args = p.parse_args(argv)
    srv = SpawnedServer(args.server_cpus, cwd=args.checkout)
    srv.start()
    try:
        server = psutil.Process(srv.pid)
        own_before, children_before = cpu_seconds(server)
        with tempfile.TemporaryDirectory(prefix="cpu-per-message-") as out:
            cmd = ["taskset", "-c", args.load_cpus, sys.executable, "-m", "perf", "run",
                   "--target", srv.address, "--scenario", args.scenario,
                   "--rate", str(args.rate), "--duration", str(args.duration),
                   "--out", out, "--no-progress"]  # fmt: skip
            subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=args.duration + 180)
            own_after, children_after = cpu_seconds(server)
            summary = json.loads((Path(out) / "summary.json").read_text())
    finally:
        srv.stop()
    sent = summary["throughput"]["sent"]
    lost = (summary.get("accounting") or {}).get("lost")
    own = (own_after - own_before) / sent * 1e6
    children = (children_after - children_before) / sent * 1e6
    print(f"{args.checkout}: {args.scenario} at {args.rate:,} msg/s, {sent:,} messages sent"
          f" (lost {lost}): server process {own:.2f} us/msg, its children {children:.2f}"
          f" us/msg, together {own + children:.2f} us/msg")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
