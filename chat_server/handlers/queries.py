"""Questions about users and the server: WHO, WHOIS, LUSERS, MOTD, AWAY and friends."""

from __future__ import annotations

import fnmatch
import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message
from chat_server import VERSION
from chat_server.commands import command
from chat_server.model import member_prefix
from chat_server.replies import NICK_SLOT

if TYPE_CHECKING:
    from chat_server.model import Channel, User
    from chat_server.server import Server


# 251-255, 265 and 266, with a %d for every number they carry.
_LUSERS = (
    (N.RPL_LUSERCLIENT, ":There are %d users and %d invisible on %d servers"),
    (N.RPL_LUSEROP, "%d :operator(s) online"),
    (N.RPL_LUSERUNKNOWN, "%d :unknown connection(s)"),
    (N.RPL_LUSERCHANNELS, "%d :channels formed"),
    (N.RPL_LUSERME, ":I have %d clients and %d servers"),
    (N.RPL_LOCALUSERS, "%d %d :Current local users %d"),
    (N.RPL_GLOBALUSERS, "%d %d :Current global users %d"),
)


def lusers_block(server: Server, nick: str) -> str:
    """The LUSERS numerics as one block of lines.

    On a cluster node ``users``, ``channels`` and the mode counts include its replica of
    the other nodes (global counts); the node also says how many nodes are live and how
    many users are its own. A single server is one server whose users are all local.
    Every registration sends these, so the lines are one %-template per server, filled
    with one operation.
    """
    template = server.reply_blocks.get("lusers")
    if template is None:
        source = server.name.replace("%", "%%")
        template = server.reply_blocks["lusers"] = "".join(
            f":{source} {numeric} {NICK_SLOT} {text}\r\n" for numeric, text in _LUSERS
        )
    users = len(server.users)
    servers = server.server_count()
    local = server.local_user_count()
    invisible = server.mode_counts["i"]
    counts = (
        users - invisible, invisible, servers,
        server.mode_counts["o"],
        max(0, server.unknown_count),
        len(server.channels),
        local, servers - 1,
        local, local, local,
        users, users, users,
    )  # fmt: skip
    return (template % counts).replace(NICK_SLOT, nick)


def send_lusers(server: Server, user: User) -> None:
    server.send_block(user, lusers_block(server, user.nick))


def motd_replies(server: Server) -> list[tuple[str, tuple[str, ...]]]:
    """The MOTD numerics (375, 372…, 376), or 422 when there is none."""
    motd = server.config.motd
    if not motd:
        return [(N.ERR_NOMOTD, ("MOTD File is missing",))]
    return [
        (N.RPL_MOTDSTART, (f"- {server.name} Message of the day -",)),
        *((N.RPL_MOTD, (f"- {line}",)) for line in motd.splitlines()),
        (N.RPL_ENDOFMOTD, ("End of /MOTD command.",)),
    ]


def send_motd(server: Server, user: User) -> None:
    server.send_replies(user, "motd", motd_replies)


@command("LUSERS")
def handle_lusers(server: Server, user: User, msg: Message) -> None:
    send_lusers(server, user)


@command("MOTD")
def handle_motd(server: Server, user: User, msg: Message) -> None:
    send_motd(server, user)


@command("VERSION")
def handle_version(server: Server, user: User, msg: Message) -> None:
    from chat_server.handlers.registration import isupport_replies

    server.reply(user, N.RPL_VERSION, VERSION, server.name, "Python selectors server")
    server.send_replies(user, "isupport", isupport_replies)


@command("TIME")
def handle_time(server: Server, user: User, msg: Message) -> None:
    now = time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime())
    server.reply(user, N.RPL_TIME, server.name, now)


@command("AWAY")
def handle_away(server: Server, user: User, msg: Message) -> None:
    text = msg.param(0)
    if text:
        user.away = text[:390]
        server.reply(user, N.RPL_NOWAWAY, "You have been marked as being away")
    else:
        user.away = None
        server.reply(user, N.RPL_UNAWAY, "You are no longer marked as being away")


