"""A worker process: one ``selectors`` loop driving a share of the simulated clients.

It talks to the coordinator over a pipe: it reports ``ready`` once its clients are
registered and joined, starts traffic on ``go`` at the shared start time, sends
``progress`` a few times a second, and on ``stop`` sends everything it measured.
Every loop is bounded: registration, traffic and draining all have deadlines.
"""

from __future__ import annotations

import contextlib
import re
import resource
import selectors
import signal
import time
from collections import Counter
from multiprocessing.connection import Connection

from perf.clock import now_us
from perf.connection import CLOSED, READY, Client
from perf.measurements import Measurements
from perf.pacing import RateSchedule, window_fill
from perf.procstat import own_cpu_seconds, read_runqueue_wait_s
from perf.receive import ReceivePath
from perf.tls import client_context
from perf.worker_config import WorkerConfig
from perf.worker_reports import progress_info, ready_info, result_info

# WorkerConfig and now_us are imported from here by the coordinator, tests and benchmarks.
__all__ = ["Worker", "WorkerConfig", "now_us", "reason_key", "worker_main"]

PROGRESS_EVERY_US = 250_000
FLUSH_EVERY_US = 200_000
MAX_WAIT_S = 0.05
NO_ACK_REFILL_US = 10_000  # senders with no way to see their messages refill on a timer


# A client's own address in a server's farewell (``Closing link: 127.0.0.1:40412 (...)``)
# would make every cut client a reason of its own.
_ADDRESS = re.compile(r"\[?\b\d{1,3}(?:\.\d{1,3}){3}\b\]?(?::\d+)?")


def reason_key(reason: str) -> str:
    """A failure reason as counted: addresses replaced, at most 200 characters."""
    return _ADDRESS.sub("<addr>", reason)[:200]


