"""Server operators: OPER and KILL."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server


def handle_oper(server: Server, user: User, msg: Message) -> None:
    """Become an operator: by password (``opers``) or, for a user logged into one of
    ``oper_accounts``, by its account (``OPER <anything>``, no password needed).
    Failures are counted per address across reconnects; after a few, the address must
    wait (growing) before its next try is even checked."""
    if user.account is not None and casefold(user.account) in _oper_accounts(server):
        _make_oper(server, user)
        return
    if len(msg.params) < 2:
        server.out.reply(user, N.ERR_NEEDMOREPARAMS, "OPER", "Not enough parameters")
        return
    name, password = msg.params[0], msg.params[1]
    failures = server.records.oper_failures
    address = user.conn.addr if user.conn is not None else user.host
    if failures.blocked(address):
        server.out.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        return
    expected = server.config.opers.get(name)
    if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
        failures.failed(address, f"{user.nick} as {name}")
        server.out.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        return
    failures.succeeded(address)
    _make_oper(server, user)


def _oper_accounts(server: Server) -> set[str]:
    return {casefold(name) for name in server.config.oper_accounts.split(",") if name}


def _make_oper(server: Server, user: User) -> None:
    if not user.is_oper:
        server.change_user_modes(user, added="o")
        server.delivery.deliver(
            [user], user.source, "MODE", [user.nick, "+o"], account=user.account
        )
    server.out.reply(user, N.RPL_YOUREOPER, "You are now an IRC operator")


def handle_kill(server: Server, user: User, msg: Message) -> None:
    if not user.is_oper:
        server.out.reply(user, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return
    nick = msg.params[0]
    target = server.find_user(nick)
    if target is None:
        if nick.lower() == server.name.lower():
            server.out.reply(user, N.ERR_CANTKILLSERVER, "You cannot kill a server!")
        else:
            server.out.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    reason = msg.param(1, "No reason given")[:300]
    server.delivery.deliver(
        [target], user.source, "KILL", [target.nick, reason], account=user.account
    )
    if target.conn is not None:
        server.drop(target.conn, f"Killed ({user.nick} ({reason}))")
