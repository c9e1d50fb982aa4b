"""chat-tui quits when its terminal goes away without a SIGHUP (a killed tmux server
left one reading end-of-file in a loop, spinning a core, for an hour)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.servers import free_port


def test_chat_tui_quits_when_its_terminal_is_gone(tmp_path: Path) -> None:
    master, slave = os.openpty()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm-256color",
    }
    # A new session that never takes the pty as its controlling terminal: closing the
    # pty sends it no SIGHUP, as for the process that was left spinning.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat_tui",
            "--server",
            f"127.0.0.1:{free_port()}",
            "--nick",
            "gone",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        drawn = b""
        deadline = time.monotonic() + 20
        while b"gone" not in drawn and time.monotonic() < deadline:  # the app is up
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    drawn += os.read(master, 65536)
                except OSError:
                    break
        assert b"gone" in drawn, "chat-tui never drew its screen"
        os.close(master)  # the terminal goes away
        master = -1
        proc.wait(timeout=10)  # quits within a few seconds instead of spinning
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
