"""Unit tests: thresholds, scenarios and layout, histograms, interval choice."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from perf import histogram as hg
from perf.coordinator import pick_interval
from perf.procstat import read_helper_cpu_seconds
from perf.results import _warnings
from perf.scenario import BUILTIN, Scenario, plan
from perf.thresholds import ThresholdError, evaluate, parse

SUMMARY = {
    "latency_ms": {"p50": 0.4, "p90": 1.0, "p99": 12.0, "p99.9": 30.0, "max": 80.0, "mean": 1.0},
    "accounting": {"lost": 0, "loss_rate": 0.0, "duplicates": 0, "reordered": 2},
    "throughput": {"deliveries_per_s": 250_000.0, "sent_per_s": 2500.0},
    "clients": {"failed": 0},
    "connect_ms": {"welcome": {"p99": 5.0, "max": 9.0}},
}


@pytest.mark.parametrize(
    ("expr", "violated"),
    [
        ("p99>50ms", False),
        ("p99>10ms", True),
        ("p99 > 0.011 s", True),
        ("p50>=400us", True),
        ("max<1s", True),
        ("loss>0", False),
        ("loss_rate>0.1%", False),
        ("reordered>1", True),
        ("deliveries_per_s<300k", True),
        ("deliveries_per_s<200000", False),
        ("connect_p99>4ms", True),
    ],
)
def test_thresholds(expr: str, violated: bool) -> None:
    result = evaluate([parse(expr)], SUMMARY)
    assert bool(result) is violated
    if violated:
        assert expr.replace(" ", "") in result[0].replace(" ", "")


@pytest.mark.parametrize("expr", ["p99", "p99>>5ms", "p42>1ms", "loss>5ms", "p99>fast"])
def test_bad_thresholds_are_rejected(expr: str) -> None:
    with pytest.raises(ThresholdError):
        parse(expr)


def test_unmeasured_metric_is_a_violation() -> None:
    assert evaluate([parse("all_registered>1s")], SUMMARY)


def test_fanout_layout_gives_every_sender_a_local_witness() -> None:
    layout = plan(BUILTIN["fanout"], workers=3, tag="t")
    senders = [c for c in layout.clients if c.sender]
    assert len(senders) == 5
    for s in senders:
        assert s.witness is not None
        w = layout.clients[s.witness]
        assert w.worker == s.worker and w.rooms == s.rooms and not w.sender


def test_chat_layout_keeps_rooms_whole_and_nicks_short() -> None:
    layout = plan(BUILTIN["chat"], workers=2, tag="ab")
    assert len(layout.members) == 20
    for members in layout.members.values():
        assert len({layout.clients[i].worker for i in members}) == 1
    assert all(len(c.nick) <= 9 for c in layout.clients)
    assert len({c.nick for c in layout.clients}) == 200


@pytest.mark.parametrize(
    "bad",
    [
        Scenario("x", clients=0, rooms=1, senders=0),
        Scenario("x", clients=5, rooms=1, senders=6, rate=1),
        Scenario("x", clients=5, rooms=1, senders=2),
        Scenario("x", clients=5, rooms=0, senders=1, rate=1),
    ],
)
def test_invalid_scenarios(bad: Scenario) -> None:
    with pytest.raises(ValueError):
        bad.validate()


def test_histogram_batch_matches_numpy_and_survives_encoding() -> None:
    rng = random.Random(3)
    values = [int(rng.lognormvariate(6, 1.5)) + 1 for _ in range(50_000)]
    h = hg.new_histogram()
    hg.record_batch(h, values)
    merged = hg.decode(hg.encode(h))
    hg.merge_into(merged, hg.encode(h))
    assert merged.get_total_count() == 2 * len(values)
    pct = hg.percentiles_ms(merged)
    for p in (50, 90, 99):
        exact = float(np.percentile(values, p)) / 1000
        assert pct[f"p{p}"] == pytest.approx(exact, rel=0.01, abs=0.002)
    xs, ys = hg.cdf_points(merged)
    assert ys[-1] == pytest.approx(1.0) and xs == sorted(xs)


@pytest.mark.parametrize(("duration", "interval"), [(3, 0.05), (10, 0.2), (60, 1.0), (600, 10.0)])
def test_interval_choice(duration: float, interval: float) -> None:
    assert pick_interval(duration) == interval


def test_control_lines_are_found_by_command_whatever_comes_before() -> None:
    from perf.connection import _CONTROL_LINE, command_of

    burst = (
        b":srv 001 nick :Welcome\r\n"
        b":srv 002 nick :Your host 001\r\n"
        b"@time=2026-01-01T00:00:00.000Z :srv CAP nick LS :echo-message\r\n"
        b"\r\n"
        b"ping :lower case\r\n"
        b":srv 0011 nick :not a numeric we handle\r\n"
        b":srv 366 nick #r :End of /NAMES list.\r\n"
        b"ERROR :closing without a line end"
    )
    found = [m.group() for m in _CONTROL_LINE.finditer(burst)]
    assert [command_of(line) for line in found] == [b"001", b"CAP", b"PING", b"366", b"ERROR"]
    # The same lines a line-by-line command_of filter keeps, whole and in order.
    by_line = [ln + b"\n" for ln in burst.split(b"\n")[:-1]] + [burst.rsplit(b"\n", 1)[1]]
    handled = {b"001", b"CAP", b"PING", b"366", b"ERROR"}
    assert found == [ln for ln in by_line if command_of(ln) in handled]


def _quiet_summary(server_wait: float, helper_cpu: float) -> dict[str, object]:
    """A summary with nothing to warn about but the server's run-queue wait."""
    return {
        "generator": {"saturated": False, "runqueue_wait_fraction": 0.0},
        "server": {"runqueue_wait_fraction": server_wait, "helper_cpu_fraction": helper_cpu},
        "interrupted": False,
        "aborted_reason": None,
        "send_lag_ms": {"p99": None},
        "accounting": {"lost": 0, "balanced": True},
        "clients": {"failed": 0},
        "latencies_csv": {"sampled": False},
    }


