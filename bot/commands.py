"""Built-in commands: help, time, who is here, room statistics, more, forget, summary.

Commands are registered with ``@command(...)`` in a table rather than wired into the
message handler, so adding one is adding one small function. A command matches only
when the whole (addressed) text is one of its phrasings — "who" and "who is here?" are
the command, "who won the match?" goes to the model.

All but ``summary`` work without the AI and cost no API call, so they have their own,
looser rate limit. ``summary`` is listed here (help shows it) but answered by the
worker, which reads the room's history and asks the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.context import CutAnswers, RoomMemory
from bot.lines import page
from bot.triggers import Request
from chat_protocol.casemap import casefold

WHO_BUDGET = 400  # bytes of names in 'who': one line, whatever the size of the room


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
    cut_answers: CutAnswers = field(default_factory=CutAnswers)
    max_lines: int = 8
    budget: int = 400


Handler = Callable[[CommandContext], list[str]]


@dataclass(frozen=True, slots=True)
class Command:
    """A built-in: its name, the phrasings that call it, and what it does.

    ``formatted``: the reply lines are already safe IRC lines (rendered model output),
    not plain text to be sanitised. ``uses_ai``: answered by the worker with the model.
    """

    name: str
    phrases: tuple[str, ...]
    summary: str
    handler: Handler
    formatted: bool = False
    uses_ai: bool = False


COMMANDS: dict[str, Command] = {}
_BY_PHRASE: dict[str, Command] = {}


def command(
    name: str, *phrases: str, summary: str, formatted: bool = False, uses_ai: bool = False
) -> Callable[[Handler], Handler]:
    """Register a built-in command under its name and the phrasings that call it."""

    def register(handler: Handler) -> Handler:
        cmd = Command(name, (name, *phrases), summary, handler, formatted, uses_ai)
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


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@command(
    "who", "who is here", "who's here", "whos here", "users", "names", summary="who is in this room"
)
def _who(ctx: CommandContext) -> list[str]:
    if not ctx.request.in_room:
        return ["Ask me that in a room: I list who is in it."]
    if not ctx.members:
        return [f"I do not know who is in {ctx.request.target} yet."]
    bots = {casefold(b) for b in ctx.bots}
    nicks = sorted(ctx.members, key=str.lower)
    bot_count = sum(1 for n in nicks if casefold(n) in bots)
    head = (
        f"{ctx.request.target}: {_plural(len(nicks) - bot_count, 'person', 'people')}, "
        f"{_plural(bot_count, 'bot', 'bots')}: "
    )
    names: list[str] = []
    used = 0
    for nick in nicks:
        mark = " (bot)" if casefold(nick) in bots else ""
        name = f"{ctx.members[nick][:1]}{nick}{mark}"
        if used + len(name) + 2 > WHO_BUDGET:
            break
        names.append(name)
        used += len(name) + 2
    more = len(nicks) - len(names)
    tail = f" and {more} more" if more else ""
    return [head + ", ".join(names) + tail]


@command("stats", "room stats", "statistics", "room statistics", summary="room statistics")
def _stats(ctx: CommandContext) -> list[str]:
    mem = ctx.memory
    since = mem.since.strftime("%Y-%m-%d %H:%M UTC")
    me = casefold(ctx.bot_nick)
    active = [(nick, n) for nick, n in mem.by_nick.most_common() if casefold(nick) != me]
    top = ", ".join(f"{nick} ({count})" for nick, count in active[:3])
    where = ctx.request.target if ctx.request.in_room else "this conversation"
    parts = [f"{where}: {_plural(mem.total, 'message', 'messages')} seen since {since}"]
    if ctx.members:
        parts.append(f"{len(ctx.members)} members now")
    if top:
        parts.append(f"most active: {top}")
    parts.append(f"{len(mem.lines)} lines in my memory")
    return ["; ".join(parts) + "."]


# 'more' sends rendered model lines, which the sanitiser would strip of their formatting.
@command("more", "go on", "continue", summary="the rest of my last cut answer", formatted=True)
def _more(ctx: CommandContext) -> list[str]:
    req = ctx.request
    lines = ctx.cut_answers.take(req.target, req.asker)
    if not lines:
        return ["There is no more: my last answer to you was not cut."]
    shown, rest = page(lines, ctx.max_lines, ctx.budget)
    if rest:
        ctx.cut_answers.keep(req.target, req.asker, rest)
    return shown


@command("forget", "forget me", "forget that", "reset", summary="forget our conversation")
def _forget(ctx: CommandContext) -> list[str]:
    req = ctx.request
    ctx.cut_answers.take(req.target, req.asker)
    if not req.in_room:
        ctx.memory.clear()
        return ["Done: I forgot our conversation."]
    dropped = ctx.memory.forget_thread(req.asker, ctx.bot_nick)
    return [f"Done: I forgot what you asked me here and what I answered ({dropped} lines)."]


@command(
    "summary",
    "what did i miss",
    "what have i missed",
    "catch me up",
    "summarise",
    "summarize",
    summary="what was said here since you last spoke or left",
    uses_ai=True,
)
def _summary(ctx: CommandContext) -> list[str]:
    raise RuntimeError("summary is answered by the worker")  # never called: uses_ai
