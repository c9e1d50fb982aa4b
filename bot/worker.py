"""The bot worker: turns client events into memory, commands and AI answers.

``handle()`` is called for every event and never waits for the model: it updates the
room memory, checks the rate limits (in arrival order, so they are fair), takes the
request's place in its room's reply order (``bot.output``) and starts one task per
request. Model calls of one room run side by side (up to ``max_concurrent`` at a
time over all rooms); their lines are written whole and in the order asked. Everything
the bot says in a room goes through that order, the rate-limit notices included.

Built-in commands cost no API call and have their own, looser limit, so a bot busy
with AI questions still answers ``help``.

The work itself is done by the parts this wires together: ``bot.builtin_replies``
(built-ins), ``bot.ai_answers`` (questions for the model), ``bot.summary`` ('what did
I miss?'), ``bot.history`` (reading the server's history back) and ``bot.tasks``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time

from bot.ai_answers import AIAnswers
from bot.builtin_replies import BuiltinReplies
from bot.commands import Command, find_command
from bot.config import BotConfig, Rate
from bot.context import Bounded, CutAnswers, Line, Memories, RoomMemory, line_from, message_time
from bot.history import ServerHistory, is_forget
from bot.link import ChatLink, is_me, known_bots
from bot.llm import ChatBackend
from bot.output import Reply, ReplyOrder
from bot.ratelimit import RequestLimits, SendPacer, Verdict
from bot.summary import Departure, Departures, RoomSummaries
from bot.tasks import Tasks
from bot.triggers import Request, request_from
from chat_protocol import Message
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.client_types import (
    AccountChanged,
    Connected,
    Disconnected,
    Event,
    LoginFailed,
    NickFallback,
    NickReclaimed,
    Received,
)

log = logging.getLogger(__name__)

try:
    VERSION = importlib.metadata.version("distchat")
except importlib.metadata.PackageNotFoundError:  # run from a source tree
    VERSION = "dev"
VERSION_REPLY = f"distchat chat-bot {VERSION}"

HELD_NOTICE_AFTER = 5.0  # a question held longer than this by the room rate is told so
OWN_LINES_KEPT = 5_000  # msgids of the bot's own lines, for replies to them


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
        self._own_lines: Bounded = Bounded(OWN_LINES_KEPT)  # msgid -> text
        self._departures = Departures()
        self.history = ServerHistory(link, self.memories, self._own_lines)
        self.builtins = BuiltinReplies(
            config, link, self.memories, self.cut_answers, ai_on=backend is not None
        )
        summaries = RoomSummaries(config, link, self.history, self._departures, self.cut_answers)
        self.ai = AIAnswers(
            config, link, backend, self.memories, self.history, summaries, self.cut_answers,
            self._own_lines,
        )  # fmt: skip
        self._connections = 0
        self._tasks = Tasks()

    # -- events ------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Take one client event; returns quickly (slow work goes to tasks)."""
        if isinstance(event, Received):
            self._received(event.message, event.history)
        elif isinstance(event, Connected):
            log.info("connected to %s as %s", event.server, event.nick)
            self._connections += 1
            if self._connections == 1:
                self._tasks.spawn(self._reload_at_start())
        elif isinstance(event, Disconnected):
            if event.retry_in is None:
                log.info("disconnected for good: %s", event.reason)
            else:
                log.warning("disconnected (%s); retrying in %.1fs", event.reason, event.retry_in)
        elif isinstance(event, NickFallback):
            log.warning("nick %s is taken; running as %s", event.wanted, event.got)
        elif isinstance(event, NickReclaimed):
            log.info("nick %s is back (was %s)", event.nick, event.fallback)
        elif isinstance(event, LoginFailed):
            how = ", ".join(part for part in (event.mechanism, event.numeric) if part)
            log.error("login as %s failed (%s): %s", event.account, how or "-", event.reason)
        elif isinstance(event, AccountChanged) and event.account:
            log.info("logged in as %s", event.account)
        elif isinstance(event, AccountChanged):
            log.warning("logged out of its account")

    def _received(self, msg: Message, history: bool) -> None:
        me = self.link.nick
        if msg.command == "PRIVMSG" and len(msg.params) >= 2:
            line = self._remember(msg, live=not history)
            request = request_from(msg, me, known_bots(self.link), self._own_lines)
            if history:
                if request is not None and is_forget(request.text):
                    self._forget_in(self.memories.get(request.target), request)
            elif request is not None:
                self._admit(request, line)
            elif msg.params[1].startswith("\x01VERSION") and is_me(self.link, msg.params[0]):
                self._version_reply(msg)
        elif history:
            return
        elif msg.command == "INVITE" and len(msg.params) >= 2:
            if casefold(msg.params[0]) == casefold(me):
                self._tasks.spawn(self._accept_invite(msg.nick or "?", msg.params[1]))
        elif msg.command == "JOIN" and msg.params:
            if is_me(self.link, msg.nick):
                log.info("joined %s", msg.params[0])
                # WHO fills in who carries +B, for 'who' and for bots whose lines are untagged.
                self._tasks.spawn(self.link.send(Message("WHO", [msg.params[0]])))
            else:
                self.builtins.someone_joined(msg.params[0])
        elif msg.command in ("PART", "KICK") and msg.params:
            gone = msg.param(1) if msg.command == "KICK" else msg.nick
            if is_me(self.link, gone):
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
        self._departures.note(room, nick, Departure(message_time(msg), last))

    def _remember(self, msg: Message, *, live: bool) -> Line | None:
        """File a PRIVMSG under its room, or under the other party of a private chat."""
        line = line_from(msg)
        if line is None:
            return None
        target = msg.params[0]
        if not is_channel(target):
            target = target if is_me(self.link, msg.nick) else (msg.nick or target)
        self.memories.get(target).add(line, live=live)
        if line.msgid and is_me(self.link, line.nick):
            self._own_lines[line.msgid] = line.text
        return line

    def _forget_in(self, memory: RoomMemory, request: Request) -> None:
        if request.in_room:
            memory.forget_thread(request.asker, self.link.nick)
        else:
            memory.clear()

    def _version_reply(self, msg: Message) -> None:
        """CTCP VERSION, answered by NOTICE (never PRIVMSG), within the built-in limit."""
        nick = msg.nick
        if not nick or is_me(self.link, nick) or nick in known_bots(self.link):
            return
        if self.command_limits.check(nick, None).allowed:
            self._tasks.spawn(self.link.notice(nick, f"\x01VERSION {VERSION_REPLY}\x01"))

    async def _accept_invite(self, inviter: str, channel: str) -> None:
        if len(self.link.channels) >= self.config.max_rooms:
            log.warning("invite to %s from %s ignored: max rooms reached", channel, inviter)
            return
        log.info("invited to %s by %s; joining", channel, inviter)
        await self.link.join(channel)

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
                self._tasks.spawn(self.builtins.reply(request, command, reply))
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
                    request.prefix + "this room is asking faster than I may answer; "
                    f"I will answer you in about {round(verdict.delay)}s."
                )
                notice.end()
            self._tasks.spawn(self._serve_later(request, line, command, verdict.delay))
        else:
            self._tasks.spawn(self.ai.serve(request, line, command, self._open(request)))

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
            return f"{request.prefix}{whose} asking faster than I may answer; {when}."

        reply = self._open(request)
        reply.say(text)
        reply.end()

    async def _serve_later(
        self, request: Request, line: Line | None, command: Command | None, delay: float
    ) -> None:
        """A question the room rate holds back: answered once the room may have it."""
        await asyncio.sleep(delay)
        await self.ai.serve(request, line, command, self._open(request))

    def _open(self, request: Request) -> Reply:
        """The request's place in its room's reply order."""
        return self._replies.open(request.target, lambda text: self._send_line(request, text))

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

    # -- direct chats after a restart ----------------------------------------------------

    async def _reload_at_start(self) -> None:
        chats, lines = await self.reload_direct_chats()
        log.info("reloaded %d private chats (%d lines) from history", chats, lines)

    async def reload_direct_chats(self) -> tuple[int, int]:
        """Reload the private chats the server keeps (``ServerHistory``); (chats, lines)."""
        return await self.history.reload_direct_chats()

    async def close(self) -> None:
        """Cancel work in flight and release the backend."""
        await self._tasks.cancel()
        await self._replies.close()
        await self.ai.close()
        if self.backend is not None:
            await self.backend.close()
