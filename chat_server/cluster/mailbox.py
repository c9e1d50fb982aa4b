"""How the link's threads hand things to the selectors loop without making it wait.

A deque plus one byte on a socketpair whose read end the loop watches: the byte only
says "look"; a post while one is already waiting sends no second byte.
"""

from __future__ import annotations

import collections
import contextlib
import socket
from typing import Any


class Mailbox:
    """Items posted by threads, drained by the loop when ``rsock`` is readable."""

    def __init__(self) -> None:
        self.rsock, self._wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._out: collections.deque[tuple[Any, ...]] = collections.deque()
        self._signalled = False

    def post(self, item: tuple[Any, ...]) -> None:
        self._out.append(item)
        if not self._signalled:
            self._signalled = True
            with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
                self._wsock.send(b"\0")

    def drain(self) -> list[tuple[Any, ...]]:
        """Everything posted since the last call."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.rsock.recv(4096):
                pass
        self._signalled = False  # before popping: a post after this sends a new byte
        out = self._out
        items = []
        while out:
            items.append(out.popleft())
        return items

    def close(self) -> None:
        self.rsock.close()
        self._wsock.close()
