"""CPU and memory of a process (and its child processes) over time, through psutil.

psutil reads the operating system's own accounting (``/proc`` on Linux, ``libproc`` on
macOS), so the sampler works wherever psutil does. One figure has no psutil equivalent:
the time a process spent runnable but waiting for a CPU, which only Linux reports
(``/proc/PID/schedstat``); elsewhere it is None and the reports leave it out.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field

import psutil

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)
REFRESH_S = 2.0  # how often a ProcessTree looks for new child processes


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    try:
        return len(psutil.Process().cpu_affinity() or []) or (os.cpu_count() or 1)
    except (AttributeError, psutil.Error):  # macOS has no CPU affinity
        return os.cpu_count() or 1


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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


class ProcessTree:
    """A process and its child processes, for repeated reads.

    Finding children means reading every process's parent (psutil scans all of /proc:
    about 2 ms with 80 processes, against 30 µs for one process's CPU times), so they
    are found once and looked for again only every ``refresh_s`` seconds, or at the next
    read after one of them ended. A server's helpers (our history writer) start with
    it; one started since is counted, whole, from the next refresh.
    """

    def __init__(self, pid: int, refresh_s: float = REFRESH_S) -> None:
        self.pid = pid
        self.refresh_s = refresh_s
        self.proc = psutil.Process(pid)  # NoSuchProcess if it is gone already
        self._children: list[psutil.Process] = []
        self._found_at: float | None = None

    def children(self) -> list[psutil.Process]:
        now = time.monotonic()
        if self._found_at is None or now - self._found_at >= self.refresh_s:
            self._children = self.proc.children()
            self._found_at = now
        return self._children

    def _children_cpu_seconds(self) -> float:
        """CPU seconds of the live children (and of children they reaped)."""
        total = 0.0
        for child in self.children():
            try:
                total += _cpu_seconds(child, reaped=True)
            except _GONE:
                self._found_at = None  # look again next time
        return total

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the process and its children, or None if it is gone.

        Children count: a server that hands work to a helper process (as ours does with
        its history writer) must not look cheaper than one that does it in-process.
        """
        try:
            return _cpu_seconds(self.proc, reaped=True) + self._children_cpu_seconds()
        except _GONE:
            return None

    def helper_cpu_seconds(self) -> float | None:
        """CPU seconds of the process's threads other than its main one, and of its
        children, or None if it is gone.

        The main thread is the event loop whose run-queue wait is measured: while these
        helpers (a history writer thread and process, for ours) run on a core it is
        pinned to, it waits for them, and that wait is the server's own cost, not a
        disturbance from other processes.
        """
        try:
            with self.proc.oneshot():
                whole = _cpu_seconds(self.proc, reaped=False)  # every thread, ended ones too
                threads = self.proc.threads()
            # On Linux the main thread's id is the pid; elsewhere it is listed first.
            main = next((t for t in threads if t.id == self.pid), threads[0] if threads else None)
            main_cpu = main.user_time + main.system_time if main else 0.0
            return whole - main_cpu + self._children_cpu_seconds()
        except _GONE:
            return None

    def rss_bytes(self) -> int | None:
        """Resident memory of the process and its children, or None if it is gone."""
        try:
            total = self.proc.memory_info().rss
        except _GONE:
            return None
        for child in self.children():
            try:
                total += child.memory_info().rss
            except _GONE:
                self._found_at = None
        return total


def open_tree(pid: int) -> ProcessTree | None:
    """A ProcessTree of ``pid``, or None if there is no such process."""
    try:
        return ProcessTree(pid)
    except _GONE:
        return None


# The module's read_* functions keep one tree per pid, so that calling them again is
# cheap; a pid whose process ended (or was reused by another) gets a fresh tree.
_trees: dict[int, ProcessTree] = {}


def _tree(pid: int) -> ProcessTree | None:
    known = _trees.get(pid)
    if known is not None and known.proc.is_running():
        return known
    fresh = open_tree(pid)
    if fresh is None:
        _trees.pop(pid, None)
    else:
        _trees[pid] = fresh
    return fresh


def read_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and its child processes, or None if it is gone (see
    ``ProcessTree.cpu_seconds``; children are looked for again every ``REFRESH_S``)."""
    tree = _tree(pid)
    return tree.cpu_seconds() if tree is not None else None


def read_helper_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid``'s threads but its main one and of its children, or None
    if it is gone (see ``ProcessTree.helper_cpu_seconds``)."""
    tree = _tree(pid)
    return tree.helper_cpu_seconds() if tree is not None else None


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
    tree = _tree(pid)
    return tree.rss_bytes() if tree is not None else None


@dataclass(slots=True)
class ResourceSeries:
    """Samples: seconds since the sampler's zero, CPU percent of one core, RSS bytes."""

    t: list[float] = field(default_factory=list)
    cpu_percent: list[float] = field(default_factory=list)
    rss_bytes: list[int] = field(default_factory=list)


class ProcessSampler:
    """Samples processes (each with its children) every ``period`` seconds on a daemon
    thread until stopped, all at the same instants: ``series`` holds their sums,
    ``per_pid`` each one's. Sampling ends when any of them has ended."""

    def __init__(self, *pids: int, period: float = 0.25) -> None:
        self.pids = pids
        self.period = period
        self.series = ResourceSeries()
        self.per_pid = {pid: ResourceSeries() for pid in pids}
        self.zero = time.monotonic()
        self._trees = [open_tree(pid) for pid in pids]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proc-sampler", daemon=True)

    def start(self, zero: float | None = None) -> ProcessSampler:
        if zero is not None:
            self.zero = zero
        self._thread.start()
        return self

    def rss_now(self) -> int | None:
        """Resident memory of them all now, or None if any is gone."""
        each = [t.rss_bytes() if t is not None else None for t in self._trees]
        return None if None in each else sum(r for r in each if r is not None)

    def _read(self) -> list[tuple[float, int]] | None:
        """(CPU seconds, RSS bytes) of each process, or None once any is gone."""
        out = []
        for tree in self._trees:
            cpu = tree.cpu_seconds() if tree is not None else None
            rss = tree.rss_bytes() if tree is not None else None
            if cpu is None or rss is None:
                return None
            out.append((cpu, rss))
        return out

    def _loop(self) -> None:
        last_t = time.monotonic()
        last = self._read()
        while not self._stop.wait(self.period):
            t = time.monotonic()
            now = self._read()
            if now is None or last is None:
                return
            dt = max(1e-6, t - last_t)
            for pid, (cpu0, _), (cpu1, rss) in zip(self.pids, last, now, strict=True):
                one = self.per_pid[pid]
                one.t.append(t - self.zero)
                one.cpu_percent.append(100.0 * (cpu1 - cpu0) / dt)
                one.rss_bytes.append(rss)
            self.series.t.append(t - self.zero)
            used = sum(cpu1 - cpu0 for (cpu0, _), (cpu1, _) in zip(last, now, strict=True))
            self.series.cpu_percent.append(100.0 * used / dt)
            self.series.rss_bytes.append(sum(rss for _, rss in now))
            last_t, last = t, now

    def stop(self) -> ResourceSeries:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        return self.series
