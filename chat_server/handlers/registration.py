"""Connection registration: CAP negotiation, PASS, NICK, USER, PING/PONG, QUIT."""

from __future__ import annotations

import functools
import hmac
import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import valid_nick
from chat_protocol.message import Message, last_param
from chat_protocol.numbers import ascii_int
from chat_server.handlers import presence
from chat_server.handlers.accounts import (
    REGISTER_CAP,
    dm_floor,
    nick_reserved,
    refuse_reserved,
    registration_value,
)
from chat_server.handlers.sasl import MECHANISMS
from chat_server.handlers.server_info import intro_replies, lusers_block, motd_replies
from chat_server.replies import format_reply

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

CAPABILITIES: dict[str, str] = {
    "account-notify": "",
    "account-tag": "",
    "away-notify": "",
    "batch": "",
    "cap-notify": "",
    "draft/chathistory": "",
    "draft/read-marker": "",
    "echo-message": "",
    "extended-join": "",
    "labeled-response": "",
    "message-tags": "",
    "multi-prefix": "",
    "sasl": ",".join(MECHANISMS),
    "server-time": "",
    "setname": "",
    "soju.im/search": "",
    "userhost-in-names": "",
}


def handle_cap(server: Server, user: User, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub == "LS":
        if not user.registered:
            user.cap_negotiating = True
        version = ascii_int(msg.param(1))
        if version is not None and version >= 302:
            user.cap_version = 302
            user.set_caps(user.caps | {"cap-notify"})
        caps = _cap_list(user.cap_version, registration_value(server)) + _sts(server, user)
        server.out.send_raw(user, _cap_line(server, user, "LS", caps))
    elif sub == "LIST":
        server.out.send_raw(user, _cap_line(server, user, "LIST", " ".join(sorted(user.caps))))
    elif sub == "REQ":
        if not user.registered:
            user.cap_negotiating = True
        wanted = msg.param(1).split()
        adds = {c for c in wanted if not c.startswith("-")}
        removes = {c[1:] for c in wanted if c.startswith("-")}
        offered = CAPABILITIES.keys() | (
            {REGISTER_CAP} if registration_value(server) is not None else set()
        )
        if not wanted or any(c not in offered for c in adds | removes):
            server.out.send_raw(user, _cap_line(server, user, "NAK", msg.param(1)))
            return
        user.set_caps(frozenset((user.caps | adds) - removes))
        for chan in user.channels.values():
            chan.members_changed()  # the user's tag mode may have changed
        server.out.send_raw(user, _cap_line(server, user, "ACK", msg.param(1)))
    elif sub == "END":
        if not user.registered:
            user.cap_negotiating = False
            try_register(server, user)
    else:
        server.out.reply(user, "410", sub, "Invalid CAP command")


def _sts(server: Server, user: User) -> str:
    """The IRCv3 ``sts`` policy (only with ``sts_duration`` set, to 302 clients; it is
    advertised, never requested): over plaintext, the TLS port to move to; over TLS,
    how long to insist on TLS."""
    cfg = server.config
    if not (cfg.sts_duration and cfg.tls_port) or user.cap_version < 302:
        return ""
    secure = user.conn is not None and user.conn.tls
    return f" sts=duration={cfg.sts_duration}" if secure else f" sts=port={cfg.tls_port}"


@functools.cache
def _cap_list(version: int, registration: str | None) -> str:
    """The capabilities offered; account registration only while open (its value
    says whether REGISTER may come before the welcome)."""
    caps = dict(CAPABILITIES)
    if registration is not None:
        caps[REGISTER_CAP] = registration
    if version >= 302:
        return " ".join(f"{k}={v}" if v else k for k, v in sorted(caps.items()))
    return " ".join(sorted(caps))


def _cap_line(server: Server, user: User, sub: str, caps: str) -> str:
    """``:server CAP nick SUB caps``, as Message.to_str would put it (every registration
    sends one or two, so without building a Message). ``caps`` came through the parser
    or from our own list: no CR, LF or NUL."""
    return f":{server.name} CAP {user.nick} {sub} {last_param(caps)}"


def handle_pass(server: Server, user: User, msg: Message) -> None:
    if user.registered:
        server.out.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    expected = server.config.password
    user.pass_ok = expected is None or hmac.compare_digest(
        msg.params[0].encode(), expected.encode()
    )


def handle_nick(server: Server, user: User, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        server.out.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0]
    if not valid_nick(nick, server.config.nick_len):
        server.out.reply(user, N.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
        return
    if not user.registered:
        user.wanted_nick = nick
    other = server.find_user(nick)
    if other is not None and other is not user:
        server.out.reply(user, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        return
    if user.registered and nick_reserved(server, user, nick):
        refuse_reserved(server, user, nick)  # before registration: checked at its end
        return
    if not user.registered:
        user.set_nick(nick)
        user.history_floor = dm_floor(server, user)
        try_register(server, user)
        return
    if nick == user.nick:
        return
    old_source = user.source
    server.records.whowas.remember(user)
    old_folded = user.folded
    server.users.pop(old_folded, None)
    user.set_nick(nick)
    if user.folded != old_folded:  # not a change of case only
        user.history_floor = dm_floor(server, user)
    server.users[user.folded] = user
    server.delivery.deliver(
        server.channel_peers(user), old_source, "NICK", [nick], account=user.account
    )
    presence.nick_changed(server, user, old_source)


def handle_user(server: Server, user: User, msg: Message) -> None:
    if user.registered:
        server.out.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if not msg.params[0] or not msg.params[3]:  # Modern IRC: neither may be empty
        server.out.reply(user, N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
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
        server.out.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        server.drop(conn, "Bad password")
        return
    if server.find_user(user.nick) is not None:
        server.out.reply(user, N.ERR_NICKNAMEINUSE, user.nick, "Nickname is already in use")
        return
    if nick_reserved(server, user, user.nick):
        refuse_reserved(server, user, user.nick)  # the client may log in, or pick another
        server.nick_refused(user)
        return
    user.registered = True
    server.unknown_count -= 1
    server.users[user.folded] = user
    user.signon = time.time()
    welcome(server, user)
    presence.user_online(server, user)


def welcome(server: Server, user: User) -> None:
    """001 to 005, LUSERS and the MOTD in one write."""
    nick = user.nick
    network = server.config.network
    first = format_reply(
        server.name, N.RPL_WELCOME, nick, (f"Welcome to the {network} network, {user.source}",)
    )
    server.out.send_block(
        user,
        first
        + "\r\n"
        + server.out.replies_block(nick, "intro", intro_replies)
        + lusers_block(server, nick)
        + server.out.replies_block(nick, "motd", motd_replies),
    )


def handle_ping(server: Server, user: User, msg: Message) -> None:
    if not msg.params:
        server.out.reply(user, N.ERR_NOORIGIN, "No origin specified")
        return
    server.out.send_raw(user, Message("PONG", [server.name, msg.params[0]], server.name).to_str())


def handle_pong(server: Server, user: User, msg: Message) -> None:
    if user.conn is not None:
        user.conn.ping_sent = 0.0


def handle_quit(server: Server, user: User, msg: Message) -> None:
    reason = msg.param(0, "Client quit")[:390]
    if user.conn is not None:
        server.drop(user.conn, f"Quit: {reason}")
