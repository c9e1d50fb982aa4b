"""What a finished run's numbers say about the run itself: whether it measured what was
planned (the verdict, which fails the run) and what to be careful with (warnings)."""

from __future__ import annotations

from typing import Any

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


def run_warnings(summary: dict[str, Any]) -> list[str]:
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
    for who, frac, own, explain in _waits(gen, summary["server"]):
        if frac is None or frac <= 0.05:
            continue
        if frac - own > 0.05:
            out.append(
                f"the {who} waited for a CPU {frac:.0%} of the time (other processes on the "
                "machine): latency and throughput are disturbed; pin with taskset and rerun"
            )
        elif explain:
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
    if acc.get("order_disagreements"):
        order = summary["order"]
        out.append(
            f"{acc['order_disagreements']:,} order disagreement(s): "
            f"{order['receivers_disagreeing']} member(s) of {order['rooms_disagreeing']} "
            "room(s) saw the room's messages in another order than another member "
            f"(first: {order['examples'][0]})"
        )
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


def _waits(
    gen: dict[str, Any], server: dict[str, Any]
) -> list[tuple[str, float | None, float, bool]]:
    """(who, fraction of the window it waited for a CPU, how much of that its own work
    explains, whether to say so when that is all) for the generator and each server.

    Several watched processes (a cluster's nodes and its Redis, often pinned to one
    core) wait for one another: that is the system's own work too, so only a wait
    beyond all of it is blamed on other processes, and nothing is said otherwise."""
    out: list[tuple[str, float | None, float, bool]] = [
        ("load generator", gen.get("runqueue_wait_fraction"), 0.0, True)
    ]
    procs = server.get("per_pid") or []
    if len(procs) < 2:
        wait, own = server.get("runqueue_wait_fraction"), server.get("helper_cpu_fraction")
        return [*out, ("server", wait, own or 0.0, True)]
    total = sum(p.get("cores") or 0.0 for p in procs)
    for p in procs:
        own = (p.get("helper_cpu_fraction") or 0.0) + total - (p.get("cores") or 0.0)
        out.append((f"server (pid {p['pid']})", p.get("runqueue_wait_fraction"), own, False))
    return out
