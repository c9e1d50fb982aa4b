"""MODE for users (+i +B, +o via OPER) and rooms (+i +m +n +s +t +k +l +o +v +b)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message
from chat_protocol.numbers import ascii_int
from chat_server.masks import MAX_MASK_LEN, normalize_ban_mask
from chat_server.model import MAX_BANS

if TYPE_CHECKING:
    from chat_server.model import Channel, User
    from chat_server.server import Server

USER_MODES_SETTABLE = "iB"
CHANNEL_FLAGS = "Rimnst"  # R: only logged-in users may join (accounts.py)
PREFIX_MODES = {"o": "@", "v": "+"}
MAX_MODE_CHANGES = 4


def handle_mode(server: Server, user: User, msg: Message) -> None:
    target = msg.params[0]
    if is_channel(target):
        channel_mode(server, user, target, msg.params[1:])
    else:
        user_mode(server, user, target, msg.params[1:])


def user_mode(server: Server, user: User, nick: str, args: list[str]) -> None:
    other = server.find_user(nick)
    if other is None:
        server.out.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    if other is not user:
        server.out.reply(user, N.ERR_USERSDONTMATCH, "Cannot change mode for other users")
        return
    if not args:
        server.out.reply(user, N.RPL_UMODEIS, "+" + user.modes)
        return
    adding = True
    added, removed = "", ""
    unknown = False
    for ch in args[0]:
        if ch in "+-":
            adding = ch == "+"
        elif ch in USER_MODES_SETTABLE or (ch == "o" and not adding):
            if adding:
                added += ch
            else:
                removed += ch
        elif ch != "o":  # +o only comes from OPER
            unknown = True
    if unknown:
        server.out.reply(user, N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    change = server.change_user_modes(user, added, removed)
    if change:
        server.delivery.deliver(
            [user], user.source, "MODE", [user.nick, change], account=user.account
        )


def channel_mode(server: Server, user: User, name: str, args: list[str]) -> None:
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.out.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if not args:
        modes, params = chan.mode_string(with_key=user in chan.members)
        server.out.reply(user, N.RPL_CHANNELMODEIS, chan.name, modes, *params)
        server.out.reply(user, N.RPL_CREATIONTIME, chan.name, str(int(chan.created)))
        return
    if len(args) == 1 and args[0].strip("+-") and not args[0].strip("+-b"):
        send_ban_list(server, user, chan)  # "MODE #room b" / "+b": anyone may look
        return
    if not chan.is_op(user):
        server.out.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    apply_channel_modes(server, user, chan, args)


def apply_channel_modes(server: Server, user: User, chan: Channel, args: list[str]) -> None:
    """Apply a mode string with its parameters; broadcast what actually changed."""
    adding = True
    params = iter(args[1:])
    applied: list[tuple[bool, str, str | None]] = []
    listed = False
    for ch in args[0]:
        if ch in "+-":
            adding = ch == "+"
            continue
        if len(applied) >= MAX_MODE_CHANGES:
            break
        if ch in CHANNEL_FLAGS:
            if adding != (ch in chan.modes):
                (chan.modes.add if adding else chan.modes.discard)(ch)
                applied.append((adding, ch, None))
        elif ch == "k":
            key = next(params, None)
            if adding:
                if not key or " " in key or "," in key:
                    server.out.reply(user, N.ERR_INVALIDKEY, chan.name, "Key is not well-formed")
                    continue
                chan.key = key
                applied.append((True, "k", key))
            elif chan.key is not None:
                chan.key = None
                applied.append((False, "k", "*"))
        elif ch == "l":
            if adding:
                raw = next(params, None)
                limit = ascii_int(raw or "")  # not isdigit(): "²" is a digit to it
                if not limit:
                    server.out.reply(
                        user, N.ERR_INVALIDMODEPARAM, chan.name, "l", raw or "*", "Invalid limit"
                    )
                    continue
                chan.limit = limit
                applied.append((True, "l", str(limit)))
            elif chan.limit is not None:
                chan.limit = None
                applied.append((False, "l", None))
        elif ch in PREFIX_MODES:
            nick = next(params, None)
            if nick is None:
                server.out.reply(user, N.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                continue
            target = server.find_user(nick)
            if target is None:
                server.out.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
                continue
            if target not in chan.members:
                server.out.reply(
                    user, N.ERR_USERNOTINCHANNEL, nick, chan.name, "They aren't on that channel"
                )
                continue
            symbol = PREFIX_MODES[ch]
            current = chan.members[target]
            if adding and symbol not in current:
                chan.set_prefix(target, "".join(s for s in "@+" if s in current + symbol))
                applied.append((True, ch, target.nick))
            elif not adding and symbol in current:
                chan.set_prefix(target, current.replace(symbol, ""))
                applied.append((False, ch, target.nick))
        elif ch == "b":
            mask = next(params, None)
            if not mask:
                if not listed:
                    send_ban_list(server, user, chan)
                    listed = True
                continue
            change = change_ban(server, user, chan, adding, mask)
            if change is not None:
                applied.append((adding, "b", change))
        else:
            server.out.reply(user, N.ERR_UNKNOWNMODE, ch, "is unknown mode char to me")
    if applied:
        server.delivery.deliver(
            chan, user.source, "MODE", [chan.name, *format_changes(applied)], account=user.account
        )
        server.room_changed(chan)


def change_ban(server: Server, user: User, chan: Channel, adding: bool, mask: str) -> str | None:
    """Add or remove a ban; the mask as changed (``nick!user@host``), or None."""
    full = normalize_ban_mask(mask)
    if len(full) > MAX_MASK_LEN:
        server.out.reply(user, N.ERR_INVALIDMODEPARAM, chan.name, "b", mask, "Mask is too long")
        return None
    if not adding:
        removed = chan.remove_ban(full)
        return None if removed is None else removed.mask
    if casefold(full) in chan.bans:
        return None
    if len(chan.bans) >= MAX_BANS:
        server.out.reply(user, N.ERR_BANLISTFULL, chan.name, "b", "Channel ban list is full")
        return None
    chan.add_ban(full, user.source, time.time())
    return full


def send_ban_list(server: Server, user: User, chan: Channel) -> None:
    """367 per ban (mask, who set it, when), then 368."""
    for ban in chan.bans.values():
        server.out.reply(user, N.RPL_BANLIST, chan.name, ban.mask, ban.set_by, str(int(ban.set_at)))
    server.out.reply(user, N.RPL_ENDOFBANLIST, chan.name, "End of channel ban list")


def format_changes(applied: list[tuple[bool, str, str | None]]) -> list[str]:
    """``[(True,'o','bob'),(False,'t',None)]`` → ``['+o-t', 'bob']``."""
    letters = ""
    params: list[str] = []
    sign = ""
    for adding, ch, param in applied:
        want = "+" if adding else "-"
        if want != sign:
            letters += want
            sign = want
        letters += ch
        if param is not None:
            params.append(param)
    return [letters, *params]
