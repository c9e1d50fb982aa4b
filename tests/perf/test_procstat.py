"""perf.procstat reads a real chat-server's CPU and memory through psutil."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time

import psutil
import pytest

from perf import procstat
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess


def test_no_hand_parsing_of_proc_but_the_run_queue_wait() -> None:
    source = inspect.getsource(procstat)
    opened = [ln.strip() for ln in source.splitlines() if "/proc/" in ln and "open(" in ln]
    assert opened == ['with open(f"/proc/{pid}/schedstat", "rb") as f:']


def test_sampler_follows_a_real_server(server: ServerProcess) -> None:
    pid = server.pid
    assert pid is not None
    assert (procstat.read_rss_bytes(pid) or 0) >= psutil.Process(pid).memory_info().rss
    sampler = procstat.ProcessSampler(pid, period=0.05).start()
    clients = []
    try:
        cpu0 = procstat.read_cpu_seconds(pid) or 0.0
        deadline = time.monotonic() + 20
        # Work for the server (200 clients at most) until it has used measurable CPU and
        # been sampled often.
        while (procstat.read_cpu_seconds(pid) or 0) - cpu0 <= 0.05 or len(sampler.series.t) < 5:
            assert time.monotonic() < deadline, "the server was not sampled while it worked"
            if len(clients) == 200:
                time.sleep(0.02)
                continue
            c = RawClient(server.host, server.port)
            c.register(f"ps{len(clients)}")
            c.join("#load")
            clients.append(c)
    finally:
        series = sampler.stop()
        for c in clients:
            c.close()
    assert len(series.t) >= 5 and series.t == sorted(series.t)
    assert max(series.cpu_percent) > 0 and min(series.cpu_percent) >= 0
    assert min(series.rss_bytes) > 10 * 2**20  # a Python process: tens of MiB
    assert procstat.read_helper_cpu_seconds(pid) is not None


def test_children_count_and_gone_processes_read_as_none() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nx = bytearray(64 << 20)\n"
         "t = time.process_time()\nwhile time.process_time() - t < 0.2: pass\n"
         "print('ready', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    me = psutil.Process().pid
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert child.pid in procstat.children(me)
        own = psutil.Process(me).memory_info().rss
        # Children are looked for again every REFRESH_S: a read of this process in an
        # earlier test may have found none, so the child may take that long to count.
        deadline = time.monotonic() + procstat.REFRESH_S + 10
        while (procstat.read_rss_bytes(me) or 0) < own + 60 * 2**20:
            assert time.monotonic() < deadline, "the child's 64 MiB were never counted"
            time.sleep(0.05)
        mine = psutil.Process(me).cpu_times()
        assert (procstat.read_cpu_seconds(me) or 0) >= mine.user + mine.system + 0.15
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    gone = child.pid
    assert procstat.read_cpu_seconds(gone) is None
    assert procstat.read_rss_bytes(gone) is None
    assert procstat.read_helper_cpu_seconds(gone) is None
    assert procstat.usable_cpus() >= 1


def test_children_are_looked_for_once_not_on_every_read(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding children scans every process of the machine (milliseconds); reading
    them is cheap. Sampling several servers a few times a second must not rescan."""
    pid = server.pid
    assert pid is not None
    scans = 0
    real = psutil.Process.children

    def counted(self: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
        nonlocal scans
        scans += 1
        return real(self, recursive)

    monkeypatch.setattr(psutil.Process, "children", counted)
    tree = procstat.ProcessTree(pid, refresh_s=3600)
    kids = tree.children()
    assert kids, "chat-server runs its history writer as a child process"
    first = tree.cpu_seconds() or 0.0
    for _ in range(50):
        assert (tree.cpu_seconds() or 0.0) >= first
        assert (tree.rss_bytes() or 0) > 10 * 2**20
        assert tree.helper_cpu_seconds() is not None
    assert scans == 1
    for _ in range(50):
        procstat.read_cpu_seconds(pid)
        procstat.read_rss_bytes(pid)
    assert scans <= 3  # the module's own tree of pid: one scan, and one per REFRESH_S
    # After a child has ended, children are looked for again at the next read.
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = psutil.Process(ended.pid)
    ended.wait(timeout=10)
    tree._children = [gone]  # as if the server's child had just ended
    before = scans
    assert tree.cpu_seconds() is not None
    assert tree.cpu_seconds() is not None
    assert scans == before + 1 and tree.children() == kids
    server.stop()
    assert tree.cpu_seconds() is None and tree.rss_bytes() is None
