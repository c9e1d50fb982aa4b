"""CPU per delivery of one chat-server and of 1-, 2- and 3-node clusters, same load, same run.

    python benchmarks/cluster_bench.py --repeat 3          # about 3 minutes on 2 cores
    python benchmarks/cluster_bench.py --rate 1000 --duration 20
    python benchmarks/cluster_bench.py --node-cpus 2 3 4 --redis-cpus 1 --load-cpus 0,5-7

Each configuration gets fresh servers on free loopback ports: one chat-server, or a
fresh redis-server and 1, 2 or 3 nodes on it. The load is a ``chat-perf run`` (a child
process, with its worker processes): the same clients, rooms and senders for every
configuration, dealt round-robin over the nodes (client i joins room i % rooms and
connects to node i % nodes), sending at a fixed total rate for a fixed time. At a fixed
rate the CPU each process spends per delivery compares across configurations; flat out,
each would be measured at a different load. chat-perf counts every delivery per (sender,
room) stream at every receiver and compares the order in which a room's members got its
messages: any lost, duplicated or out-of-order delivery, or two members of a room that
disagree on its order, makes this script exit 1.

Pinning: the servers (or nodes) and redis-server run on ``--node-cpus`` and
``--redis-cpus`` (CPU 1), chat-perf on ``--load-cpus`` (CPU 0). chat-perf watches every
server process and redis (``--server-pid``, once each) and reads their CPU time (user +
system, their children included: each server's history writer) at the start and the end
of its measured window; how busy their cores were, whoever ran, is sampled here and taken
over the same window. With everything on one core this measures what a delivery
*costs*, not what a cluster can carry; the model printed at the end turns the per-node
costs into the capacity to expect when every node has a core of its own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cluster.load import (  # noqa: E402
    IDLE_CONFIG,
    harm,
    measure,
    scenario_of,
    uneven_spread,
)
from benchmarks.cluster.model import medians, scaling_model  # noqa: E402
from benchmarks.cluster.processes import pin_self  # noqa: E402
from benchmarks.cluster.report import (  # noqa: E402
    print_model,
    print_round,
    print_table,
    tree_state,
    write_json,
)
from perf.procstat import usable_cpus  # noqa: E402
from perf.scenario import default_workers  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "runs"  # not kept in git: rewritten every run
CONFIGS = (("single server", 0), ("1 node", 1), ("2 nodes", 2), ("3 nodes", 3))


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
    scenario_of(args)  # a load chat-perf would refuse fails here, before any server starts
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


if __name__ == "__main__":
    raise SystemExit(main())
