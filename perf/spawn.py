"""``--spawn``: run a local chat-server (flood limit off) for the length of one run."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from chat_server.process import LOOPBACK, DaemonProcess, chat_server_command, free_port, pinned


class SpawnedServer(DaemonProcess):
    """A ``python -m chat_server --no-flood-limit`` child on a free loopback port,
    optionally CPU-pinned, with its history in a temporary directory removed on stop.

    It runs in its own session: a Ctrl+C meant for chat-perf (or a benchmark) must not
    kill the server mid-run; we stop it ourselves after the outputs are written.
    """

    def __init__(
        self,
        cpus: str | None = None,
        extra_args: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.host = LOOPBACK
        self.port = free_port()
        self.cpus = cpus
        self.extra_args = extra_args or []
        self._tmp = tempfile.TemporaryDirectory(prefix="chat-perf-server-")
        history_db = Path(self._tmp.name) / "history.db"
        command = chat_server_command(self.port, history_db, "--no-flood-limit", *self.extra_args)
        super().__init__(
            pinned(command, cpus), name="chat-server", cwd=cwd, keep_lines=10_000,
            own_session=True, start_timeout=20.0,
        )  # fmt: skip

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return self.argv

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        code = super().stop(sig, timeout)
        self._tmp.cleanup()
        return code
