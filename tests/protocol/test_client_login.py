"""CAP negotiation and SASL login as plain message exchanges: what the client writes for
each server line. The same flows run against the real chat-server in test_client_sasl.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from dataclasses import dataclass, field

import pytest

from chat_protocol.client_caps import CapNegotiation
from chat_protocol.client_login import SaslLogin, mechanisms_to_try
from chat_protocol.client_types import (
    ClientConfig,
    Event,
    LoginFailed,
    RegistrationError,
    ServerAddress,
)
from chat_protocol.message import Message

WANTED = ("message-tags", "account-notify", "extended-join")
LS = "CAP * LS :message-tags account-notify sasl=PLAIN,SCRAM-SHA-256 extended-join"


def msg(line: str) -> Message:
    return Message.parse(line)


def config(**kw: object) -> ClientConfig:
    kw.setdefault("account", "alice")
    kw.setdefault("account_password", "pw")
    kw.setdefault("connect_timeout", 4.0)
    return ClientConfig([ServerAddress("127.0.0.1", 6667)], "alice", **kw)  # type: ignore[arg-type]


@dataclass
class Wire:
    """What the client wrote and emitted."""

    lines: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def write(self, m: Message) -> None:
        self.lines.append(m.to_str())

    def take(self) -> list[str]:
        out, self.lines = self.lines, []
        return out


def negotiation(cfg: ClientConfig) -> tuple[CapNegotiation, Wire]:
    wire = Wire()
    return CapNegotiation(cfg, WANTED, wire.write, wire.events.append), wire


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- mechanisms offered --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "forced", "expected"),
    [
        ("PLAIN,SCRAM-SHA-256", None, ["SCRAM-SHA-256", "PLAIN"]),
        ("PLAIN", None, ["PLAIN"]),
        ("", None, ["SCRAM-SHA-256", "PLAIN"]),  # not listed: try ours in order
        ("EXTERNAL", None, []),
        ("PLAIN,SCRAM-SHA-256", "PLAIN", ["PLAIN"]),
        ("PLAIN", "SCRAM-SHA-256", []),
        ("scram-sha-256", None, ["SCRAM-SHA-256"]),
    ],
)
def test_mechanisms_to_try(value: str, forced: str | None, expected: list[str]) -> None:
    assert mechanisms_to_try(value, forced) == expected


# -- without credentials: nothing changes ---------------------------------------------------


async def test_no_credentials_requests_wanted_caps_but_not_sasl() -> None:
    caps, wire = negotiation(config(account=None, account_password=None))
    await caps.feed(msg(LS))
    assert wire.take() == ["CAP REQ :message-tags account-notify extended-join"]
    await caps.feed(msg("CAP * ACK :message-tags account-notify extended-join"))
    assert wire.take() == ["CAP END"] and caps.ended and not wire.events


async def test_multiline_ls_waits_for_the_last_line() -> None:
    caps, wire = negotiation(config(account=None, account_password=None))
    await caps.feed(msg("CAP * LS * :message-tags"))
    assert wire.take() == []
    await caps.feed(msg("CAP * LS :extended-join"))
    assert wire.take() == ["CAP REQ :message-tags extended-join"]


async def test_nothing_wanted_ends_at_once() -> None:
    caps, wire = negotiation(config(account=None, account_password=None))
    await caps.feed(msg("CAP * LS :something-else"))
    assert wire.take() == ["CAP END"]


# -- PLAIN ----------------------------------------------------------------------------------


async def test_plain_login() -> None:
    caps, wire = negotiation(config(sasl_mechanism="PLAIN"))
    await caps.feed(msg(LS))
    assert wire.take() == ["CAP REQ :message-tags account-notify extended-join sasl"]
    await caps.feed(msg("CAP * ACK :message-tags account-notify extended-join sasl"))
    assert wire.take() == ["AUTHENTICATE PLAIN"]
    await caps.feed(msg("AUTHENTICATE +"))
    assert wire.take() == ["AUTHENTICATE " + b64(b"\0alice\0pw")]
    await caps.feed(msg(":srv 900 alice alice!alice@host alice :You are now logged in as alice"))
    assert wire.take() == []
    await caps.feed(msg(":srv 903 alice :SASL authentication successful"))
    assert wire.take() == ["CAP END"]
    assert caps.login is not None and caps.login.outcome is not None
    assert caps.login.outcome.ok and caps.login.outcome.account == "alice"
    assert not wire.events


async def test_long_plain_payload_goes_in_400_byte_pieces() -> None:
    password = "p" * 400
    caps, wire = negotiation(config(sasl_mechanism="PLAIN", account_password=password))
    await caps.feed(msg(LS))
    await caps.feed(msg("CAP * ACK :sasl"))
    wire.take()
    await caps.feed(msg("AUTHENTICATE +"))
    sent = [line.removeprefix("AUTHENTICATE ") for line in wire.take()]
    assert [len(s) for s in sent[:-1]] == [400] and len(sent[-1]) < 400
    assert base64.b64decode("".join(sent)) == b"\0alice\0" + password.encode()


async def test_plain_failure_continues_without_account() -> None:
    caps, wire = negotiation(config(sasl_mechanism="PLAIN"))
    await caps.feed(msg(LS))
    await caps.feed(msg("CAP * ACK :sasl"))
    await caps.feed(msg("AUTHENTICATE +"))
    wire.take()
    await caps.feed(msg(":srv 904 alice :SASL authentication failed"))
    assert wire.take() == ["CAP END"]
    assert wire.events == [
        LoginFailed("alice", "SASL authentication failed", "PLAIN", "904", continuing=True)
    ]
    assert "pw" not in repr(wire.events) and "pw" not in repr(caps.config)


async def test_required_login_failure_ends_the_attempt() -> None:
    caps, wire = negotiation(config(sasl_mechanism="PLAIN", login_required=True))
    await caps.feed(msg(LS))
    await caps.feed(msg("CAP * ACK :sasl"))
    await caps.feed(msg("AUTHENTICATE +"))
    wire.take()
    with pytest.raises(RegistrationError, match="login as alice failed"):
        await caps.feed(msg(":srv 904 alice :SASL authentication failed"))
    assert "CAP END" not in wire.take()
    assert isinstance(wire.events[0], LoginFailed) and not wire.events[0].continuing


# -- SCRAM-SHA-256 ----------------------------------------------------------------------------


class ScramServer:
    """The server's side of SCRAM, computed independently of chat_protocol.sasl."""

    def __init__(self, password: str, salt: bytes = b"salt1234salt1234", i: int = 4096) -> None:
        self.password, self.salt, self.i = password, salt, i

    def first(self, client_first: bytes) -> str:
        self.client_bare = client_first.decode()[3:]
        nonce = self.client_bare.split("r=", 1)[1]
        self.server_first = f"r={nonce}SERVER,s={b64(self.salt)},i={self.i}"
        return b64(self.server_first.encode())

    def final(self, client_final: bytes, forge: bool = False) -> str:
        without_proof = client_final.decode().rpartition(",p=")[0]
        auth = f"{self.client_bare},{self.server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), self.salt, self.i)
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        signature = b"\1" * 32 if forge else hmac.digest(server_key, auth, "sha256")
        return b64(b"v=" + b64(signature).encode())


