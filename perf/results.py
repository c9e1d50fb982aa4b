"""Turn what the workers sent back into the numbers of summary.json and latencies.csv."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perf import histogram as hg
from perf.coordinator import RunData
from perf.sequence import StreamTally, account

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
            "overrun": acc.overrun,
            "balanced": acc.balanced,
            "receivers_per_message": (acc.expected / sent) if sent else 0.0,
        },
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
    summary["warnings"] = _warnings(summary)
    summary["verdict"] = verdict(summary, f"{opts.host}:{opts.port}")
    return summary


IMPOSSIBLE = "impossible latency (received before its scheduled send, or after an hour)"
PER_ADDRESS_REASON = "Too many connections from your address"
TOP_REASONS = 3


def verdict(summary: dict[str, Any], address: str) -> dict[str, Any]:
    """Whether the run measured what it planned, and if not, why: the problems (one line
    each, most serious first), the commonest client failure reasons and what to try.

    A run with fewer registered (or joined) clients than planned measured a different,
    smaller load: its numbers must not pass for the planned run's.
    """
    clients = summary["clients"]
    planned = clients["planned"]
    registered = clients["registered"]
    joined = clients.get("joined")
    problems: list[str] = []
    if summary.get("aborted_reason"):
        problems.append(f"run aborted before traffic: {summary['aborted_reason']}")
    if registered < planned or (joined is not None and joined < planned):
        joined_text = "" if joined is None else f", {joined:,} joined their room"
        measured = registered if joined is None else min(registered, joined)
        problems.append(
            f"only {registered:,} of {planned:,} planned clients registered{joined_text}: "
            f"the numbers are for {measured:,} clients, not the planned load"
        )
    if summary.get("interrupted"):
        problems.append("run was interrupted; the numbers cover only the part that ran")
    lat = summary["latency_ms"]
    if lat.get("impossible"):
        lo, hi = lat.get("impossible_range_ms") or (None, None)
        problems.append(
            f"{lat['impossible']:,} impossible latencies (from {lo:,.3f} to {hi:,.3f} ms) were "
            "left out of the percentiles: the generator's clock or bookkeeping is wrong"
        )
    failures = {k: v for k, v in summary.get("errors", {}).items() if k != IMPOSSIBLE}
    reasons = sorted(failures.items(), key=lambda kv: -kv[1])[:TOP_REASONS]
    hints: list[str] = []
    if any(PER_ADDRESS_REASON in r for r, _ in reasons):
        hints.append(
            "the server limits connections per address (chat-server's max_per_address, "
            "256 by default): start it with --no-flood-limit or --max-per-address N "
            "(chat-perf --spawn does), or run fewer --clients"
        )
    if any("ECONNREFUSED" in r for r, _ in reasons):
        hints.append(f"nothing accepted connections at {address}: is the server running there?")
    if registered < planned and not hints and reasons:
        hints.append(
            "a server may limit connections per address (chat-server: --no-flood-limit or "
            "--max-per-address N) or registrations (--registration-timeout)"
        )
    return {
        "ok": not problems,
        "problems": problems,
        "reasons": [[r, n] for r, n in reasons],
        "hints": hints,
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
    out: dict[str, Any] = {"pid": data.options.server_pid}
    window = (data.stopped_us - data.start_us) / 1e6 if data.start_us else 0.0
    if data.server_runqueue_wait_s is not None and window > 0:
        out["runqueue_wait_fraction"] = data.server_runqueue_wait_s / window
    if data.server_helper_cpu_s is not None and window > 0:
        out["helper_cpu_fraction"] = data.server_helper_cpu_s / window
    if data.resources is not None:
        # Only the measured window counts for CPU; connecting is a different workload.
        win = [
            (c, m)
            for t, c, m in zip(
                data.resources.t, data.resources.cpu_percent, data.resources.rss_bytes, strict=True
            )
            if 0 <= t <= (data.stopped_us - data.start_us) / 1e6 + 0.25
        ]
        cpus = [c for c, _ in win]
        out["cpu_percent_mean"] = sum(cpus) / len(cpus) if cpus else None
        out["cpu_percent_max"] = max(cpus) if cpus else None
        rss = data.resources.rss_bytes
        out["rss_max_mib"] = max(rss) / 2**20 if rss else None
    if data.rss_before_bytes is not None:
        out["rss_before_mib"] = data.rss_before_bytes / 2**20
    if data.rss_after_bytes is not None and data.rss_before_bytes is not None:
        out["rss_after_mib"] = data.rss_after_bytes / 2**20
        grown = data.rss_after_bytes - data.rss_before_bytes
        out["rss_per_client_kib"] = grown / 1024 / max(1, clients)
    return out


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


def _warnings(summary: dict[str, Any]) -> list[str]:
    out = []
    gen = summary["generator"]
    if gen["saturated"]:
        worst = max([b for b in gen["worker_busy"] if b is not None] + [gen["busy_fraction"] or 0])
        wait = gen.get("runqueue_wait_fraction") or 0.0
        out.append(
            f"load generator was saturated (busiest worker ran {worst:.0%} of the time and "
            f"waited for a CPU {wait:.0%}): throughput is a lower bound and latency an upper "
            "bound of what the server can do"
        )
    server = summary["server"]
    for who, frac, own in (
        ("load generator", gen.get("runqueue_wait_fraction"), 0.0),
        ("server", server.get("runqueue_wait_fraction"), server.get("helper_cpu_fraction") or 0.0),
    ):
        if frac is None or frac <= 0.05:
            continue
        if frac - own > 0.05:
            out.append(
                f"the {who} waited for a CPU {frac:.0%} of the time (other processes on the "
                "machine): latency and throughput are disturbed; pin with taskset and rerun"
            )
        else:
            # Its own threads and helper processes share its core: part of its cost.
            out.append(
                f"the {who}'s main thread waited for a CPU {frac:.0%} of the time while its "
                f"own other threads and child processes ran {own:.0%} of a core beside it "
                "(its own work, counted in its CPU figure; nothing else disturbed it)"
            )
    lag = summary["send_lag_ms"]
    if lag["p99"] is not None and lag["p99"] > 1.0:
        out.append(
            f"senders ran late (p99 {lag['p99']:.2f} ms behind schedule): the generator was "
            "short of CPU, so latency includes its own delay (machine busy or generator saturated)"
        )
    acc = summary["accounting"]
    if acc["lost"]:
        out.append(f"{acc['lost']} deliveries lost ({acc['loss_rate']:.3%})")
    if not acc["balanced"]:
        out.append("accounting does not add up (sent x receivers != delivered + lost)")
    clients = summary["clients"]
    cut = clients.get("disconnected") or 0
    if cut:
        reasons = clients.get("disconnect_reasons") or {}
        top = max(reasons, key=lambda k: reasons[k]) if reasons else "unknown"
        out.append(
            f"{cut} of {clients['planned']} client(s) were disconnected after joining "
            f"(most: {top!r}); their missed deliveries count as lost"
        )
    failed = clients["failed"] - cut
    if failed:
        out.append(f"{failed} client(s) failed before joining or never connected")
    if summary["latencies_csv"]["sampled"]:
        out.append(f"latencies.csv is sampled: 1 row in {summary['latencies_csv']['stride']}")
    return out


def write_csv(data: RunData, path: Path) -> int:
    """Raw per-message rows, sorted by receive time (may be a uniform sample)."""
    rows = [row for r in data.results for row in r["raw_rows"]]
    rows.sort(key=lambda row: row[0])
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["recv_time_s", "latency_us", "sender", "seq", "room", "receiver"])
        for t, lat, sid, seq, room, receiver in rows:
            w.writerow([f"{t / 1e6:.6f}", lat, sid, seq, room, receiver])
    return len(rows)


def write_latency_data(data: RunData, summary: dict[str, Any], path: Path) -> int:
    """``latency_data.txt``: one latency in milliseconds per line, in receive order.

    The deliveries of latencies.csv (every one, or the same uniform sample, stated in a
    ``#`` line); for a storm, every client's time from connect to 001, ascending. Impossible values
    (see ``verdict``) are left out and counted in that line.
    """
    head: list[str] = []
    if summary["scenario"].get("storm"):
        values = sorted(v for r in data.results for v in r.get("welcome_us", []))
    else:
        rows = sorted((row for r in data.results for row in r["raw_rows"]), key=lambda x: x[0])
        values = [row[1] for row in rows]
        info = summary["latencies_csv"]
        if info["sampled"]:
            head.append(
                f"sampled: 1 delivery in {info['stride']} ({info['rows']:,} of {info['of']:,}), "
                "the same rows as latencies.csv"
            )
    kept = [v for v in values if hg.LOWEST_US <= v <= hg.HIGHEST_US]
    if len(kept) < len(values):
        head.append(f"{len(values) - len(kept):,} impossible values (< 1 µs or > 1 h) left out")
    with path.open("w") as f:
        if head:
            f.write("# " + "; ".join(head) + "\n")
        f.writelines(f"{v / 1000:.3f}\n" for v in kept)
    return len(kept)


def write_percentiles(summary: dict[str, Any], path: Path) -> None:
    """``percentiles.txt``: HdrHistogram's percentile table of the run's latencies (or,
    for a storm, of the times to 001), in milliseconds."""
    if summary["scenario"].get("storm"):
        hist = hg.decode(summary.get("connect_histogram"))
        title = f"{summary['label']}: time from connect to 001 (welcome) per client, ms"
    else:
        hist = hg.decode(summary.get("histogram"))
        title = f"{summary['label']}: delivery latency (receive time - scheduled send time), ms"
    path.write_text(hg.percentile_table(hist, title))


def write_json(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


def load_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no summary.json (not a chat-perf run directory?)")
    return json.loads(path.read_text())
