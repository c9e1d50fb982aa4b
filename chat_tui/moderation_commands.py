"""Commands about other people: room operators' kick, ban, unban, mode and invite,
and the reader's own ignore list."""

from __future__ import annotations

from chat_protocol import is_channel, valid_channel, valid_nick
from chat_tui.command_table import (
    CommandError,
    CommandGroup,
    channel_here,
    need,
    nick_arg,
    room_and_rest,
    room_name,
)
from chat_tui.effects import Effect, Note, Send
from chat_tui.ignore import normal_mask, valid_mask
from chat_tui.state import ChatState

MODERATION = CommandGroup()


@MODERATION.command("kick", "/kick [#room] <nick> [reason]", "remove someone from the room (ops)")
def _kick(args: str, state: ChatState) -> list[Effect]:
    room, rest = room_and_rest(args, state, "/kick")
    nick, _, reason = need(rest, MODERATION.usage("kick")).partition(" ")
    line = f"KICK {room} {nick_arg(nick)}"
    return [Send(f"{line} :{reason.strip()}" if reason.strip() else line)]


def _ban_mask(rest: str, usage: str) -> str:
    word = need(rest, usage).split()[0]
    if not valid_mask(word) or (("!" not in word and "@" not in word) and not valid_nick(word)):
        raise CommandError(f"{word!r} is not a nick or nick!user@host mask")
    return normal_mask(word)


@MODERATION.command("ban", "/ban [#room] <nick|mask>", "ban a nick (as nick!*@*) or mask (ops)")
def _ban(args: str, state: ChatState) -> list[Effect]:
    room, rest = room_and_rest(args, state, "/ban")
    return [Send(f"MODE {room} +b {_ban_mask(rest, MODERATION.usage('ban'))}")]


@MODERATION.command("unban", "/unban [#room] <nick|mask>", "lift a ban (ops)")
def _unban(args: str, state: ChatState) -> list[Effect]:
    room, rest = room_and_rest(args, state, "/unban")
    return [Send(f"MODE {room} -b {_ban_mask(rest, MODERATION.usage('unban'))}")]


@MODERATION.command("mode", "/mode [target] <modes> [args]", "show or change room or user modes")
def _mode(args: str, state: ChatState) -> list[Effect]:
    words = args.split()
    if not words or words[0][0] in "+-":  # no target: the current room
        words.insert(0, channel_here(state, "/mode without a target"))
    target = words[0]
    if not (is_channel(target) or valid_nick(target)):
        raise CommandError(f"{target!r} is not a room or nick")
    modes = words[1] if len(words) > 1 else "+"
    if modes[0] not in "+-" or not all(c.isalpha() or c in "+-" for c in modes):
        raise CommandError(f"{words[1]!r} are not modes — e.g. +m, -t, +o nick")
    return [Send(" ".join(["MODE", *words]))]


@MODERATION.command("invite", "/invite <nick> [#room]", "invite someone to this room (or #room)")
def _invite(args: str, state: ChatState) -> list[Effect]:
    nick, _, rest = need(args, MODERATION.usage("invite")).partition(" ")
    room = rest.strip() or channel_here(state, "/invite without a room")
    if not valid_channel(room_name(room)):
        raise CommandError(f"{room!r} is not a valid room name")
    return [Send(f"INVITE {nick_arg(nick)} {room_name(room)}")]


@MODERATION.command("ignore", "/ignore [nick|mask]", "hide someone's messages (no argument: list)")
def _ignore(args: str, state: ChatState) -> list[Effect]:
    word = args.strip()
    if not word:
        masks = state.ignores.masks
        return [Note(f"ignored: {', '.join(masks)}" if masks else "nobody is ignored")]
    if " " in word or not valid_mask(word):
        raise CommandError(f"{word!r} is not a nick or nick!user@host mask")
    mask = state.ignores.add(word)
    if mask is None:
        return [Note(f"{normal_mask(word)} is already ignored")]
    return [Note(f"ignoring {mask} for this session (to keep it, add it to ignore = [...] "
                 "in chat-tui.toml)")]  # fmt: skip


@MODERATION.command("unignore", "/unignore <nick|mask>", "stop ignoring someone")
def _unignore(args: str, state: ChatState) -> list[Effect]:
    word = need(args, MODERATION.usage("unignore"))
    mask = state.ignores.remove(word)
    if mask is None:
        raise CommandError(f"{word} is not ignored — /ignore lists who is")
    return [Note(f"no longer ignoring {mask} (for this session)")]
