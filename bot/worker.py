"""The bot worker: turns client events into memory, commands and AI answers.

``handle()`` is called for every event and never waits for the model: it updates the
room memory, checks the rate limits (in arrival order, so they are fair) and starts
one task per request. Tasks for the same room (or private chat) queue on that room's
lock, so answers in a room come out in the order they were asked, while different
rooms are answered concurrently, up to ``max_concurrent`` model calls at a time.
Everything the bot says in a room goes through that lock, the rate-limit notices
included, so no line of one reply can land inside another that is still streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol

from bot.answer import stream_answer, typing_indicator
from bot.commands import CommandContext, find_command
from bot.config import BotConfig
from bot.context import Line, Memories, line_from
from bot.llm import NOT_CONFIGURED, ChatBackend
from bot.prompt import build_messages
from bot.ratelimit import RequestLimits, SendPacer
from bot.sanitize import clean_line
from bot.triggers import Request, request_from
from chat_protocol import Message
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.client_types import (
    ChannelState,
    Connected,
    Disconnected,
    Event,
    NickFallback,
    Received,
)
from chat_protocol.split import text_budget

log = logging.getLogger(__name__)


class ChatLink(Protocol):
    """The part of ``chat_protocol.client.IRCClient`` the worker uses."""

    nick: str
    caps: set[str]
    channels: dict[str, ChannelState]

    async def privmsg(
        self, target: str, text: str, *, tags: dict[str, str] | None = None
    ) -> None: ...

    async def tagmsg(self, target: str, tags: dict[str, str]) -> None: ...

    async def join(self, channel: str, key: str | None = None) -> None: ...

    async def send(self, msg: Message | str) -> None: ...


class TargetLocks:
    """One FIFO lock per room or private chat; a lock nobody holds or awaits is dropped."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, target: str) -> AsyncIterator[None]:
        key = casefold(target)
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(key, None)


