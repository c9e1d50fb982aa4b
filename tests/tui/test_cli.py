"""chat-tui's command line: help, bad flags, and the local server it starts by itself."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from chat_protocol.client_types import ServerAddress
from chat_tui.localserver import LocalServer


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "--server" in result.stdout and "--join" in result.stdout


def test_bad_server_flag_is_one_line_and_exit_2() -> None:
    result = run_cli("--server", "host:notaport")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "port is not a number" in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def registered(address: ServerAddress, nick: str) -> bool:
    with socket.create_connection((address.host, address.port), timeout=5) as sock:
        sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
        return b" 001 " in sock.recv(4096)


def local_server(data: Path) -> LocalServer:
    return LocalServer(data, data / "history.db", data / "server.log")


def test_local_server_starts_on_loopback_and_stops(tmp_path: Path) -> None:
    local = local_server(tmp_path / "data")
    address = local.start()
    try:
        assert address.host == "127.0.0.1" and local.started_here
        assert registered(address, "probe")
    finally:
        local.stop()
    assert local.proc is not None and local.proc.poll() is not None
    assert not local.running() and not local.port_file.exists()


def test_second_client_joins_the_local_server_and_the_last_one_stops_it(
    tmp_path: Path,
) -> None:
    """Two zero-setup clients share one server (one history file); it goes with the last."""
    first, second = local_server(tmp_path / "data"), local_server(tmp_path / "data")
    try:
        address = first.start()
        assert second.start() == address and not second.started_here
        first.stop()  # the one that started it leaves first: the server stays
        assert second.running() and registered(address, "still")
        second.stop()
        assert not second.running()
        assert first.proc is not None and first.proc.poll() is not None
        third = local_server(tmp_path / "data")  # and the next client starts a fresh one
        assert registered(third.start(), "again") and third.started_here
        third.stop()
    finally:
        first.stop()
        second.stop()


def test_a_crashed_client_does_not_count(tmp_path: Path) -> None:
    """A client killed without stopping (its locks die with it) leaves the last real
    client in charge of stopping the server."""
    data = tmp_path / "data"
    script = (
        "import os, sys; from pathlib import Path; from chat_tui.localserver import LocalServer; "
        f"d = Path({str(data)!r}); LocalServer(d, d / 'history.db', d / 'server.log').start(); "
        "print('up', flush=True); os._exit(0)"
    )
    crashed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert crashed.stdout.strip() == "up"
    survivor = local_server(data)
    assert survivor.start() and not survivor.started_here
    survivor.stop()
    assert not survivor.running()
