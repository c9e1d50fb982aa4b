"""The table of slash commands and the small parsers they share.

Each command is one function registered in a ``CommandGroup`` (name, usage, summary,
aliases); ``commands`` joins the groups into the one table that ``/help``, completion
and the error lines read. The commands themselves live by subject in
``talk_commands`` and ``moderation_commands``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chat_protocol import is_channel, valid_nick
from chat_tui.effects import Effect
from chat_tui.state import ChatState


class CommandError(ValueError):
    """A command the user got wrong; the message is shown as one line."""


Run = Callable[[str, ChatState], list[Effect]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    run: Run
    aliases: tuple[str, ...] = ()


class CommandGroup:
    """The commands one module declares, in the order it declares them (``/help``
    lists them so)."""

    def __init__(self) -> None:
        self.specs: dict[str, CommandSpec] = {}

    def command(
        self, name: str, usage: str, summary: str, aliases: tuple[str, ...] = ()
    ) -> Callable[[Run], Run]:
        """Register a slash command with its usage line (shown in /help and in errors)."""

        def register(func: Run) -> Run:
            self.specs[name] = CommandSpec(name, usage, summary, func, aliases)
            return func

        return register

    def usage(self, name: str) -> str:
        return self.specs[name].usage


def room_name(word: str) -> str:
    """A room name as the user meant it: ``general`` becomes ``#general``."""
    return word if is_channel(word) else "#" + word


def need(args: str, usage: str) -> str:
    """``args`` without surrounding blanks; an error naming ``usage`` when empty."""
    if not args.strip():
        raise CommandError(f"missing argument — usage: {usage}")
    return args.strip()


def in_room(state: ChatState, what: str) -> str:
    """The current room or conversation (not the server tab) for ``what``."""
    room = state.current_room
    if room.is_server:
        raise CommandError(f"{what} needs a room or conversation — /join one first")
    return room.name


def channel_here(state: ChatState, what: str) -> str:
    """The current room, which must be a channel for ``what``."""
    room = state.current_room
    if not room.is_channel:
        raise CommandError(f"{what} works in a room — switch to one or name it")
    return room.name


def room_and_rest(args: str, state: ChatState, what: str) -> tuple[str, str]:
    """An optional leading ``#room`` (else the current room) and the words after it."""
    first, _, rest = args.strip().partition(" ")
    if first and is_channel(first):
        return first, rest.strip()
    return channel_here(state, what), args.strip()


def nick_arg(word: str) -> str:
    if not valid_nick(word):
        raise CommandError(f"{word!r} is not a valid nick")
    return word
