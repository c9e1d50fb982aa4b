"""CPU per delivery of one chat-server and of 1-, 2- and 3-node clusters, same load, same run.

    python benchmarks/cluster_bench.py --repeat 3          # about 3 minutes on 2 cores
    python benchmarks/cluster_bench.py --rate 1000 --duration 20
    python benchmarks/cluster_bench.py --node-cpus 2 3 4 --redis-cpus 1 --load-cpus 0,5-7

Each configuration gets fresh servers on free loopback ports: one chat-server, or a
fresh redis-server and 1, 2 or 3 nodes on it. The load is chat-perf's (its coordinator
runs in this process, its worker processes beside it): the same clients, rooms and
senders for every configuration, dealt round-robin over the nodes (client i joins room
i % rooms and connects to node i % nodes), sending at a fixed total rate for a fixed
time. At a fixed rate the CPU each process spends per delivery compares across
configurations; flat out, each would be measured at a different load. chat-perf counts
every delivery per (sender, room) stream at every receiver: any lost, duplicated or
out-of-order delivery makes this script exit 1.

Pinning: the servers (or nodes) and redis-server run on ``--node-cpus`` and
``--redis-cpus`` (CPU 1), chat-perf on ``--load-cpus`` (CPU 0). CPU time (user +
system from /proc/PID/stat, the processes' children included: each server's history
writer) is sampled while the traffic runs, and only the samples inside chat-perf's
measured window count. With everything on one core this measures what a delivery
*costs*, not what a cluster can carry; the model printed at the end turns the per-node
costs into the capacity to expect when every node has a core of its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat_server.process import LOOPBACK, DaemonProcess, free_port, pinned  # noqa: E402
from perf import results  # noqa: E402
from perf.clock import now_us  # noqa: E402
from perf.coordinator import Coordinator, RunOptions  # noqa: E402
from perf.procstat import usable_cpus  # noqa: E402
from perf.scenario import Scenario, default_workers  # noqa: E402
from perf.spawn import SpawnedServer  # noqa: E402
from tests.support.redis_server import RedisProcess  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "runs"  # not kept in git: rewritten every run
CONFIGS = (("single server", 0), ("1 node", 1), ("2 nodes", 2), ("3 nodes", 3))
# --idle-node: 2 nodes, every client of the load on the first, one idle client on the
# second: what a node with no member in the busy rooms spends on them.
IDLE_CONFIG = ("2 nodes, load on one", 2)
SAMPLE_EVERY_US = 50_000
MODEL_NODES = (1, 2, 3, 4, 8, 16)


# -- processes ---------------------------------------------------------------------------


def pin_self(cpus: str) -> None:
    """Pin this process (and so chat-perf's coordinator and the workers it spawns,
    which inherit the mask) to the load CPUs, before any thread exists."""
    subprocess.run(["taskset", "-p", "-c", cpus, str(os.getpid())], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def start_redis(work: Path, cpus: str) -> RedisProcess:
    """A fresh redis-server, pinned: every configuration starts from an empty stream."""
    redis = RedisProcess(work)
    redis.argv = pinned(redis.argv, cpus)
    return redis.start()


class ClusterNode(DaemonProcess):
    """``python -m chat_server --redis URL --node-id ID`` on a free loopback port, flood
    limit off as for chat-perf --spawn. Not SpawnedServer: that always passes
    --history-db, which a cluster node refuses (its history is in memory, or in
    PostgreSQL given through --node-args)."""

    def __init__(self, redis_url: str, node_id: str, cpus: str, extra: list[str]) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "chat_server", "--host", LOOPBACK,
                   "--port", str(self.port), "--no-flood-limit", "--redis", redis_url,
                   "--node-id", node_id, *extra]  # fmt: skip
        super().__init__(
            pinned(command, cpus), name=f"node {node_id}", cwd=ROOT, keep_lines=10_000,
            own_session=True, start_timeout=20.0,
        )  # fmt: skip


Server = SpawnedServer | ClusterNode


def start_servers(nodes: int, redis: RedisProcess | None, args: argparse.Namespace) -> list[Server]:
    """One chat-server without Redis (``nodes == 0``) or ``nodes`` cluster nodes, each
    in sync with the cluster before the load starts (node n on ``--node-cpus``'s n-th)."""
    cpus = args.node_cpus
    if redis is None:
        return [SpawnedServer(cpus[0], cwd=ROOT).start()]
    started: list[Server] = []
    try:
        for n in range(nodes):
            node = ClusterNode(redis.url, f"n{n}", cpus[n % len(cpus)], shlex.split(args.node_args))
            started.append(node.start())
            node.wait_log("in sync", timeout=20)
    except BaseException:
        stop_all(started, None)
        raise
    return started


def stop_all(servers: list[Server], redis: RedisProcess | None) -> None:
    """Nodes first, so none of them sees Redis vanish and starts its outage handling."""
    for srv in servers:
        srv.stop()
    if redis is not None:
        redis.stop()


# -- measuring ---------------------------------------------------------------------------


class ProcessCpu:
    """User + system CPU seconds of a process and of the children it has now (the single
    server's history writer), read from /proc/PID/stat through psutil.

    perf.procstat.read_cpu_seconds counts the same but looks for children on every call,
    which scans all of /proc (about 1.3 ms here): sampled 20 times a second for four
    processes, that would take a tenth of the load's core.
    """

    def __init__(self, pid: int) -> None:
        main = psutil.Process(pid)
        self.procs = [main, *main.children(recursive=True)]

    def seconds(self) -> float | None:
        """None once any of them has ended."""
        try:
            return sum(sum(p.cpu_times()[:4]) for p in self.procs)  # user, system, reaped kids
        except psutil.Error:
            return None


def cpu_set(text: str) -> set[int]:
    """taskset's list syntax (``1``, ``0,2``, ``4-7``) as CPU numbers."""
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


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


@dataclass
class CpuSamples:
    """CPU seconds of the server processes, read a few times a second while chat-perf
    runs (from its progress callback, on the coordinator's thread), so that the cost
    can be taken over the measured window only: registering the clients and draining
    are a different workload."""

    procs: list[ProcessCpu | CoreBusy]
    samples: list[tuple[int, list[float | None]]] = field(default_factory=list)

    def __call__(self, _snapshot: dict[str, Any]) -> None:
        t = now_us()
        if self.samples and t - self.samples[-1][0] < SAMPLE_EVERY_US:
            return
        self.samples.append((t, [p.seconds() for p in self.procs]))

    def rates(self, start_us: int, stop_us: int) -> list[float]:
        """Each process's CPU in cores (CPU seconds per second) between the first and
        the last sample inside [start_us, stop_us]."""
        inside = [(t, cpu) for t, cpu in self.samples if start_us <= t <= stop_us]
        if len(inside) < 2:
            raise RuntimeError("fewer than two CPU samples inside the measured window")
        (t0, first), (t1, last) = inside[0], inside[-1]
        rates = []
        for a, b in zip(first, last, strict=True):
            if a is None or b is None:
                raise RuntimeError("a server process ended during the measured window")
            rates.append((b - a) / ((t1 - t0) / 1e6))
        return rates


def run_load(
    ports: list[int], scenario: Scenario, workers: int, pids: list[int], cores: set[int],
    label: str,
) -> tuple[dict[str, Any], list[float]]:  # fmt: skip
    """chat-perf's coordinator and workers against ``ports`` (clients dealt round-robin);
    returns its summary and, over the measured window, each pid's CPU rate (in cores)
    followed by how busy ``cores`` were."""
    cpu = CpuSamples([*(ProcessCpu(pid) for pid in pids), CoreBusy(cores)])
    opts = RunOptions(
        host="127.0.0.1", port=ports[0], scenario=scenario, workers=workers, label=label,
        more_targets=tuple(("127.0.0.1", p) for p in ports[1:]),
    )  # fmt: skip
    data = Coordinator(opts, cpu).run()
    target = ",".join(f"127.0.0.1:{p}" for p in ports)
    summary = results.build_summary(data, target, spawned=False)
    if not summary["verdict"]["ok"] or data.interrupted:
        raise RuntimeError(f"{label}: chat-perf run failed: {summary['verdict']['problems']}")
    return summary, cpu.rates(data.start_us, data.stopped_us)


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
        ports = [s.port for s in servers]
        if label == IDLE_CONFIG[0]:
            idle = idle_client(ports[1])
            ports = ports[:1]
        time.sleep(0.5)  # let the servers settle before the clock starts
        pids = [p.pid for p in (*servers, *([redis] if redis else [])) if p.pid is not None]
        cpus = [args.node_cpus[n % len(args.node_cpus)] for n in range(max(1, nodes))]
        cores = set().union(*map(cpu_set, cpus + ([args.redis_cpus] if redis else [])))
        summary, rates = run_load(ports, scenario_of(args), args.workers, pids, cores, label)
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
        "balanced": acc["balanced"],
        "disconnected": s["clients"].get("disconnected", 0),
        "generator_saturated": s["generator"]["saturated"],
        "warnings": s["warnings"],
    }


