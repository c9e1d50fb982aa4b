"""Replies to a room go out whole and in the order they were asked, whenever they are ready.

Each request takes its place with ``ReplyOrder.open()`` the moment it is admitted, then
works at its own pace: a model call starts at once, a built-in answers at once. Its
lines are queued on its ``Reply`` (``say()`` never blocks, so a model is never held up
by the room) and written only when every reply opened before it in the same room has
been written. So two slow answers are computed side by side, yet no line of one lands
inside the other, and a 'please wait' never jumps ahead of an answer still streaming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from chat_protocol.casemap import casefold

log = logging.getLogger(__name__)

SendLine = Callable[[str], Awaitable[None]]
# A line, or a function giving it when it is written (a wait worked out at that moment).
LineText = str | Callable[[], str]


class Reply:
    """One reply's lines, written in its turn; ``end()`` must be called exactly once
    (more calls are harmless) or the replies after it in the room wait forever."""

    def __init__(self, send: SendLine, before: Reply | None) -> None:
        self._send = send
        self._lines: asyncio.Queue[LineText | None] = asyncio.Queue()
        self._ended = False
        self._on_finished: list[Callable[[], None]] = []
        self.finished = asyncio.Event()  # every line written (or given up)
        self.written = 0
        self._task = asyncio.create_task(self._write(before))
        # A done callback runs even for a task cancelled before it started.
        self._task.add_done_callback(lambda _: self._finish())

    def say(self, line: LineText) -> None:
        """Queue one line; it is written when this reply's turn has come."""
        if not self._ended:
            self._lines.put_nowait(line)

    def end(self) -> None:
        """No more lines: once these are written, the next reply in the room goes."""
        if not self._ended:
            self._ended = True
            self._lines.put_nowait(None)

    def when_finished(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every line of this reply has been written."""
        if self.finished.is_set():
            callback()
        else:
            self._on_finished.append(callback)

    async def _write(self, before: Reply | None) -> None:
        if before is not None:
            await before.finished.wait()
        while (line := await self._lines.get()) is not None:
            try:
                await self._send(line if isinstance(line, str) else line())
                self.written += 1
            except Exception as exc:  # offline, server gone: this line is lost
                log.warning("reply line not sent: %s: %s", type(exc).__name__, exc)

    def _finish(self) -> None:
        self.finished.set()
        callbacks, self._on_finished = self._on_finished, []
        for callback in callbacks:
            callback()

    def cancel(self) -> None:
        self._task.cancel()


class ReplyOrder:
    """The queue of replies of each room or private chat."""

    def __init__(self) -> None:
        self._last: dict[str, Reply] = {}
        self._open: set[Reply] = set()

    def open(self, target: str, send: SendLine) -> Reply:
        """A new reply to ``target``, written after every reply opened there before it."""
        key = casefold(target)
        reply = Reply(send, self._last.get(key))
        self._last[key] = reply
        self._open.add(reply)

        def done() -> None:
            self._open.discard(reply)
            if self._last.get(key) is reply:
                del self._last[key]

        reply.when_finished(done)
        return reply

    async def close(self) -> None:
        """Stop writing (the bot is shutting down)."""
        replies = list(self._open)
        for reply in replies:
            reply.cancel()
        await asyncio.gather(*(r._task for r in replies), return_exceptions=True)
