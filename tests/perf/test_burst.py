"""The ``burst`` scenario (issue 13) and how disconnects and loss are reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from benchmarks import run as bench
from perf.cli import build_parser, scenario_from
from perf.results import _warnings
from perf.scenario import BUILTIN, builtin
from perf.thresholds import evaluate, parse
from perf.worker import reason_key


def test_burst_is_fanout_with_a_thousand_in_flight() -> None:
    burst, fanout = BUILTIN["burst"], BUILTIN["fanout"]
    assert (burst.clients, burst.rooms, burst.senders) == (100, 1, 5)
    assert burst.saturate and burst.window == 1000
    assert (burst.clients, burst.rooms, burst.senders) == (
        fanout.clients,
        fanout.rooms,
        fanout.senders,
    )
    burst.validate()
    assert builtin("burst", window=None, duration=3.0).duration == 3.0


def test_chat_perf_runs_burst_by_name() -> None:
    args = build_parser().parse_args(["run", "--spawn", "--scenario", "burst", "--duration", "5"])
    scn = scenario_from(args)
    assert scn.name == "burst" and scn.window == 1000 and scn.saturate and scn.duration == 5
    # The window stays an option: the same layout can be driven harder or softer.
    args = build_parser().parse_args(["run", "--spawn", "--scenario", "burst", "--window", "50"])
    assert scenario_from(args).window == 50


def test_benchmarks_run_knows_burst() -> None:
    assert "burst" in bench.SCENARIOS and "burst" in bench.HEADLINE


def test_disconnect_reasons_do_not_split_by_address() -> None:
    a = reason_key("ERROR from server: Closing link: 127.0.0.1:40412 (SendQ exceeded)")
    b = reason_key("ERROR from server: Closing link: 127.0.0.1:51000 (SendQ exceeded)")
    assert a == b == "ERROR from server: Closing link: <addr> (SendQ exceeded)"
    assert reason_key("closed by server") == "closed by server"
    assert len(reason_key("x" * 500)) == 200


def summary(deliveries: float, lost: int, cut: int | None) -> dict[str, Any]:
    """The parts of a summary.json that benchmarks.run and the warnings read."""
    clients: dict[str, Any] = {"planned": 100, "failed": cut or 0}
    if cut is not None:  # runs from before chat-perf counted disconnects have no key
        clients["disconnected"] = cut
        clients["disconnect_reasons"] = {"closed by server": cut} if cut else {}
    expected = 2_000_000
    return {
        "scenario": {"name": "burst", "clients": 100, "rooms": 1, "senders": 5,
                     "saturate": True, "window": 1000, "storm": False, "rate": None},
        "clients": clients,
        "throughput": {"deliveries_per_s": deliveries, "sent_per_s": deliveries / 99},
        "accounting": {"lost": lost, "loss_rate": lost / expected, "duplicates": 0,
                       "reordered": 0},
        "latency_ms": {"p50": 1.0, "p99": 2.0, "p99.9": 3.0},
        "generator": {"worker_busy": [0.5], "saturated": False, "runqueue_wait_fraction": 0.0},
        "server": {"cpu_percent_mean": 90.0},
    }  # fmt: skip


def test_results_table_shows_loss_and_disconnects() -> None:
    ours, theirs = summary(150_000, 1_880_000, 95), summary(1_500_000, 0, 0)
    rows = dict(bench._metrics("burst", ours))
    assert rows["clients disconnected after joining"] == "95 / 100"
    assert rows["lost / duplicated / reordered"] == "1,880,000 / 0 / 0 (94.0% lost)"
    assert dict(bench._metrics("burst", theirs))["clients disconnected after joining"] == "0 / 100"
    old = dict(bench._metrics("fanout", summary(1.0, 0, None)))
    assert old["clients disconnected after joining"] == "- / 100"


def test_overview_row_and_rounds_give_loss_disconnects_and_ratio() -> None:
    rounds = [
        {"distchat": summary(150_000, 1_880_000, 95), "ngircd": summary(1_500_000, 0, 0)},
        {"distchat": summary(300_000, 1_000_000, 50), "ngircd": summary(1_000_000, 0, 0)},
    ]
    table = bench.overview({"burst": rounds[-1]}, {"burst": rounds})
    row = next(line for line in table if line.startswith("| burst |"))
    assert row == (
        "| burst | deliveries/s | 300,000 | 1,000,000 | 1,000,000 / 0 | 50 / 0 | 0.20x (2 rounds) |"
    )
    assert "lost (distchat / ngircd)" in table[0] and "disconnected (distchat / ngircd)" in table[0]
    text = "\n".join(bench.rounds_section("burst", rounds))
    assert "distchat 150,000 (lost 1,880,000, disconnected 95)" in text
    assert "ngircd 1,500,000 (lost 0, disconnected 0)" in text
    assert "distchat does 0.10x" in text and "**0.20x**" in text  # median of 0.10 and 0.30
    # Elsewhere loss and cuts are named only when there were any.
    fanout = [{"distchat": summary(2.0, 0, 0), "ngircd": summary(1.0, 0, 0)}]
    assert "lost" not in "\n".join(bench.rounds_section("fanout", fanout))


def test_warnings_tell_disconnects_from_failures() -> None:
    s = copy.deepcopy(summary(1.0, 10, 3))
    s["clients"]["failed"] = 5  # 3 cut after joining, 2 never got in
    s.update(
        interrupted=False, aborted_reason=None, send_lag_ms={"p99": None},
        latencies_csv={"sampled": False}, generator={**s["generator"], "busy_fraction": 0.5},
    )  # fmt: skip
    s["accounting"]["balanced"] = True
    warnings = _warnings(s)
    assert any(w.startswith("3 of 100 client(s) were disconnected after joining") for w in warnings)
    assert any(w.startswith("2 client(s) failed before joining") for w in warnings)


@pytest.mark.parametrize(("cut", "violated"), [(0, False), (1, True)])
def test_fail_if_disconnects(cut: int, violated: bool) -> None:
    assert bool(evaluate([parse("disconnects>0")], summary(1.0, 0, cut))) is violated
