"""Questions about users: WHO, WHOIS, WHOWAS, USERHOST, ISON, and AWAY that they show.

(What the server says about itself, LUSERS, MOTD, VERSION, TIME, INFO, is in
server_info.py.)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message
from chat_protocol.numbers import ascii_int
from chat_server.handlers import presence
from chat_server.masks import compile_mask, has_wildcards
from chat_server.model import member_prefix

if TYPE_CHECKING:
    from chat_server.model import Channel, User
    from chat_server.server import Server


def handle_away(server: Server, user: User, msg: Message) -> None:
    text = msg.param(0)
    before = user.away
    if text:
        user.away = text[:390]
        server.out.reply(user, N.RPL_NOWAWAY, "You have been marked as being away")
    else:
        user.away = None
        server.out.reply(user, N.RPL_UNAWAY, "You are no longer marked as being away")
    presence.away_changed(server, user, before)


def _who_flags(user: User, prefix: str, multi: bool) -> str:
    flags = "G" if user.away is not None else "H"
    if user.is_oper:
        flags += "*"
    if user.is_bot:
        flags += "B"
    return flags + member_prefix(prefix, multi)


def _who_line(server: Server, asker: User, chan_name: str, target: User, prefix: str) -> None:
    flags = _who_flags(target, prefix, "multi-prefix" in asker.caps)
    server.out.reply(
        asker,
        N.RPL_WHOREPLY,
        chan_name,
        target.username,
        target.host,
        server.name,
        target.nick,
        flags,
        f"0 {target.realname}",
    )


# A masked WHO used to look at every user with fnmatch: 12-30 ms at 10,000 users, so
# six flood-limited clients could stall everyone for seconds. It now looks at no more
# than WHO_SCAN_LIMIT users with one compiled mask (1.3 ms at worst, measured with
# 10,000 users), answers at most WHO_RESULT_LIMIT, and costs WHO_MASK_COST flood tokens
# in all, so one client keeps it to a few ms per second.
WHO_SCAN_LIMIT = 2000
WHO_RESULT_LIMIT = 200
WHO_MASK_COST = 4


def handle_who(server: Server, user: User, msg: Message) -> None:
    mask = msg.param(0, "*")
    if is_channel(mask):
        chan = server.channels.get(casefold(mask))
        if chan is not None:
            inside = user in chan.members
            if inside or "s" not in chan.modes:
                for member, prefix in list(chan.members.items()):
                    if inside or not member.invisible:
                        _who_line(server, user, chan.name, member, prefix)
    else:
        exact = server.find_user(mask)  # a nick is one dict lookup, invisible or not
        if exact is not None:
            _who_user(server, user, exact)
        elif has_wildcards(mask) or any(c in mask for c in "!@.:"):
            _charge(server, user, WHO_MASK_COST - 1)  # the line itself cost one
            for target in _who_matches(server, user, mask):
                _who_user(server, user, target)
    server.out.reply(user, N.RPL_ENDOFWHO, mask, "End of WHO list")


def _who_matches(server: Server, asker: User, mask: str) -> Iterator[User]:
    """Visible users whose nick or ``nick!user@host`` fits ``mask``, within the limits.

    Visible: not invisible (+i), or sharing a room with the asker, or the asker.
    """
    match = compile_mask(mask).match
    found = 0
    for target in itertools.islice(server.users.values(), WHO_SCAN_LIMIT):
        if (match(target.nick) or match(target.source)) and (
            not target.invisible or target is asker or _share_a_room(asker, target)
        ):
            yield target
            found += 1
            if found >= WHO_RESULT_LIMIT:
                return


def _share_a_room(one: User, other: User) -> bool:
    if len(one.channels) > len(other.channels):
        one, other = other, one
    return any(other in chan.members for chan in one.channels.values())


def _charge(server: Server, user: User, tokens: int) -> None:
    """Take flood tokens beyond the command's own for work that costs more than a line."""
    conn = user.conn
    if server.config.flood_limit and conn is not None:
        conn.tokens -= tokens


