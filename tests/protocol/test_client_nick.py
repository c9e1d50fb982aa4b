"""Taking the configured nick back after registering under a fallback (client_nick).

Against the real chat-server (MONITOR), jaraco's plain ``irc.server`` (no MONITOR:
ISON polling), and an account server (an account's nick held by its own ghost, and an
account's nick that is not ours); plus unit tests of the bounds with plain messages.
Every wait is for a condition with a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from chat_protocol import client_nick
from chat_protocol import numerics as n
from chat_protocol.client import (
    ClientConfig,
    Event,
    NickFallback,
    NickReclaimed,
    Received,
    ServerAddress,
)
from chat_protocol.client_nick import NickReclaim, ison_nicks
from chat_protocol.client_state import SessionState
from chat_protocol.message import Message
from tests.protocol.accounts import AccountServer
from tests.protocol.accounts import account_server as account_server  # fixture
from tests.protocol.test_client import (
    ClientMaker,
    address,
    config,
    connected,
    own_join,
    privmsg_with,
    until,
)
from tests.protocol.test_client import plain_server as plain_server  # fixture
from tests.protocol.test_client import raw as raw  # fixture
from tests.protocol.test_client import start_client as start_client  # fixture
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess


def fallback(e: Event) -> bool:
    return isinstance(e, NickFallback)


def reclaimed(e: Event) -> bool:
    return isinstance(e, NickReclaimed)


def numeric(code: str, about: str | None = None) -> Callable[[Event], bool]:
    def test(e: Event) -> bool:
        return (
            isinstance(e, Received)
            and e.message.command == code
            and (about is None or about in e.message.params[-1])
        )

    return test


def refusals_shown(events: list[Event]) -> int:
    """433s that reached the app after registration (those during it are how the
    fallback came about): refusals of our own reclaim attempts must not."""
    start = next(i for i, e in enumerate(events) if connected(e))
    return sum(
        1
        for e in events[start:]
        if isinstance(e, Received) and e.message.command == n.ERR_NICKNAMEINUSE
    )


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter waits, so that tests of polling and of refusals take a second, not a
    minute; the logic is the same."""
    monkeypatch.setattr(client_nick, "POLL_MIN", 0.1)
    monkeypatch.setattr(client_nick, "ATTEMPT_GAP", 0.05)


# -- against the chat-server: MONITOR ------------------------------------------------------


