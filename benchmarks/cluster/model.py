"""Medians over rounds, and the scaling model: what k nodes, each on a core of its own,
should carry, fitted to the measured CPU per message of 1, 2 and 3 nodes."""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchmarks.cluster.load import HARM

MODEL_NODES = (1, 2, 3, 4, 8, 16)


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
    for key in HARM:
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
