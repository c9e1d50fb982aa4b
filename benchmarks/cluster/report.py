"""What the benchmark prints (Markdown tables that paste into benchmarks/README.md) and
the JSON file it writes, with the commit measured."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.cluster.load import doubts
from benchmarks.cluster.processes import ROOT


def _us(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def print_round(k: int, row: dict[str, Any], rate: float) -> None:
    """One run's line as it finishes, with whatever makes its figures doubtful."""
    redis = f", redis {row['us_per_delivery_redis']:.2f}" if row["nodes"] else ""
    print(
        f"round {k + 1} · {row['label']}: {row['deliveries_per_s']:,.0f} deliveries/s, "
        f"{row['us_per_delivery_total']:.2f} µs CPU per delivery (servers "
        f"{_us(row['us_per_delivery_each'])}{redis}), p99 {row['p99_ms']:.2f} ms, "
        f"lost {row['lost']} dup {row['duplicates']} reordered {row['reordered']}"
        + (f" order disagreements {n}" if (n := row["order_disagreements"]) else ""),
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
