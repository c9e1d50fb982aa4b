"""A run that did not measure what was planned says so, first, everywhere, and fails.

Real runs of the ``chat-perf`` command line against a real ``chat-server`` that allows
fewer connections per address than the run plans (the default server's 256 against
``--clients 2000`` in the issue, scaled down), against a closed port, and with a
violated ``--fail-if``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess, free_port

PER_ADDRESS = 6
CLIENTS = 10
RUN_TIMEOUT = 90


def chat_perf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perf", *args], capture_output=True, text=True, timeout=RUN_TIMEOUT
    )


def load(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.fixture
def limited_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A chat-server as users run it (flood limit on) allowing PER_ADDRESS connections."""
    return server_factory("--max-per-address", str(PER_ADDRESS))


def _top(text: str, lines: int = 6) -> str:
    return "\n".join(text.splitlines()[:lines])


def test_partial_registration_fails_and_says_why_first(
    limited_server: ServerProcess, tmp_path: Path
) -> None:
    proc = chat_perf(
        "run", "--target", limited_server.address, "--server-pid", str(limited_server.pid),
        "--clients", str(CLIENTS), "--rooms", "2", "--senders", "2", "--rate", "20",
        "--duration", "1", "--out", str(tmp_path), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    missing = CLIENTS - PER_ADDRESS
    # The console opens with the problem, the commonest reason (with its count) and hints.
    top = _top(proc.stdout)
    assert proc.stdout.startswith("!! chat-perf: this run did not measure what was planned")
    assert f"only {PER_ADDRESS} of {CLIENTS} planned clients registered" in top
    assert (
        f"{missing} x ERROR from server: Closing link: Too many connections from your address"
        in (top)
    )
    assert "--no-flood-limit" in top and "--max-per-address" in top
    assert "run failed: only 6 of 10" in proc.stderr
    s = load(tmp_path)
    assert s["clients"]["registered"] == PER_ADDRESS and not s["verdict"]["ok"]
    assert s["verdict"]["reasons"][0][1] == missing
    # Both reports open with it, before the table.
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        head = text.split("<table>")[0] if name.endswith("html") else text.split("| metric")[0]
        assert f"only {PER_ADDRESS} of {CLIENTS} planned clients registered" in head, name
        assert "Too many connections from your address" in head and "--no-flood-limit" in head
    assert (
        f"| clients registered | {PER_ADDRESS} / {CLIENTS} ⚠ incomplete |"
        in (tmp_path / "report.md").read_text()
    )


def test_chart_footers_state_the_clients_that_registered(
    limited_server: ServerProcess, tmp_path: Path
) -> None:
    from perf import charts

    proc = chat_perf(
        "run", "--target", limited_server.address, "--scenario", "storm",
        "--clients", str(CLIENTS), "--out", str(tmp_path), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    s = load(tmp_path)
    assert s["storm"]["registered"] == PER_ADDRESS and not s["storm"]["complete"]
    text = charts.run_description(s)
    assert f"{PER_ADDRESS} of {CLIENTS} planned clients registered (INCOMPLETE)" in text
    assert f"{CLIENTS} clients" not in text.replace(f"of {CLIENTS} planned", "")
    assert proc.stdout.startswith("!! chat-perf:")
    assert f"storm: {PER_ADDRESS}/{CLIENTS} registered, those within" in proc.stdout


def test_closed_port_fails_with_the_reason_first(tmp_path: Path) -> None:
    port = free_port()
    proc = chat_perf(
        "run", "--target", f"127.0.0.1:{port}", "--clients", "3", "--rooms", "1",
        "--senders", "1", "--rate", "10", "--duration", "1", "--out", str(tmp_path),
        "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 1
    top = _top(proc.stdout, 8)
    assert proc.stdout.startswith("!! chat-perf:")
    assert "only 0 of 3 planned clients registered" in top
    assert "3 x connect: ECONNREFUSED" in top
    assert f"nothing accepted connections at 127.0.0.1:{port}" in top
    head = (tmp_path / "report.md").read_text().split("| metric")[0]
    assert "ECONNREFUSED" in head and "no client could register" in head


def test_violated_threshold_is_in_both_reports(tmp_path: Path) -> None:
    proc = chat_perf(
        "run", "--spawn", "--clients", "4", "--rooms", "1", "--senders", "1", "--rate", "20",
        "--duration", "1", "--out", str(tmp_path), "--no-progress", "--fail-if", "p50>0us",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    s = load(tmp_path)
    assert s["verdict"]["ok"]  # the run itself was complete
    md = (tmp_path / "report.md").read_text().split("| metric")[0]
    html = (tmp_path / "report.html").read_text().split("<table>")[0]
    for head in (md, html):
        assert "--fail-if violated: p50&gt;0us" in head or "--fail-if violated: p50>0us" in head