def _who_flags(user: User, prefix: str, multi: bool) -> str:
    flags = "G" if user.away is not None else "H"
    if user.is_oper:
        flags += "*"
    if user.is_bot:
        flags += "B"
    return flags + member_prefix(prefix, multi)


def _who_line(server: Server, asker: User, chan_name: str, target: User, prefix: str) -> None:
    flags = _who_flags(target, prefix, "multi-prefix" in asker.caps)
    server.reply(
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


@command("WHO")
def handle_who(server: Server, user: User, msg: Message) -> None:
    mask = msg.param(0, "*")
    if is_channel(mask):
        chan = server.channels.get(casefold(mask))
        if chan is not None:
            inside = user in chan.members
            for member, prefix in list(chan.members.items()):
                if inside or not member.invisible:
                    _who_line(server, user, chan.name, member, prefix)
    else:
        exact = server.find_user(mask)
        if exact is not None:
            matches = [exact]
        else:
            pattern = casefold(mask)
            matches = [
                u
                for u in server.users.values()
                if (not u.invisible or u is user)
                and (
                    fnmatch.fnmatchcase(u.folded, pattern)
                    or fnmatch.fnmatchcase(casefold(u.source), pattern)
                )
            ][:200]
        for target in matches:
            chan = _channel_for_who(user, target)
            _who_line(
                server,
                user,
                chan.name if chan else "*",
                target,
                chan.members[target] if chan else "",
            )
    server.reply(user, N.RPL_ENDOFWHO, mask, "End of WHO list")


def _channel_for_who(asker: User, target: User) -> Channel | None:
    """The room a WHO line names: one the asker shares with the target if there is
    one, else the target's first room unless the target is invisible (+i)."""
    first: Channel | None = None
    for chan in target.channels.values():
        if asker in chan.members:
            return chan
        if first is None:
            first = chan
    return None if target.invisible else first


@command("WHOIS", min_params=1)
def handle_whois(server: Server, user: User, msg: Message) -> None:
    nick = msg.params[-1].split(",")[0]
    target = server.find_user(nick)
    if target is None:
        server.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        server.reply(user, N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
        return
    server.reply(
        user, N.RPL_WHOISUSER, target.nick, target.username, target.host, "*", target.realname
    )
    multi = "multi-prefix" in user.caps
    chans = [
        member_prefix(c.members[target], multi) + c.name
        for c in target.channels.values()
        if user in c.members or not target.invisible
    ]
    if chans:
        server.reply(user, N.RPL_WHOISCHANNELS, target.nick, " ".join(chans))
    server.reply(user, N.RPL_WHOISSERVER, target.nick, server.name, "distchat")
    if target.away is not None:
        server.reply(user, N.RPL_AWAY, target.nick, target.away)
    if target.is_oper:
        server.reply(user, N.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
    if target.is_bot:
        server.reply(user, N.RPL_WHOISBOT, target.nick, "is a bot")
    idle = int(time.time() - target.last_spoke)
    server.reply(
        user,
        N.RPL_WHOISIDLE,
        target.nick,
        str(idle),
        str(int(target.signon)),
        "seconds idle, signon time",
    )
    server.reply(user, N.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list")


@command("USERHOST", min_params=1)
def handle_userhost(server: Server, user: User, msg: Message) -> None:
    parts = []
    for nick in msg.params[:5]:
        target = server.find_user(nick)
        if target is not None:
            oper = "*" if target.is_oper else ""
            away = "-" if target.away is not None else "+"
            parts.append(f"{target.nick}{oper}={away}{target.username}@{target.host}")
    server.reply(user, N.RPL_USERHOST, " ".join(parts))


@command("ISON", min_params=1)
def handle_ison(server: Server, user: User, msg: Message) -> None:
    nicks = " ".join(msg.params).split()
    online = [u.nick for n in nicks if (u := server.find_user(n)) is not None]
    server.reply(user, "303", " ".join(online))
