"""'summary' / 'what did I miss?': the room since the asker last spoke or left, summarised.

The start is whichever came later: the asker's last line in the room, or their
departure (PART, KICK or QUIT, noted as it happens). Someone the bot never saw speak
or leave gets the last ``SUMMARY_DEFAULT`` lines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.answer import ask_model
from bot.config import BotConfig
from bot.context import Bounded, CutAnswers, Line
from bot.history import ServerHistory
from bot.link import ChatLink, room_of
from bot.llm import ChatBackend
from bot.output import Reply
from bot.prompt import summary_messages
from bot.sanitize import clean_line
from bot.triggers import Request
from chat_protocol.casemap import casefold

log = logging.getLogger(__name__)

SUMMARY_DEFAULT = 100  # lines summarised for someone never seen speaking or leaving
SUMMARY_CHARS = 24_000  # transcript sent to the model, newest kept
DEPARTURES_KEPT = 10_000


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


class Departures:
    """Each person's last departure from each room, the most recent ``limit`` kept."""

    def __init__(self, limit: int = DEPARTURES_KEPT) -> None:
        self._left: Bounded = Bounded(limit)  # "room nick" -> Departure

    def note(self, room: str, nick: str, departure: Departure) -> None:
        self._left[f"{casefold(room)} {casefold(nick)}"] = departure

    def get(self, room: str, nick: str) -> Departure | None:
        return self._left.get(f"{casefold(room)} {casefold(nick)}")


class RoomSummaries:
    """Answers 'summary' from the room's history and the departures seen."""

    def __init__(
        self,
        config: BotConfig,
        link: ChatLink,
        history: ServerHistory,
        departures: Departures,
        cut_answers: CutAnswers,
    ) -> None:
        self.config = config
        self.link = link
        self.history = history
        self.departures = departures
        self.cut_answers = cut_answers

    async def summarise(self, request: Request, reply: Reply, backend: ChatBackend) -> None:
        """'what did I miss?': the room since the asker last spoke or left, summarised."""
        prefix = request.prefix
        if not request.in_room:
            reply.say("Ask me that in a room: I summarise what was said there while you were away.")
            return
        room, asker = request.target, casefold(request.asker)
        lines = await self.history.room_lines(request)
        # Positions, not times: lines a millisecond apart can share a server-time.
        start, since, how = None, None, "spoke"
        for i in range(len(lines) - 1, -1, -1):
            if casefold(lines[i].nick) == asker:
                start, since = i + 1, lines[i].at
                break
        departure = self.departures.get(room, asker)
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
        state = room_of(self.link, request)
        messages = summary_messages(
            system_prompt=settings.system_prompt,
            bot_nick=self.link.nick,
            room=room,
            asker=request.asker,
            transcript=transcript,
            span=f"from {first:%Y-%m-%d %H:%M} to {last:%H:%M}",
            topic=clean_line(state.topic) if state else "",
        )
        result = await ask_model(
            backend, messages, settings, sink=reply, prefix=head, target=room
        )
        self.cut_answers.keep(room, request.asker, result.rest)
        log.info("summarised %d lines of %s for %s", len(missed), room, request.asker)