def harm(row: dict[str, Any]) -> list[str]:
    """What makes the run fail: anything lost, duplicated, reordered or cut."""
    bad = [f"{row[k]:,} {k}" for k in ("lost", "duplicates", "reordered", "disconnected")
           if row[k]]  # fmt: skip
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


# -- the load ----------------------------------------------------------------------------


def scenario_of(args: argparse.Namespace) -> Scenario:
    """The one load every configuration gets: paced, so that CPU per delivery compares."""
    scn = Scenario(
        name="cluster", clients=args.clients, rooms=args.rooms, senders=args.senders,
        rate=args.rate, duration=args.duration, ramp_up=args.ramp_up, msg_size=args.msg_size,
    )  # fmt: skip
    scn.validate()
    return scn


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


# -- summing up --------------------------------------------------------------------------


def medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field medians over rounds (lists element by element); totals are medians of
    the rounds' totals, so they need not equal the sum of the per-node medians."""
    out: dict[str, Any] = {
        "label": rows[0]["label"],
        "nodes": rows[0]["nodes"],
        "rounds": len(rows),
    }
    for key, value in rows[0].items():
        if isinstance(value, bool) or key in ("label", "nodes", "warnings"):
            continue
        if isinstance(value, list):
            out[key] = [statistics.median(r[key][i] for r in rows) for i in range(len(value))]
        elif isinstance(value, int | float):
            out[key] = statistics.median(r[key] for r in rows)
    for key in ("lost", "duplicates", "reordered", "disconnected"):
        out[key] = sum(r[key] for r in rows)  # harm adds up; a median would hide it
    return out


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - slope * mx, slope


