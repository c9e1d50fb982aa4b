"""Capability negotiation at connect: ``CAP LS 302``, ``CAP REQ``, a SASL login, ``CAP END``.

``CapNegotiation`` is fed every message that arrives before the welcome and writes what
to answer. Registration waits for our CAP END, so a login finishes before the server
looks at our nick: an account's nick is only ours once we are logged in to it. Every
wait is bounded: a login the server does not finish is aborted after half the
connect timeout, and the connection goes on (or, with ``login_required``, ends).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from chat_protocol import numerics as n
from chat_protocol.client_login import LoginOutcome, SaslLogin, mechanisms_to_try
from chat_protocol.client_types import (
    ClientConfig,
    Event,
    LoginFailed,
    NotConnected,
    RegistrationError,
)
from chat_protocol.client_updates import cap_values
from chat_protocol.message import Message
from chat_protocol.sasl import MECHANISMS

Write = Callable[[Message], None]
Emit = Callable[[Event], None]


class CapNegotiation:
    """One connection's negotiation; ``ended`` once CAP END went out (or was not needed)."""

    def __init__(self, config: ClientConfig, wanted: Sequence[str], write: Write, emit: Emit):
        self.config = config
        self.ended = False
        self.login: SaslLogin | None = None
        self._wanted = wanted
        self._write = write
        self._emit = emit
        self._offered: dict[str, str] = {}
        self._mechanisms: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._reported = False
        self._failure: str | None = None  # a required login that failed: end the attempt
        self.login_timeout = config.connect_timeout / 2

    async def feed(self, msg: Message) -> None:
        """Take one message from before the welcome; RegistrationError when a required
        login failed."""
        if self._failure is not None:
            raise RegistrationError(self._failure)
        if self.ended:
            return
        if msg.command == "CAP" and msg.param(1).upper() == "LS":
            self._offered.update(cap_values(msg.params[-1]))
            if not (len(msg.params) >= 4 and msg.params[2] == "*"):  # else: more LS follow
                self._listed()
        elif msg.command == "CAP" and msg.param(1).upper() in ("ACK", "NAK"):
            self._answered(msg)
        elif msg.command == n.RPL_WELCOME:
            self.ended = True  # a server without CAP registered us at once
            if self.config.wants_login and not self._reported:
                self._fail("the server does not negotiate capabilities, so no login")
        elif self.login is not None:
            await self.login.feed(msg)
            if self.login.outcome is not None:
                self._finish_login(self.login.outcome)

    def close(self) -> None:
        """The connection is over: no timer may fire into it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _listed(self) -> None:
        wanted = [cap for cap in self._wanted if cap in self._offered]
        if self.config.wants_login:
            forced = self.config.sasl_mechanism
            if "sasl" not in self._offered:
                self._fail("the server does not offer SASL (no sasl capability)")
            else:
                self._mechanisms = mechanisms_to_try(self._offered["sasl"], forced)
                if self._mechanisms:
                    wanted.append("sasl")
                else:
                    ours = forced or " or ".join(MECHANISMS)
                    self._fail(f"the server offers SASL {self._offered['sasl']}, not {ours}")
        if wanted:
            self._write(Message("CAP", ["REQ", " ".join(wanted)]))
        else:
            self._end()

    def _answered(self, msg: Message) -> None:
        acked = msg.param(1).upper() == "ACK" and "sasl" in msg.params[-1].split()
        if self._mechanisms and acked:
            account, password = self.config.account, self.config.account_password
            assert account and password  # wants_login
            self.login = SaslLogin(account, password, self._mechanisms, self._write)
            self.login.start()
            self._timer = asyncio.get_running_loop().call_later(self.login_timeout, self._expired)
            return
        if self._mechanisms:
            self._fail("the server refused the sasl capability")
        self._end()

    def _expired(self) -> None:
        self._timer = None
        login = self.login
        if login is None or login.outcome is not None or self.ended:
            return
        with contextlib.suppress(NotConnected, OSError):
            login.expire(self.login_timeout)
            assert login.outcome is not None
            self._finish_login(login.outcome, from_timer=True)

    def _finish_login(self, outcome: LoginOutcome, from_timer: bool = False) -> None:
        self.close()
        if self._reported:
            return
        if not outcome.ok:
            reason = outcome.reason
            if from_timer and self.config.login_required:
                # Not raised from a timer: the next message (906 to our abort) ends it.
                self._report(reason, outcome)
                self._failure = f"login as {self.config.account} failed: {reason}"
                return
            self._fail(reason, outcome)
        self._reported = True
        self._end()

    def _report(self, reason: str, outcome: LoginOutcome | None) -> None:
        self._reported = True
        self._emit(
            LoginFailed(
                self.config.account or "",
                reason,
                outcome.mechanism if outcome else None,
                outcome.numeric if outcome else None,
                continuing=not self.config.login_required,
            )
        )

    def _fail(self, reason: str, outcome: LoginOutcome | None = None) -> None:
        """Say the login failed; end the attempt when it was required."""
        self._report(reason, outcome)
        if self.config.login_required:
            raise RegistrationError(f"login as {self.config.account} failed: {reason}")

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._write(Message("CAP", ["END"]))
