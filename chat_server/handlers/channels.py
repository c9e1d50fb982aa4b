"""Rooms: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel, valid_channel
from chat_protocol.message import Message
from chat_protocol.numbers import ascii_int
from chat_server.connection import PAUSED_HISTORY
from chat_server.deferred import Deferred
from chat_server.handlers import presence
from chat_server.handlers.chathistory import send_history_batch
from chat_server.handlers.readmarker import CAP as MARKER_CAP
from chat_server.handlers.readmarker import marker_line, owner_of
from chat_server.masks import compile_mask, has_wildcards
from chat_server.model import Channel, member_prefix
from chat_server.room_settings import apply_meta

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

MAX_LIST_ARGS = 10  # filters and names one LIST looks at; each one costs a pass per room


def handle_join(server: Server, user: User, msg: Message) -> None:
    if msg.params[0] == "0":
        for chan in list(user.channels.values()):
            part(server, user, chan, "Left all channels")
        return
    names = msg.params[0].split(",")[: server.config.max_channels_per_user]
    keys = msg.param(1).split(",") if len(msg.params) > 1 else []
    new = [
        folded
        for folded in dict.fromkeys(casefold(name) for name in names if name)
        if folded not in user.channels
    ]
    cold = [folded for folded in new if not server.history.ready(folded)]
    markers = new if MARKER_CAP in user.caps and user.join_markers is None else []
    if (cold or markers) and wait_for_history(server, user, cold, markers):
        return
    try:
        for i, name in enumerate(names):
            if name:
                join(server, user, name, keys[i] if i < len(keys) else None)
    finally:
        user.join_markers = None


def wait_for_history(server: Server, user: User, rooms: list[str], markers: list[str]) -> bool:
    """Have what a JOIN needs from history before it is handled, so it is answered
    without the disk on the loop: cold ``rooms`` loaded (newest messages, saved
    settings), the read markers of ``markers`` fetched (draft/read-marker). True when
    the JOIN waits and runs again once both are in."""
    waiting = 0
    deferred: Deferred | None = None

    def one_done() -> None:
        nonlocal waiting
        waiting -= 1
        if waiting == 0 and deferred is not None:
            server.resume(deferred.conn, PAUSED_HISTORY)

    def got_markers(ok: bool, value: Any) -> None:
        # The worker failed: "*" for each (unknown) rather than no MARKREAD at all.
        found = dict(value) if ok else {}
        user.join_markers = {room: found.get(room) for room in markers}
        one_done()

    if rooms:
        waiting += 1
        server.history.load(rooms, one_done)
    if markers:
        waiting += 1
        server.history.ask("markers", (owner_of(user), markers), got_markers)
    if waiting == 0:
        return False
    deferred = server.defer(user, rerun=True)
    return deferred is not None


def restored_room(server: Server, name: str, folded: str, settings: dict[str, Any]) -> Channel:
    """A new room, with the settings its history file kept (key, modes, bans, topic):
    a room that emptied comes back as it was, so its history stays its members'."""
    chan = Channel(name)
    if settings:
        try:
            apply_meta(chan, settings)
            saved = str(settings.get("name") or name)
            chan.name = saved if casefold(saved) == folded else name
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            server.client_log.warning("history", "settings of %s not restored: %s", name, exc)
            return Channel(name)
    return chan