class Worker:
    """Owns the selector, the clients and the measurements of one process."""

    def __init__(self, pipe: Connection, cfg: WorkerConfig) -> None:
        self.pipe = pipe
        self.cfg = cfg
        self.scn = cfg.scenario
        self.storm = cfg.scenario.storm
        self.sel = selectors.DefaultSelector()
        self.tls_context = client_context(cfg.tls) if cfg.tls is not None else None
        # TLS clients with decrypted bytes inside the SSL object, which do not make the
        # socket readable: read again in the next loop turn without waiting.
        self.again: list[Client] = []
        self.meas = Measurements(cfg.interval_us, cfg.raw_cap)
        self.clients = [Client(p, self) for p in cfg.plans]
        self.senders = [c for c in self.clients if c.plan.sender]
        self.by_index = {c.index: c for c in self.clients}
        # Every sender of the run (in any worker) by rank: rate mode spreads their phases.
        self.sender_rank = {sid: k for k, sid in enumerate(sorted(cfg.sender_rooms))}
        self.wants_send: set[Client] = set()
        self.rx = ReceivePath(self, cfg.sender_rooms, cfg.scenario.msg_size)
        self.cur_interval = 0
        self.sampling_raw = cfg.raw_cap > 0
        self.errors: Counter[str] = Counter()
        self.registered = 0
        self.ready = 0
        self.closed = 0
        # Clients closed after they had joined (cut by the server, mostly), by reason.
        self.disconnects: Counter[str] = Counter()
        self.started = False
        self.start_us = 0
        self.end_us = 0
        self.stopping = False
        self.storm_due = False
        self.cpu_at_go = 0.0
        self.cpu_window: float | None = None
        self.wait_at_go = 0.0
        self.wait_window = 0.0
        self.window_wall = 0.0

    # -- callbacks from clients ---------------------------------------------------------

    def watch(self, client: Client, write: bool, new: bool = False) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        if new:
            self.sel.register(client.sock, events, client)  # type: ignore[arg-type]
            return
        try:
            self.sel.modify(client.sock, events, client)  # type: ignore[arg-type]
        except KeyError:
            self.sel.register(client.sock, events, client)  # type: ignore[arg-type]

    def read_again(self, client: Client) -> None:
        self.again.append(client)

    def unwatch(self, client: Client) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(client.sock)  # type: ignore[arg-type]

    def on_client_closed(self, client: Client, reason: str) -> None:
        self.closed += 1
        if self.started:
            self.meas.failed[self.meas.interval_of(now_us())] += 1
        self.note_error(reason)
        if client.t_joined:
            self.disconnects[reason_key(reason)] += 1

    def note_error(self, reason: str) -> None:
        self.errors[reason_key(reason)] += 1

    def on_registered(self, client: Client, now: int) -> None:
        self.registered += 1
        if self.started:
            self.meas.registered[self.meas.interval_of(now)] += 1

    def on_ready(self, client: Client) -> None:
        self.ready += 1

    def witness_sender(self, receiver: Client, sid: int, room: str) -> Client | None:
        """The sender whose messages ``receiver`` acknowledges, if it is its witness."""
        sender = self.by_index.get(sid)
        if sender is None or sender.echo_ack or sender.plan.witness != receiver.index:
            return None
        if sender.room != room.encode():
            return None
        return sender

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        self.sel.register(self.pipe.fileno(), selectors.EVENT_READ, None)
        pending = [] if self.storm else self._connect_plan()
        reg_deadline = now_us() + int((self.scn.ramp_up + self.cfg.register_timeout_s) * 1e6)
        reported_ready = False
        schedule: RateSchedule | None = None
        next_progress = now_us()
        next_flush = 0
        next_refill = 0
        no_ack = []
        while True:
            now = now_us()
            while pending and pending[-1][0] <= now:
                _, client = pending.pop()
                client.connect(*self.cfg.address_of(client.index), now)
            if not reported_ready:
                settled = self.ready + self.closed >= len(self.clients)
                if self.storm or settled or now >= reg_deadline:
                    self._send("ready", ready_info(self))
                    reported_ready = True
            if self.storm_due and now >= self.start_us:
                self.storm_due = False
                for c in self.clients:
                    c.connect(*self.cfg.address_of(c.index), now_us())
            if self.started:
                if now >= self.start_us and not self.stopping:
                    self.cur_interval = (now - self.start_us) // self.cfg.interval_us
                    if now < self.end_us:
                        if schedule is None and not self.scn.saturate and self.senders:
                            interval = int(self.scn.senders / self.scn.rate * 1e6)
                            live = [c for c in self.senders if c.state == READY]
                            schedule = RateSchedule(
                                live, interval, self.start_us, self.end_us,
                                self.sender_rank, len(self.sender_rank),
                            )  # fmt: skip
                        if schedule is not None:
                            self._send_due(schedule, now)
                        elif self.scn.saturate:
                            if next_refill == 0:
                                no_ack = [c for c in self.senders if self._lacks_ack(c)]
                                self.wants_send.update(c for c in self.senders if c.state == READY)
                                next_refill = now
                            if no_ack and now >= next_refill:
                                for c in no_ack:
                                    c.in_flight = 0
                                self.wants_send.update(no_ack)
                                next_refill = now + NO_ACK_REFILL_US
                            self._send_window(now)
                    elif self.cpu_window is None:
                        self.cpu_window = own_cpu_seconds() - self.cpu_at_go
                        self.rx.close_window()
                        self.wait_window = (read_runqueue_wait_s() or 0.0) - self.wait_at_go
                        self.window_wall = (now - self.start_us) / 1e6
                boundary = self.start_us + (self.cur_interval + 1) * self.cfg.interval_us
                if now >= next_flush or self.meas.pending_lats > 1_000_000:
                    self.meas.flush(now)
                    # Flush at interval boundaries too, so each batch lands in its interval.
                    next_flush = min(now + FLUSH_EVERY_US, boundary)
            if now >= next_progress:
                self._send("progress", progress_info(self))
                next_progress = now + PROGRESS_EVERY_US
            timeout = MAX_WAIT_S
            if pending:
                timeout = min(timeout, max(0.0, (pending[-1][0] - now) / 1e6))
            if schedule is not None:
                due = schedule.next_due()
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - now) / 1e6))
            if self.started and now < self.start_us:
                timeout = min(timeout, (self.start_us - now) / 1e6)
            if timeout < 0.001 or self.rx.pending or self.again:
                # epoll rounds up to whole milliseconds; poll instead of oversleeping so
                # senders are not late (lateness would count as latency, correctly but
                # unfairly to the server).
                timeout = 0
            read = self.rx.read
            storm = self.storm  # a storm measures no payloads: control lines only
            events = self.sel.select(timeout)
            for key, mask in events:
                client = key.data
                if client is None:
                    if self._on_command(self.pipe.recv()):
                        return
                    continue
                if mask & selectors.EVENT_WRITE:
                    client.on_writable()
                if mask & selectors.EVENT_READ:
                    # No clock reading here: reads stamp their own receive time after
                    # the data is in (a read can first measure a full batch and send
                    # more, whose deliveries this very read may bring back).
                    state = client.state
                    if state == READY and not storm:
                        read(client)
                    elif state != CLOSED:
                        client.on_readable()
            busy = bool(events)
            if self.again:
                again, self.again = self.again, []
                busy = True
                for client in again:
                    state = client.state
                    if state == READY and not storm:
                        read(client)
                    elif state != CLOSED:
                        client.on_readable()
            self.rx.settle(busy, now_us())

    def _lacks_ack(self, c: Client) -> bool:
        return c.state == READY and not c.echo_ack and c.plan.witness is None

    def _connect_plan(self) -> list[tuple[int, Client]]:
        """Connect times spread over the ramp-up, latest first (popped from the end)."""
        n = len(self.clients)
        ramp = int(self.scn.ramp_up * 1e6)
        base = self.cfg.connect_start_us
        plan = [(base + (ramp * i // n if n else 0), c) for i, c in enumerate(self.clients)]
        plan.reverse()
        return plan

    def _send_due(self, schedule: RateSchedule, now: int) -> None:
        size = self.scn.msg_size
        n = 0
        lags = self.meas.send_lags
        for client, times in schedule.due(now).items():
            if client.state == READY:
                client.send_payloads(times, size)
                n += len(times)
                lags.extend(now - t for t in times)
        if n:
            self.meas.sent[self.cur_interval] += n
            self.meas.sent_total += n

    def refill_windows(self) -> None:
        """Top up acknowledged senders during the traffic window (saturate mode)."""
        if self.scn.saturate and self.started and not self.stopping:
            now = now_us()
            if self.start_us <= now < self.end_us:
                self._send_window(now)

    def _send_window(self, now: int) -> None:
        if not self.wants_send:
            return
        size = self.scn.msg_size
        window = self.scn.window
        n = 0
        for client in self.wants_send:
            k = window_fill(client, window)
            if k and client.state == READY:
                client.send_payloads([now] * k, size)
                n += k
        self.wants_send.clear()
        if n:
            self.meas.sent[self.cur_interval] += n
            self.meas.sent_total += n

    def _on_command(self, cmd: tuple) -> bool:
        """Handle a coordinator command; True when the worker should exit."""
        kind = cmd[0]
        if kind == "go":
            self.start_us, self.end_us = cmd[1], cmd[2]
            self.meas.start_us = self.start_us
            self.started = True
            self.cpu_at_go = own_cpu_seconds()
            self.rx.open_window()
            self.wait_at_go = read_runqueue_wait_s() or 0.0
            # Storm clients connect in the loop once start_us has come, so that every
            # registration time is measured from a connect that really happened then.
            self.storm_due = self.storm
        elif kind == "stop":
            self.stopping = True
            self._finish()
            return True
        return False

    def _finish(self) -> None:
        now = now_us()
        self.rx.process()
        self.meas.flush(now)
        if self.cpu_window is None and self.started:
            self.cpu_window = own_cpu_seconds() - self.cpu_at_go
            self.rx.close_window()
            self.wait_window = (read_runqueue_wait_s() or 0.0) - self.wait_at_go
            self.window_wall = max(0.0, (min(now, self.end_us) - self.start_us) / 1e6)
        self._send("result", result_info(self))
        for c in self.clients:
            c.quit()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and any(c.writing for c in self.clients):
            for key, mask in self.sel.select(0.05):
                if key.data is not None and mask & selectors.EVENT_WRITE:
                    key.data.on_writable()
        for c in self.clients:
            if c.sock is not None:
                c.sock.close()

    # -- reports ----------------------------------------------------------------------------

    def _send(self, kind: str, info: dict) -> None:
        try:
            self.pipe.send((kind, self.cfg.worker_id, info))
        except (BrokenPipeError, OSError):
            raise SystemExit(0) from None


def worker_main(pipe: Connection, cfg: WorkerConfig) -> None:
    """Process entry point. Ctrl+C is the coordinator's business: it tells us to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, len(cfg.plans) + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        Worker(pipe, cfg).run()
    except SystemExit:
        raise
    except BaseException as exc:  # report, never hang the coordinator
        import traceback

        with contextlib.suppress(OSError):
            pipe.send(
                ("error", cfg.worker_id, {"error": traceback.format_exc(), "repr": repr(exc)})
            )
        raise