async def scram_until_server_final(caps: CapNegotiation, wire: Wire, server: ScramServer) -> None:
    await caps.feed(msg(LS))
    wire.take()
    await caps.feed(msg("CAP * ACK :sasl"))
    assert wire.take() == ["AUTHENTICATE SCRAM-SHA-256"]
    await caps.feed(msg("AUTHENTICATE +"))
    [first] = wire.take()
    await caps.feed(msg("AUTHENTICATE " + server.first(base64.b64decode(first.split()[1]))))
    [final] = wire.take()
    server.client_final = base64.b64decode(final.split()[1])  # type: ignore[attr-defined]


async def test_scram_login_is_preferred_and_verifies_the_server() -> None:
    caps, wire = negotiation(config())
    server = ScramServer("pw")
    await scram_until_server_final(caps, wire, server)
    await caps.feed(msg("AUTHENTICATE " + server.final(server.client_final)))  # type: ignore[attr-defined]
    assert wire.take() == ["AUTHENTICATE +"]
    await caps.feed(msg(":srv 900 alice alice!a@h alice :You are now logged in as alice"))
    await caps.feed(msg(":srv 903 alice :SASL authentication successful"))
    assert wire.take() == ["CAP END"]
    assert caps.login is not None and caps.login.outcome is not None and caps.login.outcome.ok


async def test_scram_with_a_forged_server_signature_aborts() -> None:
    caps, wire = negotiation(config())
    server = ScramServer("pw")
    await scram_until_server_final(caps, wire, server)
    forged = server.final(server.client_final, forge=True)  # type: ignore[attr-defined]
    await caps.feed(msg("AUTHENTICATE " + forged))
    assert wire.take() == ["AUTHENTICATE *"]
    await caps.feed(msg(":srv 906 alice :SASL authentication aborted"))
    assert wire.take() == ["CAP END"]
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "signature is wrong" in event.reason
    assert event.mechanism == "SCRAM-SHA-256" and event.numeric == "906"


