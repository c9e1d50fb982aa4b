"""chat-perf against a two-node cluster, clients dealt over both nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cluster.conftest import Cluster


def test_chat_perf_spreads_clients_over_nodes(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.node("a")
    b = cluster.node("b")
    out = tmp_path / "perf"
    proc = subprocess.run(
        [
            sys.executable, "-m", "perf", "run",
            "--target", f"{a.address},{b.address}",
            "--clients", "20", "--rooms", "2", "--senders", "4", "--rate", "40",
            "--duration", "2", "--workers", "1", "--out", str(out), "--no-progress",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["target"] == f"{a.address},{b.address}"
    assert s["clients"]["registered"] == 20 and s["clients"]["failed"] == 0
    acc = s["accounting"]
    # 10 members a room, half on each node: every message reaches 9 others across nodes.
    assert acc["receivers_per_message"] == 9
    assert acc["lost"] == 0 and acc["duplicates"] == 0 and acc["reordered"] == 0
    assert acc["delivered"] == s["throughput"]["sent"] * 9
