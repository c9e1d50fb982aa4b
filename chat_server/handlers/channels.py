"""Rooms: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel, valid_channel
from chat_protocol.message import Message
from chat_server.commands import command
from chat_server.model import Channel, member_prefix

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server


@command("JOIN", min_params=1)
def handle_join(server: Server, user: User, msg: Message) -> None:
    if msg.params[0] == "0":
        for chan in list(user.channels.values()):
            part(server, user, chan, "Left all channels")
        return
    names = msg.params[0].split(",")
    keys = msg.param(1).split(",") if len(msg.params) > 1 else []
    for i, name in enumerate(names):
        if name:
            join(server, user, name, keys[i] if i < len(keys) else None)


def join(server: Server, user: User, name: str, key: str | None) -> None:
    folded = casefold(name)
    if folded in user.channels:
        return
    chan = server.channels.get(folded)
    if chan is None and not valid_channel(name, server.config.channel_len):
        server.reply(user, N.ERR_BADCHANMASK, name, "Bad channel name")
        return
    if len(user.channels) >= server.config.max_channels_per_user:
        server.reply(user, N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
        return
    if chan is not None:
        invited = user.folded in chan.invites
        if "i" in chan.modes and not invited:
            server.reply(user, N.ERR_INVITEONLYCHAN, chan.name, "Cannot join channel (+i)")
            return
        if chan.key is not None and key != chan.key and not invited:
            server.reply(user, N.ERR_BADCHANNELKEY, chan.name, "Cannot join channel (+k)")
            return
        if chan.limit is not None and len(chan.members) >= chan.limit and not invited:
            server.reply(user, N.ERR_CHANNELISFULL, chan.name, "Cannot join channel (+l)")
            return
        chan.invites.discard(user.folded)
        chan.members[user] = ""
        chan.groups = None
    else:
        chan = Channel(name)
        server.channels[folded] = chan
        chan.members[user] = "@"
    user.channels[folded] = chan
    server.deliver(chan, user.source, "JOIN", [chan.name])
    if chan.topic:
        send_topic(server, user, chan)
    send_names(server, user, chan)
    replay_on_join(server, user, chan)


def replay_on_join(server: Server, user: User, chan: Channel) -> None:
    """Send the room's recent messages in a chathistory batch (batch + server-time)."""
    limit = server.config.history_on_join
    if limit <= 0 or not {"batch", "server-time"} <= user.caps:
        return
    from chat_server.handlers.chathistory import send_history_batch

    messages = server.history.latest(chan.folded, limit)
    if messages:
        send_history_batch(server, user, chan.name, messages)


def part(server: Server, user: User, chan: Channel, reason: str) -> None:
    params = [chan.name, reason] if reason else [chan.name]
    server.deliver(chan, user.source, "PART", params)
    server.remove_member(chan, user)


@command("PART", min_params=1)
def handle_part(server: Server, user: User, msg: Message) -> None:
    reason = msg.param(1)[:390]
    for name in msg.params[0].split(","):
        chan = server.channels.get(casefold(name))
        if chan is None:
            server.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif user not in chan.members:
            server.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        else:
            part(server, user, chan, reason)


def send_topic(server: Server, user: User, chan: Channel) -> None:
    if not chan.topic:
        server.reply(user, N.RPL_NOTOPIC, chan.name, "No topic is set")
        return
    server.reply(user, N.RPL_TOPIC, chan.name, chan.topic)
    server.reply(
        user, N.RPL_TOPICWHOTIME, chan.name, chan.topic_set_by, str(int(chan.topic_set_at))
    )


@command("TOPIC", min_params=1)
def handle_topic(server: Server, user: User, msg: Message) -> None:
    name = msg.params[0]
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if len(msg.params) < 2:
        if user not in chan.members and "s" in chan.modes:
            server.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        else:
            send_topic(server, user, chan)
        return
    if user not in chan.members:
        server.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return
    if "t" in chan.modes and not chan.is_op(user):
        server.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    chan.topic = msg.params[1][: server.config.topic_len]
    chan.topic_set_by = user.source
    chan.topic_set_at = time.time()
    server.deliver(chan, user.source, "TOPIC", [chan.name, chan.topic])


