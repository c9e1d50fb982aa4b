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


# -- settings and errors (issue 13 §4): one line on stderr, exit 2, never a traceback ----


def _refused(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single error line of a run that had to stop at startup."""
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("chat-server: error: "), line
    for needle in needles:
        assert needle in line
    return line


def test_zero_flood_rate_in_config_file_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f"[server]\nport = {free_port()}\nflood_rate = 0\n")
    _refused(_run("--config", str(conf), "--history-db", str(tmp_path / "h.db")), "flood_rate")


def test_negative_max_clients_in_config_file_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text("max_clients = -5\n")
    _refused(_run("--config", str(conf)), "max_clients", "-5")


def test_negative_ping_timeout_flag_is_refused() -> None:
    _refused(_run("--ping-timeout", "-1"), "--ping-timeout", "greater than 0")


def test_config_that_is_a_directory(tmp_path: Path) -> None:
    _refused(_run("--config", str(tmp_path)), str(tmp_path), "is a directory")


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    conf = tmp_path / "latin1.toml"
    conf.write_bytes('motd = "caf\xe9"\n'.encode("latin-1"))
    _refused(_run("--config", str(conf)), "not UTF-8")


def test_bad_redis_url_fails_at_startup() -> None:
    res = _run("--port", str(free_port()), "--redis", "notaurl", "--node-id", "a")
    _refused(res, "--redis", "redis://")
    assert "listening on" not in res.stdout + res.stderr


def test_history_error_names_the_file_once(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    db.write_bytes(b"this is not an SQLite database, " * 64)
    res = _run("--port", str(free_port()), "--history-db", str(db))
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0
    assert res.stderr.count(str(db)) == 1
    assert res.stderr.count("cannot open history database") == 1
