"""Replies that cost no API call: a built-in command, a bare mention, or 'AI answers are
not configured'.

The worker admits these under their own, looser limit, so a bot busy with AI questions
still answers ``help``.
"""

from __future__ import annotations

import logging

from bot.commands import Command, CommandContext
from bot.config import BotConfig
from bot.context import CutAnswers, Memories
from bot.history import HISTORY_TIMEOUT
from bot.link import ChatLink, known_bots, room_of
from bot.llm import NOT_CONFIGURED
from bot.output import Reply
from bot.sanitize import clean_line
from bot.triggers import Request
from chat_protocol import Message
from chat_protocol.casemap import casefold
from chat_protocol.client_types import NotConnected
from chat_protocol.split import text_budget

log = logging.getLogger(__name__)


class BuiltinReplies:
    """Answers built-ins from what the bot holds; ``ai_on`` says whether a model is set."""

    def __init__(
        self,
        config: BotConfig,
        link: ChatLink,
        memories: Memories,
        cut_answers: CutAnswers,
        *,
        ai_on: bool,
    ) -> None:
        self.config = config
        self.link = link
        self.memories = memories
        self.cut_answers = cut_answers
        self.ai_on = ai_on
        self._who_stale: set[str] = set()  # rooms someone joined since our last WHO

    def someone_joined(self, room: str) -> None:
        """Who carries +B in ``room`` is unknown until the next WHO."""
        self._who_stale.add(casefold(room))

    async def reply(self, request: Request, command: Command | None, reply: Reply) -> None:
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
                reply.say(request.prefix + line if i == 0 else line)
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
        state = room_of(self.link, request)
        if self.ai_on:
            ai = f"AI answers: on ({self.config.for_room(request.target).model})."
        else:
            ai = "AI answers: off (no API key configured)."
        return CommandContext(
            request=request,
            bot_nick=self.link.nick,
            memory=self.memories.get(request.target),
            members=dict(state.members) if state else {},
            bots=(set(state.bots) | known_bots(self.link)) if state else set(),
            ai_status=ai,
            cut_answers=self.cut_answers,
            max_lines=self.config.for_room(request.target).max_lines,
            budget=text_budget("PRIVMSG", request.target),
        )
