"""Start a private ``chat-server`` on a free loopback port for ``chat-tui`` without flags."""

from __future__ import annotations

import subprocess
from pathlib import Path

from chat_protocol.client_types import ServerAddress
from chat_server.process import (
    LOOPBACK,
    DaemonProcess,
    DaemonStartError,
    chat_server_command,
    free_port,
)


class LocalServerError(RuntimeError):
    """The local server did not come up; the message includes its log's last lines."""


class LocalServer:
    """A ``chat-server`` child process with its history in the user's data directory and
    its log in ``log_file``."""

    def __init__(self, history_db: Path, log_file: Path) -> None:
        self.history_db = history_db
        self.log_file = log_file
        self.port = free_port()
        # The log file has every line; memory keeps the recent ones for error messages.
        self._daemon = DaemonProcess(
            chat_server_command(self.port, history_db), name="chat-server",
            log_file=log_file, keep_lines=1_000, grace=5.0,
        )  # fmt: skip

    @property
    def address(self) -> ServerAddress:
        return ServerAddress(LOOPBACK, self.port)

    @property
    def proc(self) -> subprocess.Popen[str] | None:
        return self._daemon.proc

    def start(self, timeout: float = 15.0) -> ServerAddress:
        """Start the server and wait for its ``listening on`` line."""
        self.history_db.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._daemon.start(timeout)
        except (DaemonStartError, OSError) as exc:
            tail = self._daemon.tail(10) if isinstance(exc, DaemonStartError) else str(exc)
            raise LocalServerError(f"the local chat-server did not start:\n{tail}") from exc
        return self.address

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited after a few seconds."""
        self._daemon.stop()
