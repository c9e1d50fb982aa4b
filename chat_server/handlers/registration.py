"""Connection registration: CAP negotiation, PASS, NICK, USER, PING/PONG, QUIT."""

from __future__ import annotations

import functools
import hmac
import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import valid_nick
from chat_protocol.message import Message, last_param
from chat_server import VERSION
from chat_server.commands import command
from chat_server.replies import format_reply

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

CAPABILITIES: dict[str, str] = {
    "batch": "",
    "cap-notify": "",
    "draft/chathistory": "",
    "echo-message": "",
    "labeled-response": "",
    "message-tags": "",
    "multi-prefix": "",
    "server-time": "",
    "userhost-in-names": "",
}


def isupport_tokens(server: Server) -> list[str]:
    cfg = server.config
    return [
        "AWAYLEN=390",
        "BOT=B",
        "CASEMAPPING=ascii",
        f"CHANLIMIT=#&:{cfg.max_channels_per_user}",
        "CHANMODES=b,k,l,imnt",
        f"CHANNELLEN={cfg.channel_len}",
        "CHANTYPES=#&",
        f"CHATHISTORY={cfg.chathistory_max}",
        "ELIST=U",
        "HOSTLEN=63",
        "KICKLEN=390",
        "LINELEN=512",
        "MAXTARGETS=4",
        "MODES=4",
        "MSGREFTYPES=msgid,timestamp",
        f"NETWORK={cfg.network}",
        f"NICKLEN={cfg.nick_len}",
        "PREFIX=(ov)@+",
        "TARGMAX=JOIN:,KICK:1,NAMES:1,NOTICE:4,PART:,PRIVMSG:4,WHOIS:1",
        f"TOPICLEN={cfg.topic_len}",
        "USERLEN=10",
        "UTF8ONLY",
    ]