async def test_success_without_server_proof_is_a_failure() -> None:
    caps, wire = negotiation(config())
    server = ScramServer("pw")
    await scram_until_server_final(caps, wire, server)
    await caps.feed(msg(":srv 903 alice :SASL authentication successful"))
    assert wire.take() == ["CAP END"]
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "without proving" in event.reason


async def test_low_iteration_count_aborts() -> None:
    caps, wire = negotiation(config())
    await scram_until_server_final(caps, wire, ScramServer("pw", i=1000))
    # the client-final was never sent: the abort was
    assert wire.take() == []


async def test_server_without_our_mechanism_listed_in_908_gets_the_next() -> None:
    caps, wire = negotiation(config())
    await caps.feed(msg("CAP * LS :sasl"))  # mechanisms not listed: SCRAM first
    assert wire.take() == ["CAP REQ sasl"]
    await caps.feed(msg("CAP * ACK :sasl"))
    assert wire.take() == ["AUTHENTICATE SCRAM-SHA-256"]
    await caps.feed(msg(":srv 908 alice PLAIN :are available SASL mechanisms"))
    await caps.feed(msg(":srv 904 alice :SASL authentication failed"))
    assert wire.take() == ["AUTHENTICATE PLAIN"]
    await caps.feed(msg("AUTHENTICATE +"))
    await caps.feed(msg(":srv 903 alice :SASL authentication successful"))
    assert wire.take()[-1] == "CAP END" and not wire.events


# -- servers that cannot log us in ----------------------------------------------------------


async def test_server_without_sasl_says_so_and_goes_on() -> None:
    caps, wire = negotiation(config())
    await caps.feed(msg("CAP * LS :message-tags"))
    assert wire.take() == ["CAP REQ message-tags"]
    await caps.feed(msg("CAP * ACK :message-tags"))
    assert wire.take() == ["CAP END"]
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "does not offer SASL" in event.reason


async def test_server_with_other_mechanisms_only() -> None:
    caps, wire = negotiation(config(sasl_mechanism="SCRAM-SHA-256"))
    await caps.feed(msg("CAP * LS :sasl=PLAIN"))
    assert wire.take() == ["CAP END"]
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "PLAIN, not SCRAM-SHA-256" in event.reason


async def test_server_without_cap_at_all() -> None:
    caps, wire = negotiation(config())
    await caps.feed(msg(":srv 001 alice :Welcome"))
    assert caps.ended and wire.take() == []
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "capabilities" in event.reason


async def test_nak_of_sasl() -> None:
    caps, wire = negotiation(config())
    await caps.feed(msg(LS))
    await caps.feed(msg("CAP * NAK :message-tags account-notify extended-join sasl"))
    assert wire.take()[-1] == "CAP END"
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "refused the sasl" in event.reason


async def test_a_silent_server_is_aborted_after_the_login_timeout() -> None:
    caps, wire = negotiation(config(connect_timeout=0.2))
    await caps.feed(msg(LS))
    wire.take()
    await caps.feed(msg("CAP * ACK :sasl"))
    assert wire.take() == ["AUTHENTICATE SCRAM-SHA-256"]
    deadline = asyncio.get_running_loop().time() + 2.0
    while not caps.ended and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert wire.take() == ["AUTHENTICATE *", "CAP END"]
    [event] = wire.events
    assert isinstance(event, LoginFailed) and "within 0.1s" in event.reason
    caps.close()


async def test_a_silent_server_with_login_required_ends_on_the_next_line() -> None:
    caps, wire = negotiation(config(connect_timeout=0.2, login_required=True))
    await caps.feed(msg(LS))
    wire.take()
    await caps.feed(msg("CAP * ACK :sasl"))
    deadline = asyncio.get_running_loop().time() + 2.0
    while not wire.events and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert wire.take() == ["AUTHENTICATE SCRAM-SHA-256", "AUTHENTICATE *"]
    with pytest.raises(RegistrationError):
        await caps.feed(msg(":srv 906 alice :SASL authentication aborted"))


def test_login_needs_a_mechanism() -> None:
    with pytest.raises(ValueError):
        SaslLogin("a", "b", [], lambda m: None)


def test_config_checks_login_settings() -> None:
    with pytest.raises(ValueError):
        config(account_password=None)
    with pytest.raises(ValueError):
        config(sasl_mechanism="EXTERNAL")
    assert config(sasl_mechanism="plain").sasl_mechanism == "PLAIN"
    assert "pw" not in repr(config(password="pw"))
