"""What an account gives a connection, and REGISTER (IRCv3 account-registration).

Logging in (SASL, handlers/sasl.py, or a successful REGISTER) sets ``User.account``
and sends 900 RPL_LOGGEDIN; room peers with ``account-notify`` see ``ACCOUNT <name>``.
From then on:

- the nick named like the account is this person's: a connection not logged into
  it is refused that nick with 433, at NICK and at the end of registration. We refuse
  rather than rename after a grace period: a client that wants its nick logs in with
  SASL before CAP END, which every current client does, and nobody is ever renamed
  under their feet;
- messages carry ``account=<name>`` for clients with ``account-tag``, JOINs carry it
  for those with ``extended-join``, WHOIS shows 330;
- rooms with mode ``+R`` let it in;
- direct messages and read markers belong to the account: with its own nick, the
  connection reads all of that nick's stored direct messages (not only those since it
  took the nick), and read markers are kept per account, shared by all its clients;
- accounts listed in ``oper_accounts`` may OPER without a password.

``REGISTER <account|*> <email|*> <password>`` creates an account named after the
current nick (``*``) or the name given, when that name is a valid nick nobody else
is using and no account has. Passwords are hashed on a background thread; the client
waits, paused. Registration can be closed (``open_registration = false``): then
accounts are made with ``chat-server account add``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, valid_nick
from chat_protocol.message import Message
from chat_server.accounts.credentials import MAX_PASSWORD_BYTES, password_problem

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger(__name__)

REGISTER_CAP = "draft/account-registration"
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}")


def log_in(server: Server, user: User, account: str, history_from: int) -> None:
    """``user`` proved it holds ``account``: say so to it and to its rooms."""
    before = user.account
    user.account = account
    user.account_history_from = history_from
    server.accounts.signed_in(user, before)
    if casefold(account) == user.folded:
        user.history_floor = history_from
    source = f"{user.nick}!{user.username or '*'}@{user.host}"  # complete before NICK/USER
    server.out.reply(user, N.RPL_LOGGEDIN, source, account, f"You are now logged in as {account}")
    log.info("%s logged in as %s", source, account)
    if user.registered and before != account:
        announce_account(server, user)
        server.account_changed(user)


def announce_account(server: Server, user: User) -> None:
    """``ACCOUNT <name>`` (``*``: none) to room peers with account-notify."""
    peers = [peer for peer in server.channel_peers(user) if "account-notify" in peer.caps]
    if "account-notify" in user.caps and user not in peers:
        peers.append(user)
    if peers:
        server.delivery.deliver(
            peers, user.source, "ACCOUNT", [user.account or "*"], account=user.account
        )


def dm_floor(server: Server, user: User) -> int:
    """The first direct message sequence ``user`` may read under its nick as it is
    now: the account's when the nick is its account's, else from now on."""
    if user.account is not None and casefold(user.account) == user.folded:
        return user.account_history_from
    return server.delivery.history_floor()


def nick_reserved(server: Server, user: User, nick: str) -> bool:
    """Whether ``nick`` is an account's and ``user`` is not logged into that account."""
    if not server.accounts.owns(nick):
        return False
    return user.account is None or casefold(user.account) != casefold(nick)


def refuse_reserved(server: Server, user: User, nick: str) -> None:
    server.out.reply(
        user,
        N.ERR_NICKNAMEINUSE,
        nick,
        "Nickname is registered to an account: log in (SASL) to use it",
    )


def registration_value(server: Server) -> str | None:
    """The value of the account-registration capability, None when closed."""
    if not server.config.open_registration:
        return None
    # Early REGISTER must not get around a connection password (the spec's warning),
    # so with one, REGISTER waits for the welcome.
    return "before-connect" if server.config.password is None else ""


def handle_register(server: Server, user: User, msg: Message) -> None:
    params = msg.params
    if len(params) < 2:
        server.out.fail(
            user,
            "REGISTER",
            "NEED_MORE_PARAMS",
            "*",
            "Usage: REGISTER <account|*> <email|*> <password>",
        )
        return
    account, email, password = ("*", *params[:2]) if len(params) == 2 else params[:3]
    name = account
    if account == "*":
        name = user.nick if user.nick != "*" else user.wanted_nick
    label = name or "*"
    mode = registration_value(server)
    if mode is None:
        server.out.fail(
            user,
            "REGISTER",
            "TEMPORARILY_UNAVAILABLE",
            label,
            "Registration is closed on this server; ask an operator",
        )
        return
    if not user.registered and mode != "before-connect":
        server.out.fail(
            user, "REGISTER", "COMPLETE_CONNECTION_REQUIRED", label, "Register after connecting"
        )
        return
    if user.account is not None:
        server.out.fail(
            user, "REGISTER", "ALREADY_REGISTERED", user.account, "You are already logged in"
        )
        return
    if not name:
        server.out.fail(user, "REGISTER", "NEED_NICK", "*", "Send NICK first")
        return
    if not valid_nick(name, server.config.nick_len):
        server.out.fail(
            user, "REGISTER", "BAD_ACCOUNT_NAME", label, "Account names follow the rules of nicks"
        )
        return
    holder = server.find_user(name)
    if holder is not None and holder is not user:
        server.out.fail(
            user,
            "REGISTER",
            "USERNAME_EXISTS",
            name,
            "Someone else is using that nick; it cannot be registered now",
        )
        return
    if server.accounts.owns(name):
        server.out.fail(user, "REGISTER", "ACCOUNT_EXISTS", name, "That account already exists")
        return
    if email != "*" and not _EMAIL.fullmatch(email):
        server.out.fail(
            user, "REGISTER", "INVALID_EMAIL", name, "That does not look like an email address"
        )
        return
    problem = password_problem(password, server.config.account_password_min)
    if problem is not None:
        code = "UNACCEPTABLE_PASSWORD" if "shorter" not in problem else "WEAK_PASSWORD"
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            code = "UNACCEPTABLE_PASSWORD"
        server.out.fail(user, "REGISTER", code, name, problem)
        return
    address = user.conn.addr if user.conn is not None else user.host
    throttle = server.records.registrations
    if throttle.blocked(address):
        server.out.fail(
            user,
            "REGISTER",
            "TEMPORARILY_UNAVAILABLE",
            name,
            f"Too many accounts from your address; try again in {throttle.delay(address):.0f} s",
        )
        return
    deferred = server.defer(user)
    if deferred is None:
        return

    # The nick's earlier direct messages stay with whoever had it: from now on.
    history_from = (
        user.history_floor if user.folded == casefold(name) else server.delivery.history_floor()
    )

    def created(code: str | None) -> None:
        if code is None:
            throttle.failed(address, name)  # counts accounts made, see records.py
            server.complete(deferred, lambda: _registered(server, user, name, history_from))
        else:
            why = (
                "That account already exists"
                if code == "ACCOUNT_EXISTS"
                else "Accounts cannot be stored right now; try again later"
            )
            server.complete(deferred, lambda: server.out.fail(user, "REGISTER", code, name, why))

    if not server.accounts.create(
        name, password, None if email == "*" else email, history_from, created
    ):
        server.complete(
            deferred,
            lambda: server.out.fail(
                user, "REGISTER", "TEMPORARILY_UNAVAILABLE", name, "Server busy; try again"
            ),
        )


def _registered(server: Server, user: User, name: str, history_from: int) -> None:
    line = Message("REGISTER", ["SUCCESS", name, "Account created"], server.name).to_str()
    server.out.send_raw(user, line)
    log_in(server, user, name, history_from)