@command("CAP", min_params=1, registered=False, free=True)
def handle_cap(server: Server, user: User, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub == "LS":
        if not user.registered:
            user.cap_negotiating = True
        version = msg.param(1)
        if version.isdigit() and int(version) >= 302:
            user.cap_version = 302
            user.set_caps(user.caps | {"cap-notify"})
        server.send_raw(user, _cap_line(server, user, "LS", _cap_list(user.cap_version)))
    elif sub == "LIST":
        server.send_raw(user, _cap_line(server, user, "LIST", " ".join(sorted(user.caps))))
    elif sub == "REQ":
        if not user.registered:
            user.cap_negotiating = True
        wanted = msg.param(1).split()
        adds = {c for c in wanted if not c.startswith("-")}
        removes = {c[1:] for c in wanted if c.startswith("-")}
        if not wanted or any(c not in CAPABILITIES for c in adds | removes):
            server.send_raw(user, _cap_line(server, user, "NAK", msg.param(1)))
            return
        user.set_caps(frozenset((user.caps | adds) - removes))
        for chan in user.channels.values():
            chan.groups = None  # the user's tag mode may have changed
        server.send_raw(user, _cap_line(server, user, "ACK", msg.param(1)))
    elif sub == "END":
        if not user.registered:
            user.cap_negotiating = False
            try_register(server, user)
    else:
        server.reply(user, "410", sub, "Invalid CAP command")


@functools.cache
def _cap_list(version: int) -> str:
    if version >= 302:
        return " ".join(f"{k}={v}" if v else k for k, v in sorted(CAPABILITIES.items()))
    return " ".join(sorted(CAPABILITIES))


def _cap_line(server: Server, user: User, sub: str, caps: str) -> str:
    """``:server CAP nick SUB caps``, as Message.to_str would put it (every registration
    sends one or two, so without building a Message). ``caps`` came through the parser
    or from our own list: no CR, LF or NUL."""
    return f":{server.name} CAP {user.nick} {sub} {last_param(caps)}"


@command("PASS", min_params=1, registered=False)
def handle_pass(server: Server, user: User, msg: Message) -> None:
    if user.registered:
        server.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    expected = server.config.password
    user.pass_ok = expected is None or hmac.compare_digest(
        msg.params[0].encode(), expected.encode()
    )


@command("NICK", registered=False)
def handle_nick(server: Server, user: User, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        server.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0]
    if not valid_nick(nick, server.config.nick_len):
        server.reply(user, N.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
        return
    other = server.find_user(nick)
    if other is not None and other is not user:
        server.reply(user, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        return
    if not user.registered:
        user.set_nick(nick)
        try_register(server, user)
        return
    if nick == user.nick:
        return
    old_source = user.source
    server.users.pop(user.folded, None)
    user.set_nick(nick)
    server.users[user.folded] = user
    server.deliver(server.channel_peers(user), old_source, "NICK", [nick])


@command("USER", min_params=4, registered=False)
def handle_user(server: Server, user: User, msg: Message) -> None:
    if user.registered:
        server.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    username = "".join(c for c in msg.params[0] if c.isalnum() or c in "-_.")[:10]
    user.username = "~" + (username or "user")[:9]
    user.realname = msg.params[3][:100]
    user.update_source()
    try_register(server, user)


def try_register(server: Server, user: User) -> None:
    """Finish registration once NICK and USER are in and CAP negotiation is over."""
    if user.registered or user.cap_negotiating or user.nick == "*" or not user.username:
        return
    conn = user.conn
    assert conn is not None
    if server.config.password is not None and not user.pass_ok:
        server.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        server.drop(conn, "Bad password")
        return
    if server.find_user(user.nick) is not None:
        server.reply(user, N.ERR_NICKNAMEINUSE, user.nick, "Nickname is already in use")
        return
    user.registered = True
    server.unknown_count -= 1
    server.users[user.folded] = user
    user.signon = time.time()
    welcome(server, user)


def isupport_replies(server: Server) -> list[tuple[str, tuple[str, ...]]]:
    """005 lines, twelve tokens each."""
    tokens = isupport_tokens(server)
    return [
        (N.RPL_ISUPPORT, (*tokens[i : i + 12], "are supported by this server"))
        for i in range(0, len(tokens), 12)
    ]


def intro_replies(server: Server) -> list[tuple[str, tuple[str, ...]]]:
    """002 to 005: the same for every client but for the nick."""
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(server.created))
    return [
        (N.RPL_YOURHOST, (f"Your host is {server.name}, running {VERSION}",)),
        (N.RPL_CREATED, (f"This server was created {created}",)),
        (N.RPL_MYINFO, (server.name, VERSION, "iBo", "biklmnotv", "klov")),
        *isupport_replies(server),
    ]


def welcome(server: Server, user: User) -> None:
    """001 to 005, LUSERS and the MOTD in one write."""
    from chat_server.handlers.queries import lusers_block, motd_replies

    nick = user.nick
    network = server.config.network
    first = format_reply(
        server.name, N.RPL_WELCOME, nick, (f"Welcome to the {network} network, {user.source}",)
    )
    server.send_block(
        user,
        first
        + "\r\n"
        + server.replies_block(nick, "intro", intro_replies)
        + lusers_block(server, nick)
        + server.replies_block(nick, "motd", motd_replies),
    )


@command("PING", registered=False, free=True)
def handle_ping(server: Server, user: User, msg: Message) -> None:
    if not msg.params:
        server.reply(user, N.ERR_NOORIGIN, "No origin specified")
        return
    server.send_raw(user, Message("PONG", [server.name, msg.params[0]], server.name).to_str())


@command("PONG", registered=False, free=True)
def handle_pong(server: Server, user: User, msg: Message) -> None:
    if user.conn is not None:
        user.conn.ping_sent = 0.0


@command("QUIT", registered=False)
def handle_quit(server: Server, user: User, msg: Message) -> None:
    reason = msg.param(0, "Client quit")[:390]
    if user.conn is not None:
        server.drop(user.conn, f"Quit: {reason}")
