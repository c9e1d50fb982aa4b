"""The local ``chat-server`` that every ``chat-tui`` without ``--server`` shares.

The first zero-setup client starts one server on a free loopback port; later ones join
it; the last one to quit stops it, whoever started it. Two servers on one history file
would fight over it (the second one's writes fail), so there is never more than one.

Everything lives in the data directory and is coordinated with ``flock`` locks, which
the kernel drops when their holder dies, so a crashed client or server leaves nothing
stale behind:

- ``local-server.lock``: held while a client decides to start, join or stop the server.
- ``local-server.alive``: held by the server process itself (it inherits the locked
  descriptor), so "can I lock it?" means "no server is running".
- ``local-server.json``: the running server's port and pid.
- ``local-clients.lock``: every client holds a shared lock on it; a client that can turn
  its lock exclusive is the last one.

The server runs in its own session with its output in ``local-server.log``, so it
outlives the client that started it and a Ctrl+C in that client's terminal is not its.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from chat_protocol.client_types import ServerAddress
from chat_server.process import LOOPBACK, chat_server_command, free_port

READY_MARK = "listening on"
STOP_GRACE = 5.0


class LocalServerError(RuntimeError):
    """The local server did not come up; the message includes its log's last lines."""


def _try_lock(fh: IO[str], mode: int) -> bool:
    """``flock`` without waiting; False when someone else holds a conflicting lock."""
    try:
        fcntl.flock(fh, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class LocalServer:
    """This client's share of the local server in ``data_dir``.

    ``start()`` joins the running server or starts one and returns its address;
    ``stop()`` leaves, and stops the server when no other client is left.
    """

    def __init__(self, data_dir: Path, history_db: Path, log_file: Path) -> None:
        self.data_dir = data_dir
        self.history_db = history_db
        self.log_file = log_file
        self.port: int | None = None
        self.pid: int | None = None
        self.started_here = False
        self.proc: subprocess.Popen[bytes] | None = None
        self._client_lock: IO[str] | None = None

    @property
    def address(self) -> ServerAddress:
        assert self.port is not None, "start() first"
        return ServerAddress(LOOPBACK, self.port)

    @property
    def port_file(self) -> Path:
        return self.data_dir / "local-server.json"

    def _open(self, name: str) -> IO[str]:
        return (self.data_dir / name).open("a+")

    def start(self, timeout: float = 15.0) -> ServerAddress:
        """Join the running local server, or start one and wait for its ready line."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._open("local-server.lock") as decide:
            fcntl.flock(decide, fcntl.LOCK_EX)  # another client starting: wait for it
            clients = self._open("local-clients.lock")
            fcntl.flock(clients, fcntl.LOCK_SH)
            try:
                with self._open("local-server.alive") as alive:
                    if _try_lock(alive, fcntl.LOCK_EX):
                        self._spawn(alive, timeout)
                    else:
                        self._read_port_file()
            except BaseException:
                clients.close()
                raise
            self._client_lock = clients
        return self.address

    def _read_port_file(self) -> None:
        try:
            info = json.loads(self.port_file.read_text())
            self.port, self.pid = int(info["port"]), int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LocalServerError(
                f"a local chat-server is running but {self.port_file} is unreadable: {exc}"
            ) from exc

    def _spawn(self, alive: IO[str], timeout: float) -> None:
        """Start the server holding ``alive``'s lock; wait for ``listening on``."""
        port = free_port()
        self.history_db.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            proc = subprocess.Popen(
                chat_server_command(port, self.history_db), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(alive.fileno(),),
                start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while READY_MARK not in self._log_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if proc.poll() is not None else f"was not ready in {timeout:g} s"
                self._kill(proc)
                raise LocalServerError(f"the local chat-server {why}:\n{self._log_tail()}")
            time.sleep(0.02)  # the server's only sign of life is its log line
        self.proc, self.port, self.pid, self.started_here = proc, port, proc.pid, True
        tmp = self.port_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": proc.pid}))
        tmp.replace(self.port_file)

    def _log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, lines: int = 10) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()

    def stop(self) -> None:
        """Leave; the last client out stops the server (SIGTERM, then SIGKILL)."""
        clients, self._client_lock = self._client_lock, None
        if clients is None:
            return
        with self._open("local-server.lock") as decide:
            fcntl.flock(decide, fcntl.LOCK_EX)
            try:
                # On Linux a failed upgrade also drops our shared lock: fine, we leave.
                if _try_lock(clients, fcntl.LOCK_EX):
                    self._stop_server()
            finally:
                clients.close()

    def _stop_server(self) -> None:
        with self._open("local-server.alive") as alive:
            if _try_lock(alive, fcntl.LOCK_EX):
                return  # it is gone already
            if self.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
            # The lock frees when the server's last descriptor closes, i.e. when it
            # exits: unlike a pid check this works for a process that is not our child.
            deadline = time.monotonic() + STOP_GRACE
            killed = False
            while not _try_lock(alive, fcntl.LOCK_EX):
                if time.monotonic() > deadline:
                    if killed or self.pid is None:
                        break  # something else holds the lock: leave it be
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                    killed, deadline = True, time.monotonic() + STOP_GRACE
                time.sleep(0.02)
        self.port_file.unlink(missing_ok=True)
        if self.proc is not None:
            self.proc.wait()

    def running(self) -> bool:
        """Whether a local server runs in ``data_dir`` (whoever started it)."""
        with self._open("local-server.alive") as alive:
            if _try_lock(alive, fcntl.LOCK_EX):
                return False
        return True
