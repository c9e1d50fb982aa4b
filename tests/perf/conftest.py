"""Finished chat-perf runs against a spawned chat-server, shared by the output, chart
and comparison tests (one of each kind per test process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RUN_TIMEOUT = 120


def chat_perf(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """The real command line, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "perf", *args], capture_output=True, text=True, timeout=timeout
    )


def load_summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def _run(out: Path, *args: str) -> Path:
    proc = chat_perf("run", "--spawn", "--out", str(out), "--no-progress", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="session")
def chat_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rate-mode run: 24 clients in 4 rooms, 8 senders at 200 msg/s, 3 s, 2 workers
    (3,000 deliveries: enough for a p99.9)."""
    return _run(
        tmp_path_factory.mktemp("chat-out"),
        "--clients", "24", "--rooms", "4", "--senders", "8", "--rate", "200",
        "--duration", "3", "--workers", "2", "--label", "chat-a",
    )  # fmt: skip


@pytest.fixture(scope="session")
def fanout_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saturated run (the kind that showed negative latencies), 2 workers."""
    return _run(
        tmp_path_factory.mktemp("fanout-out"),
        "--scenario", "fanout", "--clients", "30", "--senders", "4", "--duration", "2",
        "--workers", "2",
    )  # fmt: skip


@pytest.fixture(scope="session")
def storm_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registration storm of 200 clients."""
    return _run(tmp_path_factory.mktemp("storm-out"), "--scenario", "storm", "--clients", "200")