def join(server: Server, user: User, name: str, key: str | None) -> None:
    folded = casefold(name)
    if folded in user.channels:
        return
    chan = server.channels.get(folded)
    if chan is None and not valid_channel(name, server.config.channel_len):
        server.out.reply(user, N.ERR_BADCHANMASK, name, "Bad channel name")
        return
    if len(user.channels) >= server.config.max_channels_per_user:
        server.out.reply(user, N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
        return
    saved = server.history.room_settings(folded) if chan is None else None
    restored = saved is not None
    if saved is not None:
        chan = restored_room(server, name, folded, saved)
    if chan is not None:
        invited = user.folded in chan.invites
        if "i" in chan.modes and not invited:
            server.out.reply(user, N.ERR_INVITEONLYCHAN, chan.name, "Cannot join channel (+i)")
            return
        if chan.key is not None and key != chan.key and not invited:
            server.out.reply(user, N.ERR_BADCHANNELKEY, chan.name, "Cannot join channel (+k)")
            return
        if chan.limit is not None and len(chan.members) >= chan.limit and not invited:
            server.out.reply(user, N.ERR_CHANNELISFULL, chan.name, "Cannot join channel (+l)")
            return
        if not invited and chan.is_banned(user):
            server.out.reply(user, N.ERR_BANNEDFROMCHAN, chan.name, "Cannot join channel (+b)")
            return
        if "R" in chan.modes and user.account is None and not invited:
            server.out.reply(user, N.ERR_NEEDREGGEDNICK, chan.name,
                             "Cannot join channel (+R): log in to an account first")  # fmt: skip
            return
        if restored:  # whoever brings a room back (past its key and bans) runs it
            server.channels[folded] = chan
            chan.add_member(user, "@")
        else:
            chan.add_member(user)
    else:
        chan = Channel(name)
        server.channels[folded] = chan
        server.history.room_opened(folded)
        chan.add_member(user, "@")
    announce_join(server, user, chan)
    presence.joined(server, user, chan)
    if user.join_markers is not None:  # draft/read-marker: after the JOIN, before 366
        server.out.send_raw(user, marker_line(server, chan.name, user.join_markers.get(folded)))
    if chan.topic:
        send_topic(server, user, chan)
    send_names(server, user, chan)
    replay_on_join(server, user, chan)


def announce_join(server: Server, user: User, chan: Channel) -> None:
    """The JOIN line to the room: ``JOIN #room <account|*> :<realname>`` for members
    with extended-join, plain ``JOIN #room`` for the rest."""
    extended = [m for m in chan.members if "extended-join" in m.caps]
    if not extended:
        server.delivery.deliver(chan, user.source, "JOIN", [chan.name], account=user.account)
        return
    plain = [m for m in chan.members if "extended-join" not in m.caps]
    if plain:
        server.delivery.deliver(plain, user.source, "JOIN", [chan.name], account=user.account)
    params = [chan.name, user.account or "*", user.realname]
    server.delivery.deliver(extended, user.source, "JOIN", params, account=user.account)


def replay_on_join(server: Server, user: User, chan: Channel) -> None:
    """Send the room's recent messages in a chathistory batch (batch + server-time)."""
    limit = server.config.history_on_join
    if limit <= 0 or not {"batch", "server-time"} <= user.caps:
        return
    messages = server.history.replay(chan.folded, limit)  # from memory (recent.py)
    if messages:
        send_history_batch(server, user, chan.name, messages)


def part(server: Server, user: User, chan: Channel, reason: str) -> None:
    params = [chan.name, reason] if reason else [chan.name]
    server.delivery.deliver(chan, user.source, "PART", params, account=user.account)
    server.remove_member(chan, user)


def handle_part(server: Server, user: User, msg: Message) -> None:
    reason = msg.param(1)[:390]
    for name in msg.params[0].split(","):
        chan = server.channels.get(casefold(name))
        if chan is None:
            server.out.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif user not in chan.members:
            server.out.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        else:
            part(server, user, chan, reason)


def send_topic(server: Server, user: User, chan: Channel) -> None:
    if not chan.topic:
        server.out.reply(user, N.RPL_NOTOPIC, chan.name, "No topic is set")
        return
    server.out.reply(user, N.RPL_TOPIC, chan.name, chan.topic)
    server.out.reply(
        user, N.RPL_TOPICWHOTIME, chan.name, chan.topic_set_by, str(int(chan.topic_set_at))
    )


def handle_topic(server: Server, user: User, msg: Message) -> None:
    name = msg.params[0]
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.out.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if len(msg.params) < 2:
        if user not in chan.members and "s" in chan.modes:
            server.out.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        else:
            send_topic(server, user, chan)
        return
    if user not in chan.members:
        server.out.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return
    if "t" in chan.modes and not chan.is_op(user):
        server.out.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    chan.topic = msg.params[1][: server.config.topic_len]
    chan.topic_set_by = user.source
    chan.topic_set_at = time.time()
    server.delivery.deliver(
        chan, user.source, "TOPIC", [chan.name, chan.topic], account=user.account
    )
    server.room_changed(chan)


def names_entry(member: User, prefix: str, caps: frozenset[str]) -> str:
    shown = member_prefix(prefix, "multi-prefix" in caps)
    return shown + (member.source if "userhost-in-names" in caps else member.nick)


def send_names(server: Server, user: User, chan: Channel) -> None:
    """353 lines (as many as fit in 512 bytes) then 366.

    A secret (+s) room shows ``@`` as its type and nothing to non-members; invisible
    (+i) users are shown to members only.
    """
    inside = user in chan.members
    secret = "s" in chan.modes
    if secret and not inside:
        server.out.reply(user, N.RPL_ENDOFNAMES, chan.name, "End of /NAMES list")
        return
    entries = [
        names_entry(m, p, user.caps) for m, p in chan.members.items() if inside or not m.invisible
    ]
    kind = "@" if secret else "="
    head = f":{server.name} {N.RPL_NAMREPLY} {user.nick} {kind} {chan.name} :"
    room = 510 - len(head.encode())
    line: list[str] = []
    used = 0
    for entry in entries:
        size = len(entry.encode()) + 1
        if line and used + size > room:
            server.out.send_raw(user, head + " ".join(line))
            line, used = [], 0
        line.append(entry)
        used += size
    if line:
        server.out.send_raw(user, head + " ".join(line))
    server.out.reply(user, N.RPL_ENDOFNAMES, chan.name, "End of /NAMES list")


def handle_names(server: Server, user: User, msg: Message) -> None:
    if not msg.params:
        server.out.reply(user, N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        chan = server.channels.get(casefold(name))
        if chan is None:
            server.out.reply(user, N.RPL_ENDOFNAMES, name, "End of /NAMES list")
        else:
            send_names(server, user, chan)


def handle_list(server: Server, user: User, msg: Message) -> None:
    """LIST with the ELIST=MNU filters: names or masks (``#c*``), ``!mask`` to leave
    out, ``>N`` / ``<N`` members. Secret rooms are listed to their members only."""
    query = ListQuery.parse(msg.param(0))
    server.out.reply(user, N.RPL_LISTSTART, "Channel", "Users  Name")
    for chan in sorted(server.channels.values(), key=lambda c: c.folded):
        if "s" in chan.modes and user not in chan.members:
            continue
        if query.wants(chan):
            server.out.reply(user, N.RPL_LIST, chan.name, str(len(chan.members)), chan.topic)
    server.out.reply(user, N.RPL_LISTEND, "End of /LIST")


class ListQuery:
    """The filters of one LIST command; anything it cannot read is left out."""

    __slots__ = ("exclude", "max_users", "min_users", "names", "patterns")

    def __init__(self) -> None:
        self.names: set[str] = set()  # casefolded room names asked for by name
        self.patterns: list[re.Pattern[str]] = []  # masks asked for (M)
        self.exclude: list[re.Pattern[str]] = []  # masks left out (N)
        self.min_users = 0
        self.max_users: int | None = None

    @classmethod
    def parse(cls, text: str) -> ListQuery:
        query = cls()
        for arg in text.split(",")[:MAX_LIST_ARGS]:
            number = ascii_int(arg[1:])  # None unless ASCII digits follow: ">²" is none
            if arg.startswith(">") and number is not None:
                query.min_users = max(query.min_users, number + 1)
            elif arg.startswith("<") and number is not None:
                below = query.max_users
                query.max_users = number if below is None else min(number, below)
            elif arg.startswith("!") and len(arg) > 1:
                query.exclude.append(compile_mask(arg[1:]))
            elif has_wildcards(arg):
                query.patterns.append(compile_mask(arg))
            elif is_channel(arg):
                query.names.add(casefold(arg))
        return query

    def wants(self, chan: Channel) -> bool:
        count = len(chan.members)
        if count < self.min_users or (self.max_users is not None and count >= self.max_users):
            return False
        if any(p.match(chan.name) for p in self.exclude):
            return False
        if not (self.names or self.patterns):
            return True
        return chan.folded in self.names or any(p.match(chan.name) for p in self.patterns)


def handle_kick(server: Server, user: User, msg: Message) -> None:
    name = msg.params[0]
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.out.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if user not in chan.members:
        server.out.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return
    if not chan.is_op(user):
        server.out.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    reason = msg.param(2, user.nick)[:390]
    for nick in msg.params[1].split(","):
        target = server.find_user(nick)
        if target is None or target not in chan.members:
            server.out.reply(
                user, N.ERR_USERNOTINCHANNEL, nick, chan.name, "They aren't on that channel"
            )
            continue
        server.delivery.deliver(
            chan, user.source, "KICK", [chan.name, target.nick, reason], account=user.account
        )
        server.remove_member(chan, target)


def handle_invite(server: Server, user: User, msg: Message) -> None:
    if len(msg.params) < 2:
        server.out.reply(user, N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    nick, name = msg.params[0], msg.params[1]
    target = server.find_user(nick)
    if target is None:
        server.out.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    chan = server.channels.get(casefold(name))
    if chan is None:
        server.out.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if user not in chan.members:
        server.out.reply(user, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return
    if "i" in chan.modes and not chan.is_op(user):
        server.out.reply(user, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        return
    if target in chan.members:
        server.out.reply(user, N.ERR_USERONCHANNEL, target.nick, chan.name, "is already on channel")
        return
    chan.invites.add(target.folded)
    server.out.reply(user, N.RPL_INVITING, target.nick, chan.name)
    server.delivery.deliver(
        [target], user.source, "INVITE", [target.nick, chan.name], account=user.account
    )
    if target.away is not None:
        server.out.reply(user, N.RPL_AWAY, target.nick, target.away)
