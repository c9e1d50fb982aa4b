"""``--spawn``: run a local chat-server (flood limit off) for the length of one run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SpawnedServer:
    """A ``python -m chat_server`` child on a free loopback port, optionally CPU-pinned."""

    def __init__(self, cpus: str | None = None, extra_args: list[str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.cpus = cpus
        self.extra_args = extra_args or []
        self._tmp = tempfile.TemporaryDirectory(prefix="chat-perf-server-")
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "chat_server",
            "--host", self.host, "--port", str(self.port),
            "--history-db", str(Path(self._tmp.name) / "history.db"),
            "--no-flood-limit",
            *self.extra_args,
        ]  # fmt: skip
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus, *cmd]
        return cmd

    def start(self, timeout: float = 20.0) -> SpawnedServer:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Own session: a Ctrl+C meant for chat-perf must not kill the server mid-run;
        # we stop it ourselves after the outputs are written.
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.log[-20:])
                raise RuntimeError(f"chat-server did not start:\n{tail}")
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self.log) < 10_000:
                self.log.append(line.rstrip("\n"))
            if "listening on" in line:
                self._ready.set()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        self._tmp.cleanup()
        return code