class BotWorker:
    """Serves one connection; ``backend`` None means AI answers are not configured."""

    def __init__(self, config: BotConfig, link: ChatLink, backend: ChatBackend | None) -> None:
        self.config = config
        self.link = link
        self.backend = backend
        self.memories = Memories(
            config.context_lines, size_for=lambda target: config.for_room(target).context_lines
        )
        self.limits = RequestLimits(
            config.user_rate,
            config.room_rate,
            room_rate_for=lambda room: config.for_room(room).room_rate,
        )
        self.pacer = SendPacer(config.send_rate)
        self._locks = TargetLocks()
        self._model_slots = asyncio.Semaphore(config.max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- events ------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Take one client event; returns quickly (slow work goes to tasks)."""
        if isinstance(event, Received):
            self._received(event.message, event.history)
        elif isinstance(event, Connected):
            log.info("connected to %s as %s", event.server, event.nick)
        elif isinstance(event, Disconnected):
            if event.retry_in is None:
                log.info("disconnected for good: %s", event.reason)
            else:
                log.warning("disconnected (%s); retrying in %.1fs", event.reason, event.retry_in)
        elif isinstance(event, NickFallback):
            log.warning("nick %s is taken; running as %s", event.wanted, event.got)

    def _received(self, msg: Message, history: bool) -> None:
        me = self.link.nick
        if msg.command == "PRIVMSG" and len(msg.params) >= 2:
            line = self._remember(msg)
            if history:
                return
            request = request_from(msg, me, self._known_bots())
            if request is not None:
                self._admit(request, line)
        elif history:
            return
        elif msg.command == "INVITE" and len(msg.params) >= 2:
            if casefold(msg.params[0]) == casefold(me):
                self._spawn(self._accept_invite(msg.nick or "?", msg.params[1]))
        elif msg.command == "JOIN" and msg.params and self._is_me(msg.nick):
            log.info("joined %s", msg.params[0])
            # WHO fills in who carries +B, for 'who' and for bots whose lines are untagged.
            self._spawn(self.link.send(Message("WHO", [msg.params[0]])))
        elif msg.command in ("PART", "KICK") and msg.params:
            gone = msg.param(1) if msg.command == "KICK" else msg.nick
            if self._is_me(gone):
                log.info("left %s (%s)", msg.params[0], msg.command)
                self.memories.forget(msg.params[0])

    def _is_me(self, nick: str | None) -> bool:
        return nick is not None and casefold(nick) == casefold(self.link.nick)

    def _known_bots(self) -> set[str]:
        bots: set[str] = set()
        for state in self.link.channels.values():
            bots.update(state.bots)
        return bots

    def _remember(self, msg: Message) -> Line | None:
        """File a PRIVMSG under its room, or under the other party of a private chat."""
        line = line_from(msg)
        if line is None:
            return None
        target = msg.params[0]
        if not is_channel(target):
            target = target if self._is_me(msg.nick) else (msg.nick or target)
        self.memories.get(target).add(line)
        return line

    # -- requests ----------------------------------------------------------------------

    def _admit(self, request: Request, line: Line | None) -> None:
        verdict = self.limits.check(request.asker, request.target if request.in_room else None)
        if verdict.allowed:
            self._spawn(self._serve(request, line))
            return
        log.info("rate limit (%s) for %s in %s", verdict.who, request.asker, request.target)
        if verdict.warn:
            ready_at = time.monotonic() + verdict.wait
            self._spawn(self._tell_to_wait(request, verdict.who, ready_at))

    async def _tell_to_wait(self, request: Request, who: str, ready_at: float) -> None:
        """The 'please wait' line, queued behind the room's answers like any other reply.

        Sent straight away it would land in the middle of (or before the end of) an
        answer that is still streaming into the same room; on the room's lock it comes
        after everything asked before it. The wait is counted when the line goes out.
        """
        async with self._locks.hold(request.target):
            left = ready_at - time.monotonic()
            when = f"please wait {max(1, round(left))}s." if left > 0 else "please ask again."
            if who == "room":
                text = f"this room is asking faster than I may answer; {when}"
            else:
                text = f"you are asking faster than I may answer; {when}"
            await self._say(request, self._prefix(request) + text)

    def _prefix(self, request: Request) -> str:
        return f"{request.asker}: " if request.in_room else ""

    async def _serve(self, request: Request, line: Line | None) -> None:
        async with self._locks.hold(request.target):
            command = find_command(request.text)
            if command is not None:
                for out in command.handler(self._command_context(request)):
                    await self._say(request, self._prefix(request) + out)
            elif not request.text:
                await self._say(
                    request, self._prefix(request) + "yes? Ask me a question, or say 'help'."
                )
            elif self.backend is None:
                await self._say(request, self._prefix(request) + NOT_CONFIGURED)
            else:
                async with self._model_slots:
                    await self._answer(request, line, self.backend)

    def _command_context(self, request: Request) -> CommandContext:
        state = self.link.channels.get(casefold(request.target)) if request.in_room else None
        if self.backend is not None:
            ai = f"AI answers: on ({self.config.for_room(request.target).model})."
        else:
            ai = "AI answers: off (no API key configured)."
        return CommandContext(
            request=request,
            bot_nick=self.link.nick,
            memory=self.memories.get(request.target),
            members=dict(state.members) if state else {},
            bots=set(state.bots) if state else set(),
            ai_status=ai,
        )

    async def _answer(self, request: Request, line: Line | None, backend: ChatBackend) -> None:
        settings = self.config.for_room(request.target)  # the room's own, else global
        memory = self.memories.get(request.target)
        messages = build_messages(
            system_prompt=settings.system_prompt,
            bot_nick=self.link.nick,
            target=request.target,
            asker=request.asker,
            question=request.text,
            transcript=memory.transcript(exclude=line),
        )

        async def say(text: str) -> None:
            await self._say(request, text)

        typing = None
        if "message-tags" in self.link.caps:

            async def typing(state: str) -> None:
                await self.link.tagmsg(request.target, {"+typing": state})

        async with typing_indicator(typing):
            sent = await stream_answer(
                backend.stream(
                    messages,
                    model=settings.model,
                    max_tokens=settings.max_tokens,
                    timeout=settings.timeout,
                ),
                say=say,
                prefix=self._prefix(request),
                budget=text_budget("PRIVMSG", request.target),
                max_lines=settings.max_lines,
                timeout=settings.timeout,
            )
        log.info("answered %s in %s with %d lines", request.asker, request.target, sent)

    async def _say(self, request: Request, text: str) -> None:
        """One line to the request's target, paced, tagged as a reply when tags work."""
        text = clean_line(text)
        if not text:
            return
        await self.pacer.acquire()
        tags: dict[str, str] | None = None
        if request.msgid and "message-tags" in self.link.caps:
            tags = {"+draft/reply": request.msgid}
        # Our own line comes back as an event (echo-message, or the client's local
        # echo), and is remembered from there like anyone else's.
        await self.link.privmsg(request.target, text, tags=tags)

    async def _accept_invite(self, inviter: str, channel: str) -> None:
        if len(self.link.channels) >= self.config.max_rooms:
            log.warning("invite to %s from %s ignored: max rooms reached", channel, inviter)
            return
        log.info("invited to %s by %s; joining", channel, inviter)
        await self.link.join(channel)

    # -- tasks -------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A failed send (offline, server gone) loses one answer, never the bot.
            log.warning("request failed: %s: %s", type(exc).__name__, exc)

    async def close(self) -> None:
        """Cancel work in flight and release the backend."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.backend is not None:
            await self.backend.close()
