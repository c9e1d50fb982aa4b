"""chat-tui's command line: help, bad flags, and the local server it starts by itself."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

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


def test_local_server_starts_on_loopback_and_stops(tmp_path: Path) -> None:
    local = LocalServer(tmp_path / "data" / "history.db", tmp_path / "data" / "server.log")
    address = local.start()
    try:
        assert address.host == "127.0.0.1"
        with socket.create_connection((address.host, address.port), timeout=5) as sock:
            sock.sendall(b"NICK probe\r\nUSER probe 0 * :probe\r\n")
            assert b" 001 " in sock.recv(4096)
    finally:
        local.stop()
    assert local.proc is not None and local.proc.poll() is not None
