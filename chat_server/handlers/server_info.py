"""What the server says about itself: 002-005, ISUPPORT, LUSERS, MOTD, VERSION, TIME, INFO.

The welcome burst (registration.py) and the query commands both send these, so they
live here, importable by both at the top.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.message import Message
from chat_server import VERSION
from chat_server.handlers.presence import REALNAME_LEN
from chat_server.masks import matches
from chat_server.model import MAX_BANS
from chat_server.replies import NICK_SLOT

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

ReplyList = list[tuple[str, tuple[str, ...]]]

USER_MODES = "iBo"
CHANNEL_MODES = "Rbiklmnostv"
CHANNEL_MODES_WITH_PARAM = "bklov"


def isupport_tokens(server: Server) -> list[str]:
    cfg = server.config
    return [
        "AWAYLEN=390",
        "BOT=B",
        "CASEMAPPING=ascii",
        f"CHANLIMIT=#&:{cfg.max_channels_per_user}",
        "CHANMODES=b,k,l,Rimnst",
        f"CHANNELLEN={cfg.channel_len}",
        "CHANTYPES=#&",
        f"CHATHISTORY={cfg.chathistory_max}",
        "ELIST=MNU",
        "HOSTLEN=63",
        "KICKLEN=390",
        "LINELEN=512",
        "MAXTARGETS=4",
        f"MAXLIST=b:{MAX_BANS}",
        "MODES=4",
        f"MONITOR={cfg.monitor_max}",
        "MSGREFTYPES=msgid,timestamp",
        f"NAMELEN={REALNAME_LEN}",
        f"NETWORK={cfg.network}",
        f"NICKLEN={cfg.nick_len}",
        "PREFIX=(ov)@+",
        "TARGMAX=JOIN:,KICK:1,NAMES:1,NOTICE:4,PART:,PRIVMSG:4,WHOIS:1,WHOWAS:1",
        f"TOPICLEN={cfg.topic_len}",
        "USERLEN=10",
        "UTF8ONLY",
    ]


def isupport_replies(server: Server) -> ReplyList:
    """005 lines, twelve tokens each."""
    tokens = isupport_tokens(server)
    return [
        (N.RPL_ISUPPORT, (*tokens[i : i + 12], "are supported by this server"))
        for i in range(0, len(tokens), 12)
    ]


def intro_replies(server: Server) -> ReplyList:
    """002 to 005: the same for every client but for the nick."""
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(server.created))
    return [
        (N.RPL_YOURHOST, (f"Your host is {server.name}, running {VERSION}",)),
        (N.RPL_CREATED, (f"This server was created {created}",)),
        (N.RPL_MYINFO, (server.name, VERSION, USER_MODES, CHANNEL_MODES, CHANNEL_MODES_WITH_PARAM)),
        *isupport_replies(server),
    ]


# -- LUSERS ------------------------------------------------------------------------

# 251-255, 265 and 266, with a %d for every number they carry. 252-254 are left out
# when their number is 0 (Modern IRC: "<ops> is a positive integer").
_LUSERS = (
    (N.RPL_LUSERCLIENT, ":There are %d users and %d invisible on %d servers"),
    (N.RPL_LUSEROP, "%d :operator(s) online"),
    (N.RPL_LUSERUNKNOWN, "%d :unknown connection(s)"),
    (N.RPL_LUSERCHANNELS, "%d :channels formed"),
    (N.RPL_LUSERME, ":I have %d clients and %d servers"),
    (N.RPL_LOCALUSERS, "%d %d :Current local users %d, max %d"),
    (N.RPL_GLOBALUSERS, "%d %d :Current global users %d, max %d"),
)


def lusers_block(server: Server, nick: str) -> str:
    """The LUSERS numerics as one block of lines.

    On a cluster node ``users``, ``channels`` and the mode counts include its replica of
    the other nodes (global counts); the node also says how many nodes are live and how
    many users are its own. A single server is one server whose users are all local.
    Every registration sends these, so the lines are one %-template per server (and per
    set of optional lines), filled with one operation.
    """
    users = len(server.users)
    servers = server.server_count()
    local = server.local_user_count()
    invisible = server.mode_counts["i"]
    opers = server.mode_counts["o"]
    unknown = max(0, server.unknown_count)
    channels = len(server.channels)
    records = server.records
    max_local = records.max_local_users = max(records.max_local_users, local)
    max_users = records.max_global_users = max(records.max_global_users, users)
    shown = {N.RPL_LUSEROP: opers > 0, N.RPL_LUSERUNKNOWN: unknown > 0}
    shown[N.RPL_LUSERCHANNELS] = channels > 0
    key = "lusers" + "".join("1" if on else "0" for on in shown.values())
    template = server.out.blocks.get(key)
    if template is None:
        source = server.name.replace("%", "%%")
        template = server.out.blocks[key] = "".join(
            f":{source} {numeric} {NICK_SLOT} {text}\r\n"
            for numeric, text in _LUSERS
            if shown.get(numeric, True)
        )
    counts = (
        users - invisible, invisible, servers,
        *((opers,) if opers else ()),
        *((unknown,) if unknown else ()),
        *((channels,) if channels else ()),
        local, servers - 1,
        local, max_local, local, max_local,
        users, max_users, users, max_users,
    )  # fmt: skip
    return (template % counts).replace(NICK_SLOT, nick)


def handle_lusers(server: Server, user: User, msg: Message) -> None:
    server.out.send_block(user, lusers_block(server, user.nick))


# -- MOTD, VERSION, TIME, INFO -------------------------------------------------------


def motd_replies(server: Server) -> ReplyList:
    """The MOTD numerics (375, 372…, 376), or 422 when there is none."""
    motd = server.config.motd
    if not motd:
        return [(N.ERR_NOMOTD, ("MOTD File is missing",))]
    return [
        (N.RPL_MOTDSTART, (f"- {server.name} Message of the day -",)),
        *((N.RPL_MOTD, (f"- {line}",)) for line in motd.splitlines()),
        (N.RPL_ENDOFMOTD, ("End of /MOTD command.",)),
    ]


def handle_motd(server: Server, user: User, msg: Message) -> None:
    if _other_server(server, user, msg):
        return
    server.out.send_replies(user, "motd", motd_replies)


def handle_version(server: Server, user: User, msg: Message) -> None:
    if _other_server(server, user, msg):
        return
    server.out.reply(user, N.RPL_VERSION, VERSION, server.name, "Python selectors server")
    server.out.send_replies(user, "isupport", isupport_replies)


def handle_time(server: Server, user: User, msg: Message) -> None:
    if _other_server(server, user, msg):
        return
    now = time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime())
    server.out.reply(user, N.RPL_TIME, server.name, now)


def info_replies(server: Server) -> ReplyList:
    """371 lines about the software, then 374."""
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(server.created))
    lines = (
        f"{VERSION}: distchat, a multi-room chat server speaking IRC",
        "One thread, one selectors loop; history in SQLite, or Redis in a cluster.",
        "Speaks IRCv3 message-tags, server-time, echo-message, batch, chathistory,",
        "labeled-response, multi-prefix and userhost-in-names.",
        f"Running since {started}",
    )
    return [
        *((N.RPL_INFO, (line,)) for line in lines),
        (N.RPL_ENDOFINFO, ("End of /INFO list",)),
    ]


def handle_info(server: Server, user: User, msg: Message) -> None:
    if _other_server(server, user, msg):
        return
    server.out.send_replies(user, "info", info_replies)


def _other_server(server: Server, user: User, msg: Message) -> bool:
    """Answer 402 when the optional ``<target>`` names neither this server nor a user
    here (a user means "the server that user is on", which is this one)."""
    target = msg.param(0)
    if not target or matches(target, server.name):
        return False
    if server.find_user(target) is not None:
        return False
    server.out.reply(user, N.ERR_NOSUCHSERVER, target, "No such server")
    return True
