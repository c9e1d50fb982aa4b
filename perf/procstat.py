"""CPU and memory of a process over time, read from /proc (Linux only, no psutil)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (the server's history writer, for one)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return found


def _stat_cpu_seconds(path: str, *, reaped: bool = False) -> float | None:
    """utime + stime from a /proc stat file (a process's or one thread's), plus cutime +
    cstime (children it has already reaped) when ``reaped``; None if it is gone."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may contain spaces; fields resume after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return sum(int(x) for x in fields[11 : 15 if reaped else 13]) / CLOCK_TICKS


def _children_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s live child processes (and of children they reaped)."""
    return sum(_stat_cpu_seconds(f"/proc/{c}/stat", reaped=True) or 0.0 for c in children(pid))


def read_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and its child processes, or None if it is gone.

    Children count: a server that hands work to a helper process (as ours does with
    its history writer) must not look cheaper than one that does it in-process.
    """
    own = _stat_cpu_seconds(f"/proc/{pid}/stat", reaped=True)
    return None if own is None else own + _children_cpu_seconds(pid)


def read_helper_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid``'s threads other than its main one, and of its children.

    The main thread is the event loop whose run-queue wait is measured: while these
    helpers (a history writer thread and process, for ours) run on a core it is
    pinned to, it waits for them, and that wait is the server's own cost, not a
    disturbance from other processes.
    """
    whole = _stat_cpu_seconds(f"/proc/{pid}/stat")  # every thread, ended ones too
    main = _stat_cpu_seconds(f"/proc/{pid}/task/{pid}/stat")
    if whole is None or main is None:
        return None
    return whole - main + _children_cpu_seconds(pid)


def read_runqueue_wait_s(pid: int | str = "self") -> float | None:
    """Seconds ``pid`` spent runnable but waiting for a CPU (from /proc/PID/schedstat).

    High values mean other processes took the CPU: measured latency then includes
    scheduling delay that neither the server nor the generator caused.
    """
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _own_rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def read_rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` and its child processes, or None if it is gone."""
    total = _own_rss_bytes(pid)
    if total is None:
        return None
    return total + sum(_own_rss_bytes(child) or 0 for child in children(pid))


@dataclass(slots=True)
class ResourceSeries:
    """Samples: seconds since the sampler's zero, CPU percent of one core, RSS bytes."""

    t: list[float] = field(default_factory=list)
    cpu_percent: list[float] = field(default_factory=list)
    rss_bytes: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        if not self.t:
            return {"cpu_percent_mean": None, "cpu_percent_max": None, "rss_max_mib": None}
        busy = [c for c in self.cpu_percent if c > 1.0] or self.cpu_percent
        return {
            "cpu_percent_mean": sum(busy) / len(busy),
            "cpu_percent_max": max(self.cpu_percent),
            "rss_max_mib": max(self.rss_bytes) / 2**20,
            "rss_last_mib": self.rss_bytes[-1] / 2**20,
        }


class ProcessSampler:
    """Samples one pid every ``period`` seconds on a daemon thread until stopped."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        self.pid = pid
        self.period = period
        self.series = ResourceSeries()
        self.zero = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proc-sampler", daemon=True)

    def start(self, zero: float | None = None) -> ProcessSampler:
        if zero is not None:
            self.zero = zero
        self._thread.start()
        return self

    def rss_now(self) -> int | None:
        return read_rss_bytes(self.pid)

    def _loop(self) -> None:
        last_t = time.monotonic()
        last_cpu = read_cpu_seconds(self.pid)
        while not self._stop.wait(self.period):
            t = time.monotonic()
            cpu = read_cpu_seconds(self.pid)
            rss = read_rss_bytes(self.pid)
            if cpu is None or rss is None or last_cpu is None:
                return
            self.series.t.append(t - self.zero)
            self.series.cpu_percent.append(100.0 * (cpu - last_cpu) / max(1e-6, t - last_t))
            self.series.rss_bytes.append(rss)
            last_t, last_cpu = t, cpu

    def stop(self) -> ResourceSeries:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        return self.series
