"""One SASL login over IRC: ``AUTHENTICATE`` lines out, the server's replies in.

``SaslLogin`` runs the mechanisms of ``chat_protocol.sasl`` over the wire during CAP
negotiation: it names a mechanism, answers each (reassembled) challenge, and ends with
an outcome once the server says 903 (success) or one of the failure numerics. The
caller (``client_caps.CapNegotiation``) sends CAP END after that; the connection stays
unregistered meanwhile, which is why the login must come first: the server locks an
account's nick to those logged in to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from chat_protocol import numerics as n
from chat_protocol.message import Message
from chat_protocol.sasl import (
    MECHANISMS,
    ChunkReader,
    Mechanism,
    SaslError,
    encode_chunks,
    make_mechanism,
)

Write = Callable[[Message], None]
_FAILURES = frozenset({n.ERR_SASLFAIL, n.ERR_SASLTOOLONG, n.ERR_NICKLOCKED, n.ERR_SASLABORTED})


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """How a login ended; ``reason`` is for people and never holds the password."""

    ok: bool
    reason: str
    mechanism: str | None = None
    numeric: str | None = None
    account: str | None = None  # from 900 RPL_LOGGEDIN


def offered_mechanisms(cap_value: str) -> list[str] | None:
    """The mechanisms in a ``sasl=`` cap value; None when the server did not list them."""
    names = [m.strip().upper() for m in cap_value.split(",") if m.strip()]
    return names or None


def mechanisms_to_try(cap_value: str, forced: str | None) -> list[str]:
    """Ours that the server offers, most preferred first (only ``forced`` when set);
    all of ours when the server does not say which it has."""
    ours = [forced] if forced else list(MECHANISMS)
    server = offered_mechanisms(cap_value)
    return ours if server is None else [m for m in ours if m in server]


class SaslLogin:
    """Logs ``account`` in with the first of ``mechanisms`` the server accepts."""

    def __init__(self, account: str, password: str, mechanisms: list[str], write: Write) -> None:
        if not mechanisms:
            raise ValueError("no SASL mechanism to try")
        self.account = account
        self.outcome: LoginOutcome | None = None
        self._password = password
        self._untried = list(mechanisms)
        self._write = write
        self._mechanism: Mechanism | None = None
        self._reader = ChunkReader()
        self._server_mechanisms: list[str] | None = None  # from 908 RPL_SASLMECHS
        self._abort_reason: str | None = None
        self._logged_in_as: str | None = None

    @property
    def mechanism(self) -> str | None:
        return self._mechanism.name if self._mechanism is not None else None

    def start(self) -> None:
        """Say which mechanism we want; the server answers ``AUTHENTICATE +``."""
        self._begin(self._untried.pop(0))

    def _begin(self, name: str) -> None:
        self._reader = ChunkReader()
        self._mechanism = make_mechanism(name, self.account, self._password)
        self._write(Message("AUTHENTICATE", [name]))

    async def feed(self, msg: Message) -> None:
        """Take one server message (others than AUTHENTICATE and 90x are ignored)."""
        if self.outcome is not None:
            return
        command = msg.command
        if command == "AUTHENTICATE":
            await self._challenge(msg.param(0))
        elif command == n.RPL_LOGGEDIN:
            self._logged_in_as = msg.param(2) or None
        elif command == n.RPL_SASLMECHS:
            self._server_mechanisms = offered_mechanisms(msg.param(1))
        elif command in (n.RPL_SASLSUCCESS, n.ERR_SASLALREADY):
            self._succeeded(command)
        elif command in _FAILURES:
            self._failed(msg)

    def expire(self, seconds: float) -> None:
        """No answer in time: abort (the server then says 906) and give up."""
        if self.outcome is None:
            self._abort(f"the server did not finish the login within {seconds:g}s")
            self.outcome = LoginOutcome(False, self._abort_reason or "", self.mechanism)

    async def _challenge(self, param: str) -> None:
        mechanism = self._mechanism
        if mechanism is None or self._abort_reason is not None:
            return
        try:
            challenge = self._reader.feed(param)
            if challenge is None:
                return  # more pieces follow
            # SCRAM's PBKDF2 takes milliseconds to (at high iteration counts) seconds:
            # never on the event loop.
            response = await asyncio.to_thread(mechanism.respond, challenge)
        except SaslError as exc:
            self._abort(str(exc))
            return
        if self.outcome is None and self._abort_reason is None:
            for chunk in encode_chunks(response):
                self._write(Message("AUTHENTICATE", [chunk]))

    def _abort(self, reason: str) -> None:
        self._abort_reason = reason
        self._write(Message("AUTHENTICATE", ["*"]))

    def _succeeded(self, numeric: str) -> None:
        mechanism = self._mechanism
        if mechanism is not None and not mechanism.verified:
            # 903 before SCRAM's server-final: whoever this is, it never proved it
            # knows the password.
            reason = "the server said success without proving it knows the password"
            self.outcome = LoginOutcome(False, reason, mechanism.name, numeric)
            return
        account = self._logged_in_as or self.account
        self.outcome = LoginOutcome(
            True, f"logged in as {account}", self.mechanism, numeric, account
        )

    def _failed(self, msg: Message) -> None:
        numeric, name = msg.command, self.mechanism
        known = self._server_mechanisms
        if numeric == n.ERR_SASLFAIL and known is not None and name not in known:
            following = [m for m in self._untried if m in known]
            if following:  # the server has no such mechanism: try the next we share
                self._untried = following[1:]
                self._begin(following[0])
                return
        text = msg.params[-1] if len(msg.params) > 1 else "refused"
        reason = self._abort_reason or text
        self.outcome = LoginOutcome(False, reason, name, numeric)
