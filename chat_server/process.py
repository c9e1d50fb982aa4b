"""Run a server as a child process: start it, wait for its ready line, stop it.

Benchmarks (chat-server, ngircd), ``chat-perf --spawn``, chat-tui's private server and
the tests (chat-server, redis-server) all need the same few steps, and each had grown
its own copy with its own small differences in timeouts and failure messages. Every
daemon we run logs one line when it is ready (DESIGN.md: ``listening on HOST:PORT``;
ngircd and Redis have their own), so waiting for that line is the readiness check:
no polling of ports, no sleeps.

Nothing here knows IRC; the server imports nothing from it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

LOOPBACK = "127.0.0.1"
TAIL_LINES = 20  # log lines quoted when a start fails


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def logs_listening(line: str) -> bool:
    """chat-server's ready line (``listening on HOST:PORT``)."""
    return "listening on" in line


def chat_server_command(
    port: int, history_db: Path | None, *extra: str, host: str = LOOPBACK
) -> list[str]:
    """``python -m chat_server`` on ``host:port`` with its history in ``history_db``
    (None: no file, as for a cluster node)."""
    history = ["--history-db", str(history_db)] if history_db is not None else []
    return [
        sys.executable, "-m", "chat_server", "--host", host, "--port", str(port), *history,
        *extra,
    ]  # fmt: skip


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    """``command`` under ``taskset -c cpus`` (benchmarks keep server and load apart)."""
    return ["taskset", "-c", cpus, *command] if cpus else list(command)


class DaemonStartError(RuntimeError):
    """The process exited or stayed silent before its ready line; the message quotes its
    last log lines."""


class DaemonProcess:
    """One child process whose output is kept in memory (and optionally a file).

    ``start()`` returns once a line satisfies ``ready``; ``stop()`` sends SIGTERM (or the
    given signal), waits ``grace`` seconds, then SIGKILLs. ``start()`` may be called again
    after ``stop()``: the same command, a fresh log.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        ready: Callable[[str], bool] = logs_listening,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_file: Path | None = None,
        append_log: bool = False,
        keep_lines: int | None = None,
        own_session: bool = False,
        start_timeout: float = 15.0,
        grace: float = 10.0,
    ) -> None:
        self.argv = list(command)
        self.ready = ready
        self.name = name or Path(self.argv[0]).name
        # Python daemons must not hold their ready line in a pipe buffer.
        self.env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        self.cwd = cwd
        self.log_file = log_file
        self.append_log = append_log
        self.keep_lines = keep_lines
        # Own session: a Ctrl+C meant for the parent (a benchmark, chat-perf) must not
        # reach the server mid-run; the parent stops it itself.
        self.own_session = own_session
        self.start_timeout = start_timeout
        self.grace = grace
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited (negative: killed by that signal)."""
        return self.proc.poll() if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float | None = None) -> Self:
        """Start and wait for the ready line; on failure stop it and raise
        ``DaemonStartError``."""
        limit = self.start_timeout if timeout is None else timeout
        # Fresh log and event per start: a previous run's reader must not touch them.
        self._ready = threading.Event()
        self.log = []
        sink: IO[str] | None = None
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            sink = self.log_file.open("a" if self.append_log else "w", errors="replace")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, errors="replace", env=self.env,
                cwd=self.cwd, start_new_session=self.own_session,
            )  # fmt: skip
        except OSError:
            if sink is not None:
                sink.close()
            raise
        self._pump = threading.Thread(
            target=self._read_output, args=(self.proc, self.log, sink, self._ready), daemon=True,
            name=f"{self.name}-log",
        )  # fmt: skip
        self._pump.start()
        deadline = time.monotonic() + limit
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._pump.join(1.0)  # its last words belong in the error
                if self._ready.is_set():
                    break
                code = self.proc.returncode
                self.stop()
                raise DaemonStartError(f"{self.name} exited with {code}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DaemonStartError(
                    f"{self.name} logged no ready line within {limit:g} s:\n{self.tail()}"
                )
        return self

    def _read_output(
        self,
        proc: subprocess.Popen[str],
        log: list[str],
        sink: IO[str] | None,
        ready: threading.Event,
    ) -> None:
        """Every output line into ``log`` (and ``sink``) until the process closes it."""
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                log.append(line)
                if self.keep_lines is not None and len(log) > 2 * self.keep_lines:
                    del log[: -self.keep_lines]  # in batches: a trim per line would be O(n)
                if sink is not None:
                    sink.write(raw)
                    sink.flush()
                if not ready.is_set() and self.ready(line):
                    ready.set()
        finally:
            if sink is not None:
                sink.close()

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.log[-lines:])

    def wait_log(self, needle: str, timeout: float = 10.0) -> str:
        """Wait until a log line contains ``needle``; return that line."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.log):
                if needle in line:
                    return line
            ended = self._pump is None or not self._pump.is_alive()
            if ended or time.monotonic() > deadline:
                raise TimeoutError(f"no {self.name} log line with {needle!r}:\n{self.tail(30)}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Send ``sig``, wait up to ``timeout`` (default: ``grace``) seconds, then SIGKILL.
        Returns the exit status, or None when it never started."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            proc.wait(self.grace if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        if self._pump is not None:
            self._pump.join(2.0)  # the log is complete once stop() returns
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL at once: a crash, as far as the process's peers can tell."""
        return self.stop(signal.SIGKILL)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