def test_server_wait_is_blamed_on_others_only_beyond_its_own_helpers() -> None:
    """A history writer pinned beside the event loop makes the loop wait: that is the
    server's own cost, not a disturbance to rerun for."""
    own = _warnings(_quiet_summary(0.16, 0.20))
    assert len(own) == 1 and "own other threads" in own[0] and "other processes" not in own[0]
    others = _warnings(_quiet_summary(0.30, 0.10))
    assert len(others) == 1 and "other processes on the machine" in others[0]
    assert _warnings(_quiet_summary(0.02, 0.0)) == []


def test_helper_cpu_counts_other_threads_and_children_not_the_main_thread() -> None:
    pid = os.getpid()
    before = read_helper_cpu_seconds(pid)
    assert before is not None

    def burn() -> None:  # bounded: 0.3 s of CPU at most, or 5 s of wall time
        stop = time.monotonic() + 5
        while time.thread_time() < 0.3 and time.monotonic() < stop:
            pass

    worker = threading.Thread(target=burn)
    worker.start()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile time.process_time() < 0.3: pass\n"
         "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        worker.join()
        deadline = time.monotonic() + 10
        while (read_helper_cpu_seconds(pid) or 0) - before < 0.5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (read_helper_cpu_seconds(pid) or 0) - before >= 0.5
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    # The main thread's own CPU is not a helper's.
    before = read_helper_cpu_seconds(pid) or 0
    start = time.thread_time()
    stop = time.monotonic() + 5
    while time.thread_time() - start < 0.3 and time.monotonic() < stop:
        pass
    assert (read_helper_cpu_seconds(pid) or 0) - before < 0.15
    assert read_helper_cpu_seconds(2**22 + 7) is None  # no such process
