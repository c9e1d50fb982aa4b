"""Server operators: OPER and KILL."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.message import Message
from chat_server.commands import command

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server


@command("OPER", min_params=2)
def handle_oper(server: Server, user: User, msg: Message) -> None:
    name, password = msg.params[0], msg.params[1]
    expected = server.config.opers.get(name)
    if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
        server.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        return
    if not user.is_oper:
        server.change_user_modes(user, added="o")
        server.deliver([user], user.source, "MODE", [user.nick, "+o"])
    server.reply(user, N.RPL_YOUREOPER, "You are now an IRC operator")


@command("KILL", min_params=1)
def handle_kill(server: Server, user: User, msg: Message) -> None:
    if not user.is_oper:
        server.reply(user, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return
    nick = msg.params[0]
    target = server.find_user(nick)
    if target is None:
        if nick.lower() == server.name.lower():
            server.reply(user, N.ERR_CANTKILLSERVER, "You cannot kill a server!")
        else:
            server.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    reason = msg.param(1, "No reason given")[:300]
    server.deliver([target], user.source, "KILL", [target.nick, reason])
    if target.conn is not None:
        server.drop(target.conn, f"Killed ({user.nick} ({reason}))")
