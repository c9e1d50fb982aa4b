"""The daemon as a user meets it: flags, errors, readiness, clean shutdown."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess, free_port


def _run(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wrong_flag_is_one_clear_line() -> None:
    res = _run("--no-such-flag")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "unrecognized arguments: --no-such-flag" in res.stderr


def test_busy_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = _run("--port", str(port), "--history-db", str(tmp_path / "h.db"))
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr
    assert res.stderr.strip().count("\n") == 0


def test_missing_and_broken_config(tmp_path: Path) -> None:
    res = _run("--config", str(tmp_path / "nope.toml"))
    assert res.returncode == 2 and "config file not found" in res.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    res = _run("--config", str(bad))
    assert res.returncode == 2 and "not valid TOML" in res.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[server]\ncolour = 'blue'\n")
    res = _run("--config", str(unknown))
    assert res.returncode == 2 and "unknown setting 'colour'" in res.stderr


def test_unwritable_history_db(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = _run("--port", str(free_port()), "--history-db", str(blocker / "h.db"))
    assert res.returncode == 1
    assert "cannot open history database" in res.stderr


def test_config_file_sets_port_and_name(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "c.toml"
    conf.write_text(f'[server]\nport = {port}\nserver_name = "irc.example.test"\n')
    srv = ServerProcess(tmp_path, "--config", str(conf), port=port)
    with srv:
        c = RawClient(srv.host, port)
        welcome = c.register("alice")
        assert welcome.source == "irc.example.test"
        c.close()


def test_sigterm_tells_clients_and_exits_zero_quickly(server) -> None:
    c = RawClient(server.host, server.port)
    c.register("alice")
    started = time.monotonic()
    code = server.stop(signal.SIGTERM)
    assert code == 0
    assert time.monotonic() - started < 3
    assert c.expect("ERROR").params[-1] == "Server shutting down"
    assert any("listening on" in line for line in server.log)


def test_sigint_also_exits_zero(server) -> None:
    assert server.stop(signal.SIGINT) == 0