def names_entry(member: User, prefix: str, caps: frozenset[str]) -> str:
    shown = member_prefix(prefix, "multi-prefix" in caps)
    return shown + (member.source if "userhost-in-names" in caps else member.nick)


def send_names(server: Server, user: User, chan: Channel) -> None:
    """353 lines (as many as fit in 512 bytes) then 366."""
    visible = user in chan.members
    entries = [
        names_entry(m, p, user.caps) for m, p in chan.members.items() if visible or not m.invisible
    ]
    head = f":{server.name} {N.RPL_NAMREPLY} {user.nick} = {chan.name} :"
    room = 510 - len(head.encode())
    line: list[str] = []
    used = 0
    for entry in entries:
        size = len(entry.encode()) + 1
        if line and used + size > room:
            server.send_raw(user, head + " ".join(line))
            line, used = [], 0
        line.append(entry)
        used += size
    if line:
        server.send_raw(user, head + " ".join(line))
    server.reply(user, N.RPL_ENDOFNAMES, chan.name, "End of /NAMES list")


@command("NAMES")
def handle_names(server: Server, user: User, msg: Message) -> None:
    if not msg.params:
        server.reply(user, N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        chan = server.channels.get(casefold(name))
        if chan is None:
            server.reply(user, N.RPL_ENDOFNAMES, name, "End of /NAMES list")
        else:
            send_names(server, user, chan)


@command("LIST")
def handle_list(server: Server, user: User, msg: Message) -> None:
    server.reply(user, N.RPL_LISTSTART, "Channel", "Users  Name")
    wanted = None
    min_users = 0
    for arg in msg.param(0).split(","):
        if is_channel(arg):
            wanted = (wanted or set()) | {casefold(arg)}
        elif arg.startswith(">") and arg[1:].isdigit():
            min_users = int(arg[1:]) + 1
    for chan in sorted(server.channels.values(), key=lambda c: c.folded):
        if wanted is not None and chan.folded not in wanted:
            continue
        if len(chan.members) < min_users:
            continue
        if "s" in chan.modes and user not in chan.members:
            continue
        server.reply(user, N.RPL_LIST, chan.name, str(len(chan.members)), chan.topic)
    server.reply(user, N.RPL_LISTEND, "End of /LIST")


@command("KICK", min_params=2)
def handle_kick(server: Server, user: User, msg: Message) -> None:
    name = msg.params[0]
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if user not in chan.members:
        server.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return
    if not chan.is_op(user):
        server.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    reason = msg.param(2, user.nick)[:390]
    for nick in msg.params[1].split(","):
        target = server.find_user(nick)
        if target is None or target not in chan.members:
            server.reply(
                user, N.ERR_USERNOTINCHANNEL, nick, chan.name, "They aren't on that channel"
            )
            continue
        server.deliver(chan, user.source, "KICK", [chan.name, target.nick, reason])
        server.remove_member(chan, target)


@command("INVITE")
def handle_invite(server: Server, user: User, msg: Message) -> None:
    if len(msg.params) < 2:
        server.reply(user, N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    nick, name = msg.params[0], msg.params[1]
    target = server.find_user(nick)
    if target is None:
        server.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if user not in chan.members:
        server.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return
    if "i" in chan.modes and not chan.is_op(user):
        server.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    if target in chan.members:
        server.reply(user, N.ERR_USERONCHANNEL, target.nick, chan.name, "is already on channel")
        return
    chan.invites.add(target.folded)
    server.reply(user, N.RPL_INVITING, target.nick, chan.name)
    server.deliver([target], user.source, "INVITE", [target.nick, chan.name])
    if target.away is not None:
        server.reply(user, N.RPL_AWAY, target.nick, target.away)
