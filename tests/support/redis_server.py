"""A private ``redis-server`` for cluster tests: a free loopback port, no persistence."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from chat_server.process import LOOPBACK, DaemonProcess, free_port


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def _redis_ready(line: str) -> bool:
    return "Ready to accept connections" in line


class RedisProcess(DaemonProcess):
    """Start, stop and restart (on the same port) a throwaway redis-server; its log is
    appended to ``workdir/redis-PORT.log`` across restarts."""

    def __init__(self, workdir: Path, port: int | None = None, *, aof: bool = False) -> None:
        """``aof``: persist with an append-only file (fsync every second), as production
        should, so a restart comes back with its data."""
        self.port = port or free_port()
        self.workdir = workdir
        binary = redis_binary() or "redis-server"
        command = [binary, "--save", "", "--appendonly", "yes" if aof else "no",
                   "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(workdir)]  # fmt: skip
        super().__init__(
            command, ready=_redis_ready, name="redis-server", grace=5.0, start_timeout=10.0,
            log_file=workdir / f"redis-{self.port}.log", append_log=True,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float | None = None) -> RedisProcess:
        if redis_binary() is None:
            raise RuntimeError("redis-server is not installed (scripts/test installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        return super().start(timeout)

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
