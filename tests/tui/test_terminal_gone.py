"""chat-tui quits when its terminal goes away without a SIGHUP (a killed tmux left one
reading end-of-file in a loop, spinning a core, for an hour), and after a SIGHUP with
the zero-setup local server (its shutdown once hung on Textual's input thread)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.servers import free_port


def run_on_pty(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """chat-tui on a pty of its own, in a new session that never takes the pty as its
    controlling terminal (closing it sends no SIGHUP); returns once it has drawn."""
    master, slave = os.openpty()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm-256color",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat_tui", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    nick = args[args.index("--nick") + 1].encode()  # drawn in the status line
    drawn = b""
    deadline = time.monotonic() + 20
    while nick not in drawn and time.monotonic() < deadline:  # the app is up
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                drawn += os.read(master, 65536)
            except OSError:
                break
    if nick not in drawn:
        os.close(master)
        proc.kill()
        proc.wait()
        raise AssertionError("chat-tui never drew its screen")
    return proc, master


def local_servers(tmp_path: Path) -> list[int]:
    """chat-server processes whose files are under ``tmp_path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"chat_server" in cmdline and str(tmp_path).encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_chat_tui_quits_when_its_terminal_is_gone(tmp_path: Path) -> None:
    proc, master = run_on_pty(["--server", f"127.0.0.1:{free_port()}", "--nick", "gone"], tmp_path)
    try:
        os.close(master)  # the terminal goes away
        proc.wait(timeout=10)  # quits within a few seconds instead of spinning
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_zero_setup_chat_tui_quits_after_a_hangup_and_stops_its_server(tmp_path: Path) -> None:
    proc, master = run_on_pty(["--nick", "ann"], tmp_path)
    try:
        os.kill(proc.pid, signal.SIGHUP)
        os.close(master)
        proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and local_servers(tmp_path):
            time.sleep(0.1)
        assert not local_servers(tmp_path), "the local chat-server outlived its client"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in local_servers(tmp_path):
            os.kill(pid, signal.SIGKILL)
