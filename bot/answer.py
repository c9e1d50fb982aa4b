"""Write one streamed AI answer: lines as they complete, the cap, the rest kept for 'more'.

This is the only place that turns model output into protocol lines, so every line
the bot writes for the model has passed the sanitiser, the markdown renderer, the
UTF-8-safe splitter and the line cap, whatever the model sends.

Lines go to a ``Sink`` that never blocks (``bot.output.Reply``): the model is read at
its own pace while an earlier answer in the same room is still being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import RoomSettings
from bot.lines import LineAssembler, LineCap
from bot.llm import ChatBackend, LLMError, error_reply
from chat_protocol.casemap import casefold
from chat_protocol.split import text_budget

log = logging.getLogger(__name__)

SendTyping = Callable[[str, str], Awaitable[None]]  # (target, "active" | "done")

# IRCv3 typing: receivers expire "active" after 6 s, so refresh it every 3 s.
TYPING_REFRESH = 3.0
EMPTY_ANSWER = "The AI returned an empty answer; please try rephrasing."


class Sink(Protocol):
    """Where an answer's lines go; ``end()`` says no more will come."""

    def say(self, line: str) -> None: ...

    def end(self) -> None: ...


class TypingIndicators:
    """One ``+typing`` indicator per room or private chat, on while any question there
    is pending: ``active`` when the first begins (refreshed every few seconds), ``done``
    when the last ends. Per question, it would flicker off whenever one of several
    pending answers finished.
    """

    def __init__(self, send: SendTyping | None, refresh: float = TYPING_REFRESH) -> None:
        self._send = send
        self._refresh = refresh
        self._pending: dict[str, int] = {}
        self._tickers: dict[str, asyncio.Task[None]] = {}
        self._names: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def begin(self, target: str) -> Callable[[], None]:
        """Count one pending question in ``target``; returns its (idempotent) end."""
        if self._send is None:
            return lambda: None
        key = casefold(target)
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._pending[key] == 1:
            self._tickers[key] = asyncio.create_task(self._tick(target))
            self._names[key] = target  # "done" goes where "active" went
        ended = False

        def end() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self._pending[key] -= 1
            if self._pending[key] == 0:
                del self._pending[key]
                self._tickers.pop(key).cancel()
                self._later(self._quietly(self._names.pop(key), "done"))

        return end

    async def _tick(self, target: str) -> None:
        while True:
            await self._quietly(target, "active")
            await asyncio.sleep(self._refresh)

    async def _quietly(self, target: str, state: str) -> None:
        """A typing notice is a courtesy: failing to send one must not fail the answer."""
        assert self._send is not None
        try:
            await self._send(target, state)
        except Exception as exc:
            log.debug("typing notice not sent: %s", exc)

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in [*self._tickers.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._tickers.values(), *self._tasks, return_exceptions=True)
        self._tickers.clear()
        self._pending.clear()


@dataclass
class AnswerResult:
    """What happened: lines shown, lines kept for 'more', the failure line if any."""

    sent: int
    rest: list[str] = field(default_factory=list)
    failure: str | None = None


async def stream_answer(
    deltas: AsyncGenerator[str, None],
    *,
    sink: Sink,
    prefix: str,
    budget: int,
    max_lines: int,
    timeout: float,
) -> AnswerResult:
    """Send the answer from ``deltas`` line by line into ``sink``.

    ``prefix`` (``"alice: "``) starts the first line so the asker is highlighted. Past
    ``max_lines`` the shown part ends (``sink.end()``) and the rest is read on, within
    the same ``timeout``, and returned for 'more'. Any failure — an LLMError from the
    backend or the overall ``timeout`` — ends with whatever complete text arrived, then
    one line saying what went wrong.
    """
    assembler = LineAssembler(budget, prefix)
    cap = LineCap(max_lines, budget)
    started = False

    def push(lines: list[str]) -> None:
        for line in lines:
            for out in cap.push(line):
                sink.say(out)
        if cap.cut:
            sink.end()

    failure: LLMError | None = None
    try:
        async with asyncio.timeout(timeout), contextlib.aclosing(deltas) as stream:
            async for delta in stream:
                started = started or bool(delta.strip())
                push(assembler.feed(delta))
    except LLMError as exc:
        failure = exc
    except TimeoutError as exc:
        failure = error_reply(exc, timeout=timeout, started=started)
        log.warning("AI answer timed out after %gs (%s)", timeout, "partial" if started else "none")
    if cap.cut:
        if failure is None:
            cap.rest.extend(assembler.flush())
        return AnswerResult(cap.sent, cap.rest, failure.reply if failure else None)
    push(assembler.flush())
    for out in cap.finish():
        sink.say(out)
    if failure is not None:
        sink.say(prefix + failure.reply)
        sink.end()
        return AnswerResult(cap.sent + 1, failure=failure.reply)
    if cap.sent == 0:
        log.warning("AI returned an empty answer")
        sink.say(prefix + EMPTY_ANSWER)
        sink.end()
        return AnswerResult(1, failure=EMPTY_ANSWER)
    sink.end()
    return AnswerResult(cap.sent)


async def ask_model(
    backend: ChatBackend,
    messages: list[dict[str, str]],
    settings: RoomSettings,
    *,
    sink: Sink,
    prefix: str,
    target: str,
) -> AnswerResult:
    """Ask the model with a room's settings (model, sampling, size, time limit) and send
    its answer to ``target`` as stream_answer does: one place for what every question
    to the model passes along."""
    deltas = backend.stream(
        messages,
        model=settings.model,
        max_tokens=settings.max_tokens,
        timeout=settings.timeout,
        temperature=settings.temperature,
        top_p=settings.top_p,
    )
    return await stream_answer(
        deltas,
        sink=sink,
        prefix=prefix,
        budget=text_budget("PRIVMSG", target),
        max_lines=settings.max_lines,
        timeout=settings.timeout,
    )
