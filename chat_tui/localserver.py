"""Start a private ``chat-server`` on a free loopback port for ``chat-tui`` without flags."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from chat_protocol.client_types import ServerAddress


class LocalServerError(RuntimeError):
    """The local server did not come up; the message includes its log's last lines."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A ``chat-server`` child process with its history in the user's data directory."""

    def __init__(self, history_db: Path, log_file: Path) -> None:
        self.history_db = history_db
        self.log_file = log_file
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> ServerAddress:
        return ServerAddress("127.0.0.1", self.port)

    def start(self, timeout: float = 15.0) -> ServerAddress:
        """Start the server and wait for its ``listening on`` line (its log goes to a file)."""
        self.history_db.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "chat_server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--history-db", str(self.history_db),
        ]  # fmt: skip
        with self.log_file.open("wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening on" in self._log_text():
                return self.address
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)  # polling a child's log file before the UI exists
        self.stop()
        tail = "\n".join(self._log_text().splitlines()[-10:])
        raise LocalServerError(f"the local chat-server did not start:\n{tail}")

    def _log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited after a few seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
