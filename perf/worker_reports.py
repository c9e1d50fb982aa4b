"""What a worker tells the coordinator: ``ready`` (who joined which room), ``progress``
a few times a second, and its ``result``, everything it measured, at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf import histogram as hg
from perf.procstat import own_cpu_seconds

if TYPE_CHECKING:
    from perf.worker import Worker


def ready_info(w: Worker) -> dict:
    """Once registration settled: the coordinator waits for every worker's before "go"."""
    return {
        "ready": w.ready,
        "closed": w.closed,
        "echo": sum(1 for c in w.clients if c.echo_ack),
        "members": members(w),
    }


def members(w: Worker) -> dict[str, list[int]]:
    """Who should receive each room's messages: every client that joined, including
    those cut since (what they missed is lost, not unexpected)."""
    out: dict[str, list[int]] = {}
    for c in w.clients:
        if c.t_joined:
            for room in c.joined:
                out.setdefault(room, []).append(c.index)
    return out


def progress_info(w: Worker) -> dict:
    """Counts so far: the live display, and the drain's "has everything arrived"."""
    sent_by_room: dict[str, int] = {}
    for c in w.senders:
        if c.seq:
            room = c.plan.rooms[0]
            sent_by_room[room] = sent_by_room.get(room, 0) + c.seq
    return {
        "registered": w.registered,
        "ready": w.ready,
        "closed": w.closed,
        "disconnected": w.disconnects.total(),
        "sent": w.meas.sent_total,
        "delivered": w.meas.delivered_total,
        "sent_by_room": sent_by_room,
        "p99_us": w.meas.last_batch_p99_us,
    }


def result_info(w: Worker) -> dict:
    """Everything measured, as plain (picklable) data for ``perf.summary``."""
    tallies = {k: v.as_tuple() for k, v in w.rx.tallies().items()}
    tcp, tls = hg.new_histogram(), hg.new_histogram()
    welcome, joined = hg.new_histogram(), hg.new_histogram()
    for c in w.clients:
        if c.t_tcp:
            tcp.record_value(max(1, c.t_tcp - c.t_start))
        if c.t_tls:
            tls.record_value(max(1, c.t_tls - c.t_start))
        if c.t_welcome:
            welcome.record_value(max(1, c.t_welcome - c.t_start))
        if c.t_joined and c.plan.rooms and not w.storm:
            joined.record_value(max(1, c.t_joined - c.t_start))
    last_welcome = max((c.t_welcome for c in w.clients), default=0)
    return {
        **w.meas.export(),
        "tallies": tallies,
        "arrival_orders": w.rx.arrival_orders(),
        "sent_streams": {(c.index, c.plan.rooms[0]): c.seq for c in w.senders if c.seq},
        "members": members(w),
        "connect_tcp": hg.encode(tcp),
        "connect_tls": hg.encode(tls),
        "connect_welcome": hg.encode(welcome),
        "connect_joined": hg.encode(joined),
        # Every client's time to 001 (µs): a storm's latency_data.txt.
        "welcome_us": [c.t_welcome - c.t_start for c in w.clients if c.t_welcome],
        "last_welcome_us": last_welcome - w.start_us if last_welcome and w.storm else None,
        "registered": w.registered,
        "ready": w.ready,
        "clients": len(w.clients),
        "closed": w.closed,
        "disconnects": dict(w.disconnects),
        "echo": sum(1 for c in w.clients if c.echo_ack),
        "errors": dict(w.errors),
        "cpu_window_s": w.cpu_window or 0.0,
        "window_recvs": w.rx.window_counts[0],
        "window_lines": w.rx.window_counts[1],
        "runqueue_wait_s": w.wait_window,
        "window_wall_s": w.window_wall,
        "cpu_total_s": own_cpu_seconds(),
    }
