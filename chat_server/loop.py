"""The event loop: sockets and timers on `selectors`, nothing about IRC.

Like Redis's ``ae.c``: handlers register interest in a file object and get called
back; timers live in a heap. After every round of I/O the loop runs its "after
I/O" hooks once, which is where the server flushes all send buffers that grew in
that round with one ``send`` each. A very big round (a storm of connects) also runs
them every ``HOOK_EVERY`` events, so the first clients' answers go out while the
rest of the round is handled instead of all at its end.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Callback = Callable[[], Any]

# Above a busy chat load's rounds (200 clients all sending: ~100 events a round), so
# those keep one flush per round. In a storm of 1,000 registrations, flushing every
# 128 events took "all registered" from 0.25-0.29 s to 0.22-0.26 s: the client side
# gets work while the server is still on the rest of the round.
HOOK_EVERY = 128


class Timer:
    """A scheduled call; ``cancel()`` makes the loop skip it."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    """A single-threaded readiness loop with timers."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._after_io: list[Callback] = []
        self._stop_requested = False

    def add_reader(self, fileobj: Any, callback: Callable[[int], Any]) -> None:
        """Call ``callback(mask)`` when ``fileobj`` is readable (and writable, if asked)."""
        self.selector.register(fileobj, selectors.EVENT_READ, callback)

    def set_events(self, fileobj: Any, events: int, callback: Callable[[int], Any]) -> None:
        """Change the events watched for ``fileobj`` (0 removes it)."""
        try:
            key = self.selector.get_key(fileobj)
        except (KeyError, ValueError):
            if events:
                self.selector.register(fileobj, events, callback)
            return
        if events == 0:
            self.selector.unregister(fileobj)
        elif key.events != events:
            self.selector.modify(fileobj, events, callback)

    def remove(self, fileobj: Any) -> None:
        """Stop watching ``fileobj`` (no error when it was not watched)."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fileobj)

    def call_later(self, delay: float, callback: Callback) -> Timer:
        """Run ``callback`` after ``delay`` seconds."""
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def call_every(self, interval: float, callback: Callback) -> None:
        """Run ``callback`` every ``interval`` seconds for the life of the loop."""

        def tick() -> None:
            try:
                callback()
            finally:
                self.call_later(interval, tick)

        self.call_later(interval, tick)

    def after_io(self, callback: Callback) -> None:
        """Run ``callback`` after every round of I/O events."""
        self._after_io.append(callback)

    def stop(self) -> None:
        """Make ``run()`` return after the current round (also when called before it)."""
        self._stop_requested = True

    def run(self) -> None:
        """Run until ``stop()``; exceptions in callbacks are logged, never fatal."""
        select = self.selector.select
        timers = self._timers
        while not self._stop_requested:
            timeout: float | None = None
            if timers:
                timeout = max(0.0, timers[0][0] - time.monotonic())
            ready = select(timeout)
            last = len(ready)
            for i, (key, mask) in enumerate(ready, 1):
                try:
                    key.data(mask)
                except Exception:
                    log.exception("error in I/O callback for %r", key.fileobj)
                if i % HOOK_EVERY == 0 and i < last:
                    self._run_hooks()
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                _, _, timer = heapq.heappop(timers)
                if timer.cancelled:
                    continue
                try:
                    timer.callback()
                except Exception:
                    log.exception("error in timer callback")
            self._run_hooks()
        self.selector.close()

    def _run_hooks(self) -> None:
        for hook in self._after_io:
            try:
                hook()
            except Exception:
                log.exception("error in after-I/O hook")
