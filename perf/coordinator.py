"""The run's conductor: start workers, wait until every client is in, say go, drain, stop.

Ctrl+C (SIGINT) or SIGTERM ends the traffic early; whatever was measured is still
collected and written. A second Ctrl+C skips the drain. Every wait has a deadline, so a
server that stops answering cannot hang the tool.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_pipes
from typing import Any

from perf.procstat import ResourceSeries, own_cpu_seconds, usable_cpus
from perf.scenario import Layout, Scenario, plan
from perf.servers import ServerWatch, ServerWindow
from perf.tls import TlsSettings
from perf.worker import WorkerConfig, now_us, worker_main

NICE_INTERVALS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def pick_interval(duration: float, points: int = 60) -> float:
    """A round time-bucket size giving about ``points`` buckets over the run."""
    want = duration / points
    return next((i for i in NICE_INTERVALS if i >= want), NICE_INTERVALS[-1])


@dataclass(slots=True)
class RunOptions:
    host: str
    port: int
    scenario: Scenario
    workers: int
    label: str
    server_pids: tuple[int, ...] = ()  # processes to watch: a server, or a cluster's
    drain_s: float = 3.0
    register_timeout_s: float = 30.0
    raw_cap: int = 200_000
    storm_hold_s: float = 1.0
    # More servers of one cluster: client i connects to [(host, port), *more_targets][i % n].
    more_targets: tuple[tuple[str, int], ...] = ()
    tls: TlsSettings | None = None  # clients speak TLS to the target(s)


@dataclass(slots=True)
class RunData:
    """Everything collected, before any arithmetic (that is ``perf.results``)."""

    options: RunOptions
    layout: Layout
    interval_s: float
    started_wall: float
    start_us: int = 0
    end_us: int = 0
    stopped_us: int = 0
    interrupted: bool = False
    interrupt_signal: int | None = None  # the first SIGINT / SIGTERM that stopped the run
    aborted_reason: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    ready_infos: list[dict[str, Any]] = field(default_factory=list)
    worker_errors: list[str] = field(default_factory=list)
    resources: ResourceSeries | None = None  # the watched processes' samples, summed
    servers: list[ServerWindow] = field(default_factory=list)  # each watched process
    rss_before_bytes: int | None = None
    rss_after_bytes: int | None = None
    coordinator_cpu_s: float = 0.0
    cpus: int = 1
    # Unix time minus CLOCK_MONOTONIC, in µs: turns the run's clock into dates.
    unix_offset_us: int = 0


Snapshot = dict[str, Any]


class Coordinator:
    """Runs one scenario; ``on_progress`` gets a snapshot a few times a second."""

    def __init__(self, opts: RunOptions, on_progress: Callable[[Snapshot], None]) -> None:
        self.opts = opts
        self.on_progress = on_progress
        self.interrupts = 0
        self.signum: int | None = None
        self.progress: dict[int, dict[str, Any]] = {}
        self.pipes: dict[int, Any] = {}
        self.procs: list[mp.Process] = []
        self.phase = "starting"

    def _on_signal(self, signum: int, frame: object) -> None:
        self.interrupts += 1
        if self.signum is None:
            self.signum = signum

    def run(self) -> RunData:
        opts = self.opts
        scn = opts.scenario
        tag = format(os.getpid() % 1296, "02x")[-2:]
        layout = plan(scn, opts.workers, tag)
        interval = 0.01 if scn.storm else pick_interval(scn.duration)
        data = RunData(opts, layout, interval, started_wall=time.time())
        data.cpus = usable_cpus()
        data.unix_offset_us = time.time_ns() // 1000 - now_us()
        watch = ServerWatch(opts.server_pids)
        data.servers = watch.windows
        old_int = signal.getsignal(signal.SIGINT)
        old_term = signal.getsignal(signal.SIGTERM)
        try:
            self._start_workers(layout, interval)
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
            watch.start()
            self._conduct(data, watch)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
            self._collect(data)
            data.resources = watch.stop(data.start_us)
            self._reap()
        data.interrupted = data.interrupted or self.interrupts > 0
        data.interrupt_signal = self.signum
        return data

    # -- phases -------------------------------------------------------------------------------

    def _start_workers(self, layout: Layout, interval: float) -> None:
        ctx = mp.get_context("spawn")
        opts = self.opts
        connect_start = now_us() + 300_000 * layout.workers + 500_000
        senders = {c.index: c.rooms[0] for c in layout.clients if c.sender and c.rooms}
        # Workers ignore SIGINT from birth (the disposition survives exec), so a Ctrl+C
        # reaches only us and we stop them in order.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for w in range(layout.workers):
                parent, child = ctx.Pipe()
                cfg = WorkerConfig(
                    worker_id=w,
                    host=opts.host,
                    port=opts.port,
                    more_targets=opts.more_targets,
                    tls=opts.tls,
                    scenario=opts.scenario,
                    plans=layout.for_worker(w),
                    connect_start_us=connect_start,
                    register_timeout_s=opts.register_timeout_s,
                    interval_us=int(interval * 1e6),
                    raw_cap=opts.raw_cap // layout.workers,
                    sender_rooms=senders,
                )
                proc = ctx.Process(target=worker_main, args=(child, cfg), name=f"perf-worker-{w}")
                proc.daemon = True
                proc.start()
                child.close()
                self.pipes[w] = parent
                self.procs.append(proc)
        finally:
            signal.signal(signal.SIGINT, previous)

    def _conduct(self, data: RunData, watch: ServerWatch) -> None:
        opts = self.opts
        scn = opts.scenario
        self.phase = "connecting"
        ready: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + scn.ramp_up + opts.register_timeout_s + 15
        while len(ready) < len(self.pipes):
            if self.interrupts or time.monotonic() > deadline:
                data.aborted_reason = "interrupted" if self.interrupts else "workers not ready"
                return
            for kind, wid, info in self._poll(0.1, data):
                if kind == "ready":
                    ready[wid] = info
            if data.worker_errors and not self._alive():
                data.aborted_reason = "worker failed"
                return
        data.ready_infos = [ready[w] for w in sorted(ready)]
        if not scn.storm and not sum(info["ready"] for info in data.ready_infos):
            data.aborted_reason = f"no client could register at {opts.host}:{opts.port}"
            return
        data.rss_before_bytes = watch.rss_now()
        start = now_us() + 200_000
        span = opts.register_timeout_s if scn.storm else scn.duration
        data.start_us, data.end_us = start, start + int(span * 1e6)
        cpu0 = own_cpu_seconds()
        for pipe in self.pipes.values():
            pipe.send(("go", data.start_us, data.end_us))
        self.phase = "storming" if scn.storm else "running"
        # The watched processes are read when the window opens, not when "go" is sent.
        while now_us() < data.start_us and not self.interrupts:
            self._poll(max(0.0, min(0.1, (data.start_us - now_us()) / 1e6)), data)
        watch.open_window()
        if scn.storm:
            self._await_storm(data, watch)
        else:
            while now_us() < data.end_us and not self.interrupts:
                self._poll(max(0.0, min(0.1, (data.end_us - now_us()) / 1e6)), data)
            data.coordinator_cpu_s = own_cpu_seconds() - cpu0
            data.stopped_us = min(now_us(), data.end_us)
            watch.close_window()
            self._drain(data)
        if self.interrupts:
            data.interrupted = True

    def _await_storm(self, data: RunData, watch: ServerWatch) -> None:
        total = self.opts.scenario.clients
        done_at: float | None = None
        while now_us() < data.end_us and not self.interrupts:
            self._poll(0.05, data)
            settled = sum(
                p.get("registered", 0) + p.get("closed", 0) for p in self.progress.values()
            )
            if settled >= total and done_at is None:
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at >= self.opts.storm_hold_s:
                break
        data.rss_after_bytes = watch.rss_now()
        data.stopped_us = now_us()
        watch.close_window()

    def _drain(self, data: RunData) -> None:
        """Wait for messages still in flight, until all arrived or the drain deadline."""
        self.phase = "draining"
        members: dict[str, int] = {}
        for info in data.ready_infos:
            for room, idx in info["members"].items():
                members[room] = members.get(room, 0) + len(idx)
        deadline = time.monotonic() + self.opts.drain_s
        seen_interrupts = self.interrupts
        while time.monotonic() < deadline and self.interrupts == seen_interrupts:
            self._poll(0.05, data)
            expected = delivered = 0
            for p in self.progress.values():
                delivered += p.get("delivered", 0)
                for room, n in p.get("sent_by_room", {}).items():
                    expected += n * max(0, members.get(room, 0) - 1)
            if delivered >= expected and self.progress:
                # Recheck once more so late progress reports are not missed.
                self._poll(0.3, data)
                d2 = sum(p.get("delivered", 0) for p in self.progress.values())
                if d2 >= expected:
                    return

    def _collect(self, data: RunData) -> None:
        self.phase = "collecting"
        for pipe in self.pipes.values():
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        got: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + 60
        while len(got) < len(self.pipes) and time.monotonic() < deadline:
            for kind, wid, info in self._poll(0.2, data):
                if kind == "result":
                    got[wid] = info
            if not self._alive() and not any(p.poll() for p in self.pipes.values() if not p.closed):
                break
        data.results = [got[w] for w in sorted(got)]
        missing = len(self.pipes) - len(got)
        if missing:
            data.worker_errors.append(f"{missing} worker(s) sent no result")

    def _poll(self, timeout: float, data: RunData) -> list[tuple[str, int, dict]]:
        out = []
        live = [p for p in self.pipes.values() if not p.closed]
        for pipe in wait_pipes(live, timeout):
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                pipe.close()
                continue
            kind, wid, info = msg
            if kind == "progress":
                self.progress[wid] = info
            elif kind == "error":
                data.worker_errors.append(info.get("error", "worker error"))
            out.append(msg)
        self.on_progress(self.snapshot(data))
        return out

    def snapshot(self, data: RunData) -> Snapshot:
        scn = self.opts.scenario
        agg: dict[str, Any] = {"phase": self.phase, "clients": scn.clients}
        for key in ("registered", "ready", "closed", "disconnected", "sent", "delivered"):
            agg[key] = sum(p.get(key, 0) for p in self.progress.values())
        p99s = [p["p99_us"] for p in self.progress.values() if p.get("p99_us") is not None]
        agg["p99_ms"] = max(p99s) / 1000 if p99s else None
        now = now_us()
        agg["elapsed_s"] = max(0.0, (now - data.start_us) / 1e6) if data.start_us else 0.0
        agg["duration_s"] = 0.0 if scn.storm else scn.duration
        agg["interrupts"] = self.interrupts
        return agg

    def _alive(self) -> bool:
        return any(p.is_alive() for p in self.procs)

    def _reap(self) -> None:
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
        for pipe in self.pipes.values():
            pipe.close()
