"""Work that must not run on the event loop, on a few threads, answered in the loop.

Password hashing (scrypt, PBKDF2) takes ~50 ms of CPU and releases the GIL: on a
thread it costs the loop nothing. A finished job's callback is queued and a byte is
written to a socket pair the loop watches, so every callback runs on the loop's
thread, between I/O rounds, like any other event. The number of jobs waiting is
bounded: ``submit`` says False when full, and the caller answers "try again later".
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chat_server.loop import EventLoop

log = logging.getLogger(__name__)


class Background:
    """A small thread pool whose results come back through the event loop."""

    def __init__(self, loop: EventLoop, threads: int = 2, max_pending: int = 32) -> None:
        self.max_pending = max_pending
        self.pending = 0
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="background")
        self._done: queue.SimpleQueue[tuple[Callable[[Any], None], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        loop.add_reader(self._rsock, self._on_ready)

    def submit(self, job: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        """Run ``job()`` on a thread, then ``done(result)`` on the loop (a job that
        raised is logged and gives ``done(None)``). False, and nothing runs, when full."""
        if self.pending >= self.max_pending:
            return False
        self.pending += 1
        future = self._pool.submit(job)
        future.add_done_callback(lambda f: self._finished(done, f))
        return True

    def _finished(self, done: Callable[[Any], None], future: Future[Any]) -> None:
        """On the worker thread: hand the result to the loop."""
        self._done.put((done, future))
        with contextlib.suppress(BlockingIOError, OSError):  # full: a wakeup is pending
            self._wsock.send(b"\0")

    def _on_ready(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._rsock.recv(4096):
                pass
        while True:
            try:
                done, future = self._done.get_nowait()
            except queue.Empty:
                return
            self.pending -= 1
            exc = future.exception()
            if exc is not None:
                log.error("background job failed: %r", exc)
                done(None)
            else:
                done(future.result())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._rsock.close()
        self._wsock.close()
