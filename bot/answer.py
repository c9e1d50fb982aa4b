"""Write one streamed AI answer into a room: typing indicator, lines as they complete, cap.

This is the only place that turns model output into protocol lines, so every line
the bot writes for the model has passed the sanitiser, the UTF-8-safe splitter and
the line cap, whatever the model sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from bot.lines import LineAssembler, LineCap
from bot.llm import LLMError, error_reply

log = logging.getLogger(__name__)

Say = Callable[[str], Awaitable[None]]
Typing = Callable[[str], Awaitable[None]]

# IRCv3 typing: receivers expire "active" after 6 s, so refresh it every 3 s.
TYPING_REFRESH = 3.0


@contextlib.asynccontextmanager
async def typing_indicator(send_typing: Typing | None) -> AsyncIterator[None]:
    """``+typing=active`` now and every few seconds while the body runs, ``done`` after."""
    if send_typing is None:
        yield
        return

    async def refresh() -> None:
        while True:
            await asyncio.sleep(TYPING_REFRESH)
            await send_typing("active")

    await _quietly(send_typing("active"))
    ticker = asyncio.create_task(refresh())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(BaseException):
            await ticker
        await _quietly(send_typing("done"))


async def _quietly(step: Awaitable[None]) -> None:
    """A typing notice is a courtesy: failing to send one must not fail the answer."""
    try:
        await step
    except Exception as exc:
        log.debug("typing notice not sent: %s", exc)


async def stream_answer(
    deltas: AsyncIterator[str],
    *,
    say: Say,
    prefix: str,
    budget: int,
    max_lines: int,
    timeout: float,
) -> int:
    """Send the answer from ``deltas`` line by line; return how many lines were sent.

    ``prefix`` (``"alice: "``) starts the first line so the asker is highlighted.
    Any failure — an LLMError from the backend or the overall ``timeout`` — ends with
    whatever complete text arrived, then one line saying what went wrong.
    """
    assembler = LineAssembler(budget)
    cap = LineCap(max_lines, budget)
    first = True

    async def push(lines: list[str]) -> None:
        for line in lines:
            for out in cap.push(line):
                await say(out)

    failure: LLMError | None = None
    try:
        async with asyncio.timeout(timeout), contextlib.aclosing(deltas) as stream:
            async for delta in stream:
                if first:
                    delta = delta.lstrip()
                    if not delta:
                        continue
                    delta, first = prefix + delta, False
                await push(assembler.feed(delta))
                if cap.cut:
                    break  # stop reading: no point paying for tokens nobody sees
    except LLMError as exc:
        failure = exc
    except TimeoutError as exc:
        failure = error_reply(exc, timeout=timeout, started=not first)
    if not cap.cut:
        await push(assembler.flush())
        for out in cap.finish():
            await say(out)
    if failure is not None:
        await say(prefix + failure.reply)
        return cap.sent + 1
    if cap.sent == 0:
        await say(prefix + "The AI returned an empty answer; please try rephrasing.")
        return 1
    return cap.sent