def scaling_model(table: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The capacity of k nodes, each on its own core, from the measured per-node costs.

    Every node reads every event of the cluster from Redis (a fixed cost per message,
    ``event``) and does the rest only for its own clients: parsing what they send and
    writing to its local members (``local``, spread over k nodes). So one node spends
    ``event + local / k`` CPU seconds per message of the cluster, fitted to the 1-, 2-
    and 3-node runs. Redis does per message a fixed part plus one read per node:
    ``r0 + r1 * k``. A cluster saturates when a node's core or redis's core is full.
    """
    clusters = [r for r in table if r["nodes"] >= 1 and r.get("load_nodes") == r["nodes"]]
    single = next((r for r in table if r["nodes"] == 0), None)
    if len(clusters) < 2 or single is None:
        return None
    ks = [r["nodes"] for r in clusters]
    node_cost = [sum(r["server_cores"]) / r["nodes"] / r["sent_per_s"] for r in clusters]
    redis_cost = [r["redis_cores"] / r["sent_per_s"] for r in clusters]
    event, local = fit_line([1 / k for k in ks], node_cost)
    r0, r1 = fit_line([float(k) for k in ks], redis_cost)
    receivers = statistics.fmean(r["receivers_per_message"] for r in table)
    single_cap = single["sent_per_s"] / sum(single["server_cores"])
    rows = []
    for k in MODEL_NODES:
        node_cap = 1 / (event + local / k) if event + local / k > 0 else math.inf
        redis_cap = 1 / (r0 + r1 * k) if r0 + r1 * k > 0 else math.inf
        cap = min(node_cap, redis_cap)
        rows.append({"nodes": k, "node_bound_msgs_per_s": node_cap,
                     "redis_bound_msgs_per_s": redis_cap, "msgs_per_s": cap,
                     "deliveries_per_s": cap * receivers, "vs_single_server": cap / single_cap,
                     "bound_by": "redis" if redis_cap < node_cap else "nodes"})  # fmt: skip
    return {
        "receivers_per_message": receivers,
        "node_event_us_per_msg": event * 1e6,
        "node_local_us_per_msg": local * 1e6,
        "node_fit_residual_us": max(
            abs(event + local / k - c) * 1e6 for k, c in zip(ks, node_cost, strict=True)
        ),
        "redis_fixed_us_per_msg": r0 * 1e6,
        "redis_per_node_us_per_msg": r1 * 1e6,
        "single_server_us_per_msg": 1e6 / single_cap,
        "single_server_msgs_per_s": single_cap,
        "node_limit_msgs_per_s": 1 / event if event > 0 else math.inf,
        "rows": rows,
    }


# -- printing ----------------------------------------------------------------------------


def _us(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def print_round(k: int, row: dict[str, Any], rate: float) -> None:
    """One run's line as it finishes, with whatever makes its figures doubtful."""
    redis = f", redis {row['us_per_delivery_redis']:.2f}" if row["nodes"] else ""
    print(
        f"round {k + 1} · {row['label']}: {row['deliveries_per_s']:,.0f} deliveries/s, "
        f"{row['us_per_delivery_total']:.2f} µs CPU per delivery (servers "
        f"{_us(row['us_per_delivery_each'])}{redis}), p99 {row['p99_ms']:.2f} ms, "
        f"lost {row['lost']} dup {row['duplicates']} reordered {row['reordered']}",
        flush=True,
    )
    for note in doubts(row, rate) + row["warnings"]:
        print(f"  note: {note}", flush=True)


def print_table(table: list[dict[str, Any]], rounds: int) -> None:
    """Markdown, so it pastes into benchmarks/README.md as it is."""
    print(
        f"\nMedians over {rounds} round(s). CPU in µs per delivery; a node's figure is its\n"
        "CPU over all deliveries of the cluster, so the nodes add up to the total:\n"
    )
    print(
        "| setup | deliveries/s | p50 / p99 ms | each node | all nodes | redis "
        "| nodes + redis | core busy: ours + others | lost / dup / reordered |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        ours = sum(r["server_cores"]) + r["redis_cores"]
        redis = f"{r['us_per_delivery_redis']:.2f}" if r["nodes"] else "-"
        print(f"| {r['label']} | {r['deliveries_per_s']:,.0f} "
              f"| {r['p50_ms']:.2f} / {r['p99_ms']:.2f} | {_us(r['us_per_delivery_each'])} "
              f"| {r['us_per_delivery_servers']:.2f} | {redis} "
              f"| {r['us_per_delivery_total']:.2f} | {ours:.0%} + {r['others_cores']:.0%} "
              f"| {r['lost']} / {r['duplicates']} / {r['reordered']} |")  # fmt: skip


def print_model(model: dict[str, Any] | None) -> None:
    """The model in words with its fitted numbers, then its table."""
    if model is None:
        print("\n(no scaling model: it needs the single server and at least two cluster sizes)")
        return
    m = model
    e, loc = m["node_event_us_per_msg"], m["node_local_us_per_msg"]
    r0, r1 = m["redis_fixed_us_per_msg"], m["redis_per_node_us_per_msg"]
    one, one_cap = m["single_server_us_per_msg"], m["single_server_msgs_per_s"]
    print(f"""
Expected scaling with every node and redis on a core of its own (a model fitted to the
medians above; {m['receivers_per_message']:.0f} receivers per message, as in this load):
- Every node reads every message of the rooms it has members in (in this load every
  room has members on every node) and handles it: {e:.0f} µs of CPU per message on each
  node, however many nodes there are. (--idle-node shows a node without members.)
- The rest follows the clients, which are spread evenly: reading what the senders send
  and writing to the room members, {loc:.0f} µs per message in all, 1/k of it per node.
- So a node spends {e:.0f} + {loc:.0f}/k µs per message, and its core is full at
  1 s / that (the fit is within {m['node_fit_residual_us']:.0f} µs of the 1-3 node figures).
  No number of nodes gets past 1 s / {e:.0f} µs = {m['node_limit_msgs_per_s']:,.0f} msg/s.
- Redis spends {r0:.0f} µs per message (the script that appends it) plus {r1:.0f} µs per
  node (each node reads it): full at 1 s / ({r0:.0f} + {r1:.0f}·k) µs.
- A cluster goes as fast as its busiest core. One server spends {one:.0f} µs per message
  (its history writer included): full at {one_cap:,.0f} msg/s.
- Measured at a light, paced load, where nearly every message is handled on its own
  (a wakeup, a Redis read per node, a write per member). Near saturation these batch
  and every cost above falls, the per-node read most: take the rates as lower bounds
  and the levelling off as the model's warning, not as a measured ceiling.
""")  # fmt: skip
    print("| nodes | msg/s a node allows | msg/s redis allows | deliveries/s | vs one server |")
    print("|---|---|---|---|---|")
    for r in m["rows"]:
        print(f"| {r['nodes']} | {r['node_bound_msgs_per_s']:,.0f} "
              f"| {r['redis_bound_msgs_per_s']:,.0f} | {r['deliveries_per_s']:,.0f} "
              f"| {r['vs_single_server']:.2f}x ({r['bound_by']} bound) |")  # fmt: skip


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=120)
    p.add_argument(
        "--rooms",
        type=int,
        default=5,
        help="keep it coprime with 2 and 3, so every room spans every node",
    )
    p.add_argument("--senders", type=int, default=30)
    p.add_argument("--rate", type=float, default=300.0, help="messages/s over all senders")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of measured traffic")
    p.add_argument("--ramp-up", type=float, default=0.0)
    p.add_argument("--msg-size", type=int, default=64)
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every configuration, order reversed every other round",
    )
    p.add_argument(
        "--node-cpus",
        nargs="+",
        default=["1"],
        metavar="CPUS",
        help="taskset list per node (node n gets the n-th, cycling); the single "
        "server gets the first (default: 1)",
    )
    p.add_argument(
        "--node-args", default="", help="more chat-server options for every cluster node"
    )
    p.add_argument("--redis-cpus", default="1", help="taskset list for redis-server")
    p.add_argument("--load-cpus", default="0", help="taskset list for chat-perf")
    p.add_argument(
        "--workers",
        type=int,
        help="chat-perf worker processes (default: as chat-perf picks for the load CPUs)",
    )
    p.add_argument(
        "--idle-node",
        action="store_true",
        help="also run 2 nodes with the whole load on the first and one idle client on"
        " the second (what a node pays for rooms it has no member in)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "cluster.json")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tree = tree_state()
    pin_self(args.load_cpus)
    args.workers = args.workers or default_workers(args.clients, usable_cpus())
    for _, nodes in CONFIGS[1:]:
        if why := uneven_spread(args.clients, args.rooms, args.senders, nodes):
            print(f"warning: the load is not even over {nodes} nodes: {why}", file=sys.stderr)
    configs = (*CONFIGS, IDLE_CONFIG) if args.idle_node else CONFIGS
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in configs}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        for k in range(args.repeat):
            order = configs if k % 2 == 0 else configs[::-1]
            for label, nodes in order:
                row = measure(label, nodes, args, Path(tmp))
                runs[label].append(row)
                print_round(k, row, args.rate)
    table = [medians(runs[label]) for label, _ in configs]
    model = scaling_model(table)
    print_table(table, args.repeat)
    print_model(model)
    if (now := tree_state()) != tree:
        tree = f"{tree} at the start, {now} at the end: the code changed during the run"
        print(f"warning: {tree}", file=sys.stderr)
    write_json(args, runs, table, model, tree)
    failures = [f"{label} round {k + 1}: {', '.join(bad)}"
                for label, rows in runs.items() for k, row in enumerate(rows)
                if (bad := harm(row))]  # fmt: skip
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


def tree_state() -> str:
    """The commit measured, and whether chat_server/ or perf/ differed from it (others
    may be editing the checkout while this runs; every server started imports anew)."""

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--short", "--", "chat_server", "perf")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


def write_json(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
    table: list[dict[str, Any]],
    model: dict[str, Any] | None,
    tree: str,
) -> None:
    """Every round's rows, the medians and the model, with what was measured where."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "tree": tree,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "medians": table,
        "rounds": runs,
        "scaling_model": model,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
