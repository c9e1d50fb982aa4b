"""The load every configuration gets (a paced chat-perf run), what is measured of it,
and what one run's row of the table holds."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cluster.processes import (
    ROOT,
    Server,
    cpu_set,
    start_redis,
    start_servers,
    stop_all,
)
from chat_server.process import LOOPBACK
from perf.clock import now_us
from perf.scenario import Scenario

SAMPLE_EVERY_S = 0.05
RUN_SLACK_S = 180  # beyond ramp-up and duration: registration, drain, writing the charts


class CoreBusy:
    """CPU seconds the kernel counts as busy on some CPUs (/proc/stat: user, nice, system,
    irq, softirq), whoever ran. Less the servers' own CPU, it is what other processes
    took from the servers' cores: on a shared machine that disturbs the figures (cold
    caches, more wakeups) even though CPU time counts only a process's own running."""

    def __init__(self, cpus: set[int]) -> None:
        self.names = {f"cpu{c}" for c in cpus}

    def seconds(self) -> float:
        busy = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *ticks = line.split()
                if name in self.names:
                    user, nice, system, _idle, _iowait, irq, softirq = map(int, ticks[:7])
                    busy += user + nice + system + irq + softirq
        return busy / os.sysconf("SC_CLK_TCK")


def busy_rate(samples: list[tuple[int, float]], start_us: int, stop_us: int) -> float:
    """Cores busy (CPU seconds per second) between the first and the last sample inside
    chat-perf's measured window: registering the clients and draining are another load."""
    inside = [(t, busy) for t, busy in samples if start_us <= t <= stop_us]
    if len(inside) < 2:
        raise RuntimeError("fewer than two CPU samples inside the measured window")
    (t0, first), (t1, last) = inside[0], inside[-1]
    return (last - first) / ((t1 - t0) / 1e6)


def scenario_of(args: argparse.Namespace) -> Scenario:
    """The one load every configuration gets: paced, so that CPU per delivery compares."""
    scn = Scenario(
        name="cluster", clients=args.clients, rooms=args.rooms, senders=args.senders,
        rate=args.rate, duration=args.duration, ramp_up=args.ramp_up, msg_size=args.msg_size,
    )  # fmt: skip
    scn.validate()
    return scn


def load_options(args: argparse.Namespace) -> list[str]:
    """chat-perf's options for that load (scenario_of checked them)."""
    return ["--clients", str(args.clients), "--rooms", str(args.rooms),
            "--senders", str(args.senders), "--rate", str(args.rate),
            "--duration", str(args.duration), "--ramp-up", str(args.ramp_up),
            "--msg-size", str(args.msg_size), "--workers", str(args.workers)]  # fmt: skip


def run_load(
    ports: list[int], load: list[str], pids: list[int], cores: set[int], label: str, out: Path,
    timeout: float,
) -> tuple[dict[str, Any], list[float]]:  # fmt: skip
    """``chat-perf run`` against ``ports`` (clients dealt round-robin), watching ``pids``,
    in a child process on this one's CPUs; returns its summary and, over its measured
    window, each pid's CPU in cores (chat-perf's figures) followed by how busy ``cores``
    were (sampled here meanwhile)."""
    target = ",".join(f"{LOOPBACK}:{p}" for p in ports)
    watch = [arg for pid in pids for arg in ("--server-pid", str(pid))]
    cmd = [sys.executable, "-m", "perf", "run", "--target", target, *watch, *load,
           "--label", label, "--out", str(out), "--no-progress"]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    busy = CoreBusy(cores)
    samples: list[tuple[int, float]] = []
    with (out / "chat-perf.log").open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                samples.append((now_us(), busy.seconds()))
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: chat-perf did not finish in {timeout:.0f} s")
                try:
                    proc.wait(SAMPLE_EVERY_S)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            if proc.poll() is None:  # stopped early: let it write what it measured
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    summary_file = out / "summary.json"
    if not summary_file.is_file():
        log_tail = (out / "chat-perf.log").read_text()[-2000:]
        raise RuntimeError(
            f"{label}: chat-perf wrote no summary (exit {proc.returncode}):\n{log_tail}"
        )
    summary = json.loads(summary_file.read_text())
    if not summary["verdict"]["ok"] or summary["interrupted"]:
        raise RuntimeError(f"{label}: chat-perf run failed: {summary['verdict']['problems']}")
    rates = [p["cores"] for p in summary["server"]["per_pid"]]
    if None in rates or len(rates) != len(pids):
        raise RuntimeError("a server process ended during the measured window")
    window = summary["window"]
    return summary, [*rates, busy_rate(samples, window["start_us"], window["stop_us"])]


# --idle-node: 2 nodes, every client of the load on the first, one idle client on the
# second: what a node with no member in the busy rooms spends on them.
IDLE_CONFIG = ("2 nodes, load on one", 2)


def idle_client(port: int) -> socket.socket:
    """A registered client that says nothing more (its replies wait in the kernel)."""
    sock = socket.create_connection((LOOPBACK, port), timeout=10)
    sock.sendall(b"NICK idler\r\nUSER idler 0 * :idle\r\n")
    return sock


