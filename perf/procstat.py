"""CPU and memory of a process (and its child processes) over time, through psutil.

psutil reads the operating system's own accounting (``/proc`` on Linux, ``libproc`` on
macOS), so the sampler works wherever psutil does. One figure has no psutil equivalent:
the time a process spent runnable but waiting for a CPU, which only Linux reports
(``/proc/PID/schedstat``); elsewhere it is None and the reports leave it out.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psutil

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    try:
        return len(psutil.Process().cpu_affinity() or []) or (os.cpu_count() or 1)
    except (AttributeError, psutil.Error):  # macOS has no CPU affinity
        return os.cpu_count() or 1


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (the server's history writer, for one)."""
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except _GONE:
        return []


def _cpu_seconds(proc: psutil.Process, *, reaped: bool) -> float:
    """User + system CPU of every thread of ``proc`` (ended ones too), plus that of
    children it has already reaped when ``reaped``."""
    t = proc.cpu_times()
    own = t.user + t.system
    return own + (t.children_user + t.children_system if reaped else 0.0)


def _children_cpu_seconds(proc: psutil.Process) -> float:
    """CPU seconds of ``proc``'s live child processes (and of children they reaped)."""
    total = 0.0
    for child in proc.children():
        try:
            total += _cpu_seconds(child, reaped=True)
        except _GONE:
            continue
    return total


def read_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and its child processes, or None if it is gone.

    Children count: a server that hands work to a helper process (as ours does with
    its history writer) must not look cheaper than one that does it in-process.
    """
    try:
        proc = psutil.Process(pid)
        return _cpu_seconds(proc, reaped=True) + _children_cpu_seconds(proc)
    except _GONE:
        return None


def read_helper_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid``'s threads other than its main one, and of its children.

    The main thread is the event loop whose run-queue wait is measured: while these
    helpers (a history writer thread and process, for ours) run on a core it is
    pinned to, it waits for them, and that wait is the server's own cost, not a
    disturbance from other processes.
    """
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            whole = _cpu_seconds(proc, reaped=False)  # every thread, ended ones too
            threads = proc.threads()
        # On Linux the main thread's id is the pid; elsewhere it is listed first.
        main = next((t for t in threads if t.id == pid), threads[0] if threads else None)
        main_cpu = main.user_time + main.system_time if main else 0.0
        return whole - main_cpu + _children_cpu_seconds(proc)
    except _GONE:
        return None


def read_runqueue_wait_s(pid: int | str = "self") -> float | None:
    """Seconds ``pid`` spent runnable but waiting for a CPU; None where the OS does not
    say (only Linux does, in /proc/PID/schedstat; psutil has no equivalent).

    High values mean other processes took the CPU: measured latency then includes
    scheduling delay that neither the server nor the generator caused.
    """
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def read_rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` and its child processes, or None if it is gone."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children():
            try:
                total += child.memory_info().rss
            except _GONE:
                continue
        return total
    except _GONE:
        return None


@dataclass(slots=True)
class ResourceSeries:
    """Samples: seconds since the sampler's zero, CPU percent of one core, RSS bytes."""

    t: list[float] = field(default_factory=list)
    cpu_percent: list[float] = field(default_factory=list)
    rss_bytes: list[int] = field(default_factory=list)


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
