"""AUTHENTICATE: IRCv3 SASL (sasl-3.1 and 3.2) with PLAIN and SCRAM-SHA-256.

``AUTHENTICATE <mechanism>`` starts an exchange, answered ``AUTHENTICATE +``; the
client's data follows base64-encoded in lines of at most 400 bytes (a line of exactly
400 means more follows; ``+`` is an empty line). ``AUTHENTICATE *`` aborts (906).
Success is 900 RPL_LOGGEDIN then 903; failure 904; an unknown mechanism 908 + 904; a
payload over ``MAX_PAYLOAD`` 905. Logging in again later (a different account, or after
registration) is allowed, as sasl-3.2 says servers should.

Cost: the account is looked up in the database through the history worker, and a
PLAIN password is checked with scrypt on a background thread; meanwhile the client's
connection is paused (``server.defer``), so it cannot pile up requests. Failures
count per address (``records.login_failures``): after a few, an address must wait
(growing) before its next attempt is even checked, and the waits are logged.

Which account a nick belongs to, and what logging in gives, is in handlers/accounts.py.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message
from chat_server.accounts.credentials import ScramKeys
from chat_server.accounts.scram import (
    ScramError,
    ScramExchange,
    decoy_keys,
    parse_client_first,
)
from chat_server.handlers.accounts import log_in

if TYPE_CHECKING:
    from chat_server.accounts.storage import AccountRow
    from chat_server.deferred import Deferred
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger(__name__)

MECHANISMS = ("PLAIN", "SCRAM-SHA-256")
CHUNK = 400
MAX_PAYLOAD = 4096  # decoded-to-be base64 text of one step; real ones are < 1 KiB


@dataclass(slots=True)
class SaslSession:
    """One exchange in progress on a connection."""

    mechanism: str
    data: str = ""  # base64 chunks of the current step so far
    scram: ScramExchange | None = None
    row: AccountRow | None = None  # SCRAM: the account, once looked up
    proven: bool = False  # SCRAM: the proof was right; waiting for the client's final "+"


def handle_authenticate(server: Server, user: User, msg: Message) -> None:
    arg = msg.params[0]
    if "sasl" not in user.caps:
        server.out.reply(
            user, N.ERR_SASLFAIL, "SASL authentication failed: request the sasl capability first"
        )
        return
    session: SaslSession | None = user.sasl
    if arg == "*":
        user.sasl = None
        server.out.reply(user, N.ERR_SASLABORTED, "SASL authentication aborted")
        return
    if session is None:
        _start(server, user, arg.upper())
        return
    if len(arg) > CHUNK:
        _fail(server, user, N.ERR_SASLTOOLONG, "SASL message too long")
        return
    if arg != "+":
        session.data += arg
    if len(session.data) > MAX_PAYLOAD:
        _fail(server, user, N.ERR_SASLTOOLONG, "SASL message too long")
        return
    if len(arg) == CHUNK:
        return  # more of this step follows
    text, session.data = session.data, ""
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed: invalid base64")
        return
    if session.mechanism == "PLAIN":
        _plain(server, user, payload)
    else:
        _scram_step(server, user, session, payload)


def _start(server: Server, user: User, mechanism: str) -> None:
    if mechanism not in MECHANISMS:
        server.out.reply(
            user, N.RPL_SASLMECHS, ",".join(MECHANISMS), "are available SASL mechanisms"
        )
        server.out.reply(user, N.ERR_SASLFAIL, "SASL authentication failed")
        return
    user.sasl = SaslSession(mechanism)
    server.out.send_raw(user, "AUTHENTICATE +")


def _fail(server: Server, user: User, numeric: str, text: str) -> None:
    user.sasl = None
    server.out.reply(user, numeric, text)


def _start_lookup(server: Server, user: User) -> Deferred | None:
    """Pause the client for an account lookup; None when its address must wait first
    (answered 904 without any check, see records.login_failures) or it is gone."""
    if server.records.login_failures.blocked(_address(user)):
        _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed")
        return None
    return server.defer(user)


def _try_later(server: Server, user: User) -> None:
    _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed: try again later")


def _address(user: User) -> str:
    return user.conn.addr if user.conn is not None else user.host


def _failed_login(server: Server, user: User, name: str) -> None:
    server.records.login_failures.failed(_address(user), f"{user.nick} as {name}")
    _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed")


def _succeeded(server: Server, user: User, row: AccountRow) -> None:
    server.records.login_failures.succeeded(_address(user))
    user.sasl = None
    log_in(server, user, row.display, row.history_from)
    server.out.reply(user, N.RPL_SASLSUCCESS, "SASL authentication successful")


def _plain(server: Server, user: User, payload: bytes) -> None:
    """RFC 4616: ``[authzid] NUL authcid NUL password``; an authzid, if given, must
    name the same account (we do not let one account act as another)."""
    parts = payload.split(b"\0")
    if len(parts) != 3:
        _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed: malformed PLAIN")
        return
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed: not UTF-8")
        return
    if not authcid or (authzid and casefold(authzid) != casefold(authcid)):
        _failed_login(server, user, authcid)
        return
    deferred = _start_lookup(server, user)
    if deferred is None:
        return

    def found(row: AccountRow | None, error: str | None) -> None:
        if error is not None:
            server.complete(deferred, lambda: _try_later(server, user))
            return

        def checked(matched: bool) -> None:
            if matched and row is not None:
                server.complete(deferred, lambda: _succeeded(server, user, row))
            else:
                server.complete(deferred, lambda: _failed_login(server, user, authcid))

        if not server.accounts.check_plain(row, password, checked):
            server.complete(
                deferred,
                lambda: _fail(
                    server,
                    user,
                    N.ERR_SASLFAIL,
                    "SASL authentication failed: server busy, try again",
                ),
            )

    server.accounts.lookup(authcid, found)


def _scram_step(server: Server, user: User, session: SaslSession, payload: bytes) -> None:
    if session.proven and session.row is not None:  # the answer to our server-final
        if payload:
            _failed_login(server, user, session.row.display)
        else:
            _succeeded(server, user, session.row)
        return
    if session.scram is None:
        _scram_first(server, user, session, payload)
        return
    try:
        final = session.scram.client_final(payload)
    except ScramError as exc:
        log.info("SCRAM login of %r failed: %s", session.scram.first.username, exc)
        _failed_login(server, user, session.scram.first.username)
        return
    if session.row is None:  # a decoy's proof cannot be right; never log in without a row
        _failed_login(server, user, session.scram.first.username)
        return
    session.proven = True
    _send_payload(server, user, final)


def _scram_first(server: Server, user: User, session: SaslSession, payload: bytes) -> None:
    try:
        first = parse_client_first(payload)
    except ScramError as exc:
        log.info("SCRAM client-first from %s refused: %s", user.host, exc)
        _fail(server, user, N.ERR_SASLFAIL, "SASL authentication failed")
        return
    deferred = _start_lookup(server, user)
    if deferred is None:
        return

    def found(row: AccountRow | None, error: str | None) -> None:
        if error is not None:
            server.complete(deferred, lambda: _try_later(server, user))
            return
        keys = None
        if row is not None:
            try:
                keys = ScramKeys.from_json(row.scram)
            except ValueError as exc:
                log.error("account %s: %s", row.display, exc)
        if user.sasl is not session:  # aborted meanwhile
            server.complete(deferred, lambda: None)
            return
        session.row = row if keys is not None else None
        exchange = ScramExchange(first, keys or decoy_keys(first.username, server.accounts.secret))
        session.scram = exchange
        server.complete(deferred, lambda: _send_payload(server, user, exchange.server_first()))

    server.accounts.lookup(first.username, found)


def _send_payload(server: Server, user: User, data: bytes) -> None:
    """``AUTHENTICATE`` lines of at most 400 base64 bytes (``+`` after an exact multiple)."""
    text = base64.b64encode(data).decode("ascii")
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or ["+"]
    if len(chunks[-1]) == CHUNK:
        chunks.append("+")
    for chunk in chunks:
        server.out.send_raw(user, f"AUTHENTICATE {chunk}")
