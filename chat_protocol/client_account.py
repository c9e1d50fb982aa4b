"""Creating an account from a connected client: ``draft/account-registration``'s REGISTER.

``REGISTER <account|*> <email|*> <password>`` is answered ``REGISTER SUCCESS <account>
:text`` (we are then logged in, and the server also sends 900), ``REGISTER
VERIFICATION_REQUIRED <account> :text``, or ``FAIL REGISTER <CODE> <account> :text``.
After a success the client's configuration holds the new account and its password, so
every reconnect logs in to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat_protocol import numerics as n
from chat_protocol.message import Message

if TYPE_CHECKING:
    from chat_protocol.client import IRCClient

REGISTRATION_CAP = "draft/account-registration"
MAX_PASSWORD_BYTES = 300  # the spec's advice: a password that fits any IRC line
# Our own codes, for answers that did not come from the server's FAIL REGISTER:
UNSUPPORTED = "UNSUPPORTED"
NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True, slots=True)
class RegisterReply:
    """What the server said to REGISTER; ``ok`` only for SUCCESS (logged in)."""

    ok: bool
    code: str  # SUCCESS, VERIFICATION_REQUIRED, a FAIL REGISTER code, or one of ours
    account: str
    text: str


def read_reply(replies: list[Message], account: str) -> RegisterReply:
    """The REGISTER answer among ``replies`` (a request's reply: numerics, FAIL, ...)."""
    for msg in replies:
        if msg.command == "REGISTER" and msg.param(0) in ("SUCCESS", "VERIFICATION_REQUIRED"):
            ok = msg.param(0) == "SUCCESS"
            return RegisterReply(ok, msg.param(0), msg.param(1) or account, msg.params[-1])
        if msg.command == "FAIL" and msg.param(0) == "REGISTER":
            # FAIL REGISTER <CODE> [<account>] :text (COMPLETE_CONNECTION_REQUIRED has none)
            named = msg.param(2) if len(msg.params) > 3 else ""
            named = account if named in ("", "*") else named
            return RegisterReply(False, msg.param(1), named, msg.params[-1])
        if msg.command == n.ERR_UNKNOWNCOMMAND:
            return RegisterReply(False, UNSUPPORTED, account, "the server has no REGISTER")
    return RegisterReply(False, NO_ANSWER, account, "the server did not answer REGISTER")


async def register_account(
    client: IRCClient,
    password: str,
    *,
    email: str | None = None,
    account: str | None = None,
    timeout: float = 10.0,
) -> RegisterReply:
    """Register ``account`` (default: our nick) with ``password``; on success the client
    logs in to it again after every reconnect. NotConnected when offline, TimeoutError
    when the server takes longer than ``timeout``."""
    name = account or client.nick
    if REGISTRATION_CAP not in client.offered_caps:
        return RegisterReply(False, UNSUPPORTED, name, "this server does not register accounts")
    if not password or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        text = f"a password must be 1 to {MAX_PASSWORD_BYTES} bytes long"
        return RegisterReply(False, "UNACCEPTABLE_PASSWORD", name, text)
    if any(c in password for c in "\r\n\0"):
        return RegisterReply(False, "UNACCEPTABLE_PASSWORD", name, "a password is one line")
    query = Message("REGISTER", [account or "*", email or "*", password])
    reply = read_reply(await client.request(query, timeout), name)
    if reply.ok:
        client.config.account = reply.account
        client.config.account_password = password
    return reply
