"""The server processes a run is told to watch (``--server-pid``, repeatable: a single
server, or the nodes of a cluster and their Redis).

Each is sampled through the run (CPU and memory a few times a second, for the charts),
and read at the very start and end of the measured window: CPU, time waiting for a CPU
and the CPU of its helper threads and processes. Window readings are what a cost per
delivery should be computed from: registering clients and draining are another load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perf.clock import now_us
from perf.procstat import ProcessSampler, ProcessTree, ResourceSeries, open_tree
from perf.procstat import read_runqueue_wait_s as _runqueue_wait_s


@dataclass(slots=True)
class Reading:
    """One process at one instant (None: the figure is unknown, or the process gone)."""

    t_us: int
    cpu_s: float | None
    runqueue_wait_s: float | None
    helper_cpu_s: float | None


@dataclass(slots=True)
class ServerWindow:
    """One watched process: its samples, and its readings at the window's ends."""

    pid: int
    series: ResourceSeries = field(default_factory=ResourceSeries)
    start: Reading | None = None
    stop: Reading | None = None

    @property
    def wall_s(self) -> float:
        """Seconds between the two readings."""
        if self.start is None or self.stop is None:
            return 0.0
        return (self.stop.t_us - self.start.t_us) / 1e6

    def used(self, what: str) -> float | None:
        """How much of ``what`` (a Reading field) the window took, or None."""
        if self.start is None or self.stop is None:
            return None
        a, b = getattr(self.start, what), getattr(self.stop, what)
        return None if a is None or b is None else b - a


def _read(tree: ProcessTree | None, pid: int) -> Reading:
    t = now_us()
    if tree is None:
        return Reading(t, None, None, None)
    return Reading(t, tree.cpu_seconds(), _runqueue_wait_s(pid), tree.helper_cpu_seconds())


class ServerWatch:
    """Samples the watched processes and reads them at the window's start and end."""

    def __init__(self, pids: tuple[int, ...]) -> None:
        self.pids = pids
        self.trees = [open_tree(pid) for pid in pids]
        self.sampler = ProcessSampler(*pids) if pids else None
        self.windows = [ServerWindow(pid) for pid in pids]

    def start(self) -> None:
        if self.sampler is not None:
            self.sampler.start()

    def rss_now(self) -> int | None:
        """Resident memory of all watched processes now (None: none watched, or gone)."""
        return self.sampler.rss_now() if self.sampler is not None else None

    def open_window(self) -> None:
        for w, tree in zip(self.windows, self.trees, strict=True):
            w.start = _read(tree, w.pid)

    def close_window(self) -> None:
        for w, tree in zip(self.windows, self.trees, strict=True):
            w.stop = _read(tree, w.pid)

    def stop(self, window_start_us: int) -> ResourceSeries | None:
        """End sampling; the summed series (per-process ones go to ``windows``), with
        times counted from the window's start."""
        if self.sampler is None:
            return None
        total = self.sampler.stop()
        shift = window_start_us / 1e6 - self.sampler.zero
        for series in (total, *self.sampler.per_pid.values()):
            series.t = [t - shift for t in series.t]
        for w in self.windows:
            w.series = self.sampler.per_pid[w.pid]
        return total
