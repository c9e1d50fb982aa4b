"""Built-in commands that work without the AI: help, time, who is here, room statistics.

Commands are registered with ``@command(...)`` in a table rather than wired into the
message handler, so adding one is adding one small function. A command matches only
when the whole (addressed) text is one of its phrasings — "who" and "who is here?" are
the command, "who won the match?" goes to the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.context import RoomMemory
from bot.triggers import Request
from chat_protocol.casemap import casefold


@dataclass
class CommandContext:
    """What a command may look at; commands never send, they return their reply lines."""

    request: Request
    bot_nick: str
    memory: RoomMemory
    members: dict[str, str] = field(default_factory=dict)  # nick -> prefixes
    bots: set[str] = field(default_factory=set)
    ai_status: str = ""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


Handler = Callable[[CommandContext], list[str]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    phrases: tuple[str, ...]
    summary: str
    handler: Handler


COMMANDS: dict[str, Command] = {}
_BY_PHRASE: dict[str, Command] = {}


def command(name: str, *phrases: str, summary: str) -> Callable[[Handler], Handler]:
    """Register a built-in command under its name and the phrasings that call it."""

    def register(handler: Handler) -> Handler:
        cmd = Command(name, (name, *phrases), summary, handler)
        COMMANDS[name] = cmd
        for phrase in cmd.phrases:
            _BY_PHRASE[normalise(phrase)] = cmd
        return handler

    return register


def normalise(text: str) -> str:
    """Lower case, one space between words, no leading '!' or '.', no final punctuation."""
    text = " ".join(text.lower().split())
    text = text.lstrip("!.")
    return re.sub(r"[\s?!.]+$", "", text)


def find_command(text: str) -> Command | None:
    """The command ``text`` calls, if it is exactly one of the registered phrasings."""
    return _BY_PHRASE.get(normalise(text))


@command("help", "commands", "what can you do", summary="what I do and how to ask")
def _help(ctx: CommandContext) -> list[str]:
    names = ", ".join(sorted(COMMANDS))
    how = (
        f"Ask me in a room as '{ctx.bot_nick}: your question' (or '@{ctx.bot_nick} ...'), "
        "or send me a direct message."
    )
    return [how, f"Commands: {names}. {ctx.ai_status}".strip()]


@command("time", "what time is it", "date", "now", summary="the current date and time (UTC)")
def _time(ctx: CommandContext) -> list[str]:
    return [ctx.now.strftime("It is %A %Y-%m-%d %H:%M:%S UTC.")]


@command(
    "who", "who is here", "who's here", "whos here", "users", "names", summary="who is in this room"
)
def _who(ctx: CommandContext) -> list[str]:
    if not ctx.request.in_room:
        return ["Ask me that in a room: I list who is in it."]
    if not ctx.members:
        return [f"I do not know who is in {ctx.request.target} yet."]
    bots = {casefold(b) for b in ctx.bots}
    names = []
    for nick in sorted(ctx.members, key=str.lower):
        mark = " (bot)" if casefold(nick) in bots else ""
        names.append(f"{ctx.members[nick][:1]}{nick}{mark}")
    people = len(ctx.members) - sum(1 for n in ctx.members if casefold(n) in bots)
    head = f"{ctx.request.target}: {people} people, {len(ctx.members) - people} bots: "
    return [head + ", ".join(names)]


@command("stats", "room stats", "statistics", "room statistics", summary="room statistics")
def _stats(ctx: CommandContext) -> list[str]:
    mem = ctx.memory
    since = mem.since.strftime("%Y-%m-%d %H:%M UTC")
    top = ", ".join(f"{nick} ({count})" for nick, count in mem.by_nick.most_common(3))
    where = ctx.request.target if ctx.request.in_room else "this conversation"
    parts = [f"{where}: {mem.total} messages seen since {since}"]
    if ctx.members:
        parts.append(f"{len(ctx.members)} members now")
    if top:
        parts.append(f"most active: {top}")
    parts.append(f"{len(mem.lines)} lines in my memory")
    return ["; ".join(parts) + "."]
