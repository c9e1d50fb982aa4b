"""Questions for the model: each answered from the room's memory and settings, at most
``max_concurrent`` model calls at a time over all rooms, the room's typing indicator on
while any of its questions is pending.

A private chat whose memory was dropped (or never loaded since a restart) is read back
from the server's history before its question goes to the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from bot.answer import TypingIndicators, ask_model
from bot.commands import Command
from bot.config import BotConfig
from bot.context import CutAnswers, Line, Memories
from bot.history import ServerHistory
from bot.link import ChatLink, room_of
from bot.llm import ChatBackend
from bot.output import Reply
from bot.prompt import build_messages
from bot.sanitize import clean_line
from bot.summary import RoomSummaries
from bot.triggers import Request

log = logging.getLogger(__name__)


class AIAnswers:
    """Serves admitted questions with ``backend``; ``own_lines`` (msgid -> text) gives
    the bot's line a question replies to."""

    def __init__(
        self,
        config: BotConfig,
        link: ChatLink,
        backend: ChatBackend | None,
        memories: Memories,
        history: ServerHistory,
        summaries: RoomSummaries,
        cut_answers: CutAnswers,
        own_lines: Mapping[str, str],
    ) -> None:
        self.config = config
        self.link = link
        self.backend = backend
        self.memories = memories
        self.history = history
        self.summaries = summaries
        self.cut_answers = cut_answers
        self._own_lines = own_lines
        self._typing = TypingIndicators(self._send_typing)
        self._model_slots = asyncio.Semaphore(config.max_concurrent)

    async def serve(
        self, request: Request, line: Line | None, command: Command | None, reply: Reply
    ) -> None:
        """Answer ``request`` (asked in ``line``) into ``reply``, then end it."""
        backend = self.backend
        assert backend is not None
        reply.when_finished(self._typing.begin(request.target))
        try:
            async with self._model_slots:
                if command is not None and command.name == "summary":
                    await self.summaries.summarise(request, reply, backend)
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
            await self.history.reload_direct_chat(request.target, memory)
        state = room_of(self.link, request)
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
        result = await ask_model(
            backend, messages, settings, sink=reply, prefix=request.prefix, target=request.target
        )
        self.cut_answers.keep(request.target, request.asker, result.rest)
        log.info(
            "answered %s in %s with %d lines%s",
            request.asker,
            request.target,
            result.sent,
            f" ({len(result.rest)} kept for 'more')" if result.rest else "",
        )

    async def _send_typing(self, target: str, state: str) -> None:
        if "message-tags" in self.link.caps:
            await self.link.tagmsg(target, {"+typing": state})

    async def close(self) -> None:
        """Stop the typing indicators."""
        await self._typing.close()
