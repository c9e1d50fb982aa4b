"""The history worker process and the two pipes to it, and the history file's lock.

The store (store.py) decides what to send and what an answer means; this module only
moves frames (worker.py's format) without ever blocking the event loop: writes go out
as far as the pipe takes them and the rest waits for writability, reads are handed on
frame by frame (as JSON: :func:`decoded` gives the answers' tuples back). Without an
event loop (tools, tests, shutdown) the same pipes are served by
:meth:`WorkerPipe.wait`, blocking, or :meth:`WorkerPipe.poll`, not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import select
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat_server.history.model import HistoryStoreError, tag_pairs
from chat_server.history.worker import frame, split_frames

if TYPE_CHECKING:
    from chat_server.loop import EventLoop

_PIPE_SIZE = 1 << 20  # asked of the kernel, so a burst goes in one write
LOCK_WAIT = 10.0  # seconds a new server waits for the file's previous owner to finish
_WAIT_RESTARTS = 3  # workers started by one blocking wait before it gives up

# A query's answer callback: (ok, value or error text).
Answer = Callable[[bool, Any], None]


class WorkerPipe:
    """One worker process at a time: start it, send to it, hand on what it says, and
    notice when it is gone (``on_gone(why, exit status)``; the store restarts it)."""

    def __init__(
        self,
        settings: dict[str, Any],
        on_value: Callable[[Any], None],
        on_gone: Callable[[str, int], None],
        lock_fd: int | None = None,
    ) -> None:
        self.settings = settings
        self.on_value = on_value
        self.on_gone = on_gone
        self.lock_fd = lock_fd
        self.loop: EventLoop | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.unsent: deque[bytes] = deque()  # frames not yet (fully) in the pipe
        self.unsent_bytes = 0
        self._inbuf = bytearray()

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self, first: Any = None) -> None:
        """Start a worker; ``first`` (a value) is sent before anything already queued."""
        self.proc = proc = subprocess.Popen(
            [sys.executable, "-m", "chat_server.history", json.dumps(self.settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            # The worker shares the file's lock: it outlives a killed server until its
            # last commit, and no new server may number messages before that.
            pass_fds=() if self.lock_fd is None else (self.lock_fd,),
        )
        assert proc.stdin is not None and proc.stdout is not None
        for pipe in (proc.stdin, proc.stdout):
            os.set_blocking(pipe.fileno(), False)
        # A bigger pipe takes a burst in one write; if refused, it just takes more rounds.
        with contextlib.suppress(OSError):
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        if self.loop is not None:
            self.loop.add_reader(proc.stdout.fileno(), self.on_readable)
        if first is not None:
            data = frame(first)
            self.unsent.appendleft(data)
            self.unsent_bytes += len(data)
        self.write()

    def send(self, value: Any) -> None:
        """Queue one frame and write what the pipe takes now."""
        data = frame(value)
        self.unsent.append(data)
        self.unsent_bytes += len(data)
        self.write()

    def write(self) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None:
            return
        fd = proc.stdin.fileno()
        unsent = self.unsent
        try:
            while unsent:
                data = unsent[0]
                written = os.write(fd, data)
                self.unsent_bytes -= written
                if written < len(data):
                    unsent[0] = data[written:]
                    break
                unsent.popleft()
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                self.gone("its pipe closed")
                return
            raise
        if self.loop is not None:
            self.loop.set_events(fd, 2 if unsent else 0, lambda mask: self.write())

    def on_readable(self, mask: int) -> None:
        proc = self.proc
        if proc is None or proc.stdout is None:
            return
        try:
            data = os.read(proc.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            self.gone(str(exc))
            return
        if not data:
            self.gone("end of its output")
            return
        self._inbuf += data
        for value in split_frames(self._inbuf):
            self.on_value(value)

    def gone(self, why: str) -> None:
        """The worker died (or its pipes broke): reap it, drop what was meant for it."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        self.detach(proc)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._inbuf.clear()
        self.unsent.clear()  # the store gives the next worker everything unconfirmed
        self.unsent_bytes = 0
        self.on_gone(why, code)

    def detach(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop serving its pipes from the event loop."""
        if self.loop is not None:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    self.loop.remove(pipe.fileno())

    def poll(self) -> None:
        """Serve the pipes once, without blocking (no event loop)."""
        proc = self.proc
        if proc is None or proc.stdout is None:
            return
        if self.unsent:
            self.write()
        readable, _, _ = select.select([proc.stdout], [], [], 0)
        if readable:
            self.on_readable(1)

    def wait(self, done: Callable[[], bool], timeout: float, revive: Callable[[], None]) -> None:
        """Serve the pipes, blocking, until ``done()``; a worker that dies meanwhile is
        replaced through ``revive`` (a few times at most)."""
        deadline = time.monotonic() + timeout
        restarts = 0
        while not done():
            proc = self.proc
            if proc is None and restarts < _WAIT_RESTARTS:
                restarts += 1
                revive()
                continue
            if proc is None or proc.stdout is None or proc.stdin is None:
                raise HistoryStoreError("the history worker is not running")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"history worker did not answer within {timeout} s")
            want_write = [proc.stdin] if self.unsent else []
            readable, writable, _ = select.select([proc.stdout], want_write, [], left)
            if writable:
                self.write()
            if readable:
                self.on_readable(1)

    def stop(self, timeout: float) -> None:
        """Close its input (it commits and exits) and wait for it."""
        proc = self.proc
        if proc is None:
            return
        self.detach(proc)
        self.loop = None
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None


def _rows(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    return [(*row[:8], tag_pairs(row[8])) for row in rows]


def _pairs(pairs: list[list[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(pair) for pair in pairs]


# What each query's answer looks like again after the pipe's JSON made every tuple an
# array: rows (queries.Row) and (name, value) pairs are tuples on this side, as the
# worker made them.
_DECODE: dict[str, Callable[[Any], Any]] = {
    # {"unknown_msgid": ...} when a reference names no message (queries.UnknownMsgid)
    "chathistory": lambda value: value if isinstance(value, dict) else _rows(value),
    "search": _rows,
    "latest": lambda rooms: [(name, _rows(rows), settings) for name, rows, settings in rooms],
    "targets": _pairs,
    "markers": _pairs,
}


def decoded(kind: str, answer: Answer) -> Answer:
    """``answer``, given the value of a ``kind`` query as the worker made it."""
    decode = _DECODE.get(kind)
    if decode is None:
        return answer
    return lambda ok, value: answer(ok, decode(value) if ok else value)


def lock_file(path: Path, wait: float | None = None) -> int:
    """Lock ``<path>.lock`` for this process and its workers; returns its descriptor.

    One server per history file: two would number messages from the same sequence
    and lose each other's rows. The wait covers a killed server's worker, which
    commits what it was given before it exits (and releases the lock).
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise HistoryStoreError(f"cannot create the lock file {lock_path}: {exc}") from exc
    deadline = time.monotonic() + (LOCK_WAIT if wait is None else wait)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise HistoryStoreError(
                    f"{path} is in use by another chat-server (process {holder}); "
                    "each server needs its own history file"
                ) from None
            time.sleep(0.05)  # startup only, never on the event loop
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