def measure(label: str, nodes: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One configuration: start it, load it, stop it; the numbers of one row."""
    redis = start_redis(work / f"redis-{time.monotonic_ns()}", args.redis_cpus) if nodes else None
    servers: list[Server] = []
    idle: socket.socket | None = None
    try:
        servers = start_servers(nodes, redis, args)
        time.sleep(0.5)  # let the servers settle before the clock starts
        pids = [p.pid for p in (*servers, *([redis] if redis else [])) if p.pid is not None]
        ports = [s.port for s in servers]
        if label == IDLE_CONFIG[0]:
            idle = idle_client(ports[1])
            ports = ports[:1]
        cpus = [args.node_cpus[n % len(args.node_cpus)] for n in range(max(1, nodes))]
        cores = set().union(*map(cpu_set, cpus + ([args.redis_cpus] if redis else [])))
        out = work / f"perf-{nodes}-{time.monotonic_ns()}"
        timeout = args.ramp_up + args.duration + RUN_SLACK_S
        summary, rates = run_load(ports, load_options(args), pids, cores, label, out, timeout)
    finally:
        if idle is not None:
            idle.close()
        stop_all(servers, redis)
    row = row_of(label, nodes, summary, rates)
    row["load_nodes"] = len(ports) if nodes else 0
    return row


def row_of(label: str, nodes: int, s: dict[str, Any], rates: list[float]) -> dict[str, Any]:
    """What the table and the model need from one run: rates, latency, harm, and CPU
    per delivery (µs) for each server process, all servers, and redis."""
    dps = s["throughput"]["deliveries_per_s"]
    acc = s["accounting"]
    server_rates = rates[: max(1, nodes)]
    redis_rate = rates[-2] if nodes else 0.0
    others = max(0.0, rates[-1] - sum(server_rates) - redis_rate)
    per_delivery = [r / dps * 1e6 for r in server_rates]
    return {
        "label": label,
        "nodes": nodes,
        "deliveries_per_s": dps,
        "sent_per_s": s["throughput"]["sent_per_s"],
        "receivers_per_message": acc["receivers_per_message"],
        "p50_ms": s["latency_ms"]["p50"],
        "p99_ms": s["latency_ms"]["p99"],
        "server_cores": server_rates,
        "redis_cores": redis_rate,
        "others_cores": others,
        "us_per_delivery_each": per_delivery,
        "us_per_delivery_servers": sum(per_delivery),
        "us_per_delivery_redis": redis_rate / dps * 1e6,
        "us_per_delivery_total": (sum(server_rates) + redis_rate) / dps * 1e6,
        "lost": acc["lost"],
        "duplicates": acc["duplicates"],
        "reordered": acc["reordered"],
        # Members of a room that saw its senders' messages interleaved differently.
        "order_disagreements": acc["order_disagreements"],
        "balanced": acc["balanced"],
        "disconnected": s["clients"].get("disconnected", 0),
        "generator_saturated": s["generator"]["saturated"],
        "warnings": [w for w in s["warnings"] if not _server_wait(w)],
    }


def _server_wait(warning: str) -> bool:
    """chat-perf's remark that a watched server waited for a CPU: here the servers share
    their core(s) by design, and ``doubts`` reports what others took from it."""
    return warning.startswith("the server") and "waited for a CPU" in warning


HARM = ("lost", "duplicates", "reordered", "order_disagreements", "disconnected")


def harm(row: dict[str, Any]) -> list[str]:
    """What makes the run fail: anything lost, duplicated, reordered (in a stream, or
    between the members of a room) or cut."""
    bad = [f"{row[k]:,} {k}" for k in HARM if row[k]]
    if not row["balanced"]:
        bad.append("accounting does not add up (sent x receivers != delivered + lost)")
    return bad


def doubts(row: dict[str, Any], rate: float) -> list[str]:
    """What makes a row's CPU figures less trustworthy without making them wrong."""
    out = []
    busy = sum(row["server_cores"]) + row["redis_cores"] + row["others_cores"]
    if busy > 0.85:
        out.append(
            f"the servers' core(s) were {busy:.0%} busy: near saturation, where batching "
            "lowers the cost: not a fixed-rate figure"
        )
    if row["others_cores"] > 0.05:
        out.append(
            f"other processes took {row['others_cores']:.0%} of the servers' core(s): the "
            "figures are disturbed (cold caches, more wakeups); rerun on a quiet machine"
        )
    if row["sent_per_s"] < 0.95 * rate:
        out.append(f"sent {row['sent_per_s']:,.0f}/s of the {rate:,.0f}/s asked")
    if row["generator_saturated"]:
        out.append("chat-perf's generator was saturated")
    return out


def uneven_spread(clients: int, rooms: int, senders: int, nodes: int) -> str | None:
    """Why the round-robin deal (room i % rooms, node i % nodes) is not even over
    ``nodes``, or None. With rooms sharing a factor with the node count, every member
    of a room lands on the same node, and that cluster no longer fans out across nodes."""
    for room in range(rooms):
        per_node = [0] * nodes
        for i in range(room, clients, rooms):
            per_node[i % nodes] += 1
        if max(per_node) - min(per_node) > 1:
            return f"room {room} has {per_node} members on the {nodes} nodes"
    per_node = [len(range(n, senders, nodes)) for n in range(nodes)]
    if max(per_node) - min(per_node) > 1:
        return f"senders per node {per_node}"
    return None
