"""Start real distchat (and other) servers for tests, on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real ``chat-server`` process; waits for its ``listening on`` line."""

    def __init__(
        self,
        tmp_path: Path,
        *extra_args: str,
        port: int | None = None,
        history_db: Path | None = None,
        flood_limit: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.history_db = history_db or (tmp_path / f"history-{self.port}.db")
        self.extra_args: list[str] = list(extra_args)
        if not flood_limit:
            self.extra_args.append("--no-flood-limit")
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> Sequence[str]:
        return [
            sys.executable,
            "-m",
            "chat_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--history-db",
            str(self.history_db),
            "--log-level",
            "INFO",
            *self.extra_args,
        ]

    def start(self, timeout: float = 15.0) -> ServerProcess:
        self._ready.clear()
        self.log = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.log))
        return self

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line.rstrip("\n"))
            if "listening on" in line:
                self._ready.set()

    def wait_log(self, needle: str, timeout: float = 10.0) -> str:
        """Wait until a log line contains ``needle``; return that line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if needle in line:
                    return line
            time.sleep(0.02)
        raise TimeoutError(f"no log line with {needle!r}:\n" + "\n".join(self.log[-30:]))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` and wait for the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
