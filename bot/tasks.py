"""The worker's tasks: one per request, and one per send it does not wait for.

The worker never waits for slow work in ``handle()``; it starts a task here instead.
A task that fails is logged and forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Tasks:
    """The tasks started and not yet finished."""

    def __init__(self) -> None:
        # The event loop keeps only weak references to tasks: these keep them running.
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in its own task."""
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A failed send (offline, server gone) loses one answer, never the bot.
            log.warning("request failed: %s: %s", type(exc).__name__, exc)

    async def cancel(self) -> None:
        """Cancel every task and wait until they have all stopped."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)