def _who_user(server: Server, asker: User, target: User) -> None:
    chan = _channel_for_who(asker, target)
    if chan is None:
        _who_line(server, asker, "*", target, "")
    else:
        _who_line(server, asker, chan.name, target, chan.members[target])


def _channel_for_who(asker: User, target: User) -> Channel | None:
    """The room a WHO line names: one the asker shares with the target if there is
    one, else the target's first public (not +s) room unless the target is invisible."""
    first: Channel | None = None
    for chan in target.channels.values():
        if asker in chan.members:
            return chan
        if first is None and "s" not in chan.modes:
            first = chan
    return None if target.invisible else first


def handle_whois(server: Server, user: User, msg: Message) -> None:
    nick = msg.params[-1].split(",")[0]
    target = server.find_user(nick)
    if target is None:
        server.out.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        server.out.reply(user, N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
        return
    server.out.reply(
        user, N.RPL_WHOISUSER, target.nick, target.username, target.host, "*", target.realname
    )
    multi = "multi-prefix" in user.caps
    chans = [
        member_prefix(c.members[target], multi) + c.name
        for c in target.channels.values()
        if user in c.members or not (target.invisible or "s" in c.modes)
    ]
    if chans:
        server.out.reply(user, N.RPL_WHOISCHANNELS, target.nick, " ".join(chans))
    server.out.reply(user, N.RPL_WHOISSERVER, target.nick, server.name, "distchat")
    if target.away is not None:
        server.out.reply(user, N.RPL_AWAY, target.nick, target.away)
    if target.is_oper:
        server.out.reply(user, N.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
    if target.is_bot:
        server.out.reply(user, N.RPL_WHOISBOT, target.nick, "is a bot")
    if target.account is not None:
        server.out.reply(user, N.RPL_WHOISACCOUNT, target.nick, target.account, "is logged in as")
    if target.conn is not None and target.conn.tls:  # (a cluster's remote users: not known)
        server.out.reply(user, N.RPL_WHOISSECURE, target.nick, "is using a secure connection")
    idle = int(time.time() - target.last_spoke)
    server.out.reply(
        user,
        N.RPL_WHOISIDLE,
        target.nick,
        str(idle),
        str(int(target.signon)),
        "seconds idle, signon time",
    )
    server.out.reply(user, N.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list")


def handle_whowas(server: Server, user: User, msg: Message) -> None:
    """Former users of a nick (quits and nick changes), newest first: 314 and 312 each,
    or 406; then 369. ``<count>`` limits the entries; 0, negative or none means all."""
    if not msg.params or not msg.params[0]:
        server.out.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0].split(",")[0]  # TARGMAX WHOWAS:1
    entries = server.records.whowas.lookup(nick, ascii_int(msg.param(1)) or None)
    if not entries:
        server.out.reply(user, N.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    for entry in entries:
        server.out.reply(
            user, N.RPL_WHOWASUSER, entry.nick, entry.username, entry.host, "*", entry.realname
        )
        when = time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(entry.when))
        server.out.reply(user, N.RPL_WHOISSERVER, entry.nick, server.name, when)
    server.out.reply(user, N.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


def handle_userhost(server: Server, user: User, msg: Message) -> None:
    parts = []
    for nick in msg.params[:5]:
        target = server.find_user(nick)
        if target is not None:
            oper = "*" if target.is_oper else ""
            away = "-" if target.away is not None else "+"
            parts.append(f"{target.nick}{oper}={away}{target.username}@{target.host}")
    server.out.reply(user, N.RPL_USERHOST, " ".join(parts))


def handle_ison(server: Server, user: User, msg: Message) -> None:
    nicks = " ".join(msg.params).split()
    online = [u.nick for n in nicks if (u := server.find_user(n)) is not None]
    server.out.reply(user, N.RPL_ISON, " ".join(online))
