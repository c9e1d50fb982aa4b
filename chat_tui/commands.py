"""Slash commands: parse what the user typed into effects the app carries out.

``run(line, state)`` never does I/O. It returns a list of effects (send this line,
say this text, open that screen, show that error) so every command is testable as
plain data, and a wrong command costs the user one red line, never a crash. The
commands are registered in ``command_table`` by ``talk_commands`` and
``moderation_commands``; the effects they return (``chat_tui.effects``) are named here
too, since ``run`` is how callers get them.
"""

from __future__ import annotations

from chat_protocol import casefold
from chat_tui import moderation_commands, talk_commands
from chat_tui.command_table import (
    CommandError,
    CommandGroup,
    CommandSpec,
    in_room,
    room_name,
)
from chat_tui.effects import (
    CloseRoom,
    CopyMode,
    Effect,
    Join,
    Note,
    OpenRoom,
    OpenSearch,
    Part,
    Quit,
    RegisterAccount,
    Say,
    Send,
    ShowScreen,
)
from chat_tui.model import LineKind
from chat_tui.state import ChatState

__all__ = [
    "ALIASES",
    "COMMANDS",
    "HELP",
    "CloseRoom",
    "CommandError",
    "CommandSpec",
    "CopyMode",
    "Effect",
    "Join",
    "Note",
    "OpenRoom",
    "OpenSearch",
    "Part",
    "Quit",
    "RegisterAccount",
    "Say",
    "Send",
    "ShowScreen",
    "completions",
    "holds_secret",
    "room_name",
    "run",
]

HELP = CommandGroup()


def run(line: str, state: ChatState) -> list[Effect]:
    """Turn one input line into effects. Plain text is said in the current room."""
    if not line.strip():
        return []
    if not line.startswith("/") or line.startswith("//"):
        text = line[1:] if line.startswith("//") else line
        try:
            target = in_room(state, "Sending a message")
        except CommandError as exc:
            return [Note(str(exc), LineKind.ERROR)]
        return [Say(target, text)]
    name, _, args = line[1:].partition(" ")
    name = casefold(name)
    name = ALIASES.get(name, name)
    spec = COMMANDS.get(name)
    if spec is None:
        return [Note(f"unknown command /{name} — /help lists the commands", LineKind.ERROR)]
    try:
        return spec.run(args, state)
    except CommandError as exc:
        return [Note(f"/{spec.name}: {exc}", LineKind.ERROR)]


# Lines that hold a password: not kept in the input's recall history.
SECRET_COMMANDS = frozenset({"register"})


def holds_secret(line: str) -> bool:
    """Whether ``line`` is a command whose arguments are a secret (``/register pw``)."""
    if not line.startswith("/"):
        return False
    name = casefold(line[1:].partition(" ")[0])
    return ALIASES.get(name, name) in SECRET_COMMANDS


@HELP.command("help", "/help [command]", "show keys and commands", ("h", "?"))
def _help(args: str, state: ChatState) -> list[Effect]:
    wanted = casefold(args.strip().lstrip("/"))
    if not wanted:
        return [ShowScreen("help")]
    spec = COMMANDS.get(ALIASES.get(wanted, wanted))
    if spec is None:
        raise CommandError(f"no command /{wanted}")
    return [Note(f"{spec.usage} — {spec.summary}")]


# Every command, as /help lists them: the everyday ones, those about other people, help.
COMMANDS: dict[str, CommandSpec] = {
    **talk_commands.TALK.specs,
    **moderation_commands.MODERATION.specs,
    **HELP.specs,
}
ALIASES: dict[str, str] = {alias: s.name for s in COMMANDS.values() for alias in s.aliases}


def completions(prefix: str) -> list[str]:
    """Command names and word aliases (``/part``, ``/query``; not ``/j``), with the
    slash, that start with ``prefix``."""
    folded = casefold(prefix.lstrip("/"))
    names = [*COMMANDS, *(alias for alias in ALIASES if len(alias) > 2)]
    return sorted("/" + name for name in names if name.startswith(folded))
