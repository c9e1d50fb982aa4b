"""Integration: short chat-perf runs against a spawned chat-server, checking the outputs.

Each run is the real command line in a subprocess, a few seconds long.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from tests.support.servers import free_port

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chat_server") is None, reason="chat_server is not importable yet"
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_TIMEOUT = 90


def chat_perf(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perf", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = mpimg.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 300


def assert_balanced(s: dict) -> None:
    acc = s["accounting"]
    assert acc["balanced"], acc
    sent = s["throughput"]["sent"]
    assert acc["expected"] == round(sent * acc["receivers_per_message"])
    assert acc["expected"] == acc["delivered"] + acc["lost"]
    assert acc["overrun"] == 0


@pytest.fixture(scope="module")
def chat_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("chat")
    proc = chat_perf(
        "run", "--spawn", "--clients", "24", "--rooms", "4", "--senders", "8", "--rate", "200",
        "--duration", "3", "--workers", "2", "--out", str(out), "--label", "chat-test",
        "--no-progress",
    )  # fmt: skip
    return out, proc


def test_chat_run_writes_every_output(
    chat_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, proc = chat_run
    assert proc.returncode == 0, proc.stderr
    for name in ("summary.json", "latencies.csv", "report.md", "report.html"):
        assert (out / name).is_file(), name
    for name in (
        "latency_plot.png",
        "latency_over_time.png",
        "latency_cdf.png",
        "throughput.png",
        "server_resources.png",
    ):
        assert_png(out / name)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert 'src="http' not in html and "<script" not in html
    md = (out / "report.md").read_text()
    assert "| p99" in md or "latency p99" in md


def test_chat_run_counts_add_up(chat_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = chat_run
    s = load(out)
    assert s["clients"]["registered"] == 24 and s["clients"]["failed"] == 0
    # 24 clients in 4 rooms: 6 members, so every message has 5 receivers.
    assert s["accounting"]["receivers_per_message"] == 5
    assert_balanced(s)
    assert s["accounting"]["lost"] == 0
    assert s["throughput"]["sent"] == pytest.approx(600, rel=0.1)
    assert s["throughput"]["sent_per_s"] == pytest.approx(200, rel=0.1)
    lat = s["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert lat["count"] == s["accounting"]["delivered"]
    assert s["server"]["pid"] and s["server"]["rss_max_mib"] > 0
    assert s["generator"]["workers"] == 2 and s["generator"]["busy_fraction"] is not None
    assert s["connect_ms"]["welcome"]["count"] == 24


def test_chat_run_members_agree_on_every_rooms_order(
    chat_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """One server gives every member of a room its messages in one order: the check
    compares (nearly) every delivery and finds no disagreement."""
    out, proc = chat_run
    s = load(out)
    order = s["order"]
    assert s["accounting"]["order_disagreements"] == order["disagreements"] == 0
    # 4 rooms of 6 members; each room's reference is compared with the other 5.
    assert order["rooms"] == 4 and order["receivers"] == 20 and order["stride"] == 1
    assert order["compared"] >= 0.6 * s["accounting"]["delivered"]
    assert "order disagreements 0" in proc.stdout
    assert "| order disagreements | 0 |" in (out / "report.md").read_text()


def test_chat_run_states_its_window_and_the_servers_cpu(
    chat_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, proc = chat_run
    s = load(out)
    w = s["window"]
    assert w["stop_us"] - w["start_us"] == pytest.approx(s["duration_s"] * 1e6, abs=1)
    assert w["stop_unix_s"] - w["start_unix_s"] == pytest.approx(s["duration_s"], abs=1e-3)
    assert abs(w["start_unix_s"] - time.time()) < RUN_TIMEOUT + 60
    server = s["server"]
    (one,) = server["per_pid"]
    assert one["pid"] == server["pid"] and server["pids"] == [server["pid"]]
    assert 0 < one["cores"] == server["cores"] < 2
    assert one["cpu_s"] == pytest.approx(one["cores"] * s["duration_s"], rel=0.1)
    assert "server CPU in the measured window:" in proc.stdout


def test_chat_run_csv_matches_summary(
    chat_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = chat_run
    s = load(out)
    with (out / "latencies.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == s["latencies_csv"]["rows"] == s["accounting"]["delivered"]
    assert not s["latencies_csv"]["sampled"]
    seen = {(r["sender"], r["seq"], r["receiver"]) for r in rows}
    assert len(seen) == len(rows)  # no duplicates in the raw data
    assert all(int(r["latency_us"]) > 0 and r["room"].startswith("#perf") for r in rows)
    times = [float(r["recv_time_s"]) for r in rows]
    assert times == sorted(times) and times[-1] < s["duration_s"] + 5


def test_fanout_saturate_counts_add_up(tmp_path: Path) -> None:
    proc = chat_perf(
        "run", "--spawn", "--scenario", "fanout", "--clients", "30", "--senders", "3",
        "--duration", "2", "--out", str(tmp_path), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = load(tmp_path)
    assert s["scenario"]["saturate"] and s["accounting"]["receivers_per_message"] == 29
    assert_balanced(s)
    assert s["accounting"]["lost"] == 0
    assert s["throughput"]["deliveries_per_s"] > 1000
    assert s["clients"]["echo_message"] == 30  # our server offers echo-message
    assert s["echo_latency_ms"]["count"] == s["throughput"]["sent"]


def test_storm_registers_everyone(tmp_path: Path) -> None:
    proc = chat_perf(
        "run", "--spawn", "--scenario", "storm", "--clients", "300", "--out", str(tmp_path),
        "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = load(tmp_path)
    assert s["storm"]["complete"] and s["storm"]["registered"] == 300
    assert 0 < s["storm"]["all_registered_s"] < 30
    assert s["connect_ms"]["welcome"]["count"] == 300
    assert s["server"]["rss_per_client_kib"] is not None
    assert_png(tmp_path / "connect_cdf.png")
    assert_png(tmp_path / "throughput.png")
    assert "storm:" in proc.stdout


def test_threshold_violation_sets_exit_code(tmp_path: Path) -> None:
    proc = chat_perf(
        "run", "--spawn", "--clients", "6", "--rooms", "2", "--senders", "2", "--rate", "50",
        "--duration", "2", "--out", str(tmp_path), "--no-progress",
        "--fail-if", "p50>0us", "--fail-if", "p99>60s",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "threshold violated: p50>0us" in proc.stderr
    assert "p99>60s" not in proc.stderr
    s = load(tmp_path)
    assert s["thresholds"]["violated"] and len(s["thresholds"]["checked"]) == 2


def test_thresholds_that_hold_exit_zero(tmp_path: Path) -> None:
    proc = chat_perf(
        "run", "--spawn", "--clients", "4", "--rooms", "1", "--senders", "1", "--rate", "20",
        "--duration", "2", "--out", str(tmp_path), "--no-progress",
        "--fail-if", "p99>60s", "--fail-if", "loss>0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_bad_threshold_is_a_usage_error(tmp_path: Path) -> None:
    proc = chat_perf("run", "--spawn", "--out", str(tmp_path), "--fail-if", "p99>>fast")
    assert proc.returncode == 2
    assert "--fail-if" in proc.stderr
    assert not (tmp_path / "summary.json").exists()


def test_sigint_stops_early_and_still_writes(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "perf", "run", "--spawn", "--clients", "10", "--rooms", "2",
         "--senders", "4", "--rate", "100", "--duration", "60", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if " running " in line and "sent 0 " not in line:
                break
        assert " running " in line, "progress never reported the running phase"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err  # an interrupted run is no success
    assert "interrupted by SIGINT" in err
    s = load(tmp_path)
    assert s["interrupted"] is True
    assert not s["verdict"]["ok"] and "interrupted" in s["verdict"]["problems"][0]
    assert "interrupted" in (tmp_path / "report.md").read_text().split("| metric")[0]
    assert s["duration_s"] < 30
    assert s["throughput"]["sent"] > 0
    assert_balanced(s)
    assert_png(tmp_path / "latency_cdf.png")


def test_compare_overlays_runs(
    chat_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    out, _ = chat_run
    other = tmp_path / "copy"
    shutil.copytree(out, other)
    summary = load(other)
    summary["label"] = "copy"
    (other / "summary.json").write_text(json.dumps(summary))
    dest = tmp_path / "cmp"
    proc = chat_perf("compare", str(out), str(other), "--out", str(dest))
    assert proc.returncode == 0, proc.stderr
    for name in (
        "compare_latency_cdf.png",
        "compare_latency_over_time.png",
        "compare_throughput.png",
    ):
        assert_png(dest / name)
    md = (dest / "compare.md").read_text()
    assert "chat-test" in md and "copy" in md
    assert (dest / "compare.html").read_text().count("data:image/png;base64,") >= 3


def test_compare_rejects_a_directory_without_results(tmp_path: Path) -> None:
    proc = chat_perf("compare", str(tmp_path), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "summary.json" in proc.stderr


def test_unreachable_target_fails_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = chat_perf(
        "run", "--target", f"127.0.0.1:{port}", "--clients", "3", "--rooms", "1", "--senders", "1",
        "--rate", "10", "--duration", "1", "--out", str(tmp_path), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 1
    s = load(tmp_path)
    assert s["clients"]["failed"] == 3
    assert any("connect" in e for e in s["errors"])


@pytest.mark.skipif(
    shutil.which("ngircd") is None and not Path("/usr/sbin/ngircd").exists(), reason="no ngircd"
)
def test_runs_unchanged_against_ngircd(tmp_path: Path) -> None:
    """A standard IRC server without echo-message: senders ack through a local receiver."""
    from benchmarks.ngircd import NgircdProcess

    with NgircdProcess(tmp_path) as ng:
        out = tmp_path / "out"
        proc = chat_perf(
            "run", "--target", ng.address, "--server-pid", str(ng.pid), "--scenario", "fanout",
            "--clients", "20", "--senders", "2", "--duration", "2", "--out", str(out),
            "--no-progress",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = load(out)
    assert s["clients"]["echo_message"] == 0
    assert_balanced(s)
    assert s["accounting"]["lost"] == 0 and s["throughput"]["deliveries"] > 0
