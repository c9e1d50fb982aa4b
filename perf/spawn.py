"""``--spawn``: run a local chat-server (flood limit off) for the length of one run,
with a TLS port and a throwaway certificate when asked (``--spawn --tls``)."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from chat_server.process import (
    LOOPBACK,
    DaemonProcess,
    chat_server_command,
    free_port,
    logs_listening,
    pinned,
)
from perf.tls import throwaway_certificate


def _logs_tls(line: str) -> bool:
    return "TLS on" in line


class SpawnedServer(DaemonProcess):
    """A ``python -m chat_server --no-flood-limit`` child on a free loopback port,
    optionally CPU-pinned, with its history in a temporary directory removed on stop.
    With ``tls`` it also serves TLS on ``tls_port`` with a self-signed certificate
    (``tls_ca``, which clients can trust) made in that directory.

    It runs in its own session: a Ctrl+C meant for chat-perf (or a benchmark) must not
    kill the server mid-run; we stop it ourselves after the outputs are written.
    """

    def __init__(
        self,
        cpus: str | None = None,
        extra_args: list[str] | None = None,
        cwd: Path | None = None,
        tls: bool = False,
    ) -> None:
        self.host = LOOPBACK
        self.port = free_port()
        self.cpus = cpus
        self.extra_args = extra_args or []
        self._tmp = tempfile.TemporaryDirectory(prefix="chat-perf-server-")
        tmp = Path(self._tmp.name)
        history_db = tmp / "history.db"
        self.tls_port: int | None = None
        self.tls_ca: Path | None = None
        tls_args: list[str] = []
        if tls:
            self.tls_port = free_port()
            self.tls_ca, key = throwaway_certificate(tmp)
            tls_args = ["--tls-port", str(self.tls_port), "--tls-cert", str(self.tls_ca),
                        "--tls-key", str(key)]  # fmt: skip
        command = chat_server_command(
            self.port, history_db, "--no-flood-limit", *tls_args, *self.extra_args
        )
        super().__init__(
            pinned(command, cpus), name="chat-server", cwd=cwd, keep_lines=10_000,
            own_session=True, start_timeout=20.0,
            # "TLS on HOST:PORT" follows "listening on": both ports are open by then.
            ready=_logs_tls if tls else logs_listening,
        )  # fmt: skip

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls_address(self) -> str:
        """HOST:PORT of the TLS port (only with ``tls``)."""
        if self.tls_port is None:
            raise ValueError("this server was started without TLS")
        return f"{self.host}:{self.tls_port}"

    def command(self) -> list[str]:
        return self.argv

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        code = super().stop(sig, timeout)
        self._tmp.cleanup()
        return code
