"""The bot worker: turns client events into memory, commands and AI answers.

``handle()`` is called for every event and never waits for the model: it updates the
room memory, checks the rate limits (in arrival order, so they are fair), takes the
request's place in its room's reply order (``bot.output``) and starts one task per
request. Model calls of one room run side by side (up to ``max_concurrent`` at a
time over all rooms); their lines are written whole and in the order asked. Everything
the bot says in a room goes through that order, the rate-limit notices included.

Built-in commands cost no API call and have their own, looser limit, so a bot busy
with AI questions still answers ``help``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.answer import TypingIndicators, stream_answer
from bot.commands import Command, CommandContext, find_command
from bot.config import BotConfig, Rate
from bot.context import CutAnswers, Line, Memories, RoomMemory, line_from, message_time
from bot.llm import NOT_CONFIGURED, ChatBackend
from bot.output import Reply, ReplyOrder
from bot.prompt import build_messages, summary_messages
from bot.ratelimit import RequestLimits, SendPacer, Verdict
from bot.sanitize import clean_line
from bot.triggers import Request, request_from
from chat_protocol import Message
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.client_state import format_time
from chat_protocol.client_types import (
    ChannelState,
    Connected,
    Disconnected,
    Event,
    NickFallback,
    NotConnected,
    Received,
)
from chat_protocol.split import text_budget

log = logging.getLogger(__name__)

try:
    VERSION = importlib.metadata.version("distchat")
except importlib.metadata.PackageNotFoundError:  # run from a source tree
    VERSION = "dev"
VERSION_REPLY = f"distchat chat-bot {VERSION}"

HELD_NOTICE_AFTER = 5.0  # a question held longer than this by the room rate is told so
RELOAD_CONVERSATIONS = 50  # direct chats reloaded from history at start (most recent)
RELOAD_DAYS = 30
HISTORY_TIMEOUT = 10.0
SUMMARY_FETCH = 300  # room lines read for 'summary'
SUMMARY_DEFAULT = 100  # lines summarised for someone never seen speaking or leaving
SUMMARY_CHARS = 24_000  # transcript sent to the model, newest kept
OWN_LINES_KEPT = 5_000  # msgids of the bot's own lines, for replies to them
DEPARTURES_KEPT = 10_000


class ChatLink(Protocol):
    """The part of ``chat_protocol.client.IRCClient`` the worker uses."""

    @property
    def nick(self) -> str: ...

    @property
    def caps(self) -> set[str]: ...

    @property
    def channels(self) -> dict[str, ChannelState]: ...

    async def privmsg(
        self, target: str, text: str, *, tags: dict[str, str] | None = None
    ) -> None: ...

    async def notice(self, target: str, text: str) -> None: ...

    async def tagmsg(self, target: str, tags: dict[str, str]) -> None: ...

    async def join(self, channel: str, key: str | None = None) -> None: ...

    async def send(self, msg: Message | str) -> None: ...

    async def request(self, msg: Message | str, timeout: float = 10.0) -> list[Message]: ...

    async def history_latest(self, target: str, limit: int = 100) -> list[Message]: ...


class Bounded(OrderedDict[str, Any]):
    """A dict that forgets its oldest entries past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Departure:
    """Someone left a room: when (server time), and the last room line the bot had seen."""

    at: datetime
    last_msgid: str | None

    def position_in(self, lines: list[Line]) -> int:
        """Where the lines said after the departure start in ``lines``."""
        if self.last_msgid is not None:
            for i in range(len(lines) - 1, -1, -1):
                if lines[i].msgid == self.last_msgid:
                    return i + 1
        return next((i for i, ln in enumerate(lines) if ln.at >= self.at), len(lines))


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
        self.command_limits = RequestLimits(config.command_rate, Rate(0, 1.0))
        self.pacer = SendPacer(config.send_rate)
        self.cut_answers = CutAnswers()
        self._replies = ReplyOrder()
        self._typing = TypingIndicators(self._send_typing)
        self._model_slots = asyncio.Semaphore(config.max_concurrent)
        self._own_lines: Bounded = Bounded(OWN_LINES_KEPT)  # msgid -> text
        self._departures: Bounded = Bounded(DEPARTURES_KEPT)  # "room nick" -> Departure
        self._who_stale: set[str] = set()  # rooms someone joined since our last WHO
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- events ------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Take one client event; returns quickly (slow work goes to tasks)."""
        if isinstance(event, Received):
            self._received(event.message, event.history)
        elif isinstance(event, Connected):
            log.info("connected to %s as %s", event.server, event.nick)
            self._connections += 1
            if self._connections == 1:
                self._spawn(self._reload_at_start())
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
            line = self._remember(msg, live=not history)
            request = request_from(msg, me, self._known_bots(), self._own_lines)
            if history:
                if request is not None and _is_forget(request):
                    self._forget_in(self.memories.get(request.target), request)
            elif request is not None:
                self._admit(request, line)
            elif msg.params[1].startswith("\x01VERSION") and self._is_me(msg.params[0]):
                self._version_reply(msg)
        elif history:
            return
        elif msg.command == "INVITE" and len(msg.params) >= 2:
            if casefold(msg.params[0]) == casefold(me):
                self._spawn(self._accept_invite(msg.nick or "?", msg.params[1]))
        elif msg.command == "JOIN" and msg.params:
            if self._is_me(msg.nick):
                log.info("joined %s", msg.params[0])
                # WHO fills in who carries +B, for 'who' and for bots whose lines are untagged.
                self._spawn(self.link.send(Message("WHO", [msg.params[0]])))
            else:
                self._who_stale.add(casefold(msg.params[0]))
        elif msg.command in ("PART", "KICK") and msg.params:
            gone = msg.param(1) if msg.command == "KICK" else msg.nick
            if self._is_me(gone):
                log.info("left %s (%s)", msg.params[0], msg.command)
                self.memories.forget(msg.params[0])
            elif gone:
                self._note_departure(msg.params[0], gone, msg)
        elif msg.command == "QUIT" and msg.nick:
            for state in self.link.channels.values():  # it left every room we share
                self._note_departure(state.name, msg.nick, msg)

    def _note_departure(self, room: str, nick: str, msg: Message) -> None:
        """For 'summary': when ``nick`` left ``room``, and the last line seen there then."""
        memory = self.memories.get(room)
        last = memory.lines[-1].msgid if memory.lines else None
        self._departures[f"{casefold(room)} {casefold(nick)}"] = Departure(message_time(msg), last)

    def _is_me(self, nick: str | None) -> bool:
        return nick is not None and casefold(nick) == casefold(self.link.nick)

    def _known_bots(self) -> set[str]:
        bots: set[str] = set()
        for state in self.link.channels.values():
            bots.update(state.bots)
        return bots

    def _remember(self, msg: Message, *, live: bool) -> Line | None:
        """File a PRIVMSG under its room, or under the other party of a private chat."""
        line = line_from(msg)
        if line is None:
            return None
        target = msg.params[0]
        if not is_channel(target):
            target = target if self._is_me(msg.nick) else (msg.nick or target)
        self.memories.get(target).add(line, live=live)
        if line.msgid and self._is_me(line.nick):
            self._own_lines[line.msgid] = line.text
        return line

    def _version_reply(self, msg: Message) -> None:
        """CTCP VERSION, answered by NOTICE (never PRIVMSG), within the built-in limit."""
        nick = msg.nick
        if not nick or self._is_me(nick) or nick in self._known_bots():
            return
        if self.command_limits.check(nick, None).allowed:
            self._spawn(self.link.notice(nick, f"\x01VERSION {VERSION_REPLY}\x01"))

    # -- admission ---------------------------------------------------------------------

    def _admit(self, request: Request, line: Line | None) -> None:
        command = find_command(request.text)
        needs_ai = (
            self.backend is not None and bool(request.text) and (command is None or command.uses_ai)
        )
        if not needs_ai:
            verdict = self.command_limits.check(request.asker, None)
            if verdict.allowed:
                reply = self._open(request)
                self._spawn(self._offline_reply(request, command, reply))
            else:
                self._refused(request, verdict)
            return
        verdict = self.limits.check(request.asker, request.target if request.in_room else None)
        if not verdict.allowed:
            self._refused(request, verdict)
        elif verdict.delay > 0:
            log.info("room rate: holding %s in %s for %.1fs", request.asker, request.target,
                     verdict.delay)  # fmt: skip
            if verdict.delay >= HELD_NOTICE_AFTER:
                notice = self._open(request)
                notice.say(
                    self._prefix(request) + "this room is asking faster than I may answer; "
                    f"I will answer you in about {round(verdict.delay)}s."
                )
                notice.end()
            self._spawn(self._serve_later(request, line, command, verdict.delay))
        else:
            self._spawn(self._serve(request, line, command, self._open(request)))

    def _refused(self, request: Request, verdict: Verdict) -> None:
        log.info("rate limit (%s) for %s in %s", verdict.who, request.asker, request.target)
        if not verdict.warn:
            return
        ready_at = time.monotonic() + verdict.wait
        whose = "this room is" if verdict.who == "room" else "you are"

        def text() -> str:
            # Worked out when the line goes out: it may wait behind an answer.
            left = ready_at - time.monotonic()
            when = f"please wait {max(1, round(left))}s" if left > 0 else "you may ask again now"
            return f"{self._prefix(request)}{whose} asking faster than I may answer; {when}."

        reply = self._open(request)
        reply.say(text)
        reply.end()

    def _open(self, request: Request) -> Reply:
        """The request's place in its room's reply order."""
        return self._replies.open(request.target, lambda text: self._send_line(request, text))

    def _prefix(self, request: Request) -> str:
        return f"{request.asker}: " if request.in_room else ""

    # -- built-ins ---------------------------------------------------------------------

    async def _offline_reply(self, request: Request, command: Command | None, reply: Reply) -> None:
        """A built-in command, a bare mention, or 'AI answers are not configured'."""
        try:
            if command is None:
                if request.text:
                    lines = [NOT_CONFIGURED]
                else:
                    lines = ["yes? Ask me a question, or say 'help'."]
            elif command.uses_ai:  # no backend
                lines = [NOT_CONFIGURED]
            else:
                if command.name == "who":
                    await self._refresh_members(request)
                lines = command.handler(self._command_context(request))
                if not command.formatted:
                    lines = [clean_line(line) for line in lines]
            for i, line in enumerate(lines):
                reply.say(self._prefix(request) + line if i == 0 else line)
        finally:
            reply.end()

    async def _refresh_members(self, request: Request) -> None:
        """Before 'who': a WHO when people joined since the last, to learn who is +B."""
        folded = casefold(request.target)
        if folded not in self._who_stale:
            return
        self._who_stale.discard(folded)
        try:
            await self.link.request(Message("WHO", [request.target]), timeout=HISTORY_TIMEOUT)
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("WHO %s failed: %s", request.target, exc)

    def _command_context(self, request: Request) -> CommandContext:
        state = self._channel(request)
        if self.backend is not None:
            ai = f"AI answers: on ({self.config.for_room(request.target).model})."
        else:
            ai = "AI answers: off (no API key configured)."
        return CommandContext(
            request=request,
            bot_nick=self.link.nick,
            memory=self.memories.get(request.target),
            members=dict(state.members) if state else {},
            bots=(set(state.bots) | self._known_bots()) if state else set(),
            ai_status=ai,
            cut_answers=self.cut_answers,
            max_lines=self.config.for_room(request.target).max_lines,
            budget=text_budget("PRIVMSG", request.target),
        )

    def _channel(self, request: Request) -> ChannelState | None:
        return self.link.channels.get(casefold(request.target)) if request.in_room else None

    def _forget_in(self, memory: RoomMemory, request: Request) -> None:
        if request.in_room:
            memory.forget_thread(request.asker, self.link.nick)
        else:
            memory.clear()

    # -- AI answers --------------------------------------------------------------------

    async def _serve_later(
        self, request: Request, line: Line | None, command: Command | None, delay: float
    ) -> None:
        """A question the room rate holds back: answered once the room may have it."""
        await asyncio.sleep(delay)
        await self._serve(request, line, command, self._open(request))

    async def _serve(
        self, request: Request, line: Line | None, command: Command | None, reply: Reply
    ) -> None:
        backend = self.backend
        assert backend is not None
        reply.when_finished(self._typing.begin(request.target))
        try:
            async with self._model_slots:
                if command is not None and command.name == "summary":
                    await self._summarise(request, reply, backend)
                else:
                    await self._answer(request, line, reply, backend)
        finally:
            reply.end()

    async def _answer(
        self, request: Request, line: Line | None, reply: Reply, backend: ChatBackend
    ) -> None:
        settings = self.config.for_room(request.target)  # the room's own, else global
        memory = self.memories.get(request.target)
        if not request.in_room and not memory.reloaded:
            await self._reload_direct_chat(request.target, memory)
        state = self._channel(request)
        messages = build_messages(
            system_prompt=settings.system_prompt,
            bot_nick=self.link.nick,
            target=request.target,
            asker=request.asker,
            question=request.text,
            transcript=memory.transcript(exclude=line),
            topic=clean_line(state.topic) if state else "",
            replying_to=self._own_lines.get(request.reply_to or ""),
        )
        result = await stream_answer(
            backend.stream(
                messages,
                model=settings.model,
                max_tokens=settings.max_tokens,
                timeout=settings.timeout,
                temperature=settings.temperature,
                top_p=settings.top_p,
            ),
            sink=reply,
            prefix=self._prefix(request),
            budget=text_budget("PRIVMSG", request.target),
            max_lines=settings.max_lines,
            timeout=settings.timeout,
        )
        self.cut_answers.keep(request.target, request.asker, result.rest)
        log.info(
            "answered %s in %s with %d lines%s",
            request.asker,
            request.target,
            result.sent,
            f" ({len(result.rest)} kept for 'more')" if result.rest else "",
        )

    async def _summarise(self, request: Request, reply: Reply, backend: ChatBackend) -> None:
        """'what did I miss?': the room since the asker last spoke or left, summarised."""
        prefix = self._prefix(request)
        if not request.in_room:
            reply.say("Ask me that in a room: I summarise what was said there while you were away.")
            return
        room, asker = request.target, casefold(request.asker)
        lines = await self._room_lines(request)
        # Positions, not times: lines a millisecond apart can share a server-time.
        start, since, how = None, None, "spoke"
        for i in range(len(lines) - 1, -1, -1):
            if casefold(lines[i].nick) == asker:
                start, since = i + 1, lines[i].at
                break
        departure = self._departures.get(f"{casefold(room)} {asker}")
        if departure is not None:
            after = departure.position_in(lines)
            if start is None or after > start:
                start, since, how = after, departure.at, "left"
        log.debug("summary for %s: %d lines read, from %s (%s)", asker, len(lines), start, how)
        missed = lines[-SUMMARY_DEFAULT:] if start is None else lines[start:]
        if not missed:
            when = f" since you {how} at {since:%H:%M} UTC" if since else ""
            reply.say(f"{prefix}Nothing was said in {room}{when}.")
            return
        first, last = missed[0].at, missed[-1].at
        span = f"{first:%H:%M}-{last:%H:%M} UTC"
        if first.date() != last.date():
            span = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
        count = f"{len(missed)} message{'' if len(missed) == 1 else 's'}"
        head = f"{prefix}[{span}, {count}] "
        transcript = [ln.render() for ln in missed]
        while len(transcript) > 1 and sum(len(t) + 1 for t in transcript) > SUMMARY_CHARS:
            transcript.pop(0)
        settings = self.config.for_room(room)
        state = self._channel(request)
        messages = summary_messages(
            system_prompt=settings.system_prompt,
            bot_nick=self.link.nick,
            room=room,
            asker=request.asker,
            transcript=transcript,
            span=f"from {first:%Y-%m-%d %H:%M} to {last:%H:%M}",
            topic=clean_line(state.topic) if state else "",
        )
        result = await stream_answer(
            backend.stream(
                messages,
                model=settings.model,
                max_tokens=settings.max_tokens,
                timeout=settings.timeout,
                temperature=settings.temperature,
                top_p=settings.top_p,
            ),
            sink=reply,
            prefix=head,
            budget=text_budget("PRIVMSG", room),
            max_lines=settings.max_lines,
            timeout=settings.timeout,
        )
        self.cut_answers.keep(room, request.asker, result.rest)
        log.info("summarised %d lines of %s for %s", len(missed), room, request.asker)

    async def _room_lines(self, request: Request) -> list[Line]:
        """The room's recent lines from history (memory if the server keeps none),
        oldest first, up to the question itself."""
        lines: list[Line] = []
        try:
            fetched = await asyncio.wait_for(
                self.link.history_latest(request.target, SUMMARY_FETCH), HISTORY_TIMEOUT
            )
            lines = [ln for ln in map(line_from, fetched) if ln is not None]
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("history of %s not read: %s", request.target, exc)
        if not lines:
            lines = list(self.memories.get(request.target).lines)
        for i, ln in enumerate(lines):
            if request.msgid is not None and ln.msgid == request.msgid:
                return lines[:i]
        return lines

    # -- direct chats after a restart ----------------------------------------------------

    async def _reload_at_start(self) -> None:
        chats, lines = await self.reload_direct_chats()
        log.info("reloaded %d private chats (%d lines) from history", chats, lines)

    async def reload_direct_chats(self) -> tuple[int, int]:
        """CHATHISTORY TARGETS, then LATEST for each private chat the server lets us read
        and we do not hold in memory; returns (chats, lines) reloaded.

        What comes back is the server's to decide. Where private history belongs to the
        nick, a restarted bot gets its chats back. Where only the connection that held
        the nick when a message was sent (or the account) may read it, a restarted bot
        gets none until it logs in to an account, and a chat whose memory was dropped
        (least recently used) comes back only within the same connection.
        """
        if "draft/chathistory" not in self.link.caps:
            log.info("the server keeps no history: private chats start fresh")
            return 0, 0
        now = _now()
        query = Message(
            "CHATHISTORY",
            [
                "TARGETS",
                "timestamp=" + format_time(now + timedelta(seconds=1)),
                "timestamp=" + format_time(now - timedelta(days=RELOAD_DAYS)),
                str(RELOAD_CONVERSATIONS),
            ],
        )
        try:
            answer = await self.link.request(query, timeout=HISTORY_TIMEOUT)
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("private chats not reloaded: %s", exc)
            return 0, 0
        peers = [
            m.params[1]
            for m in answer
            if m.command == "CHATHISTORY" and m.param(0) == "TARGETS" and len(m.params) >= 2
            if not is_channel(m.params[1]) and not self._is_me(m.params[1])
        ]
        chats = lines = 0
        for peer in peers:
            memory = self.memories.get(peer)
            if not memory.reloaded:
                added = await self._reload_direct_chat(peer, memory)
                chats += added > 0
                lines += added
        return chats, lines

    async def _reload_direct_chat(self, peer: str, memory: RoomMemory) -> int:
        """Fill ``memory`` with the latest of the private chat with ``peer``; lines added."""
        memory.reloaded = True
        try:
            fetched = await asyncio.wait_for(
                self.link.history_latest(peer, max(1, memory.size)), HISTORY_TIMEOUT
            )
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("private chat with %s not reloaded: %s", peer, exc)
            return 0
        lines = [ln for ln in map(line_from, fetched) if ln is not None]
        # A 'forget' in the history still holds: only what came after it is reloaded.
        for i in range(len(lines) - 1, -1, -1):
            ln = lines[i]
            if not self._is_me(ln.nick) and _is_forget_text(ln.text):
                lines = lines[i + 1 :]
                break
        added = sum(memory.add(ln, live=False) for ln in lines)
        for ln in lines:
            if ln.msgid and self._is_me(ln.nick):
                self._own_lines[ln.msgid] = ln.text
        return added

    # -- sending -----------------------------------------------------------------------

    async def _send_line(self, request: Request, text: str) -> None:
        """One line to the request's target, paced, tagged as a reply when tags work."""
        if not text:
            return
        await self.pacer.acquire()
        tags: dict[str, str] | None = None
        if request.msgid and "message-tags" in self.link.caps:
            tags = {"+draft/reply": request.msgid}
        # Our own line comes back as an event (echo-message, or the client's local
        # echo), and is remembered from there like anyone else's.
        await self.link.privmsg(request.target, text, tags=tags)

    async def _send_typing(self, target: str, state: str) -> None:
        if "message-tags" in self.link.caps:
            await self.link.tagmsg(target, {"+typing": state})

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
        await self._replies.close()
        await self._typing.close()
        if self.backend is not None:
            await self.backend.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _is_forget_text(text: str) -> bool:
    command = find_command(text)
    return command is not None and command.name == "forget"


def _is_forget(request: Request) -> bool:
    return _is_forget_text(request.text)
