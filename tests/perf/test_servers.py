"""chat-perf watching several server processes (--server-pid, repeated): a real two-node
cluster on a real redis-server, every process's CPU reported and summed, and the
members of each room, spread over both nodes, agreeing on its order."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisProcess, redis_binary
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.skipif(redis_binary() is None, reason="redis-server is not installed")
RUN_TIMEOUT = 120


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisProcess, list[ServerProcess]]]:
    """Redis and two nodes on it, each in sync with the cluster."""
    with RedisProcess(tmp_path / "redis") as redis:
        nodes = []
        try:
            for name in ("a", "b"):
                node = ServerProcess(
                    tmp_path, "--redis", redis.url, "--node-id", name, flood_limit=False
                )
                nodes.append(node)
                node.start()
                node.wait_log("in sync")
            yield redis, nodes
        finally:
            for node in nodes:
                node.stop()


def test_several_server_pids_are_reported_each_and_summed(
    cluster: tuple[RedisProcess, list[ServerProcess]], tmp_path: Path
) -> None:
    redis, nodes = cluster
    pids = [n.pid for n in nodes] + [redis.pid]
    assert None not in pids
    out = tmp_path / "perf"
    proc = subprocess.run(
        [
            sys.executable, "-m", "perf", "run",
            "--target", ",".join(n.address for n in nodes),
            *(arg for pid in pids for arg in ("--server-pid", str(pid))),
            "--clients", "20", "--rooms", "2", "--senders", "6", "--rate", "150",
            "--duration", "2", "--workers", "2", "--out", str(out), "--no-progress",
            "--fail-if", "order_disagreements>0", "--fail-if", "loss>0",
        ],
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads((out / "summary.json").read_text())
    server = s["server"]
    assert server["pids"] == pids and server["pid"] == pids[0]
    per_pid = server["per_pid"]
    assert [p["pid"] for p in per_pid] == pids
    for p in per_pid:
        assert p["cores"] is not None and p["cores"] > 0, p  # every node and redis worked
        assert p["cpu_s"] == pytest.approx(p["cores"] * s["duration_s"], rel=0.1)
        assert p["rss_max_mib"] > 1 and p["runqueue_wait_fraction"] is not None
    assert server["cores"] == pytest.approx(sum(p["cores"] for p in per_pid))
    assert server["cpu_s"] == pytest.approx(sum(p["cpu_s"] for p in per_pid))
    assert server["rss_max_mib"] >= max(p["rss_max_mib"] for p in per_pid)
    assert "runqueue_wait_fraction" not in server  # per process only: one each
    assert f"pid {pids[1]} " in proc.stdout and "server CPU in the measured window" in proc.stdout
    # Rooms of 10 members, 5 on each node: the cluster's one order per room holds.
    acc, order = s["accounting"], s["order"]
    assert acc["receivers_per_message"] == 9 and acc["lost"] == 0
    assert order["rooms"] == 2 and order["receivers"] == 18 and order["disagreements"] == 0
    assert order["compared"] >= 0.6 * acc["delivered"]
    w = s["window"]
    assert w["stop_us"] - w["start_us"] == pytest.approx(2e6, abs=1)