async def test_reclaims_the_nick_when_its_holder_quits(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    holder = raw("carol")
    client, rec = start_client(config(address(server), nick="carol", channels=["#r"]))
    assert await rec.wait(fallback) == NickFallback("carol", "carol_")
    await rec.wait(own_join("#r", "carol_"))
    assert "MONITOR" in client.isupport
    await rec.wait(numeric(n.RPL_MONONLINE, "carol!"))  # the server watches it for us
    holder.send("QUIT :gone")
    quit_at = time.monotonic()
    event = await rec.wait(reclaimed, timeout=5)
    assert event == NickReclaimed("carol", "carol_")
    assert time.monotonic() - quit_at < 3  # MONITOR says at once: no polling delay
    assert client.nick == "carol"
    # the NICK is an event like any other, before NickReclaimed
    nick_msg = await rec.wait(lambda e: isinstance(e, Received) and e.message.command == "NICK")
    assert isinstance(nick_msg, Received) and rec.index(nick_msg) < rec.index(event)
    assert nick_msg.message.nick == "carol_" and nick_msg.message.param(0) == "carol"
    assert "carol" in client.channels["#r"].members
    # direct messages to the nick reach us again
    dan = raw("dan")
    dan.send("PRIVMSG carol :are you back?")
    await rec.wait(privmsg_with("are you back?"))
    assert refusals_shown(rec.events) == 0


async def test_reclaims_when_the_holder_changes_nick(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    holder = raw("carol")
    client, rec = start_client(config(address(server), nick="carol"))
    await rec.wait(numeric(n.RPL_MONONLINE, "carol!"))
    holder.send("NICK carol2")
    holder.expect("NICK")
    assert await rec.wait(reclaimed, timeout=5) == NickReclaimed("carol", "carol_")
    holder.send("NICK carol")
    assert holder.expect(n.ERR_NICKNAMEINUSE).param(1) == "carol"  # ours now
    assert client.nick == "carol"


async def test_a_nick_the_user_chose_ends_the_watch(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    holder = raw("carol")
    client, rec = start_client(config(address(server), nick="carol"))
    await rec.wait(numeric(n.RPL_MONONLINE, "carol!"))
    await client.send("NICK caroline")
    await until(lambda: client.nick == "caroline")
    assert not client._reclaim.active
    holder.send("QUIT :gone")
    holder.closed()
    # a barrier: the server has handled the QUIT and our PING after it
    await client.request("PING :after-quit")
    assert client.nick == "caroline"
    assert not any(reclaimed(e) for e in rec.events)


async def test_no_reclaim_when_turned_off(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    raw("carol")
    client, rec = start_client(config(address(server), nick="carol", reclaim_nick=False))
    await rec.wait(connected)
    assert client.nick == "carol_" and not client._reclaim.active


# -- a server without MONITOR: ISON with backoff --------------------------------------------


async def test_polls_ison_without_monitor(
    plain_server: ServerAddress, start_client: ClientMaker, fast_polls: None
) -> None:
    first, rec_first = start_client(config(plain_server, nick="carol"))
    await rec_first.wait(connected)
    client, rec = start_client(config(plain_server, nick="carol"))
    assert await rec.wait(fallback) == NickFallback("carol", "carol_")
    assert "MONITOR" not in client.isupport
    assert client._reclaim.active
    await first.close()
    assert await rec.wait(reclaimed, timeout=10) == NickReclaimed("carol", "carol_")
    assert client.nick == "carol"
    assert not any(isinstance(e, Received) and e.message.command == n.RPL_ISON for e in rec.events)


# -- accounts -------------------------------------------------------------------------------


async def test_an_account_takes_its_nick_from_its_ghost(
    account_server: AccountServer, start_client: ClientMaker
) -> None:
    server = account_server(carol="carols password")
    creds = {"account": "carol", "account_password": "carols password"}
    ghost, ghost_rec = start_client(config(address(server), nick="carol", **creds))
    await ghost_rec.wait(connected)
    client, rec = start_client(config(address(server), nick="carol", **creds))
    assert await rec.wait(fallback) == NickFallback("carol", "carol_")
    assert client.account == "carol"
    await rec.wait(numeric(n.RPL_MONONLINE, "carol!"))
    await ghost.close()
    closed_at = time.monotonic()
    assert await rec.wait(reclaimed, timeout=5) == NickReclaimed("carol", "carol_")
    assert time.monotonic() - closed_at < 3
    assert refusals_shown(rec.events) == 0


async def test_someone_elses_account_nick_is_given_up(
    account_server: AccountServer, start_client: ClientMaker, fast_polls: None
) -> None:
    """The nick is free but reserved for an account we are not logged in to: a few
    refused attempts (never shown), then the watch ends; nothing loops."""
    server = account_server(dave="daves password")
    client, rec = start_client(config(address(server), nick="dave"))
    assert await rec.wait(fallback) == NickFallback("dave", "dave_")
    await until(lambda: not client._reclaim.active, timeout=10)
    assert client.nick == "dave_"
    assert client._reclaim._attempts == client_nick.MAX_REFUSALS
    assert refusals_shown(rec.events) == 0


# -- the bounds, with plain messages --------------------------------------------------------


class Wire:
    """What a NickReclaim writes and emits, for unit tests."""

    def __init__(self, nick: str, isupport: dict[str, str]) -> None:
        self.state = SessionState(nick)
        self.state.isupport.update(isupport)
        self.sent: list[str] = []
        self.events: list[Event] = []
        self.cfg = ClientConfig([ServerAddress("h", 1)], "carol")
        self.reclaim = NickReclaim(
            self.cfg, self.state, self.write, self.request, self.events.append
        )

    def write(self, msg: Message) -> None:
        self.sent.append(msg.to_str())

    async def request(self, msg: Message, timeout: float) -> list[Message]:
        self.sent.append(msg.to_str())
        return [Message(n.RPL_ISON, [self.state.nick, ""])]

    def feed(self, line: str) -> bool:
        return self.reclaim.claim(Message.parse(line))


async def test_monitor_path_and_refusals_in_order(fast_polls: None) -> None:
    wire = Wire("carol_", {"MONITOR": "100"})
    wire.reclaim.start()
    assert wire.sent == ["MONITOR + carol"]
    assert not wire.feed(":s 730 carol_ :carol!u@h")
    assert not wire.feed(":s 731 carol_ :carol")
    assert wire.sent[-1] == "NICK carol"
    # someone else was quicker: their 730 came first, so we wait for their 731
    assert not wire.feed(":s 730 carol_ :carol!x@y")
    assert wire.feed(":s 433 carol_ carol :Nickname is already in use")
    assert wire.reclaim.active and wire.sent.count("NICK carol") == 1
    wire.feed(":s 731 carol_ :carol")
    await until(lambda: wire.sent.count("NICK carol") == 2)
    wire.state.nick = "carol"
    wire.reclaim.nick_changed("carol_", "carol")
    assert wire.events == [NickReclaimed("carol", "carol_")]
    assert wire.sent[-1] == "MONITOR - carol" and not wire.reclaim.active


async def test_432_ends_the_watch_and_is_shown() -> None:
    wire = Wire("carol_", {"MONITOR": "100"})
    wire.reclaim.start()
    wire.feed(":s 731 carol_ :carol")
    assert not wire.feed(":s 432 carol_ carol :Erroneous nickname")  # the app shows it
    assert not wire.reclaim.active and wire.sent[-1] == "MONITOR - carol"
    wire.feed(":s 731 carol_ :carol")
    assert wire.sent.count("NICK carol") == 1


async def test_attempts_are_spaced_and_capped() -> None:
    wire = Wire("carol_", {"MONITOR": "100"})
    wire.reclaim.start()
    wire.feed(":s 731 carol_ :carol")
    wire.feed(":s 433 carol_ carol :in use")
    for _ in range(50):  # a flapping holder: 731s arrive faster than we may try
        wire.feed(":s 730 carol_ :carol!x@y")
        wire.feed(":s 731 carol_ :carol")
    assert wire.sent.count("NICK carol") == 1  # the next waits for the attempt gap
    wire.reclaim.stop()


async def test_a_full_monitor_list_falls_back_to_polling(fast_polls: None) -> None:
    wire = Wire("carol_", {"MONITOR": "1"})
    wire.reclaim.start()
    assert wire.feed(":s 734 carol_ 1 carol :Monitor list is full.")
    await until(lambda: "ISON carol" in wire.sent)
    await until(lambda: "NICK carol" in wire.sent)  # ISON did not list it: free
    wire.reclaim.stop()


def test_ison_nicks() -> None:
    assert ison_nicks([Message.parse(":s 303 me :carol dan")]) == ["carol", "dan"]
    assert ison_nicks([Message.parse(":s 303 me :")]) == []
    assert ison_nicks([Message.parse(":s 421 me ISON :Unknown command")]) is None


async def test_nothing_to_do_with_the_wanted_nick() -> None:
    wire = Wire("carol", {"MONITOR": "100"})
    wire.reclaim.start()
    assert not wire.reclaim.active and wire.sent == []
