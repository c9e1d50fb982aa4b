"""The numbers of summary.json, from what the workers sent back and what the
coordinator measured: counts, loss and order checks, latencies, the server's and the
generator's CPU, time series."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from perf import histogram as hg
from perf.coordinator import RunData
from perf.order import compare_orders
from perf.procstat import ResourceSeries
from perf.sequence import StreamTally, account
from perf.servers import ServerWindow
from perf.verdict import IMPOSSIBLE, run_warnings, verdict

SATURATION_BUSY = 0.9


def build_summary(data: RunData, target: str, spawned: bool) -> dict[str, Any]:
    """All reported numbers, JSON-ready. Latencies in ms, rates per second."""
    opts = data.options
    scn = opts.scenario
    res = data.results
    window = max(1e-9, (data.stopped_us - data.start_us) / 1e6) if data.start_us else 0.0

    total = hg.new_histogram()
    echo = hg.new_histogram()
    send_lag = hg.new_histogram()
    # Each from the client's connect(): TCP up, TLS handshake done (with --tls), 001, joined.
    connect = {k: hg.new_histogram() for k in ("tcp", "tls", "welcome", "joined")}
    tallies: dict[tuple[int, str], StreamTally] = {}
    sent_streams: dict[tuple[int, str], int] = {}
    members: dict[str, set[int]] = {}
    errors: dict[str, int] = {}
    disconnects: dict[str, int] = {}
    impossible = 0
    impossible_range: list[int] = []
    for r in res:
        hg.merge_into(total, r["hist"])
        hg.merge_into(echo, r["echo_hist"])
        hg.merge_into(send_lag, r["send_lag_hist"])
        for k in connect:
            hg.merge_into(connect[k], r[f"connect_{k}"])
        for key, tup in r["tallies"].items():
            tallies.setdefault(key, StreamTally()).merge(StreamTally(*tup))
        sent_streams.update(r["sent_streams"])
        for room, idx in r["members"].items():
            members.setdefault(room, set()).update(idx)
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in r.get("disconnects", {}).items():
            disconnects[k] = disconnects.get(k, 0) + v
        impossible += r.get("impossible", 0)
        impossible_range += r.get("impossible_range") or []
    if impossible:
        errors[IMPOSSIBLE] = errors.get(IMPOSSIBLE, 0) + impossible
    receivers_of = {
        (sid, room): len(members.get(room, ())) - (1 if sid in members.get(room, ()) else 0)
        for (sid, room) in sent_streams
    }
    acc = account(sent_streams, tallies, receivers_of)
    order = compare_orders(r["arrival_orders"] for r in res if "arrival_orders" in r)
    sent = sum(sent_streams.values())
    series = _series(data, window)
    in_window = series.pop("_delivered_in_window")
    sent_in_window = series.pop("_sent_in_window")

    registered = sum(r["registered"] for r in res)
    joined = len(set().union(*members.values())) if members else 0
    summary: dict[str, Any] = {
        "label": opts.label,
        "target": target,
        "spawned": spawned,
        "tls": {
            "enabled": opts.tls is not None,
            "verified": opts.tls is not None and opts.tls.verified,
        },
        "started_at": datetime.fromtimestamp(data.started_wall, UTC).isoformat(timespec="seconds"),
        "scenario": scn.as_dict(),
        "interrupted": data.interrupted,
        "aborted_reason": data.aborted_reason,
        "duration_s": round(window, 3),
        "window": _window(data),
        "clients": {
            "planned": scn.clients,
            "registered": registered,
            # Clients that are members of their room (those cut since included).
            "joined": joined if not scn.storm else None,
            # Every client that closed or never started, disconnected ones included.
            "failed": sum(r["closed"] for r in res) + scn.clients - sum(r["clients"] for r in res),
            # Clients closed after joining: cut by the server (e.g. ERROR :Closing link:
            # ... (SendQ exceeded)) or their connection died. Still counted as receivers.
            "disconnected": sum(disconnects.values()),
            "disconnect_reasons": dict(sorted(disconnects.items(), key=lambda kv: -kv[1])),
            "echo_message": sum(r["echo"] for r in res),
        },
        "throughput": {
            "sent": sent,
            "sent_per_s": sent_in_window / window if window else 0.0,
            "deliveries": acc.delivered,
            "deliveries_per_s": in_window / window if window else 0.0,
        },
        "accounting": {
            "expected": acc.expected,
            "delivered": acc.delivered,
            "lost": acc.lost,
            "loss_rate": acc.lost / acc.expected if acc.expected else 0.0,
            "duplicates": acc.dups,
            "reordered": acc.reorders,
            # Places where a member's order of the room's messages (all senders
            # interleaved) departs from another member's: see "order".
            "order_disagreements": order.disagreements,
            "overrun": acc.overrun,
            "balanced": acc.balanced,
            "receivers_per_message": (acc.expected / sent) if sent else 0.0,
        },
        "order": order.as_dict(),
        "latency_ms": {
            **hg.percentiles_ms(total),
            "count": total.get_total_count(),
            # Received before their scheduled send (or not within an hour): a clock or
            # generator bug, counted and left out of every percentile.
            "impossible": impossible,
            "impossible_range_ms": [min(impossible_range) / 1000, max(impossible_range) / 1000]
            if impossible_range
            else None,
        },
        "echo_latency_ms": {**hg.percentiles_ms(echo), "count": echo.get_total_count()},
        "send_lag_ms": {**hg.percentiles_ms(send_lag), "count": send_lag.get_total_count()},
        "connect_ms": {
            k: {**hg.percentiles_ms(h), "count": h.get_total_count()} for k, h in connect.items()
        },
        "errors": errors,
        "worker_errors": data.worker_errors,
        "series": series,
        "histogram": hg.encode(total),
        "connect_histogram": hg.encode(connect["welcome"]),
    }
    if scn.storm:
        last = [r["last_welcome_us"] for r in res if r.get("last_welcome_us")]
        summary["storm"] = {
            "all_registered_s": max(last) / 1e6 if last else None,
            "registered": summary["clients"]["registered"],
            "complete": summary["clients"]["registered"] == scn.clients,
        }
    summary["server"] = _server(data, scn.clients)
    summary["generator"] = _generator(data, window)
    rows = sum(len(r["raw_rows"]) for r in res)
    stride = max((r["raw_stride"] for r in res), default=1)
    summary["latencies_csv"] = {
        "rows": rows,
        "of": sum(r["raw_seen"] for r in res),
        "sampled": stride > 1,
        "stride": stride,
    }
    summary["warnings"] = run_warnings(summary)
    summary["verdict"] = verdict(summary, f"{opts.host}:{opts.port}")
    return summary


def _window(data: RunData) -> dict[str, Any]:
    """When traffic was measured: in µs of CLOCK_MONOTONIC (which every process of this
    machine shares, so other tools can pick their own samples inside it) and in Unix
    seconds."""
    if not data.start_us:
        return {"start_us": None, "stop_us": None, "start_unix_s": None, "stop_unix_s": None}
    return {
        "start_us": data.start_us,
        "stop_us": data.stopped_us,
        "start_unix_s": (data.start_us + data.unix_offset_us) / 1e6,
        "stop_unix_s": (data.stopped_us + data.unix_offset_us) / 1e6,
    }


def _series(data: RunData, window: float) -> dict[str, Any]:
    interval = data.interval_s
    sent: dict[int, int] = {}
    delivered: dict[int, int] = {}
    registered: dict[int, int] = {}
    failed: dict[int, int] = {}
    hists: dict[int, Any] = {}
    for r in data.results:
        for key, dst in (
            ("sent", sent),
            ("delivered", delivered),
            ("registered", registered),
            ("failed", failed),
        ):
            src = r.get(f"{key}_series", {})
            for i, n in src.items():
                dst[i] = dst.get(i, 0) + n
        for i, enc in r["intervals"].items():
            h = hists.get(i)
            if h is None:
                h = hists[i] = hg.decode(None, 2)
            hg.merge_into(h, enc)
    n_window = math.ceil(window / interval - 1e-9) if window else 0
    last = max([*sent, *delivered, *registered, *hists, n_window - 1], default=-1)
    idx = [i for i in range(0, last + 1)]
    out: dict[str, Any] = {
        "interval_s": interval,
        "window_intervals": n_window,
        "t_s": [round((i + 1) * interval, 6) for i in idx],
        "sent_per_s": [sent.get(i, 0) / interval for i in idx],
        "deliveries_per_s": [delivered.get(i, 0) / interval for i in idx],
        "registrations_per_s": [registered.get(i, 0) / interval for i in idx],
        # Clients closed (refused, cut or failed) in each interval: a count, not a rate.
        "client_failures": [failed.get(i, 0) for i in idx],
    }
    for key in ("p50", "p90", "p99", "p99.9", "max"):
        out[f"{key}_ms"] = []
    for i in idx:
        h = hists.get(i)
        pct = hg.percentiles_ms(h) if h is not None else {}
        for key in ("p50", "p90", "p99", "p99.9", "max"):
            out[f"{key}_ms"].append(pct.get(key))
    out["_delivered_in_window"] = sum(n for i, n in delivered.items() if 0 <= i < n_window)
    out["_sent_in_window"] = sum(n for i, n in sent.items() if 0 <= i < n_window)
    if data.resources is not None and data.resources.t:
        out["server_t_s"] = data.resources.t
        out["server_cpu_percent"] = data.resources.cpu_percent
        out["server_rss_mib"] = [b / 2**20 for b in data.resources.rss_bytes]
    return out


def _server(data: RunData, clients: int) -> dict[str, Any]:
    """The watched processes (--server-pid): summed at the top, each in ``per_pid``."""
    pids = list(data.options.server_pids)
    out: dict[str, Any] = {"pid": pids[0] if pids else None, "pids": pids}
    per_pid = [_process(w, _window_cpu(w.series, data)) for w in data.servers]
    if per_pid:
        cpu = [p["cpu_s"] for p in per_pid]
        out["cpu_s"] = None if None in cpu else sum(cpu)
        cores = [p["cores"] for p in per_pid]
        out["cores"] = None if None in cores else sum(cores)
    if len(per_pid) == 1:
        for key in ("runqueue_wait_fraction", "helper_cpu_fraction"):
            if per_pid[0].get(key) is not None:
                out[key] = per_pid[0][key]
    if data.resources is not None:
        out.update(_window_cpu(data.resources, data))
    if data.rss_before_bytes is not None:
        out["rss_before_mib"] = data.rss_before_bytes / 2**20
    if data.rss_after_bytes is not None and data.rss_before_bytes is not None:
        out["rss_after_mib"] = data.rss_after_bytes / 2**20
        grown = data.rss_after_bytes - data.rss_before_bytes
        out["rss_per_client_kib"] = grown / 1024 / max(1, clients)
    out["per_pid"] = per_pid
    return out


def _window_cpu(series: ResourceSeries, data: RunData) -> dict[str, Any]:
    """Mean and peak of sampled CPU (only the measured window counts: connecting is
    another workload) and peak memory of one process or of all."""
    end = (data.stopped_us - data.start_us) / 1e6 + 0.25
    cpus = [c for t, c in zip(series.t, series.cpu_percent, strict=True) if 0 <= t <= end]
    return {
        "cpu_percent_mean": sum(cpus) / len(cpus) if cpus else None,
        "cpu_percent_max": max(cpus) if cpus else None,
        "rss_max_mib": max(series.rss_bytes) / 2**20 if series.rss_bytes else None,
    }


def _process(w: ServerWindow, sampled: dict[str, Any]) -> dict[str, Any]:
    """One watched process: CPU read at the window's start and end (``cores`` is CPU
    seconds per second), what it waited for a CPU and what its helpers ran."""
    wall = w.wall_s
    cpu = w.used("cpu_s")
    wait = w.used("runqueue_wait_s")
    helper = w.used("helper_cpu_s")
    return {
        "pid": w.pid,
        "cpu_s": cpu,
        "cores": cpu / wall if cpu is not None and wall > 0 else None,
        **sampled,
        "runqueue_wait_fraction": wait / wall if wait is not None and wall > 0 else None,
        "helper_cpu_fraction": helper / wall if helper is not None and wall > 0 else None,
    }


def _generator(data: RunData, window: float) -> dict[str, Any]:
    per_worker = [
        r["cpu_window_s"] / r["window_wall_s"] if r.get("window_wall_s") else None
        for r in data.results
    ]
    cpu = sum(r["cpu_window_s"] for r in data.results) + data.coordinator_cpu_s
    usable = min(data.cpus, len(data.results) + 1) if data.results else data.cpus
    busy = cpu / (window * usable) if window else None
    known = [b for b in per_worker if b is not None]
    waits = [
        r.get("runqueue_wait_s", 0.0) / r["window_wall_s"]
        for r in data.results
        if r.get("window_wall_s")
    ]
    # A worker that was running or waiting to run nearly all the time wanted more CPU
    # than it got: the results are bounded by the generator, whoever took the CPU.
    demand = [b + w for b, w in zip(known, waits, strict=False)]
    saturated = bool(demand and max(demand) >= SATURATION_BUSY) or bool(
        busy and busy >= SATURATION_BUSY
    )
    lines = sum(r.get("window_lines", 0) for r in data.results)
    recvs = sum(r.get("window_recvs", 0) for r in data.results)
    worker_cpu = sum(r["cpu_window_s"] for r in data.results)
    return {
        "runqueue_wait_fraction": max(waits) if waits else None,
        # What the receive path costs: lines received per second of worker CPU, and how
        # many lines one recv() brought (few lines per call means syscall-bound).
        "lines_received": lines,
        "lines_per_cpu_s": lines / worker_cpu if worker_cpu > 0 else None,
        "lines_per_recv": lines / recvs if recvs else None,
        "workers": len(data.results),
        "cpus": data.cpus,
        "cpu_s": cpu,
        "busy_fraction": busy,
        "worker_busy": per_worker,
        "saturated": saturated,
    }
